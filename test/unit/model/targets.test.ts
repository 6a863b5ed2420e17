import assert from "node:assert/strict";
import { test } from "node:test";
import { RunModel } from "../../../src/model/runModel";
import { isProbeSpec, specLabel, targetKind, targetLabel } from "../../../src/model/targets";
import { isFunctionSpec, parseFunctionSpec, parseLineSpec } from "../../../src/protocol/specs";

test("specs: module:qualname and file:line, parsed and told apart", () => {
  assert.deepEqual(parseFunctionSpec("a.b:C.d"), { module: "a.b", qualname: "C.d" });
  assert.equal(parseFunctionSpec("nocolon"), undefined);
  assert.deepEqual(parseLineSpec("/x/y.py:12"), { file: "/x/y.py", line: 12 });
  assert.deepEqual(parseLineSpec("C:\\x\\y.py:3"), { file: "C:\\x\\y.py", line: 3 });
  assert.equal(parseLineSpec("vllm.x:Foo"), undefined);
  assert.equal(targetKind("/x/y.py:12"), "line");
  assert.equal(targetKind("vllm.x:Foo.bar"), "function");
  assert.equal(isFunctionSpec("vllm.x:Foo.<locals>.bar"), true);
  assert.equal(isFunctionSpec("not a spec"), false);
  assert.equal(isProbeSpec("/x/y.py:1"), true);
  assert.equal(isProbeSpec("/x/y.py:0"), false, "lines count from 1");
  assert.equal(isProbeSpec("x:"), false);
});

test("labels: the qualname of a function, file:line of a line, the module tail for run labels", () => {
  const fn =
    "vllm.model_executor.layers.quantization.utils.marlin_utils_fp4:prepare_moe_fp4_layer_for_marlin";
  assert.equal(specLabel(fn), "prepare_moe_fp4_layer_for_marlin");
  assert.equal(specLabel(fn, true), "marlin_utils_fp4:prepare_moe_fp4_layer_for_marlin");
  assert.equal(specLabel("/src/vllm/x/marlin_utils_fp4.py:17"), "marlin_utils_fp4.py:17");
  assert.equal(specLabel("C:\\src\\vllm\\a.py:3", true), "a.py:3");

  const model = new RunModel();
  assert.equal(targetLabel(model, "t9"), "t9", "nothing known: the id");
  assert.equal(targetLabel(model, "t1", fn), "prepare_moe_fp4_layer_for_marlin");
  const common = { v: 1, ts: 1, pid: 7, rank: null, device: null } as const;
  model.add({
    ...common,
    type: "target_resolved",
    target: "t1",
    kind: "function",
    spec: "m:alias",
    qualname: "Real.name",
  });
  model.add({
    ...common,
    type: "target_resolved",
    target: "t2",
    kind: "line",
    spec: "/a/b.py:3",
    file: "/host/b.py",
    line: 4,
  });
  assert.equal(targetLabel(model, "t1", fn), "Real.name", "what the probe resolved wins");
  assert.equal(targetLabel(model, "t2"), "b.py:4");
});
