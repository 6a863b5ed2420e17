// Restricted Mode: in a workspace the user does not trust, lenses still show (and say why they
// will not run) but MemLens starts no program.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { Workbench } from "./harness";

const FP4_FILE = "vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py";

let wb: Workbench;

function e2e(title: string, body: () => Promise<void>): void {
  void test(title, () => wb.step(title, body));
}

before(async () => {
  wb = await Workbench.start({ name: "trust", workspace: "test/e2e/workspace", askForTrust: true });
  await wb.answerTrustDialog(false);
});

after(async () => {
  await wb?.stop();
});

e2e("an untrusted workspace shows lenses but runs nothing, and says why", async () => {
  await wb.openFile(FP4_FILE);
  const lens = await wb.waitForLensAbove("def prepare_moe_fp4_layer_for_marlin", /Measure here/i);
  assert.match(lens, /not trusted/i);
  await wb.runCommand("MemLens: Run with Current Probes");
  const toast = await wb.waitForNotification(/untrusted workspace/);
  assert.ok((await toast.locator(".monaco-button", { hasText: "Manage Workspace Trust" }).count()) > 0);
  assert.equal(existsSync(wb.workspacePath(".memlens/runs")), false, "no run folder: nothing was started");
  await wb.screenshot("untrusted");
});
