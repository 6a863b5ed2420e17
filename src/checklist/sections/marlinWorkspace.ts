// Marlin workspaces (checklist 2.2): per layer or shared, their size, whether one could serve all.
import { workspaceFacts, callEvidence, codeLinkOf, missing, b, type Rule } from "../rule";

/** The rules of section 2.2, by item id. */
export const rules: Record<string, Rule> = {
  "workspace.per_layer": (input) => {
    const { t, callsN } = input;
    const f = workspaceFacts(input, input.item);
    if (!f) return missing(input, ["workspace"], "what.moeConvertedMarlin");
    const perLayer = f.kept > 1;
    const layers = f.moeLayers ? t("perLayer.layers", { n: f.moeLayers }) : "";
    if (f.inForward === f.calls) {
      return {
        state: "answered",
        verdict: "yes",
        answer: t("perLayer.inForward", { calls: callsN(f.calls), pid: f.pid, layers, bytes: b(f.perCall) }),
        evidence: [callEvidence(f.summary, t("ev.wsInForward", { calls: callsN(f.calls) }), f.perCall)],
        codeLink: codeLinkOf(input.run, f.ws.targets),
      };
    }
    return {
      state: "answered",
      verdict: perLayer ? "yes" : "no",
      answer: perLayer
        ? t("perLayer.yes", { calls: callsN(f.calls), pid: f.pid, layers, bytes: b(f.perCall) })
        : t("perLayer.shared", {
            kept: t(f.kept === 1 ? "perLayer.oneKept" : "perLayer.noneKept"),
            pid: f.pid,
            calls: callsN(f.calls),
            layers,
          }),
      evidence: [
        callEvidence(
          f.summary,
          t("ev.wsKept", { calls: callsN(f.calls), kept: f.kept, total: b(f.total) }),
          f.total,
        ),
      ],
      codeLink: codeLinkOf(input.run, f.ws.targets),
    };
  },
  "workspace.size": (input) => {
    const { t, callsN } = input;
    const f = workspaceFacts(input, input.item);
    if (!f) return missing(input, ["workspace"], "what.moeConvertedMarlin");
    const mb = f.perCall / 1e6;
    return {
      state: "answered",
      verdict: f.perCall > 0 ? "yes" : "no",
      answer:
        f.perCall > 0
          ? t("size.yes", {
              bytes: b(f.perCall),
              mb: mb < 0.01 ? mb.toExponential(1) : mb.toFixed(2),
              kept: f.kept,
              total: b(f.total),
            })
          : t("size.zero", { calls: callsN(f.calls) }),
      evidence: [callEvidence(f.summary, t("ev.largestRetained"), f.perCall)],
      codeLink: codeLinkOf(input.run, f.ws.targets),
    };
  },
  "workspace.can_share": (input) => {
    const { t } = input;
    const f = workspaceFacts(input, input.item);
    if (!f) return missing(input, ["workspace"], "what.moeConvertedMarlin");
    if (f.kept > 1 && f.sameSize) {
      const saving = (f.kept - 1) * f.perCall;
      return {
        state: "answered",
        verdict: "yes",
        answer: t("share.yes", {
          kept: f.kept,
          bytes: b(f.perCall),
          device: f.device ?? "?",
          saving: b(saving),
        }),
        evidence: [
          callEvidence(f.summary, t("ev.keptTimes", { kept: f.kept, bytes: b(f.perCall) }), f.total),
        ],
        codeLink: codeLinkOf(input.run, f.ws.targets),
        saving: { bytes: saving, text: `${f.kept - 1} × ${b(f.perCall)}` },
      };
    }
    return {
      state: "answered",
      verdict: "no",
      answer:
        f.kept <= 1
          ? t("share.noNeed", { why: t(f.kept === 1 ? "share.singleKept" : "share.noneKept") })
          : t("share.differ", { kept: f.kept, bytes: b(f.perCall) }),
      evidence: [callEvidence(f.summary, t("ev.keptTotal", { kept: f.kept, total: b(f.total) }), f.total)],
      codeLink: codeLinkOf(input.run, f.ws.targets),
    };
  },
};
