// Low-priority optimizations (checklist 4.3): CUDA graphs.
import { b, type Rule } from "../rule";

/** The rules of section 4.3, by item id. */
export const rules: Record<string, Rule> = {
  "opt.cuda_graph": ({ m, t }) => {
    if (!m.cudaGraphs) {
      return {
        state: "needs_run",
        answer: t("graph.notMeasured"),
        evidence: [],
        nextProbes: [],
      };
    }
    return {
      state: "answered",
      verdict: m.cudaGraphs.bytes > 0 ? "yes" : "no",
      answer: t(m.cudaGraphs.bytes > 0 ? "graph.yes" : "graph.no", { bytes: b(m.cudaGraphs.bytes) }),
      evidence: [{ text: m.cudaGraphs.source, bytes: m.cudaGraphs.bytes }],
      saving: { bytes: m.cudaGraphs.bytes, text: "graph capture" },
    };
  },
};
