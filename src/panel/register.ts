// The memory panel's commands (open, compare) and its serializer, so a panel open when the window
// closed comes back after a reload showing what it showed.
import * as vscode from "vscode";
import { runStatusText } from "../l10n/vscode";
import type { MemlensHost, RunEntry } from "../host/host";
import type { ChartName } from "../../webview/protocol";
import { parseAllocatorSnapshot, parsePanelState } from "./messages";
import { MemoryPanel, PANEL_VIEW_TYPE, type PanelChoice } from "./memoryPanel";

/** A run id from a command argument: a string, a RunEntry, or a Runs tree node ({ id } / { runId }). */
export function runIdOf(arg: unknown): string | undefined {
  if (typeof arg === "string") return arg;
  if (typeof arg === "object" && arg !== null) {
    const node = arg as { runId?: unknown; id?: unknown };
    if (typeof node.runId === "string") return node.runId;
    if (typeof node.id === "string") return node.id;
  }
  return undefined;
}

class PanelManager implements vscode.WebviewPanelSerializer, vscode.Disposable {
  private current: MemoryPanel | undefined;

  constructor(private readonly host: MemlensHost) {}

  open(runId: string | undefined): MemoryPanel {
    if (runId !== undefined && !this.host.runs.get(runId)) {
      void vscode.window.showWarningMessage(
        vscode.l10n.t("MemLens: there is no run {0}; showing the current run instead.", runId),
      );
      runId = undefined;
    }
    if (this.current) {
      this.current.show(runId);
      return this.current;
    }
    const panel = vscode.window.createWebviewPanel(
      PANEL_VIEW_TYPE,
      vscode.l10n.t("MemLens: memory"),
      { viewColumn: vscode.ViewColumn.Active, preserveFocus: false },
      { enableScripts: true, retainContextWhenHidden: false, enableFindWidget: true },
    );
    return this.attach(panel, { pinnedRunId: runId });
  }

  async compare(aArg: unknown, bArg: unknown): Promise<void> {
    const runs = this.host.runs.list();
    if (runs.length < 2) {
      void vscode.window.showInformationMessage(
        runs.length === 1
          ? vscode.l10n.t("MemLens: comparing needs two runs; there is one yet.")
          : vscode.l10n.t("MemLens: comparing needs two runs; there are none yet."),
      );
      return;
    }
    const a =
      runIdOf(aArg) ?? (await this.pick(runs, vscode.l10n.t("Run A: the baseline (before the change)")));
    if (a === undefined) return;
    const b =
      runIdOf(bArg) ??
      (await this.pick(
        runs.filter((r) => r.id !== a),
        vscode.l10n.t("Run B: compared with A (after the change)"),
      ));
    if (b === undefined) return;
    for (const id of [a, b]) {
      if (!this.host.runs.get(id)) {
        void vscode.window.showWarningMessage(vscode.l10n.t("MemLens: there is no run {0} to compare.", id));
        return;
      }
    }
    this.open(undefined).showCompare(a, b);
  }

  async deserializeWebviewPanel(panel: vscode.WebviewPanel, raw: unknown): Promise<void> {
    const state = parsePanelState(raw);
    const choice: PanelChoice = {
      pinnedRunId: state?.pinned && state.runId && this.host.runs.get(state.runId) ? state.runId : undefined,
      compare: state?.compare,
    };
    this.current?.dispose();
    this.attach(panel, choice);
  }

  showAllocatorSnapshot(raw: unknown): boolean {
    const view = parseAllocatorSnapshot(raw);
    if (!view) return false;
    (this.current ?? this.open(undefined)).showAllocatorSnapshot(view);
    return true;
  }

  capturePng(chart: ChartName, file: string): Promise<void> {
    const panel = this.current ?? this.open(undefined);
    return panel.capturePng(chart, file);
  }

  dispose(): void {
    this.current?.dispose();
  }

  private attach(panel: vscode.WebviewPanel, choice: PanelChoice): MemoryPanel {
    const memoryPanel = new MemoryPanel(this.host, panel, choice, () => {
      if (this.current === memoryPanel) this.current = undefined;
    });
    this.current = memoryPanel;
    return memoryPanel;
  }

  private async pick(runs: RunEntry[], title: string): Promise<string | undefined> {
    const picked = await vscode.window.showQuickPick(
      runs.map((r) => ({
        label: r.meta.label,
        description: `${runStatusText(r.meta.status)} · ${r.meta.started}`,
        detail: r.meta.command.join(" "),
        id: r.id,
      })),
      { title, placeHolder: vscode.l10n.t("Pick a run"), matchOnDescription: true, matchOnDetail: true },
    );
    return picked?.id;
  }
}

export function registerPanel(host: MemlensHost): vscode.Disposable {
  const manager = new PanelManager(host);
  return vscode.Disposable.from(
    vscode.commands.registerCommand("memlens.openPanel", (arg?: unknown) => {
      manager.open(runIdOf(arg));
    }),
    vscode.commands.registerCommand("memlens.compareRuns", (a?: unknown, b?: unknown) =>
      manager.compare(a, b),
    ),
    // Not in the command palette: for scripts, tests and the log export, which want a chart image.
    vscode.commands.registerCommand("memlens.panel.capturePng", (chart: ChartName, file: string) =>
      manager.capturePng(chart === "budget" ? "budget" : "timeline", file),
    ),
    // Not in the command palette: "Open Allocator Snapshot" (src/commands) hands the data it read here.
    vscode.commands.registerCommand("memlens.panel.showAllocatorSnapshot", (data: unknown) =>
      manager.showAllocatorSnapshot(data),
    ),
    vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, manager),
    manager,
  );
}
