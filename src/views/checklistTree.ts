// The "Checklist" tree: the seed's sections, each item with its state, its answer as the
// description and the evidence in the tooltip.
import * as vscode from "vscode";
import { CHECKLIST_SECTIONS, type ChecklistResult, type ChecklistSection } from "../checklist/rules";
import { formatBytes } from "../model/format";

export type ChecklistNode =
  | { kind: "section"; section: ChecklistSection }
  | { kind: "item"; result: ChecklistResult };

export const NEEDS_PROBE_CONTEXT = "memlens.checklist.needsProbe";

const STATE_ICON: Record<ChecklistResult["state"], vscode.ThemeIcon> = {
  answered: new vscode.ThemeIcon("pass-filled", new vscode.ThemeColor("testing.iconPassed")),
  needs_probe: new vscode.ThemeIcon("add"),
  needs_run: new vscode.ThemeIcon("circle-large-outline"),
};

function tooltip(r: ChecklistResult): vscode.MarkdownString {
  const md = new vscode.MarkdownString(undefined, true);
  md.appendMarkdown(`**${r.item.gloss}**\n\n`);
  md.appendText(`${r.item.seed}\n\n`);
  md.appendMarkdown(`_${r.state.replace("_", " ")}_ — `);
  md.appendText(`${r.answer}\n`);
  for (const e of r.evidence) {
    const bytes =
      e.bytes !== undefined ? ` (${formatBytes(e.bytes, 2)}, ${e.bytes.toLocaleString("en-US")} B)` : "";
    const where = [
      e.target && `target ${e.target}`,
      e.call !== undefined && `calls ${e.call}`,
      e.pid !== undefined && `pid ${e.pid}`,
    ]
      .filter(Boolean)
      .join(", ");
    md.appendText(`\n• ${e.text}${bytes}${where ? ` — ${where}` : ""}`);
  }
  if (r.codeLink) md.appendText(`\n\ncode: ${r.codeLink.file}:${r.codeLink.line}`);
  if (r.state !== "answered") {
    for (const p of r.nextProbes) {
      md.appendText(
        `\nprobe: ${p.function ?? (p.line ? `${p.line.file}: ${p.line.contains}` : "")} — ${p.what}`,
      );
    }
  }
  return md;
}

export class ChecklistTreeProvider implements vscode.TreeDataProvider<ChecklistNode>, vscode.Disposable {
  private results: ChecklistResult[] = [];
  private readonly emitter = new vscode.EventEmitter<ChecklistNode | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;

  update(results: ChecklistResult[]): void {
    this.results = results;
    this.emitter.fire(undefined);
  }

  current(): readonly ChecklistResult[] {
    return this.results;
  }

  getChildren(node?: ChecklistNode): ChecklistNode[] {
    if (!node) {
      return CHECKLIST_SECTIONS.filter((s) => this.results.some((r) => r.item.section === s.id)).map(
        (section) => ({
          kind: "section",
          section,
        }),
      );
    }
    if (node.kind === "section") {
      return this.results
        .filter((r) => r.item.section === node.section.id)
        .map((result) => ({ kind: "item", result }));
    }
    return [];
  }

  getTreeItem(node: ChecklistNode): vscode.TreeItem {
    if (node.kind === "section") {
      const inSection = this.results.filter((r) => r.item.section === node.section.id);
      const answered = inSection.filter((r) => r.state === "answered").length;
      const item = new vscode.TreeItem(node.section.title, vscode.TreeItemCollapsibleState.Expanded);
      item.id = `section:${node.section.id}`;
      item.description = `${answered}/${inSection.length} · ${node.section.gloss}`;
      return item;
    }
    const r = node.result;
    const item = new vscode.TreeItem(r.item.seed.replace(/`/g, ""), vscode.TreeItemCollapsibleState.None);
    item.id = `item:${r.item.id}`;
    item.description = r.answer;
    item.tooltip = tooltip(r);
    item.iconPath = STATE_ICON[r.state];
    item.contextValue = r.state === "needs_probe" ? NEEDS_PROBE_CONTEXT : `memlens.checklist.${r.state}`;
    item.accessibilityInformation = { label: `${r.item.gloss}: ${r.state.replace("_", " ")}. ${r.answer}` };
    if (r.codeLink) {
      item.command = {
        command: "memlens.checklist.openCode",
        title: "Open Code",
        arguments: [r.codeLink],
      };
    }
    return item;
  }

  dispose(): void {
    this.emitter.dispose();
  }
}
