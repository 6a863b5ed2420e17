// Fills the panel's budget section from src/budget (theory, measurement and verdict are that
// module's; the panel only draws them).
import { computeBudgetView } from "../budget/view";
import { knownModelBudget } from "../budget/modelBudget";
import type { RunModel } from "../model/runModel";
import type { RunMeta } from "../runner/types";
import type { ShowBudgetParams } from "../../webview/protocol";

export interface BudgetSettings {
  targetBytes: number;
  gpuMemoryUtilization: number;
  /** memlens.model: a published checkpoint MemLens carries the tensor inventory of. */
  model?: string;
}

export function budgetForRun(
  run: { id: string; model: RunModel; meta: RunMeta } | undefined,
  settings: BudgetSettings,
): ShowBudgetParams {
  try {
    const checkpoint = settings.model ? knownModelBudget(settings.model) : undefined;
    const view = computeBudgetView(run?.model, {
      checkpoint,
      targetBytes: settings.targetBytes,
      gpuMemoryUtilization: settings.gpuMemoryUtilization,
      meta: run?.meta.targets,
    });
    return { runId: run?.id ?? null, budget: view };
  } catch (error) {
    return {
      runId: run?.id ?? null,
      budget: null,
      unavailable: `The budget could not be computed: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
}
