// An OOM's allocator snapshot end to end: a stored run whose probe sent `sites` and an `oom` with
// its forensics (test/fixtures/events/sites_oom.jsonl) and kept a snapshot pickle in the run folder;
// in code-server the lens above the function that ran out of memory opens the snapshot — the
// packaged extension runs its bundled probe (restricted unpickler) — and the memory panel shows
// the snapshot's timeline and allocation sites.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { FrameLocator } from "playwright-core";
import { Workbench } from "./harness";

const REPO_ROOT = path.resolve(__dirname, "..", "..");
const FP4_FILE = "vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py";
const PREPARE_DEF = "def prepare_moe_fp4_layer_for_marlin";
const RUN_ID = "20261130-120000-000-5173e1";

let wb: Workbench;
let runsDir: string;

function e2e(title: string, body: () => Promise<void>): void {
  void test(title, () => wb.step(title, body));
}

function panelFrame(): FrameLocator {
  return wb.page.frameLocator("iframe.webview.ready").frameLocator("#active-frame");
}

before(async () => {
  runsDir = mkdtempSync(path.join(tmpdir(), "memlens-e2e-snapshot-runs-"));
  const dir = path.join(runsDir, RUN_ID);
  mkdirSync(dir);
  copyFileSync(path.join(REPO_ROOT, "test/fixtures/events/sites_oom.jsonl"), path.join(dir, "events.jsonl"));
  writeFileSync(
    path.join(dir, "meta.json"),
    JSON.stringify({
      id: RUN_ID,
      label: "sites and an OOM",
      started: "2026-11-30T12:00:00.000Z",
      host: null,
      command: ["python3", "load.py"],
      status: "finished",
    }),
  );
  // The snapshot the probe kept at the OOM: torch's format (protocol 5), the probe's own test trace.
  execFileSync("python3", [
    path.join(REPO_ROOT, "test/fixtures/events/make_repack_snapshot.py"),
    path.join(dir, "oom-301-2.pickle"),
  ]);
  wb = await Workbench.start({
    name: "snapshot",
    workspace: "test/e2e/workspace",
    userSettings: { "memlens.runsDirectory": runsDir },
  });
});

after(async () => {
  await wb?.collectLogs();
  await wb?.stop();
  rmSync(runsDir, { recursive: true, force: true });
});

e2e("the OOM's lens opens its allocator snapshot in the panel: timeline and sites", async () => {
  await wb.openFile(FP4_FILE);
  // The sites' inlay hints at the local lines (the events name site-packages on the GPU host);
  // the editor renders their spaces as no-break spaces.
  assert.match(
    await wb.waitForEditorText(/\+4\.0\sMiB\s×128\s·\sfreed\s·\son\srank\s0\sof\s2/),
    /^REPACKED_MIB\s=\s200/,
  );
  await wb.waitForEditorText(/retains\s2\.5\sKiB\s×2\s·\son\srank\s0\sof\s2/);
  await wb.waitForLensAbove(PREPARE_DEF, /Open the allocator snapshot of the OOM \(pid 301\)/);
  await wb.clickLensAbove(PREPARE_DEF, /Open the allocator snapshot/);
  const summary = panelFrame().locator("#snapshot-summary");
  await summary.waitFor();
  assert.match(
    (await summary.textContent()) ?? "",
    /^oom-301-2\.pickle: peak [\d.]+ MiB of requested bytes live; \d+ allocation sites$/,
  );
  // The `.contiguous()` copies of the trace: 4 of 9,043,968 B, found under no local root, so by
  // their innermost frame.
  const copy = panelFrame().locator('#snapshot-sites tr.site[data-line="310"]');
  await copy.waitFor();
  assert.equal(await copy.locator('td[data-column="count"]').textContent(), "4");
  assert.equal(
    await copy.locator('td[data-column="allocated"]').getAttribute("data-bytes"),
    String(4 * 9_043_968),
  );
  await wb.screenshot("allocator-snapshot");
});

e2e("the run's Sites table lists the function's lines; a row opens its line in the editor", async () => {
  const copy = panelFrame().locator('#sites tr.site[data-line="12"]');
  await copy.waitFor();
  assert.equal(await copy.locator('td[data-column="count"]').textContent(), "256");
  assert.equal(await panelFrame().locator("#sites tr.site").count(), 4);
  await copy.click();
  await wb.page.getByText("Ln 12, Col 1").waitFor();
  await wb.screenshot("sites-open-line");
});
