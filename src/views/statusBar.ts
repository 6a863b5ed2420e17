// A status-bar item with the live memory of the current run (device_used/device_total when the
// target uses CUDA, else host RSS), its source named in the tooltip. Hidden when no run has readings.
import * as vscode from "vscode";
import type { RunRegistry } from "../host/host";
import { latestMemory } from "./memoryText";
import { uiLang } from "../l10n/vscode";
import { escapeMarkdown } from "../model/markdown";

export class MemoryStatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private readonly subscription: vscode.Disposable;

  constructor(
    private readonly runs: RunRegistry,
    /** Command a click runs (the panel when there is one, else the output channel). */
    clickCommand: string,
  ) {
    this.item = vscode.window.createStatusBarItem("memlens.memory", vscode.StatusBarAlignment.Left, 50);
    this.item.name = vscode.l10n.t("MemLens memory");
    this.item.command = clickCommand;
    this.subscription = runs.onDidChange(() => this.update());
    this.update();
  }

  update(): void {
    const entry = this.runs.current();
    // A stored run's events may still be loading: the registry fires again once they are.
    const memory = entry?.model ? latestMemory(entry.model, uiLang()) : undefined;
    if (!entry || !memory) {
      this.item.hide();
      return;
    }
    const live = this.runs.isLive(entry);
    this.item.text = `${live ? "$(pulse)" : "$(history)"} ${memory.short}`;
    const label = escapeMarkdown(entry.meta.label);
    const heading = live
      ? vscode.l10n.t("**MemLens** — live run *{0}*", label)
      : vscode.l10n.t("**MemLens** — last reading of run *{0}*", label);
    this.item.tooltip = new vscode.MarkdownString(`${heading}\n\n${escapeMarkdown(memory.source)}`);
    this.item.show();
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}
