// Lens and hover of a target measured on two tensor-parallel ranks: the worst rank and the spread on
// the lens, a row per rank in the hover; a single-rank run reads as before.
import assert from "node:assert/strict";
import { test } from "node:test";
import { RunModel } from "../../../src/model/runModel";
import { summaryLine } from "../../../src/model/format";
import type { ProbeEvent } from "../../../src/protocol/events";
import { rankSpread } from "../../../src/model/ranks";
import { findings, lensTitle, measuredHover, targetState } from "../../../src/server/render";

const GiB = 1024 ** 3;
let clock = 0;
function scope(pid: number, rank: number | null, n: number, retained: number): ProbeEvent[] {
  const common = { v: 1, pid, rank, device: rank, target: "load", scope_id: `${pid}:${n}`, parent: null };
  const fields = { ...common, call: n, depth: 0, before: { allocated: GiB } };
  return [
    { ...fields, ts: (clock += 10), type: "enter" },
    {
      ...fields,
      ts: (clock += 10),
      type: "exit",
      after: { allocated: GiB + retained },
      peak: { allocated: GiB + retained + 0.3 * GiB },
      duration_ns: 2_000_000,
      raised: null,
    },
  ] as unknown as ProbeEvent[];
}

const HOVER = { runLabel: "tp2", spec: "vllm.x:load" };

void test("two ranks: the lens names the worst rank and the range, the hover lists each rank", () => {
  const run = RunModel.fromEvents([...scope(20, 0, 1, 4.5 * GiB), ...scope(21, 1, 1, 4.6 * GiB)]);
  const state = targetState(run, "load");
  assert.equal(state.kind, "measured");
  assert.equal(
    lensTitle(state),
    "+4.6 GiB allocated on rank 1 · 2 ranks · +4.5 to +4.6 GiB · peak +4.9 GiB · 2 calls · 2 processes",
  );
  const hover = measuredHover(run, run.summary("load")!, HOVER);
  const lines = hover.split("\n");
  const header = lines.findIndex((l) => l.startsWith("| rank | pid |"));
  assert.ok(header > 0, hover);
  assert.deepEqual(lines.slice(header + 2, header + 4), [
    "| 0 | 20 | 1 | +4.5 GiB | +4.8 GiB | 307.2 MiB | 2.0 ms |",
    "| **1** (worst) | 21 | 1 | +4.6 GiB | +4.9 GiB | 307.2 MiB | 2.0 ms |",
  ]);
  assert.match(lines[2]!, /on rank 1 · 2 ranks/);
  const zh = measuredHover(run, run.summary("load")!, { ...HOVER, lang: "zh-CN" });
  assert.match(zh, /\| \*\*1\*\*（最差） \| 21 \|/);
});

void test("one rank (vLLM without tensor parallelism is rank 0) keeps the plain lens and hover", () => {
  const run = RunModel.fromEvents([...scope(30, 0, 1, GiB), ...scope(30, 0, 2, GiB)]);
  const state = targetState(run, "load");
  assert.equal(lensTitle(state), summaryLine(run.summary("load")!));
  assert.equal(lensTitle(state), "+2.0 GiB allocated · peak +1.3 GiB · 2 calls");
  assert.doesNotMatch(measuredHover(run, run.summary("load")!, HOVER), /\| rank \| pid \|/);
});

void test("two ranks: a finding says what the worst rank keeps, not the sum no card holds", () => {
  const run = RunModel.fromEvents([...scope(40, 0, 1, 4.5 * GiB), ...scope(41, 1, 1, 4.6 * GiB)]);
  const summary = run.summary("load")!;
  const retained = findings(summary, "en", rankSpread(run, "load")).find((f) => f.code === "retained")!;
  assert.equal(
    retained.message,
    "retains 4.6 GiB after return (allocated, 1 call, on rank 1, the most of 2 ranks)",
  );
  assert.equal(
    findings(summary).find((f) => f.code === "retained")!.message,
    "retains 9.1 GiB after return (allocated, Σ over 2 calls)",
    "without ranks: the sum, as before",
  );
});
