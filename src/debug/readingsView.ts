// Readings as debugger variables: every value in GiB (or the unit that fits) and exact bytes,
// and the source it was read from, so "9.21 GiB (9,892,345,856 B)" can be traced to one reading.
import { formatBytes, formatDelta } from "../model/format";
import { READING_KEYS, type Peak, type ReadingKey, type Readings } from "../protocol/events";

export interface ReadingVariable {
  name: string;
  value: string;
  /** Where the number comes from (shown as the variable's type). */
  type: string;
}

export interface ReadingSource {
  label: string;
  keys: readonly ReadingKey[];
}

export const READING_SOURCES: readonly ReadingSource[] = [
  { label: "torch allocator", keys: ["allocated", "reserved"] },
  { label: "CUDA driver", keys: ["device_used", "device_total", "non_torch"] },
  { label: "NVML", keys: ["process_used"] },
  { label: "host", keys: ["host_rss", "host_hwm"] },
];

const SOURCE_OF = new Map<ReadingKey, string>(
  READING_SOURCES.flatMap((source) => source.keys.map((key) => [key, source.label] as const)),
);

const exactBytes = new Intl.NumberFormat("en-US");

/** "9.21 GiB (9,892,345,856 B)"; small values stay in bytes only. */
export function bytesValue(bytes: number): string {
  const rounded = formatBytes(bytes, 2);
  const exact = `${exactBytes.format(bytes)} B`;
  return rounded === `${bytes} B` ? exact : `${rounded} (${exact})`;
}

/** "+1.00 GiB (+1,073,741,824 B)". */
export function deltaValue(bytes: number): string {
  if (bytes === 0) return "±0 B";
  const sign = bytes > 0 ? "+" : "−";
  const exact = `${sign}${exactBytes.format(Math.abs(bytes))} B`;
  const rounded = formatDelta(bytes, 2);
  return rounded === exact ? exact : `${rounded} (${exact})`;
}

function variablesOf(
  values: Partial<Record<ReadingKey, number>>,
  format: (n: number) => string,
): ReadingVariable[] {
  const out: ReadingVariable[] = [];
  for (const key of READING_KEYS) {
    const value = values[key];
    if (value === undefined) continue;
    out.push({ name: key, value: format(value), type: SOURCE_OF.get(key) ?? "" });
  }
  return out;
}

export function nowVariables(readings: Readings): ReadingVariable[] {
  return variablesOf(readings, bytesValue);
}

export function deltaVariables(delta: Readings): ReadingVariable[] {
  return variablesOf(delta, deltaValue);
}

export function peakVariables(peak: Peak): ReadingVariable[] {
  return variablesOf(peak, bytesValue).map((v) =>
    v.name === "host_rss" ? { ...v, type: "host (sampled: a lower bound)" } : v,
  );
}

/** The sources that have at least one reading, each with its readings. */
export function readingsBySource(
  readings: Readings,
): { source: ReadingSource; variables: ReadingVariable[] }[] {
  return READING_SOURCES.map((source) => ({
    source,
    variables: nowVariables(Object.fromEntries(source.keys.map((k) => [k, readings[k]])) as Readings),
  })).filter((group) => group.variables.length > 0);
}
