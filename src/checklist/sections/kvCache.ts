// The KV cache (checklist 2.3): its blocks, the bytes of a block, what gpu_memory_utilization
// does to it.
import type { Evidence } from "../items";
import { DEFAULT_BLOCK_SIZE, lastFact, factEvidence, missing, b, n, type Rule } from "../rule";

/** The rules of section 2.3, by item id. */
export const rules: Record<string, Rule> = {
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
};
