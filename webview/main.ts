// The memory panel webview. Posts `ready` once its listener is in place; the host then sends the
// run. UI state (toggles, sort, zoom, expanded rows, compared runs) lives in vscode.setState so
// it survives hiding (the webview is not retained) and window reloads (the host's serializer).
import "./panel.css";
import { formatDuration } from "../src/model/format";
import { BudgetChart } from "./budgetChart";
import { renderCompare } from "./compareTable";
import { byId, el } from "./dom";
import { HotspotTable } from "./hotspotTable";
import { SitesTable } from "./sitesTable";
import { SnapshotView } from "./snapshotView";
import {
  AppendRun,
  CapturePng,
  ClearCompare,
  envelope,
  Init,
  isMessage,
  OpenSource,
  PickCompare,
  Ready,
  SavePng,
  ShowBudget,
  ShowCompare,
  ShowRun,
  ShowAllocatorSnapshot,
  SITE_SORT_COLUMNS,
  SORT_COLUMNS,
  TIMELINE_READINGS,
  WebviewError,
  type ChartName,
  type Envelope,
  type HotspotRow,
  type MessageType,
  type PanelState,
  type RunIncrement,
  type RunSnapshot,
  type ShowRunParams,
  type SiteCoverageView,
  type SiteRow,
} from "./protocol";
import { readPalette, watchTheme } from "./theme";
import { Timeline } from "./timeline";
import { s, setStrings } from "./text";

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();

function post<P>(type: MessageType<P>, params: P): void {
  vscode.postMessage(envelope(type, params));
}

function reportError(message: string, stack?: string): void {
  post(WebviewError, { message, stack });
}
window.addEventListener("error", (e) =>
  reportError(String(e.message), e.error instanceof Error ? e.error.stack : undefined),
);
window.addEventListener("unhandledrejection", (e) => reportError(`unhandled rejection: ${String(e.reason)}`));

function loadState(): PanelState {
  const fallback: PanelState = {
    version: 1,
    hiddenPids: [],
    hiddenReadings: [],
    sort: { column: "retained", descending: true },
    expanded: [],
  };
  const saved = vscode.getState() as Partial<PanelState> | undefined;
  if (!saved || saved.version !== 1) return fallback;
  const sortOk = saved.sort && (SORT_COLUMNS as readonly string[]).includes(saved.sort.column);
  return {
    ...fallback,
    ...saved,
    hiddenPids: Array.isArray(saved.hiddenPids) ? saved.hiddenPids : [],
    hiddenReadings: Array.isArray(saved.hiddenReadings)
      ? saved.hiddenReadings.filter((r) => (TIMELINE_READINGS as readonly string[]).includes(r))
      : [],
    sort: sortOk ? saved.sort! : fallback.sort,
    expanded: Array.isArray(saved.expanded) ? saved.expanded : [],
    sitesSort:
      saved.sitesSort && (SITE_SORT_COLUMNS as readonly string[]).includes(saved.sitesSort.column)
        ? saved.sitesSort
        : undefined,
  };
}

let state = loadState();
function saveState(patch: Partial<PanelState>): void {
  state = { ...state, ...patch };
  vscode.setState(state);
}

let palette = readPalette();
let snapshot: Pick<RunSnapshot, "runId" | "status" | "label" | "host" | "command" | "t0Ns"> | undefined;
let hotspots: HotspotRow[] = [];
let sites: SiteRow[] = [];
let siteCoverage: SiteCoverageView[] = [];
let durationS = 0;
let sampleCount = 0;
let processCount = 0;

const timelineCanvas = byId<HTMLCanvasElement>("timeline");
const resetZoomButton = byId<HTMLButtonElement>("reset-zoom");
const timeline = new Timeline(timelineCanvas, byId("readout"), palette, {
  onZoomChange: (range) => {
    resetZoomButton.disabled = range === undefined;
    saveState({ zoom: range });
  },
});
const table = new HotspotTable(byId("hotspots"), {
  onOpen: (row) => {
    // The Sites table follows the hotspot picked here, when it has sites.
    if (sites.some((site) => site.target === row.target)) {
      saveState({ sitesTarget: row.target });
      renderSites();
    }
    if (row.file !== undefined && row.line !== undefined)
      post(OpenSource, { file: row.file, line: row.line });
  },
  onSort: (sort) => {
    saveState({ sort });
    renderTable();
  },
  onExpand: (target, expanded) => {
    const set = new Set(state.expanded);
    if (expanded) set.add(target);
    else set.delete(target);
    saveState({ expanded: [...set] });
    renderTable();
  },
});
const budget = new BudgetChart(
  {
    section: byId("budget-section"),
    canvas: byId<HTMLCanvasElement>("budget"),
    table: byId("budget-table"),
    verdict: byId("verdict"),
    arithmetic: byId("arithmetic"),
    note: byId("budget-note"),
  },
  palette,
);

function renderTable(): void {
  table.render(hotspots, state.sort, state.expanded);
}

function openSite(row: SiteRow): void {
  post(OpenSource, { file: row.file, line: row.line });
}

const sitesTable = new SitesTable(byId("sites"), {
  onOpen: openSite,
  onSort: (sitesSort) => {
    saveState({ sitesSort });
    renderSites();
  },
});
const sitesTarget = byId<HTMLSelectElement>("sites-target");
sitesTarget.addEventListener("change", () => {
  saveState({ sitesTarget: sitesTarget.value });
  renderSites();
});

/** "— first 2 of 24 calls" beside the picked function when its sites cover only some of its calls. */
function renderSiteCoverage(coverage: SiteCoverageView | undefined): void {
  const shown = byId("sites-coverage");
  const partial = coverage !== undefined && coverage.recordedCalls < coverage.calls;
  shown.hidden = !partial;
  if (!partial) {
    shown.textContent = "";
    shown.removeAttribute("title");
    return;
  }
  const args = { recorded: coverage.recordedCalls, calls: coverage.calls };
  shown.textContent = s(coverage.limited ? "sites.coverageFirst" : "sites.coverage", args);
  shown.title = s(coverage.limited ? "sites.coverageFirstHelp" : "sites.coverageHelp");
}

/** The Sites table of the selected hotspot (the one with most allocated bytes until one is picked). */
function renderSites(): void {
  const section = byId("sites-section");
  section.hidden = sites.length === 0;
  if (sites.length === 0) return;
  const allocated = new Map<string, number>();
  for (const site of sites) allocated.set(site.target, (allocated.get(site.target) ?? 0) + site.allocated);
  const targets = [...allocated.keys()].sort((a, b) => allocated.get(b)! - allocated.get(a)!);
  const selected =
    state.sitesTarget !== undefined && allocated.has(state.sitesTarget) ? state.sitesTarget : targets[0]!;
  const labels = new Map(hotspots.map((h) => [h.target, h.label]));
  sitesTarget.replaceChildren(
    ...targets.map((target) =>
      el("option", { value: target, selected: target === selected }, labels.get(target) ?? target),
    ),
  );
  sitesTarget.value = selected;
  renderSiteCoverage(siteCoverage.find((c) => c.target === selected));
  sitesTable.render(
    sites.filter((site) => site.target === selected),
    state.sitesSort ?? { column: "allocated", descending: true },
  );
}

function renderHeader(): void {
  const title = byId("run-title");
  const meta = byId("run-meta");
  if (!snapshot) {
    title.textContent = s("header.title");
    meta.textContent = "";
    return;
  }
  title.replaceChildren(
    snapshot.label,
    snapshot.status === "running"
      ? el("span", { class: "badge live" }, s("run.live"))
      : el("span", { class: `badge status-${snapshot.status}` }, s(`status.${snapshot.status}`)),
  );
  meta.textContent = [
    snapshot.host ? s("run.on", { host: snapshot.host }) : s("run.local"),
    s("run.started", {
      time: new Date(snapshot.t0Ns / 1e6).toLocaleString(document.documentElement.lang || undefined),
    }),
    formatDuration(durationS * 1e9),
    processCount === 1 ? s("run.processes.one") : s("run.processes.other", { n: processCount }),
    s("run.samples", { n: sampleCount.toLocaleString("en-US") }),
  ].join(" · ");
  meta.title = snapshot.command.join(" ");
}

function renderToggles(): void {
  const box = byId("toggles");
  const processes = timeline.processList();
  const readings = timeline.readings();
  const groups: HTMLElement[] = [];
  if (processes.length > 0) {
    const group = el("fieldset", { class: "toggle-group" }, el("legend", {}, s("toggles.processes")));
    for (const p of processes) {
      const input = el("input", {
        type: "checkbox",
        "data-pid": p.pid,
        checked: !state.hiddenPids.includes(p.pid),
      });
      input.addEventListener("change", () => {
        const hidden = new Set(state.hiddenPids);
        if (input.checked) hidden.delete(p.pid);
        else hidden.add(p.pid);
        saveState({ hiddenPids: [...hidden] });
        timeline.setHidden(state.hiddenPids, state.hiddenReadings);
      });
      const dash = timeline.dashFor(p.pid);
      group.append(
        el(
          "label",
          {},
          input,
          p.label,
          dash.length > 0 ? el("span", { class: "muted" }, s("toggles.dashed")) : undefined,
        ),
      );
    }
    groups.push(group);
  }
  if (readings.length > 0) {
    const group = el("fieldset", { class: "toggle-group" }, el("legend", {}, s("toggles.readings")));
    for (const reading of readings) {
      const input = el("input", {
        type: "checkbox",
        "data-reading": reading,
        checked: !state.hiddenReadings.includes(reading),
      });
      input.addEventListener("change", () => {
        const hidden = new Set(state.hiddenReadings);
        if (input.checked) hidden.delete(reading);
        else hidden.add(reading);
        saveState({ hiddenReadings: [...hidden] });
        timeline.setHidden(state.hiddenPids, state.hiddenReadings);
      });
      const swatch = el("span", { class: "swatch", "aria-hidden": "true" });
      swatch.style.backgroundColor = palette.readings[reading];
      group.append(el("label", {}, input, swatch, s(`reading.${reading}`)));
    }
    groups.push(group);
  }
  if (groups.length === 0) groups.push(el("p", { class: "muted" }, s("toggles.noSamples")));
  box.replaceChildren(...groups);
}

function showRun(params: ShowRunParams): void {
  const content = byId("content");
  const empty = byId("empty");
  const next = params.snapshot;
  if (!next) {
    snapshot = undefined;
    timeline.destroy();
    content.hidden = true;
    empty.hidden = false;
    empty.textContent = params.emptyReason ?? s("run.none");
    renderHeader();
    return;
  }
  if (state.runId !== next.runId) {
    saveState({ runId: next.runId, hiddenPids: [], expanded: [], zoom: undefined, sitesTarget: undefined });
  }
  saveState({ pinned: params.pinned });
  snapshot = {
    runId: next.runId,
    status: next.status,
    label: next.label,
    host: next.host,
    command: next.command,
    t0Ns: next.t0Ns,
  };
  hotspots = next.hotspots;
  sites = next.sites ?? [];
  siteCoverage = next.siteCoverage ?? [];
  durationS = next.durationS;
  sampleCount = next.sampleCount;
  processCount = next.processes.length;
  empty.hidden = true;
  content.hidden = false;
  timeline.setHidden(state.hiddenPids, state.hiddenReadings);
  timeline.show(next, state.zoom);
  resetZoomButton.disabled = state.zoom === undefined;
  renderHeader();
  renderToggles();
  renderTable();
  renderSites();
}

function appendRun(increment: RunIncrement): void {
  if (!snapshot || increment.runId !== snapshot.runId) return;
  const knownProcesses = timeline.processList().length;
  const knownReadings = timeline.readings().length;
  timeline.append(increment);
  snapshot.status = increment.status;
  hotspots = increment.hotspots;
  if (increment.sites) {
    sites = increment.sites;
    siteCoverage = increment.siteCoverage ?? [];
  }
  durationS = increment.durationS;
  sampleCount = increment.sampleCount;
  processCount = increment.processes.length;
  renderHeader();
  renderTable();
  renderSites();
  if (timeline.processList().length !== knownProcesses || timeline.readings().length !== knownReadings)
    renderToggles();
}

const snapshotView = new SnapshotView(palette, openSite);

function capture(chart: ChartName): string | undefined {
  return chart === "timeline" ? timeline.toPng() : budget.toPng();
}

function savePng(chart: ChartName, path?: string): void {
  const dataUrl = capture(chart);
  if (dataUrl) post(SavePng, { chart, dataUrl, path });
  else reportError(`no ${chart} chart to save`);
}

function handle(message: Envelope): void {
  if (isMessage(message, Init)) setStrings(message.params.strings);
  else if (isMessage(message, ShowRun)) showRun(message.params);
  else if (isMessage(message, AppendRun)) appendRun(message.params);
  else if (isMessage(message, ShowBudget)) budget.show(message.params);
  else if (isMessage(message, ShowCompare)) {
    const section = byId("compare-section");
    const view = message.params.compare;
    section.hidden = view === null;
    if (view) {
      renderCompare(byId("compare"), byId("compare-heading"), view);
      saveState({ compare: { a: view.a.runId, b: view.b.runId } });
    } else saveState({ compare: undefined });
  } else if (isMessage(message, ShowAllocatorSnapshot)) snapshotView.show(message.params.view);
  else if (isMessage(message, CapturePng)) savePng(message.params.chart, message.params.path);
}

window.addEventListener("message", (event: MessageEvent<unknown>) => {
  const message = event.data;
  if (typeof message !== "object" || message === null || typeof (message as Envelope).method !== "string")
    return;
  try {
    handle(message as Envelope);
  } catch (e) {
    reportError(
      `failed to handle ${(message as Envelope).method}: ${String(e)}`,
      e instanceof Error ? e.stack : undefined,
    );
  }
});

byId("compare-button").addEventListener("click", () => post(PickCompare, {}));
byId("clear-compare").addEventListener("click", () => {
  byId("compare-section").hidden = true;
  saveState({ compare: undefined });
  post(ClearCompare, {});
});
resetZoomButton.addEventListener("click", () => timeline.resetZoom());
byId("save-timeline").addEventListener("click", () => savePng("timeline"));
byId("save-budget").addEventListener("click", () => savePng("budget"));

watchTheme(() => {
  palette = readPalette();
  timeline.applyTheme(palette);
  budget.applyTheme(palette);
  snapshotView.applyTheme(palette);
  renderToggles();
});

/** For tests and the benchmark: the live chart instances and what the panel holds. */
(window as unknown as { __memlens: unknown }).__memlens = {
  timeline,
  budget,
  charts: {
    get timeline() {
      return timeline.chartInstance;
    },
    get budget() {
      return budget.chartInstance;
    },
  },
  state: () => state,
  hotspots: () => hotspots,
  sites: () => sites,
  snapshot: () => snapshotView.chartInstance,
};

post(Ready, {});
