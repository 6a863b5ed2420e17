// What the panel must show, computed straight from the event stream as PROTOCOL.md defines it
// (retained = after − before; transient = peak − max(before, after)), without the run model.
import type { ProbeEvent } from "../../src/protocol/events";

export interface ExpectedTarget {
  target: string;
  source: "allocated" | "host_rss";
  calls: number;
  /** Calls entered and not (yet) exited. */
  open: number;
  retained: number;
  transientMax?: number;
  peakAboveBeforeMax?: number;
  durationNs: number;
  file?: string;
  line?: number;
  perPid: Map<number, { calls: number; retained: number }>;
}

type Scoped = Extract<ProbeEvent, { type: "enter" | "exit" }>;

const max = (a: number | undefined, b: number | undefined) =>
  a === undefined ? b : b === undefined ? a : Math.max(a, b);

export function expectedTargets(events: readonly ProbeEvent[]): Map<string, ExpectedTarget> {
  const out = new Map<string, ExpectedTarget>();
  const entered = new Set<string>();
  for (const e of events) {
    if (e.type !== "enter" && e.type !== "exit") continue;
    const scoped = e as Scoped;
    const key = `${e.pid}/${scoped.scope_id}`;
    let t = out.get(scoped.target);
    if (!t) {
      t = {
        target: scoped.target,
        source: scoped.before.allocated !== undefined ? "allocated" : "host_rss",
        calls: 0,
        open: 0,
        retained: 0,
        durationNs: 0,
        perPid: new Map(),
      };
      out.set(scoped.target, t);
    }
    let p = t.perPid.get(e.pid);
    if (!p) t.perPid.set(e.pid, (p = { calls: 0, retained: 0 }));
    if (e.type === "enter") {
      entered.add(key);
      t.open++;
      t.calls++;
      p.calls++;
      continue;
    }
    if (entered.has(key)) t.open--;
    else {
      t.calls++;
      p.calls++;
    }
    const source = e.before.allocated !== undefined ? "allocated" : "host_rss";
    const before = e.before[source]!;
    const after = e.after[source]!;
    const peakRaw = e.peak[source];
    // A sampled host peak is a lower bound; the after reading is a floor for it.
    const peak = peakRaw === undefined ? undefined : Math.max(peakRaw, after);
    t.retained += after - before;
    p.retained += after - before;
    t.durationNs += e.duration_ns;
    if (peak !== undefined) {
      t.peakAboveBeforeMax = max(t.peakAboveBeforeMax, peak - before);
      t.transientMax = max(t.transientMax, peak - Math.max(before, after));
    }
  }
  for (const e of events) {
    if (e.type === "target_resolved" && out.has(e.target)) {
      const t = out.get(e.target)!;
      t.file ??= e.file;
      t.line ??= e.line;
    }
  }
  return out;
}

export function timeZero(events: readonly ProbeEvent[]): number {
  const start = events.find((e) => e.type === "start");
  return start ? start.ts : Math.min(...events.map((e) => e.ts));
}

/** Samples per pid: times in seconds since time zero, and each reading (NaN where absent). */
export function expectedSeries(
  events: readonly ProbeEvent[],
): Map<number, { t: number[]; readings: Record<string, number[]> }> {
  const t0 = timeZero(events);
  const out = new Map<number, { t: number[]; readings: Record<string, number[]> }>();
  for (const e of events) {
    if (e.type !== "sample") continue;
    let s = out.get(e.pid);
    if (!s) out.set(e.pid, (s = { t: [], readings: {} }));
    const index = s.t.length;
    s.t.push((e.ts - t0) / 1e9);
    for (const key of ["allocated", "reserved", "device_used", "host_rss"] as const) {
      const value = e.readings[key];
      if (value === undefined && !(key in s.readings)) continue;
      s.readings[key] ??= new Array<number>(index).fill(NaN);
      s.readings[key].push(value ?? NaN);
    }
  }
  return out;
}
