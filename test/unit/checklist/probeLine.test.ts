import { test } from "node:test";
import assert from "node:assert/strict";
import { findProbeLine } from "../../../src/checklist/probeLine";

const SOURCE = [
  "def prepare_fp4_layer_for_marlin(layer):",
  "    qweight = weight.view(torch.int32).T.contiguous()",
  "",
  "def prepare_moe_fp4_layer_for_marlin(layer):",
  "    for i in range(e):",
  "",
  "        qweight = weight[i].view(torch.int32).T.contiguous()",
  "",
  "def prepare_moe_mxfp4_layer_for_marlin(layer):",
  "    qweight = weight[i].view(torch.int32).T.contiguous()",
].join("\n");

void test("the line inside the named function wins over earlier and later matches", () => {
  assert.equal(
    findProbeLine(SOURCE, ".view(torch.int32).T.contiguous()", "prepare_moe_fp4_layer_for_marlin"),
    7,
  );
  assert.equal(findProbeLine(SOURCE, ".view(torch.int32).T.contiguous()"), 2);
  assert.equal(
    findProbeLine(SOURCE, ".view(torch.int32).T.contiguous()", "gone_function"),
    2,
    "falls back to the first match",
  );
  assert.equal(findProbeLine(SOURCE, "no such text", "prepare_moe_fp4_layer_for_marlin"), undefined);
  assert.equal(
    findProbeLine(SOURCE.replace(/\n/g, "\r\n"), "weight[i]", "prepare_moe_mxfp4_layer_for_marlin"),
    10,
  );
});
