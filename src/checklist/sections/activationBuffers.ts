// Activation buffers (checklist 2.4): the MoE layers' temporary buffers in a forward pass.
import { firstMeasured, callEvidence, codeLinkOf, missing, b, type Rule } from "../rule";

/** The rules of section 2.4, by item id. */
export const rules: Record<string, Rule> = {
  "activation.moe_buffers": (input) => {
    const { item, run, ctx, t, callsN } = input;
    const found = firstMeasured(ctx, item, ["fusedMoe", "profileRun"]);
    if (!found) return missing(input, ["fusedMoe", "profileRun"], "what.forward");
    const s = found.summary!;
    const transient = s.transientMax ?? 0;
    const spec = s.spec ?? s.target;
    return {
      state: "answered",
      verdict: transient > 0 ? "yes" : "no",
      answer:
        transient > 0
          ? t("moe.yes", { spec, bytes: b(transient), calls: callsN(s.calls) })
          : t("moe.no", { spec, calls: callsN(s.calls) }),
      evidence: [callEvidence(s, t("ev.transient"), transient)],
      codeLink: codeLinkOf(run, found.targets),
    };
  },
};
