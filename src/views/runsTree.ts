// The "Runs" view: runs newest first (label, status, duration, host), each with its top targets
// and their summary lines. Clicking a run selects it; the lenses and the panel follow.
import * as vscode from "vscode";
import { runStatusText, uiLang } from "../l10n/vscode";
import type { RunEntry, RunRegistry } from "../host/host";
import { hasEvents } from "../host/runEntries";
import { formatDuration, summaryLine } from "../model/format";
import type { RunModel, TargetSummary } from "../model/runModel";
import { targetLabel } from "../model/targets";

/** Targets shown under a run: the biggest retained first. */
const TOP_TARGETS = 10;

export type RunsTreeNode = { kind: "run"; id: string } | { kind: "target"; runId: string; target: string };

const STATUS_ICONS: Record<string, string> = {
  running: "loading~spin",
  finished: "pass",
  failed: "error",
  stopped: "debug-stop",
  interrupted: "debug-disconnect",
};

export function runDurationNs(entry: RunEntry): number | undefined {
  // A stored run's events are read only when needed: meta.json has the times meanwhile.
  const model = entry.model;
  if (model?.end) return model.end.duration_ns;
  const started = Date.parse(entry.meta.started);
  const finished = entry.meta.finished ? Date.parse(entry.meta.finished) : undefined;
  if (finished !== undefined && !Number.isNaN(started) && !Number.isNaN(finished))
    return (finished - started) * 1e6;
  if (model?.firstTs !== undefined && model.lastTs !== undefined) return model.lastTs - model.firstTs;
  return undefined;
}

export function runDescriptionText(entry: RunEntry): string {
  const parts: string[] = [runStatusText(entry.meta.status)];
  const duration = runDurationNs(entry);
  if (duration !== undefined && entry.meta.status !== "running") parts.push(formatDuration(duration));
  parts.push(entry.meta.host ?? vscode.l10n.t("local"));
  return parts.join(" · ");
}

export function topTargets(model: RunModel): TargetSummary[] {
  return model
    .summaries()
    .sort((a, b) => Math.abs(b.retained) - Math.abs(a.retained))
    .slice(0, TOP_TARGETS);
}

export class RunsTreeProvider implements vscode.TreeDataProvider<RunsTreeNode>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<RunsTreeNode | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly runs: RunRegistry) {
    this.subscription = runs.onDidChange(() => this.emitter.fire(undefined));
  }

  async getChildren(node?: RunsTreeNode): Promise<RunsTreeNode[]> {
    if (!node) return this.runs.list().map((e) => ({ kind: "run", id: e.id }));
    if (node.kind === "run") {
      const entry = this.runs.get(node.id);
      // Expanding a stored run is what reads its events.
      const model = entry && (await this.runs.load(entry));
      return model
        ? topTargets(model).map((s) => ({ kind: "target", runId: node.id, target: s.target }))
        : [];
    }
    return [];
  }

  getParent(node: RunsTreeNode): RunsTreeNode | undefined {
    return node.kind === "target" ? { kind: "run", id: node.runId } : undefined;
  }

  getTreeItem(node: RunsTreeNode): vscode.TreeItem {
    if (node.kind === "run") return this.runItem(node.id);
    return this.targetItem(node.runId, node.target);
  }

  private runItem(id: string): vscode.TreeItem {
    const entry = this.runs.get(id);
    if (!entry) return new vscode.TreeItem(vscode.l10n.t("(removed)"));
    // Not read yet: it may have targets; expanding it tells.
    const hasTargets = entry.model ? entry.model.calls.length > 0 : hasEvents(entry);
    const item = new vscode.TreeItem(
      entry.meta.label,
      hasTargets ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None,
    );
    item.id = `run:${id}`;
    item.description = runDescriptionText(entry);
    const current = this.runs.current()?.id === id;
    item.iconPath = new vscode.ThemeIcon(STATUS_ICONS[entry.meta.status] ?? "circle-outline");
    item.contextValue = "memlens.run";
    const tooltip = new vscode.MarkdownString();
    tooltip.appendText(`${entry.meta.label}\n`);
    const started = new Date(entry.meta.started).toLocaleString(vscode.env.language);
    const status = runStatusText(entry.meta.status);
    tooltip.appendText(
      `${current ? vscode.l10n.t("{0} (shown) · started {1}", status, started) : vscode.l10n.t("{0} · started {1}", status, started)}\n`,
    );
    tooltip.appendText(`${vscode.l10n.t("host: {0}", entry.meta.host ?? vscode.l10n.t("this machine"))}\n`);
    if (entry.meta.command.length > 0)
      tooltip.appendText(`${vscode.l10n.t("command: {0}", entry.meta.command.join(" "))}\n`);
    if (entry.meta.error) tooltip.appendText(`${vscode.l10n.t("error: {0}", entry.meta.error)}\n`);
    if (entry.meta.recordError)
      tooltip.appendText(`${vscode.l10n.t("record incomplete: {0}", entry.meta.recordError)}\n`);
    tooltip.appendText(vscode.l10n.t("folder: {0}", entry.dir));
    item.tooltip = tooltip;
    item.command = { command: "memlens.openRun", title: vscode.l10n.t("Open Run"), arguments: [id] };
    return item;
  }

  private targetItem(runId: string, target: string): vscode.TreeItem {
    const entry = this.runs.get(runId);
    const model = entry?.model;
    const summary = model?.summary(target);
    if (!entry || !model || !summary) return new vscode.TreeItem(target);
    const spec = summary.spec ?? entry.meta.targets?.find((t) => t.id === target)?.spec;
    const item = new vscode.TreeItem(targetLabel(model, target, spec), vscode.TreeItemCollapsibleState.None);
    item.id = `run:${runId}/${target}`;
    item.description = summaryLine(summary, uiLang());
    item.iconPath = new vscode.ThemeIcon(summary.kind === "line" ? "symbol-field" : "symbol-method");
    item.contextValue = "memlens.runTarget";
    item.tooltip = `${summary.spec ?? target}\n${summaryLine(summary, uiLang())}`;
    if (summary.file) {
      const uri = vscode.Uri.file(summary.file);
      const line = Math.max(0, (summary.line ?? 1) - 1);
      item.command = {
        command: "vscode.open",
        title: vscode.l10n.t("Open Source"),
        arguments: [uri, { selection: new vscode.Range(line, 0, line, 0) }],
      };
    }
    return item;
  }

  dispose(): void {
    this.subscription.dispose();
    this.emitter.dispose();
  }
}
