// The model budget every view shows (the panel, the checklist, "Show Memory Budget", the log
// export): memlens.model resolved once per settings and trust (src/budget/resolve.ts), and the
// card of the settings. No `vscode` import: trust and the settings are passed in.
import type { ModelBudget } from "../budget/modelBudget";
import { resolveModelBudget } from "../budget/resolve";
import { placeOf } from "../runner/place";
import type { MemlensSettings } from "../settings/settings";

export interface ResolvedBudget {
  /** The checkpoint's exact bytes and KV model, when memlens.model resolved to one. */
  checkpoint?: ModelBudget;
  /** Why there is none: not found, not read in an untrusted workspace, or not readable. */
  why?: string;
  /** memlens.model as written. */
  model: string;
  targetBytes: number;
  targetGpuGiB: number;
  gpuMemoryUtilization: number;
}

/** Resolves memlens.model again only when what it depends on changed (a remote read is seconds). */
export class BudgetResolver {
  private cached: { key: string; found: Promise<{ checkpoint?: ModelBudget; why?: string }> } | undefined;

  /** `log`: where a budget without checkpoint says why (the output channel). */
  constructor(private readonly log: (line: string) => void) {}

  resolve(
    settings: MemlensSettings,
    trusted: boolean,
    workspaceFolder: string | undefined,
  ): Promise<ResolvedBudget> {
    const { description } = settings;
    const key = JSON.stringify([
      settings.model,
      description.host,
      description.sshArgs,
      description.wrapper,
      description.python,
      workspaceFolder,
      trusted,
    ]);
    if (this.cached?.key !== key) this.cached = { key, found: this.find(settings, trusted, workspaceFolder) };
    return this.cached.found.then((found) => ({
      ...found,
      model: settings.model,
      targetBytes: settings.targetBytes,
      targetGpuGiB: settings.targetGpuGiB,
      gpuMemoryUtilization: settings.gpuMemoryUtilization,
    }));
  }

  private async find(
    settings: MemlensSettings,
    trusted: boolean,
    workspaceFolder: string | undefined,
  ): Promise<{ checkpoint?: ModelBudget; why?: string }> {
    let found: { checkpoint?: ModelBudget; why?: string };
    try {
      const resolved = await resolveModelBudget(settings.model, {
        workspaceFolder,
        place: placeOf(settings.description),
        python: settings.description.python,
        // The panel and the checklist ask at activation, before the user asked for anything: in
        // Restricted Mode the host, sshArgs and wrapper of a workspace must not reach ssh.
        processesRefused: trusted
          ? undefined
          : "the workspace is not trusted, and reading over ssh starts a program. Trust the workspace to read it.",
      });
      found = { checkpoint: resolved.budget, why: resolved.why };
    } catch (error) {
      found = { why: error instanceof Error ? error.message : String(error) };
    }
    if (found.why) this.log(`[budget] without checkpoint: ${found.why}`);
    return found;
  }
}
