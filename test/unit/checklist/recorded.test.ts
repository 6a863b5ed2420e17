// The checklist on a stream the real probe recorded on a GPU (H200, torch CUDA allocations):
// test/fixtures/budget/gpu/record.sh replaying vLLM's load-path operations at gpt-oss-20b shapes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import * as path from "node:path";
import { RunModel } from "../../../src/model/runModel";
import { parseEventsText } from "../../../src/protocol/reader";
import { evaluateChecklist } from "../../../src/checklist/rules";
import { knownModelBudget } from "../../../src/budget/modelBudget";
import { computeBudget } from "../../../src/budget/view";

const RUN = path.resolve(__dirname, "../../fixtures/budget/gpu-run");
const parsed = parseEventsText(gunzipSync(readFileSync(path.join(RUN, "events.jsonl.gz"))).toString("utf8"));
const run = RunModel.fromEvents(parsed.events);
const model = knownModelBudget("openai/gpt-oss-20b")!;
const results = new Map(evaluateChecklist({ run, model }).map((r) => [r.item.id, r]));
const GiB = 1024 ** 3;

void test("the recorded stream is complete and well-formed", () => {
  assert.equal(parsed.malformed.length, 0);
  assert.equal(parsed.versionError, undefined);
  assert.equal(run.end?.exit_code, 0);
  assert.equal(run.callsOf("t4").length, 24 * 64, "one repack per expert weight of 24 layers");
});

void test("answers from real CUDA allocations", () => {
  const copy = results.get("load.contiguous_copy")!;
  assert.equal(copy.state, "answered");
  assert.equal(copy.verdict, "yes");
  // One expert's w13 block [5760, 1440] uint8 viewed as int32, transposed, made contiguous.
  assert.equal(copy.evidence[0]!.bytes, 8_294_400);

  const repack = results.get("load.repack_inplace")!;
  assert.equal(repack.verdict, "no");
  assert.equal(repack.evidence[0]!.bytes, 8_294_400);

  const perLayer = results.get("workspace.per_layer")!;
  assert.equal(perLayer.verdict, "yes");
  assert.match(perLayer.answer, /24 calls .* for 24 MoE layers, each keeps 2\.5 KiB/);
  // 132 SMs × 4 blocks × 4 B = 2,112 B, which torch's allocator rounds up to 2,560.
  assert.equal(results.get("workspace.size")!.evidence[0]!.bytes, 2560);

  const freed = results.get("load.original_freed")!;
  assert.equal(freed.verdict, "yes", freed.answer);
  const conversion = results.get("overhead.conversion_copy")!;
  assert.equal(conversion.verdict, "yes");
  assert.ok(conversion.evidence[0]!.bytes! > 256 * 1024 * 1024, "the torch.cat of 32 experts is transient");

  assert.equal(results.get("kv.gpu_memory_utilization")!.state, "answered");
  assert.match(results.get("kv.gpu_memory_utilization")!.answer, /139\.80 GiB × 0\.9 = 125\.82 GiB/);
  assert.equal(results.get("opt.cuda_graph")!.state, "needs_run", "eager run: no graph capture logged");
});

void test("the budget of the recorded run: measured weights beside the checkpoint", () => {
  const { view, measurements } = computeBudget(run, {
    checkpoint: model,
    targetBytes: 15.5 * GiB,
    gpuMemoryUtilization: 0.98,
  });
  const weights = view.rows.find((r) => r.label === "Resident weights")!;
  assert.equal(weights.kind, "measured");
  assert.ok(Math.abs(weights.measuredBytes! / GiB - 12.27) < 0.01, `${weights.measuredBytes}`);
  assert.equal(measurements?.deviceTotal?.bytes, run.latestReadings()?.device_total);
  assert.ok(
    view.rows.every((r) => !/\n/.test(r.source)),
    "sources are one line",
  );
});
