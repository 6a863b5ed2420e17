// The memory panel end to end: the packaged extension in code-server, a real run of the real probe
// on the fixture workload, then "MemLens: Open Memory Panel" and its hotspot rows inside the
// webview's frames; a row opens the definition; a window reload brings the panel back.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { FrameLocator } from "playwright-core";
import { waitUntil, Workbench } from "./harness";

const FP4_FILE = "vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py";
const PREPARE_DEF = "def prepare_moe_fp4_layer_for_marlin";
const FUNCTION = "prepare_moe_fp4_layer_for_marlin";
const DELTA = /[+−-]\d+(\.\d+)? (B|KiB|MiB|GiB) host RSS/;

let wb: Workbench;

function e2e(title: string, body: () => Promise<void>): void {
  void test(title, () => wb.step(title, body));
}

/** The panel's document: VS Code puts a webview in an iframe that holds the content's iframe. */
function panelFrame(): FrameLocator {
  return wb.page.frameLocator("iframe.webview.ready").frameLocator("#active-frame");
}

async function defLine(): Promise<number> {
  const lines = (await wb.readFile(FP4_FILE)).split("\n");
  return lines.findIndex((line) => line.includes(PREPARE_DEF)) + 1;
}

before(async () => {
  wb = await Workbench.start({ name: "panel", workspace: "test/e2e/workspace" });
});

after(async () => {
  await wb?.stop();
});

/** The retained figure of the lens ("+200.1 MiB host RSS · …"), as the panel should show it too. */
let lensRetained = "";

e2e("a finished run opens in the panel with its hotspot rows", async () => {
  await wb.openFile(FP4_FILE);
  await wb.clickLensAbove(PREPARE_DEF, /Measure here/i);
  const lens = await wb.waitForLensAbove(PREPARE_DEF, DELTA);
  lensRetained = /^[+−-]\S+ \S+/.exec(lens)?.[0] ?? "";
  assert.ok(lensRetained, `no retained figure in the lens "${lens}"`);

  await wb.runCommand("MemLens: Open Memory Panel");
  const row = panelFrame().locator("tr.hotspot", { hasText: FUNCTION }).first();
  await row.waitFor();
  // The same run, the same number as the lens (both read src/model/format).
  assert.equal(await row.locator('td[data-column="retained"]').textContent(), lensRetained);
  assert.equal(await row.locator('td[data-column="calls"]').textContent(), "1");
  const header = await panelFrame().locator('button.sort[data-column="retained"]').textContent();
  assert.match(header ?? "", /host RSS Δ/);
  // The timeline got the run's samples.
  await panelFrame().locator('input[data-reading="host_rss"]').waitFor();
  await wb.screenshot("panel-open");
});

e2e("clicking a hotspot row opens its definition", async () => {
  const line = await defLine();
  // Another line first, so the jump is the row's doing. The file's tab covers the panel (same
  // group), whose webview is not retained when hidden: showing it again rebuilds it from state.
  await wb.openFile(FP4_FILE);
  await wb.goToLine(1);
  await wb.runCommand("MemLens: Open Memory Panel");
  await panelFrame().locator("tr.hotspot", { hasText: FUNCTION }).first().click();
  await waitUntil(`the cursor on line ${line}`, async () => {
    const status = await wb.page.locator('[id="status.editor.selection"]').first().textContent();
    return status?.includes(`Ln ${line},`) ?? false;
  });
  await wb.screenshot("panel-row-opened-source");
});

e2e("after a window reload the panel comes back with its rows", async () => {
  // VS Code's own reload shuts the window down properly, so the open editors (the panel among
  // them, through its serializer) are saved and restored; a bare page reload saves nothing.
  const loaded = wb.page.waitForEvent("load");
  await wb.runCommand("Developer: Reload Window");
  await loaded;
  await wb.page.locator(".monaco-workbench").waitFor();
  const row = panelFrame().locator("tr.hotspot", { hasText: FUNCTION }).first();
  await row.waitFor();
  assert.equal(await row.locator('td[data-column="retained"]').textContent(), lensRetained);
  await wb.screenshot("panel-restored");
});
