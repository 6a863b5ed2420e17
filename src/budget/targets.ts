// Finds the probe targets of a run that measure a known place in vLLM: by catalog hotspot id
// (RunMeta.targets), by function qualname (spec or target_resolved), or by a line's text.
import type { CallRecord, RunModel, TargetSummary } from "../model/runModel";
import type { RunMeta } from "../runner/types";

/** A place a question needs measured. */
export interface ProbeNeed {
  /** Catalog hotspot id (src/catalog/hotspots.json). */
  hotspot?: string;
  /** `module:qualname` to add as a function probe. */
  function?: string;
  /** A line probe: the line of `file` (base name) that contains `contains`, inside `insideFunction` when given. */
  line?: { file: string; contains: string; insideFunction?: string };
  /** What this probe measures, in words. */
  what: string;
}

export type MetaTargets = NonNullable<RunMeta["targets"]>;

export interface MatchContext {
  run: RunModel;
  meta?: MetaTargets;
  /** Source text of a line (for line targets whose meta says nothing); undefined when unreadable. */
  lineText?: (file: string, line: number) => string | undefined;
}

/** Plan target ids the checklist gives the line probes it adds, so a run is matched without its source. */
export function checklistTargetId(itemId: string): string {
  return `checklist.${itemId}`;
}

function qualnameOf(spec: string | undefined): string | undefined {
  if (!spec) return undefined;
  const colon = spec.lastIndexOf(":");
  return colon >= 0 ? spec.slice(colon + 1) : undefined;
}

function sameFunction(spec: string | undefined, wanted: string): boolean {
  if (!spec) return false;
  if (spec === wanted) return true;
  const a = qualnameOf(spec);
  const b = qualnameOf(wanted);
  if (!a || !b) return false;
  // The same function under another module path (vLLM moved files between releases).
  return a === b;
}

function baseName(file: string): string {
  const parts = file.split(/[\\/]/);
  return parts[parts.length - 1] ?? file;
}

/** Target ids in the run that measure `need`. */
export function findTargets(ctx: MatchContext, need: ProbeNeed, itemId?: string): string[] {
  const ids: string[] = [];
  for (const [id, info] of ctx.run.targets) {
    const meta = ctx.meta?.find((m) => m.id === id);
    if (need.hotspot && meta?.hotspot === need.hotspot) {
      ids.push(id);
      continue;
    }
    if (itemId && id === checklistTargetId(itemId)) {
      ids.push(id);
      continue;
    }
    if (need.function) {
      const specs = [info.spec, meta?.spec];
      for (const r of info.resolved.values()) {
        if (r.module && r.qualname) specs.push(`${r.module}:${r.qualname}`);
        specs.push(...(r.aliases ?? []));
      }
      if (specs.some((s) => sameFunction(s, need.function!))) {
        ids.push(id);
        continue;
      }
    }
    if (need.line && info.kind === "line" && ctx.lineText) {
      const resolved = [...info.resolved.values()][0];
      // The meta's file is the local copy; the resolved one is where the run read it (maybe remote).
      const places = [
        { file: meta?.file, line: meta?.line },
        { file: resolved?.file, line: resolved?.line },
      ];
      const wanted = need.line;
      const matches = places.some(
        (p) =>
          p.file !== undefined &&
          p.line !== undefined &&
          baseName(p.file) === wanted.file &&
          ctx.lineText!(p.file, p.line)?.includes(wanted.contains) === true,
      );
      if (matches) ids.push(id);
    }
  }
  return ids;
}

export interface Measured {
  targets: string[];
  calls: CallRecord[];
  summary?: TargetSummary;
}

/** Calls (finished or not) and the summary of the first target that matches and was called. A
 * hotspot can have several targets (its name in this vLLM and its older aliases): one that was
 * resolved but never called must not hide the one that ran. */
export function measure(ctx: MatchContext, need: ProbeNeed, itemId?: string): Measured {
  const targets = findTargets(ctx, need, itemId);
  let uncalled: Measured | undefined;
  for (const id of targets) {
    const summary = ctx.run.summary(id);
    if (!summary) continue;
    if (summary.calls > 0) return { targets, calls: ctx.run.callsOf(id), summary };
    uncalled ??= { targets, calls: ctx.run.callsOf(id), summary };
  }
  return uncalled ?? { targets, calls: [] };
}

/** The places on vLLM's load path the budget and the checklist read. */
const needs = {
  loadModel: {
    hotspot: "vllm.runner.load_model",
    function: "vllm.v1.worker.gpu_model_runner:GPUModelRunner.load_model",
    what: "weights resident after loading (retained by the load phase)",
  },
  processWeights: {
    hotspot: "vllm.mxfp4.process_weights_after_loading",
    function: "vllm.model_executor.layers.quantization.mxfp4:Mxfp4MoEMethod.process_weights_after_loading",
    what: "what converting one MoE layer's MXFP4 weights keeps and what it needs while it runs",
  },
  prepareMarlin: {
    hotspot: "vllm.marlin.prepare_moe_fp4",
    function:
      "vllm.model_executor.layers.quantization.utils.marlin_utils_fp4:prepare_moe_fp4_layer_for_marlin",
    what: "the Marlin conversion of one MoE layer: retained (new − freed) and transient bytes",
  },
  workspace: {
    hotspot: "vllm.marlin.workspace_new",
    function: "vllm.model_executor.layers.quantization.utils.marlin_utils:marlin_make_workspace_new",
    what: "each Marlin workspace allocation (calls × size)",
  },
  repack: {
    hotspot: "vllm.marlin.repack",
    function: "vllm._custom_ops:gptq_marlin_repack",
    what: "whether gptq_marlin_repack allocates a new tensor",
  },
  contiguousLine: {
    line: {
      file: "marlin_utils_fp4.py",
      contains: ".view(torch.int32).T.contiguous()",
      insideFunction: "prepare_moe_fp4_layer_for_marlin",
    },
    what: "the bytes `weight[i].view(torch.int32).T.contiguous()` allocates per expert",
  },
  profileRun: {
    hotspot: "vllm.runner.profile_run",
    function: "vllm.v1.worker.gpu_model_runner:GPUModelRunner.profile_run",
    what: "the activation peak of vLLM's profiling forward pass",
  },
  initKvCache: {
    hotspot: "vllm.runner.initialize_kv_cache",
    function: "vllm.v1.worker.gpu_model_runner:GPUModelRunner.initialize_kv_cache",
    what: "the KV cache allocation (retained)",
  },
  fusedMoe: {
    function: "vllm.model_executor.layers.fused_moe.fused_marlin_moe:fused_marlin_moe",
    what: "temporary buffers of the MoE layers in a forward pass (transient)",
  },
} satisfies Record<string, ProbeNeed>;

export type NeedName = keyof typeof needs;
export const NEEDS: Readonly<Record<NeedName, ProbeNeed>> = needs;
