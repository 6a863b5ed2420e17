// The run registry's entries: a runs folder is listed from meta.json alone, a run's events are
// read on its first loadModel() (once, shared by callers that ask at the same time), and which
// run the views show is decided without reading any events.
import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { RunModel } from "../../../src/model/runModel";
import type { ProbeEvent } from "../../../src/protocol/events";
import { parseEventsText } from "../../../src/protocol/reader";
import {
  chooseCurrentRun,
  hasEvents,
  listStoredRuns,
  loadedRunEntry,
  StoredRunEntry,
  type EventsReport,
} from "../../../src/host/runEntries";
import type { RunMeta } from "../../../src/runner/types";

const FIXTURE = path.join(__dirname, "../../fixtures/events/gpt_oss_load.jsonl");
const fixtureText = readFileSync(FIXTURE, "utf8");
const fixtureEvents: ProbeEvent[] = parseEventsText(fixtureText).events;

let root: string;
before(() => {
  root = mkdtempSync(path.join(tmpdir(), "memlens-run-entries-"));
});
after(() => rmSync(root, { recursive: true, force: true }));

function meta(id: string, started: string, extra: Partial<RunMeta> = {}): RunMeta {
  return {
    id,
    label: `run ${id}`,
    started,
    host: null,
    command: ["python3", "x.py"],
    status: "finished",
    ...extra,
  };
}

/** A runs folder with the given runs (events: text of events.jsonl, or none). */
function runsFolder(name: string, runs: { id: string; started: string; events?: string }[]): string {
  const dir = path.join(root, name);
  for (const run of runs) {
    const runDir = path.join(dir, run.id);
    mkdirSync(runDir, { recursive: true });
    writeFileSync(path.join(runDir, "meta.json"), JSON.stringify(meta(run.id, run.started)));
    if (run.events !== undefined) writeFileSync(path.join(runDir, "events.jsonl"), run.events);
  }
  return dir;
}

const OLD = "20251126-100000-000-aaaaaa";
const NEW = "20251126-110000-000-bbbbbb";
const NEWEST = "20251126-120000-000-cccccc";

void test("listing reads meta.json and the size of events.jsonl, not the events", async () => {
  const dir = runsFolder("list", [
    { id: OLD, started: "2025-11-26T10:00:00.000Z", events: fixtureText },
    { id: NEW, started: "2025-11-26T11:00:00.000Z", events: fixtureText },
    { id: NEWEST, started: "2025-11-26T12:00:00.000Z" },
  ]);
  const entries = await listStoredRuns(dir);
  assert.deepEqual(
    entries.map((e) => e.id),
    [NEWEST, NEW, OLD],
  );
  for (const entry of entries) assert.equal(entry.model, undefined, `${entry.id} is not read at listing`);
  assert.deepEqual(
    entries.map((e) => e.eventsBytes),
    [0, Buffer.byteLength(fixtureText), Buffer.byteLength(fixtureText)],
  );
  assert.equal(entries[1]!.meta.label, `run ${NEW}`);

  // The views show the newest run with events; deciding that reads nothing.
  const current = chooseCurrentRun(entries, undefined, () => false);
  assert.equal(current?.id, NEW);
  assert.deepEqual(
    entries.map((e) => e.model),
    [undefined, undefined, undefined],
  );
  // A pick wins over "newest with events", a live run over both.
  assert.equal(chooseCurrentRun(entries, entries[2], () => false)?.id, OLD);
  assert.equal(chooseCurrentRun(entries, entries[2], (e) => e.id === NEWEST)?.id, NEWEST);
});

void test("loadModel reads the events once; callers at the same time share the read", async () => {
  const dir = runsFolder("load", [{ id: OLD, started: "2025-11-26T10:00:00.000Z", events: fixtureText }]);
  const reports: EventsReport[] = [];
  const [entry] = await listStoredRuns(dir, { onReport: (_e, report) => reports.push(report) });
  assert.ok(entry);
  const [a, b] = await Promise.all([entry.loadModel(), entry.loadModel()]);
  assert.equal(a, b, "one model for both callers");
  assert.equal(entry.model, a);
  assert.equal(a.eventCount, fixtureEvents.length);
  assert.equal(a.calls.length, RunModel.fromEvents(fixtureEvents).calls.length);
  assert.deepEqual(reports, [
    { file: path.join(dir, OLD, "events.jsonl"), malformed: 0, duplicates: 0, versionError: undefined },
  ]);
  // Later calls get the parsed model; the file is not read again.
  appendFileSync(path.join(dir, OLD, "events.jsonl"), fixtureText);
  assert.equal(await entry.loadModel(), a);
  assert.equal(a.eventCount, fixtureEvents.length);
  assert.equal(reports.length, 1);
});

void test("a run without events.jsonl loads as empty and is not chosen over one with events", async () => {
  const dir = runsFolder("empty", [
    { id: OLD, started: "2025-11-26T10:00:00.000Z", events: fixtureText },
    { id: NEW, started: "2025-11-26T11:00:00.000Z" },
  ]);
  const entries = await listStoredRuns(dir);
  const empty = entries.find((e) => e.id === NEW)!;
  assert.equal(hasEvents(empty), false);
  const model = await empty.loadModel();
  assert.equal(model.eventCount, 0);
  assert.equal(hasEvents(empty), false);
  assert.equal(chooseCurrentRun(entries, undefined, () => false)?.id, OLD);
});

void test("malformed lines and a newer protocol are reported; the events before them are kept", async () => {
  const lines = fixtureText.split("\n").filter((l) => l !== "");
  const text = [
    ...lines.slice(0, 5),
    "not json at all",
    ...lines.slice(5, 10),
    JSON.stringify({ v: 2, type: "start", ts: 1, pid: 1 }),
    ...lines.slice(10),
  ].join("\n");
  const dir = runsFolder("bad", [{ id: OLD, started: "2025-11-26T10:00:00.000Z", events: text }]);
  const reports: EventsReport[] = [];
  const [entry] = await listStoredRuns(dir, { onReport: (_e, report) => reports.push(report) });
  const model = await entry!.loadModel();
  assert.equal(model.eventCount, 10);
  assert.equal(reports.length, 1);
  assert.equal(reports[0]!.malformed, 1);
  assert.match(reports[0]!.versionError?.message ?? "", /protocol v2 from the probe; this MemLens reads v1/);
});

void test("an unreadable events.jsonl rejects with the file's name; the next call tries again", async () => {
  const dir = runsFolder("unreadable", [{ id: OLD, started: "2025-11-26T10:00:00.000Z" }]);
  const eventsPath = path.join(dir, OLD, "events.jsonl");
  mkdirSync(eventsPath); // a folder where the file should be: EISDIR
  const [entry] = await listStoredRuns(dir);
  await assert.rejects(entry!.loadModel(), (error: Error) => {
    assert.match(
      error.message,
      new RegExp(`Cannot read ${eventsPath.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`),
    );
    assert.match(error.message, /delete the run/);
    return true;
  });
  assert.equal(entry!.model, undefined);
  rmSync(eventsPath, { recursive: true });
  writeFileSync(eventsPath, fixtureText);
  assert.equal((await entry!.loadModel()).eventCount, fixtureEvents.length);
});

void test("lines longer than a read chunk, with multi-byte text across chunk edges, read whole", async () => {
  const long = "显存不足 ".repeat(300_000); // ~3.9 MB of UTF-8, several 1 MiB chunks
  const log = { v: 1, type: "log", ts: 5, pid: 100, rank: null, device: null, stream: "stderr", line: long };
  const text = `${JSON.stringify(fixtureEvents[0])}\n${JSON.stringify(log)}\n`;
  const dir = runsFolder("long", [{ id: OLD, started: "2025-11-26T10:00:00.000Z", events: text }]);
  const [entry] = await listStoredRuns(dir);
  const model = await entry!.loadModel();
  assert.equal(model.eventCount, 2);
  assert.equal(model.logs[0]?.line, long);
});

void test("a run started in this window has its model from the start", async () => {
  const model = new RunModel();
  const entry = loadedRunEntry({ id: NEW, dir: path.join(root, NEW), meta: meta(NEW, ""), model });
  assert.equal(entry.model, model);
  assert.equal(await entry.loadModel(), model);
  assert.equal(hasEvents(entry), false);
  model.add(fixtureEvents[0]!);
  assert.equal(hasEvents(entry), true);
  assert.ok(!(entry instanceof StoredRunEntry));
});
