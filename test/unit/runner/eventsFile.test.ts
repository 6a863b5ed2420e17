// The one reader of events files: a stored run read whole, a run going on followed read by read,
// and a debug session's run followed into the editor's registry with the status its runner wrote.
import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import { test } from "node:test";
import { FollowedRunEntry } from "../../../src/host/runEntries";
import type { ProbeEvent } from "../../../src/protocol/events";
import { EventsFileShrankError, EventsFollower, readEventsFile } from "../../../src/runner/eventsFile";
import { writeMetaSync } from "../../../src/runner/store";
import type { RunMeta } from "../../../src/runner/types";
import { tempDir } from "../../remote/helpers";

const log = (ts: number): string =>
  JSON.stringify({
    v: 1,
    type: "log",
    ts,
    pid: 11,
    rank: null,
    device: null,
    stream: "stdout",
    line: `l${ts}`,
  });

void test("followed: each read hands on what was appended; a half line waits, a whole last line does not", async () => {
  const dir = tempDir("follow");
  const file = path.join(dir, "events.jsonl");
  writeFileSync(file, `${log(1)}\n${log(2).slice(0, 10)}`);
  const follower = new EventsFollower(file);
  const seen: ProbeEvent[] = [];
  await follower.read((e) => seen.push(e));
  assert.deepEqual(
    seen.map((e) => e.ts),
    [1],
  );
  assert.equal(follower.malformed, 0, "the unfinished line is not malformed yet");
  appendFileSync(file, `${log(2).slice(10)}\n${log(3)}`);
  await follower.read((e) => seen.push(e));
  assert.deepEqual(
    seen.map((e) => e.ts),
    [1, 2, 3],
    "a whole event without its newline is read at once",
  );
  appendFileSync(file, `\n${log(4)}\n{"v":1,"ty`);
  await follower.read((e) => seen.push(e), true);
  assert.deepEqual(
    seen.map((e) => e.ts),
    [1, 2, 3, 4],
  );
  assert.equal(follower.malformed, 1, "at the end, a torn last line counts as malformed");
  writeFileSync(file, `${log(9)}\n`);
  await follower.read(() => assert.fail("nothing after the last read"));
  const again = new EventsFollower(file);
  await again.read(() => undefined);
  writeFileSync(file, "");
  await assert.rejects(
    again.read(() => undefined),
    EventsFileShrankError,
  );
});

void test("a stored run is the same reader's one read, compressed or not", async () => {
  const dir = tempDir("read-whole");
  const text = `${log(1)}\n${log(1)}\nnot json\n${log(2)}`;
  const plain = path.join(dir, "events.jsonl");
  const gz = path.join(dir, "events.jsonl.gz");
  writeFileSync(plain, text);
  writeFileSync(gz, gzipSync(Buffer.from(text)));
  for (const file of [plain, gz]) {
    const ts: number[] = [];
    const report = await readEventsFile(file, (e) => ts.push(e.ts));
    assert.deepEqual(ts, [1, 2], file);
    assert.equal(report.malformedCount, 1);
    assert.equal(report.duplicates, 1);
  }
});

void test("a debug session's run is followed from its folder, with the status its runner records", async () => {
  const dir = tempDir("followed-run");
  const runDir = path.join(dir, "20250101-000000-000-aaaaaa");
  mkdirSync(runDir);
  const meta: RunMeta = {
    id: path.basename(runDir),
    label: "debug",
    started: "2025-01-01T00:00:00.000Z",
    host: null,
    command: [],
    status: "running",
    pid: 999_999_999,
  };
  writeMetaSync(runDir, meta);
  const entry = new FollowedRunEntry(meta.id, runDir, { ...meta, label: "session name" });
  assert.equal(await entry.refresh(), false, "no events yet: the runner writes them with the first");
  assert.equal(entry.meta.label, "debug", "meta.json is the record");
  writeFileSync(path.join(runDir, "events.jsonl"), `${log(1)}\n`);
  assert.equal(await entry.refresh(), true);
  assert.equal(entry.model.eventCount, 1);
  assert.equal(entry.meta.status, "running", "while the session lives, its run is live");
  assert.equal(await entry.refresh(true), true, "the session ended with the run still running");
  assert.equal(entry.meta.status, "interrupted", "its launcher is gone: the store's rule says interrupted");
});
