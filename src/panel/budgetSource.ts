// Fills the panel's budget section from src/budget (theory, measurement and verdict are that
// module's; the panel only draws them).
import { computeBudgetView } from "../budget/view";
import { knownModelBudget } from "../budget/modelBudget";
import type { RunModel } from "../model/runModel";
import type { RunMeta } from "../runner/types";
import type { ShowBudgetParams } from "../../webview/protocol";
import { translator, type Lang } from "../l10n/lang";
import { PANEL_TEXT } from "../l10n/panel";

export interface BudgetSettings {
  targetBytes: number;
  gpuMemoryUtilization: number;
  /** memlens.model: a published checkpoint MemLens carries the tensor inventory of. */
  model?: string;
}

export function budgetForRun(
  run: { id: string; model: RunModel; meta: RunMeta } | undefined,
  settings: BudgetSettings,
  /** The editor's language: the budget's labels, sources and verdict. */
  lang: Lang = "en",
): ShowBudgetParams {
  try {
    const checkpoint = settings.model ? knownModelBudget(settings.model) : undefined;
    const view = computeBudgetView(run?.model, {
      checkpoint,
      targetBytes: settings.targetBytes,
      gpuMemoryUtilization: settings.gpuMemoryUtilization,
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
