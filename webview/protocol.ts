// Messages between the extension host (src/panel) and the memory panel webview (webview/main.ts).
// Both sides import this one module. Each message is a typed constant, as LSP's RequestType is.
// The webview posts `ready` first; the host queues everything until then.
import type { BudgetRow, BudgetView } from "../src/budget/view";
import type { DeltaSource } from "../src/model/runModel";
import type { RunMeta } from "../src/runner/types";
import type { Lang } from "../src/l10n/lang";
import type { PanelKey, PanelStrings } from "../src/l10n/panel";

export type { PanelKey, PanelStrings };

export class MessageType<P> {
  /** Phantom: carries the params type for `envelope` and `isMessage`. */
  declare readonly params: P;
  constructor(readonly method: string) {}
}

export interface Envelope<P = unknown> {
  method: string;
  params: P;
}

export function envelope<P>(type: MessageType<P>, params: P): Envelope<P> {
  return { method: type.method, params };
}

export function isMessage<P>(message: unknown, type: MessageType<P>): message is Envelope<P> {
  return (
    typeof message === "object" &&
    message !== null &&
    (message as { method?: unknown }).method === type.method &&
    "params" in message
  );
}

// ---- view model ------------------------------------------------------------------------------

/** The readings the timeline draws, in legend order. */
export const TIMELINE_READINGS = ["allocated", "reserved", "device_used", "host_rss"] as const;
export type TimelineReading = (typeof TIMELINE_READINGS)[number];

export interface ProcessView {
  pid: number;
  rank: number | null;
  device: number | null;
  origin?: string;
  /** "pid 4242 · rank 0 · cuda:0" */
  label: string;
}

/**
 * Samples of one process. Times are seconds since the run's time 0; a reading missing from a
 * sample is NaN (a gap in the line). Typed arrays travel to the webview without JSON.
 */
export interface ProcessSeries {
  pid: number;
  t: Float64Array;
  readings: Partial<Record<TimelineReading, Float64Array>>;
}

/** One probed scope (enter to exit) of one process. */
export interface ScopeBand {
  /** `${pid}/${scopeId}`: stable across increments, so a closed band replaces its open one. */
  key: string;
  pid: number;
  target: string;
  label: string;
  depth: number;
  call: number;
  startS: number;
  /** null while open (drawn to the end of the run). */
  endS: number | null;
  raised?: string | null;
}

/** A moment worth a vertical mark: a vLLM fact line or an out-of-memory error. */
export interface TimeMarker {
  key: string;
  atS: number;
  kind: "fact" | "oom";
  label: string;
  /** The log line or exception text, shown as text only. */
  detail: string;
}

export interface ProcessHotspotRow {
  pid: number;
  rank: number | null;
  calls: number;
  retained: number;
  transientMax?: number;
  peakAboveBeforeMax?: number;
  durationNs: number;
}

/** One rank's share of a hotspot (tensor parallelism: only for targets measured on 2+ ranks). */
export interface RankHotspotCell {
  rank: number;
  calls: number;
  /** Σ (after − before) over this rank's finished calls. */
  retained: number;
  peakAboveBeforeMax?: number;
  /** The rank that retained the most: it runs out first. */
  worst: boolean;
}

export interface HotspotRow {
  /** The plan's target id. */
  target: string;
  label: string;
  spec?: string;
  kind?: "function" | "line";
  source: DeltaSource;
  calls: number;
  openCalls: number;
  /** Σ (after − before) over finished calls, in bytes of `source`. */
  retained: number;
  /** max over calls of peak − max(before, after). */
  transientMax?: number;
  /** max over calls of peak − before. */
  peakAboveBeforeMax?: number;
  durationNs: number;
  file?: string;
  line?: number;
  perProcess: ProcessHotspotRow[];
  /** Ascending by rank; absent unless the target ran on two or more ranks. */
  perRank?: RankHotspotCell[];
}

export interface RunSnapshot {
  runId: string;
  label: string;
  status: RunMeta["status"];
  host: string | null;
  command: string[];
  /** Epoch ns of time 0 (the launcher's start event, else the first event). */
  t0Ns: number;
  durationS: number;
  processes: ProcessView[];
  timeline: ProcessSeries[];
  bands: ScopeBand[];
  markers: TimeMarker[];
  hotspots: HotspotRow[];
  sampleCount: number;
  /** Allocation sites of the probed functions (the Sites table), when the probe sent any. */
  sites?: SiteRow[];
  /** How many calls each target's sites cover, with the sites. */
  siteCoverage?: SiteCoverageView[];
}

/** What a live run adds: new samples, new or now-closed bands, new markers; rows in full. */
export interface RunIncrement {
  runId: string;
  status: RunMeta["status"];
  durationS: number;
  processes: ProcessView[];
  timeline: ProcessSeries[];
  bands: ScopeBand[];
  markers: TimeMarker[];
  hotspots: HotspotRow[];
  sampleCount: number;
  /** All sites so far (the table is small): replaces the ones sent before. */
  sites?: SiteRow[];
  /** Sent with the sites, replacing the coverage sent before. */
  siteCoverage?: SiteCoverageView[];
}

// The budget is computed by src/budget (computeBudgetView); the panel only draws it.
export type { BudgetRow, BudgetView };

export interface CompareSide {
  retained: number;
  peakAboveBeforeMax?: number;
  calls: number;
}

export interface CompareRow {
  /** spec (module:qualname or file:line) when known, else the target id. */
  key: string;
  label: string;
  source: DeltaSource;
  a?: CompareSide;
  b?: CompareSide;
  /** b − a; a missing side counts as 0. */
  retainedDelta: number;
  peakDelta?: number;
  callsDelta: number;
}

export interface CompareView {
  a: { runId: string; label: string };
  b: { runId: string; label: string };
  /** Larger absolute byte changes first. */
  rows: CompareRow[];
}

export type ChartName = "timeline" | "budget";

export const SORT_COLUMNS = ["label", "calls", "retained", "transient", "peak", "duration", "ranks"] as const;
export type SortColumn = (typeof SORT_COLUMNS)[number];

/** What the webview keeps with setState; the host's serializer gets it back after a reload. */
export interface PanelState {
  version: 1;
  runId?: string;
  /** Opened on one run: do not follow the current run. */
  pinned?: boolean;
  compare?: { a: string; b: string };
  hiddenPids: number[];
  hiddenReadings: TimelineReading[];
  sort: { column: SortColumn; descending: boolean };
  expanded: string[];
  /** Visible time range in seconds, when zoomed. */
  zoom?: { min: number; max: number };
  /** The Sites table: whose sites it shows, and its order. */
  sitesTarget?: string;
  sitesSort?: { column: SiteSortColumn; descending: boolean };
}

// ---- host -> webview -------------------------------------------------------------------------

/** Sent first, before any run: the editor's language and every string the panel shows. */
export interface InitParams {
  lang: Lang;
  strings: PanelStrings;
}
export const Init = new MessageType<InitParams>("memlens/init");

export interface ShowRunParams {
  snapshot: RunSnapshot | null;
  /** Why there is nothing to show ("No runs yet…"), when snapshot is null. */
  emptyReason?: string;
  pinned: boolean;
}
export const ShowRun = new MessageType<ShowRunParams>("memlens/showRun");
export const AppendRun = new MessageType<RunIncrement>("memlens/appendRun");

export interface ShowBudgetParams {
  runId: string | null;
  budget: BudgetView | null;
  /** Shown instead of the bars when budget is null. */
  unavailable?: string;
}
export const ShowBudget = new MessageType<ShowBudgetParams>("memlens/showBudget");

export interface ShowCompareParams {
  compare: CompareView | null;
}
export const ShowCompare = new MessageType<ShowCompareParams>("memlens/showCompare");

/** Asks the webview for a PNG of a chart; it answers with SavePng carrying the same path. */
export interface CapturePngParams {
  chart: ChartName;
  path: string;
}
export const CapturePng = new MessageType<CapturePngParams>("memlens/capturePng");

// ---- webview -> host -------------------------------------------------------------------------

export const Ready = new MessageType<Record<string, never>>("memlens/ready");

export interface OpenSourceParams {
  file: string;
  line: number;
}
export const OpenSource = new MessageType<OpenSourceParams>("memlens/openSource");

export interface SavePngParams {
  chart: ChartName;
  /** data:image/png;base64,… from canvas.toDataURL. */
  dataUrl: string;
  /** Set when the host asked for this file (CapturePng); else the host asks where to save. */
  path?: string;
}
export const SavePng = new MessageType<SavePngParams>("memlens/savePng");

export const PickCompare = new MessageType<Record<string, never>>("memlens/pickCompare");
export const ClearCompare = new MessageType<Record<string, never>>("memlens/clearCompare");

export interface WebviewErrorParams {
  message: string;
  stack?: string;
}
export const WebviewError = new MessageType<WebviewErrorParams>("memlens/webviewError");

// ---- allocation sites ------------------------------------------------------------------------

/** One line where a probed function's memory went, summed over its calls and processes. */
export interface SiteRow {
  /** The plan's target id whose calls allocated here. */
  target: string;
  file: string;
  line: number;
  function: string;
  allocated: number;
  freed: number;
  liveAtExit: number;
  /** Largest share of one call's peak held by this line's blocks. */
  atPeak: number;
  count: number;
  calls: number;
}

/** How many of a target's calls its sites add up (the probe records the first N per process). */
export interface SiteCoverageView {
  target: string;
  /** Calls that sent sites. */
  recordedCalls: number;
  /** The target's finished calls. */
  calls: number;
  /** The probe stopped recording sites after the first calls (the plan's sites_calls). */
  limited: boolean;
}

export const SITE_SORT_COLUMNS = [
  "place",
  "function",
  "allocated",
  "freed",
  "live",
  "peak",
  "count",
] as const;
export type SiteSortColumn = (typeof SITE_SORT_COLUMNS)[number];

/** An allocator snapshot pickle read by the probe's restricted unpickler (nothing of it was run). */
export interface AllocatorSnapshotView {
  /** The pickle's path, as the user picked it. */
  file: string;
  /** Requested bytes live after each allocation or free: [time in µs, bytes]. */
  timeline: [number, number][];
  sites: SiteRow[];
  peakBytes: number;
}
export interface ShowAllocatorSnapshotParams {
  view: AllocatorSnapshotView | null;
}
export const ShowAllocatorSnapshot = new MessageType<ShowAllocatorSnapshotParams>(
  "memlens/showAllocatorSnapshot",
);

export const HOST_TO_WEBVIEW = [
  Init,
  ShowRun,
  AppendRun,
  ShowBudget,
  ShowCompare,
  CapturePng,
  ShowAllocatorSnapshot,
] as const;
export const WEBVIEW_TO_HOST = [Ready, OpenSource, SavePng, PickCompare, ClearCompare, WebviewError] as const;
