// Does the model fit a target card? vLLM's own accounting: budget = total × gpu_memory_utilization;
// the KV cache gets what is left after weights, the activation peak and non-torch memory.
import { formatBytes } from "../model/format";
import { BUDGET_TEXT } from "../l10n/budget";
import { translator, type Lang } from "../l10n/lang";
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
  /** The language of the verdict and the arithmetic (default English). */
  lang?: Lang;
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
  const t = translator(BUDGET_TEXT, input.lang ?? "en");
  const budgetBytes = Math.floor(targetBytes * util);
  const arithmetic: string[] = [
    t("v.targetCard", { bytes: gib(targetBytes), exact: exact(targetBytes) }),
    t("v.budget", { target: gib(targetBytes), util, budget: gib(budgetBytes), exact: exact(budgetBytes) }),
  ];
  const fitting: string[] = [];
  const notFitting: string[] = [];
  let left = budgetBytes;
  for (const part of input.parts) {
    left -= part.bytes;
    const mark = left >= 0 ? "" : t("v.overBudget");
    const kind = t(`kind.${part.kind}`);
    const source =
      part.source.startsWith(`${part.kind}:`) || part.source.startsWith(`${kind}：`)
        ? part.source
        : t("v.partSource", { kind, source: part.source });
    arithmetic.push(
      t("v.part", { label: part.label, bytes: gib(part.bytes), source, left: gib(left), mark }),
    );
    (left >= 0 ? fitting : notFitting).push(t("v.named", { label: part.label, bytes: gib(part.bytes) }));
  }
  const usedBytes = budgetBytes - left;
  const minKvBytes = kv ? kvBytesForTokens(kv, input.minKvTokens) : undefined;
  let kvTokens: number | undefined;
  if (kv) {
    kvTokens = kvTokensForBytes(kv, left);
    arithmetic.push(
      t("v.kvTokens", {
        left: gib(Math.max(0, left)),
        formula: kv.formula,
        tokens: kvTokens.toLocaleString("en-US"),
      }),
    );
    arithmetic.push(
      t("v.kvRequest", { len: input.minKvTokens, bytes: gib(minKvBytes!), exact: exact(minKvBytes!) }),
    );
  } else {
    arithmetic.push(t("v.kvNoConfig", { left: gib(left) }));
  }
  const need = usedBytes + (minKvBytes ?? 0);
  const shortBytes = Math.max(0, need - budgetBytes);
  const fits = shortBytes === 0 && left > 0;
  const neededUtilization = need / targetBytes;
  if (fits)
    fitting.push(t("v.fittingKv", { tokens: kvTokens?.toLocaleString("en-US") ?? "?", bytes: gib(left) }));
  else notFitting.push(t("v.notFittingKv", { bytes: gib(minKvBytes ?? 0), len: input.minKvTokens }));
  const fitsAt = Math.ceil(neededUtilization * 1000) / 1000;
  arithmetic.push(
    t("v.needed", {
      need: gib(need),
      percent: (neededUtilization * 100).toFixed(1),
      tail:
        neededUtilization <= 1
          ? t("v.neededFits", { util: fitsAt })
          : t("v.neededNever", { more: gib(need - targetBytes) }),
    }),
  );
  const lowerBound =
    input.unknown.length > 0 ? t("v.notMeasured", { parts: input.unknown.join(t("v.listSep")) }) : "";
  const verdict = fits
    ? t("v.fits", {
        target: gib(targetBytes),
        util,
        left: gib(left),
        tokens:
          kvTokens !== undefined
            ? t("v.fitsTokens", { tokens: kvTokens.toLocaleString("en-US") })
            : t("v.fitsEnd"),
        lowerBound,
      })
    : t("v.noFit", {
        need: gib(need),
        short: gib(shortBytes),
        target: gib(targetBytes),
        util,
        budget: gib(budgetBytes),
        tail:
          neededUtilization <= 1
            ? t("v.noFitAtUtil", { util: fitsAt })
            : t("v.noFitCard", { more: gib(need - targetBytes) }),
        lowerBound,
      });
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
