import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { indexPythonSource, type PythonDef, type PythonSourceIndex } from "../../../src/catalog/pythonDefs";

const FIXTURES = path.resolve(__dirname, "../../fixtures/python");
const DEFS = path.join(FIXTURES, "defs");

function index(file: string): PythonSourceIndex {
  return indexPythonSource(readFileSync(path.join(DEFS, file), "utf8"));
}

function byQualname(idx: PythonSourceIndex, qualname: string): PythonDef {
  const def = idx.findByQualname(qualname);
  assert.ok(def, `${qualname} not found among ${idx.defs.map((d) => d.qualname).join(", ")}`);
  return def;
}

function lineOf(file: string, needle: string): number {
  const line = readFileSync(path.join(DEFS, file), "utf8")
    .split("\n")
    .findIndex((l) => l.includes(needle));
  assert.ok(line >= 0, needle);
  return line;
}

void describe("qualnames", () => {
  void test("classes, methods, nested classes and functions in functions, as __qualname__ spells them", () => {
    const idx = index("nesting.py");
    assert.deepEqual(
      idx.defs.map((d) => `${d.kind} ${d.qualname}`),
      [
        "function top_level",
        "function fetch_weights",
        "class Loader",
        "function Loader.__init__",
        "function Loader.make_workspace",
        "function Loader.from_config",
        "function Loader.name",
        "function Loader.cached",
        "function Loader.load_async",
        "function Loader.load_async.<locals>.inner_helper",
        "class Loader.Inner",
        "class Loader.Inner.Deeper",
        "function Loader.Inner.Deeper.method",
        "function Loader.Inner.inner_method",
        "function Loader.weight_loader",
        "function Loader.weight_loader",
        "function Loader.weight_loader",
        "function outer",
        "function outer.<locals>.middle",
        "function outer.<locals>.middle.<locals>.innermost",
        "class outer.<locals>.LocalClass",
        "function outer.<locals>.LocalClass.local_method",
        "function conditional_def",
        "class ConditionalClass",
        "function ConditionalClass.method_in_conditional",
        "function last_function",
      ],
    );
  });

  void test("decorators: names without arguments, the range starts at the first one, the def line stays", () => {
    const idx = index("nesting.py");
    const stat = byQualname(idx, "Loader.make_workspace");
    assert.deepEqual(stat.decorators, ["staticmethod"]);
    assert.equal(stat.startLine, lineOf("nesting.py", "@staticmethod"));
    assert.equal(stat.defLine, stat.startLine + 1);
    const cached = byQualname(idx, "Loader.cached");
    assert.deepEqual(cached.decorators, ["functools.lru_cache"]);
    assert.equal(cached.startLine, lineOf("nesting.py", "@functools.lru_cache("));
    assert.equal(cached.defLine, lineOf("nesting.py", "def cached(self)"));
    assert.deepEqual(byQualname(idx, "Loader.from_config").decorators, ["classmethod"]);
    assert.deepEqual(byQualname(idx, "Loader.name").decorators, ["property"]);
    assert.equal(byQualname(idx, "Loader.name").parent, "Loader");
  });

  void test("async defs are functions with isAsync", () => {
    const idx = index("nesting.py");
    assert.equal(byQualname(idx, "fetch_weights").isAsync, true);
    assert.equal(byQualname(idx, "Loader.load_async").isAsync, true);
    assert.equal(byQualname(idx, "Loader.load_async").nameStart, "    async def ".length);
    assert.equal(byQualname(idx, "top_level").isAsync, false);
  });

  void test("overloads: findByQualname returns the implementation", () => {
    const idx = index("nesting.py");
    const impl = byQualname(idx, "Loader.weight_loader");
    assert.deepEqual(impl.decorators, []);
    assert.equal(impl.defLine, lineOf("nesting.py", "def weight_loader(self, param):"));
  });

  void test("ranges end at the last code line of the body", () => {
    const idx = index("nesting.py");
    const outer = byQualname(idx, "outer");
    assert.equal(outer.endLine, lineOf("nesting.py", "return middle, LocalClass"));
    const loader = byQualname(idx, "Loader");
    assert.equal(loader.endLine, lineOf("nesting.py", "        return param"));
  });
});

void describe("strings, comments and continuation lines", () => {
  void test("defs inside docstrings, triple-quoted and f-strings and comments are not defs", () => {
    const idx = index("strings.py");
    assert.deepEqual(
      idx.defs.map((d) => d.qualname),
      ["real_function", "continued_signature", "one_liner", "OneLineClass", "after_one_liners", "final"],
    );
  });

  void test("a signature over several lines, with colons and parens in strings and a lambda default", () => {
    const idx = index("strings.py");
    const fn = byQualname(idx, "real_function");
    assert.equal(fn.defLine, lineOf("strings.py", "def real_function("));
    assert.equal(fn.headerEndLine, lineOf("strings.py", ") -> dict[str, int]:"));
    assert.equal(fn.endLine, lineOf("strings.py", 'return {"a": 1}'));
  });

  void test("backslash continuation in a signature and in the body", () => {
    const idx = index("strings.py");
    const fn = byQualname(idx, "continued_signature");
    assert.equal(fn.headerEndLine, fn.defLine + 1);
    assert.equal(fn.endLine, fn.defLine + 2);
    const message = lineOf("strings.py", 'message = "not a def: " + \\');
    assert.deepEqual(idx.statementAt(message + 1), { startLine: message, endLine: message + 1 });
  });

  void test("one-line defs and classes end where they start, and do not swallow what follows", () => {
    const idx = index("strings.py");
    const fn = byQualname(idx, "one_liner");
    assert.equal(fn.endLine, fn.defLine);
    const cls = byQualname(idx, "OneLineClass");
    assert.equal(cls.endLine, cls.defLine);
    assert.equal(byQualname(idx, "after_one_liners").parent, undefined);
  });

  void test("PEP 701 f-strings with the same quote nested", () => {
    const idx = index("fstrings312.py");
    assert.deepEqual(
      idx.defs.map((d) => d.qualname),
      ["after_nested"],
    );
  });

  void test("code lines: statements cover continuation lines; blank, comment and string-interior lines differ", () => {
    const idx = index("strings.py");
    const list = lineOf("strings.py", "x = [");
    assert.deepEqual(idx.statementAt(list + 2), { startLine: list, endLine: list + 3 });
    assert.equal(idx.statementAt(0), undefined, "a comment line");
    assert.equal(idx.statementAt(list - 1), undefined, "a blank line");
    const doc = lineOf("strings.py", "def fake_inside_docstring():");
    assert.ok(idx.statementAt(doc), "inside the docstring statement");
    assert.equal(idx.hasTokenStart(doc), false, "but no token starts there");
    assert.equal(idx.hasTokenStart(list + 1), true);
  });
});

void describe("unicode and tabs", () => {
  void test("unicode identifiers; columns in UTF-16 code units", () => {
    const idx = index("unicode.py");
    assert.deepEqual(
      idx.defs.map((d) => d.qualname),
      ["größe", "Ünïcode", "Ünïcode.方法", "Ünïcode.after_emoji", "ñ_end"],
    );
    const method = byQualname(idx, "Ünïcode.方法");
    assert.equal(method.nameStart, 8);
    assert.equal(method.nameEnd, 10);
    // `def_count` after a `;` is an identifier, not a def.
    assert.equal(idx.findByQualname("_count"), undefined);
  });

  void test("tab indentation counts to multiples of 8, as Python's tokenizer does", () => {
    const idx = index("tabs.py");
    assert.deepEqual(
      idx.defs.map((d) => `${d.qualname}:${d.defLine}-${d.endLine}`),
      ["Tabbed:1-8", "Tabbed.method:2-5", "Tabbed.second:7-8", "after_tabs:11-12"],
    );
    assert.equal(byQualname(idx, "Tabbed.method").nameStart, "\tdef ".length);
  });

  void test("CRLF line endings give the same lines", () => {
    const text = readFileSync(path.join(DEFS, "nesting.py"), "utf8");
    const lf = indexPythonSource(text).defs;
    const crlf = indexPythonSource(text.replace(/\n/g, "\r\n")).defs;
    assert.deepEqual(crlf, lf);
  });
});

void describe("half-typed code in an unsaved buffer", () => {
  void test("an unclosed bracket does not hide the definitions after it", () => {
    const text = [
      "def typing_now(a, b",
      "",
      "def next_one():",
      "    return 1",
      "",
      "class After:",
      "    pass",
      "",
    ].join("\n");
    const idx = indexPythonSource(text);
    assert.deepEqual(
      idx.defs.map((d) => d.qualname),
      ["typing_now", "next_one", "After"],
    );
  });

  void test("an unterminated string ends at the line end", () => {
    const idx = indexPythonSource('x = "oops\ndef still_found():\n    pass\n');
    assert.deepEqual(
      idx.defs.map((d) => d.qualname),
      ["still_found"],
    );
  });

  void test("enclosingDef picks the innermost function or class", () => {
    const idx = index("nesting.py");
    const line = lineOf("nesting.py", "return a");
    assert.equal(idx.enclosingDef(line)?.qualname, "outer.<locals>.middle.<locals>.innermost");
    assert.equal(idx.enclosingDef(line, "class"), undefined);
    const inMethod = lineOf("nesting.py", "return 3");
    assert.equal(idx.enclosingDef(inMethod, "class")?.qualname, "Loader.Inner.Deeper");
    assert.equal(idx.enclosingDef(lineOf("nesting.py", "@staticmethod"))?.qualname, "Loader.make_workspace");
  });
});

function pythonFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return pythonFiles(full);
    return name.endsWith(".py") ? [full] : [];
  });
}

const AST_DUMP = `
import ast, json, sys
out = {}
for path in sys.argv[1:]:
    try:
        tree = ast.parse(open(path, encoding="utf-8").read())
    except SyntaxError:
        continue
    defs = []
    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qual = prefix + child.name
                start = min([d.lineno for d in child.decorator_list] + [child.lineno])
                defs.append([qual, start - 1, child.lineno - 1, child.end_lineno - 1])
                visit(child, qual + ("." if isinstance(child, ast.ClassDef) else ".<locals>."))
            else:
                visit(child, prefix)
    visit(tree, "")
    out[path] = defs
json.dump(out, sys.stdout)
`;

void test("agrees with CPython's ast on every fixture file it can parse (qualname, decorator, def and end lines)", () => {
  const files = pythonFiles(FIXTURES);
  const expected = JSON.parse(
    execFileSync("python3", ["-c", AST_DUMP, ...files], { encoding: "utf8" }),
  ) as Record<string, [string, number, number, number][]>;
  assert.ok(Object.keys(expected).length >= files.length - 1, "python3 parsed the fixtures");
  for (const [file, defs] of Object.entries(expected)) {
    const ours = indexPythonSource(readFileSync(file, "utf8")).defs.map((d) => [
      d.qualname,
      d.startLine,
      d.defLine,
      d.endLine,
    ]);
    assert.deepEqual(ours, defs, path.relative(FIXTURES, file));
  }
});
