// The extension in Chinese: code-server started with --locale zh-cn. VS Code's own language pack is
// not installed (the marketplace is out of reach), so the workbench's menus stay English; what is
// checked is MemLens's own text: vscode.env.language is "zh-cn", the manifest's strings come from
// package.nls.zh-cn.json (command titles, view names), the extension host's messages from
// l10n/bundle.l10n.zh-cn.json, the language server's lenses and the checklist from their string
// tables, and Export Findings writes Chinese into the Chinese template. Screenshots show each.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { waitUntil, Workbench } from "./harness";

const FP4_FILE = "vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py";
const PREPARE_DEF = "def prepare_moe_fp4_layer_for_marlin";
const LOG = "memlens-investigation-log.md";
/** The lens after a run, in Chinese: "主机 RSS +200.1 MiB · 峰值 … · 1 次调用". */
const DELTA_ZH = /主机 RSS [+−-]\d+(\.\d+)? (B|KiB|MiB|GiB)/;

let wb: Workbench;

function e2e(title: string, body: () => Promise<void>): void {
  void test(title, () => wb.step(title, body));
}

before(async () => {
  wb = await Workbench.start({ name: "locale-zh-cn", workspace: "test/e2e/workspace", locale: "zh-cn" });
});

after(async () => {
  await wb?.collectLogs();
  await wb?.stop();
});

e2e("catalog lenses are Chinese: 在此测量 with the hotspot's question in Chinese", async () => {
  await wb.openFile(FP4_FILE);
  const lens = await wb.waitForLensAbove(PREPARE_DEF, /在此测量/);
  assert.match(lens, /在此测量 · 为 Marlin 重排一个 MoE 层的 MXFP4 权重、scale 和 bias 时分配多少显存？/);
  await wb.screenshot("lens-zh");
});

e2e("command titles come from package.nls.zh-cn.json", async () => {
  const input = wb.page.locator(".quick-input-widget input");
  await wb.page.keyboard.press("Escape");
  await wb.page.keyboard.press("F1");
  await input.waitFor();
  await input.fill(">MemLens");
  const rows = wb.page.locator(".quick-input-list .monaco-list-row");
  await rows.filter({ hasText: "使用当前探针运行" }).first().waitFor();
  // The palette draws only the rows in view (MemLens has more commands than fit): narrow the
  // filter to the one looked for.
  await input.fill(">MemLens: 显示显存预算");
  await rows.filter({ hasText: "MemLens: 显示显存预算" }).first().waitFor();
  const titles = await rows.allTextContents();
  assert.ok(
    titles.some((t) => t.includes("MemLens: 显示显存预算")),
    titles.join(" | "),
  );
  await wb.screenshot("palette-zh");
  await wb.page.keyboard.press("Escape");
});

e2e("Measure here (在此测量) runs the probe; the lens shows the delta in Chinese", async () => {
  await wb.openFile(FP4_FILE);
  await wb.clickLensAbove(PREPARE_DEF, /在此测量/);
  const lens = await wb.waitForLensAbove(PREPARE_DEF, DELTA_ZH);
  assert.match(lens, /次调用/);
  await wb.waitForRunsToEnd();
  await wb.screenshot("measured-zh");
});

e2e("the checklist view (调查清单) answers in Chinese, each item in the checklist's own words", async () => {
  await wb.runCommand("MemLens: Focus on 调查清单 View");
  const answered = wb.page.locator('.monaco-list-row[aria-label^="权重转换临时副本：已回答。"]');
  await answered.first().waitFor();
  const label = (await answered.first().getAttribute("aria-label")) ?? "";
  assert.match(label, /^权重转换临时副本：已回答。(是|否)：/);
  await wb.page
    .locator('.monaco-list-row[aria-label^="workspace 大小是多少 MB?：需要探针。未测量：在 "]')
    .first()
    .waitFor();
  await wb.screenshot("checklist-zh");
});

e2e("Export Findings (将发现导出到日志) writes Day 1 into the Chinese template in Chinese", async () => {
  await wb.runCommand("MemLens: 将发现导出到日志");
  await wb.clickNotificationButton(/要把发现写入哪个调查日志/, "从模板创建");
  const text = await waitUntil("the Day entry in the log", async () => {
    if (!existsSync(wb.workspacePath(LOG))) return false;
    const current = await wb.readFile(LOG);
    return /^### Day 1: \d{4}-\d{2}-\d{2}$/m.test(current) ? current : false;
  });
  assert.match(text, /^- 测量结果: MemLens 运行 /m);
  assert.match(text, /^ {2}\| 项目 \| 数值 \| 来源 \|$/m);
  assert.match(text, /^- \[x\] 权重转换临时副本 — (是|否)：/m);
  assert.match(text, /^- 发现问题:$/m);
  assert.ok(!/^ {2}- (Yes|No|Does not fit|Fits)\b/m.test(text), "no English finding under 发现问题");
  await wb.waitForNotification(/已将 Day 1 写入 memlens-investigation-log\.md/);
  await wb.screenshot("exported-zh");
});

e2e("the memory panel (打开显存面板) draws its headings, table and budget in Chinese", async () => {
  await wb.runCommand("MemLens: 打开显存面板");
  const panel = wb.webview();
  await panel.locator("#timeline-heading", { hasText: "显存随时间的变化" }).waitFor();
  await panel.locator('button.sort[data-column="retained"]', { hasText: "保留量" }).waitFor();
  await panel.locator("#verdict", { hasText: /^放(得|不)下：/ }).waitFor();
  assert.equal(await panel.locator("html").getAttribute("lang"), "zh-CN");
  await wb.screenshot("panel-zh");
});
