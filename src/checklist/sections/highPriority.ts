// High-priority optimizations (checklist 4.1): what a shared workspace, an in-place conversion and
// a later KV cache would save, as measured.
import { callDelta } from "../../model/runModel";
import {
  workspaceFacts,
  lastFact,
  firstMeasured,
  finished,
  callEvidence,
  factEvidence,
  codeLinkOf,
  missing,
  originalExpertBytesPerLayer,
  b,
  type Rule,
} from "../rule";

/** The rules of section 4.1, by item id. */
export const rules: Record<string, Rule> = {
  "opt.shared_workspace": (input) => {
    const { t } = input;
    const f = workspaceFacts(input, input.item);
    if (!f) return missing(input, ["workspace"], "what.moeConvertedMarlin");
    const saving = f.kept > 1 ? (f.kept - 1) * f.perCall : 0;
    return {
      state: "answered",
      verdict: saving > 0 ? "yes" : "no",
      answer:
        saving > 0
          ? t("optWs.yes", { saving: b(saving), count: f.kept - 1, bytes: b(f.perCall) })
          : t("optWs.no"),
      evidence: [callEvidence(f.summary, t("ev.keptTimes", { kept: f.kept, bytes: b(f.perCall) }), f.total)],
      codeLink: codeLinkOf(input.run, f.ws.targets),
      saving: { bytes: saving, text: saving > 0 ? `${f.kept - 1} × ${b(f.perCall)}` : "none" },
    };
  },
  "opt.inplace_conversion": (input) => {
    const { item, run, ctx, t, callsN } = input;
    const found = firstMeasured(ctx, item, ["prepareMarlin", "processWeights"]);
    if (!found) return missing(input, ["prepareMarlin", "processWeights"], "what.moeConverted");
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
          ? t("inplace.yes", {
              saving: b(saving),
              transient: b(transient),
              rest:
                keptOriginals > 0
                  ? t("inplace.plusOriginals", { kept: b(keptOriginals) })
                  : t("inplace.originalsFreed"),
            })
          : t("inplace.no"),
      evidence: [
        callEvidence(
          s,
          t("ev.transientMaxOf", { spec: s.spec ?? s.target, calls: callsN(s.calls) }),
          transient,
        ),
      ],
      codeLink: codeLinkOf(run, found.targets),
      saving: { bytes: saving, text: keptOriginals > 0 ? "peak + originals" : "transient peak" },
    };
  },
  "opt.lazy_kv": (input) => {
    const { run, m, t } = input;
    const kvFact = lastFact(run, "available_kv_cache") ?? m.profiling;
    const oomAfterKv =
      kvFact !== undefined &&
      (run.ooms.some((o) => o.ts > kvFact.ts) || run.factsOf("cuda_oom").some((f) => f.ts > kvFact.ts));
    if (oomAfterKv && m.kvCache) {
      return {
        state: "answered",
        verdict: "yes",
        answer: t("lazy.yes", { bytes: b(m.kvCache.bytes) }),
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
        answer: m.noKvMemory ? t("lazy.noMemory") : t("lazy.no", { bytes: b(m.kvCache!.bytes) }),
        evidence: [
          m.noKvMemory ? factEvidence(m.noKvMemory, t) : { text: m.kvCache!.source, bytes: m.kvCache!.bytes },
        ],
      };
    }
    return missing(input, ["initKvCache"], "what.kvAllocated");
  },
};
