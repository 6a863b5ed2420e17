// The memory panel in real Chromium: the built bundle in the extension's own HTML and CSP, fed
// the view model the extension builds from recorded runs. Numbers are checked against values
// computed here from the raw events; every test also fails on a CSP violation or console error.
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser } from "playwright-core";
import { formatBytes, formatDelta } from "../../src/model/format";
import { RunModel } from "../../src/model/runModel";
import { knownModelBudget } from "../../src/budget/modelBudget";
import { budgetForRun } from "../../src/panel/budgetSource";
import { decodePngDataUrl, pngSize } from "../../src/panel/png";
import { buildCompare, buildSnapshot, RunViewTracker, type RunSource } from "../../src/panel/viewModel";
import type { ProbeEvent } from "../../src/protocol/events";
import { parseEventsText } from "../../src/protocol/reader";
import type { RunMeta } from "../../src/runner/types";
import {
  AppendRun,
  CapturePng,
  envelope,
  OpenSource,
  SavePng,
  ShowBudget,
  ShowCompare,
  ShowRun,
  type Envelope,
  type OpenSourceParams,
  type RunSnapshot,
  type SavePngParams,
} from "../../webview/protocol";
import { expectedSeries, expectedTargets, timeZero } from "./expected";
import { fixtureEvents, FIXTURE_FILES, toJsonl } from "./fixtureRun";
import {
  launchBrowser,
  openPanel,
  PanelServer,
  REPO_ROOT,
  RESULTS_DIR,
  SCREENSHOT_DIR,
  type PanelPage,
} from "./harness";

const GiB = 1024 ** 3;
const EXAMPLES_DIR = path.join(REPO_ROOT, "python-probe", "examples");
const OUT_DIR = path.join(RESULTS_DIR, "webview");

interface Stream {
  name: string;
  events: ProbeEvent[];
}

/** Events as a reader gets them from a file: through the real JSON-lines parser. */
function readStream(name: string, text: string): Stream {
  const parsed = parseEventsText(text);
  assert.equal(parsed.versionError, undefined, `${name}: ${parsed.versionError?.message}`);
  assert.deepEqual(parsed.malformed, [], `${name} has malformed lines`);
  return { name, events: parsed.events };
}

/** The probe's recorded example streams (when present) and the generated vLLM-shaped run. */
function streams(): Stream[] {
  const out: Stream[] = [];
  let files: string[] = [];
  try {
    files = readdirSync(EXAMPLES_DIR).filter((f) => f.endsWith(".jsonl"));
  } catch {
    files = [];
  }
  for (const file of files.sort()) {
    const stream = readStream(file, readFileSync(path.join(EXAMPLES_DIR, file), "utf8"));
    if (stream.events.some((e) => e.type === "exit") && stream.events.some((e) => e.type === "sample"))
      out.push(stream);
  }
  out.push(readStream("generated vLLM load", toJsonl(fixtureEvents())));
  return out;
}

function runOf(events: ProbeEvent[], id: string, label = id): RunSource {
  const meta: RunMeta = {
    id,
    label,
    started: "2026-11-26T10:00:00Z",
    host: "gpu-host",
    command: ["python", "load_gpt_oss.py"],
    status: events.some((e) => e.type === "end") ? "finished" : "running",
  };
  return { id, meta, model: RunModel.fromEvents(events) };
}

function showRun(snapshot: RunSnapshot | null, emptyReason?: string): Envelope {
  return envelope(ShowRun, { snapshot, emptyReason, pinned: false });
}

interface RowText {
  target: string;
  label: string;
  calls: string;
  retained: { bytes: number; text: string };
  transient: { bytes?: number; text: string };
  peak: { bytes?: number; text: string };
}

async function tableRows(panel: PanelPage): Promise<RowText[]> {
  return panel.page.$$eval("tr.hotspot", (rows) =>
    rows.map((tr) => {
      const cell = (column: string) => tr.querySelector<HTMLElement>(`td[data-column="${column}"]`)!;
      const bytes = (column: string) => {
        const raw = cell(column).dataset.bytes;
        return raw === undefined ? undefined : Number(raw);
      };
      return {
        target: (tr as HTMLElement).dataset.target!,
        label: cell("label").textContent,
        calls: cell("calls").textContent,
        retained: { bytes: bytes("retained")!, text: cell("retained").textContent },
        transient: { bytes: bytes("transient"), text: cell("transient").textContent },
        peak: { bytes: bytes("peak"), text: cell("peak").textContent },
      };
    }),
  );
}

async function assertNoProblems(panel: PanelPage): Promise<void> {
  assert.deepEqual(await panel.problems(), [], "CSP violations or console errors in the webview");
}

/** The table shows, for every target that ran, the numbers computed from the raw events. */
async function assertTableMatches(panel: PanelPage, events: ProbeEvent[]): Promise<void> {
  const expected = expectedTargets(events);
  await panel.page.waitForFunction(
    (n) => document.querySelectorAll("tr.hotspot").length === n,
    expected.size,
  );
  const rows = await tableRows(panel);
  assert.equal(rows.length, expected.size);
  for (const row of rows) {
    const want = expected.get(row.target);
    assert.ok(want, `unexpected row ${row.target}`);
    assert.equal(row.retained.bytes, want.retained, `${row.target} retained`);
    assert.equal(row.retained.text, formatDelta(want.retained), `${row.target} retained text`);
    assert.equal(row.transient.bytes, want.transientMax, `${row.target} transient`);
    assert.equal(row.peak.bytes, want.peakAboveBeforeMax, `${row.target} peak above before`);
    assert.equal(
      row.calls,
      want.open > 0 ? `${want.calls} (${want.open} running)` : String(want.calls),
      `${row.target} calls`,
    );
  }
  const sources = new Set([...expected.values()].map((t) => t.source));
  const header = await panel.page.textContent('button.sort[data-column="retained"]');
  if (sources.size === 1) {
    assert.match(header!, sources.has("allocated") ? /allocated Δ/ : /host RSS Δ/);
  } else {
    assert.match(header!, /Δ of the row's reading/);
  }
}

/** The chart holds every sample of every process and reading, and draws points that are real samples. */
async function assertChartMatches(panel: PanelPage, events: ProbeEvent[]): Promise<void> {
  const expected = expectedSeries(events);
  for (const [pid, series] of expected) {
    for (const [reading, values] of Object.entries(series.readings)) {
      const got = await panel.page.evaluate(
        ([p, r]) => (window as unknown as MemlensDebug).__memlens.timeline.seriesData(p, r),
        [pid, reading] as const,
      );
      assert.ok(got, `no ${reading} series for pid ${pid}`);
      assert.equal(got.t.length, series.t.length, `pid ${pid} sample count`);
      for (let i = 0; i < series.t.length; i++) {
        assert.ok(Math.abs(got.t[i]! - series.t[i]!) < 1e-9, `pid ${pid} time ${i}`);
      }
      assert.deepEqual(
        got.values.map((v) => (v === null ? NaN : v)),
        values,
        `pid ${pid} ${reading} values`,
      );
    }
  }
  const drawn = await panel.page.evaluate(() => {
    const chart = (window as unknown as MemlensDebug).__memlens.charts.timeline!;
    return chart.data.datasets.map((d) => ({
      pid: d.pid,
      reading: d.reading,
      hidden: !!d.hidden,
      data: d.data,
    }));
  });
  const pairs = [...expected].flatMap(([pid, s]) => Object.keys(s.readings).map((r) => `${pid}/${r}`));
  assert.deepEqual(drawn.map((d) => `${d.pid}/${d.reading}`).sort(), pairs.sort());
  for (const dataset of drawn) {
    if (dataset.hidden) continue;
    const series = expected.get(dataset.pid)!;
    const values = series.readings[dataset.reading]!;
    const real = new Set(series.t.map((t, i) => `${t.toFixed(9)}|${values[i]}`));
    assert.ok(dataset.data.length > 0, `${dataset.pid}/${dataset.reading} draws nothing`);
    for (const point of dataset.data) {
      if (point.y === null || Number.isNaN(point.y)) continue; // a gap marker
      assert.ok(
        real.has(`${point.x.toFixed(9)}|${point.y}`),
        `drawn point ${point.x},${point.y} is not a sample`,
      );
    }
  }
  const enters = events.filter((e) => e.type === "enter").length;
  const bands = await panel.page.evaluate(
    () => (window as unknown as MemlensDebug).__memlens.timeline.bandList().length,
  );
  assert.equal(bands, enters);
}

interface MemlensDebug {
  __memlens: {
    timeline: {
      seriesData(pid: number, reading: string): { t: number[]; values: (number | null)[] } | undefined;
      bandList(): unknown[];
      visibleRange(): { min: number; max: number } | undefined;
      crosshair: number | undefined;
      lastDrawAt: number;
    };
    charts: {
      timeline?: {
        data: {
          datasets: {
            pid: number;
            reading: string;
            hidden?: boolean;
            data: { x: number; y: number | null }[];
            borderColor: string;
          }[];
        };
        scales: { x: { min: number; max: number } };
        width: number;
        height: number;
      };
      budget?: { data: { labels: string[]; datasets: { label: string; data: (number | null)[] }[] } };
    };
    state(): { sort: { column: string; descending: boolean }; hiddenReadings: string[]; expanded: string[] };
  };
}

let server: PanelServer;
let browser: Browser;

before(async () => {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  mkdirSync(OUT_DIR, { recursive: true });
  server = await PanelServer.start();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

void describe("recorded runs", () => {
  for (const stream of streams()) {
    void test(`${stream.name}: table numbers and chart data come from the events`, async () => {
      const panel = await openPanel(browser, server);
      try {
        await panel.send(showRun(buildSnapshot(runOf(stream.events, "r1", stream.name))));
        await assertTableMatches(panel, stream.events);
        await assertChartMatches(panel, stream.events);
        await assertNoProblems(panel);
      } finally {
        await panel.close();
      }
    });
  }
});

void describe("generated vLLM load", () => {
  const events = fixtureEvents();
  const run = () => runOf(events, "run-a", "gpt-oss-20b, per-layer workspace");

  void test("sorting by each column, with the mouse and with the keyboard", async () => {
    const panel = await openPanel(browser, server);
    try {
      await panel.send(showRun(buildSnapshot(run())));
      await panel.page.waitForSelector("tr.hotspot");
      const expected = [...expectedTargets(events).values()];
      const order = async () => (await tableRows(panel)).map((r) => r.target);
      const byRetained = [...expected].sort((a, b) => b.retained - a.retained).map((t) => t.target);
      assert.deepEqual(await order(), byRetained, "default: retained, largest first");
      assert.equal(
        await panel.page.getAttribute('th:has(button[data-column="retained"])', "aria-sort"),
        "descending",
      );

      await panel.page.click('button.sort[data-column="calls"]');
      const byCallsDesc = [...expected].sort((a, b) => b.calls - a.calls || a.target.localeCompare(b.target));
      assert.deepEqual(
        (await tableRows(panel)).map((r) => Number(r.calls)),
        byCallsDesc.map((t) => t.calls),
      );
      assert.equal(
        await panel.page.getAttribute('th:has(button[data-column="calls"])', "aria-sort"),
        "descending",
      );

      // Keyboard: the header button keeps focus across the re-render, Enter flips the order.
      await panel.page.focus('button.sort[data-column="calls"]');
      await panel.page.keyboard.press("Enter");
      assert.equal(
        await panel.page.getAttribute('th:has(button[data-column="calls"])', "aria-sort"),
        "ascending",
      );
      const ascending = (await tableRows(panel)).map((r) => Number(r.calls));
      assert.deepEqual(
        ascending,
        [...ascending].sort((a, b) => a - b),
      );
      assert.equal(
        await panel.page.evaluate(() => (document.activeElement as HTMLElement).dataset.column),
        "calls",
      );

      await panel.page.keyboard.press("Space");
      assert.equal(
        await panel.page.getAttribute('th:has(button[data-column="calls"])', "aria-sort"),
        "descending",
      );

      await panel.page.click('button.sort[data-column="transient"]');
      const transients = (await tableRows(panel)).map((r) => r.transient.bytes ?? -Infinity);
      assert.deepEqual(
        transients,
        [...transients].sort((a, b) => b - a),
      );
      await assertNoProblems(panel);
    } finally {
      await panel.close();
    }
  });

  void test("a row click or Enter posts openSource with the definition's file and line", async () => {
    const panel = await openPanel(browser, server);
    try {
      await panel.send(showRun(buildSnapshot(run())));
      await panel.page.click('tr.hotspot[data-target="t3"] td[data-column="label"]');
      const clicked = (await panel.waitForPosted(OpenSource.method)).params as OpenSourceParams;
      assert.deepEqual(clicked, { file: FIXTURE_FILES.marlin, line: 130 });

      const count = (await panel.posted()).length;
      await panel.page.focus('tr.hotspot[data-target="t2"]');
      await panel.page.keyboard.press("Enter");
      const entered = (await panel.waitForPosted(OpenSource.method, count)).params as OpenSourceParams;
      assert.deepEqual(entered, { file: FIXTURE_FILES.mxfp4, line: 270 });

      // Tab reaches the rows from the header.
      await panel.page.focus('button.sort[data-column="duration"]');
      await panel.page.keyboard.press("Tab");
      const focused = await panel.page.evaluate(() => (document.activeElement as HTMLElement).className);
      assert.match(focused, /hotspot|expand/);
      await assertNoProblems(panel);
    } finally {
      await panel.close();
    }
  });

  void test("a target in two processes expands into per-process rows", async () => {
    const panel = await openPanel(browser, server);
    try {
      await panel.send(showRun(buildSnapshot(run())));
      const expected = expectedTargets(events).get("t8")!;
      assert.equal(expected.perPid.size, 2);
      await panel.page.click('tr.hotspot[data-target="t8"] button.expand');
      await panel.page.waitForSelector('tr.process-row[data-parent="t8"]');
      const sub = await panel.page.$$eval('tr.process-row[data-parent="t8"]', (rows) =>
        rows.map((tr) => ({
          pid: Number((tr as HTMLElement).dataset.pid),
          calls: tr.querySelector('td[data-column="calls"]')!.textContent,
          retained: Number((tr.querySelector('td[data-column="retained"]') as HTMLElement).dataset.bytes),
        })),
      );
      assert.deepEqual(
        sub,
        [...expected.perPid].map(([pid, p]) => ({ pid, calls: String(p.calls), retained: p.retained })),
      );
      assert.equal(
        await panel.page.getAttribute('tr.hotspot[data-target="t8"] button.expand', "aria-expanded"),
        "true",
      );
      await assertNoProblems(panel);
    } finally {
      await panel.close();
    }
  });

  void test("compare: per-hotspot differences, the largest change first", async () => {
    const after = fixtureEvents({ sharedWorkspace: true, runId: "shared" });
    const panel = await openPanel(browser, server);
    try {
      await panel.send(showRun(buildSnapshot(run())));
      await panel.send(
        envelope(ShowCompare, {
          compare: buildCompare(run(), runOf(after, "run-b", "gpt-oss-20b, shared workspace")),
        }),
      );
      await panel.page.waitForSelector("#compare-section:not([hidden]) tr.compare-row");
      const a = expectedTargets(events);
      const b = expectedTargets(after);
      const workspaceDelta = b.get("t3")!.retained - a.get("t3")!.retained;
      const callsDelta = b.get("t3")!.calls - a.get("t3")!.calls;
      assert.equal(callsDelta, -23);
      const rows = await panel.page.$$eval("tr.compare-row", (trs) =>
        trs.map((tr) => ({
          key: (tr as HTMLElement).dataset.key,
          delta: Number((tr.querySelector('td[data-column="retainedDelta"]') as HTMLElement).dataset.bytes),
          change: tr.querySelector('td[data-column="change"]')!.textContent,
        })),
      );
      assert.equal(
        rows[0]!.key,
        "vllm.model_executor.layers.quantization.utils.marlin_utils:marlin_make_workspace_new",
      );
      assert.equal(rows[0]!.delta, workspaceDelta);
      assert.equal(rows[0]!.change, `${formatDelta(workspaceDelta)} retained · −23 calls`);
      assert.equal(formatDelta(workspaceDelta), "−1.1 GiB");
      const magnitudes = rows.map((r) => Math.abs(r.delta));
      assert.deepEqual(
        magnitudes,
        [...magnitudes].sort((x, y) => y - x),
        "larger changes first",
      );
      await assertNoProblems(panel);
    } finally {
      await panel.close();
    }
  });

  void test("budget: bars, the target line's value, every row and the verdict", async () => {
    const panel = await openPanel(browser, server);
    try {
      const r = run();
      const budget = budgetForRun(r, {
        targetBytes: 16 * GiB,
        gpuMemoryUtilization: 0.98,
        checkpoint: knownModelBudget("openai/gpt-oss-20b"),
      });
      assert.ok(budget.budget, budget.unavailable);
      await panel.send(showRun(buildSnapshot(r)));
      await panel.send(envelope(ShowBudget, budget));
      await panel.page.waitForSelector("tr.budget-row");
      const rows = await panel.page.$$eval("tr.budget-row", (trs) =>
        trs.map((tr) =>
          Array.from(tr.querySelectorAll("td")).map((td) => td.dataset.bytes ?? td.textContent),
        ),
      );
      assert.equal(rows.length, budget.budget.rows.length);
      budget.budget.rows.forEach((row, i) => {
        const [label, theory, measured, kind] = rows[i]!;
        assert.equal(label, row.label);
        assert.equal(theory, row.theoryBytes === undefined ? "—" : String(row.theoryBytes));
        assert.equal(measured, row.measuredBytes === undefined ? "—" : String(row.measuredBytes));
        assert.equal(kind, row.kind);
      });
      assert.equal(await panel.page.textContent("#verdict"), budget.budget.verdict);
      const target = await panel.page.getAttribute('tfoot td[data-bytes]:not([data-bytes=""])', "data-bytes");
      assert.ok(target);
      // Only the parts the budget marks as adding up are stacked, theory beside measured.
      const chart = await panel.page.evaluate(
        () => (window as unknown as MemlensDebug).__memlens.charts.budget!.data,
      );
      assert.deepEqual(chart.labels, ["Theory", "Measured"]);
      const stacked = budget.budget.rows.filter((row) => row.stack === true);
      assert.ok(stacked.length > 0);
      assert.deepEqual(
        chart.datasets.map((d) => d.data),
        stacked.map((row) => [row.theoryBytes ?? null, row.measuredBytes ?? null]),
      );

      await panel.send(
        envelope(ShowBudget, {
          runId: "run-a",
          budget: null,
          unavailable: "No model config for the budget.",
        }),
      );
      await panel.page.waitForFunction(
        () => document.getElementById("budget-note")!.textContent === "No model config for the budget.",
      );
      assert.equal(await panel.page.$$eval("tr.budget-row", (trs) => trs.length), 0);
      await assertNoProblems(panel);
    } finally {
      await panel.close();
    }
  });

  void test("a live run: increments add up to the whole run", async () => {
    const panel = await openPanel(browser, server);
    try {
      const cut = Math.floor(events.length * 0.4);
      const live = runOf(events.slice(0, cut), "live", "live run");
      const tracker = new RunViewTracker(live);
      await panel.send(showRun(tracker.snapshot()));
      await panel.page.waitForSelector(".badge.live");
      await assertTableMatches(panel, events.slice(0, cut));
      for (const slice of [events.slice(cut, cut + 500), events.slice(cut + 500)]) {
        for (const e of slice) live.model.add(e);
        live.meta.status = live.model.finished ? "finished" : "running";
        await panel.send(envelope(AppendRun, tracker.increment()));
      }
      await panel.page.waitForSelector(".badge.status-finished");
      await assertTableMatches(panel, events);
      await assertChartMatches(panel, events);
      await assertNoProblems(panel);
    } finally {
      await panel.close();
    }
  });

  void test("toggles, sort and expanded rows survive a reload (getState/setState)", async () => {
    const panel = await openPanel(browser, server);
    try {
      const snapshot = buildSnapshot(run());
      await panel.send(showRun(snapshot));
      await panel.page.click('button.sort[data-column="calls"]');
      await panel.page.uncheck('input[data-reading="reserved"]');
      await panel.page.click('tr.hotspot[data-target="t8"] button.expand');
      const hidden = await panel.page.evaluate(() =>
        (window as unknown as MemlensDebug).__memlens.charts
          .timeline!.data.datasets.filter((d) => d.hidden)
          .map((d) => d.reading),
      );
      assert.deepEqual(hidden, ["reserved"]);

      // Wait on the binding only: the reloaded page starts a fresh record of posted messages.
      const readyAgain = panel.waitForPosted("memlens/ready", Number.MAX_SAFE_INTEGER);
      await panel.page.reload();
      await readyAgain;
      await panel.init();
      await panel.send(showRun(snapshot));
      await panel.page.waitForSelector('tr.process-row[data-parent="t8"]');
      const state = await panel.page.evaluate(() => (window as unknown as MemlensDebug).__memlens.state());
      assert.deepEqual(state.sort, { column: "calls", descending: true });
      assert.deepEqual(state.hiddenReadings, ["reserved"]);
      assert.deepEqual(state.expanded, ["t8"]);
      assert.equal(await panel.page.isChecked('input[data-reading="reserved"]'), false);
      const hiddenAfter = await panel.page.evaluate(() =>
        (window as unknown as MemlensDebug).__memlens.charts
          .timeline!.data.datasets.filter((d) => d.hidden)
          .map((d) => d.reading),
      );
      assert.deepEqual(hiddenAfter, ["reserved"]);
      await assertNoProblems(panel);
    } finally {
      await panel.close();
    }
  });

  void test("zoom, pan reset and the crosshair read the raw samples", async () => {
    const panel = await openPanel(browser, server);
    try {
      await panel.send(showRun(buildSnapshot(run())));
      const canvas = await panel.page.waitForSelector("#timeline");
      const box = (await canvas.boundingBox())!;
      const full = await panel.page.evaluate(() => {
        const x = (window as unknown as MemlensDebug).__memlens.charts.timeline!.scales.x;
        return { min: x.min, max: x.max };
      });
      await panel.page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.6);
      await panel.page.mouse.wheel(0, -600);
      await panel.page.waitForFunction(
        () => !(document.getElementById("reset-zoom") as HTMLButtonElement).disabled,
      );
      const zoomed = await panel.page.evaluate(() =>
        (window as unknown as MemlensDebug).__memlens.timeline.visibleRange(),
      );
      assert.ok(zoomed && zoomed.max - zoomed.min < full.max - full.min, "wheel zooms in");

      // Crosshair: the readout shows each series' sample at or before the pointer's time.
      const before = await panel.page.evaluate(
        () => (window as unknown as MemlensDebug).__memlens.timeline.crosshair,
      );
      await panel.page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.6);
      // Wait for the crosshair to leave the wheel position; the readout must already show it.
      await panel.page.waitForFunction(
        (previous) => (window as unknown as MemlensDebug).__memlens.timeline.crosshair !== previous,
        before,
      );
      const { at, time, cells } = await panel.page.evaluate(() => ({
        at: (window as unknown as MemlensDebug).__memlens.timeline.crosshair!,
        time: document.querySelector(".readout-time")?.textContent ?? "",
        cells: Array.from(document.querySelectorAll("#readout td.num"), (td) => td.textContent ?? ""),
      }));
      assert.equal(time, `at ${at.toFixed(3)} s`, "the readout shows the crosshair's instant");
      // Every series read at `at` from the raw samples; the readout prints two decimals.
      const series = expectedSeries(events);
      const expected: string[] = [];
      let gpuSamples = 0;
      for (const s of series.values()) {
        let index = s.t.length - 1;
        while (index >= 0 && s.t[index]! > at) index--;
        for (const [reading, values] of Object.entries(s.readings)) {
          const value = index >= 0 ? values[index]! : NaN;
          if (reading === "allocated" && !Number.isNaN(value)) gpuSamples++;
          expected.push(Number.isNaN(value) ? "—" : formatBytes(value, 2));
        }
      }
      assert.ok(gpuSamples > 0, `no process had an allocated sample by ${at} s`);
      assert.deepEqual([...cells].sort(), expected.sort(), `readout at ${at} s`);

      // Keyboard: arrows move the crosshair, 0 resets the zoom.
      await panel.page.focus("#timeline");
      await panel.page.keyboard.press("ArrowRight");
      const moved = await panel.page.evaluate(
        () => (window as unknown as MemlensDebug).__memlens.timeline.crosshair!,
      );
      assert.ok(moved > at);
      await panel.page.keyboard.press("0");
      await panel.page.waitForFunction(
        () => (document.getElementById("reset-zoom") as HTMLButtonElement).disabled,
      );
      assert.equal(
        await panel.page.evaluate(() =>
          (window as unknown as MemlensDebug).__memlens.timeline.visibleRange(),
        ),
        undefined,
      );
      await assertNoProblems(panel);
    } finally {
      await panel.close();
    }
  });

  void test("save PNG: the button and a host request both deliver a real PNG of the chart", async () => {
    const panel = await openPanel(browser, server);
    try {
      await panel.send(showRun(buildSnapshot(run())));
      await panel.page.click("#save-timeline");
      const saved = (await panel.waitForPosted(SavePng.method)).params as SavePngParams;
      assert.equal(saved.chart, "timeline");
      assert.equal(saved.path, undefined);
      const png = decodePngDataUrl(saved.dataUrl);
      const size = await panel.page.evaluate(() => {
        const c = document.getElementById("timeline") as HTMLCanvasElement;
        return { width: c.width, height: c.height };
      });
      assert.deepEqual(pngSize(png), size);

      const count = (await panel.posted()).length;
      const file = path.join(OUT_DIR, "timeline.png");
      await panel.send(envelope(CapturePng, { chart: "timeline", path: file }));
      const requested = (await panel.waitForPosted(SavePng.method, count)).params as SavePngParams;
      assert.equal(requested.path, file);
      await writeFile(file, decodePngDataUrl(requested.dataUrl));
      assert.deepEqual(pngSize(readFileSync(file)), size);
      await assertNoProblems(panel);
    } finally {
      await panel.close();
    }
  });

  void test("event text is shown as text, never as HTML", async () => {
    const hostile = fixtureEvents({ hostileText: true });
    const panel = await openPanel(browser, server);
    try {
      await panel.send(showRun(buildSnapshot(runOf(hostile, "hostile"))));
      const label = await panel.page.textContent('tr.hotspot[data-target="t6"] td[data-column="label"]');
      assert.match(label!, /<img src=x onerror=alert\(1\)>/);
      // Put the crosshair on the fact with the <script> text: the readout shows it as text.
      const factAt = (hostile.find((e) => e.type === "fact")!.ts - timeZero(hostile)) / 1e9;
      await panel.page.evaluate(
        (t) =>
          (
            window as unknown as { __memlens: { timeline: { setCrosshair(t: number): void } } }
          ).__memlens.timeline.setCrosshair(t),
        factAt,
      );
      await panel.page.waitForSelector(".readout-marker");
      assert.match((await panel.page.textContent(".readout-marker"))!, /<script>alert\(1\)<\/script>/);
      assert.equal(await panel.page.$$eval("img, script:not([src])", (nodes) => nodes.length), 0);
      await assertNoProblems(panel);
    } finally {
      await panel.close();
    }
  });

  void test("no run: the panel says why", async () => {
    const panel = await openPanel(browser, server);
    try {
      await panel.send(showRun(null, "No runs yet. Click “Measure here”."));
      await panel.page.waitForSelector("#empty:not([hidden])");
      assert.equal(await panel.page.textContent("#empty"), "No runs yet. Click “Measure here”.");
      assert.equal(await panel.page.isHidden("#content"), true);
      await assertNoProblems(panel);
    } finally {
      await panel.close();
    }
  });

  void test("themes: colours follow VS Code's variables; screenshots in each theme", async () => {
    const after = fixtureEvents({ sharedWorkspace: true, runId: "shared" });
    const panel = await openPanel(browser, server, { theme: "dark", height: 2000 });
    try {
      const r = run();
      await panel.send(showRun(buildSnapshot(r)));
      await panel.send(
        envelope(
          ShowBudget,
          budgetForRun(r, {
            targetBytes: 16 * GiB,
            gpuMemoryUtilization: 0.98,
            checkpoint: knownModelBudget("openai/gpt-oss-20b"),
          }),
        ),
      );
      await panel.send(
        envelope(ShowCompare, {
          compare: buildCompare(r, runOf(after, "run-b", "gpt-oss-20b, shared workspace")),
        }),
      );
      await panel.page.waitForSelector("tr.compare-row");
      await panel.page.click('tr.hotspot[data-target="t8"] button.expand');
      const canvas = (await panel.page.$("#timeline"))!;
      const box = (await canvas.boundingBox())!;
      await panel.page.mouse.move(box.x + box.width * 0.45, box.y + box.height * 0.55);
      const colour = () =>
        panel.page.evaluate(
          () =>
            (window as unknown as MemlensDebug).__memlens.charts.timeline!.data.datasets.find(
              (d) => d.reading === "allocated",
            )!.borderColor,
        );
      for (const [theme, blue] of [
        ["dark", "#3794ff"],
        ["light", "#1a85ff"],
        ["high-contrast", "#3794ff"],
      ] as const) {
        await panel.setTheme(theme);
        await panel.page.waitForFunction((b) => {
          const d = (window as unknown as MemlensDebug).__memlens.charts.timeline!.data.datasets.find(
            (x) => x.reading === "allocated",
          );
          return d?.borderColor === b && document.body.classList.length > 0;
        }, blue);
        assert.equal(await colour(), blue);
        await panel.page.mouse.move(box.x + box.width * 0.45, box.y + box.height * 0.55);
        await panel.page.screenshot({
          path: path.join(SCREENSHOT_DIR, `panel-${theme}.png`),
          fullPage: true,
        });
        await panel.page
          .locator("#timeline-section")
          .screenshot({ path: path.join(SCREENSHOT_DIR, `panel-${theme}-timeline.png`) });
      }
      await assertNoProblems(panel);
    } finally {
      await panel.close();
    }
  });
});
