// The checklist end to end: a real run through the probe, the Checklist view answering from it,
// and "Export Findings to Log" writing the Day entry into a log created from the shipped template.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { waitUntil, Workbench } from "./harness";

const FP4_FILE = "vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py";
const PREPARE_DEF = "def prepare_moe_fp4_layer_for_marlin";
const LOG = "memlens-investigation-log.md";
const DELTA = /[+−-]\d+(\.\d+)? (B|KiB|MiB|GiB) host RSS/;

let wb: Workbench;

before(async () => {
  wb = await Workbench.start({ name: "checklist", workspace: "test/e2e/workspace" });
});

after(async () => {
  await wb?.collectLogs();
  await wb?.stop();
});

void test("a run answers checklist items, and the export writes Day 1 into the log", async () => {
  await wb.openFile(FP4_FILE);
  await wb.clickLensAbove(PREPARE_DEF, /Measure here/i);
  await wb.waitForLensAbove(PREPARE_DEF, DELTA);

  await wb.runCommand("MemLens: Focus on Checklist View");
  // The conversion item is answered from the run's prepare_moe_fp4_layer_for_marlin probe.
  const row = wb.page.locator(
    '.monaco-list-row[aria-label*="Are the original weights freed after the conversion?"]',
  );
  await row.first().waitFor();
  const conversion = wb.page.locator(
    '.monaco-list-row[aria-label^="Temporary copies while converting the weights: answered"]',
  );
  await conversion.first().waitFor();
  const label = (await conversion.first().getAttribute("aria-label")) ?? "";
  assert.match(label, /answered\. (Yes|No): /);
  // An item the run cannot answer offers its probe.
  await wb.page
    .locator('.monaco-list-row[aria-label^="How many MB is the workspace?: needs probe"]')
    .first()
    .waitFor();
  await wb.screenshot("checklist-view");

  await wb.runCommand("MemLens: Export Findings to Log");
  await wb.clickNotificationButton(/which investigation log/, "Create from Template");
  const text = await waitUntil("the Day entry in the log", async () => {
    if (!existsSync(wb.workspacePath(LOG))) return false;
    const current = await wb.readFile(LOG);
    return /^### Day 1: \d{4}-\d{2}-\d{2}$/m.test(current) ? current : false;
  });
  // The template is Chinese, so the findings are too, with an English UI (memlens.logLanguage: auto).
  assert.match(text, /^- 测量结果: MemLens 运行 /m);
  assert.match(text, /^- \[x\] 权重转换临时副本 — (是|否)：/m);
  assert.ok(text.includes("### Day 2: ____"), "the template's next blank day is still there");
  assert.ok(text.startsWith("# GPT-OSS 20B 显存优化调查清单\n"), "the template's head is unchanged");
  await wb.waitForNotification(/wrote Day 1 to memlens-investigation-log\.md/);
  await wb.screenshot("exported-day-1");
});
