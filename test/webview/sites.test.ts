// The Sites table and the allocator snapshot view in real Chromium: the built bundle in the
// extension's own HTML and CSP, fed the view model the extension builds from a run with `sites`
// events (test/fixtures/events/sites_oom.jsonl); numbers are checked against the events summed
// here. Every test also fails on a CSP violation or console error.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import type { Browser } from "playwright-core";
import { formatBytes } from "../../src/model/format";
import { RunModel } from "../../src/model/runModel";
import { parseAllocatorSnapshot } from "../../src/panel/messages";
import { buildSnapshot, RunViewTracker, type RunSource } from "../../src/panel/viewModel";
import type { Lang } from "../../src/l10n/lang";
import type { ExitEvent, ProbeEvent } from "../../src/protocol/events";
import { parseEventsText } from "../../src/protocol/reader";
import {
  AppendRun,
  envelope,
  OpenSource,
  ShowAllocatorSnapshot,
  ShowRun,
  type OpenSourceParams,
  type RunSnapshot,
} from "../../webview/protocol";
import { launchBrowser, openPanel, PanelServer, REPO_ROOT, SCREENSHOT_DIR, type PanelPage } from "./harness";

const FP4 =
  "/opt/venv/lib/python3.12/site-packages/vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py";

function events(): ProbeEvent[] {
  const parsed = parseEventsText(
    readFileSync(path.join(REPO_ROOT, "test/fixtures/events/sites_oom.jsonl"), "utf8"),
  );
  assert.deepEqual(parsed.malformed, []);
  return parsed.events;
}

function sourceOf(list: ProbeEvent[]): RunSource {
  return {
    id: "run-sites",
    meta: {
      id: "run-sites",
      label: "sites run",
      started: "2026-11-26T10:00:00Z",
      host: null,
      command: ["python", "load.py"],
      status: "finished",
    },
    model: RunModel.fromEvents(list),
  };
}

function snapshotOf(list: ProbeEvent[], lang: Lang = "en"): RunSnapshot {
  return buildSnapshot(sourceOf(list), lang);
}

/**
 * What the probe sends past the plan's sites_calls: t1's calls 3 to 24 in both processes, measured
 * (enter, exit) with no sites, and one `sites_limited` note per process when call 3 enters.
 */
function laterCalls(list: ProbeEvent[]): ProbeEvent[] {
  const out: ProbeEvent[] = [];
  const last = list.find((e) => e.type === "exit" && e.target === "t1" && e.call === 2)!;
  let ts = Math.max(...list.filter((e) => e.type !== "end").map((e) => e.ts));
  for (const pid of [300, 301]) {
    const rank = pid - 300;
    const common = { v: 1, pid, rank, device: rank } as const;
    for (let call = 3; call <= 24; call++) {
      const scope = { target: "t1", scope_id: `${pid}:${call}`, parent: null, call, depth: 0 };
      const before = { allocated: 1073741824 + (call - 1) * 2560 };
      out.push({ ...common, type: "enter", ts: (ts += 1_000_000), ...scope, before, file: FP4, line: 21 });
      if (call === 3) {
        out.push({
          ...common,
          type: "note",
          ts: (ts += 1_000_000),
          kind: "sites_limited",
          message: "allocation sites of t1 are recorded for its first 2 calls in this process",
          target: "t1",
        });
      }
      out.push({
        ...(last as ExitEvent),
        ...common,
        ts: (ts += 40_000_000),
        ...scope,
        before,
        after: { allocated: before.allocated + 2560 },
      });
    }
  }
  return out;
}

/** The coverage beside the Sites selector: its text and title, null while hidden. */
async function shownCoverage(panel: PanelPage): Promise<{ text: string; title: string } | null> {
  return panel.page.$eval("#sites-coverage", (el) =>
    (el as HTMLElement).hidden ? null : { text: el.textContent ?? "", title: (el as HTMLElement).title },
  );
}

/** What the table should show for a target: its sites events summed per line, from the raw events. */
function expectedRows(list: ProbeEvent[], target: string) {
  const rows = new Map<
    number,
    { allocated: number; freed: number; live: number; peak: number; count: number }
  >();
  for (const e of list) {
    if (e.type !== "sites" || e.target !== target) continue;
    for (const s of e.sites) {
      const row = rows.get(s.line) ?? { allocated: 0, freed: 0, live: 0, peak: 0, count: 0 };
      row.allocated += s.allocated_bytes;
      row.freed += s.freed_bytes;
      row.live += s.live_at_exit_bytes;
      row.peak = Math.max(row.peak, s.at_peak_bytes);
      row.count += s.count;
      rows.set(s.line, row);
    }
  }
  return rows;
}

interface ShownRow {
  place: string;
  fn: string;
  allocated: number;
  allocatedText: string;
  freed: number;
  live: number;
  peak: number;
  count: string;
  file: string;
  line: number;
}

async function shownRows(panel: PanelPage, container = "#sites"): Promise<ShownRow[]> {
  return panel.page.$$eval(`${container} tr.site`, (rows) =>
    rows.map((tr) => {
      const cell = (c: string) => tr.querySelector<HTMLElement>(`td[data-column="${c}"]`)!;
      const el = tr as HTMLElement;
      return {
        place: cell("place").textContent,
        fn: cell("function").textContent,
        allocated: Number(cell("allocated").dataset.bytes),
        allocatedText: cell("allocated").textContent,
        freed: Number(cell("freed").dataset.bytes),
        live: Number(cell("live").dataset.bytes),
        peak: Number(cell("peak").dataset.bytes),
        count: cell("count").textContent,
        file: el.dataset.file!,
        line: Number(el.dataset.line),
      };
    }),
  );
}

let server: PanelServer;
let browser: Browser;
before(async () => {
  server = await PanelServer.start();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function assertNoProblems(panel: PanelPage): Promise<void> {
  assert.deepEqual(await panel.problems(), [], "CSP violations or console errors in the webview");
}

void test("the Sites table of the hotspot with most allocated: every number from the events", async () => {
  const list = events();
  const panel = await openPanel(browser, server);
  try {
    await panel.send(envelope(ShowRun, { snapshot: snapshotOf(list), pinned: false }));
    await panel.page.waitForSelector("#sites tr.site");
    assert.equal(await panel.page.isVisible("#sites-section"), true);
    // The selector offers both probed functions, the one with most bytes first.
    const options = await panel.page.$$eval("#sites-target option", (o) =>
      o.map((x) => [(x as HTMLOptionElement).value, x.textContent]),
    );
    assert.deepEqual(
      options.map(([value]) => value),
      ["t1", "t5"],
    );
    assert.match(options[0]![1]!, /prepare_moe_fp4_layer_for_marlin/);
    const rows = await shownRows(panel);
    const expected = expectedRows(list, "t1");
    assert.equal(rows.length, expected.size);
    for (const row of rows) {
      const want = expected.get(row.line)!;
      assert.equal(row.file, FP4);
      assert.equal(row.place, `marlin_utils_fp4.py:${row.line}`);
      assert.equal(row.allocated, want.allocated);
      assert.equal(row.allocatedText, formatBytes(want.allocated));
      assert.equal(row.freed, want.freed);
      assert.equal(row.live, want.live);
      assert.equal(row.peak, want.peak);
      assert.equal(row.count, want.count.toLocaleString("en-US"));
    }
    // Largest allocation first, ties in file and line order.
    assert.deepEqual(
      rows.map((r) => r.line),
      [12, 29, 34, 24],
    );
    await panel.page
      .locator("#sites-section")
      .screenshot({ path: path.join(SCREENSHOT_DIR, "sites-table.png") });
    await assertNoProblems(panel);
  } finally {
    await panel.close();
  }
});

void test("a header click sorts, again reverses; the keyboard sorts too; the order survives a re-render", async () => {
  const panel = await openPanel(browser, server);
  try {
    await panel.send(envelope(ShowRun, { snapshot: snapshotOf(events()), pinned: false }));
    await panel.page.waitForSelector("#sites tr.site");
    await panel.page.click('#sites button.sort[data-column="live"]');
    assert.deepEqual(
      (await shownRows(panel)).map((r) => r.live),
      [768 * 1024 * 1024, 10240, 0, 0],
    );
    await panel.page.click('#sites button.sort[data-column="live"]');
    assert.deepEqual(
      (await shownRows(panel)).map((r) => r.live),
      [0, 0, 10240, 768 * 1024 * 1024],
    );
    assert.equal(
      await panel.page.getAttribute('#sites th:has(button[data-column="live"])', "aria-sort"),
      "ascending",
    );
    await panel.page.focus('#sites button.sort[data-column="count"]');
    await panel.page.keyboard.press("Enter");
    assert.deepEqual(
      (await shownRows(panel)).map((r) => r.count),
      ["256", "256", "7", "4"],
    );
    // Focus stays on the header that sorted.
    assert.equal(
      await panel.page.evaluate(() => (document.activeElement as HTMLElement).dataset.column),
      "count",
    );
    // Text columns sort A→Z first.
    await panel.page.click('#sites button.sort[data-column="function"]');
    assert.deepEqual(
      (await shownRows(panel)).map((r) => r.fn),
      [
        "prepare_moe_fp4_layer_for_marlin",
        "prepare_moe_fp4_layer_for_marlin",
        "prepare_moe_fp4_layer_for_marlin",
        "repack",
      ],
    );
    await assertNoProblems(panel);
  } finally {
    await panel.close();
  }
});

void test("a row click or Enter opens its line; picking another hotspot shows its sites", async () => {
  const panel = await openPanel(browser, server);
  try {
    await panel.send(envelope(ShowRun, { snapshot: snapshotOf(events()), pinned: false }));
    await panel.page.waitForSelector("#sites tr.site");
    await panel.page.click('#sites tr.site[data-line="29"] td[data-column="function"]');
    assert.deepEqual((await panel.waitForPosted(OpenSource.method)).params as OpenSourceParams, {
      file: FP4,
      line: 29,
    });
    const count = (await panel.posted()).length;
    await panel.page.focus('#sites tr.site[data-line="34"]');
    await panel.page.keyboard.press("Enter");
    assert.deepEqual((await panel.waitForPosted(OpenSource.method, count)).params as OpenSourceParams, {
      file: FP4,
      line: 34,
    });

    await panel.page.selectOption("#sites-target", "t5");
    const repack = await shownRows(panel);
    assert.deepEqual(
      repack.map((r) => [r.line, r.allocated, r.count]),
      [[12, 8 * 4 * 1024 * 1024, "8"]],
    );
    // The choice is kept with the panel's state (a reload finds it).
    assert.equal(
      await panel.page.evaluate(
        () =>
          (window as unknown as { __memlens: { state(): { sitesTarget?: string } } }).__memlens.state()
            .sitesTarget,
      ),
      "t5",
    );
    // Opening a hotspot in the Hotspots table makes it the Sites table's too.
    await panel.page.click('tr.hotspot[data-target="t1"] td[data-column="label"]');
    await panel.page.waitForFunction(
      () => (document.getElementById("sites-target") as HTMLSelectElement).value === "t1",
    );
    assert.equal((await shownRows(panel)).length, 4);
    await assertNoProblems(panel);
  } finally {
    await panel.close();
  }
});

void test("a function whose sites cover only its first calls says so beside its name; one fully recorded does not", async () => {
  const list = events();
  const panel = await openPanel(browser, server);
  try {
    // Every call of t1 and t5 has sites: nothing is added to the selector's line.
    const live = sourceOf(list);
    const tracker = new RunViewTracker(live);
    await panel.send(envelope(ShowRun, { snapshot: tracker.snapshot(), pinned: false }));
    await panel.page.waitForSelector("#sites tr.site");
    assert.equal(await panel.page.inputValue("#sites-target"), "t1");
    assert.equal(await shownCoverage(panel), null);
    assert.equal(await panel.page.isVisible("#sites-coverage"), false);

    // t1's later calls come in (a live run): its sites now add up 4 of its 48 calls.
    for (const e of laterCalls(list)) live.model.add(e);
    await panel.send(envelope(AppendRun, tracker.increment()));
    await panel.page.waitForSelector("#sites-coverage:not([hidden])");
    assert.deepEqual(await shownCoverage(panel), {
      text: "— first 4 of 48 calls",
      title:
        "Allocation sites are recorded for the first calls of each function in each process (the memlens.sitesCalls setting; 0 records every call). The numbers below add up those calls only.",
    });
    assert.equal(await panel.page.isVisible("#sites-coverage"), true);
    // The rows are the same 4 recorded calls' sums as before.
    assert.equal((await shownRows(panel)).length, 4);
    await panel.page
      .locator("#sites-section")
      .screenshot({ path: path.join(SCREENSHOT_DIR, "sites-table-partial.png") });

    // t5's every call was recorded: no coverage shown for it; back to t1, shown again.
    await panel.page.selectOption("#sites-target", "t5");
    assert.equal(await shownCoverage(panel), null);
    await panel.page.selectOption("#sites-target", "t1");
    assert.equal((await shownCoverage(panel))?.text, "— first 4 of 48 calls");

    // A run where some calls sent no sites without a limit (before CUDA): no "first".
    const unlimited = [...list, ...laterCalls(list).filter((e) => e.type !== "note")];
    await panel.send(envelope(ShowRun, { snapshot: snapshotOf(unlimited), pinned: false }));
    await panel.page.waitForFunction(
      () => document.getElementById("sites-coverage")!.textContent === "— 4 of 48 calls",
    );
    assert.match((await shownCoverage(panel))!.title, /^Only these calls sent allocation sites/);
    await assertNoProblems(panel);
  } finally {
    await panel.close();
  }
});

void test("zh-CN: the coverage in Chinese, numbers as in English", async () => {
  const list = events();
  const panel = await openPanel(browser, server, { lang: "zh-CN" });
  try {
    await panel.send(
      envelope(ShowRun, { snapshot: snapshotOf([...list, ...laterCalls(list)], "zh-CN"), pinned: false }),
    );
    await panel.page.waitForSelector("#sites-coverage:not([hidden])");
    const shown = await shownCoverage(panel);
    assert.equal(shown?.text, "— 48 次调用中的前 4 次");
    assert.match(shown.title, /memlens\.sitesCalls/);
    await panel.page.selectOption("#sites-target", "t5");
    assert.equal(await shownCoverage(panel), null);
    await assertNoProblems(panel);
  } finally {
    await panel.close();
  }
});

void test("a run without sites has no Sites section; event text is shown as text", async () => {
  const list = events();
  const panel = await openPanel(browser, server);
  try {
    await panel.send(
      envelope(ShowRun, { snapshot: snapshotOf(list.filter((e) => e.type !== "sites")), pinned: false }),
    );
    await panel.page.waitForSelector("tr.hotspot");
    assert.equal(await panel.page.isVisible("#sites-section"), false);

    const hostile = list.map((e) =>
      e.type === "sites"
        ? {
            ...e,
            sites: e.sites.map((s) => ({
              ...s,
              function: `<img src=x onerror="window.__pwned=1">${s.function}`,
            })),
          }
        : e,
    );
    await panel.send(envelope(ShowRun, { snapshot: snapshotOf(hostile), pinned: false }));
    await panel.page.waitForSelector("#sites tr.site");
    assert.equal(await panel.page.$$eval("#sites img", (imgs) => imgs.length), 0);
    assert.match((await shownRows(panel))[0]!.fn, /^<img src=x/);
    assert.equal(
      await panel.page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned),
      undefined,
    );
    await assertNoProblems(panel);
  } finally {
    await panel.close();
  }
});

void test("an allocator snapshot: its timeline drawn from the probe's points, its sites in a table, closable", async () => {
  const timeline: [number, number][] = [
    [1000, 0],
    [1500, 4 * 1024 * 1024],
    [2500, 12 * 1024 * 1024],
    [4000, 8 * 1024 * 1024],
  ];
  const sites = [
    {
      file: "/srv/vllm/vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py",
      line: 310,
      function: "_repack_marlin_experts",
      allocated_bytes: 4 * 9_043_968,
      freed_bytes: 4 * 9_043_968,
      live_at_exit_bytes: 0,
      at_peak_bytes: 9_043_968,
      count: 4,
    },
  ];
  // What "Open Allocator Snapshot" hands the panel, checked as the panel checks it.
  const view = parseAllocatorSnapshot({
    file: "/tmp/oom-301-2.pickle",
    timeline,
    sites,
    peakBytes: 12 * 1024 * 1024,
  });
  assert.ok(view);
  assert.equal(parseAllocatorSnapshot({ file: 1, timeline, sites, peakBytes: 0 }), undefined);
  const panel = await openPanel(browser, server);
  try {
    // No run is needed to look at a snapshot.
    await panel.send(envelope(ShowRun, { snapshot: null, emptyReason: "No runs yet.", pinned: false }));
    await panel.send(envelope(ShowAllocatorSnapshot, { view }));
    await panel.page.waitForSelector("#snapshot-sites tr.site");
    assert.equal(await panel.page.isVisible("#snapshot-section"), true);
    assert.equal(
      await panel.page.textContent("#snapshot-summary"),
      "oom-301-2.pickle: peak 12.0 MiB of requested bytes live; 1 allocation sites",
    );
    const points = await panel.page.evaluate(() => {
      const chart = (
        window as unknown as {
          __memlens: { snapshot(): { data: { datasets: { data: { x: number; y: number }[] }[] } } };
        }
      ).__memlens.snapshot();
      return chart.data.datasets[0]!.data;
    });
    assert.deepEqual(points, [
      { x: 0, y: 0 },
      { x: 0.0005, y: 4 * 1024 * 1024 },
      { x: 0.0015, y: 12 * 1024 * 1024 },
      { x: 0.003, y: 8 * 1024 * 1024 },
    ]);
    const rows = await shownRows(panel, "#snapshot-sites");
    assert.deepEqual(
      rows.map((r) => [r.place, r.allocated, r.freed, r.count]),
      [["marlin_utils_fp4.py:310", 4 * 9_043_968, 4 * 9_043_968, "4"]],
    );
    await panel.page.click("#snapshot-sites tr.site");
    assert.deepEqual((await panel.waitForPosted(OpenSource.method)).params, {
      file: sites[0]!.file,
      line: 310,
    });
    await panel.page
      .locator("#snapshot-section")
      .screenshot({ path: path.join(SCREENSHOT_DIR, "allocator-snapshot.png") });
    await panel.page.click("#close-snapshot");
    assert.equal(await panel.page.isVisible("#snapshot-section"), false);
    await assertNoProblems(panel);
  } finally {
    await panel.close();
  }
});
