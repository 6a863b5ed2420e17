// Fills the panel's budget section from src/budget (theory, measurement and verdict are that
// module's; the panel only draws them) with the budget the host resolved, as the checklist has it.
import { computeBudgetView } from "../budget/view";
import type { ResolvedBudget } from "../host/budget";
import type { RunModel } from "../model/runModel";
import type { RunMeta } from "../runner/types";
import type { ShowBudgetParams } from "../../webview/protocol";
import { translator, type Lang } from "../l10n/lang";
import { PANEL_TEXT } from "../l10n/panel";

export function budgetForRun(
  run: { id: string; model: RunModel; meta: RunMeta } | undefined,
  budget: Pick<ResolvedBudget, "checkpoint" | "targetBytes" | "gpuMemoryUtilization">,
  /** The editor's language: the budget's labels, sources and verdict. */
  lang: Lang = "en",
): ShowBudgetParams {
  try {
    const view = computeBudgetView(run?.model, {
      checkpoint: budget.checkpoint,
      targetBytes: budget.targetBytes,
      gpuMemoryUtilization: budget.gpuMemoryUtilization,
      meta: run?.meta.targets,
      lang,
    });
    return { runId: run?.id ?? null, budget: view };
  } catch (error) {
    return {
      runId: run?.id ?? null,
      budget: null,
      unavailable: translator(PANEL_TEXT, lang)("budget.unavailable", {
        error: error instanceof Error ? error.message : String(error),
      }),
    };
  }
}
