// The languages MemLens writes (English and Simplified Chinese) and the one helper every string
// table uses. No `vscode` import: the language server, the debug adapter, the webview, the CLI and
// the log export pick a language explicitly (the log's own, or the editor's passed to them).

export type Lang = "en" | "zh-CN";
export const LANGS: readonly Lang[] = ["en", "zh-CN"];

/**
 * The language for a locale: VS Code's `vscode.env.language` ("en", "zh-cn", "zh-tw"), the
 * `locale` of LSP's and DAP's initialize requests, or a user's setting. Only Simplified Chinese has
 * a translation; every other locale, Traditional Chinese included, gets English.
 */
export function langOf(locale: string | null | undefined): Lang {
  const l = (locale ?? "").trim().toLowerCase().replace(/_/g, "-");
  if (l === "zh" || l === "zh-cn" || l === "zh-sg" || l.startsWith("zh-hans")) return "zh-CN";
  return "en";
}

/** A `--lang` or `memlens.logLanguage` value: "zh-CN" (any case, or "zh"), "en"; else undefined. */
export function parseLang(value: string): Lang | undefined {
  const l = value.trim().toLowerCase();
  if (l === "en" || l === "en-us") return "en";
  if (l === "zh" || l === "zh-cn" || l === "zh-hans") return "zh-CN";
  return undefined;
}

export type Args = Readonly<Record<string, string | number>>;

/** Replaces each `{name}` of `template` with `args[name]`; unknown names stay as they are. */
export function fill(template: string, args?: Args): string {
  if (!args) return template;
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    Object.hasOwn(args, name) ? String(args[name]) : whole,
  );
}

/** One table of strings per language, with the same keys and the same `{placeholders}`. */
export interface Tables<K extends string> {
  readonly en: Readonly<Record<K, string>>;
  readonly "zh-CN": Readonly<Record<K, string>>;
}

export type Translate<K extends string> = (key: K, args?: Args) => string;

export function translator<K extends string>(tables: Tables<K>, lang: Lang): Translate<K> {
  const table = tables[lang];
  return (key, args) => fill(table[key], args);
}

/** The `{placeholders}` of a template, sorted (the parity test compares them across languages). */
export function placeholders(template: string): string[] {
  return [...template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!).sort();
}
