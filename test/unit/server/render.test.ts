// Markdown the language server builds from events: every value from an event is text, so a
// hostile or broken event cannot add links, HTML, table cells or lines to a hover.
import assert from "node:assert/strict";
import { test } from "node:test";
import { RunModel } from "../../../src/model/runModel";
import { escapeMarkdown, markdownCode, markdownCodeBlock } from "../../../src/model/markdown";
import type { ProbeEvent } from "../../../src/protocol/events";
import { measuredHover } from "../../../src/server/render";

const HOSTILE =
  "x](command:workbench.action.terminal.new) <img src=x onerror=alert(1)> | fake |\n\n# heading";

/** A run whose one call carries hostile text in every field an event gives the hover. */
function hostileRun(): RunModel {
  const common = { v: 1, ts: 1, pid: 10, rank: HOSTILE, device: 0 };
  const scope = {
    target: "t",
    scope_id: "10:1",
    parent: null,
    call: `[call](https://evil.example)\n| 1 | 2 |`,
    depth: 0,
    before: { allocated: 0 },
  };
  // Events straight into the model, as a source that skipped the reader's checks would send them.
  return RunModel.fromEvents([
    { ...common, type: "enter", ...scope },
    {
      ...common,
      ts: 2,
      type: "exit",
      ...scope,
      after: { allocated: 1024 },
      peak: {},
      duration_ns: 5,
      raised: `<script>alert(1)</script>\n[x](command:evil)`,
    },
  ] as unknown as ProbeEvent[]);
}

void test("a hover escapes rank, call and raised from events: no link, HTML, cell or line of theirs", () => {
  const model = hostileRun();
  const summary = model.summary("t")!;
  const text = measuredHover(model, summary, { runLabel: "run [a](b)", spec: "m:f`\n`x" });
  // Every "[", "<" and "|" that came from an event is escaped; the table keeps its own pipes.
  const unescaped = (char: string) => new RegExp(`(^|[^\\\\])\\${char}`);
  for (const line of text.split("\n")) {
    assert.doesNotMatch(line, unescaped("["), line);
    assert.doesNotMatch(line, unescaped("<"), line);
    assert.doesNotMatch(line, /^#/, line);
  }
  const rows = text.split("\n").filter((line) => line.startsWith("| pid 10 "));
  assert.equal(rows.length, 2, "one per-process row and one call row, each on its own line");
  for (const row of rows) {
    const cells = row.split(/(?<!\\)\|/).length - 2;
    assert.ok(cells === 6 || cells === 4, `${cells} cells in ${row}`);
  }
  assert.match(text, /\*\*MemLens\*\* · run \\\[a\\\]\(b\) · ``m:f` `x``/);
});

void test("escapeMarkdown keeps the text as it reads and markdownCode fences any backticks", () => {
  assert.equal(escapeMarkdown("+8.3 MiB allocated · 2 calls"), "\\+8.3 MiB allocated · 2 calls");
  assert.equal(escapeMarkdown("1. not a list"), "1\\. not a list");
  assert.equal(escapeMarkdown("a_b*c`d|e<f>g[h]i~j&k\\l"), "a\\_b\\*c\\`d\\|e\\<f\\>g\\[h\\]i\\~j\\&k\\\\l");
  assert.equal(escapeMarkdown("two\nlines\r\nand\u2028more\u0007"), "two lines and more");
  assert.equal(escapeMarkdown(42), "42");
  assert.equal(markdownCode("plain"), "`plain`");
  assert.equal(markdownCode("a``b"), "```a``b```");
  assert.deepEqual(markdownCodeBlock(["x", "```", "y"], "text"), ["````text", "x", "```", "y", "````"]);
});
