// Tensor parallelism on a CPU: the two-rank stand-in (a parent, one spawn worker per rank, a gloo
// process group when torch is there) under the real probe. Every event of a worker carries the rank
// torch.distributed gave that worker; the real language server's lens names the worst rank and the
// spread, its hover lists each rank.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { processLabel } from "../../src/model/processes";
import { rankSpread, rankSummaries } from "../../src/model/ranks";
import type { ProbeEvent } from "../../src/protocol/events";
import { lensTitle, targetState } from "../../src/server/render";
import { LspTestClient, fileUri } from "./lspTestClient";
import { MiB, TP_DIR, TP_WORKER_FILE, runTpStandIn, torchPython, type TpRun } from "./tpStandIn";

const TORCH_PYTHON = torchPython();
const WORKER_LINES = readFileSync(TP_WORKER_FILE, "utf8").split("\n");
const defLine = (name: string) => WORKER_LINES.findIndex((l) => l.includes(`def ${name}(`));

/** Events that belong to a probed scope: the rank must be known on each once the group exists. */
const SCOPE_TYPES = new Set(["enter", "exit", "paused", "resumed", "oom", "sites"]);

function checkRanks(run: TpRun, via: "torch.distributed" | "env"): void {
  assert.deepEqual(
    run.workers.map((w) => [w.rank, w.via]),
    [
      [0, via],
      [1, via],
    ],
  );
  const pids = new Set(run.workers.map((w) => w.pid));
  assert.equal(pids.size, 2, "one process per rank");
  for (const worker of run.workers) {
    const own = run.events.filter((e) => e.pid === worker.pid);
    assert.ok(own.length > 10, `rank ${worker.rank} sent events`);
    for (const e of own) {
      if (e.rank !== null)
        assert.equal(e.rank, worker.rank, `${e.type} of pid ${e.pid}: ${JSON.stringify(e)}`);
      assert.equal(e.device, null, "no CUDA device on this machine");
    }
    if (via === "env") {
      // Under torchrun the rank is in the environment before Python starts: every event has it.
      assert.deepEqual(
        own.filter((e) => e.rank !== worker.rank).map((e) => e.type),
        [],
      );
    } else {
      // vLLM's workers get their rank from the group (init_device): every scope event after it has it.
      const joined = own.findIndex((e) => e.type === "exit" && (e as { target: string }).target === "init");
      assert.ok(joined > 0, "init_device returned");
      const after = own.slice(joined).filter((e) => SCOPE_TYPES.has(e.type));
      assert.ok(after.length >= 8);
      assert.deepEqual(
        after.filter((e) => e.rank !== worker.rank).map((e) => e.type),
        [],
      );
    }
    const info = run.model.processes.get(worker.pid)!;
    assert.equal(info.rank, worker.rank);
    assert.equal(info.name, `VllmWorker-${worker.rank}`);
    assert.equal(processLabel(info), `pid ${worker.pid} · rank ${worker.rank} · VllmWorker-${worker.rank}`);
  }
  const parent = [...run.model.processes.values()].find((p) => p.origin === "main")!;
  assert.ok(parent && !pids.has(parent.pid));
  const parentEvents: ProbeEvent[] = run.events.filter((e) => e.pid === parent.pid);
  assert.ok(
    parentEvents.every((e) => e.rank === null),
    "the parent has no rank",
  );
}

/** The stand-in's sizes (gpu_worker.py): rank r keeps 48 + 16·r MiB of shard and 16 + 8·r MiB of KV cache. */
function checkPerRankNumbers(run: TpRun): void {
  const near = (actual: number, expected: number, what: string) =>
    assert.ok(
      Math.abs(actual - expected) <= 3 * MiB,
      `${what}: ${(actual / MiB).toFixed(1)} MiB, expected ${(expected / MiB).toFixed(1)} MiB (host RSS)`,
    );
  const load = rankSummaries(run.model, "load");
  assert.deepEqual(
    load.map((r) => [r.rank, r.pids, r.calls]),
    run.workers.map((w) => [w.rank, [w.pid], 1]),
  );
  // load_model keeps the shard and 2 workspaces of 8 MiB.
  near(load[0]!.retained, (48 + 16) * MiB, "rank 0 load_model");
  near(load[1]!.retained, (64 + 16) * MiB, "rank 1 load_model");
  const kv = rankSummaries(run.model, "kv");
  near(kv[1]!.retained - kv[0]!.retained, 8 * MiB, "rank 1's extra KV cache");
  assert.equal(rankSpread(run.model, "load")!.worst.rank, 1);
  assert.equal(rankSpread(run.model, "kv")!.worst.rank, 1);
}

async function checkEditor(run: TpRun): Promise<void> {
  const client = await LspTestClient.start({ initializationOptions: { sourceRoots: [TP_DIR] } });
  try {
    const result = await client.setRun({ run: { id: "tp2", dir: run.runDir } });
    assert.equal(result.error, undefined);
    const uri = fileUri(TP_WORKER_FILE);
    await client.open(uri, WORKER_LINES.join("\n"));
    const lenses = await client.codeLenses(uri);
    const title = lenses.find((l) => l.range.start.line === defLine("load_model"))?.command?.title ?? "";
    assert.equal(title, lensTitle(targetState(run.model, "load")));
    assert.match(
      title,
      /^\+[\d.]+ MiB host RSS on rank 1 · 2 ranks · \+[\d.]+ to \+[\d.]+ MiB · peak \+[\d.]+ MiB \(sampled\) · 2 calls · 2 processes$/,
    );
    const hover = await client.hover(uri, defLine("load_model"));
    const text = (hover?.contents as { value: string }).value;
    const rankRows = text
      .split("\n")
      .filter((l) => /^\| (\*\*)?[01](\*\*)?( \(worst\))? \| \d+ \| 1 \| \+/.test(l));
    assert.equal(rankRows.length, 2, text);
    assert.match(rankRows[1]!, new RegExp(`^\\| \\*\\*1\\*\\* \\(worst\\) \\| ${run.workers[1]!.pid} \\|`));
    // The finding on load_model is the worst rank's (what one card keeps), not the sum over ranks.
    const diagnostics = await client.waitForDiagnostics(uri, (d) => d.some((x) => x.code === "retained"));
    const retained = diagnostics.filter(
      (d) => d.code === "retained" && d.range.start.line === defLine("load_model"),
    );
    assert.equal(retained.length, 1);
    assert.match(
      retained[0]!.message,
      /^retains [\d.]+ MiB after return \(host RSS, 1 call, on rank 1, the most of 2 ranks\)$/,
    );
  } finally {
    await client.stop();
  }
}

void describe("ranks from the environment (torchrun's layout; no torch needed)", () => {
  let run: TpRun;
  before(async () => {
    run = await runTpStandIn("python3", ["--no-torch"]);
  });
  after(() => run?.remove());

  void test("every event of each worker carries its RANK; the parent has none", () => checkRanks(run, "env"));
  void test("per-rank numbers: rank 1 keeps more, and is the worst", () => checkPerRankNumbers(run));
  void test("the lens names the worst rank and the range; the hover lists each rank", () => checkEditor(run));
});

void describe(
  "ranks from torch.distributed (vLLM's layout: gloo group, rank passed to the worker)",
  {
    skip: TORCH_PYTHON ? false : "no Python with torch (set MEMLENS_TORCH_PYTHON)",
  },
  () => {
    let run: TpRun;
    before(async () => {
      run = await runTpStandIn(TORCH_PYTHON!);
    });
    after(() => run?.remove());

    void test("every scope event of each worker carries torch.distributed.get_rank()", () =>
      checkRanks(run, "torch.distributed"));
    void test("per-rank numbers: rank 1 keeps more, and is the worst", () => checkPerRankNumbers(run));
    void test("the lens names the worst rank and the range; the hover lists each rank", () =>
      checkEditor(run));
  },
);
