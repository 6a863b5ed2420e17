// The editor's language inside the extension host. Messages the extension host shows go through
// vscode.l10n.t (bundle: l10n/bundle.l10n.<lang>.json); views fed by the shared string tables
// (checklist answers, the panel, budgets) take this language.
import * as vscode from "vscode";
import { langOf, type Lang } from "./lang";

export function uiLang(): Lang {
  return langOf(vscode.env.language);
}
