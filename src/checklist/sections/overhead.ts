// vLLM's extra overhead (checklist 1.2): what the KV cache, the Marlin workspaces, the conversion
// copy, the CUDA context and the activations take.
import { findTargets, NEEDS } from "../../budget/targets";
import {
  workspaceFacts,
  firstMeasured,
  callEvidence,
  factEvidence,
  codeLinkOf,
  missing,
  b,
  n,
  type Rule,
} from "../rule";

/** The rules of section 1.2, by item id. */
export const rules: Record<string, Rule> = {
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
        : f.inForward === f.calls
          ? t("ws.inForward", { size: b(f.perCall), calls: f.calls })
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
};
