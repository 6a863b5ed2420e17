// Run model -> the compact view model the panel draws (webview/protocol.ts). No `vscode` import,
// so the webview tests and the benchmark build exactly what the extension sends.
import { processLabel, rankFirstLabel } from "../model/processes";
import { rankSpread, runRanks } from "../model/ranks";
import { shownStatus } from "../model/runStatus";
import type { CallRecord, RunModel, TargetSummary } from "../model/runModel";
import type { SampleColumns } from "../model/sampleColumns";
import { targetLabel } from "../model/targets";
import { siteCoverage, siteTotals, type SiteTotal } from "../model/sites";
import type { RunMeta } from "../runner/types";
import { translator, type Lang } from "../l10n/lang";
import { PANEL_TEXT } from "../l10n/panel";
import {
  TIMELINE_READINGS,
  type CompareRow,
  type CompareView,
  type HotspotRow,
  type ProcessSeries,
  type ProcessView,
  type RunIncrement,
  type RunSnapshot,
  type ScopeBand,
  type SiteRow,
  type TimeMarker,
} from "../../webview/protocol";

/** What the view model needs of a registry entry (src/host.ts RunEntry has it). */
export interface RunSource {
  id: string;
  meta: RunMeta;
  model: RunModel;
}

const NS_PER_S = 1e9;

export function timeZeroNs(model: RunModel): number {
  return model.start?.ts ?? model.firstTs ?? 0;
}

function seconds(ts: number, t0: number): number {
  return (ts - t0) / NS_PER_S;
}

function processes(model: RunModel): ProcessView[] {
  // Tensor parallelism: each rank's series leads with its rank, the ranks in order after the rest.
  const ranked = runRanks(model).length > 1;
  const rankOrder = (rank: number | null) => (ranked && rank !== null ? rank + 1 : 0);
  return [...model.processes.values()]
    .sort((a, b) => rankOrder(a.rank) - rankOrder(b.rank) || a.firstTs - b.firstTs || a.pid - b.pid)
    .map((p) => ({
      pid: p.pid,
      rank: p.rank,
      device: p.device,
      origin: p.origin,
      label: ranked && p.rank !== null ? rankFirstLabel(p) : processLabel(p),
    }));
}

/** Samples [from, length) of a process, copied from the model's columns (NaN: a reading absent). */
function series(pid: number, samples: SampleColumns, from: number, t0: number): ProcessSeries {
  const times = samples.times();
  const n = times.length - from;
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) t[i] = seconds(times[from + i]!, t0);
  const readings: ProcessSeries["readings"] = {};
  for (const key of TIMELINE_READINGS) {
    const column = samples.column(key)?.slice(from);
    if (column && hasValue(column)) readings[key] = column;
  }
  return { pid, t, readings };
}

function hasValue(column: Float64Array): boolean {
  for (let i = 0; i < column.length; i++) if (!Number.isNaN(column[i]!)) return true;
  return false;
}

function band(model: RunModel, call: CallRecord, t0: number, labels: Map<string, string>): ScopeBand {
  let label = labels.get(call.target);
  if (label === undefined) labels.set(call.target, (label = targetLabel(model, call.target)));
  return {
    key: `${call.pid}/${call.scopeId}`,
    pid: call.pid,
    target: call.target,
    label,
    depth: call.depth,
    call: call.call,
    startS: seconds(call.startTs, t0),
    endS: call.endTs === undefined ? null : seconds(call.endTs, t0),
    raised: call.raised,
  };
}

function factLabel(kind: string): string {
  return kind.replace(/_/g, " ");
}

function markersFrom(
  model: RunModel,
  t0: number,
  factsFrom: number,
  oomsFrom: number,
  lang: Lang,
): TimeMarker[] {
  const out: TimeMarker[] = [];
  for (let i = factsFrom; i < model.facts.length; i++) {
    const f = model.facts[i]!;
    out.push({
      key: `fact/${i}`,
      atS: seconds(f.ts, t0),
      kind: "fact",
      label: factLabel(f.kind),
      detail: f.line,
    });
  }
  for (let i = oomsFrom; i < model.ooms.length; i++) {
    const o = model.ooms[i]!;
    out.push({
      key: `oom/${i}`,
      atS: seconds(o.ts, t0),
      kind: "oom",
      label: translator(PANEL_TEXT, lang)("marker.oom", { target: targetLabel(model, o.target) }),
      detail: o.message,
    });
  }
  return out;
}

export function hotspotRow(model: RunModel, s: TargetSummary): HotspotRow {
  return {
    target: s.target,
    label: targetLabel(model, s.target, s.spec),
    spec: s.spec,
    kind: s.kind,
    source: s.source,
    calls: s.calls,
    openCalls: s.openCalls,
    retained: s.retained,
    transientMax: s.transientMax,
    peakAboveBeforeMax: s.peakAboveBeforeMax,
    durationNs: s.durationNs,
    file: s.file,
    line: s.line,
    perProcess: s.perProcess.map((p) => ({
      pid: p.pid,
      rank: p.rank,
      calls: p.calls,
      retained: p.retained,
      transientMax: p.transientMax,
      peakAboveBeforeMax: p.peakAboveBeforeMax,
      durationNs: p.durationNs,
    })),
    ...perRank(model, s.target),
  };
}

/** The per-rank column of a target measured on two or more ranks (tensor parallelism). */
function perRank(model: RunModel, target: string): Pick<HotspotRow, "perRank"> {
  const spread = rankSpread(model, target);
  if (!spread) return {};
  return {
    perRank: spread.ranks.map((r) => ({
      rank: r.rank,
      calls: r.calls,
      retained: r.retained,
      peakAboveBeforeMax: r.peakAboveBeforeMax,
      worst: r === spread.worst,
    })),
  };
}

export function hotspotRows(model: RunModel): HotspotRow[] {
  return model.summaries().map((s) => hotspotRow(model, s));
}

function durationS(model: RunModel, t0: number): number {
  return model.lastTs === undefined ? 0 : Math.max(0, seconds(model.lastTs, t0));
}

function sampleCount(model: RunModel): number {
  let n = 0;
  for (const columns of model.sampleColumns.values()) n += columns.length;
  return n;
}

/**
 * Builds the full snapshot once, then only what changed since the last call: a live run sends
 * increments (samples, bands and markers are append-only in the model; bands that were open
 * are sent again when they close).
 */
export class RunViewTracker {
  private samplesSent = new Map<number, number>();
  private callsSent = 0;
  private openCalls = new Set<number>();
  private factsSent = 0;
  private oomsSent = 0;
  private readonly labels = new Map<string, string>();

  constructor(
    private readonly run: RunSource,
    /** The editor's language: the few labels the host writes (OOM markers). */
    private readonly lang: Lang = "en",
  ) {}

  get runId(): string {
    return this.run.id;
  }

  snapshot(): RunSnapshot {
    this.samplesSent = new Map();
    this.callsSent = 0;
    this.openCalls = new Set();
    this.factsSent = 0;
    this.oomsSent = 0;
    this.labels.clear();
    const increment = this.increment();
    const { model, meta } = this.run;
    return {
      ...increment,
      label: meta.label,
      host: meta.host,
      command: meta.command,
      t0Ns: timeZeroNs(model),
    };
  }

  /** Everything added since the last snapshot() or increment(). */
  increment(): RunIncrement {
    const { model, meta } = this.run;
    const t0 = timeZeroNs(model);
    const timeline: ProcessSeries[] = [];
    for (const [pid, samples] of model.sampleColumns) {
      const from = this.samplesSent.get(pid) ?? 0;
      if (samples.length > from) timeline.push(series(pid, samples, from, t0));
      this.samplesSent.set(pid, samples.length);
    }
    const bands: ScopeBand[] = [];
    for (const index of [...this.openCalls]) {
      const call = model.calls[index]!;
      if (!call.open) {
        bands.push(band(model, call, t0, this.labels));
        this.openCalls.delete(index);
      }
    }
    for (let i = this.callsSent; i < model.calls.length; i++) {
      const call = model.calls[i]!;
      bands.push(band(model, call, t0, this.labels));
      if (call.open) this.openCalls.add(i);
    }
    this.callsSent = model.calls.length;
    const markers = markersFrom(model, t0, this.factsSent, this.oomsSent, this.lang);
    this.factsSent = model.facts.length;
    this.oomsSent = model.ooms.length;
    return {
      runId: this.run.id,
      status: shownStatus(meta.status, model.end),
      durationS: durationS(model, t0),
      processes: processes(model),
      timeline,
      bands,
      markers,
      hotspots: hotspotRows(model),
      sampleCount: sampleCount(model),
      ...(model.sites.length > 0
        ? { sites: siteRows(siteTotals(model.sites)), siteCoverage: siteCoverage(model) }
        : {}),
    };
  }
}

/** The Sites table's rows from the model's site totals (src/model/sites.ts). */
export function siteRows(totals: readonly SiteTotal[]): SiteRow[] {
  return totals.map((s) => ({
    target: s.target,
    file: s.file,
    line: s.line,
    function: s.function,
    allocated: s.allocatedBytes,
    freed: s.freedBytes,
    liveAtExit: s.liveAtExitBytes,
    atPeak: s.atPeakBytes,
    count: s.count,
    calls: s.calls,
  }));
}

export function buildSnapshot(run: RunSource, lang: Lang = "en"): RunSnapshot {
  return new RunViewTracker(run, lang).snapshot();
}

function compareKey(s: TargetSummary): string {
  return s.spec ?? s.target;
}

/**
 * Per-hotspot differences between two runs (b − a), matched by spec so that runs whose plans
 * numbered their targets differently still line up. Larger absolute byte changes first.
 */
export function buildCompare(a: RunSource, b: RunSource): CompareView {
  const rows = new Map<string, CompareRow>();
  const side = (s: TargetSummary) => ({
    retained: s.retained,
    peakAboveBeforeMax: s.peakAboveBeforeMax,
    calls: s.calls,
  });
  for (const s of a.model.summaries()) {
    rows.set(compareKey(s), {
      key: compareKey(s),
      label: targetLabel(a.model, s.target, s.spec),
      source: s.source,
      a: side(s),
      retainedDelta: 0,
      callsDelta: 0,
    });
  }
  for (const s of b.model.summaries()) {
    const key = compareKey(s);
    const row = rows.get(key) ?? {
      key,
      label: targetLabel(b.model, s.target, s.spec),
      source: s.source,
      retainedDelta: 0,
      callsDelta: 0,
    };
    row.b = side(s);
    rows.set(key, row);
  }
  for (const row of rows.values()) {
    row.retainedDelta = (row.b?.retained ?? 0) - (row.a?.retained ?? 0);
    row.callsDelta = (row.b?.calls ?? 0) - (row.a?.calls ?? 0);
    const peakA = row.a?.peakAboveBeforeMax;
    const peakB = row.b?.peakAboveBeforeMax;
    if (peakA !== undefined || peakB !== undefined) row.peakDelta = (peakB ?? 0) - (peakA ?? 0);
  }
  const weight = (r: CompareRow) => Math.max(Math.abs(r.retainedDelta), Math.abs(r.peakDelta ?? 0));
  const sorted = [...rows.values()].sort(
    (x, y) =>
      weight(y) - weight(x) ||
      Math.abs(y.callsDelta) - Math.abs(x.callsDelta) ||
      x.label.localeCompare(y.label),
  );
  return {
    a: { runId: a.id, label: a.meta.label },
    b: { runId: b.id, label: b.meta.label },
    rows: sorted,
  };
}
