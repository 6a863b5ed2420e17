import { test } from "node:test";
import assert from "node:assert/strict";
import { ProbeSet, runLabel, type ProbeTarget, type StateStore } from "../../../src/commands/probeSet";

/** workspaceState's contract: values are stored as JSON, so what comes back is a copy. */
class JsonState implements StateStore {
  private readonly values = new Map<string, string>();
  get<T>(key: string): T | undefined {
    const text = this.values.get(key);
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }
  update(key: string, value: unknown): Promise<void> {
    this.values.set(key, JSON.stringify(value));
    return Promise.resolve();
  }
}

const prepare: ProbeTarget = {
  kind: "function",
  spec: "vllm.model_executor.layers.quantization.utils.marlin_utils_fp4:prepare_moe_fp4_layer_for_marlin",
  hotspot: "vllm.marlin.prepare_moe_fp4",
  file: "/src/vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py",
  line: 15,
};
const stagingLine: ProbeTarget = {
  kind: "line",
  spec: "/src/vllm/x/marlin_utils_fp4.py:17",
  file: "/src/vllm/x/marlin_utils_fp4.py",
  line: 17,
};

test("the probe set keeps targets in order, once each, and survives a new instance on the same state", async () => {
  const state = new JsonState();
  const probes = new ProbeSet(state);
  let changes = 0;
  probes.onDidChange(() => changes++);
  assert.equal(await probes.add(prepare), true);
  assert.equal(await probes.add(stagingLine), true);
  assert.equal(await probes.add({ ...prepare, line: 99 }), false, "the same spec twice is one probe");
  assert.equal(changes, 2);
  assert.deepEqual(new ProbeSet(state).list(), [prepare, stagingLine]);
  await probes.clear();
  assert.deepEqual(new ProbeSet(state).list(), []);
  assert.equal(changes, 3);
});

test("stored values that are not probe targets are ignored, not trusted", () => {
  const state = new JsonState();
  void state.update("memlens.probes", [
    prepare,
    { kind: "module", spec: "x" },
    "junk",
    null,
    { kind: "line" },
  ]);
  assert.deepEqual(new ProbeSet(state).list(), [prepare]);
  void state.update("memlens.probes", { not: "an array" });
  assert.deepEqual(new ProbeSet(state).list(), []);
});

test("run labels are short: module tail and qualname, or file name and line", () => {
  assert.equal(runLabel([]), "run without probes");
  assert.equal(runLabel([prepare]), "marlin_utils_fp4:prepare_moe_fp4_layer_for_marlin");
  assert.equal(runLabel([prepare, stagingLine]), "marlin_utils_fp4.py:17 (+1)");
  assert.equal(
    runLabel([prepare, stagingLine], prepare),
    "marlin_utils_fp4:prepare_moe_fp4_layer_for_marlin (+1)",
  );
});
