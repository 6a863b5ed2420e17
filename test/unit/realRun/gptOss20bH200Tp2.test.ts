// The recorded real vLLM load of gpt-oss-20b with tensor_parallel_size=2 on two H200s
// (media/demo/runs/gpt-oss-20b-h200-tp2, recorded with scripts/vllm/gpu-run.sh on a two-GPU host):
// one worker process per rank, every scope event of a worker carrying its rank and device, the lens's
// worst rank and spread, the budget's verdict per rank. Skipped until the run is recorded; the same
// checks run on a CPU stand-in in test/lsp/ranks.test.ts.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { knownModelBudget } from "../../../src/budget/modelBudget";
import { computeBudget } from "../../../src/budget/view";
import { rankSpread, runRanks } from "../../../src/model/ranks";
import { RunModel } from "../../../src/model/runModel";
import { loadRun } from "../../../src/runner/store";
import { lensTitle, targetState } from "../../../src/server/render";
import { lineSites } from "../../../src/model/sites";
import { siteInlayLabel } from "../../../src/server/sitesRender";

const TP2 = path.resolve(__dirname, "..", "..", "..", "media", "demo", "runs", "gpt-oss-20b-h200-tp2");
const SKIP = existsSync(path.join(TP2, "meta.json")) ? false : `not recorded yet: ${TP2}`;
const SCOPE_TYPES = new Set(["enter", "exit", "paused", "oom", "sites"]);
const GiB = 1024 ** 3;

async function recorded() {
  const stored = await loadRun(TP2);
  assert.equal(stored.malformed.length, 0, "every line is an event");
  return { stored, run: RunModel.fromEvents(stored.events) };
}

void test(
  "one worker per rank, each on its own GPU, every scope event carrying its rank",
  { skip: SKIP },
  async () => {
    const { stored, run } = await recorded();
    assert.deepEqual(runRanks(run), [0, 1]);
    const workers = [...run.processes.values()]
      .filter((p) => p.rank !== null && p.name?.startsWith("VllmWorker"))
      .sort((a, b) => a.rank! - b.rank!);
    assert.deepEqual(
      workers.map((p) => [p.name, p.rank, p.device]),
      [
        ["VllmWorker-0", 0, 0],
        ["VllmWorker-1", 1, 1],
      ],
    );
    for (const worker of workers) {
      const scoped = stored.events.filter((e) => e.pid === worker.pid && SCOPE_TYPES.has(e.type));
      assert.ok(scoped.length > 100, `rank ${worker.rank} ran the load path`);
      // Before init_device has joined the group the rank is not known yet; after, every event has it.
      assert.deepEqual(
        scoped.filter((e) => e.rank !== null && e.rank !== worker.rank).map((e) => e.type),
        [],
      );
      const first = scoped.findIndex((e) => e.rank === worker.rank);
      assert.deepEqual(
        scoped
          .slice(first)
          .filter((e) => e.rank !== worker.rank)
          .map((e) => e.type),
        [],
      );
    }
    // Under tensor parallelism the EngineCore schedules and never starts CUDA: its scopes (the KV
    // cache sizing) have no device and no rank, and measure the host only.
    const engine = [...run.processes.values()].find((p) => p.name === "EngineCore");
    assert.ok(engine, "the EngineCore process is in the run");
    const engineScoped = stored.events.filter((e) => e.pid === engine.pid && SCOPE_TYPES.has(e.type));
    assert.ok(engineScoped.length > 0, "the EngineCore ran a probed scope");
    assert.deepEqual(
      engineScoped.filter((e) => e.device !== null || e.rank !== null).map((e) => e.type),
      [],
    );
  },
);

void test("the shipped truth check of this run has no failure", { skip: SKIP }, () => {
  const truth = JSON.parse(readFileSync(path.join(TP2, "truth.json"), "utf8")) as {
    checks: number;
    failed: number;
    processes: Record<string, { identity: { check: string; truth: number | null; ok: boolean }[] }>;
  };
  assert.equal(truth.failed, 0);
  assert.ok(truth.checks > 10_000, `${truth.checks} checks`);
  const identities = Object.values(truth.processes).flatMap((p) => p.identity);
  assert.deepEqual(
    identities
      .filter((c) => c.check === "rank")
      .map((c) => c.truth)
      .sort(),
    [0, 1],
  );
  assert.ok(identities.every((c) => c.ok));
});

void test(
  "the lens names the worst rank of each hotspot both ranks ran; the shards are near even",
  { skip: SKIP },
  async () => {
    const { stored, run } = await recorded();
    const load = (stored.meta.targets ?? []).find(
      (t) => t.hotspot === "vllm.worker.load_model" && run.summary(t.id),
    );
    assert.ok(load, "Worker.load_model was measured");
    const spread = rankSpread(run, load.id)!;
    assert.deepEqual(
      spread.ranks.map((r) => r.rank),
      [0, 1],
    );
    assert.ok(spread.minRetained > 1 * GiB, "each rank keeps its shard");
    assert.ok(
      spread.minRetained / spread.maxRetained > 0.8,
      "tensor parallelism splits the weights near evenly",
    );
    assert.match(
      lensTitle(targetState(run, load.id)),
      new RegExp(`^\\+[\\d.]+ GiB allocated on rank ${spread.worst.rank} · 2 ranks · `),
    );
  },
);

void test("the budget has a verdict per rank and the worst decides", { skip: SKIP }, async () => {
  const { stored, run } = await recorded();
  const { view, ranks } = computeBudget(run, {
    checkpoint: knownModelBudget("openai/gpt-oss-20b"),
    targetBytes: 16 * GiB,
    gpuMemoryUtilization: 0.98,
    meta: stored.meta.targets,
  });
  assert.equal(ranks?.length, 2);
  assert.equal(ranks.filter((r) => r.worst).length, 1);
  assert.equal(view.rankVerdicts?.length, 2);
  assert.match(view.verdict, /^Rank [01] of 2 decides/);
});

void test("a line's allocation sites are one rank's, not the sum over ranks", { skip: SKIP }, async () => {
  const { stored } = await recorded();
  const byFile = lineSites(stored.events);
  const file = [...byFile.keys()].find((f) => f.endsWith("marlin_utils_fp4.py"))!;
  const copy = byFile.get(file)!.get(320)!;
  // Each rank repacks its 24 layers × 32 experts × (w13, w2): 1,536 copies, not 3,072.
  assert.equal(copy.count, 1536);
  assert.deepEqual(copy.rank?.of, 2);
  assert.match(siteInlayLabel(copy), new RegExp(` ×1,536 · freed · on rank ${copy.rank.rank} of 2$`));
});
