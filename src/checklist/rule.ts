// What the rules of every checklist section share: the input a rule gets, and the helpers that
// find a probe's calls, word a missing measurement and cite a number's evidence.
import { callDelta, type CallRecord, type RunModel, type TargetSummary } from "../model/runModel";
import { formatBytes } from "../model/format";
import type { ChecklistKey } from "../l10n/checklist";
import type { Lang, Translate } from "../l10n/lang";
import type { FactEvent } from "../protocol/events";
import type { RunMeasurements } from "../budget/measured";
import { mxfp4ExpertBytes } from "../budget/estimates";
import type { ModelBudget } from "../budget/modelBudget";
import type { KvModel } from "../budget/kvcache";
import {
  findTargets,
  measure,
  NEEDS,
  type MatchContext,
  type Measured,
  type ProbeNeed,
} from "../budget/targets";
import type { ChecklistItem, ChecklistResult, Evidence, NeedKey } from "./items";

/** vLLM's default KV block size on CUDA; its log gives tokens, not blocks. */
export const DEFAULT_BLOCK_SIZE = 16;

export const b = (bytes: number): string => formatBytes(bytes, bytes >= 1024 ** 3 ? 2 : 1);
export const n = (x: number): string => x.toLocaleString("en-US");

/** What every rule gets: the run, its measurements and the KV model (computed once per evaluation). */
export interface RuleInput {
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

export type RuleOutcome = Omit<ChecklistResult, "item" | "nextProbes"> & { nextProbes?: ProbeNeed[] };
export type Rule = (input: RuleInput) => RuleOutcome;

/** The probe a need names, with what it measures in `lang`. */
export function needIn(key: NeedKey, t: Translate<ChecklistKey>): ProbeNeed {
  return { ...NEEDS[key], what: t(`need.${key}`) };
}

export function probesOf(item: ChecklistItem, t: Translate<ChecklistKey>): ProbeNeed[] {
  return item.probes.map((k) => needIn(k, t));
}

export function codeLinkOf(run: RunModel, targets: string[]): { file: string; line: number } | undefined {
  for (const id of targets) {
    const resolved = [...(run.targets.get(id)?.resolved.values() ?? [])][0];
    if (resolved?.file && resolved.line !== undefined) return { file: resolved.file, line: resolved.line };
  }
  return undefined;
}

export function factEvidence(f: FactEvent, t: Translate<ChecklistKey>): Evidence {
  return { text: t("ev.vllmLog", { line: f.line.replace(/\s+/g, " ").trim() }), fact: f.kind, pid: f.pid };
}

export function callEvidence(s: TargetSummary, text: string, bytes?: number, hotspot?: string): Evidence {
  const pp = s.perProcess[0];
  return { text, bytes, target: s.target, hotspot, call: s.calls, pid: pp?.pid };
}

/** What a run that lacks the probe, or never reached it, should do next. */
export function missing(
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

export function lastFact(run: RunModel, kind: string): FactEvent | undefined {
  return run.factsOf(kind).at(-1);
}

export function firstMeasured(
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

export function finished(calls: CallRecord[]): CallRecord[] {
  return calls.filter((c) => !c.open);
}

/** Expert bytes of one MoE layer as the checkpoint stores them. */
export function originalExpertBytesPerLayer(input: RuleInput): { bytes: number; source: string } | undefined {
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
  return { bytes: E * mxfp4ExpertBytes(H, I), source: input.t("ev.configExperts") };
}

export function workspaceFacts(input: RuleInput, item: ChecklistItem) {
  const ws = measure(input.ctx, NEEDS.workspace, item.id);
  if (!ws.summary || ws.summary.calls === ws.summary.openCalls) return undefined;
  const calls = finished(ws.calls);
  const byPid = new Map<number, CallRecord[]>();
  for (const c of calls) byPid.set(c.pid, [...(byPid.get(c.pid) ?? []), c]);
  // The process that made the most: the GPU worker (every rank makes its own).
  const [pid, pidCalls] = [...byPid.entries()].sort((a, b2) => b2[1].length - a[1].length)[0]!;
  // A workspace made inside a model forward (vLLM >= 0.2x makes Marlin's per MoE call) lives for
  // that forward: what the call returns is not kept by the load.
  const inForward = pidCalls.filter((c) => insideForward(input.run, c)).length;
  const sizes = pidCalls.map((c) => (insideForward(input.run, c) ? 0 : (callDelta(c).retained ?? 0)));
  const kept = sizes.filter((s) => s > 0);
  const perCall = Math.max(0, ...pidCalls.map((c) => callDelta(c).retained ?? 0));
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
    inForward,
  };
}

/** vLLM's model forward passes during start-up: the profile run, the sampler and kernel warm-ups (all of
 * compile_or_warm_up_model), CUDA graph capture, and serving. */
const FORWARD_SCOPE =
  /:(?:\w+\.)?(?:profile_run|_dummy_run|_dummy_sampler_run|capture_model|execute_model|kernel_warmup|compile_or_warm_up_model)$/;

/** Whether a call ran inside a probed forward pass of its process (its scope's ancestors). */
export function insideForward(run: RunModel, call: CallRecord): boolean {
  let parent = call.parent;
  for (let depth = 0; parent !== null && depth < 256; depth++) {
    const scope = run.scope(call.pid, parent);
    if (!scope) return false;
    if (FORWARD_SCOPE.test(run.targets.get(scope.target)?.spec ?? "")) return true;
    parent = scope.parent;
  }
  return false;
}
