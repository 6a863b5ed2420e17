// Exact checkpoint bytes by dtype and by module group, and the parameter count, from the
// tensor inventory (safetensors headers or a bundled inventory).
import type { TensorEntry } from "./safetensors";

export type ModuleGroup = "experts" | "attention" | "embeddings" | "router" | "norms" | "other";

export const GROUP_LABELS: Readonly<Record<ModuleGroup, string>> = {
  experts: "MoE experts",
  attention: "attention",
  embeddings: "embeddings / lm_head",
  router: "router",
  norms: "norms",
  other: "other",
};

export interface TensorLike {
  name: string;
  dtype: string;
  shape: number[];
  bytes: number;
  elements: number;
}

export interface CheckpointSummary {
  totalBytes: number;
  tensorCount: number;
  byDtype: Record<string, number>;
  byGroup: Record<ModuleGroup, number>;
  /** Parameters: MXFP4 `*_blocks` (U8) hold two 4-bit values a byte; quantization scales are not parameters. */
  parameters: number;
  /** MXFP4 packed values (`*_blocks`) and their E8M0 scales (`*_scales`), when present. */
  mxfp4: { blocksBytes: number; scalesBytes: number; values: number };
  /** Everything in BF16/F16/F32 (unquantized). */
  unquantizedBytes: number;
}

export function moduleGroup(name: string): ModuleGroup {
  if (/(^|\.)experts?\./.test(name) || /\.experts\b/.test(name)) return "experts";
  if (
    /(^|\.)(embed_tokens|wte|wpe|word_embeddings|embed|embedding|embeddings|lm_head|output)(\.|$)/.test(name)
  ) {
    return "embeddings";
  }
  if (/(^|\.)(router|gate)\.(weight|bias)$/.test(name) || /\.router\./.test(name)) return "router";
  if (/(self_attn|attention|\.attn)\./.test(name)) return "attention";
  if (/(norm|layernorm|ln_\w*)\.(weight|bias)$/.test(name) || /norm$/.test(name)) return "norms";
  return "other";
}

/** Quantization scales (MXFP4 `_scales`, FP8 `weight_scale`, `scale_inv`) carry no parameters. */
function isScaleTensor(name: string): boolean {
  return /(_scales|_scale|scale_inv|_scale_2)$/.test(name);
}

function isMxfp4Blocks(t: TensorLike): boolean {
  return t.dtype === "U8" && t.name.endsWith("_blocks");
}

export function parameterCount(t: TensorLike): number {
  if (isScaleTensor(t.name)) return 0;
  if (isMxfp4Blocks(t)) return t.elements * 2;
  if (t.dtype === "F4") return t.elements;
  return t.elements;
}

export function summarizeTensors(tensors: readonly (TensorLike | TensorEntry)[]): CheckpointSummary {
  const summary: CheckpointSummary = {
    totalBytes: 0,
    tensorCount: tensors.length,
    byDtype: {},
    byGroup: { experts: 0, attention: 0, embeddings: 0, router: 0, norms: 0, other: 0 },
    parameters: 0,
    mxfp4: { blocksBytes: 0, scalesBytes: 0, values: 0 },
    unquantizedBytes: 0,
  };
  // A Map, then an object: a dtype is a name from a file, and "__proto__" must be a key like any other.
  const byDtype = new Map<string, number>();
  for (const t of tensors) {
    summary.totalBytes += t.bytes;
    byDtype.set(t.dtype, (byDtype.get(t.dtype) ?? 0) + t.bytes);
    summary.byGroup[moduleGroup(t.name)] += t.bytes;
    summary.parameters += parameterCount(t);
    if (isMxfp4Blocks(t)) {
      summary.mxfp4.blocksBytes += t.bytes;
      summary.mxfp4.values += t.elements * 2;
    } else if (t.dtype === "U8" && t.name.endsWith("_scales")) {
      summary.mxfp4.scalesBytes += t.bytes;
    }
    if (t.dtype === "BF16" || t.dtype === "F16" || t.dtype === "F32") summary.unquantizedBytes += t.bytes;
  }
  summary.byDtype = Object.fromEntries(byDtype);
  return summary;
}
