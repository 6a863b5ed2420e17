// The checklist answered from a run: each item of items.json by the rule of its section (one file
// per section of the checklist, under sections/), all of them from one set of measurements and one
// KV model per evaluation. No `vscode`: the tree, `memlens report`, the log export and the tests
// get the same answers.
import { callsText } from "../model/format";
import type { RunModel } from "../model/runModel";
import { CHECKLIST_TEXT } from "../l10n/checklist";
import { translator } from "../l10n/lang";
import { kvModelFromConfig, type KvModel } from "../budget/kvcache";
import { measureRun } from "../budget/measured";
import type { ModelBudget } from "../budget/modelBudget";
import { CHECKLIST_ITEMS, type ChecklistContext, type ChecklistItem, type ChecklistResult } from "./items";
import { n, probesOf, type Rule, type RuleInput } from "./rule";
import { rules as overhead } from "./sections/overhead";
import { rules as weightLoading } from "./sections/weightLoading";
import { rules as marlinWorkspace } from "./sections/marlinWorkspace";
import { rules as kvCache } from "./sections/kvCache";
import { rules as activationBuffers } from "./sections/activationBuffers";
import { rules as highPriority } from "./sections/highPriority";
import { rules as mediumPriority } from "./sections/mediumPriority";
import { rules as lowPriority } from "./sections/lowPriority";

/** Each section's rules, by the section id of items.json. */
const SECTION_RULES: Readonly<Record<string, Readonly<Record<string, Rule>>>> = {
  "1.2": overhead,
  "2.1": weightLoading,
  "2.2": marlinWorkspace,
  "2.3": kvCache,
  "2.4": activationBuffers,
  "4.1": highPriority,
  "4.2": mediumPriority,
  "4.3": lowPriority,
};

/** KV bytes per token: the checkpoint's model, else from config.json (none when it cannot say). */
function kvModelOf(
  model: ModelBudget | undefined,
  config: Record<string, unknown> | undefined,
): KvModel | undefined {
  if (model?.kv) return model.kv;
  if (!config) return undefined;
  try {
    return kvModelFromConfig(config);
  } catch {
    return undefined;
  }
}

/** What every rule reads of one run, computed once for all of them. */
function evaluationOf(ctx: ChecklistContext, run: RunModel): Omit<RuleInput, "item"> {
  const lang = ctx.lang ?? "en";
  const config = ctx.model?.config ?? ctx.config;
  return {
    t: translator(CHECKLIST_TEXT, lang),
    callsN: (count) => callsText(count, lang, n(count)),
    lang,
    run,
    ctx: { run, meta: ctx.meta, lineText: ctx.lineText },
    m: ctx.measurements ?? measureRun(run, ctx.meta, lang),
    config,
    kv: kvModelOf(ctx.model, config),
    model: ctx.model,
  };
}

function answer(
  item: ChecklistItem,
  evaluation: Omit<RuleInput, "item"> | undefined,
  ctx: ChecklistContext,
): ChecklistResult {
  const rule = SECTION_RULES[item.section]?.[item.id];
  if (!rule) throw new Error(`checklist item ${item.id} has no rule in section ${item.section}`);
  if (!evaluation) {
    const t = translator(CHECKLIST_TEXT, ctx.lang ?? "en");
    return { item, state: "needs_run", answer: t("noRun"), evidence: [], nextProbes: probesOf(item, t) };
  }
  const partial = rule({ ...evaluation, item });
  return {
    item,
    ...partial,
    nextProbes: partial.nextProbes ?? (partial.state === "answered" ? [] : probesOf(item, evaluation.t)),
  };
}

/** One item's answer. */
export function evaluateItem(item: ChecklistItem, ctx: ChecklistContext): ChecklistResult {
  return answer(item, ctx.run ? evaluationOf(ctx, ctx.run) : undefined, ctx);
}

/** Every item's answer, in the checklist's order. */
export function evaluateChecklist(ctx: ChecklistContext): ChecklistResult[] {
  const evaluation = ctx.run ? evaluationOf(ctx, ctx.run) : undefined;
  return CHECKLIST_ITEMS.map((item) => answer(item, evaluation, ctx));
}
