// The weight loading phase (checklist 2.1): the contiguous copy, repacking in place, whether the
// original weights are freed.
import { callDelta } from "../../model/runModel";
import {
  firstMeasured,
  finished,
  callEvidence,
  codeLinkOf,
  missing,
  originalExpertBytesPerLayer,
  b,
  n,
  type Rule,
} from "../rule";

/** The rules of section 2.1, by item id. */
export const rules: Record<string, Rule> = {
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
};
