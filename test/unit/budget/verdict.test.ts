import { test } from "node:test";
import assert from "node:assert/strict";
import { RunModel } from "../../../src/model/runModel";
import { knownModelBudget } from "../../../src/budget/modelBudget";
import { kvModelFromConfig } from "../../../src/budget/kvcache";
import { fitVerdict } from "../../../src/budget/verdict";
import { computeBudget, computeBudgetView } from "../../../src/budget/view";
import { emulationSettings } from "../../../src/budget/emulation";
import { metaTargets, vllmRun, YES } from "../checklist/vllmRun";

const GiB = 1024 ** 3;
const model = knownModelBudget("openai/gpt-oss-20b")!;
const kv = kvModelFromConfig(model.config);

void test("fit verdict: fits, with KV tokens left and the arithmetic spelled out", () => {
  const v = fitVerdict({
    targetBytes: 16 * GiB,
    gpuMemoryUtilization: 0.98,
    parts: [{ label: "resident weights", bytes: 14_679_227_520, kind: "estimate", source: "Marlin" }],
    unknown: ["activation peak"],
    kv,
    minKvTokens: 32,
  });
  assert.equal(v.fits, true);
  const left = Math.floor(16 * GiB * 0.98) - 14_679_227_520;
  assert.equal(v.kvBytes, left);
  assert.equal(v.kvTokens, Math.floor((left - 24_576 * 128) / 24_576));
  assert.equal(v.shortBytes, 0);
  assert.match(
    v.verdict,
    /^Fits: 16\.00 GiB × 0\.98 leaves 2\.01 GiB for the KV cache ≈ [\d,]+ tokens.* Not measured yet: activation peak/,
  );
  assert.deepEqual(v.arithmetic.slice(0, 3), [
    "target card: 16.00 GiB (17,179,869,184 B)",
    "budget = 16.00 GiB × gpu_memory_utilization 0.98 = 15.68 GiB (16,836,271,800 B)",
    "  − resident weights 13.67 GiB (estimate: Marlin) → 2.01 GiB left",
  ]);
  assert.ok(v.arithmetic.some((l) => l.includes("max_model_len 32 needs 1.50 MiB")));
});

void test("fit verdict: does not fit, says by how much and whether any utilization would do", () => {
  const parts = [
    { label: "resident weights", bytes: 14_679_227_520, kind: "measured" as const, source: "load_model" },
    { label: "activation peak", bytes: Math.round(1.4 * GiB), kind: "measured" as const, source: "fact" },
    { label: "non-torch memory", bytes: Math.round(0.5 * GiB), kind: "measured" as const, source: "reading" },
  ];
  const v = fitVerdict({
    targetBytes: 15.5 * GiB,
    gpuMemoryUtilization: 0.9,
    parts,
    unknown: [],
    kv,
    minKvTokens: 32,
  });
  assert.equal(v.fits, false);
  assert.ok(v.shortBytes > 0);
  assert.ok(v.neededUtilization > 1);
  assert.match(
    v.verdict,
    /^Does not fit: 15\.57 GiB needed, 1\.62 GiB more than 15\.50 GiB × 0\.9 = 13\.95 GiB and 74\.30 MiB more than the whole card\.$/,
  );
  assert.deepEqual(v.fitting, ["resident weights (13.67 GiB)"]);
  assert.deepEqual(v.notFitting.slice(0, 2), ["activation peak (1.40 GiB)", "non-torch memory (512.00 MiB)"]);
  assert.equal(v.kvTokens, 0);

  const atHigherUtil = fitVerdict({
    targetBytes: 16 * GiB,
    gpuMemoryUtilization: 0.9,
    parts,
    unknown: [],
    kv,
    minKvTokens: 32,
  });
  assert.equal(atHigherUtil.fits, false);
  assert.match(atHigherUtil.verdict, /it would fit at gpu_memory_utilization 0\.974/);
  assert.throws(
    () =>
      fitVerdict({ targetBytes: 16 * GiB, gpuMemoryUtilization: 1.2, parts, unknown: [], minKvTokens: 1 }),
    /gpu_memory_utilization must be in \(0, 1\]/,
  );
});

void test("budget view: theory rows without a run; theory beside measurement with a run", () => {
  const theory = computeBudgetView(undefined, {
    checkpoint: model,
    targetBytes: 16 * GiB,
    gpuMemoryUtilization: 0.98,
  });
  const total = theory.rows.find((r) => r.label === "Checkpoint, all tensors")!;
  assert.equal(total.theoryBytes, 13_761_264_768);
  assert.equal(total.kind, "theory");
  const weights = theory.rows.find((r) => r.label === "Resident weights")!;
  assert.equal(weights.kind, "estimate");
  assert.equal(weights.theoryBytes, 14_679_227_520);
  assert.match(weights.source, /pads hidden 2880 → 3072 .* intermediate 2880 → 2944/);
  const wrong = theory.rows.find((r) => r.label.startsWith("Checklist §1.1"))!;
  assert.equal(wrong.theoryBytes, 11.26e9);
  assert.match(wrong.source, /NVFP4/);
  assert.ok(
    theory.rows.every((r) => r.source.length > 0),
    "every row says its source",
  );
  assert.equal(theory.targetBytes, 16 * GiB);

  const run = RunModel.fromEvents(vllmRun(YES));
  const { view, measurements } = computeBudget(run, {
    checkpoint: model,
    targetBytes: 15.5 * GiB,
    gpuMemoryUtilization: 0.98,
    meta: metaTargets(YES),
  });
  const measuredWeights = view.rows.find((r) => r.label === "Resident weights")!;
  assert.equal(measuredWeights.kind, "measured");
  assert.equal(measuredWeights.measuredBytes, 13_761_264_768 + 24 * (461_815_808 - 423_567_360) + 24 * 2560);
  assert.equal(measuredWeights.theoryBytes, 14_679_227_520);
  assert.match(measuredWeights.source, /^measured: allocated Δ retained by .*GPUModelRunner\.load_model/);
  const byLabel = new Map(view.rows.map((r) => [r.label, r]));
  assert.equal(byLabel.get("Marlin workspaces")?.measuredBytes, 24 * 2560);
  assert.equal(byLabel.get("Activation peak (profile run)")?.measuredBytes, Math.round(1.4 * GiB));
  assert.match(byLabel.get("Activation peak (profile run)")!.source, /fact memory_profiling/);
  assert.equal(byLabel.get("Non-torch (CUDA context, cuBLAS, NCCL)")?.measuredBytes, 140_509_184);
  assert.equal(byLabel.get("Allocator slack (reserved − allocated)")?.measuredBytes, 48 * 1024 * 1024);
  assert.match(
    byLabel.get("Allocator slack (reserved − allocated)")!.source,
    /pid 4202 at \+[\d.]+ s, sample with the highest reserved/,
  );
  assert.equal(byLabel.get("KV cache")?.kind, "measured");
  assert.equal(measurements?.gpuPid, 4202);
  assert.match(view.verdict, /^Does not fit/);
  assert.ok(view.arithmetic.some((l) => /− activation peak 1\.40 GiB \(measured: /.test(l)));
});

void test("emulating a 16 GiB card on an 80 GB H100", () => {
  const total = 85_031_714_816;
  const e = emulationSettings(16, total, 0.98);
  assert.equal(e.emulate_device_bytes, 16 * GiB);
  // vLLM's budget on the big card equals the small card's: total × scaled = 16 GiB × 0.98.
  assert.ok(Math.abs(total * e.gpuMemoryUtilization - 16 * GiB * 0.98) < total * 1e-6);
  assert.ok(total * e.gpuMemoryUtilization <= 16 * GiB * 0.98, "never above the emulated budget");
  assert.equal(e.gpuMemoryUtilization, 0.197999);
  assert.match(
    e.label,
    /^emulated 16\.00 GiB card on a 79\.19 GiB device \(gpu_memory_utilization 0\.98 → 0\.197999\)$/,
  );
  assert.match(e.limits, /not capped/);
  assert.match(e.limits, /set_per_process_memory_fraction 0\.2020/);
  assert.equal(emulationSettings(15.5, total, 0.9).emulate_device_bytes, Math.floor(15.5 * GiB));
  assert.throws(
    () => emulationSettings(80, total, 0.9),
    /cannot emulate a 80\.00 GiB card on a device of 79\.19 GiB/,
  );
  assert.throws(() => emulationSettings(0, total, 0.9), /positive number of GiB/);
  assert.throws(() => emulationSettings(16, total, 0), /gpu_memory_utilization must be in \(0, 1\]/);
  assert.throws(() => emulationSettings(16, Number.NaN, 0.9), /total memory is unknown/);
});
