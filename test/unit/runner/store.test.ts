import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { deleteRun, isRunId, listRuns, loadRun, newRunId, writeMetaSync } from "../../../src/runner/store";
import type { RunMeta } from "../../../src/runner/types";
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
  assert.match(run?.meta.error ?? "", /meta\.json is missing or not valid JSON/);
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
