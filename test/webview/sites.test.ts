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
import { buildSnapshot, type RunSource } from "../../src/panel/viewModel";
import type { ProbeEvent } from "../../src/protocol/events";
import { parseEventsText } from "../../src/protocol/reader";
import {
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

function snapshotOf(list: ProbeEvent[]): RunSnapshot {
  const run: RunSource = {
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
  return buildSnapshot(run);
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
