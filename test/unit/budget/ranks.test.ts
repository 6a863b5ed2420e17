// The budget under tensor parallelism: each rank is its own card with its own shard, activation
// peak, non-torch memory and KV cache; a verdict line per rank, and the worst rank decides.
import { test } from "node:test";
import assert from "node:assert/strict";
import { RunModel } from "../../../src/model/runModel";
import { knownModelBudget } from "../../../src/budget/modelBudget";
import { computeBudget } from "../../../src/budget/view";
import { budgetMarkdown } from "../../../src/budget/markdown";
import { computeFindings, reportMarkdown } from "../../../src/export/findings";
import type { ProbeEvent } from "../../../src/protocol/events";
import { eventClock } from "../rankEvents";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const CARD = 8 * GiB;
const META = [
  {
    id: "load",
    spec: "vllm.v1.worker.gpu_model_runner:GPUModelRunner.load_model",
    hotspot: "vllm.runner.load_model",
  },
  {
    id: "profile",
    spec: "vllm.v1.worker.gpu_model_runner:GPUModelRunner.profile_run",
    hotspot: "vllm.runner.profile_run",
  },
  {
    id: "kv",
    spec: "vllm.v1.worker.gpu_model_runner:GPUModelRunner.initialize_kv_cache",
    hotspot: "vllm.runner.initialize_kv_cache",
  },
];

const { ev, finishedCall } = eventClock(1_000_000, 1_000);
/** One call of `target` on `rank`, allocated and reserved alike. */
function scope(pid: number, rank: number, target: string, before: number, after: number, peak: number) {
  const both = (bytes: number) => ({ allocated: bytes, reserved: bytes });
  return finishedCall({
    pid,
    rank,
    target,
    before: both(before),
    after: both(after),
    peak: both(peak),
    durationNs: 1_000,
  });
}

/** One worker per rank under vLLM's parent; rank `r` loads `weights[r]`. */
function tpRun(weights: number[]): RunModel {
  const events: ProbeEvent[] = [
    ev("hello", 10, null, { ppid: 1, argv: ["x.py"], origin: "main", torch: "2.9" }),
  ];
  weights.forEach((w, rank) => {
    const pid = 20 + rank;
    events.push(
      ev("hello", pid, null, { ppid: 10, argv: [], origin: "spawn", torch: "2.9" }),
      ...scope(pid, rank, "load", 0, w, w),
      ...scope(pid, rank, "profile", w, w, w + 0.8 * GiB),
      ev("sample", pid, rank, {
        readings: {
          allocated: w + 0.8 * GiB,
          reserved: w + 0.8 * GiB + 64 * MiB,
          device_used: w + 1.4 * GiB,
          device_total: CARD,
          non_torch: 0.5 * GiB,
        },
      }),
      ...scope(pid, rank, "kv", w, w + 0.3 * GiB, w + 0.3 * GiB),
    );
  });
  return RunModel.fromEvents(events);
}

const OPTIONS = { targetBytes: CARD, gpuMemoryUtilization: 0.9, meta: META, maxModelLen: 32 };

void test("each rank gets its own verdict; the one that is short decides", () => {
  // Rank 1's shard is 0.5 GiB larger: 6.0 + 0.8 + 0.5 GiB is more than 8 GiB × 0.9.
  const { view, fit, ranks } = computeBudget(tpRun([5.5 * GiB, 6.0 * GiB]), OPTIONS);
  assert.deepEqual(
    ranks?.map((r) => [r.rank, r.fit.fits, r.worst]),
    [
      [0, true, false],
      [1, false, true],
    ],
  );
  assert.equal(ranks[0]!.measurements?.residentWeights?.bytes, 5.5 * GiB);
  assert.equal(ranks[1]!.measurements?.residentWeights?.bytes, 6.0 * GiB, "not the sum over ranks");
  assert.equal(fit, ranks[1]!.fit, "the budget's fit is the worst rank's");
  assert.match(view.verdict, /^Rank 1 of 2 decides \(each rank holds its own shard.*\): Does not fit: /);
  assert.equal(view.rankVerdicts?.length, 2);
  assert.match(view.rankVerdicts[0]!, /^rank 0: Fits: 8\.00 GiB × 0\.9 leaves 409\.60 MiB for the KV cache/);
  assert.match(view.rankVerdicts[1]!, /^rank 1 \(worst\): Does not fit: /);
  // Rows and arithmetic are the worst rank's own numbers.
  assert.equal(view.rows.find((r) => r.label === "Resident weights")?.measuredBytes, 6.0 * GiB);
  assert.ok(view.arithmetic.some((l) => l.includes("6.00 GiB")));
  const markdown = budgetMarkdown(view, "tp2");
  assert.match(markdown, /\n- rank 0: Fits: /);
  assert.match(markdown, /\n- rank 1 \(worst\): Does not fit: /);
});

void test("when every rank fits, the one with the least KV cache left decides", () => {
  const { view, ranks } = computeBudget(tpRun([5.0 * GiB, 4.9 * GiB]), OPTIONS);
  assert.deepEqual(
    ranks?.map((r) => [r.rank, r.fit.fits, r.worst]),
    [
      [0, true, true],
      [1, true, false],
    ],
  );
  assert.match(view.verdict, /^Rank 0 of 2 decides .*: Fits: /);
  const zh = computeBudget(tpRun([5.0 * GiB, 4.9 * GiB]), { ...OPTIONS, lang: "zh-CN" }).view;
  assert.match(zh.verdict, /^由 2 个 rank 中的 rank 0 决定/);
  assert.match(zh.rankVerdicts![0]!, /^rank 0（最差）：/);
});

void test("theory only: the weights estimate is split over the ranks", () => {
  const cp = knownModelBudget("openai/gpt-oss-20b")!;
  // A two-rank run that measured nothing of the budget: the weights come from theory, per rank.
  const run = RunModel.fromEvents([
    ev("sample", 20, 0, { readings: { allocated: 0 } }),
    ev("sample", 21, 1, { readings: { allocated: 0 } }),
  ]);
  const { view } = computeBudget(run, { ...OPTIONS, checkpoint: cp, meta: [] });
  const weights = view.rows.find((r) => r.label === "Resident weights")!;
  assert.equal(weights.theoryBytes, Math.ceil(cp.marlin!.residentBytes / 2));
  assert.match(weights.source, /÷ 2 ranks$/);
});

void test("one rank (vLLM without tensor parallelism) keeps the single verdict", () => {
  const { view, ranks } = computeBudget(tpRun([5.5 * GiB]), OPTIONS);
  assert.equal(ranks, undefined);
  assert.equal(view.rankVerdicts, undefined);
  assert.match(view.verdict, /^Fits: /);
});

void test("memlens report puts each rank's verdict under the deciding one", () => {
  const meta = { id: "tp2", label: "tp2", started: "", host: null, command: [], status: "finished" as const };
  const findings = computeFindings(tpRun([5.5 * GiB, 6.0 * GiB]), {
    meta: { ...meta, targets: META },
    targetBytes: CARD,
    gpuMemoryUtilization: 0.9,
  });
  const lines = reportMarkdown(findings).split("\n");
  const at = lines.findIndex((l) => l.startsWith("**Rank 1 of 2 decides"));
  assert.ok(at > 0);
  assert.match(lines[at + 2]!, /^- rank 0: /);
  assert.match(lines[at + 3]!, /^- rank 1 \(worst\): /);
  assert.equal(lines[at + 4], "");
});
