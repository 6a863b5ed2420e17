// Byte formatting shared by every view, so the same number reads the same everywhere.
import type { DeltaSource, TargetSummary } from "./runModel";

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

/** 1.5 GiB, 12.0 MiB, 512 B (binary units, as torch and vLLM print). */
export function formatBytes(bytes: number, digits = 1): string {
  const abs = Math.abs(bytes);
  let unit = 0;
  let value = abs;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const text = unit === 0 ? `${value} B` : `${value.toFixed(digits)} ${UNITS[unit]}`;
  return bytes < 0 ? `-${text}` : text;
}

/** Signed: +1.5 GiB, −12.0 MiB, ±0 B. */
export function formatDelta(bytes: number, digits = 1): string {
  if (bytes === 0) return "±0 B";
  return bytes > 0 ? `+${formatBytes(bytes, digits)}` : `−${formatBytes(-bytes, digits)}`;
}

export function sourceLabel(source: DeltaSource): string {
  return source === "allocated" ? "allocated" : "host RSS";
}

/** "+9.2 GiB allocated · peak +9.7 GiB · 24 calls" — the lens text after a run. */
export function summaryLine(s: TargetSummary): string {
  const parts = [`${formatDelta(s.retained)} ${sourceLabel(s.source)}`];
  if (s.peakAboveBeforeMax !== undefined) {
    const sampled = s.source === "host_rss" ? " (sampled)" : "";
    parts.push(`peak ${formatDelta(s.peakAboveBeforeMax)}${sampled}`);
  }
  parts.push(s.calls === 1 ? "1 call" : `${s.calls} calls`);
  if (s.perProcess.length > 1) parts.push(`${s.perProcess.length} processes`);
  if (s.openCalls > 0) parts.push(`${s.openCalls} unfinished`);
  return parts.join(" · ");
}

export function formatDuration(ns: number): string {
  const ms = ns / 1e6;
  if (ms < 1) return `${(ns / 1e3).toFixed(0)} µs`;
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}
