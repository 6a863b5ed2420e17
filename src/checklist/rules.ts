// The checklist's rules: each item of items.json answered from a run — the answer, the evidence
// (numbers, hotspot, call, pid), the code it points at — or what to probe next.
import itemsData from "./items.json";
import { callDelta, type CallRecord, type RunModel, type TargetSummary } from "../model/runModel";
import { formatBytes } from "../model/format";
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
}

const data = itemsData as { sections: ChecklistSection[]; items: ChecklistItem[] };
export const CHECKLIST_SECTIONS: readonly ChecklistSection[] = data.sections;
export const CHECKLIST_ITEMS: readonly ChecklistItem[] = data.items;

/** vLLM's default KV block size on CUDA; its log gives tokens, not blocks. */
const DEFAULT_BLOCK_SIZE = 16;

const b = (bytes: number): string => formatBytes(bytes, bytes >= 1024 ** 3 ? 2 : 1);
const n = (x: number): string => x.toLocaleString("en-US");
const callsN = (count: number): string => (count === 1 ? "1 call" : `${n(count)} calls`);

interface RuleInput {
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

function probesOf(item: ChecklistItem): ProbeNeed[] {
  return item.probes.map((k) => NEEDS[k]);
}

function codeLinkOf(run: RunModel, targets: string[]): { file: string; line: number } | undefined {
  for (const id of targets) {
    const resolved = [...(run.targets.get(id)?.resolved.values() ?? [])][0];
    if (resolved?.file && resolved.line !== undefined) return { file: resolved.file, line: resolved.line };
  }
  return undefined;
}

function factEvidence(f: FactEvent): Evidence {
  return { text: `vLLM log: ${f.line.replace(/\s+/g, " ").trim()}`, fact: f.kind, pid: f.pid };
}

function callEvidence(s: TargetSummary, text: string, bytes?: number, hotspot?: string): Evidence {
  const pp = s.perProcess[0];
  return { text, bytes, target: s.target, hotspot, call: s.calls, pid: pp?.pid };
}

/** What a run that lacks the probe, or never reached it, should do next. */
function missing(
  run: RunModel,
  ctx: MatchContext,
  item: ChecklistItem,
  keys: NeedKey[],
  what: string,
): RuleOutcome {
  const needs = keys.map((k) => NEEDS[k]);
  const present = keys.flatMap((k) => findTargets(ctx, NEEDS[k], item.id));
  if (present.some((id) => run.callsOf(id).length > 0)) {
    return {
      state: "needs_run",
      answer: `The probes ran, but the run ended before ${what}: let it run through the whole load.`,
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
      answer:
        `The probe is in the plan but was never called${reasons.length ? ` (${reasons[0]})` : ""}: ` +
        `run until ${what} happens (the whole load, not stopped early).`,
      evidence: [],
      nextProbes: needs,
    };
  }
  const names = needs.map(
    (p) => p.function ?? (p.line ? `the line of ${p.line.file} with ${p.line.contains}` : p.what),
  );
  return {
    state: "needs_probe",
    answer: `Not measured: add a probe on ${names.join(" or ")} and run again (${what}).`,
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
    source: "config.json (MXFP4 experts as stored)",
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
  "overhead.kv_cache": ({ item, run, ctx, m }) => {
    if (m.noKvMemory) {
      return {
        state: "answered",
        verdict: "no",
        answer:
          "No KV cache could be preallocated: vLLM found no memory left for it after weights and profiling.",
        evidence: [factEvidence(m.noKvMemory)],
      };
    }
    if (!m.kvCache) return missing(run, ctx, item, ["initKvCache"], "the KV cache is allocated");
    const tokens = m.kvTokens ? ` for ${n(m.kvTokens.tokens)} tokens` : "";
    return {
      state: m.kvCache.bytes >= 0 ? "answered" : "needs_run",
      verdict: m.kvCache.bytes > 0 ? "yes" : "no",
      answer: `${m.kvCache.bytes > 0 ? "Yes" : "No"}: ${b(m.kvCache.bytes)} preallocated for the KV cache${tokens}.`,
      evidence: [
        { text: m.kvCache.source, bytes: m.kvCache.bytes },
        ...(m.kvTokens ? [{ text: m.kvTokens.source }] : []),
      ],
      codeLink: codeLinkOf(run, findTargets(ctx, NEEDS.initKvCache)),
    };
  },

  "overhead.marlin_workspace": (input) => {
    const f = workspaceFacts(input, input.item);
    if (!f)
      return missing(
        input.run,
        input.ctx,
        input.item,
        ["workspace"],
        "the MoE layers are converted for Marlin",
      );
    const perLayer = f.kept > 1;
    return {
      state: "answered",
      verdict: perLayer ? "yes" : "no",
      answer: perLayer
        ? `Per layer: ${f.kept} workspaces of ${b(f.perCall)} kept (${b(f.total)} in all) — small.`
        : `Shared: one workspace of ${b(f.perCall)}.`,
      evidence: [callEvidence(f.summary, f.ws.summary!.spec ?? f.summary.target, f.total)],
      codeLink: codeLinkOf(input.run, f.ws.targets),
    };
  },

  "overhead.conversion_copy": ({ item, run, ctx }) => {
    const found = firstMeasured(ctx, item, ["prepareMarlin", "processWeights"]);
    if (!found)
      return missing(run, ctx, item, ["prepareMarlin", "processWeights"], "the MoE weights are converted");
    const s = found.summary!;
    const transient = s.transientMax ?? 0;
    return {
      state: "answered",
      verdict: transient > 0 ? "yes" : "no",
      answer:
        transient > 0
          ? `Yes: converting one MoE layer needs up to ${b(transient)} above what it keeps (max over ${callsN(s.calls)}).`
          : `No: the conversion needed nothing above what it keeps (${callsN(s.calls)}).`,
      evidence: [
        callEvidence(s, `transient (peak − max(before, after)) of ${s.spec ?? s.target}`, transient),
      ],
      codeLink: codeLinkOf(run, found.targets),
    };
  },

  "overhead.cuda_context": ({ item, run, ctx, m }) => {
    if (!m.nonTorch) {
      return {
        ...missing(run, ctx, item, [], "CUDA is initialised"),
        state: "needs_run",
        answer:
          "Not measured: a run on a GPU with samples (memlens.sampleIntervalMs > 0) reads device_used − reserved.",
      };
    }
    return {
      state: "answered",
      verdict: m.nonTorch.bytes > 0 ? "yes" : "no",
      answer: `${m.nonTorch.bytes > 0 ? "Yes" : "No"}: ${b(m.nonTorch.bytes)} outside torch (CUDA context, cuBLAS, NCCL, other processes).`,
      evidence: [{ text: m.nonTorch.source, bytes: m.nonTorch.bytes, pid: m.snapshot?.pid }],
    };
  },

  "overhead.activation": ({ item, run, ctx, m }) => {
    if (!m.activationPeak) return missing(run, ctx, item, ["profileRun"], "vLLM profiles a forward pass");
    return {
      state: "answered",
      verdict: m.activationPeak.bytes > 0 ? "yes" : "no",
      answer: `${m.activationPeak.bytes > 0 ? "Yes" : "No"}: activation peak ${b(m.activationPeak.bytes)} in the profiling forward pass.`,
      evidence: [{ text: m.activationPeak.source, bytes: m.activationPeak.bytes }],
      codeLink: codeLinkOf(run, findTargets(ctx, NEEDS.profileRun)),
    };
  },

  "load.contiguous_copy": ({ item, run, ctx }) => {
    const found = firstMeasured(ctx, item, ["contiguousLine"]);
    if (!found) return missing(run, ctx, item, ["contiguousLine"], "the experts are repacked");
    const calls = finished(found.calls);
    const sizes = calls.map((c) => Math.max(callDelta(c).peakAboveBefore ?? 0, callDelta(c).retained ?? 0));
    const max = Math.max(0, ...sizes);
    const first = calls[0]!;
    return {
      state: "answered",
      verdict: max > 0 ? "yes" : "no",
      answer:
        max > 0
          ? `Yes: each execution allocates a new ${b(max)} tensor (${n(max)} B, the transposed int32 copy of one expert), ${calls.length}× in all.`
          : `No: the line allocated nothing in ${calls.length} executions (view and transpose only).`,
      evidence: [
        {
          text: `peak − before of the line, max over ${calls.length} executions`,
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

  "load.repack_inplace": ({ item, run, ctx }) => {
    const found = firstMeasured(ctx, item, ["repack"]);
    if (!found) return missing(run, ctx, item, ["repack"], "the experts are repacked");
    const calls = finished(found.calls);
    const retained = calls.map((c) => callDelta(c).retained ?? 0);
    const peaks = calls.map((c) => callDelta(c).peakAboveBefore ?? 0);
    const newTensor = Math.max(0, ...retained, ...peaks);
    const inPlace = newTensor === 0;
    return {
      state: "answered",
      verdict: inPlace ? "yes" : "no",
      answer: inPlace
        ? `Yes: gptq_marlin_repack allocated nothing in ${callsN(calls.length)} (in place).`
        : `No: each call allocates a new ${b(newTensor)} output tensor (${callsN(calls.length)}); the input stays until the caller drops it.`,
      evidence: [callEvidence(found.summary!, `largest retained / peak − before of one call`, newTensor)],
      codeLink: codeLinkOf(run, found.targets),
    };
  },

  "load.original_freed": (input) => {
    const { item, run, ctx } = input;
    const found = firstMeasured(ctx, item, ["prepareMarlin", "processWeights"]);
    if (!found)
      return missing(run, ctx, item, ["prepareMarlin", "processWeights"], "the MoE weights are converted");
    const s = found.summary!;
    const calls = finished(found.calls);
    const perCall = Math.max(...calls.map((c) => callDelta(c).retained ?? 0));
    const original = originalExpertBytesPerLayer(input);
    if (!original) {
      return {
        state: "needs_run",
        answer:
          `Each conversion keeps ${b(perCall)}; to judge it MemLens needs the model's config.json ` +
          `(set memlens.model to the model folder, or pass --model-dir).`,
        evidence: [callEvidence(s, `retained per call of ${s.spec ?? s.target}`, perCall)],
        nextProbes: [],
      };
    }
    const freed = perCall < original.bytes / 2;
    return {
      state: "answered",
      verdict: freed ? "yes" : "no",
      answer: freed
        ? `Yes: each layer's conversion keeps only +${b(perCall)} (new layout − freed originals); the ${b(original.bytes)} of original expert weights were freed.`
        : `No: each layer's conversion keeps +${b(perCall)}, about a whole new copy; the ${b(original.bytes)} originals stay allocated.`,
      evidence: [
        callEvidence(s, `retained per call of ${s.spec ?? s.target} (max over ${calls.length})`, perCall),
        { text: `original MoE expert bytes per layer, from ${original.source}`, bytes: original.bytes },
      ],
      codeLink: codeLinkOf(run, found.targets),
    };
  },

  "workspace.per_layer": (input) => {
    const f = workspaceFacts(input, input.item);
    if (!f)
      return missing(
        input.run,
        input.ctx,
        input.item,
        ["workspace"],
        "the MoE layers are converted for Marlin",
      );
    const perLayer = f.kept > 1;
    const layers = f.moeLayers ? ` for ${f.moeLayers} MoE layers` : "";
    return {
      state: "answered",
      verdict: perLayer ? "yes" : "no",
      answer: perLayer
        ? `Each layer its own: ${callsN(f.calls)} of marlin_make_workspace_new in pid ${f.pid}${layers}, each keeps ${b(f.perCall)}.`
        : `Shared: ${f.kept === 1 ? "one workspace is kept" : "no workspace is kept"} in pid ${f.pid} (${callsN(f.calls)}${layers}).`,
      evidence: [
        callEvidence(
          f.summary,
          `${callsN(f.calls)}, ${f.kept} kept memory, ${b(f.total)} retained in all`,
          f.total,
        ),
      ],
      codeLink: codeLinkOf(input.run, f.ws.targets),
    };
  },

  "workspace.size": (input) => {
    const f = workspaceFacts(input, input.item);
    if (!f)
      return missing(
        input.run,
        input.ctx,
        input.item,
        ["workspace"],
        "the MoE layers are converted for Marlin",
      );
    const mb = f.perCall / 1e6;
    return {
      state: "answered",
      verdict: f.perCall > 0 ? "yes" : "no",
      answer:
        f.perCall > 0
          ? `${b(f.perCall)} each (${mb < 0.01 ? mb.toExponential(1) : mb.toFixed(2)} MB, as torch's allocator counts it); ${f.kept} kept = ${b(f.total)}.`
          : `0 B: the workspace is freed again inside the call (${callsN(f.calls)}).`,
      evidence: [callEvidence(f.summary, "largest retained of one call (allocated Δ)", f.perCall)],
      codeLink: codeLinkOf(input.run, f.ws.targets),
    };
  },

  "workspace.can_share": (input) => {
    const f = workspaceFacts(input, input.item);
    if (!f)
      return missing(
        input.run,
        input.ctx,
        input.item,
        ["workspace"],
        "the MoE layers are converted for Marlin",
      );
    if (f.kept > 1 && f.sameSize) {
      const saving = (f.kept - 1) * f.perCall;
      return {
        state: "answered",
        verdict: "yes",
        answer: `Yes: ${f.kept} identical ${b(f.perCall)} workspaces on device ${f.device ?? "?"}; one shared would save ${b(saving)}.`,
        evidence: [callEvidence(f.summary, `${f.kept} kept × ${b(f.perCall)}`, f.total)],
        codeLink: codeLinkOf(input.run, f.ws.targets),
        saving: { bytes: saving, text: `${f.kept - 1} × ${b(f.perCall)}` },
      };
    }
    return {
      state: "answered",
      verdict: "no",
      answer:
        f.kept <= 1
          ? `No need: ${f.kept === 1 ? "a single workspace is kept already" : "no workspace is kept"}.`
          : `Not as is: the ${f.kept} workspaces differ in size (largest ${b(f.perCall)}).`,
      evidence: [callEvidence(f.summary, `${f.kept} kept, ${b(f.total)} in all`, f.total)],
      codeLink: codeLinkOf(input.run, f.ws.targets),
    };
  },

  "kv.blocks": ({ item, run, ctx, m }) => {
    if (m.noKvMemory) {
      return {
        state: "answered",
        verdict: "no",
        answer: "None: vLLM found no memory for KV cache blocks.",
        evidence: [factEvidence(m.noKvMemory)],
      };
    }
    if (!m.kvTokens) return missing(run, ctx, item, ["initKvCache"], 'vLLM logs "GPU KV cache size"');
    const blocks = Math.floor(m.kvTokens.tokens / DEFAULT_BLOCK_SIZE);
    return {
      state: "answered",
      verdict: m.kvTokens.tokens > 0 ? "yes" : "no",
      answer: `${n(m.kvTokens.tokens)} tokens = ${n(blocks)} blocks of ${DEFAULT_BLOCK_SIZE} tokens (vLLM's default block_size; the log gives tokens).`,
      evidence: [
        { text: m.kvTokens.source },
        ...(m.kvCache ? [{ text: m.kvCache.source, bytes: m.kvCache.bytes }] : []),
      ],
    };
  },

  "kv.block_bytes": ({ item, run, ctx, m, kv }) => {
    const evidence: Evidence[] = [];
    let theory: number | undefined;
    if (kv) {
      theory = DEFAULT_BLOCK_SIZE * kv.bytesPerTokenPerLayer;
      evidence.push({
        text: `theory from config.json: ${DEFAULT_BLOCK_SIZE} tokens × ${kv.formula.split(";")[0]}`,
        bytes: theory,
      });
    }
    let measured: number | undefined;
    if (m.kvCache && m.kvTokens && m.kvTokens.tokens > 0) {
      measured = (m.kvCache.bytes / m.kvTokens.tokens) * DEFAULT_BLOCK_SIZE;
      evidence.push({
        text: `${m.kvCache.source} ÷ ${n(m.kvTokens.tokens)} tokens × ${DEFAULT_BLOCK_SIZE}`,
        bytes: measured,
      });
    }
    if (theory === undefined && measured === undefined) {
      return missing(run, ctx, item, ["initKvCache"], "vLLM logs the KV cache size");
    }
    const parts: string[] = [];
    if (theory !== undefined && kv) {
      parts.push(
        `${b(theory)} per layer per ${DEFAULT_BLOCK_SIZE}-token block, ${b(theory * kv.layers)} across ${kv.layers} layers (theory)`,
      );
    }
    if (measured !== undefined)
      parts.push(`${b(measured)} per block across all layers (measured: KV bytes ÷ tokens)`);
    return { state: "answered", verdict: "yes", answer: `${parts.join("; ")}.`, evidence };
  },

  "kv.gpu_memory_utilization": ({ item, run, ctx, m }) => {
    const p = m.profiling?.values;
    if (m.profiling && p && p.budget_bytes !== undefined) {
      const used = (p.weights_bytes ?? 0) + (p.non_torch_bytes ?? 0) + (p.activation_peak_bytes ?? 0);
      const kvBytes = p.kv_cache_bytes ?? p.budget_bytes - used;
      return {
        state: "answered",
        verdict: "yes",
        answer:
          `It sets the budget: ${b(p.total_bytes ?? 0)} × ${p.utilization ?? "?"} = ${b(p.budget_bytes)}; minus weights ${b(p.weights_bytes ?? 0)}, ` +
          `non-torch ${b(p.non_torch_bytes ?? 0)} and activation peak ${b(p.activation_peak_bytes ?? 0)} leaves ${b(kvBytes)} for the KV cache.`,
        evidence: [factEvidence(m.profiling)],
      };
    }
    const low = lastFact(run, "free_memory_low");
    if (low) {
      return {
        state: "answered",
        verdict: "yes",
        answer:
          `vLLM refused to start: free memory ${b(low.values.free_bytes ?? 0)} is less than ${low.values.utilization ?? "?"} × ` +
          `${b(low.values.total_bytes ?? 0)} = ${b(low.values.desired_bytes ?? 0)}; the utilization asks for that much up front.`,
        evidence: [factEvidence(low)],
      };
    }
    return missing(run, ctx, item, ["profileRun"], "vLLM logs its memory profiling");
  },

  "activation.moe_buffers": ({ item, run, ctx }) => {
    const found = firstMeasured(ctx, item, ["fusedMoe", "profileRun"]);
    if (!found) return missing(run, ctx, item, ["fusedMoe", "profileRun"], "a forward pass runs");
    const s = found.summary!;
    const transient = s.transientMax ?? 0;
    return {
      state: "answered",
      verdict: transient > 0 ? "yes" : "no",
      answer:
        transient > 0
          ? `Yes: ${s.spec ?? s.target} allocates up to ${b(transient)} of temporary buffers (max over ${callsN(s.calls)}).`
          : `No: ${s.spec ?? s.target} allocated no temporary buffers (${callsN(s.calls)}).`,
      evidence: [callEvidence(s, "transient (peak − max(before, after))", transient)],
      codeLink: codeLinkOf(run, found.targets),
    };
  },

  "opt.shared_workspace": (input) => {
    const f = workspaceFacts(input, input.item);
    if (!f)
      return missing(
        input.run,
        input.ctx,
        input.item,
        ["workspace"],
        "the MoE layers are converted for Marlin",
      );
    const saving = f.kept > 1 ? (f.kept - 1) * f.perCall : 0;
    return {
      state: "answered",
      verdict: saving > 0 ? "yes" : "no",
      answer:
        saving > 0
          ? `Measured saving ${b(saving)} (${f.kept - 1} × ${b(f.perCall)}), not ~1 GB.`
          : "No saving: a single workspace (or none) is kept already.",
      evidence: [callEvidence(f.summary, `${f.kept} kept × ${b(f.perCall)}`, f.total)],
      codeLink: codeLinkOf(input.run, f.ws.targets),
      saving: { bytes: saving, text: saving > 0 ? `${f.kept - 1} × ${b(f.perCall)}` : "none" },
    };
  },

  "opt.inplace_conversion": (input) => {
    const { item, run, ctx } = input;
    const found = firstMeasured(ctx, item, ["prepareMarlin", "processWeights"]);
    if (!found)
      return missing(run, ctx, item, ["prepareMarlin", "processWeights"], "the MoE weights are converted");
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
          ? `Measured saving up to ${b(saving)}: the conversion's transient peak ${b(transient)}` +
            (keptOriginals > 0
              ? ` plus ${b(keptOriginals)} of originals kept alive.`
              : " (the originals are freed already).")
          : "No saving: the conversion needs no memory above what it keeps.",
      evidence: [
        callEvidence(s, `transient max of ${s.spec ?? s.target} over ${callsN(s.calls)}`, transient),
      ],
      codeLink: codeLinkOf(run, found.targets),
      saving: { bytes: saving, text: keptOriginals > 0 ? "peak + originals" : "transient peak" },
    };
  },

  "opt.lazy_kv": ({ item, run, ctx, m }) => {
    const kvFact = lastFact(run, "available_kv_cache") ?? m.profiling;
    const oomAfterKv =
      kvFact !== undefined &&
      (run.ooms.some((o) => o.ts > kvFact.ts) || run.factsOf("cuda_oom").some((f) => f.ts > kvFact.ts));
    if (oomAfterKv && m.kvCache) {
      return {
        state: "answered",
        verdict: "yes",
        answer: `Yes: the out-of-memory came after the KV cache took ${b(m.kvCache.bytes)}; allocating it later (or smaller) leaves that room.`,
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
        answer: m.noKvMemory
          ? "No: vLLM had no memory left for the KV cache at all — weights, activations and non-torch memory already fill the budget."
          : `No: vLLM allocates the KV cache last, from what is left (${b(m.kvCache!.bytes)}); delaying it frees nothing at the load peak.`,
        evidence: [
          m.noKvMemory ? factEvidence(m.noKvMemory) : { text: m.kvCache!.source, bytes: m.kvCache!.bytes },
        ],
      };
    }
    return missing(run, ctx, item, ["initKvCache"], "the KV cache is allocated");
  },

  "opt.fewer_blocks": ({ item, run, ctx, m }) => {
    const conc = lastFact(run, "max_concurrency");
    if (!m.kvCache || !conc?.values.concurrency) {
      return missing(run, ctx, item, ["initKvCache"], "vLLM logs the KV cache size and maximum concurrency");
    }
    const needed = m.kvCache.bytes / conc.values.concurrency;
    const saving = Math.max(0, Math.floor(m.kvCache.bytes - needed));
    return {
      state: "answered",
      verdict: saving > 0 ? "yes" : "no",
      answer:
        saving > 0
          ? `Measured saving ${b(saving)}: the KV cache holds ${conc.values.concurrency}× what one ${n(conc.values.tokens_per_request ?? 0)}-token request needs (${b(needed)}).`
          : "No saving: the KV cache holds just one request.",
      evidence: [factEvidence(conc), { text: m.kvCache.source, bytes: m.kvCache.bytes }],
      saving: { bytes: saving, text: `KV beyond one request` },
    };
  },

  "opt.disable_buffers": ({ item, run, ctx, m }) => {
    const found = firstMeasured(ctx, item, ["fusedMoe"]);
    const slack = m.allocatorSlack;
    if (!found && !slack) return missing(run, ctx, item, ["fusedMoe"], "a forward pass runs");
    const transient = found?.summary?.transientMax ?? 0;
    const slackBytes = Math.max(0, slack?.bytes ?? 0);
    const saving = transient + slackBytes;
    const evidence: Evidence[] = [];
    if (found?.summary) evidence.push(callEvidence(found.summary, "transient of the MoE forward", transient));
    if (slack) evidence.push({ text: slack.source, bytes: slack.bytes });
    return {
      state: "answered",
      verdict: saving > 0 ? "yes" : "no",
      answer:
        saving > 0
          ? `Up to ${b(saving)}: ${found ? `MoE temporary buffers ${b(transient)}` : ""}${found && slack ? " + " : ""}${slack ? `allocator cache held by no tensor ${b(slackBytes)}` : ""}.`
          : "Nothing to save: no temporary buffers and no unused allocator cache measured.",
      evidence,
      codeLink: found ? codeLinkOf(run, found.targets) : undefined,
      saving: { bytes: saving, text: "buffers + allocator slack" },
    };
  },

  "opt.cuda_graph": ({ m }) => {
    if (!m.cudaGraphs) {
      return {
        state: "needs_run",
        answer:
          "Not measured: run without enforce_eager=True so vLLM captures CUDA graphs and logs what they took (with it, graphs take 0).",
        evidence: [],
        nextProbes: [],
      };
    }
    return {
      state: "answered",
      verdict: m.cudaGraphs.bytes > 0 ? "yes" : "no",
      answer: `${m.cudaGraphs.bytes > 0 ? "Up to" : "No saving:"} ${b(m.cudaGraphs.bytes)} taken by CUDA graph capture.`,
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
  if (!ctx.run) {
    return {
      item,
      state: "needs_run",
      answer: "No run yet: start one (Measure Here or Run with Current Probes).",
      evidence: [],
      nextProbes: probesOf(item),
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
  const m = measurements ?? measureRun(ctx.run, ctx.meta);
  const partial = rule({ item, run: ctx.run, ctx: matchCtx, m, config, kv, model: ctx.model });
  return {
    item,
    ...partial,
    nextProbes: partial.nextProbes ?? (partial.state === "answered" ? [] : probesOf(item)),
  };
}

export function evaluateChecklist(ctx: ChecklistContext): ChecklistResult[] {
  const measurements = ctx.run ? measureRun(ctx.run, ctx.meta) : undefined;
  return CHECKLIST_ITEMS.map((item) => evaluateItem(item, ctx, measurements));
}
