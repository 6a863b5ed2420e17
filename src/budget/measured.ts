// The measured side of the budget: what a run says each part of GPU memory took, each number
// with the reading, hotspot or vLLM log fact it came from.
import type { FactEvent, Readings } from "../protocol/events";
import { highestReading, readingsAt } from "../model/readings";
import { callDelta, type RunModel } from "../model/runModel";
import { callsText, formatBytes } from "../model/format";
import { BUDGET_TEXT, type BudgetKey } from "../l10n/budget";
import { translator, type Lang, type Translate } from "../l10n/lang";
import { measure, NEEDS, type MatchContext, type MetaTargets } from "./targets";

export interface MeasuredValue {
  bytes: number;
  /** "measured: …" — which reading, hotspot or fact. */
  source: string;
}

export interface ReadingSnapshot {
  pid: number;
  ts: number;
  readings: Readings;
  /** Why this instant was picked. */
  why: string;
}

export interface RunMeasurements {
  /** The process that held the most torch memory (vLLM's engine core / worker). */
  gpuPid?: number;
  snapshot?: ReadingSnapshot;
  residentWeights?: MeasuredValue;
  workspaces?: MeasuredValue & { calls: number; perCall: number };
  kvCache?: MeasuredValue;
  kvTokens?: { tokens: number; source: string };
  activationPeak?: MeasuredValue;
  nonTorch?: MeasuredValue;
  allocatorSlack?: MeasuredValue;
  cudaGraphs?: MeasuredValue;
  deviceTotal?: MeasuredValue;
  peakAllocated?: MeasuredValue;
  /** vLLM's own memory_profiling arithmetic, when it logged it. */
  profiling?: FactEvent;
  /** vLLM said there was no memory left for the KV cache. */
  noKvMemory?: FactEvent;
  oom?: { message: string; source: string };
}

function lastFact(run: RunModel, kind: string): FactEvent | undefined {
  const facts = run.factsOf(kind);
  return facts[facts.length - 1];
}

function factSource(f: FactEvent, t: Translate<BudgetKey>): string {
  return t("src.fact", { line: f.line.replace(/\s+/g, " ").trim().slice(0, 160), kind: f.kind });
}

/** The pid whose readings show the most torch-allocated memory. */
export function gpuProcess(run: RunModel): number | undefined {
  return highestReading(readingsAt(run), (r) => r.allocated ?? r.reserved)?.pid;
}

/** The reading of the GPU process with the most reserved memory: the steady state after the KV cache. */
export function readingSnapshot(run: RunModel, pid: number, lang: Lang = "en"): ReadingSnapshot | undefined {
  const t = translator(BUDGET_TEXT, lang);
  const best = highestReading(readingsAt(run, pid), (r) => r.reserved);
  if (!best) return undefined;
  const kind = best.call
    ? t(best.instant === "entry" ? "why.entry" : "why.exit", {
        target: best.call.target,
        call: best.call.call,
      })
    : t("why.sample");
  return { pid, ts: best.ts, readings: best.readings, why: t("why.highestReserved", { kind }) };
}

function at(run: RunModel, snap: ReadingSnapshot, t: Translate<BudgetKey>): string {
  const since =
    run.firstTs === undefined ? "" : t("at.since", { seconds: ((snap.ts - run.firstTs) / 1e9).toFixed(1) });
  return t("at.pid", { pid: snap.pid, since, why: snap.why });
}

/** vLLM >= 0.21 logs its budget after the KV cache is made ("Free memory on device … Actual usage
 * is …") instead of the older profiling block: the same arithmetic under the same names. */
function usageAsProfiling(usage: FactEvent | undefined): FactEvent | undefined {
  if (!usage) return undefined;
  const v = usage.values;
  const values: Record<string, number> = {};
  const rename: [string, string][] = [
    ["total_bytes", "total_bytes"],
    ["utilization", "utilization"],
    ["desired_bytes", "budget_bytes"],
    ["weights_bytes", "weights_bytes"],
    ["non_torch_bytes", "non_torch_bytes"],
    ["activation_peak_bytes", "activation_peak_bytes"],
    ["kv_cache_bytes", "kv_cache_bytes"],
    ["cuda_graph_bytes", "cuda_graph_bytes"],
  ];
  for (const [from, to] of rename) if (v[from] !== undefined) values[to] = v[from]!;
  return { ...usage, values };
}

/** What a run measured, each source said in `lang` (quoted log lines and code names as they are). */
export function measureRun(run: RunModel, meta?: MetaTargets, lang: Lang = "en"): RunMeasurements {
  const t = translator(BUDGET_TEXT, lang);
  const factSrc = (f: FactEvent): string => factSource(f, t);
  const ctx: MatchContext = { run, meta };
  const out: RunMeasurements = {};
  out.gpuPid = gpuProcess(run);
  const profiling = lastFact(run, "memory_profiling") ?? usageAsProfiling(lastFact(run, "memory_usage"));
  out.profiling = profiling;
  out.noKvMemory = lastFact(run, "no_kv_memory");
  const pv = profiling?.values ?? {};

  const load = measure(ctx, NEEDS.loadModel);
  const loadingFact = lastFact(run, "model_loading");
  if (load.summary && load.summary.calls > load.summary.openCalls) {
    out.residentWeights = {
      bytes: load.summary.retained,
      source: t("src.retainedBy", {
        source: load.summary.source,
        spec: load.summary.spec ?? load.summary.target,
        calls: callsText(load.summary.calls, lang),
      }),
    };
  } else if (loadingFact?.values.bytes !== undefined) {
    out.residentWeights = { bytes: loadingFact.values.bytes, source: factSrc(loadingFact) };
  } else if (pv.weights_bytes !== undefined && profiling) {
    out.residentWeights = { bytes: pv.weights_bytes, source: factSrc(profiling) };
  }

  const ws = measure(ctx, NEEDS.workspace);
  if (ws.summary) {
    const finished = ws.calls.filter((c) => !c.open);
    const perCall = finished.map((c) => callDelta(c).retained ?? 0);
    const typical = perCall.length > 0 ? Math.max(...perCall) : 0;
    out.workspaces = {
      bytes: ws.summary.retained,
      calls: ws.summary.calls,
      perCall: typical,
      source: t("src.workspaces", {
        calls: callsText(ws.summary.calls, lang),
        spec: ws.summary.spec ?? ws.summary.target,
        bytes: formatBytes(typical),
        source: ws.summary.source,
      }),
    };
  }

  const kv = measure(ctx, NEEDS.initKvCache);
  const availableKv = lastFact(run, "available_kv_cache");
  if (kv.summary && kv.summary.calls > kv.summary.openCalls && kv.summary.retained > 0) {
    out.kvCache = {
      bytes: kv.summary.retained,
      source: t("src.retainedByNoCalls", {
        source: kv.summary.source,
        spec: kv.summary.spec ?? kv.summary.target,
      }),
    };
  } else if (availableKv?.values.bytes !== undefined) {
    out.kvCache = { bytes: availableKv.values.bytes, source: factSrc(availableKv) };
  } else if (pv.kv_cache_bytes !== undefined && profiling) {
    out.kvCache = { bytes: pv.kv_cache_bytes, source: factSrc(profiling) };
  }
  const kvSize = lastFact(run, "kv_cache_size");
  if (kvSize?.values.tokens !== undefined)
    out.kvTokens = { tokens: kvSize.values.tokens, source: factSrc(kvSize) };

  const profile = measure(ctx, NEEDS.profileRun);
  if (pv.activation_peak_bytes !== undefined && profiling) {
    out.activationPeak = { bytes: pv.activation_peak_bytes, source: factSrc(profiling) };
  } else if (profile.summary?.peakAboveBeforeMax !== undefined) {
    out.activationPeak = {
      bytes: profile.summary.peakAboveBeforeMax,
      source: t("src.peakOf", {
        spec: profile.summary.spec ?? profile.summary.target,
        source: profile.summary.source,
      }),
    };
  }

  const graphs = lastFact(run, "graph_capture");
  if (graphs?.values.bytes !== undefined)
    out.cudaGraphs = { bytes: graphs.values.bytes, source: factSrc(graphs) };

  if (out.gpuPid !== undefined) {
    const snap = readingSnapshot(run, out.gpuPid, lang);
    out.snapshot = snap;
    if (snap) {
      const r = snap.readings;
      if (r.allocated !== undefined && r.reserved !== undefined) {
        out.allocatorSlack = {
          bytes: r.reserved - r.allocated,
          source: t("src.slack", { at: at(run, snap, t) }),
        };
      }
      if (r.device_total !== undefined) {
        out.deviceTotal = {
          bytes: r.device_total,
          source: t("src.deviceTotal", { pid: snap.pid }),
        };
      }
      if (pv.non_torch_bytes === undefined) {
        const nonTorch =
          r.non_torch ??
          (r.device_used !== undefined && r.reserved !== undefined ? r.device_used - r.reserved : undefined);
        if (nonTorch !== undefined) {
          out.nonTorch = { bytes: nonTorch, source: t("src.nonTorch", { at: at(run, snap, t) }) };
        }
      }
    }
    let peak: { bytes: number; ts: number } | undefined;
    // From the sample columns: a million samples are scanned without building their objects.
    const columns = run.sampleColumns.get(out.gpuPid);
    const allocated = columns?.column("allocated");
    if (columns && allocated) {
      for (let i = 0; i < allocated.length; i++) {
        const a = allocated[i]!;
        if (!Number.isNaN(a) && (!peak || a > peak.bytes)) peak = { bytes: a, ts: columns.tsAt(i) };
      }
    }
    for (const c of run.calls) {
      const p = c.pid === out.gpuPid ? c.peak?.allocated : undefined;
      if (p !== undefined && (!peak || p > peak.bytes)) peak = { bytes: p, ts: c.endTs ?? c.startTs };
    }
    if (peak) out.peakAllocated = { bytes: peak.bytes, source: t("src.peakAllocated", { pid: out.gpuPid }) };
  }
  if (pv.non_torch_bytes !== undefined && profiling) {
    out.nonTorch = { bytes: pv.non_torch_bytes, source: factSrc(profiling) };
  }
  if (!out.deviceTotal && pv.total_bytes !== undefined && profiling) {
    out.deviceTotal = { bytes: pv.total_bytes, source: factSrc(profiling) };
  }
  const oom = run.ooms[run.ooms.length - 1];
  const oomFact = lastFact(run, "cuda_oom");
  if (oom) out.oom = { message: oom.message, source: t("src.oom", { target: oom.target, pid: oom.pid }) };
  else if (oomFact) out.oom = { message: oomFact.line, source: factSrc(oomFact) };
  return out;
}
