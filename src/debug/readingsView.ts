// Readings as debugger variables: every value in GiB (or the unit that fits) and exact bytes,
// and the source it was read from, so "9.21 GiB (9,892,345,856 B)" can be traced to one reading.
import { formatBytes, formatDelta } from "../model/format";
import { READING_KEYS, type Peak, type ReadingKey, type Readings } from "../protocol/events";
import { DEBUG_TEXT, type DebugKey } from "../l10n/debug";
import { translator, type Lang } from "../l10n/lang";

export interface ReadingVariable {
  name: string;
  value: string;
  /** Where the number comes from (shown as the variable's type). */
  type: string;
}

export interface ReadingSource {
  /** The source's name in the debug string table ("torch allocator", "CUDA driver", …). */
  label: DebugKey;
  keys: readonly ReadingKey[];
}

export const READING_SOURCES: readonly ReadingSource[] = [
  { label: "source.torch", keys: ["allocated", "reserved"] },
  { label: "source.cuda", keys: ["device_used", "device_total", "non_torch"] },
  { label: "source.nvml", keys: ["process_used"] },
  { label: "source.host", keys: ["host_rss", "host_hwm"] },
];

const SOURCE_OF = new Map<ReadingKey, DebugKey>(
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
  lang: Lang,
): ReadingVariable[] {
  const t = translator(DEBUG_TEXT, lang);
  const out: ReadingVariable[] = [];
  for (const key of READING_KEYS) {
    const value = values[key];
    if (value === undefined) continue;
    const source = SOURCE_OF.get(key);
    out.push({ name: key, value: format(value), type: source ? t(source) : "" });
  }
  return out;
}

/** Reading names (allocated, reserved, …) stay as the probe names them; their sources are in `lang`. */
export function nowVariables(readings: Readings, lang: Lang = "en"): ReadingVariable[] {
  return variablesOf(readings, bytesValue, lang);
}

export function deltaVariables(delta: Readings, lang: Lang = "en"): ReadingVariable[] {
  return variablesOf(delta, deltaValue, lang);
}

export function peakVariables(peak: Peak, lang: Lang = "en"): ReadingVariable[] {
  const sampled = translator(DEBUG_TEXT, lang)("source.hostSampled");
  return variablesOf(peak, bytesValue, lang).map((v) =>
    v.name === "host_rss" ? { ...v, type: sampled } : v,
  );
}

/** The sources that have at least one reading, each with its readings. */
export function readingsBySource(
  readings: Readings,
  lang: Lang = "en",
): { source: ReadingSource; name: string; variables: ReadingVariable[] }[] {
  const t = translator(DEBUG_TEXT, lang);
  return READING_SOURCES.map((source) => ({
    source,
    name: t(source.label),
    variables: nowVariables(Object.fromEntries(source.keys.map((k) => [k, readings[k]])) as Readings, lang),
  })).filter((group) => group.variables.length > 0);
}
