// Labelled estimates: where a kernel changes the resident size of the weights, and the
// investigation checklist's own "theoretical minimum" with what it gets wrong.
import type { CheckpointSummary } from "./checkpoint";
import type { TensorLike } from "./checkpoint";
import { formatBytes } from "../model/format";

export function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

/**
 * Bytes of one MoE expert stored as MXFP4: w13 [2·I, H] and w2 [H, I] as 4-bit values, one E8M0
 * scale byte per 32 values, and BF16 biases (2·I + H). With the checkpoint's dimensions it is the
 * expert as stored; with Marlin's padded ones, the expert as the kernel keeps it.
 */
export function mxfp4ExpertBytes(hidden: number, intermediate: number): number {
  const values = 3 * intermediate * hidden;
  return values / 2 + values / 32 + (2 * intermediate + hidden) * 2;
}

export interface MarlinMxfp4Estimate {
  residentBytes: number;
  /** Checkpoint bytes of the MoE experts (blocks, scales, biases) that the formula replaces. */
  checkpointExpertBytes: number;
  paddedExpertBytes: number;
  hidden: number;
  intermediate: number;
  paddedHidden: number;
  paddedIntermediate: number;
  experts: number;
  layers: number;
  formula: string[];
}

/**
 * vLLM's Marlin MXFP4 MoE path rounds hidden up to a multiple of 256 and intermediate to a
 * multiple of 128 (2880 → 3072 and 2880 → 2944 for gpt-oss), then stores per expert: w13
 * [2·I', H'] and w2 [H', I'] as 4-bit values, one E8M0 scale byte per 32 values, and BF16 biases
 * (2·I' + H'). Everything that is not an expert stays as in the checkpoint.
 */
export function marlinMxfp4Estimate(
  config: Record<string, unknown>,
  tensors: readonly TensorLike[],
  summary: CheckpointSummary,
): MarlinMxfp4Estimate | undefined {
  const quant = config.quantization_config as { quant_method?: unknown } | undefined;
  if (quant?.quant_method !== "mxfp4") return undefined;
  const hidden = config.hidden_size;
  const intermediate = config.intermediate_size;
  const experts = config.num_local_experts ?? config.num_experts;
  const layers = config.num_hidden_layers;
  if (![hidden, intermediate, experts, layers].every((v) => typeof v === "number" && v > 0)) return undefined;
  const H = hidden as number;
  const I = intermediate as number;
  const E = experts as number;
  const L = layers as number;
  const Hp = roundUp(H, 256);
  const Ip = roundUp(I, 128);
  const values = 3 * Ip * Hp;
  const perExpert = mxfp4ExpertBytes(Hp, Ip);
  const paddedExpertBytes = L * E * perExpert;
  const checkpointExpertBytes = tensors
    .filter((t) => /\.experts\.(gate_up_proj|down_proj)_(blocks|scales|bias)$/.test(t.name))
    .reduce((a, t) => a + t.bytes, 0);
  const residentBytes = summary.totalBytes - checkpointExpertBytes + paddedExpertBytes;
  return {
    residentBytes,
    checkpointExpertBytes,
    paddedExpertBytes,
    hidden: H,
    intermediate: I,
    paddedHidden: Hp,
    paddedIntermediate: Ip,
    experts: E,
    layers: L,
    formula: [
      `Marlin MXFP4 pads hidden ${H} → ${Hp} (multiple of 256) and intermediate ${I} → ${Ip} (multiple of 128).`,
      `Per expert: w13 [2×${Ip}, ${Hp}] + w2 [${Hp}, ${Ip}] = 3 × ${Ip} × ${Hp} = ${values.toLocaleString("en-US")} values;` +
        ` ÷ 2 (4-bit) = ${(values / 2).toLocaleString("en-US")} B + ÷ 32 (E8M0 scale) = ${(values / 32).toLocaleString("en-US")} B` +
        ` + BF16 biases (2×${Ip} + ${Hp}) × 2 = ${((2 * Ip + Hp) * 2).toLocaleString("en-US")} B = ${perExpert.toLocaleString("en-US")} B.`,
      `× ${E} experts × ${L} layers = ${paddedExpertBytes.toLocaleString("en-US")} B (${formatBytes(paddedExpertBytes, 2)}).`,
      `Checkpoint ${summary.totalBytes.toLocaleString("en-US")} B − experts as stored ${checkpointExpertBytes.toLocaleString("en-US")} B` +
        ` + padded experts = ${residentBytes.toLocaleString("en-US")} B (${formatBytes(residentBytes, 2)}).`,
    ],
  };
}

export interface ChecklistTheory {
  /** 11.26 GB, as the checklist adds it up (decimal GB). */
  bytes: number;
  formula: string[];
  whyWrong: string[];
}

/** The checklist's §1.1 sum, and why the checkpoint disagrees (when one is at hand). */
export function checklistTheory(summary?: CheckpointSummary): ChecklistTheory {
  const weights = 20e9 * 0.5;
  const scales = (20e9 / 16) * 1;
  const globals = 0.01e9;
  const bytes = weights + scales + globals;
  const whyWrong = [
    `It assumes all 20B parameters are FP4 with one FP8 scale per 16 values: that is NVFP4. MXFP4 has one E8M0 scale byte per 32 values.`,
    `It forgets what stays BF16: attention, router, embeddings, lm_head and norms.`,
    `It adds decimal GB (10^9); torch and vLLM print GiB (2^30): 11.26 GB is ${formatBytes(bytes, 2)}.`,
  ];
  if (summary && summary.mxfp4.blocksBytes > 0) {
    whyWrong.push(
      `This checkpoint: MXFP4 blocks ${formatBytes(summary.mxfp4.blocksBytes, 2)} + scales ${formatBytes(summary.mxfp4.scalesBytes, 2)}` +
        ` (${summary.mxfp4.values.toLocaleString("en-US")} FP4 values of ${summary.parameters.toLocaleString("en-US")} parameters)` +
        ` + unquantized ${formatBytes(summary.unquantizedBytes, 2)} = ${summary.totalBytes.toLocaleString("en-US")} B (${formatBytes(summary.totalBytes, 2)}):` +
        ` the real floor, ${formatBytes(summary.totalBytes - bytes, 2)} above the checklist's figure.`,
    );
  }
  return {
    bytes,
    formula: [
      "权重 (FP4): 20B × 0.5 bytes = 10.0 GB",
      "Scales (FP8): 20B/16 × 1 byte = 1.25 GB",
      "Global Scales: 0.01 GB",
      "合计: 11.26 GB",
    ],
    whyWrong,
  };
}
