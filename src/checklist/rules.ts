// The checklist's rules: each item of items.json answered from a run — the answer, the evidence
// (numbers, hotspot, call, pid), the code it points at — or what to probe next.
import itemsData from "./items.json";
import { callDelta, type CallRecord, type RunModel, type TargetSummary } from "../model/runModel";
import { formatBytes, callsText } from "../model/format";
import { CHECKLIST_TEXT, type ChecklistKey } from "../l10n/checklist";
import { translator, type Lang, type Translate } from "../l10n/lang";
import type { FactEvent } from "../protocol/events";
import { measureRun, type RunMeasurements } from "../budget/measured";
import type { ModelBudget } from "../budget/modelBudget";
import { kvModelFromConfig, type KvModel } from "../budget/kvcache";
import {
  findTargets,
  measure,
  NEEDS,
  type MatchContext,
  type Measured,
  type MetaTargets,
  type NeedName,
  type ProbeNeed,
} from "../budget/targets";

export type NeedKey = NeedName;
export type ItemKind = "question" | "table_row" | "note";

export interface ChecklistSection {
  id: string;
  title: string;
  gloss: string;
}

export interface ChecklistItem {
  id: string;
  section: string;
  kind: ItemKind;
  /** The seed document's own text (Chinese), exactly as in the file, so export can find it. */
  seed: string;
  gloss: string;
  probes: NeedKey[];
}

export type ChecklistState = "answered" | "needs_probe" | "needs_run";

export interface Evidence {
  text: string;
  bytes?: number;
  target?: string;
  hotspot?: string;
  call?: number;
  pid?: number;
  fact?: string;
}

export interface ChecklistResult {
  item: ChecklistItem;
  state: ChecklistState;
  /** One sentence; for answered items it is what goes beside the tick in the log. */
  answer: string;
  /** The yes/no the question asks, where it asks one (for quantities: is there such memory at all). */
  verdict?: "yes" | "no";
  evidence: Evidence[];
  codeLink?: { file: string; line: number };
  /** What to probe so a run can answer (needs_probe), or that a run would measure (needs_run). */
  nextProbes: ProbeNeed[];
  /** Section 4 rows: the saving a run measured. */
  saving?: { bytes: number; text: string };
}

export interface ChecklistContext {
  run?: RunModel;
  meta?: MetaTargets;
  model?: ModelBudget;
  /** config.json when no checkpoint budget is at hand. */
  config?: Record<string, unknown>;
  lineText?: (file: string, line: number) => string | undefined;
  /** The language of answers, evidence and next probes (default English). */
  lang?: Lang;
}

const data = itemsData as { sections: ChecklistSection[]; items: ChecklistItem[] };
export const CHECKLIST_SECTIONS: readonly ChecklistSection[] = data.sections;
export const CHECKLIST_ITEMS: readonly ChecklistItem[] = data.items;

/** vLLM's default KV block size on CUDA; its log gives tokens, not blocks. */
const DEFAULT_BLOCK_SIZE = 16;

const b = (bytes: number): string => formatBytes(bytes, bytes >= 1024 ** 3 ? 2 : 1);
const n = (x: number): string => x.toLocaleString("en-US");

interface RuleInput {
  t: Translate<ChecklistKey>;
  /** "1 call", "1,536 calls" in the answer's language. */
  callsN: (count: number) => string;
  lang: Lang;
  item: ChecklistItem;
  run: RunModel;
  ctx: MatchContext;
  m: RunMeasurements;
  config?: Record<string, unknown>;
  kv?: KvModel;
  model?: ModelBudget;
}

type RuleOutcome = Omit<ChecklistResult, "item" | "nextProbes"> & { nextProbes?: ProbeNeed[] };
type Rule = (input: RuleInput) => RuleOutcome;

/** The probe a need names, with what it measures in `lang`. */
function needIn(key: NeedKey, t: Translate<ChecklistKey>): ProbeNeed {
  return { ...NEEDS[key], what: t(`need.${key}`) };
}

function probesOf(item: ChecklistItem, t: Translate<ChecklistKey>): ProbeNeed[] {
  return item.probes.map((k) => needIn(k, t));
}

function codeLinkOf(run: RunModel, targets: string[]): { file: string; line: number } | undefined {
  for (const id of targets) {
    const resolved = [...(run.targets.get(id)?.resolved.values() ?? [])][0];
    if (resolved?.file && resolved.line !== undefined) return { file: resolved.file, line: resolved.line };
  }
  return undefined;
}

function factEvidence(f: FactEvent, t: Translate<ChecklistKey>): Evidence {
  return { text: t("ev.vllmLog", { line: f.line.replace(/\s+/g, " ").trim() }), fact: f.kind, pid: f.pid };
}

function callEvidence(s: TargetSummary, text: string, bytes?: number, hotspot?: string): Evidence {
  const pp = s.perProcess[0];
  return { text, bytes, target: s.target, hotspot, call: s.calls, pid: pp?.pid };
}

/** What a run that lacks the probe, or never reached it, should do next. */
function missing(
  { run, ctx, item, t }: Pick<RuleInput, "run" | "ctx" | "item" | "t">,
  keys: NeedKey[],
  whatKey: ChecklistKey,
): RuleOutcome {
  const what = t(whatKey);
  const needs = keys.map((k) => needIn(k, t));
  const present = keys.flatMap((k) => findTargets(ctx, NEEDS[k], item.id));
  if (present.some((id) => run.callsOf(id).length > 0)) {
    return {
      state: "needs_run",
      answer: t("missing.ranNotReached", { what }),
      evidence: [],
      nextProbes: needs,
    };
  }
  if (present.length > 0) {
    const reasons = present.flatMap((id) =>
      [...(run.targets.get(id)?.notFound.values() ?? [])].map((e) => e.reason),
    );
    return {
      state: "needs_run",
      answer: t("missing.neverCalled", {
        reason: reasons.length ? t("missing.reason", { reason: reasons[0]! }) : "",
        what,
      }),
      evidence: [],
      nextProbes: needs,
    };
  }
  const names = needs.map(
    (p) =>
      p.function ?? (p.line ? t("missing.lineOf", { file: p.line.file, contains: p.line.contains }) : p.what),
  );
  return {
    state: "needs_probe",
    answer: t("missing.addProbe", { names: names.join(t("list.or")), what }),
    evidence: [],
    nextProbes: needs,
  };
}

function lastFact(run: RunModel, kind: string): FactEvent | undefined {
  return run.factsOf(kind).at(-1);
}

function firstMeasured(
  ctx: MatchContext,
  item: ChecklistItem,
  keys: NeedKey[],
): (Measured & { key: NeedKey }) | undefined {
  for (const key of keys) {
    const found = measure(ctx, NEEDS[key], item.id);
    if (found.summary && found.summary.calls > found.summary.openCalls) return { ...found, key };
  }
  return undefined;
}

function finished(calls: CallRecord[]): CallRecord[] {
  return calls.filter((c) => !c.open);
}

/** Expert bytes of one MoE layer as the checkpoint stores them. */
function originalExpertBytesPerLayer(input: RuleInput): { bytes: number; source: string } | undefined {
  const layers = input.config?.num_hidden_layers;
  if (input.model && typeof layers === "number" && input.model.summary.byGroup.experts > 0) {
    return { bytes: input.model.summary.byGroup.experts / layers, source: input.model.origin };
  }
  const c = input.config;
  if (!c) return undefined;
  const H = c.hidden_size;
  const I = c.intermediate_size;
  const E = c.num_local_experts ?? c.num_experts;
  if (typeof H !== "number" || typeof I !== "number" || typeof E !== "number") return undefined;
  const values = 3 * I * H;
  return {
    bytes: E * (values / 2 + values / 32 + (2 * I + H) * 2),
    source: input.t("ev.configExperts"),
  };
}

function workspaceFacts(input: RuleInput, item: ChecklistItem) {
  const ws = measure(input.ctx, NEEDS.workspace, item.id);
  if (!ws.summary || ws.summary.calls === ws.summary.openCalls) return undefined;
  const calls = finished(ws.calls);
  const byPid = new Map<number, CallRecord[]>();
  for (const c of calls) byPid.set(c.pid, [...(byPid.get(c.pid) ?? []), c]);
  // The process that made the most: the GPU worker (every rank makes its own).
  const [pid, pidCalls] = [...byPid.entries()].sort((a, b2) => b2[1].length - a[1].length)[0]!;
  const sizes = pidCalls.map((c) => callDelta(c).retained ?? 0);
  const kept = sizes.filter((s) => s > 0);
  const perCall = Math.max(0, ...sizes);
  const total = sizes.reduce((a, s) => a + s, 0);
  const prepare = measure(input.ctx, NEEDS.prepareMarlin, item.id);
  const moeLayers =
    prepare.calls.filter((c) => c.pid === pid).length ||
    (input.config?.num_hidden_layers as number | undefined);
  const device = pidCalls[0]?.device;
  const sameSize = kept.every((s) => s === kept[0]);
  return {
    ws,
    summary: ws.summary,
    pid,
    calls: pidCalls.length,
    kept: kept.length,
    perCall,
    total,
    moeLayers,
    device,
    sameSize,
  };
}

const rules: Record<string, Rule> = {
  "overhead.kv_cache": (input) => {
    const { run, ctx, m, t } = input;
    if (m.noKvMemory) {
      return {
        state: "answered",
        verdict: "no",
        answer: t("kv.noMemory"),
        evidence: [factEvidence(m.noKvMemory, t)],
      };
    }
    if (!m.kvCache) return missing(input, ["initKvCache"], "what.kvAllocated");
    const tokens = m.kvTokens ? t("kv.forTokens", { n: n(m.kvTokens.tokens) }) : "";
    return {
      state: m.kvCache.bytes >= 0 ? "answered" : "needs_run",
      verdict: m.kvCache.bytes > 0 ? "yes" : "no",
      answer: t("kv.prealloc", {
        yesNo: t(m.kvCache.bytes > 0 ? "yes" : "no"),
        bytes: b(m.kvCache.bytes),
        tokens,
      }),
      evidence: [
        { text: m.kvCache.source, bytes: m.kvCache.bytes },
        ...(m.kvTokens ? [{ text: m.kvTokens.source }] : []),
      ],
      codeLink: codeLinkOf(run, findTargets(ctx, NEEDS.initKvCache)),
    };
  },

  "overhead.marlin_workspace": (input) => {
    const { t } = input;
    const f = workspaceFacts(input, input.item);
    if (!f) return missing(input, ["workspace"], "what.moeConvertedMarlin");
    const perLayer = f.kept > 1;
    return {
      state: "answered",
      verdict: perLayer ? "yes" : "no",
      answer: perLayer
        ? t("ws.perLayer", { kept: f.kept, size: b(f.perCall), total: b(f.total) })
        : t("ws.shared", { size: b(f.perCall) }),
      evidence: [callEvidence(f.summary, f.ws.summary!.spec ?? f.summary.target, f.total)],
      codeLink: codeLinkOf(input.run, f.ws.targets),
    };
  },

  "overhead.conversion_copy": (input) => {
    const { item, run, ctx, t, callsN } = input;
    const found = firstMeasured(ctx, item, ["prepareMarlin", "processWeights"]);
    if (!found) return missing(input, ["prepareMarlin", "processWeights"], "what.moeConverted");
    const s = found.summary!;
    const transient = s.transientMax ?? 0;
    return {
      state: "answered",
      verdict: transient > 0 ? "yes" : "no",
      answer:
        transient > 0
          ? t("conv.yes", { bytes: b(transient), calls: callsN(s.calls) })
          : t("conv.no", { calls: callsN(s.calls) }),
      evidence: [callEvidence(s, t("ev.transientOf", { spec: s.spec ?? s.target }), transient)],
      codeLink: codeLinkOf(run, found.targets),
    };
  },

  "overhead.cuda_context": (input) => {
    const { m, t } = input;
    if (!m.nonTorch) {
      return {
        ...missing(input, [], "what.cudaInit"),
        state: "needs_run",
        answer: t("ctx.notMeasured"),
      };
    }
    return {
      state: "answered",
      verdict: m.nonTorch.bytes > 0 ? "yes" : "no",
      answer: t("ctx.answer", { yesNo: t(m.nonTorch.bytes > 0 ? "yes" : "no"), bytes: b(m.nonTorch.bytes) }),
      evidence: [{ text: m.nonTorch.source, bytes: m.nonTorch.bytes, pid: m.snapshot?.pid }],
    };
  },

  "overhead.activation": (input) => {
    const { run, ctx, m, t } = input;
    if (!m.activationPeak) return missing(input, ["profileRun"], "what.profileForward");
    return {
      state: "answered",
      verdict: m.activationPeak.bytes > 0 ? "yes" : "no",
      answer: t("act.answer", {
        yesNo: t(m.activationPeak.bytes > 0 ? "yes" : "no"),
        bytes: b(m.activationPeak.bytes),
      }),
      evidence: [{ text: m.activationPeak.source, bytes: m.activationPeak.bytes }],
      codeLink: codeLinkOf(run, findTargets(ctx, NEEDS.profileRun)),
    };
  },

  "load.contiguous_copy": (input) => {
    const { item, run, ctx, t } = input;
    const found = firstMeasured(ctx, item, ["contiguousLine"]);
    if (!found) return missing(input, ["contiguousLine"], "what.repacked");
    const calls = finished(found.calls);
    const sizes = calls.map((c) => Math.max(callDelta(c).peakAboveBefore ?? 0, callDelta(c).retained ?? 0));
    const max = Math.max(0, ...sizes);
    const first = calls[0]!;
    return {
      state: "answered",
      verdict: max > 0 ? "yes" : "no",
      answer:
        max > 0
          ? t("contig.yes", { bytes: b(max), exact: n(max), count: calls.length })
          : t("contig.no", { count: calls.length }),
      evidence: [
        {
          text: t("ev.linePeak", { count: calls.length }),
          bytes: max,
          target: found.summary!.target,
          call: calls.length,
          pid: first.pid,
        },
      ],
      codeLink:
        codeLinkOf(run, found.targets) ??
        (first.file && first.line ? { file: first.file, line: first.line } : undefined),
    };
  },

  "load.repack_inplace": (input) => {
    const { item, run, ctx, t, callsN } = input;
    const found = firstMeasured(ctx, item, ["repack"]);
    if (!found) return missing(input, ["repack"], "what.repacked");
    const calls = finished(found.calls);
    const retained = calls.map((c) => callDelta(c).retained ?? 0);
    const peaks = calls.map((c) => callDelta(c).peakAboveBefore ?? 0);
    const newTensor = Math.max(0, ...retained, ...peaks);
    const inPlace = newTensor === 0;
    return {
      state: "answered",
      verdict: inPlace ? "yes" : "no",
      answer: inPlace
        ? t("repack.yes", { calls: callsN(calls.length) })
        : t("repack.no", { bytes: b(newTensor), calls: callsN(calls.length) }),
      evidence: [callEvidence(found.summary!, t("ev.largestCall"), newTensor)],
      codeLink: codeLinkOf(run, found.targets),
    };
  },

  "load.original_freed": (input) => {
    const { item, run, ctx, t } = input;
    const found = firstMeasured(ctx, item, ["prepareMarlin", "processWeights"]);
    if (!found) return missing(input, ["prepareMarlin", "processWeights"], "what.moeConverted");
    const s = found.summary!;
    const calls = finished(found.calls);
    const perCall = Math.max(...calls.map((c) => callDelta(c).retained ?? 0));
    const original = originalExpertBytesPerLayer(input);
    if (!original) {
      return {
        state: "needs_run",
        answer: t("freed.needConfig", { bytes: b(perCall) }),
        evidence: [callEvidence(s, t("ev.retainedPerCall", { spec: s.spec ?? s.target }), perCall)],
        nextProbes: [],
      };
    }
    const freed = perCall < original.bytes / 2;
    return {
      state: "answered",
      verdict: freed ? "yes" : "no",
      answer: t(freed ? "freed.yes" : "freed.no", { kept: b(perCall), original: b(original.bytes) }),
      evidence: [
        callEvidence(
          s,
          t("ev.retainedPerCallMax", { spec: s.spec ?? s.target, count: calls.length }),
          perCall,
        ),
        { text: t("ev.originalBytes", { source: original.source }), bytes: original.bytes },
      ],
      codeLink: codeLinkOf(run, found.targets),
    };
  },

  "workspace.per_layer": (input) => {
    const { t, callsN } = input;
    const f = workspaceFacts(input, input.item);
    if (!f) return missing(input, ["workspace"], "what.moeConvertedMarlin");
    const perLayer = f.kept > 1;
    const layers = f.moeLayers ? t("perLayer.layers", { n: f.moeLayers }) : "";
    return {
      state: "answered",
      verdict: perLayer ? "yes" : "no",
      answer: perLayer
        ? t("perLayer.yes", { calls: callsN(f.calls), pid: f.pid, layers, bytes: b(f.perCall) })
        : t("perLayer.shared", {
            kept: t(f.kept === 1 ? "perLayer.oneKept" : "perLayer.noneKept"),
            pid: f.pid,
            calls: callsN(f.calls),
            layers,
          }),
      evidence: [
        callEvidence(
          f.summary,
          t("ev.wsKept", { calls: callsN(f.calls), kept: f.kept, total: b(f.total) }),
          f.total,
        ),
      ],
      codeLink: codeLinkOf(input.run, f.ws.targets),
    };
  },

  "workspace.size": (input) => {
    const { t, callsN } = input;
    const f = workspaceFacts(input, input.item);
    if (!f) return missing(input, ["workspace"], "what.moeConvertedMarlin");
    const mb = f.perCall / 1e6;
    return {
      state: "answered",
      verdict: f.perCall > 0 ? "yes" : "no",
      answer:
        f.perCall > 0
          ? t("size.yes", {
              bytes: b(f.perCall),
              mb: mb < 0.01 ? mb.toExponential(1) : mb.toFixed(2),
              kept: f.kept,
              total: b(f.total),
            })
          : t("size.zero", { calls: callsN(f.calls) }),
      evidence: [callEvidence(f.summary, t("ev.largestRetained"), f.perCall)],
      codeLink: codeLinkOf(input.run, f.ws.targets),
    };
  },

  "workspace.can_share": (input) => {
    const { t } = input;
    const f = workspaceFacts(input, input.item);
    if (!f) return missing(input, ["workspace"], "what.moeConvertedMarlin");
    if (f.kept > 1 && f.sameSize) {
      const saving = (f.kept - 1) * f.perCall;
      return {
        state: "answered",
        verdict: "yes",
        answer: t("share.yes", {
          kept: f.kept,
          bytes: b(f.perCall),
          device: f.device ?? "?",
          saving: b(saving),
        }),
        evidence: [
          callEvidence(f.summary, t("ev.keptTimes", { kept: f.kept, bytes: b(f.perCall) }), f.total),
        ],
        codeLink: codeLinkOf(input.run, f.ws.targets),
        saving: { bytes: saving, text: `${f.kept - 1} × ${b(f.perCall)}` },
      };
    }
    return {
      state: "answered",
      verdict: "no",
      answer:
        f.kept <= 1
          ? t("share.noNeed", { why: t(f.kept === 1 ? "share.singleKept" : "share.noneKept") })
          : t("share.differ", { kept: f.kept, bytes: b(f.perCall) }),
      evidence: [callEvidence(f.summary, t("ev.keptTotal", { kept: f.kept, total: b(f.total) }), f.total)],
      codeLink: codeLinkOf(input.run, f.ws.targets),
    };
  },

  "kv.blocks": (input) => {
    const { m, t } = input;
    if (m.noKvMemory) {
      return {
        state: "answered",
        verdict: "no",
        answer: t("blocks.none"),
        evidence: [factEvidence(m.noKvMemory, t)],
      };
    }
    if (!m.kvTokens) return missing(input, ["initKvCache"], "what.kvSizeLogged");
    const blocks = Math.floor(m.kvTokens.tokens / DEFAULT_BLOCK_SIZE);
    return {
      state: "answered",
      verdict: m.kvTokens.tokens > 0 ? "yes" : "no",
      answer: t("blocks.answer", {
        tokens: n(m.kvTokens.tokens),
        blocks: n(blocks),
        size: DEFAULT_BLOCK_SIZE,
      }),
      evidence: [
        { text: m.kvTokens.source },
        ...(m.kvCache ? [{ text: m.kvCache.source, bytes: m.kvCache.bytes }] : []),
      ],
    };
  },

  "kv.block_bytes": (input) => {
    const { m, kv, t } = input;
    const evidence: Evidence[] = [];
    let theory: number | undefined;
    if (kv) {
      theory = DEFAULT_BLOCK_SIZE * kv.bytesPerTokenPerLayer;
      evidence.push({
        text: t("ev.blockTheory", { size: DEFAULT_BLOCK_SIZE, formula: kv.formula.split(";")[0]! }),
        bytes: theory,
      });
    }
    let measured: number | undefined;
    if (m.kvCache && m.kvTokens && m.kvTokens.tokens > 0) {
      measured = (m.kvCache.bytes / m.kvTokens.tokens) * DEFAULT_BLOCK_SIZE;
      evidence.push({
        text: t("ev.blockMeasured", {
          source: m.kvCache.source,
          tokens: n(m.kvTokens.tokens),
          size: DEFAULT_BLOCK_SIZE,
        }),
        bytes: measured,
      });
    }
    if (theory === undefined && measured === undefined) {
      return missing(input, ["initKvCache"], "what.kvSizeLogged2");
    }
    const parts: string[] = [];
    if (theory !== undefined && kv) {
      parts.push(
        t("blockBytes.theory", {
          bytes: b(theory),
          size: DEFAULT_BLOCK_SIZE,
          total: b(theory * kv.layers),
          layers: kv.layers,
        }),
      );
    }
    if (measured !== undefined) parts.push(t("blockBytes.measured", { bytes: b(measured) }));
    return {
      state: "answered",
      verdict: "yes",
      answer: t("blockBytes.answer", { parts: parts.join(t("list.semicolon")) }),
      evidence,
    };
  },

  "kv.gpu_memory_utilization": (input) => {
    const { run, m, t } = input;
    const p = m.profiling?.values;
    if (m.profiling && p && p.budget_bytes !== undefined) {
      const used = (p.weights_bytes ?? 0) + (p.non_torch_bytes ?? 0) + (p.activation_peak_bytes ?? 0);
      const kvBytes = p.kv_cache_bytes ?? p.budget_bytes - used;
      return {
        state: "answered",
        verdict: "yes",
        answer: t("gmu.answer", {
          total: b(p.total_bytes ?? 0),
          util: p.utilization ?? "?",
          budget: b(p.budget_bytes),
          weights: b(p.weights_bytes ?? 0),
          nonTorch: b(p.non_torch_bytes ?? 0),
          activation: b(p.activation_peak_bytes ?? 0),
          kv: b(kvBytes),
        }),
        evidence: [factEvidence(m.profiling, t)],
      };
    }
    const low = lastFact(run, "free_memory_low");
    if (low) {
      return {
        state: "answered",
        verdict: "yes",
        answer: t("gmu.refused", {
          free: b(low.values.free_bytes ?? 0),
          util: low.values.utilization ?? "?",
          total: b(low.values.total_bytes ?? 0),
          desired: b(low.values.desired_bytes ?? 0),
        }),
        evidence: [factEvidence(low, t)],
      };
    }
    return missing(input, ["profileRun"], "what.profilingLogged");
  },

  "activation.moe_buffers": (input) => {
    const { item, run, ctx, t, callsN } = input;
    const found = firstMeasured(ctx, item, ["fusedMoe", "profileRun"]);
    if (!found) return missing(input, ["fusedMoe", "profileRun"], "what.forward");
    const s = found.summary!;
    const transient = s.transientMax ?? 0;
    const spec = s.spec ?? s.target;
    return {
      state: "answered",
      verdict: transient > 0 ? "yes" : "no",
      answer:
        transient > 0
          ? t("moe.yes", { spec, bytes: b(transient), calls: callsN(s.calls) })
          : t("moe.no", { spec, calls: callsN(s.calls) }),
      evidence: [callEvidence(s, t("ev.transient"), transient)],
      codeLink: codeLinkOf(run, found.targets),
    };
  },

  "opt.shared_workspace": (input) => {
    const { t } = input;
    const f = workspaceFacts(input, input.item);
    if (!f) return missing(input, ["workspace"], "what.moeConvertedMarlin");
    const saving = f.kept > 1 ? (f.kept - 1) * f.perCall : 0;
    return {
      state: "answered",
      verdict: saving > 0 ? "yes" : "no",
      answer:
        saving > 0
          ? t("optWs.yes", { saving: b(saving), count: f.kept - 1, bytes: b(f.perCall) })
          : t("optWs.no"),
      evidence: [callEvidence(f.summary, t("ev.keptTimes", { kept: f.kept, bytes: b(f.perCall) }), f.total)],
      codeLink: codeLinkOf(input.run, f.ws.targets),
      saving: { bytes: saving, text: saving > 0 ? `${f.kept - 1} × ${b(f.perCall)}` : "none" },
    };
  },

  "opt.inplace_conversion": (input) => {
    const { item, run, ctx, t, callsN } = input;
    const found = firstMeasured(ctx, item, ["prepareMarlin", "processWeights"]);
    if (!found) return missing(input, ["prepareMarlin", "processWeights"], "what.moeConverted");
    const s = found.summary!;
    const transient = s.transientMax ?? 0;
    const calls = finished(found.calls);
    const perCall = Math.max(...calls.map((c) => callDelta(c).retained ?? 0));
    const original = originalExpertBytesPerLayer(input);
    const keptOriginals =
      original !== undefined && perCall >= original.bytes / 2 ? original.bytes * calls.length : 0;
    const saving = transient + keptOriginals;
    return {
      state: "answered",
      verdict: saving > 0 ? "yes" : "no",
      answer:
        saving > 0
          ? t("inplace.yes", {
              saving: b(saving),
              transient: b(transient),
              rest:
                keptOriginals > 0
                  ? t("inplace.plusOriginals", { kept: b(keptOriginals) })
                  : t("inplace.originalsFreed"),
            })
          : t("inplace.no"),
      evidence: [
        callEvidence(
          s,
          t("ev.transientMaxOf", { spec: s.spec ?? s.target, calls: callsN(s.calls) }),
          transient,
        ),
      ],
      codeLink: codeLinkOf(run, found.targets),
      saving: { bytes: saving, text: keptOriginals > 0 ? "peak + originals" : "transient peak" },
    };
  },

  "opt.lazy_kv": (input) => {
    const { run, m, t } = input;
    const kvFact = lastFact(run, "available_kv_cache") ?? m.profiling;
    const oomAfterKv =
      kvFact !== undefined &&
      (run.ooms.some((o) => o.ts > kvFact.ts) || run.factsOf("cuda_oom").some((f) => f.ts > kvFact.ts));
    if (oomAfterKv && m.kvCache) {
      return {
        state: "answered",
        verdict: "yes",
        answer: t("lazy.yes", { bytes: b(m.kvCache.bytes) }),
        evidence: [
          { text: m.kvCache.source, bytes: m.kvCache.bytes },
          ...(m.oom ? [{ text: `${m.oom.source}: ${m.oom.message}` }] : []),
        ],
        saving: { bytes: m.kvCache.bytes, text: "KV cache allocated before the OOM" },
      };
    }
    if (m.noKvMemory || m.kvCache) {
      return {
        state: "answered",
        verdict: "no",
        answer: m.noKvMemory ? t("lazy.noMemory") : t("lazy.no", { bytes: b(m.kvCache!.bytes) }),
        evidence: [
          m.noKvMemory ? factEvidence(m.noKvMemory, t) : { text: m.kvCache!.source, bytes: m.kvCache!.bytes },
        ],
      };
    }
    return missing(input, ["initKvCache"], "what.kvAllocated");
  },

  "opt.fewer_blocks": (input) => {
    const { run, m, t } = input;
    const conc = lastFact(run, "max_concurrency");
    if (!m.kvCache || !conc?.values.concurrency) {
      return missing(input, ["initKvCache"], "what.kvAndConcurrency");
    }
    const needed = m.kvCache.bytes / conc.values.concurrency;
    const saving = Math.max(0, Math.floor(m.kvCache.bytes - needed));
    return {
      state: "answered",
      verdict: saving > 0 ? "yes" : "no",
      answer:
        saving > 0
          ? t("fewer.yes", {
              saving: b(saving),
              concurrency: conc.values.concurrency,
              tokens: n(conc.values.tokens_per_request ?? 0),
              needed: b(needed),
            })
          : t("fewer.no"),
      evidence: [factEvidence(conc, t), { text: m.kvCache.source, bytes: m.kvCache.bytes }],
      saving: { bytes: saving, text: `KV beyond one request` },
    };
  },

  "opt.disable_buffers": (input) => {
    const { item, run, ctx, m, t } = input;
    const found = firstMeasured(ctx, item, ["fusedMoe"]);
    const slack = m.allocatorSlack;
    if (!found && !slack) return missing(input, ["fusedMoe"], "what.forward");
    const transient = found?.summary?.transientMax ?? 0;
    const slackBytes = Math.max(0, slack?.bytes ?? 0);
    const saving = transient + slackBytes;
    const evidence: Evidence[] = [];
    if (found?.summary) evidence.push(callEvidence(found.summary, t("ev.moeForward"), transient));
    if (slack) evidence.push({ text: slack.source, bytes: slack.bytes });
    const parts = [
      ...(found ? [t("buffers.moe", { bytes: b(transient) })] : []),
      ...(slack ? [t("buffers.slack", { bytes: b(slackBytes) })] : []),
    ];
    return {
      state: "answered",
      verdict: saving > 0 ? "yes" : "no",
      answer:
        saving > 0
          ? t("buffers.yes", { saving: b(saving), parts: parts.join(t("list.plus")) })
          : t("buffers.no"),
      evidence,
      codeLink: found ? codeLinkOf(run, found.targets) : undefined,
      saving: { bytes: saving, text: "buffers + allocator slack" },
    };
  },

  "opt.cuda_graph": ({ m, t }) => {
    if (!m.cudaGraphs) {
      return {
        state: "needs_run",
        answer: t("graph.notMeasured"),
        evidence: [],
        nextProbes: [],
      };
    }
    return {
      state: "answered",
      verdict: m.cudaGraphs.bytes > 0 ? "yes" : "no",
      answer: t(m.cudaGraphs.bytes > 0 ? "graph.yes" : "graph.no", { bytes: b(m.cudaGraphs.bytes) }),
      evidence: [{ text: m.cudaGraphs.source, bytes: m.cudaGraphs.bytes }],
      saving: { bytes: m.cudaGraphs.bytes, text: "graph capture" },
    };
  },
};

export function evaluateItem(
  item: ChecklistItem,
  ctx: ChecklistContext,
  measurements?: RunMeasurements,
): ChecklistResult {
  const rule = rules[item.id];
  if (!rule) throw new Error(`checklist item ${item.id} has no rule`);
  const lang = ctx.lang ?? "en";
  const t = translator(CHECKLIST_TEXT, lang);
  if (!ctx.run) {
    return {
      item,
      state: "needs_run",
      answer: t("noRun"),
      evidence: [],
      nextProbes: probesOf(item, t),
    };
  }
  const config = ctx.model?.config ?? ctx.config;
  let kv = ctx.model?.kv;
  if (!kv && config) {
    try {
      kv = kvModelFromConfig(config);
    } catch {
      kv = undefined;
    }
  }
  const matchCtx: MatchContext = { run: ctx.run, meta: ctx.meta, lineText: ctx.lineText };
  const m = measurements ?? measureRun(ctx.run, ctx.meta, lang);
  const callsN = (count: number): string => callsText(count, lang, n(count));
  const partial = rule({
    t,
    callsN,
    lang,
    item,
    run: ctx.run,
    ctx: matchCtx,
    m,
    config,
    kv,
    model: ctx.model,
  });
  return {
    item,
    ...partial,
    nextProbes: partial.nextProbes ?? (partial.state === "answered" ? [] : probesOf(item, t)),
  };
}

export function evaluateChecklist(ctx: ChecklistContext): ChecklistResult[] {
  const measurements = ctx.run ? measureRun(ctx.run, ctx.meta, ctx.lang ?? "en") : undefined;
  return CHECKLIST_ITEMS.map((item) => evaluateItem(item, ctx, measurements));
}
