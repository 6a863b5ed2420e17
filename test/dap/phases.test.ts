// Stepping through load phases: the shipped adapter runs the real probe around a stand-in of
// vLLM's load path (test/fixtures/dap/vllm), stopping at the catalog's hotspots.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { DebugProtocol } from "@vscode/debugprotocol";
import {
  bytesIn,
  fixture,
  launchArgs,
  launchWithBreakpoints,
  lineOf,
  perSourceGroups,
  stackOf,
  startAdapter,
  suiteRunsFolder,
  variablesOf,
  type Session,
  type StoppedEvent,
} from "./support";

const MiB = 1024 * 1024;
const RUNNER_FILE = fixture("vllm", "v1", "worker", "gpu_model_runner.py");
const MARLIN_FILE = fixture("vllm", "model_executor", "layers", "quantization", "utils", "marlin_utils.py");
const WEIGHT_BYTES = 96 * MiB;

const runs = suiteRunsFolder("phases");

async function expectStop(session: Session, reason: string, file: string, line: number, frameName: RegExp) {
  const stopped = await session.events.next<StoppedEvent>("stopped");
  assert.equal(stopped.body.reason, reason, `stop reason (${stopped.body.description})`);
  const threadId = stopped.body.threadId!;
  const [top] = await stackOf(session, threadId);
  assert.ok(top, "a stopped process has a frame");
  assert.equal(top.source?.path, file);
  assert.equal(top.line, line);
  assert.match(top.name, frameName);
  return { stopped, threadId, top };
}

void test("Continue walks the stopAtPhases hotspots; Step Into and Step Over stop inside and at the exit", async () => {
  const session = await startAdapter();
  try {
    await launchWithBreakpoints(
      session,
      launchArgs("load_phases.py", runs.dir, { stopAtPhases: ["load_weights", "profile"] }),
    );
    const loadModelLine = lineOf(RUNNER_FILE, "def load_model");
    const workspaceLine = lineOf(MARLIN_FILE, "def marlin_make_workspace_new");

    const entry = await expectStop(
      session,
      "phase",
      RUNNER_FILE,
      loadModelLine,
      /GPUModelRunner\.load_model · entry/,
    );
    assert.match(
      entry.stopped.body.description ?? "",
      /Loading weights: entry of GPUModelRunner\.load_model/,
    );
    const atEntry = await variablesOf(session, entry.top.id);
    assert.deepEqual([...atEntry.keys()], ["Now", "Since scope entry", "Per source"]);
    assert.ok(
      bytesIn(atEntry.get("Now")!.get("host_rss")!.value) > 0,
      "host RSS is read on a machine without a GPU",
    );

    // Step Into: the next probed scope inside load_model is the workspace hotspot (not a stop phase).
    await session.client.stepInRequest({ threadId: entry.threadId });
    const into = await expectStop(
      session,
      "step",
      MARLIN_FILE,
      workspaceLine,
      /marlin_make_workspace_new · entry/,
    );
    const frames = await stackOf(session, into.threadId);
    assert.deepEqual(
      frames.map((f) => f.name),
      ["marlin_make_workspace_new · entry", "GPUModelRunner.load_model"],
      "the probe's scope stack, innermost first",
    );

    // Step Over: to the exit of this scope, which allocated 2 workspaces of 8 MiB.
    await session.client.nextRequest({ threadId: into.threadId });
    const over = await expectStop(
      session,
      "step",
      MARLIN_FILE,
      workspaceLine,
      /marlin_make_workspace_new · exit/,
    );
    const workspace = await variablesOf(session, over.top.id);
    assert.ok(bytesIn(workspace.get("Since scope entry")!.get("host_rss")!.value) >= 16 * MiB - 1 * MiB);

    // Continue: the exit of load_model, with the weights' host memory since its entry.
    await session.client.continueRequest({ threadId: over.threadId });
    const exit = await expectStop(
      session,
      "phase",
      RUNNER_FILE,
      loadModelLine,
      /GPUModelRunner\.load_model · exit/,
    );
    const atExit = await variablesOf(session, exit.top.id);
    const grown = bytesIn(atExit.get("Since scope entry")!.get("host_rss")!.value);
    assert.ok(grown >= WEIGHT_BYTES, `host_rss since entry ${grown} >= ${WEIGHT_BYTES}`);
    assert.match(atExit.get("Now")!.get("host_rss")!.value, /^\d+\.\d\d MiB \([\d,]+ B\)$/);
    assert.equal(atExit.get("Now")!.get("host_rss")!.type, "host");
    const peak = bytesIn(atExit.get("Peak in scope")!.get("host_rss")!.value);
    const rssAtEntry = bytesIn(atEntry.get("Now")!.get("host_rss")!.value);
    assert.ok(peak >= rssAtEntry + WEIGHT_BYTES, `sampled peak ${peak} >= entry ${rssAtEntry} + weights`);

    // "Per source" groups the readings by where they come from; here only the host has any.
    const groups = await perSourceGroups(session, exit.top.id, "Per source");
    assert.deepEqual(
      groups.map((g) => g.name),
      ["host"],
    );
    const hostReadings = groups[0]!.readings;
    assert.ok(
      hostReadings.includes("host_rss") && hostReadings.includes("host_rss since entry"),
      hostReadings.join(),
    );

    // Continue: the next phase.
    await session.client.continueRequest({ threadId: exit.threadId });
    const profile = await expectStop(
      session,
      "phase",
      RUNNER_FILE,
      lineOf(RUNNER_FILE, "def profile_run"),
      /GPUModelRunner\.profile_run · entry/,
    );
    assert.match(profile.stopped.body.description ?? "", /Memory profiling run/);
    await session.client.continueRequest({ threadId: profile.threadId });
    const profileExit = await session.events.next<StoppedEvent>("stopped");
    await session.client.continueRequest({ threadId: profileExit.body.threadId! });

    const exited = await session.events.next<DebugProtocol.ExitedEvent>("exited");
    assert.equal(exited.body.exitCode, 0);
    await session.events.next("terminated");
    assert.match(session.events.output(), /load finished/, "the target's stdout reaches the debug console");
  } finally {
    await session.client.stop();
  }
});

void test("Pause stops a running process at its next probe point", async () => {
  const session = await startAdapter();
  try {
    await launchWithBreakpoints(
      session,
      launchArgs("tick_forever.py", runs.dir, { probes: ["steps.work:tick"] }),
    );
    const started = await session.events.next<DebugProtocol.ThreadEvent>(
      "thread",
      (e) => e.body.reason === "started",
    );
    await session.client.pauseRequest({ threadId: started.body.threadId });
    const paused = await expectStop(
      session,
      "pause",
      fixture("steps", "work.py"),
      lineOf(fixture("steps", "work.py"), "def tick"),
      /^tick · (entry|exit)$/,
    );
    assert.equal(paused.threadId, started.body.threadId);
    await session.client.terminateRequest();
    await session.events.next("terminated");
  } finally {
    await session.client.stop();
  }
});

void test("a stop phase stops at its first scope's entry and exit, not at every later call", async () => {
  const session = await startAdapter();
  try {
    await launchWithBreakpoints(
      session,
      launchArgs("repeat_phase.py", runs.dir, { stopAtPhases: ["load_weights"] }),
    );
    const loadModelLine = lineOf(RUNNER_FILE, "def load_model");
    const entry = await expectStop(session, "phase", RUNNER_FILE, loadModelLine, /load_model · entry/);
    await session.client.continueRequest({ threadId: entry.threadId });
    const exit = await expectStop(session, "phase", RUNNER_FILE, loadModelLine, /load_model · exit/);
    await session.client.continueRequest({ threadId: exit.threadId });
    // The second and third load_model calls run through: the next event is the end of the run.
    const exited = await session.events.next<DebugProtocol.ExitedEvent>("exited");
    assert.equal(exited.body.exitCode, 0);
    assert.match(session.events.output(), /loaded three times/);
    assert.equal(session.events.all("stopped").length, 2, "two stops: entry and exit of the first call");
  } finally {
    await session.client.stop();
  }
});
