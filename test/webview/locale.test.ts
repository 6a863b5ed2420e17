// The memory panel in Chinese: the host renders the page's own text and sends every other string
// in the Init message (src/l10n/panel.ts); the webview bundle holds none of them. Budget labels and
// the verdict come from the host in the same language; the numbers and units are unchanged.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import type { Browser } from "playwright-core";
import { knownModelBudget } from "../../src/budget/modelBudget";
import { PANEL_TEXT } from "../../src/l10n/panel";
import { RunModel } from "../../src/model/runModel";
import { budgetForRun } from "../../src/panel/budgetSource";
import { buildSnapshot, type RunSource } from "../../src/panel/viewModel";
import { envelope, ShowBudget, ShowRun } from "../../webview/protocol";
import { fixtureEvents } from "./fixtureRun";
import { launchBrowser, openPanel, PanelServer, REPO_ROOT, SCREENSHOT_DIR } from "./harness";

const GiB = 1024 ** 3;

function run(): RunSource {
  return {
    id: "run-a",
    meta: {
      id: "run-a",
      label: "gpt-oss-20b",
      started: "2026-11-26T10:00:00Z",
      host: "gpu-host",
      command: ["python", "load_gpt_oss.py"],
      status: "finished",
    },
    model: RunModel.fromEvents(fixtureEvents()),
  };
}

let server: PanelServer;
let browser: Browser;
before(async () => {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  server = await PanelServer.start();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

void test("zh-CN: headings, table, budget and readout in Chinese; the numbers as in English", async () => {
  const panel = await openPanel(browser, server, { lang: "zh-CN", height: 1600 });
  try {
    const r = run();
    const budget = budgetForRun(
      r,
      {
        targetBytes: 16 * GiB,
        gpuMemoryUtilization: 0.98,
        checkpoint: knownModelBudget("openai/gpt-oss-20b"),
      },
      "zh-CN",
    );
    assert.ok(budget.budget, budget.unavailable);
    await panel.send(envelope(ShowRun, { snapshot: buildSnapshot(r, "zh-CN"), pinned: false }));
    await panel.send(envelope(ShowBudget, budget));
    await panel.page.waitForSelector("tr.budget-row");
    const page = panel.page;
    assert.equal(await page.getAttribute("html", "lang"), "zh-CN");
    assert.equal(await page.textContent("#timeline-heading"), "显存随时间的变化");
    assert.equal(await page.textContent("#hotspots-heading"), "热点");
    assert.equal(await page.textContent("#compare-button"), "比较两次运行…");
    assert.match(
      (await page.textContent("#run-meta")) ?? "",
      /^在 gpu-host 上 · 开始于 .* · \d+ 个进程 · [\d,]+ 个采样$/,
    );
    const retained = (await page.textContent('button.sort[data-column="retained"]')) ?? "";
    assert.match(retained, /^保留量 ▼(各行读数的 Δ|(已分配|主机 RSS) Δ)$/);
    assert.deepEqual(await page.$$eval("table.budget thead th", (ths) => ths.map((th) => th.textContent)), [
      "部分",
      "理论值",
      "实测",
      "类型",
      "来源",
    ]);
    const kinds = await page.$$eval("tr.budget-row td:nth-child(4)", (tds) =>
      tds.map((td) => td.textContent),
    );
    assert.ok(
      kinds.every((k) => k === "理论值" || k === "实测" || k === "估算"),
      kinds.join(),
    );
    assert.match((await page.textContent("#verdict")) ?? "", /^放(得|不)下：/);
    assert.ok(budget.budget.rows.some((row) => row.label === "常驻权重"));
    const labels = await page.evaluate(
      () =>
        (window as unknown as { __memlens: { charts: { budget?: { data: { labels: string[] } } } } })
          .__memlens.charts.budget!.data.labels,
    );
    assert.deepEqual(labels, ["理论值", "实测"]);
    assert.deepEqual(await page.$$eval("#toggles legend", (ls) => ls.map((l) => l.textContent)), [
      "进程",
      "读数",
    ]);
    // The same bytes as the English panel shows: only the words differ.
    const en = buildSnapshot(r, "en");
    const zh = buildSnapshot(r, "zh-CN");
    assert.deepEqual(
      zh.hotspots.map((h) => h.retained),
      en.hotspots.map((h) => h.retained),
    );
    assert.deepEqual(await panel.problems(), [], "CSP violations or console errors in the webview");
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, "panel-zh-CN.png"), fullPage: true });
  } finally {
    await panel.close();
  }
});

void test("the webview bundle holds none of the panel's sentences: they come from the host", () => {
  const bundle = readFileSync(path.join(REPO_ROOT, "dist", "webview", "panel.js"), "utf8");
  const sentences = Object.values(PANEL_TEXT.en).filter((text) => text.length >= 16 && text.includes(" "));
  assert.ok(sentences.length > 20);
  for (const text of [...sentences, ...Object.values(PANEL_TEXT["zh-CN"])]) {
    assert.ok(!bundle.includes(JSON.stringify(text).slice(1, -1)), `"${text}" is in dist/webview/panel.js`);
  }
});
