// Panel-specific wording on top of src/model/format.ts (shared with lenses and hovers).
import { formatBytes, formatDelta } from "../src/model/format";
import type { DeltaSource } from "../src/model/runModel";
import type { CompareRow } from "./protocol";
import { s } from "./text";

/** "allocated" or "host RSS": the reading a row's bytes come from. */
export function sourceName(source: DeltaSource): string {
  return s(source === "allocated" ? "source.allocated" : "source.host_rss");
}

/** "allocated Δ" or "host RSS Δ": which reading a byte column is computed from. */
export function deltaHeader(source: DeltaSource): string {
  return s("delta.header", { source: sourceName(source) });
}

/** "−1.1 GiB retained · +2 calls", or where a hotspot was only seen in one run. */
export function compareSummary(row: CompareRow): string {
  if (!row.a) return s("compare.onlyB", { delta: formatDelta(row.b?.retained ?? 0) });
  if (!row.b) return s("compare.onlyA", { delta: formatDelta(row.a.retained) });
  const parts: string[] = [];
  if (row.retainedDelta !== 0) parts.push(s("compare.retained", { delta: formatDelta(row.retainedDelta) }));
  if (row.peakDelta !== undefined && row.peakDelta !== 0)
    parts.push(s("compare.peak", { delta: formatDelta(row.peakDelta) }));
  if (row.callsDelta !== 0) {
    const n = signedCount(row.callsDelta);
    parts.push(s(Math.abs(row.callsDelta) === 1 ? "compare.calls.one" : "compare.calls.other", { n }));
  }
  return parts.length === 0 ? s("compare.noChange") : parts.join(" · ");
}

export function signedCount(n: number): string {
  if (n === 0) return "±0";
  return n > 0 ? `+${n}` : `−${-n}`;
}

/** Axis label: whole units where the tick is round ("2 GiB"), one decimal otherwise. */
export function tickBytes(value: number): string {
  let scaled = Math.abs(value);
  while (scaled >= 1024) scaled /= 1024;
  return formatBytes(value, Number.isInteger(Math.round(scaled * 1000) / 1000) ? 0 : 1);
}

/** A step of 1, 2, 2.5 or 5 × 10^k of a binary unit, so ticks land on round GiB/MiB values. */
export function binaryStep(range: number, ticks = 5): number {
  if (!(range > 0)) return 1;
  const raw = range / ticks;
  let unit = 1;
  while (unit * 1024 <= raw) unit *= 1024;
  const scaled = raw / unit;
  const nice = [1, 2, 2.5, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000].find((n) => n >= scaled) ?? 1024;
  return nice * unit;
}

/** Ticks of a byte axis at round binary steps (binaryStep), from the first multiple of the step
 * at or above `min` to `max` (a float's error above `max` still counts as `max`). */
export function binaryTicks(min: number, max: number, ticks = 5): { value: number }[] {
  const step = binaryStep(max - min, ticks);
  const out = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step / 1e6; v += step) out.push({ value: v });
  return out;
}

export function bytesTitle(bytes: number): string {
  return s("bytes.title", { n: bytes.toLocaleString("en-US") });
}
