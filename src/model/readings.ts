// Readings at an instant: a sample, or the before/after of a probed scope. The status bar, the
// progress notification, the budget's measured rows and the debugger pick their instants here, so
// "the reading at that moment" is the same reading everywhere.
import { READING_KEYS, type ReadingKey, type Readings } from "../protocol/events";
import type { CallRecord, RunModel } from "./runModel";

export interface ReadingAt {
  pid: number;
  /** ns, the probe's clock. */
  ts: number;
  readings: Readings;
  /** A sample, or the entry or exit of a probed scope (`call`). */
  instant: "sample" | "entry" | "exit";
  call?: CallRecord;
}

/**
 * Every reading of the run, or of one process: the samples (process by process, in order), then
 * each probed scope's entry and exit in the order the scopes were entered.
 */
export function* readingsAt(model: RunModel, pid?: number): Generator<ReadingAt> {
  for (const [p, columns] of model.sampleColumns) {
    if (pid !== undefined && p !== pid) continue;
    for (let i = 0; i < columns.length; i++) {
      // The kept object where model.samples made one, else one made for this pass.
      const s = columns.at(i);
      yield { pid: p, ts: s.ts, readings: s.readings, instant: "sample" };
    }
  }
  for (const c of model.calls) {
    if (pid !== undefined && c.pid !== pid) continue;
    yield { pid: c.pid, ts: c.startTs, readings: c.before, instant: "entry", call: c };
    if (c.after && c.endTs !== undefined) {
      yield { pid: c.pid, ts: c.endTs, readings: c.after, instant: "exit", call: c };
    }
  }
}

/** The reading with the most of `value` (the first such on a tie); readings without one are skipped. */
export function highestReading(
  readings: Iterable<ReadingAt>,
  value: (r: Readings) => number | undefined,
): ReadingAt | undefined {
  let best: { at: ReadingAt; value: number } | undefined;
  for (const at of readings) {
    const v = value(at.readings);
    if (v !== undefined && (best === undefined || v > best.value)) best = { at, value: v };
  }
  return best?.at;
}

/** The scope boundary entered last that has `key` (any reading without it): exit before entry. */
export function lastScopeReadings(model: RunModel, key?: ReadingKey): Readings | undefined {
  for (let i = model.calls.length - 1; i >= 0; i--) {
    const call = model.calls[i]!;
    for (const readings of [call.after, call.before]) {
      if (readings && (key === undefined || readings[key] !== undefined)) return readings;
    }
  }
  return undefined;
}

/** The newest readings of a run: the last sample, or the last scope boundary when sampling is off. */
export function latestReadings(model: RunModel): Readings | undefined {
  return model.latestReadings() ?? lastScopeReadings(model);
}

/** The last sample of each process still running (of every process once all have ended). */
export function lastSamples(model: RunModel): ReadingAt[] {
  const all = [...model.sampleColumns.entries()].flatMap(([pid, columns]) => {
    const last = columns.length > 0 ? columns.at(columns.length - 1) : undefined;
    return last ? [{ pid, ts: last.ts, readings: last.readings, instant: "sample" as const }] : [];
  });
  const running = all.filter((s) => model.processes.get(s.pid)?.exited !== true);
  return running.length > 0 ? running : all;
}

/** now − before for each key both have: the delta of an outer scope, which the probe does not send. */
export function readingsDelta(now: Readings, before: Readings): Readings {
  const out: Readings = {};
  for (const key of READING_KEYS) {
    const a = now[key];
    const b = before[key];
    if (a !== undefined && b !== undefined) out[key] = a - b;
  }
  return out;
}
