// Per-rank aggregation: a tensor-parallel load's worst rank, the spread, and each rank's own view.
import { test } from "node:test";
import assert from "node:assert/strict";
import { RunModel } from "../../../src/model/runModel";
import {
  deltaRange,
  rankedSummaryLine,
  rankOfCall,
  rankSpread,
  rankSummaries,
  rankView,
  runRanks,
} from "../../../src/model/ranks";
import { summaryLine } from "../../../src/model/format";
import { eventClock } from "../rankEvents";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const { ev, finishedCall } = eventClock(1_000, 10);
/** One finished call of `target` in `pid` that keeps `retained` and peaks `peak` above its start. */
function call(
  pid: number,
  rank: number | null,
  target: string,
  n: number,
  start: number,
  retained: number,
  peak: number,
) {
  return finishedCall({
    pid,
    rank,
    target,
    call: n,
    before: { allocated: start },
    after: { allocated: start + retained },
    peak: { allocated: start + peak },
  });
}

/** vLLM's layout under tensor_parallel_size=2: a parent without a rank and one worker per rank. */
function tp2(): RunModel {
  return RunModel.fromEvents([
    ev("hello", 10, null, { ppid: 1, argv: ["load.py"], origin: "main", torch: "2.9" }),
    ev("hello", 20, null, { ppid: 10, argv: [], origin: "spawn", torch: "2.9" }),
    ev("hello", 21, null, { ppid: 10, argv: [], origin: "spawn", torch: "2.9" }),
    ...call(20, 0, "load", 1, 0, 4.5 * GiB, 4.8 * GiB),
    ...call(21, 1, "load", 1, 0, 4.6 * GiB, 4.9 * GiB),
    ...call(20, 0, "ws", 1, 4.5 * GiB, 64 * MiB, 64 * MiB),
    ...call(20, 0, "ws", 2, 4.6 * GiB, 64 * MiB, 64 * MiB),
    ...call(21, 1, "ws", 1, 4.6 * GiB, 96 * MiB, 96 * MiB),
    ...call(10, null, "parentOnly", 1, 0, MiB, MiB),
    ev("sample", 20, 0, { readings: { allocated: 4.7 * GiB } }),
    ev("sample", 21, 1, { readings: { allocated: 4.8 * GiB } }),
  ]);
}

test("the ranks of a run are its processes' distinct ranks", () => {
  assert.deepEqual(runRanks(tp2()), [0, 1]);
  assert.deepEqual(runRanks(RunModel.fromEvents(call(5, null, "x", 1, 0, 1, 1))), []);
});

test("per-rank totals group every call by rank; calls without a rank are left out", () => {
  const run = tp2();
  const ws = rankSummaries(run, "ws");
  assert.deepEqual(
    ws.map((r) => [r.rank, r.pids, r.calls, r.retained, r.peakAboveBeforeMax]),
    [
      [0, [20], 2, 128 * MiB, 64 * MiB],
      [1, [21], 1, 96 * MiB, 96 * MiB],
    ],
  );
  assert.deepEqual(rankSummaries(run, "parentOnly"), []);
});

test("a call made before its process had a rank counts on the rank the process got", () => {
  const run = RunModel.fromEvents([
    ...call(30, null, "early", 1, 0, 2 * MiB, 2 * MiB),
    ...call(30, 1, "late", 1, 0, 3 * MiB, 3 * MiB),
    ...call(31, 0, "early", 1, 0, 5 * MiB, 5 * MiB),
  ]);
  assert.equal(rankOfCall(run, { pid: 30, rank: null }), 1);
  assert.deepEqual(
    rankSummaries(run, "early").map((r) => [r.rank, r.retained]),
    [
      [0, 5 * MiB],
      [1, 2 * MiB],
    ],
  );
});

test("the spread names the rank that retained the most and the range; one rank has none", () => {
  const run = tp2();
  const spread = rankSpread(run, "load")!;
  assert.equal(spread.worst.rank, 1);
  assert.equal(spread.minRetained, 4.5 * GiB);
  assert.equal(spread.maxRetained, 4.6 * GiB);
  // Workspaces: rank 0 called it twice and keeps more in all.
  assert.equal(rankSpread(run, "ws")!.worst.rank, 0);
  assert.equal(rankSpread(run, "parentOnly"), undefined);
  const single = RunModel.fromEvents(call(7, 0, "x", 1, 0, MiB, MiB));
  assert.equal(rankSpread(single, "x"), undefined, "one rank: the lens stays as it is");
});

test("a tie goes to the lowest rank", () => {
  const run = RunModel.fromEvents([...call(1, 0, "t", 1, 0, MiB, MiB), ...call(2, 1, "t", 1, 0, MiB, MiB)]);
  assert.equal(rankSpread(run, "t")!.worst.rank, 0);
});

test("the lens line leads with the worst rank and the range, then the usual peak and counts", () => {
  const run = tp2();
  const summary = run.summary("load")!;
  const spread = rankSpread(run, "load")!;
  assert.equal(
    rankedSummaryLine(summary, spread),
    "+4.6 GiB allocated on rank 1 · 2 ranks · +4.5 to +4.6 GiB · peak +4.9 GiB · 2 calls · 2 processes",
  );
  assert.equal(
    rankedSummaryLine(summary, spread, "zh-CN"),
    "rank 1 上 已分配 +4.6 GiB · 2 个 rank · +4.5 至 +4.6 GiB · 峰值 +4.9 GiB · 2 次调用 · 2 个进程",
  );
  // The plain line (one rank) is unchanged.
  assert.equal(summaryLine(summary), "+9.1 GiB allocated · peak +4.9 GiB · 2 calls · 2 processes");
});

test("the range keeps one unit when both ends share it", () => {
  assert.equal(deltaRange(4.5 * GiB, 4.6 * GiB), "+4.5 to +4.6 GiB");
  assert.equal(deltaRange(512 * MiB, 1.5 * GiB), "+512.0 MiB to +1.5 GiB");
  assert.equal(deltaRange(-MiB, 2 * MiB), "−1.0 to +2.0 MiB");
  assert.equal(deltaRange(GiB, GiB), "+1.0 GiB");
});

test("a rank's view holds only that rank's processes, calls, samples and OOMs", () => {
  const run = tp2();
  const one = rankView(run, 1);
  assert.deepEqual([...one.processes.keys()], [21]);
  assert.deepEqual([...one.samples.keys()], [21]);
  assert.deepEqual(
    one.summaries().map((s) => [s.target, s.calls, s.retained]),
    [
      ["load", 1, 4.6 * GiB],
      ["ws", 1, 96 * MiB],
    ],
  );
  assert.equal(one.summary("parentOnly"), undefined);
  assert.equal(run.calls.length, 6, "the run itself is untouched");
});

test("a rank that ran out of memory in the target is the worst, whatever the others retained", () => {
  const oomCall = (pid: number, rank: number) => {
    const common = {
      target: "kv",
      scope_id: `${pid}:kv`,
      parent: null,
      call: 1,
      depth: 0,
      before: { allocated: GiB },
    };
    return [
      ev("enter", pid, rank, common),
      ev("oom", pid, rank, {
        target: "kv",
        scope_id: `${pid}:kv`,
        stack: [],
        readings: {},
        message: "CUDA out of memory",
      }),
      ev("exit", pid, rank, {
        ...common,
        after: { allocated: GiB },
        peak: { allocated: GiB },
        duration_ns: 1,
        raised: "OutOfMemoryError",
      }),
    ];
  };
  const run = RunModel.fromEvents([...oomCall(20, 0), ...call(21, 1, "kv", 1, GiB, 4.6 * GiB, 4.6 * GiB)]);
  const spread = rankSpread(run, "kv")!;
  assert.equal(spread.worst.rank, 0);
  assert.equal(spread.worst.ooms, 1);
  assert.equal(
    rankedSummaryLine(run.summary("kv")!, spread),
    "±0 B allocated on rank 0, out of memory · 2 ranks · ±0 B to +4.6 GiB · peak +4.6 GiB · 2 calls · 2 processes",
  );
});
