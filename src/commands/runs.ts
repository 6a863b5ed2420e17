// Commands on stored runs: open (select it, so lenses and the panel show it), delete, and the
// output channel.
import * as vscode from "vscode";
import { runStatusText } from "../l10n/vscode";
import type { MemlensHostImpl } from "../host/extensionHost";
import type { RunsTreeNode } from "../views/runsTree";

function runIdOf(arg: unknown): string | undefined {
  if (typeof arg === "string") return arg;
  if (typeof arg === "object" && arg !== null) {
    const node = arg as Partial<RunsTreeNode> & { runId?: string; id?: string };
    if (node.kind === "target") return node.runId;
    if (typeof node.id === "string") return node.id;
  }
  return undefined;
}

export interface RunCommandDeps {
  host: MemlensHostImpl;
  /** True when the memory panel is registered (then opening a run opens it). */
  hasPanel: () => boolean;
}

export function registerRunCommands(deps: RunCommandDeps): vscode.Disposable[] {
  const { host } = deps;
  return [
    vscode.commands.registerCommand("memlens.openRun", async (arg?: unknown) => {
      let id = runIdOf(arg);
      if (id === undefined) {
        const picked = await vscode.window.showQuickPick(
          host.runs.list().map((e) => ({
            label: e.meta.label,
            description: `${runStatusText(e.meta.status)} · ${e.meta.started}`,
            id: e.id,
          })),
          { placeHolder: vscode.l10n.t("Run to show") },
        );
        id = picked?.id;
      }
      if (id === undefined) return;
      if (!host.runs.get(id)) {
        void vscode.window.showWarningMessage(
          vscode.l10n.t("MemLens: run {0} is no longer in {1}.", id, host.settings().runsDirectory),
        );
        return;
      }
      host.runs.select(id);
      if (deps.hasPanel()) await vscode.commands.executeCommand("memlens.openPanel", id);
    }),
    vscode.commands.registerCommand("memlens.deleteRun", async (arg?: unknown) => {
      const id = runIdOf(arg);
      const entry = id === undefined ? undefined : host.runs.get(id);
      if (!entry) return;
      const live = entry.handle !== undefined && entry.meta.status === "running";
      const remove = vscode.l10n.t("Delete");
      const choice = await vscode.window.showWarningMessage(
        live
          ? vscode.l10n.t(
              "Delete the run “{0}” ({1})? It is still going and will be stopped.",
              entry.meta.label,
              entry.meta.started,
            )
          : vscode.l10n.t("Delete the run “{0}” ({1})?", entry.meta.label, entry.meta.started),
        { modal: true, detail: vscode.l10n.t("Its folder {0} is removed.", entry.dir) },
        remove,
      );
      if (choice !== remove) return;
      try {
        await host.deleteRun(entry.id);
      } catch (error) {
        void vscode.window.showErrorMessage(
          vscode.l10n.t(
            "MemLens could not delete {0}: {1}",
            entry.dir,
            error instanceof Error ? error.message : String(error),
          ),
        );
      }
    }),
    vscode.commands.registerCommand("memlens.showOutput", () => host.output.show(true)),
  ];
}
