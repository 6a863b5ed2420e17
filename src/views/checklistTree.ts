// The "Checklist" tree: the seed's sections, each item with its state, its answer as the
// description and the evidence in the tooltip.
import * as vscode from "vscode";
import { CHECKLIST_SECTIONS, type ChecklistResult, type ChecklistSection } from "../checklist/items";
import { formatBytes } from "../model/format";
import { CHECKLIST_TEXT } from "../l10n/checklist";
import { translator, type Lang } from "../l10n/lang";
import { uiLang } from "../l10n/vscode";

export type ChecklistNode =
  | { kind: "section"; section: ChecklistSection }
  | { kind: "item"; result: ChecklistResult };

export const NEEDS_PROBE_CONTEXT = "memlens.checklist.needsProbe";

const STATE_ICON: Record<ChecklistResult["state"], vscode.ThemeIcon> = {
  answered: new vscode.ThemeIcon("pass-filled", new vscode.ThemeColor("testing.iconPassed")),
  needs_probe: new vscode.ThemeIcon("add"),
  needs_run: new vscode.ThemeIcon("circle-large-outline"),
};

/** In Chinese the checklist's own wording of the item is the heading; in English its meaning, with the wording below. */
function tooltip(r: ChecklistResult, lang: Lang): vscode.MarkdownString {
  const t = translator(CHECKLIST_TEXT, lang);
  const md = new vscode.MarkdownString(undefined, true);
  if (lang === "zh-CN") {
    md.appendMarkdown("**");
    md.appendText(r.item.seed);
    md.appendMarkdown("**\n\n");
  } else {
    md.appendMarkdown(`**${r.item.gloss}**\n\n`);
    md.appendText(`${r.item.seed}\n\n`);
  }
  md.appendMarkdown(`_${t(`state.${r.state}`)}_ — `);
  md.appendText(`${r.answer}\n`);
  for (const e of r.evidence) {
    const bytes =
      e.bytes !== undefined ? ` (${formatBytes(e.bytes, 2)}, ${e.bytes.toLocaleString("en-US")} B)` : "";
    const where = [
      e.target && t("tree.target", { target: e.target }),
      e.call !== undefined && t("tree.calls", { n: e.call }),
      e.pid !== undefined && `pid ${e.pid}`,
    ]
      .filter(Boolean)
      .join(", ");
    md.appendText(`\n• ${e.text}${bytes}${where ? ` — ${where}` : ""}`);
  }
  if (r.codeLink) md.appendText(`\n\n${t("tree.code", { file: r.codeLink.file, line: r.codeLink.line })}`);
  if (r.state !== "answered") {
    for (const p of r.nextProbes) {
      const where = p.function ?? (p.line ? `${p.line.file}: ${p.line.contains}` : "");
      md.appendText(`\n${t("tree.probe", { where, what: p.what })}`);
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
      // The title is the checklist's own (Chinese) heading; English adds its meaning.
      item.description =
        uiLang() === "zh-CN"
          ? `${answered}/${inSection.length}`
          : `${answered}/${inSection.length} · ${node.section.gloss}`;
      return item;
    }
    const r = node.result;
    const item = new vscode.TreeItem(r.item.seed.replace(/`/g, ""), vscode.TreeItemCollapsibleState.None);
    item.id = `item:${r.item.id}`;
    item.description = r.answer;
    const lang = uiLang();
    item.tooltip = tooltip(r, lang);
    item.iconPath = STATE_ICON[r.state];
    item.contextValue = r.state === "needs_probe" ? NEEDS_PROBE_CONTEXT : `memlens.checklist.${r.state}`;
    const t = translator(CHECKLIST_TEXT, lang);
    item.accessibilityInformation = {
      label: t("tree.itemLabel", {
        item: lang === "zh-CN" ? r.item.seed.replace(/`/g, "") : r.item.gloss,
        state: t(`state.${r.state}`),
        answer: r.answer,
      }),
    };
    if (r.codeLink) {
      item.command = {
        command: "memlens.checklist.openCode",
        title: vscode.l10n.t("Open Code"),
        arguments: [r.codeLink],
      };
    }
    return item;
  }

  dispose(): void {
    this.emitter.dispose();
  }
}
