// The checklist's commands in VS Code: the tree and its refresh, "Export Findings to Log" (one
// undoable edit on the user's log file), "Choose Investigation Log File", "Show Memory Budget" and
// "Add the Probe This Item Needs". The answers themselves are src/checklist's.
import * as vscode from "vscode";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { sourceLineReader } from "../files/read";
import type { MemlensHost, RunEntry } from "../host/host";
import type { RunModel } from "../model/runModel";
import { ChecklistTreeProvider, type ChecklistNode } from "../views/checklistTree";
import type { ChecklistResult } from "../checklist/items";
import { evaluateChecklist } from "../checklist/rules";
import { computeFindings, findingsInput } from "../export/findings";
import { exportFindings, minimalEdit } from "../export/logExport";
import { computeBudget } from "../budget/view";
import { budgetMarkdown } from "../budget/markdown";
import type { ProbeNeed } from "../budget/targets";
import { ProbeSet, type ProbeTarget } from "./probeSet";
import { findProbeLine } from "../checklist/probeLine";
import { logLanguage } from "../export/logExport";
import { BUDGET_TEXT } from "../l10n/budget";
import { translator } from "../l10n/lang";
import { uiLang } from "../l10n/vscode";

const LOG_FILE_KEY = "memlens.checklist.logFile";
const TEMPLATE = "media/templates/investigation-log.md";
const BUDGET_URI = vscode.Uri.from({ scheme: "memlens-budget", path: "/Memory Budget.md" });

export interface ChecklistOptions {
  /** Adds a probe to the extension's probe set (so lenses refresh); default: the same stored set. */
  addProbe?: (target: ProbeTarget) => Promise<boolean>;
}

function today(): string {
  const d = new Date();
  const pad = (n: number): string => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

class ChecklistController implements vscode.Disposable {
  readonly tree = new ChecklistTreeProvider();
  private budgetText = "";
  private readonly budgetEmitter = new vscode.EventEmitter<vscode.Uri>();
  private readonly probes: ProbeSet;

  constructor(
    private readonly host: MemlensHost,
    private readonly options: ChecklistOptions,
  ) {
    this.probes = new ProbeSet(host.context.workspaceState);
  }

  readonly budgetProvider: vscode.TextDocumentContentProvider = {
    onDidChange: this.budgetEmitter.event,
    provideTextDocumentContent: () => this.budgetText,
  };

  async refresh(): Promise<ChecklistResult[]> {
    const entry = this.host.runs.current();
    const run = await this.runModel(entry);
    const budget = await this.host.budget();
    const results = evaluateChecklist({
      run,
      meta: entry?.meta.targets,
      model: budget.checkpoint,
      lineText: sourceLineReader(),
      // The view speaks the editor's language, each item in the checklist's own words.
      lang: uiLang(),
    });
    this.tree.update(results);
    return results;
  }

  async showBudget(): Promise<void> {
    const entry = this.host.runs.current();
    const run = await this.runModel(entry);
    const budget = await this.host.budget();
    const computed = computeBudget(run, {
      checkpoint: budget.checkpoint,
      targetBytes: budget.targetBytes,
      gpuMemoryUtilization: budget.gpuMemoryUtilization,
      meta: entry?.meta.targets,
      lang: uiLang(),
    });
    const t = translator(BUDGET_TEXT, uiLang());
    const title = t("md.title", {
      model: budget.model || t("md.model"),
      gib: budget.targetGpuGiB,
      run: entry ? t("md.titleRun", { id: entry.id }) : "",
    });
    let text = budgetMarkdown(computed.view, title, budget.checkpoint, uiLang());
    if (!budget.checkpoint && budget.why) text += `\n${t("md.noCheckpoint", { why: budget.why })}\n`;
    this.budgetText = text;
    this.budgetEmitter.fire(BUDGET_URI);
    await vscode.commands.executeCommand("markdown.showPreview", BUDGET_URI);
  }

  /** The run's events, read if they are not in memory yet (undefined: no run, or unreadable). */
  private async runModel(entry: RunEntry | undefined): Promise<RunModel | undefined> {
    return entry ? this.host.runs.load(entry) : undefined;
  }

  async chooseLogFile(): Promise<vscode.Uri | undefined> {
    const picked = await vscode.window.showOpenDialog({
      canSelectMany: false,
      openLabel: vscode.l10n.t("Use as Investigation Log"),
      filters: { Markdown: ["md", "markdown", "txt"] },
      defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
    });
    const uri = picked?.[0];
    if (uri) await this.host.context.workspaceState.update(LOG_FILE_KEY, uri.toString());
    return uri;
  }

  /** The remembered log file; if none (or it is gone), offer to pick one or create one from the template. */
  private async logFile(): Promise<vscode.Uri | undefined> {
    const stored = this.host.context.workspaceState.get<string>(LOG_FILE_KEY);
    if (stored) {
      const uri = vscode.Uri.parse(stored);
      if (uri.scheme !== "file" || existsSync(uri.fsPath)) return uri;
    }
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const create = vscode.l10n.t("Create from Template");
    const choose = vscode.l10n.t("Choose a File…");
    const answer = await vscode.window.showInformationMessage(
      vscode.l10n.t("MemLens: which investigation log should the findings go into?"),
      { modal: false },
      ...(folder ? [create] : []),
      choose,
    );
    if (answer === choose) return this.chooseLogFile();
    if (answer !== create || !folder) return undefined;
    const target = vscode.Uri.joinPath(folder, "memlens-investigation-log.md");
    if (!existsSync(target.fsPath)) {
      const template = await vscode.workspace.fs.readFile(
        vscode.Uri.file(this.host.context.asAbsolutePath(TEMPLATE)),
      );
      await vscode.workspace.fs.writeFile(target, template);
    }
    await this.host.context.workspaceState.update(LOG_FILE_KEY, target.toString());
    return target;
  }

  async exportFindings(): Promise<void> {
    const entry: RunEntry | undefined = this.host.runs.current();
    if (!entry) {
      void vscode.window.showWarningMessage(
        vscode.l10n.t(
          "MemLens: no run to export yet. Start one with Measure Here or Run with Current Probes.",
        ),
      );
      return;
    }
    const uri = await this.logFile();
    if (!uri) return;
    const run = await this.runModel(entry);
    if (!run) {
      void vscode.window.showWarningMessage(
        vscode.l10n.t(
          "MemLens: the events of run {0} could not be read (see the MemLens output); nothing exported.",
          entry.id,
        ),
      );
      return;
    }
    const budget = await this.host.budget();
    const document = await vscode.workspace.openTextDocument(uri);
    const before = document.getText();
    // The findings go in the log's own language (memlens.logLanguage may name one); a log that
    // does not tell gets the editor's.
    const lang = logLanguage(before, this.host.settings().logLanguage, uiLang());
    const findings = computeFindings(run, {
      meta: entry.meta,
      model: budget.checkpoint,
      targetBytes: budget.targetBytes,
      gpuMemoryUtilization: budget.gpuMemoryUtilization,
      lineText: sourceLineReader(),
      lang,
    });
    const result = exportFindings(before, findingsInput(findings, today()));
    const edit = minimalEdit(before, result.text);
    const workspaceEdit = new vscode.WorkspaceEdit();
    workspaceEdit.replace(
      uri,
      new vscode.Range(document.positionAt(edit.start), document.positionAt(edit.end)),
      edit.text,
    );
    if (!(await vscode.workspace.applyEdit(workspaceEdit))) {
      void vscode.window.showErrorMessage(
        vscode.l10n.t("MemLens: could not edit {0} (is it read-only?).", uri.fsPath),
      );
      return;
    }
    await document.save();
    const editor = await vscode.window.showTextDocument(document, { preview: false });
    const dayAt = document.positionAt(result.text.indexOf(`### Day ${result.day}:`));
    editor.revealRange(new vscode.Range(dayAt, dayAt), vscode.TextEditorRevealType.AtTop);
    void vscode.window.showInformationMessage(
      vscode.l10n.t(
        "MemLens: wrote Day {0} to {1}: {2} item(s) ticked, {3} 状态 cell(s) filled. Undo (Ctrl+Z) takes it back.",
        result.day,
        path.basename(uri.fsPath),
        result.ticked.length,
        result.cells.length,
      ),
    );
  }

  async addProbeForItem(node: ChecklistNode | undefined): Promise<void> {
    const result = node?.kind === "item" ? node.result : undefined;
    if (!result) {
      void vscode.window.showWarningMessage(vscode.l10n.t("MemLens: pick an item in the Checklist view."));
      return;
    }
    const added: string[] = [];
    const problems: string[] = [];
    for (const need of result.nextProbes) {
      const target = await this.probeTarget(need);
      if (typeof target === "string") {
        problems.push(target);
        continue;
      }
      const add = this.options.addProbe ?? ((t: ProbeTarget) => this.probes.add(t));
      await add(target);
      added.push(target.spec);
      // One probe answers the item; the others are alternatives for other vLLM versions.
      break;
    }
    if (added.length === 0) {
      const item = uiLang() === "zh-CN" ? result.item.seed : result.item.gloss;
      void vscode.window.showErrorMessage(
        vscode.l10n.t(
          'MemLens: no probe added for "{0}". {1}',
          item,
          problems.join(" ") || vscode.l10n.t("This item is answered from vLLM's log; run again."),
        ),
      );
      return;
    }
    const runNow = vscode.l10n.t("Run with Current Probes");
    const answer = await vscode.window.showInformationMessage(
      vscode.l10n.t("MemLens: probe added: {0}.", added.join(", ")),
      runNow,
    );
    if (answer === runNow) await vscode.commands.executeCommand("memlens.runProbes");
  }

  /** A function probe as is; a line probe by finding the line in the workspace's copy of the file. */
  private async probeTarget(need: ProbeNeed): Promise<ProbeTarget | string> {
    if (need.function) return { kind: "function", spec: need.function, hotspot: need.hotspot };
    if (!need.line) return vscode.l10n.t("The item names no probe.");
    const wanted = need.line;
    const files = await vscode.workspace.findFiles(`**/${wanted.file}`, undefined, 20);
    for (const file of files) {
      const text = new TextDecoder().decode(await vscode.workspace.fs.readFile(file));
      const line = findProbeLine(text, wanted.contains, wanted.insideFunction);
      if (line !== undefined)
        return { kind: "line", spec: `${file.fsPath}:${line}`, file: file.fsPath, line };
    }
    return vscode.l10n.t(
      "No {0} in the workspace has a line with {1}: open the vLLM source tree as a workspace folder (or add it to memlens.sourceRoots) and try again.",
      wanted.file,
      wanted.contains,
    );
  }

  dispose(): void {
    this.tree.dispose();
    this.budgetEmitter.dispose();
  }
}

export function registerChecklist(host: MemlensHost, options: ChecklistOptions = {}): vscode.Disposable {
  const controller = new ChecklistController(host, options);
  /** `what` is said in the editor's language (vscode.l10n.t at the call). */
  const report = (what: string) => (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    host.output.appendLine(`[checklist] ${what} failed: ${message}`);
    void vscode.window.showErrorMessage(vscode.l10n.t("MemLens: {0} failed: {1}", what, message));
  };
  const refresh = (): void => {
    controller.refresh().catch(report(vscode.l10n.t("checklist refresh")));
  };
  const disposables: vscode.Disposable[] = [
    controller,
    vscode.window.registerTreeDataProvider("memlens.checklist", controller.tree),
    vscode.workspace.registerTextDocumentContentProvider(BUDGET_URI.scheme, controller.budgetProvider),
    vscode.commands.registerCommand("memlens.refreshChecklist", refresh),
    vscode.commands.registerCommand("memlens.exportFindings", () =>
      controller.exportFindings().catch(report(vscode.l10n.t("export"))),
    ),
    vscode.commands.registerCommand("memlens.chooseLogFile", () =>
      controller.chooseLogFile().catch(report(vscode.l10n.t("choosing the log file"))),
    ),
    vscode.commands.registerCommand("memlens.showBudget", () =>
      controller.showBudget().catch(report(vscode.l10n.t("the budget"))),
    ),
    vscode.commands.registerCommand("memlens.addProbeForItem", (node?: ChecklistNode) =>
      controller.addProbeForItem(node).catch(report(vscode.l10n.t("adding the probe"))),
    ),
    vscode.commands.registerCommand(
      "memlens.checklist.openCode",
      async (link: { file: string; line: number }) => {
        if (!existsSync(link.file)) {
          void vscode.window.showInformationMessage(
            vscode.l10n.t("MemLens: {0}:{1} is not on this machine.", link.file, link.line),
          );
          return;
        }
        const position = new vscode.Position(Math.max(0, link.line - 1), 0);
        await vscode.window.showTextDocument(vscode.Uri.file(link.file), {
          selection: new vscode.Range(position, position),
        });
      },
    ),
    host.runs.onDidChange(refresh),
    // A host checkpoint left unread in Restricted Mode is read once the user trusts the workspace.
    vscode.workspace.onDidGrantWorkspaceTrust(refresh),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration("memlens")) refresh();
    }),
  ];
  refresh();
  return vscode.Disposable.from(...disposables);
}
