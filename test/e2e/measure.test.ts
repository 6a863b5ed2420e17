// "Measure here" end to end: the packaged extension in code-server, the real probe, a real Python
// workload (test/e2e/workspace, vLLM's module paths with pure-Python allocations of known size).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { isAlive, waitUntil, Workbench } from "./harness";

const FP4_FILE = "vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py";
const RUNNER_FILE = "vllm/v1/worker/gpu_model_runner.py";
const PREPARE_DEF = "def prepare_moe_fp4_layer_for_marlin";
const STAGING_LINE = "staging = bytearray";
/** What the fixture allocates (see its source): retained by the function, and by the staging line. */
const REPACKED_MIB = 200;
const STAGING_MIB = 96;
/** RSS moves by more than the allocation (allocator, page tables, the sampler): allow this much. */
const RSS_TOLERANCE_MIB = 12;

/** "+200.1 MiB host RSS" -> 200.1 (MiB). */
function mibOf(text: string): number {
  const match = /([+−-])(\d+(?:\.\d+)?) (B|KiB|MiB|GiB) host RSS/.exec(text);
  assert.ok(match, `no host-RSS delta in "${text}"`);
  const scale = { B: 1 / 1024 ** 2, KiB: 1 / 1024, MiB: 1, GiB: 1024 }[
    match[3] as "B" | "KiB" | "MiB" | "GiB"
  ];
  return (match[1] === "+" ? 1 : -1) * Number(match[2]) * scale;
}

const DELTA = /[+−-]\d+(\.\d+)? (B|KiB|MiB|GiB) host RSS/;

let wb: Workbench;

async function lineNumberOf(relativePath: string, text: string): Promise<number> {
  const lines = (await wb.readFile(relativePath)).split("\n");
  const index = lines.findIndex((line) => line.includes(text));
  assert.ok(index >= 0, `"${text}" not in ${relativePath}`);
  return index + 1;
}

/** A JSON file of the newest run folder (meta.json, plan.json). */
async function newestRunFile(name: string): Promise<unknown> {
  const runsDir = wb.workspacePath(".memlens/runs");
  const ids = (await readdir(runsDir)).sort();
  const newest = ids[ids.length - 1];
  assert.ok(newest, `no run folder in ${runsDir}`);
  return JSON.parse(await readFile(path.join(runsDir, newest, name), "utf8"));
}

async function newestRunMeta(): Promise<{ id: string; status: string; pid?: number; error?: string }> {
  return (await newestRunFile("meta.json")) as { id: string; status: string; pid?: number };
}

/** A test on the shared workbench; a failure leaves a screenshot named after it. */
function e2e(title: string, body: () => Promise<void>): void {
  void test(title, () => wb.step(title, body));
}

before(async () => {
  wb = await Workbench.start({ name: "measure", workspace: "test/e2e/workspace" });
});

after(async () => {
  await wb?.stop();
});

e2e("lenses appear on the hotspot defs of a vLLM-shaped file", async () => {
  await wb.openFile(FP4_FILE);
  const lens = await wb.waitForLensAbove(PREPARE_DEF, /Measure here/i);
  assert.match(lens, /Measure here/i);
  // The newer spelling is an alias in the catalog and gets its own lens.
  await wb.waitForLensAbove("def prepare_moe_mxfp4_layer_for_marlin", /Measure here/i);
  await wb.screenshot("hotspot-lenses");
});

/** The function's lens after the newest successful run, to compare after the reload. */
let measuredLensText = "";

e2e("Measure here on a function runs the probe and shows the function's delta", async () => {
  await wb.openFile(FP4_FILE);
  await wb.clickLensAbove(PREPARE_DEF, /Measure here/i);
  await wb.waitForNotification(/MemLens: .*prepare_moe_fp4_layer_for_marlin/);
  await wb.screenshot("measure-here-running");
  measuredLensText = await wb.waitForLensAbove(PREPARE_DEF, DELTA);
  const retained = mibOf(measuredLensText);
  assert.ok(
    Math.abs(retained - REPACKED_MIB) <= RSS_TOLERANCE_MIB,
    `expected about +${REPACKED_MIB} MiB retained, the lens says "${measuredLensText}"`,
  );
  // The lens shows when the function returns; the run ends a little later.
  assert.equal((await wb.waitForRunsToEnd()).at(-1)?.status, "finished");
  // memlens.sitesCalls is not set in this workspace: its default went to the probe.
  const plan = (await newestRunFile("plan.json")) as { sites_calls?: number };
  assert.equal(plan.sites_calls, 2, "allocation sites of the first 2 calls per target, by default");
  // The status bar keeps the run's last reading, with its source.
  await wb.page
    .locator(".statusbar-item", { hasText: /host RSS \d/ })
    .first()
    .waitFor();
  await wb.screenshot("measure-here-delta");
});

e2e("Measure this line runs the probe on that line and shows the line's delta", async () => {
  await wb.openFile(FP4_FILE);
  await wb.goToLine(await lineNumberOf(FP4_FILE, STAGING_LINE));
  await wb.runCommand("MemLens: Measure This Line");
  const text = await wb.waitForLineResult(STAGING_LINE, DELTA);
  const delta = mibOf(text.slice(text.search(DELTA)));
  assert.ok(
    Math.abs(delta - STAGING_MIB) <= RSS_TOLERANCE_MIB,
    `expected about +${STAGING_MIB} MiB on the line, the editor shows "${text}"`,
  );
  // Both probes rode along: the function's lens shows its delta from this second run too.
  measuredLensText = await wb.waitForLensAbove(PREPARE_DEF, DELTA);
  assert.ok(Math.abs(mibOf(measuredLensText) - REPACKED_MIB) <= RSS_TOLERANCE_MIB, measuredLensText);
  // The next test reloads the window, which must not cut this run short.
  assert.equal((await wb.waitForRunsToEnd()).at(-1)?.status, "finished");
  await wb.screenshot("measure-line-delta");
});

e2e("reloading the window brings the deltas back from the run store", async () => {
  await wb.reloadWindow();
  await wb.openFile(FP4_FILE);
  const restored = await wb.waitForLensAbove(PREPARE_DEF, DELTA);
  // The same run, read back from disk by a new extension host: the very same summary.
  assert.equal(restored, measuredLensText);
  await wb.screenshot("restored-after-reload");
});

e2e("a failing command gives an error with the exit code and the last stderr line", async () => {
  await wb.writeFile("mode.txt", "fail\n");
  try {
    await wb.runCommand("MemLens: Run with Current Probes");
    const toast = await wb.waitForNotification(/exited with code 3/);
    const message = (await toast.textContent()) ?? "";
    assert.match(
      message,
      /failed on purpose/,
      `the notification should quote the target's stderr: "${message}"`,
    );
    await wb.screenshot("failing-command");
    await wb.clickNotificationButton(/exited with code 3/, "Open Output");
    await wb.page
      .locator(".output-view, .panel .monaco-editor", { hasText: "failed on purpose" })
      .first()
      .waitFor();
    assert.equal((await newestRunMeta()).status, "failed");
  } finally {
    await rm(wb.workspacePath("mode.txt"), { force: true });
  }
});

e2e("Cancel on the progress notification ends the whole process tree", async () => {
  await wb.clearNotifications();
  await wb.writeFile("mode.txt", "hang\n");
  const pidsFile = wb.workspacePath("pids.json");
  await rm(pidsFile, { force: true });
  try {
    await wb.openFile(RUNNER_FILE);
    await wb.clickLensAbove("def profile_run", /Measure here/i);
    const pids = await waitUntil("the workload's pids.json", async () => {
      try {
        return JSON.parse(await readFile(pidsFile, "utf8")) as { main: number; child: number };
      } catch {
        return false;
      }
    });
    const launcherPid = (await newestRunMeta()).pid;
    assert.ok(launcherPid !== undefined, "the run's meta.json names the launcher pid");
    // The phase comes from the catalog entry of the innermost open probed scope.
    const progress = await wb.waitForNotification(/Memory profiling run/);
    await wb.screenshot("cancel-progress");
    for (const pid of [pids.main, pids.child, launcherPid])
      assert.ok(isAlive(pid), `pid ${pid} runs before Cancel`);
    await progress.locator(".monaco-button", { hasText: "Cancel" }).first().click();
    await waitUntil(
      "the target's processes to end",
      () => ![pids.main, pids.child, launcherPid].some(isAlive),
      20_000,
    );
    await waitUntil(
      "the run to be recorded as stopped",
      async () => (await newestRunMeta()).status === "stopped",
    );
    await wb.page
      .locator(".notifications-toasts .notification-toast", { hasText: /Memory profiling run/ })
      .waitFor({ state: "hidden" });
    await wb.screenshot("cancelled");
  } finally {
    await rm(wb.workspacePath("mode.txt"), { force: true });
  }
});

e2e("a python path that does not exist gives an error that names it", async () => {
  await wb.setWorkspaceSettings({
    "memlens.command": ["python3", "load_model.py"],
    "memlens.sampleIntervalMs": 20,
    "memlens.python": "/nonexistent/bin/python3",
  });
  // A reload reads the settings file afresh, so the run cannot start with the old python.
  await wb.reloadWindow();
  await wb.runCommand("MemLens: Run with Current Probes");
  const toast = await wb.waitForNotification(/nonexistent\/bin\/python3/);
  const message = (await toast.textContent()) ?? "";
  assert.match(message, /could not start|cannot start|not found/i, `unclear message: "${message}"`);
  assert.ok(
    (await toast.locator(".monaco-button", { hasText: "Open Output" }).count()) > 0,
    "offers Open Output",
  );
  await wb.screenshot("bad-python");
});

e2e("the Runs view lists runs newest first; a click shows that run, delete removes it", async () => {
  await wb.setWorkspaceSettings({
    "memlens.command": ["python3", "load_model.py"],
    "memlens.sampleIntervalMs": 20,
  });
  await wb.page.locator('.activitybar .action-item a[aria-label^="MemLens"]').first().click();
  const runsPane = wb.page.locator(".part.sidebar .pane", {
    has: wb.page.locator(".pane-header", { hasText: "Runs" }),
  });
  const runRows = runsPane.locator('.monaco-list-row[aria-level="1"]');
  // Measure here, Measure line, fail, cancel, bad python: five runs, the last one first.
  await waitUntil("five runs in the Runs view", async () => (await runRows.count()) === 5);
  const labels = await runRows.allTextContents();
  assert.match(labels[0] ?? "", /failed/, `newest first: ${labels.join(" | ")}`);
  assert.match(labels[1] ?? "", /stopped/);
  assert.match(labels[4] ?? "", /prepare_moe_fp4_layer_for_marlin.*finished/);
  await wb.screenshot("runs-view");

  // The second run probed the line, the first only the function: the lenses follow the pick.
  await runRows.nth(3).click();
  // A click opens the run in the panel too; it takes the focus once it shows the run.
  await wb.webview().getByText(labels[3]!.split(" ")[0]!).first().waitFor();
  await wb.openFile(FP4_FILE);
  await wb.waitForLensAbove(STAGING_LINE, DELTA);
  await runRows.nth(4).click();
  await wb
    .webview()
    .getByText(/prepare_moe_fp4_layer_for_marlin/)
    .first()
    .waitFor();
  // Its children: the probed targets with their summary lines.
  await runRows.nth(4).locator(".monaco-tl-twistie").click();
  const targetRow = runsPane.locator('.monaco-list-row[aria-level="2"]', { hasText: /host RSS/ }).first();
  await targetRow.waitFor();
  assert.ok(Math.abs(mibOf((await targetRow.textContent()) ?? "") - REPACKED_MIB) <= RSS_TOLERANCE_MIB);
  await wb.openFile(FP4_FILE);
  await waitUntil(
    "the staging line's lens to go",
    async () => !DELTA.test((await wb.lensTextAbove(STAGING_LINE)) ?? ""),
  );
  assert.match(await wb.waitForLensAbove(PREPARE_DEF, DELTA), DELTA);
  await wb.screenshot("older-run-selected");

  const runsDir = wb.workspacePath(".memlens/runs");
  const before = (await readdir(runsDir)).sort();
  const oldest = before[0]!;
  await runRows.nth(4).hover();
  await runRows.nth(4).locator('.action-label[aria-label="Delete Run"]').click();
  await wb.page.locator(".monaco-dialog-box .monaco-button", { hasText: "Delete" }).first().click();
  await waitUntil("four runs left", async () => (await runRows.count()) === 4);
  assert.deepEqual(
    (await readdir(runsDir)).sort(),
    before.filter((id) => id !== oldest),
  );
  await wb.screenshot("run-deleted");
});
