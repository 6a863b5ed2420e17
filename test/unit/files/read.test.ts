// Files named by a workspace, a run or a model folder are read only when they are regular files
// of a bounded size, and errors about them never quote them.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { resolveBreakpointLocation } from "../../../src/debug/breakpoints";
import { FileReadError, parseJson, readSmallTextFile, readSmallTextFileSync } from "../../../src/files/read";
import { tempDir } from "../../remote/helpers";

const unix = { skip: process.platform === "win32" && "no FIFOs or /dev/zero on Windows" };

void test("a FIFO, a device or a directory is refused at once, async and sync", unix, async () => {
  const dir = tempDir("fileread");
  const fifo = path.join(dir, "pipe.py");
  execFileSync("mkfifo", [fifo]);
  mkdirSync(path.join(dir, "folder.py"));
  for (const [file, kind] of [
    [fifo, /is a named pipe \(FIFO\), not a regular file/],
    ["/dev/zero", /is a device or other special file, not a regular file/],
    [path.join(dir, "folder.py"), /is a directory, not a regular file/],
  ] as const) {
    await assert.rejects(readSmallTextFile(file, 1024), kind);
    assert.throws(() => readSmallTextFileSync(file, 1024), kind);
  }
  const location = resolveBreakpointLocation(fifo, 1, { sourceRoots: [], pathMappings: [] });
  assert.equal(location.kind, "error");
  assert.match(location.kind === "error" ? location.message : "", /pipe\.py: it is a named pipe/);
});

void test("a file over the bound is refused; a BOM is dropped", async () => {
  const file = path.join(tempDir("fileread-size"), "meta.json");
  writeFileSync(file, "x".repeat(2000));
  await assert.rejects(readSmallTextFile(file, 1000), (err: unknown) => {
    assert.ok(err instanceof FileReadError);
    assert.match(err.message, /is 2000 bytes; more than the 1000 bytes expected of it/);
    return true;
  });
  assert.throws(() => readSmallTextFileSync(file, 1000), /more than the 1000 bytes/);
  writeFileSync(file, '\ufeff{"a":1}');
  assert.equal(await readSmallTextFile(file, 1000), '{"a":1}');
  assert.equal(readSmallTextFileSync(file, 1000), '{"a":1}');
});

void test("parseJson says where the JSON breaks without quoting it", () => {
  for (const text of [
    "root:x:0:0:root:/root:/bin/bash",
    "-----BEGIN OPENSSH PRIVATE KEY-----",
    '{"secret": hunter2}',
  ]) {
    const parsed = parseJson(text);
    assert.equal(parsed.ok, false);
    if (!parsed.ok) {
      assert.match(parsed.reason, /^not valid JSON/);
      assert.doesNotMatch(parsed.reason, /root|BEGIN|hunter2/);
    }
  }
  assert.deepEqual(parseJson('{"a":[1]}'), { ok: true, value: { a: [1] } });
});
