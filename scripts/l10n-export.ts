// Writes l10n/bundle.l10n.json: every message the extension host shows through vscode.l10n.t,
// found in src/ with the TypeScript parser (what `@vscode/l10n-dev export` does, without the
// dependency). Translators start from it; test/unit/l10n checks it is current and that
// l10n/bundle.l10n.zh-cn.json has each message.
//   node --import tsx scripts/l10n-export.ts          write it
//   node --import tsx scripts/l10n-export.ts --check  exit 1 if it is not current
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";

const ROOT = path.resolve(__dirname, "..");
export const BUNDLE = path.join(ROOT, "l10n", "bundle.l10n.json");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith(".ts") ? [full] : [];
  });
}

/** The messages of every `vscode.l10n.t("…", …)` in `text`; a call without a literal message is an error. */
export function messagesIn(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && node.expression.getText(source) === "vscode.l10n.t") {
      const first = node.arguments[0];
      if (!first || !(ts.isStringLiteral(first) || ts.isNoSubstitutionTemplateLiteral(first))) {
        const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
        throw new Error(`${path.relative(ROOT, file)}:${line + 1}: vscode.l10n.t needs a literal message`);
      }
      found.push(first.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Every message of src/, sorted, each once: the English bundle. */
export function englishBundle(): Record<string, string> {
  const messages = new Set<string>();
  for (const file of sourceFiles(path.join(ROOT, "src")))
    for (const message of messagesIn(file, readFileSync(file, "utf8"))) messages.add(message);
  return Object.fromEntries([...messages].sort().map((m) => [m, m]));
}

export function bundleText(bundle: Record<string, string>): string {
  return `${JSON.stringify(bundle, null, 2)}\n`;
}

if (require.main === module) {
  const text = bundleText(englishBundle());
  if (process.argv.includes("--check")) {
    const current = readFileSync(BUNDLE, "utf8");
    if (current !== text) {
      console.error("l10n/bundle.l10n.json is not current: run node --import tsx scripts/l10n-export.ts");
      process.exit(1);
    }
  } else {
    writeFileSync(BUNDLE, text);
    console.log(
      `${Object.keys(JSON.parse(text) as object).length} messages in ${path.relative(ROOT, BUNDLE)}`,
    );
  }
}
