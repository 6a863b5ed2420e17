// Commands on stored runs: open (select it, so lenses and the panel show it), delete, and the
// output channel.
import * as vscode from "vscode";
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
            description: `${e.meta.status} · ${e.meta.started}`,
            id: e.id,
          })),
          { placeHolder: "Run to show" },
        );
        id = picked?.id;
      }
      if (id === undefined) return;
      if (!host.runs.get(id)) {
        void vscode.window.showWarningMessage(
          `MemLens: run ${id} is no longer in ${host.settings().runsDirectory}.`,
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
      const choice = await vscode.window.showWarningMessage(
        `Delete the run “${entry.meta.label}” (${entry.meta.started})?${live ? " It is still going and will be stopped." : ""}`,
        { modal: true, detail: `Its folder ${entry.dir} is removed.` },
        "Delete",
      );
      if (choice !== "Delete") return;
      try {
        await host.deleteRun(entry.id);
      } catch (error) {
        void vscode.window.showErrorMessage(
          `MemLens could not delete ${entry.dir}: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }),
    vscode.commands.registerCommand("memlens.showOutput", () => host.output.show(true)),
  ];
}
