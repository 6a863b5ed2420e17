// Phase stepping end to end: F5 on a memlens launch configuration in code-server runs the real
// probe around the stand-in vLLM load path (test/fixtures/dap), stops at a hotspot, shows memory
// readings in the Variables view, and Continue reaches the next phase; the lens above a function
// follows the session (unfinished while paused at its exit, its delta once it returned).
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { isAlive, waitUntil, Workbench } from "./harness";

let wb: Workbench;

before(async () => {
  wb = await Workbench.start({ name: "debug", workspace: "test/fixtures/dap" });
});

after(async () => {
  await wb?.stop();
});

/** A row of the Run and Debug views (call stack, variables) whose text matches. */
function debugRow(text: string | RegExp) {
  return wb.page.locator(".debug-pane .monaco-list-row", { hasText: text }).first();
}

async function runMeta(): Promise<{ status: string; pid?: number }> {
  const runsDir = wb.workspacePath(".memlens/runs");
  const ids = (await readdir(runsDir)).sort();
  assert.equal(ids.length, 1, `one run folder in ${runsDir}`);
  return JSON.parse(await readFile(path.join(runsDir, ids[0]!, "meta.json"), "utf8")) as {
    status: string;
    pid?: number;
  };
}

void test("F5 stops at a hotspot with readings in Variables; Continue reaches the next phase", () =>
  wb.step("F5 stops at a hotspot with readings in Variables; Continue reaches the next phase", async () => {
    // F5 starts the configuration selected in Run and Debug, once the workbench knows the memlens type.
    await wb.page.keyboard.press("Control+Shift+D");
    await waitUntil("the memlens configuration in Run and Debug", async () =>
      /MemLens: stand-in load phases/.test(
        (await wb.page.locator(".part.sidebar select").first().inputValue()) ?? "",
      ),
    );
    // Run and Debug's start button is F5's command (a key press may land on whichever element has focus).
    await wb.page.locator('.part.sidebar [aria-label^="Start Debugging"]').first().click();

    // The first stop: GPUModelRunner.load_model, a hotspot of the "load weights" phase.
    await debugRow("GPUModelRunner.load_model · entry").waitFor();
    await wb.page.locator(".tab", { hasText: "gpu_model_runner.py" }).first().waitFor();
    await wb.page.locator(".debug-top-stack-frame-line").first().waitFor();
    // With one process the Call Stack header carries the stop's description.
    await wb.page
      .locator(".pane-header", { hasText: "Loading weights: entry of GPUModelRunner.load_model" })
      .waitFor();
    // "Now" is the first scope, so VS Code expands it: host readings in MiB and exact bytes.
    const rss = debugRow(/^host_rss/);
    await rss.waitFor();
    assert.match((await rss.textContent()) ?? "", /host_rss\s*=\s*\d+\.\d\d MiB \([\d,]+ B\)/);
    await wb.screenshot("stopped-at-load-model");

    // Continue: the exit of load_model (same phase), where the weights' memory shows since entry.
    await wb.runCommand("Debug: Continue");
    await debugRow("GPUModelRunner.load_model · exit").waitFor();
    // The scopes list re-renders as the stop's requests complete: click until the scope is open.
    await waitUntil("the Since scope entry scope to expand", async () => {
      const scope = debugRow("Since scope entry");
      if ((await scope.getAttribute("aria-expanded")) === "true") return true;
      await scope.click();
      return false;
    });
    const grown = debugRow(/^host_rss\s*=\s*\+/);
    await grown.waitFor();
    const mib = Number(/\+(\d+\.\d\d) MiB/.exec((await grown.textContent()) ?? "")?.[1]);
    assert.ok(mib >= 96, `host_rss grew by ${mib} MiB since load_model's entry (it fills 96 MiB)`);
    // Paused at its exit, load_model has not returned yet: its lens says so (samples keep coming).
    await wb.waitForLensAbove("def load_model", /1 call · 1 unfinished/);
    await wb.screenshot("load-model-exit");

    // Continue: the next phase, the memory profiling run.
    await wb.runCommand("Debug: Continue");
    await debugRow("GPUModelRunner.profile_run · entry").waitFor();
    // load_model has exited: its lens shows the finished call's delta, no longer "unfinished".
    const lens = await wb.waitForLensAbove(
      "def load_model",
      /^(?!.*unfinished).*\+\d+\.\d MiB host RSS.*1 call/,
    );
    const retained = Number(/\+(\d+\.\d) MiB host RSS/.exec(lens)?.[1]);
    assert.ok(retained >= 96, `load_model's lens shows +${retained} MiB host RSS (it keeps 96 MiB): ${lens}`);
    await wb.screenshot("next-phase-profile-run");

    // Stop ends the run's process tree.
    const { pid } = await runMeta();
    assert.ok(pid !== undefined && isAlive(pid), "the launcher runs while the session is paused");
    await wb.runCommand("Debug: Stop");
    await waitUntil("the run to be stopped", async () => (await runMeta()).status === "stopped");
    await waitUntil("the launcher to exit", () => !isAlive(pid));
  }));
