// The run model: events in, scopes/deltas/peaks/facts out. Plain TypeScript with no `vscode`
// import, so the language server, debug adapter, CLI, webview host and tests share it.
import type {
  EndEvent,
  ErrorEvent,
  ExitEvent,
  FactEvent,
  HelloEvent,
  LogEvent,
  NoteEvent,
  OomEvent,
  PausedEvent,
  Peak,
  ProbeEvent,
  Readings,
  SitesEvent,
  StartEvent,
  TargetNotFoundEvent,
  TargetResolvedEvent,
} from "../protocol/events";
import type { SampleScan } from "../protocol/fastLine";
import { sampleEventOf } from "../protocol/fastLine";
import { SampleColumns, type SamplePoint } from "./sampleColumns";

export type { SamplePoint } from "./sampleColumns";

/** The reading a delta is computed from: torch's allocator when the process used CUDA, else host RSS. */
export type DeltaSource = "allocated" | "host_rss";

export interface CallRecord {
  target: string;
  pid: number;
  rank: number | null;
  device: number | null;
  scopeId: string;
  parent: string | null;
  call: number;
  depth: number;
  thread?: string;
  file?: string;
  line?: number;
  before: Readings;
  after?: Readings;
  peak?: Peak;
  durationNs?: number;
  raised?: string | null;
  startTs: number;
  endTs?: number;
  /** No exit seen (still running, or the process died inside the scope). */
  open: boolean;
  oom?: OomEvent;
}

export interface ProcessInfo {
  pid: number;
  ppid?: number;
  rank: number | null;
  device: number | null;
  origin?: HelloEvent["origin"];
  /** multiprocessing's process name (vLLM: "EngineCore_0"), from scope events. */
  name?: string;
  argv?: string[];
  firstTs: number;
  lastTs: number;
  exited: boolean;
  exitcode?: number | null;
}

export interface TargetInfo {
  id: string;
  spec?: string;
  kind?: "function" | "line";
  /** Where it resolved, per process. */
  resolved: Map<number, TargetResolvedEvent>;
  /** Why it did not resolve, per process. */
  notFound: Map<number, TargetNotFoundEvent>;
}

export interface CallDelta {
  source: DeltaSource;
  /** after − before (bytes); undefined while the call is open. */
  retained?: number;
  /** peak − before; for host_rss the sampled peak, a lower bound. */
  peakAboveBefore?: number;
  /** peak − max(before, after): memory used only while the call ran. */
  transient?: number;
  peakIsSampled: boolean;
}

/** What a set of finished calls of one target adds up to (a process's, a rank's, all of them). */
export interface CallTotals {
  calls: number;
  /** Σ (after − before) over finished calls. */
  retained: number;
  peakAboveBeforeMax?: number;
  transientMax?: number;
  durationNs: number;
}

export interface ProcessTargetSummary extends CallTotals {
  pid: number;
  rank: number | null;
}

export interface TargetSummary extends CallTotals {
  target: string;
  spec?: string;
  kind?: "function" | "line";
  source: DeltaSource;
  openCalls: number;
  perProcess: ProcessTargetSummary[];
  file?: string;
  line?: number;
}

function deltaSourceOf(r: Readings): DeltaSource {
  return r.allocated !== undefined ? "allocated" : "host_rss";
}

export function callDelta(call: CallRecord): CallDelta {
  const source = deltaSourceOf(call.before);
  const before = call.before[source];
  const after = call.after?.[source];
  const peak = call.peak?.[source];
  const out: CallDelta = { source, peakIsSampled: source === "host_rss" };
  if (before === undefined) return out;
  if (after !== undefined) out.retained = after - before;
  // A sampled host peak may miss the top; the after reading is a floor for it.
  const effectivePeak = peak === undefined ? undefined : after === undefined ? peak : Math.max(peak, after);
  if (effectivePeak !== undefined) {
    out.peakAboveBefore = effectivePeak - before;
    if (after !== undefined) out.transient = effectivePeak - Math.max(before, after);
  }
  return out;
}

export class RunModel {
  start?: StartEvent;
  end?: EndEvent;
  readonly processes = new Map<number, ProcessInfo>();
  readonly targets = new Map<string, TargetInfo>();
  /** Calls in order of entry. */
  readonly calls: CallRecord[] = [];
  /** Each process's samples, as columns (the memory panel draws them from there). */
  readonly sampleColumns = new Map<number, SampleColumns>();
  private sampleLists: Map<number, SamplePoint[]> | undefined;
  private lastColumns: { pid: number; columns: SampleColumns } | undefined;
  readonly facts: FactEvent[] = [];
  readonly logs: LogEvent[] = [];
  readonly ooms: OomEvent[] = [];
  readonly errors: ErrorEvent[] = [];
  /** Allocation sites of probed calls, one event per call (the Sites table, inlay hints). */
  readonly sites: SitesEvent[] = [];
  /** What the probe wanted the user to know (compiled callers, a sites limit reached, …). */
  readonly notes: NoteEvent[] = [];
  /** Processes paused right now, by pid. */
  readonly paused = new Map<number, PausedEvent>();
  eventCount = 0;
  firstTs?: number;
  lastTs?: number;
  private readonly openScopes = new Map<string, CallRecord>();
  private readonly listeners = new Set<(e: ProbeEvent) => void>();

  /**
   * `keepSamples: false`: samples are read and counted (events, times, processes) but not kept,
   * for views that never draw them (the language server's lenses, hovers and hints).
   */
  constructor(private readonly options: { keepSamples?: boolean } = {}) {}

  static fromEvents(events: Iterable<ProbeEvent>): RunModel {
    const model = new RunModel();
    for (const e of events) model.add(e);
    return model;
  }

  /** Called after each event is applied (live views). Returns an unsubscribe function. */
  onEvent(listener: (e: ProbeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get finished(): boolean {
    return this.end !== undefined;
  }

  /**
   * Each process's samples as objects, made on first use and then kept (the columns in
   * sampleColumns cost a million samples no objects: views that can, read those).
   */
  get samples(): Map<number, SamplePoint[]> {
    const lists = (this.sampleLists ??= new Map());
    for (const [pid, columns] of this.sampleColumns) lists.set(pid, columns.points());
    return lists;
  }

  /** A sample event as the fast scan read it: the same as add() of its event, with no object made. */
  addSample(s: SampleScan): void {
    this.eventCount++;
    this.firstTs = this.firstTs === undefined ? s.ts : Math.min(this.firstTs, s.ts);
    this.lastTs = this.lastTs === undefined ? s.ts : Math.max(this.lastTs, s.ts);
    this.touch(s.pid, s.rank, s.device, s.ts);
    if (this.options.keepSamples !== false) {
      // Samples come in long runs of one process: its columns are kept at hand.
      let last = this.lastColumns;
      if (last?.pid !== s.pid) this.lastColumns = last = { pid: s.pid, columns: this.columnsOf(s.pid) };
      last.columns.push(s.ts, s.values);
    }
    if (this.listeners.size > 0) {
      const event = sampleEventOf(s);
      for (const l of this.listeners) l(event);
    }
  }

  private columnsOf(pid: number): SampleColumns {
    let columns = this.sampleColumns.get(pid);
    if (!columns) this.sampleColumns.set(pid, (columns = new SampleColumns()));
    return columns;
  }

  add(e: ProbeEvent): void {
    this.eventCount++;
    this.firstTs = this.firstTs === undefined ? e.ts : Math.min(this.firstTs, e.ts);
    this.lastTs = this.lastTs === undefined ? e.ts : Math.max(this.lastTs, e.ts);
    if (e.type !== "start" && e.type !== "end" && e.type !== "log" && e.type !== "fact") this.touchProcess(e);
    switch (e.type) {
      case "start":
        this.start = e;
        break;
      case "end":
        this.end = e;
        this.paused.clear();
        break;
      case "hello": {
        const p = this.touchProcess(e);
        p.ppid = e.ppid;
        p.origin = e.origin;
        p.argv = e.argv;
        break;
      }
      case "bye": {
        const p = this.touchProcess(e);
        p.exited = true;
        p.exitcode = e.exitcode;
        this.paused.delete(e.pid);
        break;
      }
      case "target_resolved":
        this.target(e.target, e.spec, e.kind).resolved.set(e.pid, e);
        break;
      case "target_not_found":
        this.target(e.target, e.spec).notFound.set(e.pid, e);
        break;
      case "enter": {
        if (e.process_name) this.touchProcess(e).name = e.process_name;
        const record: CallRecord = {
          target: e.target,
          pid: e.pid,
          rank: e.rank,
          device: e.device,
          scopeId: e.scope_id,
          parent: e.parent,
          call: e.call,
          depth: e.depth,
          thread: e.thread,
          file: e.file,
          line: e.line,
          before: e.before,
          startTs: e.ts,
          open: true,
        };
        this.target(e.target);
        this.calls.push(record);
        this.openScopes.set(scopeKey(e.pid, e.scope_id), record);
        break;
      }
      case "exit":
        this.applyExit(e);
        break;
      case "paused":
        if (e.process_name) this.touchProcess(e).name = e.process_name;
        this.paused.set(e.pid, e);
        break;
      case "resumed":
        this.paused.delete(e.pid);
        break;
      case "sample":
        if (this.options.keepSamples !== false) this.columnsOf(e.pid).pushReadings(e.ts, e.readings);
        break;
      case "log":
        this.logs.push(e);
        break;
      case "fact":
        this.facts.push(e);
        break;
      case "oom": {
        this.ooms.push(e);
        const open = this.openScopes.get(scopeKey(e.pid, e.scope_id));
        if (open) open.oom = e;
        break;
      }
      case "error":
        this.errors.push(e);
        break;
      case "sites":
        this.sites.push(e);
        break;
      case "note":
        this.notes.push(e);
        break;
    }
    for (const l of this.listeners) l(e);
  }

  private applyExit(e: ExitEvent): void {
    const key = scopeKey(e.pid, e.scope_id);
    let record = this.openScopes.get(key);
    if (!record) {
      // An exit whose enter we never saw (stream joined late): keep it, it carries `before`.
      record = {
        target: e.target,
        pid: e.pid,
        rank: e.rank,
        device: e.device,
        scopeId: e.scope_id,
        parent: e.parent,
        call: e.call,
        depth: e.depth,
        before: e.before,
        startTs: e.ts - e.duration_ns,
        open: true,
      };
      this.target(e.target);
      this.calls.push(record);
    }
    this.openScopes.delete(key);
    record.after = e.after;
    record.peak = e.peak;
    record.durationNs = e.duration_ns;
    record.raised = e.raised;
    record.endTs = e.ts;
    record.open = false;
    record.rank = e.rank ?? record.rank;
    record.device = e.device ?? record.device;
    record.file ??= e.file;
    record.line ??= e.line;
  }

  private touchProcess(e: ProbeEvent): ProcessInfo {
    return this.touch(e.pid, e.rank, e.device, e.ts);
  }

  private touch(pid: number, rank: number | null, device: number | null, ts: number): ProcessInfo {
    let p = this.processes.get(pid);
    if (!p) {
      p = { pid, rank, device, firstTs: ts, lastTs: ts, exited: false };
      this.processes.set(pid, p);
    }
    p.lastTs = Math.max(p.lastTs, ts);
    if (rank !== null) p.rank = rank;
    if (device !== null) p.device = device;
    return p;
  }

  private target(id: string, spec?: string, kind?: "function" | "line"): TargetInfo {
    let t = this.targets.get(id);
    if (!t) {
      t = { id, resolved: new Map(), notFound: new Map() };
      this.targets.set(id, t);
    }
    if (spec !== undefined) t.spec = spec;
    if (kind !== undefined) t.kind = kind;
    return t;
  }

  callsOf(target: string): CallRecord[] {
    return this.calls.filter((c) => c.target === target);
  }

  /** The call record for a scope, by pid and scope id. */
  scope(pid: number, scopeId: string): CallRecord | undefined {
    return this.calls.find((c) => c.pid === pid && c.scopeId === scopeId);
  }

  /** Per-target totals over every call in every process. */
  summaries(): TargetSummary[] {
    const out: TargetSummary[] = [];
    for (const [id, info] of this.targets) {
      const calls = this.callsOf(id);
      if (calls.length === 0) continue;
      out.push(summarize(id, info, calls));
    }
    return out;
  }

  summary(target: string): TargetSummary | undefined {
    const info = this.targets.get(target);
    const calls = this.callsOf(target);
    if (!info || calls.length === 0) return undefined;
    return summarize(target, info, calls);
  }

  factsOf(kind: string): FactEvent[] {
    return this.facts.filter((f) => f.kind === kind);
  }

  /** The last reading of each key seen in any sample or scope event of a process. */
  latestReadings(pid?: number): Readings | undefined {
    const pids = pid === undefined ? [...this.sampleColumns.keys()] : [pid];
    let best: { columns: SampleColumns; i: number } | undefined;
    for (const p of pids) {
      const columns = this.sampleColumns.get(p);
      if (!columns || columns.length === 0) continue;
      const i = columns.length - 1;
      if (!best || columns.tsAt(i) > best.columns.tsAt(best.i)) best = { columns, i };
    }
    return best?.columns.at(best.i).readings;
  }
}

function scopeKey(pid: number, scopeId: string): string {
  return `${pid}/${scopeId}`;
}

function maxDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

/** A finished call's delta and duration into totals (their `calls` are counted by the caller, open
 * calls included). */
export function addFinishedCall(totals: CallTotals, delta: CallDelta, durationNs: number | undefined): void {
  totals.retained += delta.retained ?? 0;
  totals.durationNs += durationNs ?? 0;
  totals.peakAboveBeforeMax = maxDefined(totals.peakAboveBeforeMax, delta.peakAboveBefore);
  totals.transientMax = maxDefined(totals.transientMax, delta.transient);
}

function summarize(id: string, info: TargetInfo, calls: CallRecord[]): TargetSummary {
  const first = calls[0]!;
  const source = deltaSourceOf(first.before);
  const resolvedAny = [...info.resolved.values()][0];
  const summary: TargetSummary = {
    target: id,
    spec: info.spec,
    kind: info.kind,
    source,
    calls: calls.length,
    openCalls: 0,
    retained: 0,
    durationNs: 0,
    perProcess: [],
    file: resolvedAny?.file ?? first.file,
    line: resolvedAny?.line ?? first.line,
  };
  const perProcess = new Map<number, ProcessTargetSummary>();
  for (const call of calls) {
    let pp = perProcess.get(call.pid);
    if (!pp) {
      pp = { pid: call.pid, rank: call.rank, calls: 0, retained: 0, durationNs: 0 };
      perProcess.set(call.pid, pp);
    }
    pp.calls++;
    if (call.open) {
      summary.openCalls++;
      continue;
    }
    const d = callDelta(call);
    addFinishedCall(summary, d, call.durationNs);
    addFinishedCall(pp, d, call.durationNs);
  }
  summary.perProcess = [...perProcess.values()].sort((a, b) => a.pid - b.pid);
  return summary;
}
