import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
// The modules themselves (not namespace copies), so that a test can watch what the store calls.
import fsSync from "node:fs";
import fsPromises from "node:fs/promises";
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { deleteRun, isRunId, listRuns, loadRun, newRunId, writeMetaSync } from "../../../src/runner/store";
import type { RunMeta } from "../../../src/runner/types";
import type { ProbeEvent } from "../../../src/protocol/events";
import { readEventsModel } from "../../../src/host/runEntries";
import { EventsFollower } from "../../../src/runner/eventsFile";
import { tempDir } from "../../remote/helpers";

const EVENT_START =
  '{"v":1,"type":"start","ts":1,"pid":10,"rank":null,"device":null,"run_id":"r","argv":["python3"],"cwd":"/","plan":{},"probe_version":"0"}';
const EVENT_LOG =
  '{"v":1,"type":"log","ts":2,"pid":11,"rank":null,"device":null,"stream":"stdout","line":"hello"}';

/** A pid that existed and is gone now. */
function deadPid(): number {
  const child = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" });
  return Number(child.stdout.trim());
}

function makeRun(
  runsDir: string,
  id: string,
  meta: Partial<RunMeta>,
  events = `${EVENT_START}\n${EVENT_LOG}\n`,
): string {
  const dir = path.join(runsDir, id);
  mkdirSync(dir, { recursive: true });
  writeMetaSync(dir, {
    id,
    label: id,
    started: "2025-01-01T00:00:00.000Z",
    host: null,
    command: ["python3"],
    status: "finished",
    ...meta,
  });
  writeFileSync(
    path.join(dir, "plan.json"),
    JSON.stringify({ version: 1, targets: [{ id: "t1", function: "a:b" }] }),
  );
  writeFileSync(path.join(dir, "events.jsonl"), events);
  return dir;
}

void test("run ids sort by time and look like one", () => {
  const ids = [
    new Date("2025-01-02T03:04:05.006Z"),
    new Date("2025-01-02T03:04:05.007Z"),
    new Date("2026-01-01T00:00:00.000Z"),
  ].map((d) => newRunId(d));
  assert.deepEqual([...ids].sort(), ids);
  assert.match(ids[0]!, /^20250102-030405-006-[0-9a-f]{6}$/);
  assert.ok(ids.every(isRunId));
  assert.notEqual(newRunId(new Date(0)), newRunId(new Date(0)), "random suffix");
});

void test("listRuns: newest first, other folders skipped, a missing runs folder is empty", async () => {
  const runsDir = tempDir("store-list");
  makeRun(runsDir, "20250101-000000-000-aaaaaa", {});
  makeRun(runsDir, "20250301-000000-000-cccccc", {});
  makeRun(runsDir, "20250201-000000-000-bbbbbb", {});
  mkdirSync(path.join(runsDir, "not-a-run"));
  const runs = await listRuns(runsDir);
  assert.deepEqual(
    runs.map((r) => r.id),
    ["20250301-000000-000-cccccc", "20250201-000000-000-bbbbbb", "20250101-000000-000-aaaaaa"],
  );
  assert.deepEqual(await listRuns(path.join(runsDir, "nope")), []);
});

void test("loadRun: meta, plan and events; a torn last line (crash mid-write) is only counted", async () => {
  const runsDir = tempDir("store-load");
  const dir = makeRun(
    runsDir,
    "20250101-000000-000-aaaaaa",
    {},
    `${EVENT_START}\n${EVENT_LOG}\n{"v":1,"type":"lo`,
  );
  const run = await loadRun(dir);
  assert.equal(run.meta.status, "finished");
  assert.equal(run.plan?.targets.length, 1);
  assert.deepEqual(
    run.events.map((e) => e.type),
    ["start", "log"],
  );
  assert.equal(run.malformed.length, 1);
  assert.equal(run.malformed[0]?.lineNumber, 3);
});

void test("a run whose meta says running but whose process is gone loads as interrupted (and stays so)", async () => {
  const runsDir = tempDir("store-interrupted");
  const dir = makeRun(runsDir, "20250101-000000-000-aaaaaa", { status: "running", pid: deadPid() });
  const run = await loadRun(dir);
  assert.equal(run.meta.status, "interrupted");
  assert.match(run.meta.error ?? "", /stopped before this run ended/);
  assert.equal(run.events.length, 2, "its events are kept");
  const onDisk = JSON.parse(readFileSync(path.join(dir, "meta.json"), "utf8")) as RunMeta;
  assert.equal(onDisk.status, "interrupted");

  const live = makeRun(runsDir, "20250102-000000-000-bbbbbb", { status: "running", pid: process.pid });
  assert.equal((await loadRun(live)).meta.status, "running", "its process still exists");
  const noPid = makeRun(runsDir, "20250103-000000-000-cccccc", { status: "running" });
  assert.equal(
    (await loadRun(noPid, { isLive: (id) => id === "20250103-000000-000-cccccc" })).meta.status,
    "running",
  );
  assert.equal((await loadRun(noPid)).meta.status, "interrupted");
});

void test("a broken meta.json still lists, as failed, with a message naming the file", async () => {
  const runsDir = tempDir("store-broken");
  const dir = makeRun(runsDir, "20250101-000000-000-aaaaaa", {});
  writeFileSync(path.join(dir, "meta.json"), "{ not json");
  const [run] = await listRuns(runsDir);
  assert.equal(run?.meta.status, "failed");
  assert.match(run?.meta.error ?? "", /meta\.json is not valid JSON \(at position 2\)/);
});

void test("deleteRun removes a finished run and refuses a live one or a non-run name", async () => {
  const runsDir = tempDir("store-delete");
  const done = makeRun(runsDir, "20250101-000000-000-aaaaaa", {});
  await deleteRun(runsDir, "20250101-000000-000-aaaaaa");
  assert.equal(existsSync(done), false);
  makeRun(runsDir, "20250102-000000-000-bbbbbb", { status: "running", pid: process.pid });
  await assert.rejects(
    deleteRun(runsDir, "20250102-000000-000-bbbbbb"),
    /still running; stop it before deleting it/,
  );
  await assert.rejects(deleteRun(runsDir, "../etc"), /is not a run id/);
  await assert.rejects(
    deleteRun(runsDir, "20250109-000000-000-dddddd"),
    /There is no run 20250109-000000-000-dddddd in/,
  );
});

void test("meta.json that is null, an array or of the wrong shape still lists; a bad field is dropped, not thrown", async () => {
  const runsDir = tempDir("store-meta-shapes");
  const ids = ["20250101-000000-000-aaaaaa", "20250102-000000-000-bbbbbb", "20250103-000000-000-cccccc"];
  for (const id of ids) makeRun(runsDir, id, {});
  writeFileSync(path.join(runsDir, ids[0]!, "meta.json"), "null");
  writeFileSync(path.join(runsDir, ids[1]!, "meta.json"), "[1]");
  writeFileSync(
    path.join(runsDir, ids[2]!, "meta.json"),
    JSON.stringify({ label: 7, status: "done", command: "python3", targets: "t1", started: "2025-01-03" }),
  );
  const runs = await listRuns(runsDir);
  const byId = new Map(runs.map((r) => [r.id, r.meta]));
  assert.equal(byId.get(ids[0]!)?.status, "failed");
  assert.match(byId.get(ids[0]!)?.error ?? "", /meta\.json is not a JSON object/);
  assert.match(byId.get(ids[1]!)?.error ?? "", /meta\.json is not a JSON object/);
  const odd = byId.get(ids[2]!);
  assert.deepEqual(
    [odd?.id, odd?.label, odd?.status, odd?.command, odd?.targets, odd?.started],
    [ids[2], ids[2], "failed", [], undefined, "2025-01-03"],
  );
  assert.equal((await loadRun(path.join(runsDir, ids[0]!))).events.length, 2, "its events are still read");
});

void test("an error about meta.json never quotes the file (it may be a link to a secret)", async () => {
  const runsDir = tempDir("store-meta-secret");
  const dir = makeRun(runsDir, "20250101-000000-000-aaaaaa", {});
  const secret = path.join(runsDir, "id_ed25519");
  writeFileSync(secret, "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n");
  rmSync(path.join(dir, "meta.json"));
  symlinkSync(secret, path.join(dir, "meta.json"));
  const [run] = await listRuns(runsDir);
  assert.equal(run?.meta.status, "failed");
  assert.doesNotMatch(run?.meta.error ?? "", /BEGIN|OPENSSH|b3Bl/);
  assert.match(run?.meta.error ?? "", /meta\.json is not valid JSON/);
});

void test("loadRun streams events.jsonl: no readFile of it, lines across chunks, a BOM and repeats handled", async () => {
  const runsDir = tempDir("store-stream");
  // Lines of 300 kB: several per 1 MiB chunk, most of them cut by a chunk boundary.
  const big = (i: number) =>
    JSON.stringify({
      v: 1,
      type: "log",
      ts: 10 + i,
      pid: 11,
      stream: "stdout",
      line: `${i}:${"z".repeat(300_000)}`,
    });
  const lines = [EVENT_START, ...Array.from({ length: 20 }, (_, i) => big(i)), EVENT_LOG, EVENT_LOG];
  const dir = makeRun(runsDir, "20250101-000000-000-aaaaaa", {}, `\ufeff${lines.join("\n")}\n`);
  const readFile = fsPromises.readFile;
  const readFileSync = fsSync.readFileSync;
  const refuse = (file: unknown) => {
    if (String(file).endsWith("events.jsonl")) throw new Error(`events.jsonl read whole: ${String(file)}`);
  };
  fsPromises.readFile = ((file: Parameters<typeof readFile>[0], ...rest: unknown[]) => {
    refuse(file);
    return (readFile as (...args: unknown[]) => unknown)(file, ...rest);
  }) as typeof readFile;
  fsSync.readFileSync = ((file: Parameters<typeof readFileSync>[0], ...rest: unknown[]) => {
    refuse(file);
    return (readFileSync as (...args: unknown[]) => unknown)(file, ...rest);
  }) as typeof readFileSync;
  try {
    const run = await loadRun(dir);
    assert.equal(run.events.length, 22, "start, 20 long lines, one of the two identical logs");
    assert.equal(run.events[0]?.type, "start");
    assert.equal(run.malformedCount, 0);
    assert.equal(run.duplicates, 1);
    const streamed: ProbeEvent[] = [];
    const again = await loadRun(dir, { onEvent: (e) => streamed.push(e) });
    assert.equal(again.events.length, 0, "with onEvent nothing is collected");
    assert.equal(streamed.length, 22);
    const { model } = await readEventsModel(path.join(dir, "events.jsonl"));
    assert.equal(model.eventCount, 22);
  } finally {
    fsPromises.readFile = readFile;
    fsSync.readFileSync = readFileSync;
  }
});

void test(
  "a FIFO or a directory in a run folder is refused at once, never waited on",
  { skip: process.platform === "win32" },
  async () => {
    const runsDir = tempDir("store-fifo");
    const dir = makeRun(runsDir, "20250101-000000-000-aaaaaa", {});
    for (const name of ["meta.json", "events.jsonl", "plan.json"]) {
      rmSync(path.join(dir, name));
      execFileSync("mkfifo", [path.join(dir, name)]);
    }
    const [listed] = await listRuns(runsDir);
    assert.match(listed?.meta.error ?? "", /meta\.json is a named pipe \(FIFO\), not a regular file/);
    await assert.rejects(loadRun(dir), /events\.jsonl is a named pipe \(FIFO\), not a regular file/);
    await assert.rejects(readEventsModel(path.join(dir, "events.jsonl")), /named pipe/);
    await assert.rejects(
      new EventsFollower(path.join(dir, "events.jsonl")).read(() => undefined),
      /named pipe/,
    );
    rmSync(path.join(dir, "events.jsonl"));
    mkdirSync(path.join(dir, "events.jsonl"));
    await assert.rejects(loadRun(dir), /events\.jsonl is a directory, not a regular file/);
  },
);
