// A full disk on the extension side: events mirrored from a host (remote and wrapper runs) still
// reach the views, the run records how many could not be written and which, meta.json gets its
// final state or stays whole (never a stray temporary file), and stderr.log failures are counted.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { parseEventsText } from "../../../src/protocol/reader";
import { LineFile } from "../../../src/runner/lineFile";
import type { RunMeta } from "../../../src/runner/types";
import { probeZipapp, tempDir } from "../../remote/helpers";

const FIXTURES = path.join(__dirname, "fixtures");

function enospc(): NodeJS.ErrnoException {
  return Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
}

/** A LineFile on a disk that takes `room` more bytes, then refuses them (until given more room). */
function fullAfter(room: number): { file: LineFile; path: string; give: (bytes: number) => void } {
  const filePath = path.join(tempDir("linefile"), "events.jsonl");
  let left = room;
  const file = new LineFile(filePath, (fd, buffer, offset) => {
    if (left <= 0) throw enospc();
    const written = writeSync(fd, buffer, offset, Math.min(buffer.length - offset, left));
    left -= written;
    return written;
  });
  return { file, path: filePath, give: (bytes) => (left += bytes) };
}

const line = (i: number) =>
  JSON.stringify({
    v: 1,
    type: "log",
    ts: i,
    pid: 1,
    rank: null,
    device: null,
    stream: "stdout",
    line: `l${i}`,
  });
const batch = (from: number) => Array.from({ length: 5 }, (_, i) => line(from + i));

void test("a refused write counts the lines not written, keeps the file line-aligned and never throws", () => {
  const bytesPerLine = Buffer.byteLength(line(0)) + 1;
  // Two and a half lines of room: the third line is torn.
  const { file, path: filePath, give } = fullAfter(Math.floor(2.5 * bytesPerLine));
  assert.equal(file.appendLines(batch(0)), 2);
  assert.ok(file.error?.startsWith("events.jsonl could not be written (ENOSPC"), file.error);
  assert.equal(file.appendLines(batch(5)), 0, "nothing fits while the disk is full");
  give(10_000);
  assert.equal(file.appendLines(batch(10)), 5, "written again once there is room");
  file.close();
  assert.equal(file.lost, 8);
  const { events, malformedCount } = parseEventsText(readFileSync(filePath, "utf8"));
  assert.equal(malformedCount, 1, "the torn line stays one malformed line; it does not spoil the next");
  assert.deepEqual(
    events.map((e) => e.ts),
    [0, 1, 10, 11, 12, 13, 14],
  );
});

void test("a file that cannot even be opened is an error to report, not a throw", () => {
  const file = new LineFile(path.join(tempDir("linefile-missing"), "no", "such", "stderr.log"));
  assert.match(file.error ?? "", /^stderr\.log could not be opened \(ENOENT/);
  assert.equal(file.appendLines(["a", "b"]), 0);
  assert.equal(file.append("c"), false);
  assert.equal(file.lost, 3);
  assert.doesNotThrow(() => file.close());
});

interface ChildResult {
  dir: string;
  meta: RunMeta;
  logs: number;
  lastLine: boolean;
  end: boolean;
}

/**
 * A wrapper run in a child process whose files may grow to `blocks` × 512 bytes (ulimit -f in
 * sh; the wrapper lifts the limit again for the probe and the target): past it every write of
 * the extension side fails, as on a full disk.
 */
function runWithFileLimit(blocks: number, lines: number): ChildResult {
  const dir = tempDir("full-disk");
  const out = execFileSync(
    "sh",
    [
      "-c",
      `ulimit -S -f ${blocks} && exec "$0" --import tsx "$@"`,
      process.execPath,
      path.join(FIXTURES, "full-disk-run.ts"),
      dir,
      probeZipapp(),
      path.join(FIXTURES, "raise-file-limit.sh"),
      String(lines),
    ],
    { encoding: "utf8", timeout: 120_000 },
  );
  return JSON.parse(out) as ChildResult;
}

const linuxOnly = { skip: process.platform !== "linux" && "ulimit -f and its units are Linux's here" };

void test(
  "events.jsonl full: the views get every event, meta says how many are missing and which",
  linuxOnly,
  () => {
    const result = runWithFileLimit(512, 3000);
    assert.equal(result.logs, 3001, "every log line reached the views");
    assert.ok(result.lastLine && result.end, "the stream kept flowing to its end event");
    assert.equal(result.meta.status, "finished", result.meta.error);
    assert.ok((result.meta.unwrittenEvents ?? 0) > 1000, String(result.meta.unwrittenEvents));
    assert.match(
      result.meta.recordError ?? "",
      /^events\.jsonl could not be written \(EFBIG[^)]*\): \d+ event\(s\) \(between event \d+ and event 3005 of 3005\) reached the views but are not in events\.jsonl$/,
    );
    const onDisk = JSON.parse(readFileSync(path.join(result.dir, "meta.json"), "utf8")) as RunMeta;
    assert.equal(onDisk.status, "finished");
    assert.equal(onDisk.unwrittenEvents, result.meta.unwrittenEvents);
    const stored = parseEventsText(readFileSync(path.join(result.dir, "events.jsonl"), "utf8"));
    assert.equal(stored.events.length + (result.meta.unwrittenEvents ?? 0), 3005);
    assert.deepEqual(readdirSync(result.dir).sort(), [
      "events.jsonl",
      "meta.json",
      "plan.json",
      "stderr.log",
    ]);
  },
);

void test(
  "meta.json cannot grow: the outcome has the final state and says so; no temporary file is left",
  linuxOnly,
  () => {
    const result = runWithFileLimit(1, 50);
    assert.equal(result.logs, 51);
    assert.equal(result.meta.status, "finished");
    assert.match(result.meta.recordError ?? "", /meta\.json could not be written \(EFBIG\)/);
    assert.deepEqual(readdirSync(result.dir).sort(), [
      "events.jsonl",
      "meta.json",
      "plan.json",
      "stderr.log",
    ]);
    const onDisk = JSON.parse(readFileSync(path.join(result.dir, "meta.json"), "utf8")) as RunMeta;
    assert.equal(onDisk.status, "running", "the last whole meta.json; loading it later says interrupted");
  },
);
