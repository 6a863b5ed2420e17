// memory_viz interop: "Export Allocator Snapshot" rewrites a torch allocator snapshot (the one the
// probe kept at an OOM, or any `_dump_snapshot` pickle) with pickle protocol 4, which
// https://pytorch.org/memory_viz opens; "Open Allocator Snapshot" reads one with the probe's
// restricted unpickler (`snapshot timeline|sites`: nothing from the file runs) and shows its
// timeline and allocation sites in the memory panel. Both run the bundled probe zipapp on this
// machine through the runner's one process gate (workspace trust).
import * as path from "node:path";
import * as vscode from "vscode";
import type { MemlensHostImpl } from "../host/extensionHost";
import { exportForMemoryViz, readAllocatorSnapshot, type SnapshotTool } from "../runner/allocatorSnapshot";
import { ProcessRefusedError } from "../runner/exec";
import { OPEN_ALLOCATOR_SNAPSHOT_COMMAND } from "../server/protocol";

export const EXPORT_ALLOCATOR_SNAPSHOT_COMMAND = "memlens.exportAllocatorSnapshot";
const MEMORY_VIZ = "https://pytorch.org/memory_viz";

/** The pickle is on this machine: memlens.python is the host's interpreter when a host is set. */
function toolOf(host: MemlensHostImpl): SnapshotTool {
  const description = host.settings().description;
  const elsewhere = Boolean(description.host?.trim()) || (description.wrapper?.length ?? 0) > 0;
  const python = elsewhere ? "python3" : description.python;
  return { python, probePath: host.probePath };
}

/** A path from a command argument (a string, a file Uri, or { file }), else undefined. */
function pathArg(arg: unknown): string | undefined {
  if (typeof arg === "string" && arg !== "") return arg;
  if (arg instanceof vscode.Uri) return arg.fsPath;
  const file = (arg as { file?: unknown } | null)?.file;
  return typeof file === "string" && file !== "" ? file : undefined;
}

async function pickSnapshot(host: MemlensHostImpl, title: string): Promise<string | undefined> {
  const run = host.runs.current();
  const picked = await vscode.window.showOpenDialog({
    title,
    canSelectMany: false,
    defaultUri: run ? vscode.Uri.file(run.dir) : vscode.workspace.workspaceFolders?.[0]?.uri,
    filters: {
      [vscode.l10n.t("Allocator snapshot")]: ["pickle", "pkl"],
      [vscode.l10n.t("All files")]: ["*"],
    },
  });
  return picked?.[0]?.fsPath;
}

function report(host: MemlensHostImpl, what: string, error: unknown): void {
  const text = error instanceof Error ? error.message : String(error);
  host.output.appendLine(`[snapshot] ${what}: ${text}`);
  if (error instanceof ProcessRefusedError) void vscode.window.showWarningMessage(text);
  else void vscode.window.showErrorMessage(vscode.l10n.t("MemLens: {0} failed: {1}", what, text));
}

async function exportSnapshot(host: MemlensHostImpl, arg: unknown): Promise<void> {
  const input = pathArg(arg) ?? (await pickSnapshot(host, vscode.l10n.t("Allocator snapshot to export")));
  if (input === undefined) return;
  const parsed = path.parse(input);
  const target = await vscode.window.showSaveDialog({
    defaultUri: vscode.Uri.file(path.join(parsed.dir, `${parsed.name}-memory_viz.pickle`)),
    filters: { [vscode.l10n.t("Allocator snapshot")]: ["pickle"] },
    saveLabel: vscode.l10n.t("Export for memory_viz"),
  });
  if (!target) return;
  try {
    await exportForMemoryViz(toolOf(host), input, target.fsPath);
  } catch (error) {
    report(host, vscode.l10n.t("exporting {0}", input), error);
    return;
  }
  const open = vscode.l10n.t("Open memory_viz");
  const answer = await vscode.window.showInformationMessage(
    vscode.l10n.t("MemLens: wrote {0}; drag it onto pytorch.org/memory_viz.", target.fsPath),
    open,
  );
  if (answer === open) await vscode.env.openExternal(vscode.Uri.parse(MEMORY_VIZ));
}

async function openSnapshot(host: MemlensHostImpl, arg: unknown): Promise<void> {
  const file = pathArg(arg) ?? (await pickSnapshot(host, vscode.l10n.t("Allocator snapshot to open")));
  if (file === undefined) return;
  const settings = host.settings();
  // Sites are the frames under the host's source folders: the mapped prefixes, else the local roots.
  const roots = [...(settings.description.pathMappings ?? []).map((m) => m.remote), ...settings.sourceRoots];
  try {
    const data = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: vscode.l10n.t("MemLens: reading {0}", file) },
      () => readAllocatorSnapshot(toolOf(host), file, roots),
    );
    const shown = await vscode.commands.executeCommand<boolean>("memlens.panel.showAllocatorSnapshot", data);
    if (shown !== true) throw new Error(vscode.l10n.t("the memory panel could not show it"));
  } catch (error) {
    report(host, vscode.l10n.t("opening {0}", file), error);
  }
}

export function registerAllocatorSnapshotCommands(host: MemlensHostImpl): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand(EXPORT_ALLOCATOR_SNAPSHOT_COMMAND, (arg?: unknown) =>
      exportSnapshot(host, arg),
    ),
    vscode.commands.registerCommand(OPEN_ALLOCATOR_SNAPSHOT_COMMAND, (arg?: unknown) =>
      openSnapshot(host, arg),
    ),
  ];
}
