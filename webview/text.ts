// The panel's text, in the editor's language: the host sends every string in the Init message
// before any run (src/l10n/panel.ts holds them); the webview keeps none of its own.
import { fill, type Args } from "../src/l10n/lang";
import type { PanelKey, PanelStrings } from "./protocol";

let strings: PanelStrings | undefined;

export function setStrings(next: PanelStrings): void {
  strings = next;
}

/** The string `key` with its `{placeholders}` filled; the key itself until Init has come. */
export function s(key: PanelKey, args?: Args): string {
  return fill(strings?.[key] ?? key, args);
}
