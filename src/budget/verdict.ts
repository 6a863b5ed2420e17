// Does the model fit a target card? vLLM's own accounting: budget = total × gpu_memory_utilization;
// the KV cache gets what is left after weights, the activation peak and non-torch memory.
import { formatBytes } from "../model/format";
import { kvBytesForTokens, kvTokensForBytes, type KvModel } from "./kvcache";

export type BudgetKind = "theory" | "measured" | "estimate";

export interface VerdictPart {
  label: string;
  bytes: number;
  kind: BudgetKind;
  source: string;
}

export interface VerdictInput {
  targetBytes: number;
  gpuMemoryUtilization: number;
  /** What vLLM takes from the budget before the KV cache, in its order. */
  parts: VerdictPart[];
  /** Parts no number is known for (counted as 0: the verdict is then a lower bound). */
  unknown: string[];
  kv?: KvModel;
  /** Tokens one request needs (vLLM's max_model_len); the KV cache must hold at least these. */
  minKvTokens: number;
}

export interface FitVerdict {
  fits: boolean;
  budgetBytes: number;
  usedBytes: number;
  /** Budget − used (negative: short). */
  kvBytes: number;
  kvTokens?: number;
  minKvBytes?: number;
  /** Bytes missing to fit (0 when it fits). */
  shortBytes: number;
  /** gpu_memory_utilization at which it would fit on this card (> 1: never). */
  neededUtilization: number;
  fitting: string[];
  notFitting: string[];
  verdict: string;
  arithmetic: string[];
}

const gib = (bytes: number): string => formatBytes(bytes, 2);
const exact = (bytes: number): string => `${Math.round(bytes).toLocaleString("en-US")} B`;

export function fitVerdict(input: VerdictInput): FitVerdict {
  const { targetBytes, gpuMemoryUtilization: util, kv } = input;
  if (!(targetBytes > 0))
    throw new RangeError(`target GPU size must be a positive number of bytes, got ${targetBytes}`);
  if (!(util > 0 && util <= 1)) {
    throw new RangeError(
      `gpu_memory_utilization must be in (0, 1], got ${util}: vLLM uses that fraction of the card`,
    );
  }
  const budgetBytes = Math.floor(targetBytes * util);
  const arithmetic: string[] = [
    `target card: ${gib(targetBytes)} (${exact(targetBytes)})`,
    `budget = ${gib(targetBytes)} × gpu_memory_utilization ${util} = ${gib(budgetBytes)} (${exact(budgetBytes)})`,
  ];
  const fitting: string[] = [];
  const notFitting: string[] = [];
  let left = budgetBytes;
  for (const part of input.parts) {
    left -= part.bytes;
    const mark = left >= 0 ? "" : "  ✗ over budget";
    const source = part.source.startsWith(`${part.kind}:`) ? part.source : `${part.kind}: ${part.source}`;
    arithmetic.push(`  − ${part.label} ${gib(part.bytes)} (${source}) → ${gib(left)} left${mark}`);
    (left >= 0 ? fitting : notFitting).push(`${part.label} (${gib(part.bytes)})`);
  }
  const usedBytes = budgetBytes - left;
  const minKvBytes = kv ? kvBytesForTokens(kv, input.minKvTokens) : undefined;
  let kvTokens: number | undefined;
  if (kv) {
    kvTokens = kvTokensForBytes(kv, left);
    arithmetic.push(
      `= KV cache: ${gib(Math.max(0, left))} ÷ (${kv.formula}) → ${kvTokens.toLocaleString("en-US")} tokens of one sequence`,
    );
    arithmetic.push(
      `  a request of max_model_len ${input.minKvTokens} needs ${gib(minKvBytes!)} (${exact(minKvBytes!)}) of KV cache`,
    );
  } else {
    arithmetic.push(`= KV cache: ${gib(left)} (no config.json: tokens not computed)`);
  }
  const need = usedBytes + (minKvBytes ?? 0);
  const shortBytes = Math.max(0, need - budgetBytes);
  const fits = shortBytes === 0 && left > 0;
  const neededUtilization = need / targetBytes;
  if (fits) fitting.push(`KV cache for ${kvTokens?.toLocaleString("en-US") ?? "?"} tokens (${gib(left)})`);
  else notFitting.push(`KV cache (needs ${gib(minKvBytes ?? 0)} for max_model_len ${input.minKvTokens})`);
  arithmetic.push(
    `needed: ${gib(need)} = ${(neededUtilization * 100).toFixed(1)} % of the card` +
      (neededUtilization <= 1
        ? ` → fits at gpu_memory_utilization ≥ ${Math.ceil(neededUtilization * 1000) / 1000}`
        : ` → does not fit at any gpu_memory_utilization: ${gib(need - targetBytes)} more than the whole card`),
  );
  const lowerBound =
    input.unknown.length > 0
      ? ` Not measured yet: ${input.unknown.join(", ")} (counted as 0, so more may be needed).`
      : "";
  const verdict = fits
    ? `Fits: ${gib(targetBytes)} × ${util} leaves ${gib(left)} for the KV cache` +
      (kvTokens !== undefined ? ` ≈ ${kvTokens.toLocaleString("en-US")} tokens of one sequence.` : ".") +
      lowerBound
    : `Does not fit: ${gib(need)} needed, ${gib(shortBytes)} more than ${gib(targetBytes)} × ${util} = ${gib(budgetBytes)}` +
      (neededUtilization <= 1
        ? ` (it would fit at gpu_memory_utilization ${Math.ceil(neededUtilization * 1000) / 1000}).`
        : ` and ${gib(need - targetBytes)} more than the whole card.`) +
      lowerBound;
  return {
    fits,
    budgetBytes,
    usedBytes,
    kvBytes: left,
    kvTokens,
    minKvBytes,
    shortBytes,
    neededUtilization,
    fitting,
    notFitting,
    verdict,
    arithmetic,
  };
}
