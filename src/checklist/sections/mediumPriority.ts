// Medium-priority optimizations (checklist 4.2): fewer KV blocks, no MoE buffers.
import type { Evidence } from "../items";
import {
  lastFact,
  firstMeasured,
  callEvidence,
  factEvidence,
  codeLinkOf,
  missing,
  b,
  n,
  type Rule,
} from "../rule";

/** The rules of section 4.2, by item id. */
export const rules: Record<string, Rule> = {
  "opt.fewer_blocks": (input) => {
    const { run, m, t } = input;
    const conc = lastFact(run, "max_concurrency");
    if (!m.kvCache || !conc?.values.concurrency) {
      return missing(input, ["initKvCache"], "what.kvAndConcurrency");
    }
    const needed = m.kvCache.bytes / conc.values.concurrency;
    const saving = Math.max(0, Math.floor(m.kvCache.bytes - needed));
    return {
      state: "answered",
      verdict: saving > 0 ? "yes" : "no",
      answer:
        saving > 0
          ? t("fewer.yes", {
              saving: b(saving),
              concurrency: conc.values.concurrency,
              tokens: n(conc.values.tokens_per_request ?? 0),
              needed: b(needed),
            })
          : t("fewer.no"),
      evidence: [factEvidence(conc, t), { text: m.kvCache.source, bytes: m.kvCache.bytes }],
      saving: { bytes: saving, text: `KV beyond one request` },
    };
  },
  "opt.disable_buffers": (input) => {
    const { item, run, ctx, m, t } = input;
    const found = firstMeasured(ctx, item, ["fusedMoe"]);
    const slack = m.allocatorSlack;
    if (!found && !slack) return missing(input, ["fusedMoe"], "what.forward");
    const transient = found?.summary?.transientMax ?? 0;
    const slackBytes = Math.max(0, slack?.bytes ?? 0);
    const saving = transient + slackBytes;
    const evidence: Evidence[] = [];
    if (found?.summary) evidence.push(callEvidence(found.summary, t("ev.moeForward"), transient));
    if (slack) evidence.push({ text: slack.source, bytes: slack.bytes });
    const parts = [
      ...(found ? [t("buffers.moe", { bytes: b(transient) })] : []),
      ...(slack ? [t("buffers.slack", { bytes: b(slackBytes) })] : []),
    ];
    return {
      state: "answered",
      verdict: saving > 0 ? "yes" : "no",
      answer:
        saving > 0
          ? t("buffers.yes", { saving: b(saving), parts: parts.join(t("list.plus")) })
          : t("buffers.no"),
      evidence,
      codeLink: found ? codeLinkOf(run, found.targets) : undefined,
      saving: { bytes: saving, text: "buffers + allocator slack" },
    };
  },
};
