// The budget as the panel and the "Show Memory Budget" document render it: theory beside
// measurement, each row with its source, and the fit verdict with its arithmetic.
import type { RunModel } from "../model/runModel";
import { rankView, runRanks } from "../model/ranks";
import type { ModuleGroup } from "./checkpoint";
import { BUDGET_TEXT } from "../l10n/budget";
import { translator, type Lang } from "../l10n/lang";
import { kvModelFromConfig, type KvModel } from "./kvcache";
import { measureRun, type RunMeasurements } from "./measured";
import type { ModelBudget } from "./modelBudget";
import type { MetaTargets } from "./targets";
import { fitVerdict, type BudgetKind, type FitVerdict, type VerdictPart } from "./verdict";

export interface BudgetRow {
  label: string;
  theoryBytes?: number;
  measuredBytes?: number;
  kind: BudgetKind;
  source: string;
  /** A part of device memory that adds up with the other stacked rows (the panel's bars); the rest are breakdowns, per-token figures or totals. */
  stack?: boolean;
}

export interface BudgetView {
  rows: BudgetRow[];
  targetBytes: number;
  verdict: string;
  arithmetic: string[];
  /** Tensor parallelism: a verdict line per rank (the rows and arithmetic are the worst rank's). */
  rankVerdicts?: string[];
}

/** One rank's fit (tensor parallelism: each rank is measured on its own). */
export interface RankFit {
  rank: number;
  fit: FitVerdict;
  measurements?: RunMeasurements;
  worst: boolean;
}

export interface BudgetViewOptions {
  /** The model's config.json (the checkpoint's own when `checkpoint` is given). */
  config?: Record<string, unknown>;
  checkpoint?: ModelBudget;
  targetBytes: number;
  gpuMemoryUtilization: number;
  /** RunMeta.targets of the run (target id → hotspot id), for matching probes. */
  meta?: MetaTargets;
  /** Tokens one request needs; default: the run's max_concurrency fact, else 32 (the checklist's minimal config). */
  maxModelLen?: number;
  kvCacheDtype?: string;
  /** The language of labels, sources and the verdict (default English). */
  lang?: Lang;
}

/** Everything the view needs, for callers (export, CLI) that want the numbers too. */
export interface BudgetComputation {
  view: BudgetView;
  measurements?: RunMeasurements;
  fit: FitVerdict;
  kv?: KvModel;
  /** Tensor parallelism: each rank's fit, ascending by rank; `fit` is the worst rank's. */
  ranks?: RankFit[];
}

/**
 * The budget of a run. Under tensor parallelism (processes of two or more ranks) every rank is
 * measured on its own view of the run and fits or not on its own card; the worst rank (the most
 * short, else the least KV cache left) decides, and its rows and arithmetic are shown.
 */
export function computeBudget(run: RunModel | undefined, opts: BudgetViewOptions): BudgetComputation {
  const ranks = run ? runRanks(run) : [];
  if (!run || ranks.length < 2) return computeOneBudget(run, opts, 1);
  const perRank = ranks.map((rank) => ({
    rank,
    budget: computeOneBudget(rankView(run, rank), opts, ranks.length),
  }));
  let worst = perRank[0]!;
  for (const r of perRank) {
    const a = r.budget.fit;
    const b = worst.budget.fit;
    if (a.shortBytes > b.shortBytes || (a.shortBytes === b.shortBytes && a.kvBytes < b.kvBytes)) worst = r;
  }
  const t = translator(BUDGET_TEXT, opts.lang ?? "en");
  const view: BudgetView = {
    ...worst.budget.view,
    verdict: t("rank.decides", { rank: worst.rank, n: ranks.length, verdict: worst.budget.view.verdict }),
    rankVerdicts: perRank.map((r) =>
      t(r === worst ? "rank.lineWorst" : "rank.line", { rank: r.rank, verdict: r.budget.view.verdict }),
    ),
  };
  return {
    ...worst.budget,
    view,
    ranks: perRank.map((r) => ({
      rank: r.rank,
      fit: r.budget.fit,
      measurements: r.budget.measurements,
      worst: r === worst,
    })),
  };
}

/** The budget of one card; `shards`: the ranks a theoretical weight size is split over. */
function computeOneBudget(
  run: RunModel | undefined,
  opts: BudgetViewOptions,
  shards: number,
): BudgetComputation {
  const lang = opts.lang ?? "en";
  const t = translator(BUDGET_TEXT, lang);
  const rows: BudgetRow[] = [];
  const cp = opts.checkpoint;
  const config = cp?.config ?? opts.config;
  let kv = cp?.kv;
  if (!kv && config) {
    try {
      kv = kvModelFromConfig(config, opts.kvCacheDtype);
    } catch {
      kv = undefined;
    }
  }
  const m = run ? measureRun(run, opts.meta, lang) : undefined;

  if (cp) {
    const s = cp.summary;
    rows.push({
      label: t("row.checkpoint"),
      theoryBytes: s.totalBytes,
      kind: "theory",
      source: cp.origin,
    });
    for (const [dtype, bytes] of Object.entries(s.byDtype).sort((a, b) => b[1] - a[1])) {
      const what = dtype === "U8" && s.mxfp4.blocksBytes > 0 ? t("row.dtypeMxfp4") : "";
      rows.push({
        label: t("row.dtype", { dtype, what }),
        theoryBytes: bytes,
        kind: "theory",
        source: cp.origin,
      });
    }
    for (const [group, bytes] of Object.entries(s.byGroup) as [ModuleGroup, number][]) {
      if (bytes === 0) continue;
      rows.push({ label: `  ${t(`group.${group}`)}`, theoryBytes: bytes, kind: "theory", source: cp.origin });
    }
    rows.push({
      label: t("row.theoryMinimum"),
      theoryBytes: cp.theory.bytes,
      kind: "theory",
      source: t("row.theoryMinimumSource", {
        formula: cp.theory.formula.join("; "),
        why: cp.theory.whyWrong.join(" "),
      }),
    });
  }

  // Tensor parallelism splits the weights over the ranks (evenly, in theory; a run measures each).
  const wholeEstimate = cp?.marlin?.residentBytes ?? cp?.summary.totalBytes;
  const weightsEstimate = wholeEstimate === undefined ? undefined : Math.ceil(wholeEstimate / shards);
  const wholeEstimateSource = cp?.marlin
    ? t("src.estimate", { formula: cp.marlin.formula.join(" ") })
    : cp
      ? t("src.theoryCheckpoint", { origin: cp.origin })
      : "";
  const weightsEstimateSource =
    shards > 1 && cp
      ? t("rank.weightsShare", { source: wholeEstimateSource, n: shards })
      : wholeEstimateSource;
  if (m?.residentWeights || weightsEstimate !== undefined) {
    rows.push({
      label: t("row.residentWeights"),
      theoryBytes: weightsEstimate,
      measuredBytes: m?.residentWeights?.bytes,
      kind: m?.residentWeights ? "measured" : cp?.marlin ? "estimate" : "theory",
      source: [m?.residentWeights?.source, weightsEstimateSource].filter(Boolean).join(" | "),
      stack: true,
    });
  }
  if (m?.workspaces) {
    rows.push({
      label: t("row.workspaces"),
      measuredBytes: m.workspaces.bytes,
      kind: "measured",
      source: m.workspaces.source,
      // Measured resident weights already hold the workspaces (as in the verdict's parts below).
      stack: !m.residentWeights,
    });
  }
  if (kv) {
    rows.push({
      label: t("row.kvPerTokenFull"),
      theoryBytes: kv.fullBytesPerToken,
      kind: "theory",
      source: t("src.theoryConfig", { formula: kv.formula }),
    });
    if (kv.slidingLayers > 0) {
      rows.push({
        label: t("row.kvPerTokenSliding", { window: String(kv.slidingWindow) }),
        theoryBytes: kv.slidingBytesPerToken,
        kind: "theory",
        source: t("src.theorySliding", {
          sliding: kv.slidingLayers,
          layers: kv.layers,
          window: String(kv.slidingWindow),
        }),
      });
    }
  }
  const measuredRow = (
    label: string,
    value: { bytes: number; source: string } | undefined,
    stack = false,
  ): void => {
    if (value)
      rows.push({ label, measuredBytes: value.bytes, kind: "measured", source: value.source, stack });
  };
  measuredRow(t("row.kvCache"), m?.kvCache, true);
  measuredRow(t("row.activationPeak"), m?.activationPeak, true);
  measuredRow(t("row.nonTorch"), m?.nonTorch, true);
  measuredRow(t("row.slack"), m?.allocatorSlack);
  measuredRow(t("row.cudaGraphs"), m?.cudaGraphs, true);
  measuredRow(t("row.peakAllocated"), m?.peakAllocated);
  measuredRow(t("row.deviceTotal"), m?.deviceTotal);

  const parts: VerdictPart[] = [];
  const unknown: string[] = [];
  if (m?.residentWeights) {
    parts.push({
      label: t("part.residentWeights"),
      bytes: m.residentWeights.bytes,
      kind: "measured",
      source: m.residentWeights.source,
    });
  } else if (weightsEstimate !== undefined) {
    parts.push({
      label: t("part.residentWeights"),
      bytes: weightsEstimate,
      kind: cp?.marlin ? "estimate" : "theory",
      source: t(cp?.marlin ? "part.marlinPadded" : "part.checkpointBytes"),
    });
    if (m?.workspaces) {
      parts.push({
        label: t("part.workspaces"),
        bytes: m.workspaces.bytes,
        kind: "measured",
        source: m.workspaces.source,
      });
    }
  } else {
    unknown.push(t("unknown.weights"));
  }
  // Measured parts; a missing one is named in the verdict as not measured yet.
  const measuredParts: [string, { bytes: number; source: string } | undefined, string | undefined][] = [
    [t("part.activationPeak"), m?.activationPeak, t("unknown.activationPeak")],
    [t("part.nonTorch"), m?.nonTorch, t("unknown.nonTorch")],
    [t("part.cudaGraphs"), m?.cudaGraphs, undefined],
  ];
  for (const [label, measured, missingName] of measuredParts) {
    if (measured) parts.push({ label, bytes: measured.bytes, kind: "measured", source: measured.source });
    else if (missingName) unknown.push(missingName);
  }
  const concurrency = run?.factsOf("max_concurrency").at(-1);
  const maxModelLen = opts.maxModelLen ?? concurrency?.values.tokens_per_request ?? 32;
  const fit = fitVerdict({
    targetBytes: opts.targetBytes,
    gpuMemoryUtilization: opts.gpuMemoryUtilization,
    parts,
    unknown,
    kv,
    minKvTokens: maxModelLen,
    lang,
  });
  const arithmetic = [...fit.arithmetic];
  if (cp?.marlin) arithmetic.push(...cp.marlin.formula.map((line) => t("arith.estimate", { line })));
  if (cp) arithmetic.push(...cp.theory.whyWrong.map((line) => t("arith.checklist", { line })));
  return {
    view: { rows, targetBytes: opts.targetBytes, verdict: fit.verdict, arithmetic },
    measurements: m,
    fit,
    kv,
  };
}

export function computeBudgetView(run: RunModel | undefined, opts: BudgetViewOptions): BudgetView {
  return computeBudget(run, opts).view;
}
