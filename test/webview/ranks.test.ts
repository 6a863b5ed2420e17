// The memory panel in real Chromium on a tensor-parallel run: the real events of the two-rank
// stand-in (test/fixtures/dap/tp_load.py under the real probe). One series per rank, labelled by
// rank; a per-rank column in the hotspot table with the worst rank marked and sortable; a budget
// verdict line per rank.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Browser } from "playwright-core";
import { formatDelta } from "../../src/model/format";
import { rankSpread } from "../../src/model/ranks";
import { knownModelBudget } from "../../src/budget/modelBudget";
import { budgetForRun } from "../../src/panel/budgetSource";
import { buildSnapshot, type RunSource } from "../../src/panel/viewModel";
import type { RunMeta } from "../../src/runner/types";
import { envelope, ShowBudget, ShowRun } from "../../webview/protocol";
import { runTpStandIn, torchPython, type TpRun } from "../lsp/tpStandIn";
import { launchBrowser, openPanel, PanelServer, type PanelPage } from "./harness";

const GiB = 1024 ** 3;

let browser: Browser;
let server: PanelServer;
let tp: TpRun;
let source: RunSource;

before(async () => {
  const python = torchPython();
  [tp, browser, server] = await Promise.all([
    python ? runTpStandIn(python) : runTpStandIn("python3", ["--no-torch"]),
    launchBrowser(),
    PanelServer.start(),
  ]);
  const meta: RunMeta = {
    id: "tp2",
    label: "two-rank stand-in",
    started: "2026-11-30T13:00:00Z",
    host: null,
    command: ["python3", "tp_load.py"],
    status: "finished",
  };
  source = { id: "tp2", meta, model: tp.model };
});

after(async () => {
  await browser?.close();
  await server?.stop();
  tp?.remove();
});

async function assertNoProblems(panel: PanelPage): Promise<void> {
  assert.deepEqual(await panel.problems(), [], "CSP violations or console errors in the webview");
}

interface TimelineDebug {
  __memlens: {
    charts: { timeline?: { data: { datasets: { pid: number; reading: string; label: string }[] } } };
  };
}

void test("one series per rank, labelled by rank, the ranks in order", async () => {
  const panel = await openPanel(browser, server);
  try {
    await panel.send(envelope(ShowRun, { snapshot: buildSnapshot(source), pinned: false }));
    await panel.page.waitForSelector("#toggles input[data-pid]");
    const toggles = await panel.page.$$eval("#toggles fieldset:first-of-type label", (labels) =>
      labels.map((l) => ({ pid: Number(l.querySelector("input")!.dataset.pid), text: l.textContent })),
    );
    const [rank0, rank1] = tp.workers;
    const rankToggles = toggles.filter((t) => t.pid === rank0!.pid || t.pid === rank1!.pid);
    assert.deepEqual(
      rankToggles.map((t) => t.pid),
      [rank0!.pid, rank1!.pid],
      "rank 0 before rank 1",
    );
    assert.match(rankToggles[0]!.text, new RegExp(`^rank 0 · VllmWorker-0 · pid ${rank0!.pid}`));
    assert.match(rankToggles[1]!.text, new RegExp(`^rank 1 · VllmWorker-1 · pid ${rank1!.pid}`));
    assert.equal(toggles.indexOf(rankToggles[0]!), toggles.length - 2, "ranks after the parent's processes");

    const datasets = await panel.page.evaluate(() =>
      (window as unknown as TimelineDebug).__memlens.charts.timeline!.data.datasets.map((d) => ({
        pid: d.pid,
        reading: d.reading,
        label: d.label,
      })),
    );
    for (const worker of tp.workers) {
      const own = datasets.filter((d) => d.pid === worker.pid);
      assert.ok(own.length > 0, `rank ${worker.rank} has its own series`);
      for (const d of own)
        assert.match(d.label, new RegExp(`^rank ${worker.rank} · VllmWorker-${worker.rank} · `));
    }
    await assertNoProblems(panel);
  } finally {
    await panel.close();
  }
});

void test("the hotspot table has a per-rank column: each rank's retained, the worst in bold, sortable", async () => {
  const panel = await openPanel(browser, server);
  try {
    await panel.send(envelope(ShowRun, { snapshot: buildSnapshot(source), pinned: false }));
    await panel.page.waitForSelector('tr.hotspot[data-target="load"] td[data-column="ranks"]');
    const headers = await panel.page.$$eval("thead button.sort", (b) =>
      b.map((x) => (x as HTMLElement).dataset.column),
    );
    assert.deepEqual(headers, ["label", "calls", "retained", "ranks", "transient", "peak", "duration"]);
    for (const target of ["load", "kv", "ws"]) {
      const spread = rankSpread(tp.model, target)!;
      const cells = await panel.page.$$eval(
        `tr.hotspot[data-target="${target}"] td[data-column="ranks"] .rank`,
        (els) =>
          els.map((e) => ({
            rank: Number((e as HTMLElement).dataset.rank),
            bytes: Number((e as HTMLElement).dataset.bytes),
            text: e.textContent,
            worst: e.tagName === "STRONG",
          })),
      );
      assert.deepEqual(
        cells,
        spread.ranks.map((r) => ({
          rank: r.rank,
          bytes: r.retained,
          text: `r${r.rank} ${formatDelta(r.retained)}`,
          worst: r === spread.worst,
        })),
        target,
      );
    }
    assert.equal(rankSpread(tp.model, "load")!.worst.rank, 1, "rank 1 holds the larger shard");

    // Sorting by the column orders the rows by their worst rank's retained.
    await panel.page.click('thead button.sort[data-column="ranks"]');
    await panel.page.waitForSelector('th[aria-sort="descending"] button[data-column="ranks"]');
    const order = await panel.page.$$eval("tr.hotspot", (rows) =>
      rows.map((r) => (r as HTMLElement).dataset.target ?? ""),
    );
    assert.equal(order.length, 5, "every stand-in target ran");
    const worst = order.map((t) => rankSpread(tp.model, t)?.maxRetained ?? -Infinity);
    assert.deepEqual(
      worst,
      [...worst].sort((a, b) => b - a),
      `rows by their worst rank, largest first: ${order.join(", ")}`,
    );

    // A row's processes name their rank in the column.
    await panel.page.click('tr.hotspot[data-target="load"] button.expand');
    await panel.page.waitForSelector('tr.process-row[data-parent="load"]');
    const sub = await panel.page.$$eval('tr.process-row[data-parent="load"]', (rows) =>
      rows.map((tr) => [
        Number((tr as HTMLElement).dataset.pid),
        tr.querySelector('td[data-column="ranks"]')!.textContent,
      ]),
    );
    assert.deepEqual(
      sub,
      tp.workers.map((w) => [w.pid, `rank ${w.rank}`]),
    );
    await assertNoProblems(panel);
  } finally {
    await panel.close();
  }
});

void test("the budget shows the deciding rank and a verdict line per rank", async () => {
  const panel = await openPanel(browser, server);
  try {
    const budget = budgetForRun(source, {
      targetBytes: 16 * GiB,
      gpuMemoryUtilization: 0.9,
      checkpoint: knownModelBudget("openai/gpt-oss-20b"),
    });
    assert.ok(budget.budget, budget.unavailable);
    assert.equal(budget.budget.rankVerdicts?.length, 2);
    await panel.send(envelope(ShowRun, { snapshot: buildSnapshot(source), pinned: false }));
    await panel.send(envelope(ShowBudget, budget));
    await panel.page.waitForSelector("tr.budget-row");
    const verdict = (await panel.page.textContent("#verdict")) ?? "";
    const lines = verdict.split("\n");
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /^Rank [01] of 2 decides/);
    assert.match(lines[1]!, /^rank 0( \(worst\))?: (Fits|Does not fit)/);
    assert.match(lines[2]!, /^rank 1( \(worst\))?: (Fits|Does not fit)/);
    assert.equal(lines.filter((l) => l.includes("(worst)")).length, 1);
    // The theory weights are split over the two ranks.
    const weights = budget.budget.rows.find((r) => r.label === "Resident weights")!;
    assert.match(weights.source, /÷ 2 ranks/);
    await assertNoProblems(panel);
  } finally {
    await panel.close();
  }
});
