// The editor's language inside the extension host. Messages the extension host shows go through
// vscode.l10n.t (bundle: l10n/bundle.l10n.<lang>.json); views fed by the shared string tables
// (checklist answers, the panel, budgets) take this language.
import * as vscode from "vscode";
import { langOf, type Lang } from "./lang";

export function uiLang(): Lang {
  return langOf(vscode.env.language);
}

/** A run's status as the Runs view and the run pickers show it. */
export function runStatusText(status: string): string {
  switch (status) {
    case "running":
      return vscode.l10n.t("running");
    case "finished":
      return vscode.l10n.t("finished");
    case "failed":
      return vscode.l10n.t("failed");
    case "stopped":
      return vscode.l10n.t("stopped");
    case "interrupted":
      return vscode.l10n.t("interrupted");
    default:
      return status;
  }
}
