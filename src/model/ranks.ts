// Per-rank views of a run. Under tensor parallelism (vLLM's tensor_parallel_size=N) each rank is
// its own worker process holding its own shard, workspaces and KV cache, and the rank that runs
// out first decides whether the load fits: so the lens, the hover, the panel and the budget show
// the worst rank and the spread, not a sum over ranks that no GPU ever holds.
import { formatDelta } from "./format";
import {
  addFinishedCall,
  callDelta,
  RunModel,
  type CallRecord,
  type CallTotals,
  type TargetSummary,
} from "./runModel";
import { FORMAT_TEXT } from "../l10n/format";
import { translator, type Lang } from "../l10n/lang";

/** One rank's share of a target: every call made by a process of that rank. */
export interface RankTargetSummary extends CallTotals {
  rank: number;
  pids: number[];
  openCalls: number;
  /** Calls of this rank that ran out of device memory (an `oom` event inside them). */
  ooms: number;
}

/** A target measured on more than one rank: the worst one (most retained) and the range. */
export interface RankSpread {
  /** Ascending by rank. */
  ranks: RankTargetSummary[];
  /** The rank that ran out of memory here (the lowest such), else the one that retained the most
   * (the lowest such on a tie): the one that runs out first. */
  worst: RankTargetSummary;
  minRetained: number;
  maxRetained: number;
}

/**
 * The rank a call ran on: the call's own, else its process's latest. A worker's first events can
 * come before torch.distributed is initialised (rank null); its process gets its rank later.
 */
export function rankOfCall(run: RunModel, call: Pick<CallRecord, "pid" | "rank">): number | null {
  return call.rank ?? run.processes.get(call.pid)?.rank ?? null;
}

/** The distinct ranks of the run's processes, ascending. */
export function runRanks(run: RunModel): number[] {
  const ranks = new Set<number>();
  for (const p of run.processes.values()) if (p.rank !== null) ranks.add(p.rank);
  return [...ranks].sort((a, b) => a - b);
}

/** Per-rank totals of one target, ascending by rank; calls of processes without a rank are left out. */
export function rankSummaries(run: RunModel, target: string): RankTargetSummary[] {
  const byRank = new Map<number, RankTargetSummary>();
  for (const call of run.callsOf(target)) {
    const rank = rankOfCall(run, call);
    if (rank === null) continue;
    let r = byRank.get(rank);
    if (!r)
      byRank.set(rank, (r = { rank, pids: [], calls: 0, openCalls: 0, retained: 0, durationNs: 0, ooms: 0 }));
    if (!r.pids.includes(call.pid)) r.pids.push(call.pid);
    r.calls++;
    if (call.oom) r.ooms++;
    if (call.open) {
      r.openCalls++;
      continue;
    }
    addFinishedCall(r, callDelta(call), call.durationNs);
  }
  return [...byRank.values()].sort((a, b) => a.rank - b.rank);
}

/** The worst rank and the range, for a target measured on two or more ranks; else undefined. */
export function rankSpread(run: RunModel, target: string): RankSpread | undefined {
  // Most runs have one rank or none: no need to walk their calls.
  if (runRanks(run).length < 2) return undefined;
  const ranks = rankSummaries(run, target);
  if (ranks.length < 2) return undefined;
  let worst = ranks.find((r) => r.ooms > 0) ?? ranks[0]!;
  if (worst.ooms === 0) for (const r of ranks) if (r.retained > worst.retained) worst = r;
  const retained = ranks.map((r) => r.retained);
  return { ranks, worst, minRetained: Math.min(...retained), maxRetained: Math.max(...retained) };
}

/** "+4.5 to +4.6 GiB" (one unit when both share it), "+512.0 MiB to +1.0 GiB" otherwise. */
export function deltaRange(min: number, max: number, lang: Lang = "en"): string {
  const low = formatDelta(min);
  const high = formatDelta(max);
  if (low === high) return high;
  const unit = (text: string) => text.slice(text.lastIndexOf(" ") + 1);
  const sameUnit = unit(low) === unit(high) && low.includes(" ");
  return translator(FORMAT_TEXT, lang)("ranks.range", {
    low: sameUnit ? low.slice(0, low.lastIndexOf(" ")) : low,
    high,
  });
}

/**
 * The lens line for a target measured on several ranks:
 * "+4.6 GiB allocated on rank 1 · 2 ranks · +4.5 to +4.6 GiB · peak +4.9 GiB · 24 calls · 3 processes".
 * The peak and the counts are those of the worst rank's line in summaryLine, over every rank.
 */
export function rankedSummaryLine(s: TargetSummary, spread: RankSpread, lang: Lang = "en"): string {
  const t = translator(FORMAT_TEXT, lang);
  const source = t(s.source === "allocated" ? "source.allocated" : "source.host_rss");
  const parts = [
    t(spread.worst.ooms > 0 ? "ranks.worstOom" : "ranks.worst", {
      delta: formatDelta(spread.worst.retained),
      source,
      rank: spread.worst.rank,
    }),
    t("ranks.count", { n: spread.ranks.length }),
    deltaRange(spread.minRetained, spread.maxRetained, lang),
  ];
  if (s.peakAboveBeforeMax !== undefined) {
    const delta = formatDelta(s.peakAboveBeforeMax);
    parts.push(t(s.source === "host_rss" ? "summary.peakSampled" : "summary.peak", { delta }));
  }
  parts.push(s.calls === 1 ? t("calls.one") : t("calls.other", { n: String(s.calls) }));
  if (s.perProcess.length > 1) parts.push(t("processes.other", { n: s.perProcess.length }));
  if (s.openCalls > 0) parts.push(t("unfinished", { n: s.openCalls }));
  return parts.join(" · ");
}

/**
 * The run as one rank saw it: that rank's processes, their calls, samples and OOMs; the run-wide
 * parts (start, end, targets, the launcher's facts and logs) as they are. The budget measures each
 * rank on its own view, so one rank's workspaces never add to another's.
 */
export function rankView(run: RunModel, rank: number): RunModel {
  const view = new RunModel();
  view.start = run.start;
  view.end = run.end;
  view.eventCount = run.eventCount;
  view.firstTs = run.firstTs;
  view.lastTs = run.lastTs;
  const pids = new Set<number>();
  for (const [pid, p] of run.processes) {
    if (p.rank !== rank) continue;
    pids.add(pid);
    view.processes.set(pid, p);
  }
  for (const [id, info] of run.targets) view.targets.set(id, info);
  for (const call of run.calls)
    if (pids.has(call.pid) && rankOfCall(run, call) === rank) view.calls.push(call);
  for (const [pid, columns] of run.sampleColumns) if (pids.has(pid)) view.sampleColumns.set(pid, columns);
  view.facts.push(...run.facts);
  view.logs.push(...run.logs);
  view.ooms.push(...run.ooms.filter((o) => pids.has(o.pid)));
  view.errors.push(...run.errors);
  for (const [pid, paused] of run.paused) if (pids.has(pid)) view.paused.set(pid, paused);
  return view;
}
