// Every string MemLens shows in English exists in Simplified Chinese too, with the same
// placeholders: VS Code's manifest strings (package.nls*.json), the extension host's messages
// (l10n/bundle.l10n*.json), the string tables of the language server, the debug adapter, the
// panel, the checklist, the budget and the export, and the hotspot catalog's questions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { LANGS, langOf, parseLang, placeholders, type Tables } from "../../../src/l10n/lang";
import { FORMAT_TEXT } from "../../../src/l10n/format";
import { CHECKLIST_TEXT } from "../../../src/l10n/checklist";
import { BUDGET_TEXT } from "../../../src/l10n/budget";
import { FINDINGS_TEXT } from "../../../src/l10n/findings";
import { SERVER_TEXT } from "../../../src/l10n/server";
import { DEBUG_TEXT } from "../../../src/l10n/debug";
import { PANEL_TEXT } from "../../../src/l10n/panel";
import { RUN_ERRORS_TEXT } from "../../../src/l10n/runErrors";
import { CATALOG_ZH_CN } from "../../../src/l10n/catalog";
import { loadBundledCatalog } from "../../../src/catalog/catalog";
import { readSettings } from "../../../src/settings/settings";
import { bundleText, englishBundle } from "../../../scripts/l10n-export";

const ROOT = path.resolve(__dirname, "../../..");
const json = (file: string) =>
  JSON.parse(readFileSync(path.join(ROOT, file), "utf8")) as Record<string, unknown>;

/** What a translation lacks or adds: keys, empty values, placeholders ({0}, {name}, ${1:…}). */
function problems(english: Record<string, unknown>, chinese: Record<string, unknown>): string[] {
  const out: string[] = [];
  const marks = (text: string) => [...placeholders(text), ...(text.match(/\$\{\d+/g) ?? [])].sort();
  for (const [key, en] of Object.entries(english)) {
    const zh = chinese[key];
    if (typeof zh !== "string") out.push(`missing in zh-CN: ${key}`);
    else if (zh.trim() === "") out.push(`empty in zh-CN: ${key}`);
    else if (typeof en === "string" && marks(en).join() !== marks(zh).join())
      out.push(
        `placeholders differ in ${key}: ${marks(en).join() || "none"} vs ${marks(zh).join() || "none"}`,
      );
  }
  for (const key of Object.keys(chinese)) if (!(key in english)) out.push(`only in zh-CN: ${key}`);
  return out;
}

void test("the checker names a key that exists in English and not in zh-CN", () => {
  assert.deepEqual(problems({ a: "x {n}", b: "y" }, { a: "甲 {n}" }), ["missing in zh-CN: b"]);
  assert.deepEqual(problems({ a: "x {n}" }, { a: "甲" }), ["placeholders differ in a: n vs none"]);
  assert.deepEqual(problems({ a: "x" }, { a: "甲", c: "丙" }), ["only in zh-CN: c"]);
});

void test("package.nls.zh-cn.json has every manifest string, and package.json uses only known keys", () => {
  const english = json("package.nls.json");
  assert.deepEqual(problems(english, json("package.nls.zh-cn.json")), []);
  const manifest = readFileSync(path.join(ROOT, "package.json"), "utf8");
  const used = new Set([...manifest.matchAll(/"%([\w.]+)%"/g)].map((m) => m[1]!));
  assert.deepEqual(
    [...used].filter((key) => !(key in english)),
    [],
    "placeholders without an English string",
  );
  assert.deepEqual(
    Object.keys(english).filter((key) => !used.has(key)),
    [],
    "English strings nothing uses",
  );
  // Everything a user reads is a placeholder: titles, names, descriptions, labels.
  const pkg = json("package.json") as { contributes: Record<string, unknown> };
  const literal: string[] = [];
  const walk = (value: unknown, at: string): void => {
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${at}[${i}]`));
    else if (value && typeof value === "object")
      for (const [k, v] of Object.entries(value)) {
        if (
          /^(title|name|description|markdownDescription|label|contents|displayName)$/.test(k) &&
          typeof v === "string"
        )
          if (!/^%[\w.]+%$/.test(v) && v !== "MemLens" && !at.includes("viewsContainers"))
            literal.push(`${at}.${k}`);
        walk(v, `${at}.${k}`);
      }
  };
  walk(pkg.contributes, "contributes");
  assert.deepEqual(literal, []);
});

void test("l10n/bundle.l10n.json holds every vscode.l10n.t message of src/, and zh-cn translates each", () => {
  const english = englishBundle();
  assert.equal(
    readFileSync(path.join(ROOT, "l10n/bundle.l10n.json"), "utf8"),
    bundleText(english),
    "run: node --import tsx scripts/l10n-export.ts",
  );
  assert.ok(Object.keys(english).length > 80);
  assert.deepEqual(problems(english, json("l10n/bundle.l10n.zh-cn.json")), []);
});

const TABLES: Record<string, Tables<string>> = {
  format: FORMAT_TEXT,
  checklist: CHECKLIST_TEXT,
  budget: BUDGET_TEXT,
  findings: FINDINGS_TEXT,
  server: SERVER_TEXT,
  debug: DEBUG_TEXT,
  panel: PANEL_TEXT,
  runErrors: RUN_ERRORS_TEXT,
};

for (const [name, tables] of Object.entries(TABLES)) {
  void test(`string table "${name}": every English key in zh-CN, same placeholders`, () => {
    assert.deepEqual(problems(tables.en, tables["zh-CN"]), []);
  });
}

void test("the catalog: every hotspot's question and every phase's title in zh-CN", () => {
  const catalog = loadBundledCatalog().data;
  assert.deepEqual(
    problems(Object.fromEntries(catalog.hotspots.map((h) => [h.id, h.question])), CATALOG_ZH_CN.questions),
    [],
  );
  assert.deepEqual(
    problems(Object.fromEntries(catalog.phases.map((p) => [p.id, p.title])), CATALOG_ZH_CN.phases),
    [],
  );
});

void test("each checklist item carries the checklist's own Chinese wording, as the template writes it", () => {
  const template = readFileSync(path.join(ROOT, "media/templates/investigation-log.md"), "utf8");
  const { items } = json("src/checklist/items.json") as unknown as {
    items: { id: string; seed: string; gloss: string }[];
  };
  for (const item of items) {
    assert.match(item.seed, /\p{Script=Han}|CUDA Context/u, `${item.id}: seed is the Chinese wording`);
    assert.ok(template.includes(item.seed), `${item.id}: "${item.seed}" is not in the template`);
    assert.ok(item.gloss.length > 0, `${item.id}: gloss`);
  }
});

void test("languages: VS Code's ids and --lang values", () => {
  assert.deepEqual(LANGS, ["en", "zh-CN"]);
  assert.equal(langOf("zh-cn"), "zh-CN");
  assert.equal(langOf("zh-CN"), "zh-CN");
  assert.equal(langOf("zh-Hans"), "zh-CN");
  assert.equal(langOf("zh-tw"), "en", "Traditional Chinese has no translation");
  assert.equal(langOf("en-us"), "en");
  assert.equal(langOf(undefined), "en");
  assert.equal(parseLang("zh-cn"), "zh-CN");
  assert.equal(parseLang("EN"), "en");
  assert.equal(parseLang("fr"), undefined);
});

void test("memlens.logLanguage: auto by default, zh-CN and en as set, anything else auto", () => {
  const read = (value?: string) =>
    readSettings(
      { get: <T>(k: string) => (k === "logLanguage" ? (value as T) : undefined) },
      {
        folders: [],
        storage: "/s",
      },
    ).logLanguage;
  assert.equal(read(), "auto");
  assert.equal(read("zh-CN"), "zh-CN");
  assert.equal(read("en"), "en");
  assert.equal(read("auto"), "auto");
  assert.equal(read("fr"), "auto");
});
