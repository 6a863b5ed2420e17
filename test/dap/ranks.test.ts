// Tensor parallelism in the debugger: the two-rank stand-in (test/fixtures/dap/tp_load.py: a parent
// and one spawn worker per rank, a gloo group when torch is there) through the shipped adapter. Each
// rank is a thread named by its process and rank; a phase stop holds every rank at the same phase
// and is reported once, with allThreadsStopped; Continue resumes them all.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { DebugProtocol } from "@vscode/debugprotocol";
import { torchPython } from "../lsp/tpStandIn";
import {
  bytesIn,
  fixture,
  launchArgs,
  launchWithBreakpoints,
  lineOf,
  stackOf,
  startAdapter,
  suiteRunsFolder,
  variablesOf,
  type Session,
  type StoppedEvent,
} from "./support";

const MiB = 1024 * 1024;
const WORKER_FILE = fixture("vllm", "v1", "worker", "gpu_worker.py");
const TORCH_PYTHON = torchPython();
/** vLLM's layout (rank from the gloo group) where torch is installed, else torchrun's (RANK in the environment). */
const COMMAND = TORCH_PYTHON ? [TORCH_PYTHON, "tp_load.py"] : ["python3", "tp_load.py", "--no-torch"];

const runs = suiteRunsFolder("ranks");

interface RankThread {
  rank: number;
  id: number;
  name: string;
}

async function rankThreads(session: Session): Promise<RankThread[]> {
  const threads = (await session.client.threadsRequest()).body.threads;
  return threads
    .flatMap((t) => {
      const m = /^pid (\d+) · rank (\d+) · VllmWorker-(\d+)$/.exec(t.name);
      return m ? [{ rank: Number(m[2]), id: t.id, name: t.name, named: Number(m[3]) }] : [];
    })
    .map(({ rank, id, name, named }) => {
      assert.equal(named, rank, "vLLM's process name carries the same rank");
      return { rank, id, name };
    })
    .sort((a, b) => a.rank - b.rank);
}

/** The next stop: one event for both ranks, each rank's top frame `frame`. */
async function sharedStop(session: Session, frame: string, phase: RegExp): Promise<RankThread[]> {
  const stopped = await session.events.next<StoppedEvent>("stopped");
  assert.equal(stopped.body.reason, "phase", stopped.body.description);
  assert.equal(stopped.body.allThreadsStopped, true, stopped.body.description);
  assert.match(stopped.body.description ?? "", phase);
  assert.match(stopped.body.description ?? "", /\(all 2 ranks\)$/);
  const ranks = await rankThreads(session);
  assert.deepEqual(
    ranks.map((r) => r.rank),
    [0, 1],
  );
  assert.ok(ranks.some((r) => r.id === stopped.body.threadId));
  for (const r of ranks) {
    const [top] = await stackOf(session, r.id);
    assert.equal(top?.name, frame, `rank ${r.rank} is paused at the same place`);
    assert.equal(top?.source?.path, WORKER_FILE);
  }
  return ranks;
}

async function sinceEntry(session: Session, thread: number): Promise<number> {
  const [top] = await stackOf(session, thread);
  const variables = await variablesOf(session, top!.id);
  return bytesIn(variables.get("Since scope entry")!.get("host_rss")!.value);
}

void test("a phase stop holds every rank at the same phase, is reported once, and Continue resumes all", async () => {
  const session = await startAdapter();
  try {
    await launchWithBreakpoints(
      session,
      launchArgs("tp_load.py", runs.dir, { command: COMMAND, stopAtPhases: ["load_weights", "kv_cache"] }),
    );

    const ranks = await sharedStop(
      session,
      "Worker.load_model · entry",
      /^Loading weights: entry of Worker\.load_model/,
    );
    const [rank0, rank1] = ranks;
    assert.equal(lineOf(WORKER_FILE, "def load_model"), (await stackOf(session, rank0!.id))[0]!.line);

    // Continue on one rank resumes both: they stop again together at the function's exit.
    const continued = await session.client.continueRequest({ threadId: rank0!.id });
    assert.equal(continued.body.allThreadsContinued, true);
    await sharedStop(session, "Worker.load_model · exit", /^Loading weights: exit of Worker\.load_model/);
    // Rank 1 holds 16 MiB more shard (gpu_worker.py): the per-rank numbers differ by it.
    const extra = (await sinceEntry(session, rank1!.id)) - (await sinceEntry(session, rank0!.id));
    assert.ok(Math.abs(extra - 16 * MiB) <= 3 * MiB, `rank 1 keeps ${(extra / MiB).toFixed(1)} MiB more`);

    // From the other rank this time.
    assert.equal(
      (await session.client.continueRequest({ threadId: rank1!.id })).body.allThreadsContinued,
      true,
    );
    await sharedStop(
      session,
      "Worker.initialize_from_config · entry",
      /^KV cache: entry of Worker\.initialize_from_config/,
    );
    await session.client.continueRequest({ threadId: rank0!.id });
    await sharedStop(
      session,
      "Worker.initialize_from_config · exit",
      /^KV cache: exit of Worker\.initialize_from_config/,
    );
    await session.client.continueRequest({ threadId: rank0!.id });

    const exited = await session.events.next<DebugProtocol.ExitedEvent>("exited");
    assert.equal(exited.body.exitCode, 0, session.events.output());
    await session.events.next("terminated");
    // Four shared stops, each reported once: no stop of a single rank came in between.
    assert.equal(session.events.all("stopped").length, 4);
    assert.match(session.events.output(), /tp load finished: exit codes \[0, 0\]/);
  } finally {
    await session.client.stop();
  }
});

void test("Pause on one rank pauses every rank in one stop; Continue on the other resumes both", async () => {
  const session = await startAdapter();
  try {
    await launchWithBreakpoints(
      session,
      launchArgs("tp_load.py", runs.dir, {
        command: [...COMMAND, "--steps", "1500"],
        probes: ["vllm.v1.worker.gpu_worker:Worker.execute_model"],
      }),
    );
    // Pause once both ranks step (past the load's collectives: a rank paused before one would hold
    // the other inside it, where no probe point can pause it).
    for (const rank of [0, 1]) {
      await session.events.next("output", (e: DebugProtocol.OutputEvent) =>
        e.body.output.includes(`tp worker rank=${rank} stepping`),
      );
    }
    const ranks = await rankThreads(session);
    assert.equal(ranks.length, 2, "both ranks are running");
    const [rank0, rank1] = ranks;

    await session.client.pauseRequest({ threadId: rank0!.id });
    const stopped = await session.events.next<StoppedEvent>("stopped");
    assert.equal(stopped.body.reason, "pause", stopped.body.description);
    assert.equal(stopped.body.allThreadsStopped, true, stopped.body.description);
    assert.match(stopped.body.description ?? "", /\(all 2 ranks\)$/);
    for (const r of ranks) {
      const [top] = await stackOf(session, r.id);
      assert.match(top?.name ?? "", /^Worker\.execute_model · (entry|exit)$/, `rank ${r.rank} is paused`);
    }

    const continued = await session.client.continueRequest({ threadId: rank1!.id });
    assert.equal(continued.body.allThreadsContinued, true);
    await session.client.terminateRequest();
    await session.events.next("terminated");
    assert.equal(session.events.all("stopped").length, 1, "one stop for both ranks");
  } finally {
    await session.client.stop();
  }
});
