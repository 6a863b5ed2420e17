// One run rendered by every surface — the lens text, the memory panel's view model, the checklist,
// `memlens report`, the debugger's Variables — and the same numbers on each. Each surface reads the
// run the way it does in the product: the language server's run state and the registry's entry
// from the run folder, the CLI from its command line, the debugger's engine from a run handle.
//
// The run: MEMLENS_ONE_RUN (a run folder, or "fixture"), else the real vLLM load recorded on an
// H200, else the fixture of a gpt-oss load.
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { before, test } from "node:test";
import { knownModelBudget } from "../../src/budget/modelBudget";
import { loadBundledCatalog } from "../../src/catalog/catalog";
import { evaluateChecklist } from "../../src/checklist/rules";
import { main } from "../../src/cli/main";
import { DebugEngine } from "../../src/debug/engine";
import {
  deltaVariables,
  nowVariables,
  peakVariables,
  type ReadingVariable,
} from "../../src/debug/readingsView";
import { sourceLineReader } from "../../src/files/read";
import { StoredRunEntry } from "../../src/host/runEntries";
import { summaryLine } from "../../src/model/format";
import { readingsDelta } from "../../src/model/readings";
import type { RunModel, TargetSummary } from "../../src/model/runModel";
import { budgetForRun } from "../../src/panel/budgetSource";
import { buildSnapshot } from "../../src/panel/viewModel";
import type { ExitEvent, PausedEvent, ProbeEvent } from "../../src/protocol/events";
import { EventsFollower } from "../../src/runner/eventsFile";
import { eventsFileOf, readRunMeta } from "../../src/runner/store";
import type { RunHandle, RunMeta, RunOutcome } from "../../src/runner/types";
import { lensTitle, targetState } from "../../src/server/render";
import { RunState } from "../../src/server/runState";
import { SETTING_DEFAULTS } from "../../src/settings/settings";
import type { HotspotRow } from "../../webview/protocol";
import { tempDir } from "../remote/helpers";

const REPO = path.resolve(__dirname, "../..");
const RECORDED = path.join(REPO, "media/demo/runs/gpt-oss-20b-h200");
const FIXTURE = path.join(REPO, "test/fixtures/events/gpt_oss_load.jsonl");
const MODEL = "openai/gpt-oss-20b";
const GiB = 1024 ** 3;

/** The run folder every surface reads. */
async function theRun(): Promise<string> {
  const asked = process.env.MEMLENS_ONE_RUN;
  if (asked !== undefined && asked !== "fixture") return path.resolve(asked);
  if (asked === undefined && existsSync(path.join(RECORDED, "meta.json"))) return RECORDED;
  // The fixture is an events file: give it a folder with the meta.json the runner would write.
  const dir = path.join(tempDir("one-run"), "20260101-000000-000-f1f1f1");
  mkdirSync(dir);
  copyFileSync(FIXTURE, path.join(dir, "events.jsonl"));
  let plan: { targets?: { id: string; function?: string; line?: string }[] } = {};
  await new EventsFollower(path.join(dir, "events.jsonl")).read((e) => {
    if (e.type === "start") plan = e.plan as typeof plan;
  }, true);
  const meta: RunMeta = {
    id: path.basename(dir),
    label: "gpt-oss fixture",
    started: "2026-01-01T00:00:00.000Z",
    host: null,
    command: ["python3"],
    status: "finished",
    targets: (plan.targets ?? []).map((t) => ({ id: t.id, spec: t.function ?? t.line ?? t.id })),
  };
  writeFileSync(path.join(dir, "meta.json"), JSON.stringify(meta));
  return dir;
}

/** The panel's row as the lens words a target. */
function rowLine(row: HotspotRow): string {
  const summary: TargetSummary = { ...row, perProcess: row.perProcess.map((p) => ({ ...p })) };
  return summaryLine(summary);
}

/** Exact bytes of a debugger value: "9.21 GiB (9,892,345,856 B)", "+512 B", "−1.00 MiB (−1,048,576 B)". */
function bytesOf(variable: ReadingVariable | undefined): number {
  assert.ok(variable, "the variable is shown");
  const match = /([+−-]?)([\d,]+) B\)?$/.exec(variable.value);
  assert.ok(match, variable.value);
  const n = Number(match[2]!.replace(/,/g, ""));
  return match[1] === "−" || match[1] === "-" ? -n : n;
}

interface Report {
  verdict: string;
  budget: unknown;
  measurements: { label: string; value: string; source: string }[];
  checklist: { id: string; state: string; answer: string; evidence: unknown[] }[];
}

let dir: string;
let meta: RunMeta;
let model: RunModel;
let rows: HotspotRow[];

before(async () => {
  dir = await theRun();
  meta = await readRunMeta(dir, { isLive: () => true });
  // The Runs view's entry of a stored run, read as the registry reads it.
  const entry = new StoredRunEntry(meta.id, dir, meta, statSync(eventsFileOf(dir)).size);
  model = await entry.loadModel();
  rows = buildSnapshot({ id: meta.id, meta, model }).hotspots;
  assert.ok(rows.length > 0, "the run measured something");
});

void test("the lens, the panel and `memlens report` show each target with the same name and numbers", async () => {
  const state = await RunState.load({ id: meta.id, dir }, loadBundledCatalog(), []);
  let out = "";
  const code = await main(
    ["report", dir, "--json", "--model", MODEL],
    (t) => (out += t),
    () => undefined,
  );
  assert.equal(code, 0);
  const report = JSON.parse(out) as Report;
  const probed = report.measurements.filter((m) => m.source.startsWith("probe "));
  assert.deepEqual(
    probed.map((m) => [m.label, m.value]),
    rows.map((row) => [row.label, rowLine(row)]),
    "the report's rows are the panel's hotspots",
  );
  for (const row of rows) {
    assert.equal(lensTitle(targetState(state.model, row.target)), rowLine(row), `the lens of ${row.label}`);
  }
});

void test("the checklist in the editor answers as `memlens report` does, and the budget is the same budget", async () => {
  const checkpoint = knownModelBudget(MODEL);
  let out = "";
  assert.equal(
    await main(
      ["report", dir, "--json", "--model", MODEL],
      (t) => (out += t),
      () => undefined,
    ),
    0,
  );
  const report = JSON.parse(out) as Report;
  const answers = evaluateChecklist({
    run: model,
    meta: meta.targets,
    model: checkpoint,
    lineText: sourceLineReader(),
  });
  assert.deepEqual(
    report.checklist.map((r) => [r.id, r.state, r.answer, r.evidence]),
    JSON.parse(JSON.stringify(answers.map((r) => [r.item.id, r.state, r.answer, r.evidence]))),
  );
  // Both with what the settings give by default: the 16 GiB card and gpu_memory_utilization 0.98
  // (the CLI defaulted to 0.9, so its verdict differed from the panel's for one run).
  const panel = budgetForRun(
    { id: meta.id, meta, model },
    {
      checkpoint,
      targetBytes: SETTING_DEFAULTS.targetGpuGiB * GiB,
      gpuMemoryUtilization: SETTING_DEFAULTS.gpuMemoryUtilization,
    },
  );
  assert.ok(panel.budget, panel.unavailable);
  assert.deepEqual(report.budget, JSON.parse(JSON.stringify(panel.budget)));
  assert.equal(report.verdict, panel.budget.verdict);
});

/** A run handle that hands the recorded events to the engine, as the runner hands the probe's. */
function replay(): { handle: RunHandle; emit: (event: ProbeEvent) => void } {
  const listeners: ((event: ProbeEvent) => void)[] = [];
  let end: (outcome: RunOutcome) => void = () => undefined;
  const done = new Promise<RunOutcome>((resolve) => (end = resolve));
  return {
    handle: {
      id: meta.id,
      dir,
      onEvent: (listener) => {
        listeners.push(listener);
        return () => undefined;
      },
      onStderr: () => () => undefined,
      send: () => undefined,
      stop: () => {
        end({ meta, stderrTail: [] });
        return done;
      },
      done,
    },
    emit: (event) => listeners.forEach((listener) => listener(event)),
  };
}

/** The probe's stop at a scope's exit: it pauses with the exit's readings, before it sends the exit. */
function pausedAt(exit: ExitEvent, before: ExitEvent["before"]): PausedEvent {
  return {
    v: exit.v,
    ts: exit.ts,
    pid: exit.pid,
    rank: exit.rank,
    device: exit.device,
    type: "paused",
    target: exit.target,
    scope_id: exit.scope_id,
    at: "exit",
    reason: "pause_target",
    stack: [{ target: exit.target, scope_id: exit.scope_id, call: exit.call }],
    readings: exit.after,
    since_entry: readingsDelta(exit.after, before),
    peak: exit.peak,
    process_name: exit.process_name,
  };
}

void test("the debugger's Variables at each scope's exit add up to the numbers the panel and the lens show", async () => {
  // Torch-allocated targets: their peaks are exact (host RSS peaks are sampled).
  const measured = new Map(rows.filter((r) => r.source === "allocated").map((r) => [r.target, r]));
  assert.ok(measured.size > 0, "the run has targets measured by torch's allocator");
  const engine = new DebugEngine({
    description: { python: "python3" },
    catalog: loadBundledCatalog().data,
    stopAtPhases: [],
    probes: [],
    runsDir: dir,
    label: meta.label,
    sourceRoots: [],
  });
  const { handle, emit } = replay();
  await engine.start(async () => handle);
  const shown = new Map<string, { sinceEntry: number; peakAboveEntry: number }>();
  const events: ProbeEvent[] = [];
  await new EventsFollower(eventsFileOf(dir)).read((e) => events.push(e), true);
  for (const event of events) {
    const row = event.type === "exit" ? measured.get(event.target) : undefined;
    if (event.type === "exit" && row) {
      const before = engine.model.scope(event.pid, event.scope_id)!.before;
      emit(pausedAt(event, before));
      const [frame] = engine.stack(event.pid);
      assert.ok(frame?.name.startsWith(row.label), `${frame?.name} is ${row.label}`);
      assert.ok(frame);
      const readings = engine.frameReadings(event.pid, frame.index)!;
      const since = bytesOf(deltaVariables(readings.sinceEntry!).find((v) => v.name === "allocated"));
      const peak = bytesOf(peakVariables(readings.peak!).find((v) => v.name === "allocated"));
      const entry = bytesOf(nowVariables(before).find((v) => v.name === "allocated"));
      const sum = shown.get(row.target) ?? { sinceEntry: 0, peakAboveEntry: Number.NEGATIVE_INFINITY };
      shown.set(row.target, {
        sinceEntry: sum.sinceEntry + since,
        peakAboveEntry: Math.max(sum.peakAboveEntry, peak - entry),
      });
      const { v, ts, pid, rank, device, scope_id } = event;
      emit({ v, ts, pid, rank, device, scope_id, type: "resumed", mode: "run" });
    }
    emit(event);
  }
  for (const row of measured.values()) {
    const seen = shown.get(row.target);
    if (row.calls === row.openCalls) continue;
    assert.ok(seen, `the debugger stopped at the exits of ${row.label}`);
    assert.equal(seen.sinceEntry, row.retained, `Σ Since scope entry of ${row.label} is its retained`);
    assert.equal(seen.peakAboveEntry, row.peakAboveBeforeMax, `Peak in scope − entry of ${row.label}`);
  }
  await engine.stop();
});
