// Byte formatting shared by every view, so the same number reads the same everywhere.
import type { DeltaSource, TargetSummary } from "./runModel";
import { FORMAT_TEXT } from "../l10n/format";
import { translator, type Lang } from "../l10n/lang";

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

export function sourceLabel(source: DeltaSource, lang: Lang = "en"): string {
  return translator(FORMAT_TEXT, lang)(source === "allocated" ? "source.allocated" : "source.host_rss");
}

/** "1 call", "24 calls" (zh-CN: "24 次调用"); `shown` is the count as written (e.g. "1,536"). */
export function callsText(count: number, lang: Lang = "en", shown: string = String(count)): string {
  const t = translator(FORMAT_TEXT, lang);
  return count === 1 ? t("calls.one") : t("calls.other", { n: shown });
}

/** "+9.2 GiB allocated · peak +9.7 GiB · 24 calls" — the lens text after a run. */
export function summaryLine(s: TargetSummary, lang: Lang = "en"): string {
  const t = translator(FORMAT_TEXT, lang);
  const parts = [
    t("summary.retained", { delta: formatDelta(s.retained), source: sourceLabel(s.source, lang) }),
  ];
  if (s.peakAboveBeforeMax !== undefined) {
    const delta = formatDelta(s.peakAboveBeforeMax);
    parts.push(t(s.source === "host_rss" ? "summary.peakSampled" : "summary.peak", { delta }));
  }
  parts.push(callsText(s.calls, lang));
  if (s.perProcess.length > 1) parts.push(t("processes.other", { n: s.perProcess.length }));
  if (s.openCalls > 0) parts.push(t("unfinished", { n: s.openCalls }));
  return parts.join(" · ");
}

export function formatDuration(ns: number): string {
  const ms = ns / 1e6;
  if (ms < 1) return `${(ns / 1e3).toFixed(0)} µs`;
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}
