// Text the language server shows: lens titles, hover tables, inlay labels, findings. Pure
// functions over the run model, so each string can be tested without a server.
import type { Hotspot, Phase } from "../catalog/types";
import { formatBytes, formatDelta, formatDuration, sourceLabel, summaryLine } from "../model/format";
import { escapeMarkdown, markdownCode } from "../model/markdown";
import { processLabel } from "../model/processes";
import { rankedSummaryLine, rankSpread, type RankSpread } from "../model/ranks";
import type { CallRecord, RunModel, TargetSummary } from "../model/runModel";
import type { ReadingKey, Readings } from "../protocol/events";
import { translator, type Lang, type Translate } from "../l10n/lang";
import { SERVER_TEXT, type ServerKey } from "../l10n/server";

const MiB = 1024 * 1024;
/** A retained or transient amount this large is worth a warning on any card. */
export const FINDING_ABSOLUTE_BYTES = 256 * MiB;
/** Or this share of the function's own peak… */
export const FINDING_SHARE_OF_PEAK = 0.25;
/** …as long as it is above host-RSS page noise. */
export const FINDING_FLOOR_BYTES = 1 * MiB;
/** Hover tables stop here; the panel lists every call. */
export const HOVER_MAX_CALLS = 100;

/** `hotspot` in `lang` already (localizedHotspot). */
export function measureHereTitle(hotspot: Hotspot | undefined, trusted: boolean, lang: Lang = "en"): string {
  const t = translator(SERVER_TEXT, lang);
  const question = hotspot ? t("lens.question", { question: hotspot.question }) : "";
  return t(trusted ? "lens.measureHere" : "lens.measureHereUntrusted", { question });
}

export type TargetState =
  | { kind: "measured"; summary: TargetSummary; ranks?: RankSpread }
  | { kind: "waiting" }
  | { kind: "not_called" }
  | { kind: "not_found"; reasons: string[] };

export function targetState(model: RunModel, targetId: string): TargetState {
  const summary = model.summary(targetId);
  if (summary) {
    const ranks = rankSpread(model, targetId);
    return ranks ? { kind: "measured", summary, ranks } : { kind: "measured", summary };
  }
  const info = model.targets.get(targetId);
  if (info && info.resolved.size === 0 && info.notFound.size > 0) {
    return { kind: "not_found", reasons: notFoundReasons(model, targetId) };
  }
  return model.finished ? { kind: "not_called" } : { kind: "waiting" };
}

export function notFoundReasons(model: RunModel, targetId: string): string[] {
  const info = model.targets.get(targetId);
  if (!info) return [];
  return [...new Set([...info.notFound.values()].map((e) => e.reason))];
}

export function lensTitle(state: TargetState, lang: Lang = "en"): string {
  const t = translator(SERVER_TEXT, lang);
  switch (state.kind) {
    case "measured":
      return state.ranks
        ? rankedSummaryLine(state.summary, state.ranks, lang)
        : summaryLine(state.summary, lang);
    case "waiting":
      return t("lens.waiting");
    case "not_called":
      return t("lens.notCalled");
    case "not_found":
      return t("lens.notFound", { reasons: state.reasons.join("; ") });
  }
}

/** "← +8.3 MiB allocated ×32": the inlay hint after a measured line. */
export function inlayLabel(summary: TargetSummary, lang: Lang = "en"): string {
  return translator(SERVER_TEXT, lang)("inlay.label", {
    delta: formatDelta(summary.retained),
    source: sourceLabel(summary.source, lang),
    calls: summary.calls,
  });
}

export interface Finding {
  severity: "information" | "warning";
  code: "retained" | "transient";
  message: string;
}

function significant(bytes: number, peak: number | undefined): "warning" | "information" | undefined {
  if (bytes >= FINDING_ABSOLUTE_BYTES) return "warning";
  if (
    bytes >= FINDING_FLOOR_BYTES &&
    peak !== undefined &&
    peak > 0 &&
    bytes >= FINDING_SHARE_OF_PEAK * peak
  ) {
    return "information";
  }
  return undefined;
}

/**
 * Findings for a measured target: what it keeps after returning, what it only needs meanwhile.
 * With `ranks` (tensor parallelism) what it keeps is the most one rank keeps: no card holds the sum.
 */
export function findings(summary: TargetSummary, lang: Lang = "en", ranks?: RankSpread): Finding[] {
  const t = translator(SERVER_TEXT, lang);
  const out: Finding[] = [];
  const where = t(summary.kind === "line" ? "finding.afterLine" : "finding.afterReturn");
  const source = sourceLabel(summary.source, lang);
  const keeps = ranks?.ranks.find((r) => r.retained === ranks.maxRetained);
  const callCount = keeps ? keeps.calls : summary.calls;
  let calls = callCount === 1 ? t("finding.oneCall") : t("finding.sumCalls", { n: callCount });
  if (keeps) calls += t("finding.onRank", { rank: keeps.rank, n: ranks!.ranks.length });
  const retained = keeps ? keeps.retained : summary.retained;
  const retainedLevel = retained > 0 ? significant(retained, summary.peakAboveBeforeMax) : undefined;
  if (retainedLevel) {
    out.push({
      severity: retainedLevel,
      code: "retained",
      message: t("finding.retains", { bytes: formatBytes(retained), where, source, calls }),
    });
  }
  const transient = summary.transientMax;
  const transientLevel =
    transient !== undefined ? significant(transient, summary.peakAboveBeforeMax) : undefined;
  if (transient !== undefined && transientLevel) {
    const sampled = summary.source === "host_rss" ? t("finding.sampled") : "";
    out.push({
      severity: transientLevel,
      code: "transient",
      message: t("finding.transient", { bytes: formatBytes(transient), source, sampled }),
    });
  }
  return out;
}

const HOVER_READINGS: readonly ReadingKey[] = [
  "allocated",
  "reserved",
  "device_used",
  "non_torch",
  "process_used",
  "host_rss",
  "host_hwm",
];

function cell(call: CallRecord, key: ReadingKey, t: Translate<ServerKey>): string {
  const before = call.before[key];
  const after = call.after?.[key];
  const peak = key === "allocated" || key === "reserved" || key === "host_rss" ? call.peak?.[key] : undefined;
  if (before === undefined && after === undefined) return "—";
  const parts: string[] = [];
  parts.push(before === undefined ? "?" : formatBytes(before));
  parts.push(after === undefined ? (call.open ? "…" : "?") : formatBytes(after));
  let text = parts.join(" → ");
  if (before !== undefined && after !== undefined) text += ` (${formatDelta(after - before)})`;
  if (peak !== undefined) text += t("hover.peak", { bytes: formatBytes(peak) });
  return text;
}

/** Markdown for a process: its name comes from events, so it is escaped like any text. */
function processCell(model: RunModel, pid: number, rank: number | null): string {
  return escapeMarkdown(processLabel(model.processes.get(pid) ?? { pid, rank, device: null }));
}

/** One row per rank (tensor parallelism), the worst rank marked: only for targets seen on 2+ ranks. */
function rankTable(spread: RankSpread, t: Translate<ServerKey>): string[] {
  const lines = [t("hover.rankTable"), "|---|---|---:|---:|---:|---:|---:|"];
  for (const r of spread.ranks) {
    const peak = r.peakAboveBeforeMax === undefined ? "—" : formatDelta(r.peakAboveBeforeMax);
    const transient = r.transientMax === undefined ? "—" : formatBytes(r.transientMax);
    // Ranks and pids come from events: escaped like any text.
    const shown = escapeMarkdown(String(r.rank));
    const rank = r === spread.worst ? t("hover.worstRank", { rank: shown }) : shown;
    lines.push(
      `| ${rank} | ${escapeMarkdown(r.pids.join(", "))} | ${r.calls} | ${formatDelta(r.retained)} | ${peak} | ${transient} | ${formatDuration(r.durationNs)} |`,
    );
  }
  return lines;
}

export interface HoverContext {
  runLabel: string;
  spec: string;
  /** In `lang` already (localizedHotspot). */
  hotspot?: Hotspot;
  phase?: Phase;
  lang?: Lang;
}

/** Markdown for a measured target: the summary, per-process totals, then every call's readings. */
export function measuredHover(model: RunModel, summary: TargetSummary, ctx: HoverContext): string {
  const lang = ctx.lang ?? "en";
  const t = translator(SERVER_TEXT, lang);
  const lines: string[] = [];
  lines.push(`**MemLens** · ${escapeMarkdown(ctx.runLabel)} · ${markdownCode(ctx.spec)}`);
  lines.push("");
  const ranks = rankSpread(model, summary.target);
  lines.push(escapeMarkdown(ranks ? rankedSummaryLine(summary, ranks, lang) : summaryLine(summary, lang)));
  if (ctx.hotspot) {
    lines.push("");
    lines.push(`*${escapeMarkdown(ctx.hotspot.question)}*`);
  }
  if (ranks) lines.push("", ...rankTable(ranks, t));
  lines.push("");
  lines.push(t("hover.processTable"));
  lines.push("|---|---:|---:|---:|---:|---:|");
  for (const p of summary.perProcess) {
    const peak = p.peakAboveBeforeMax === undefined ? "—" : formatDelta(p.peakAboveBeforeMax);
    const transient = p.transientMax === undefined ? "—" : formatBytes(p.transientMax);
    lines.push(
      `| ${processCell(model, p.pid, p.rank)} | ${p.calls} | ${formatDelta(p.retained)} | ${peak} | ${transient} | ${formatDuration(p.durationNs)} |`,
    );
  }
  const calls = model.callsOf(summary.target);
  const columns = HOVER_READINGS.filter((key) =>
    calls.some((c) => c.before[key] !== undefined || c.after?.[key] !== undefined),
  );
  lines.push("");
  lines.push(t("hover.everyCall", { source: sourceLabel(summary.source, lang) }));
  lines.push("");
  lines.push(`| ${t("hover.process")} | ${t("hover.call")} | ${columns.join(" | ")} | ${t("hover.time")} |`);
  lines.push(`|---|---:|${columns.map(() => "---|").join("")}---:|`);
  for (const call of calls.slice(0, HOVER_MAX_CALLS)) {
    const time = call.open ? t("hover.running") : formatDuration(call.durationNs ?? 0);
    const raised = call.raised ? t("hover.raised", { exception: escapeMarkdown(call.raised) }) : "";
    const oom = call.oom ? " · **OOM**" : "";
    lines.push(
      `| ${processCell(model, call.pid, call.rank)} | ${escapeMarkdown(call.call)}${raised}${oom} | ${columns.map((k) => cell(call, k, t)).join(" | ")} | ${time} |`,
    );
  }
  if (calls.length > HOVER_MAX_CALLS) {
    lines.push("");
    lines.push(t("hover.more", { n: calls.length - HOVER_MAX_CALLS }));
  }
  return lines.join("\n");
}

/** Markdown for a catalog hotspot that this run did not measure. */
export function hotspotHover(
  hotspot: Hotspot,
  phase: Phase | undefined,
  trusted: boolean,
  lang: Lang = "en",
): string {
  const t = translator(SERVER_TEXT, lang);
  const lines = [
    t("hover.hotspot", { phase: escapeMarkdown(phase?.title ?? hotspot.phase) }),
    "",
    escapeMarkdown(hotspot.question),
  ];
  if (hotspot.note) lines.push("", `_${escapeMarkdown(hotspot.note)}_`);
  lines.push("", t(trusted ? "hover.clickMeasure" : "hover.untrusted"));
  return lines.join("\n");
}

/** "allocated 1.2 GiB, reserved 2.0 GiB": the readings at one instant (OOM messages). */
export function readingsText(r: Readings): string {
  return HOVER_READINGS.filter((k) => r[k] !== undefined)
    .map((k) => `${k} ${formatBytes(r[k]!)}`)
    .join(", ");
}
