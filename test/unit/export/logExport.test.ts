import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { RunModel } from "../../../src/model/runModel";
import { knownModelBudget } from "../../../src/budget/modelBudget";
import { computeFindings, findingsInput } from "../../../src/export/findings";
import {
  detectLogLanguage,
  exportFindings,
  logLanguage,
  LogFormatError,
  minimalEdit,
  type FindingsInput,
} from "../../../src/export/logExport";
import type { Lang } from "../../../src/l10n/lang";
import { lineText, runMeta, vllmRun, YES } from "../checklist/vllmRun";

const FIXTURES = path.resolve(__dirname, "../../fixtures/export");
const SEED = readFileSync(path.join(FIXTURES, "seed.md"), "utf8");
/** An English investigation log: the checklist's items in their English meaning (items.json gloss). */
const LOG_EN = readFileSync(path.join(FIXTURES, "log-en.md"), "utf8");
const GOLDEN = path.join(FIXTURES, "expected-day1.md");
const GOLDEN_EN = path.join(FIXTURES, "expected-day1.en.md");
const GiB = 1024 ** 3;

/** The findings of the recorded run in `lang`, as the extension and the CLI compute them. */
function input(date = "2025-11-26", lang: Lang = "zh-CN"): FindingsInput {
  const run = RunModel.fromEvents(vllmRun(YES));
  const findings = computeFindings(run, {
    meta: runMeta(YES),
    model: knownModelBudget("openai/gpt-oss-20b"),
    targetBytes: 15.5 * GiB,
    gpuMemoryUtilization: 0.98,
    lineText,
    lang,
  });
  return findingsInput(findings, date);
}

/** Export into `log` in the language the log is written in, as "auto" does. */
function exportAuto(log: string, date = "2025-11-26") {
  return exportFindings(log, input(date, logLanguage(log, "auto", "en")));
}

const first = exportAuto(SEED);
const firstEn = exportAuto(LOG_EN);

void test("the seed's template is Chinese, an English log English; a setting overrides; too little text says nothing", () => {
  assert.equal(detectLogLanguage(SEED), "zh-CN");
  assert.equal(detectLogLanguage(LOG_EN), "en");
  assert.equal(detectLogLanguage(""), undefined);
  assert.equal(detectLogLanguage("# Notes\n"), undefined);
  // No Day template: the prose decides, code does not count.
  assert.equal(
    detectLogLanguage("# 笔记\n\n今天测量了权重加载阶段的显存峰值，以及 KV Cache 的预分配。\n"),
    "zh-CN",
  );
  assert.equal(
    detectLogLanguage(
      "# Notes\n\nMeasured the weight loading peak today, and the KV cache preallocation.\n```\n权重 权重 权重 权重 权重\n```\n",
    ),
    "en",
  );
  assert.equal(logLanguage(SEED, "en", "zh-CN"), "en");
  assert.equal(logLanguage(LOG_EN, "zh-CN", "en"), "zh-CN");
  assert.equal(logLanguage("", "auto", "zh-CN"), "zh-CN");
});

void test("export after a recorded run gives the expected Day section, ticks and 状态 cells (golden, Chinese template → Chinese)", () => {
  if (process.env.MEMLENS_UPDATE_GOLDEN === "1") writeFileSync(GOLDEN, first.text);
  assert.equal(first.text, readFileSync(GOLDEN, "utf8"));
  assert.equal(first.day, 1);
  assert.equal(first.filledTemplate, true);
  // Every answered question of 1.2 and 2.x is ticked with its answer beside it.
  assert.deepEqual(first.ticked.sort(), [
    "kv.block_bytes",
    "kv.blocks",
    "kv.gpu_memory_utilization",
    "load.contiguous_copy",
    "load.original_freed",
    "load.repack_inplace",
    "overhead.activation",
    "overhead.conversion_copy",
    "overhead.cuda_context",
    "overhead.kv_cache",
    "overhead.marlin_workspace",
    "workspace.can_share",
    "workspace.per_layer",
    "workspace.size",
  ]);
  assert.match(
    first.text,
    /^- \[x\] `weight\[i\]\.view\(torch\.int32\)\.T\.contiguous\(\)` 是否创建了临时副本\? — 是：每次执行都会分配一个新的 7\.9 MiB 张量/m,
  );
  assert.match(
    first.text,
    /^\| 共享 Marlin Workspace \| ~1 GB \| 中 \| \[ \] 实测 ≈ 57\.5 KiB \(Day 1\) \|$/m,
  );
  assert.deepEqual(first.cells.sort(), [
    "opt.cuda_graph",
    "opt.disable_buffers",
    "opt.fewer_blocks",
    "opt.inplace_conversion",
    "opt.shared_workspace",
  ]);
  assert.match(
    first.text,
    /^\| 延迟 KV Cache 分配 \| ~1-2 GB \| 中 \| \[ \] \|$/m,
    "no measured saving: cell left as it was",
  );
  assert.match(
    first.text,
    /^### Day 1: 2025-11-26\n- 测量结果: MemLens 运行 gpt-oss-20b load, 20251126-101500-000-abc123，在 gpu1 上（已完成）\n\n {2}\| 项目 \| 数值 \| 来源 \|\n/m,
  );
  assert.match(first.text, /^ {2}\| 常驻权重 \| 13\.67 GiB \| 实测：/m);
  assert.match(first.text, /^- 发现问题:\n {2}- 放不下：需要 15\.67 GiB，/m);
  // Each finding names the item in the checklist's own words.
  assert.match(first.text, /^ {2}- 每个 block 多大\? — 每层每个 16 token 的 block 为 32\.0 KiB/m);
  assert.ok(
    !/\b(Yes|No|measured|Does not fit)\b/.test(dayOf(first.text, 1)),
    "no English sentence in the Day entry",
  );
});

void test("an English log gets English findings (golden), the same items ticked and cells filled", () => {
  if (process.env.MEMLENS_UPDATE_GOLDEN === "1") writeFileSync(GOLDEN_EN, firstEn.text);
  assert.equal(firstEn.text, readFileSync(GOLDEN_EN, "utf8"));
  assert.equal(firstEn.day, 1);
  assert.equal(firstEn.filledTemplate, true);
  assert.deepEqual(firstEn.ticked.sort(), first.ticked.slice().sort());
  assert.deepEqual(firstEn.cells.sort(), first.cells.slice().sort());
  assert.match(
    firstEn.text,
    /^- \[x\] Does weight\[i\]\.view\(torch\.int32\)\.T\.contiguous\(\) create a temporary copy\? — Yes: each execution allocates a new 7\.9 MiB tensor/m,
  );
  assert.match(
    firstEn.text,
    /^\| Share the Marlin workspace \| ~1 GB \| medium \| \[ \] measured ≈ 57\.5 KiB \(Day 1\) \|$/m,
  );
  assert.match(
    firstEn.text,
    /^### Day 1: 2025-11-26\n- Measurements: MemLens run gpt-oss-20b load, 20251126-101500-000-abc123 on gpu1 \(finished\)\n\n {2}\| Item \| Value \| Source \|\n/m,
  );
  assert.match(firstEn.text, /^- Findings:\n {2}- Does not fit: 15\.67 GiB needed, /m);
  assert.ok(!/\p{Script=Han}/u.test(dayOf(firstEn.text, 1)), "no Chinese in the English Day entry");
});

/** The `### Day N` entry of a log, up to the next heading or `---`. */
function dayOf(text: string, day: number): string {
  const start = text.indexOf(`### Day ${day}:`);
  const end = text.slice(start + 1).search(/\n(### |---)/);
  return text.slice(start, end < 0 ? undefined : start + 1 + end);
}

/** Every number of a text (1,223,776 and 56.02 alike), in order of size: what must not differ between languages. */
function numbersOf(text: string): string[] {
  return (text.match(/\d[\d,]*(\.\d+)?/g) ?? []).map((x) => x.replace(/,/g, "")).sort();
}

void test("both languages write the same numbers: the Day entry, the ticks and the 状态 cells", () => {
  // The table's source column is cut at 160 characters, which cuts the two languages at different words.
  const dayNumbers = (text: string) =>
    numbersOf(
      dayOf(text, 1)
        .split("\n")
        .map((l) => (l.startsWith("  | ") ? l.split(" | ").slice(0, 3).join(" | ") : l))
        .join("\n"),
    );
  assert.deepEqual(dayNumbers(firstEn.text), dayNumbers(first.text));
  const ticked = (text: string) =>
    text
      .split("\n")
      .filter((l) => l.startsWith("- [x] "))
      .map((l) => l.slice(l.indexOf(" — ")));
  assert.deepEqual(numbersOf(ticked(firstEn.text).join("\n")), numbersOf(ticked(first.text).join("\n")));
  const cells = (text: string) =>
    text
      .split("\n")
      .filter((l) => /\(Day 1\) \|$/.test(l))
      .map((l) => l.slice(l.lastIndexOf("[ ]")));
  assert.deepEqual(numbersOf(cells(firstEn.text).join("\n")), numbersOf(cells(first.text).join("\n")));
});

void test("the language can be forced: English findings into the Chinese template, Chinese into an English log", () => {
  const en = exportFindings(SEED, input("2025-11-26", "en"));
  assert.match(en.text, /^### Day 1: 2025-11-26\n- Measurements: MemLens run /m);
  assert.match(en.text, /^- \[x\] 权重转换临时副本 — Yes: converting one MoE layer needs up to 233\.5 MiB/m);
  assert.match(
    en.text,
    /^\| 共享 Marlin Workspace \| ~1 GB \| 中 \| \[ \] measured ≈ 57\.5 KiB \(Day 1\) \|$/m,
  );
  assert.ok(
    en.text.includes("### Day 2: ____\n- 测量结果:\n- 发现问题:\n"),
    "the next blank day stays as the template wrote it",
  );
  const zh = exportFindings(LOG_EN, input("2025-11-26", "zh-CN"));
  assert.match(zh.text, /^### Day 1: 2025-11-26\n- 测量结果: MemLens 运行 /m);
  assert.match(zh.text, /^- \[x\] Temporary copies while converting the weights — 是：/m);
  assert.match(
    zh.text,
    /^\| Share the Marlin workspace \| ~1 GB \| medium \| \[ \] 实测 ≈ 57\.5 KiB \(Day 1\) \|$/m,
  );
});

/** The seed's lines with the lines an export may change marked; the rest must come back unchanged. */
function assertOnlyExpectedChanges(before: string, after: string, dayHeading: string): void {
  const a = before.split("\n");
  const b = after.split("\n");
  const dayStart = b.indexOf(dayHeading);
  assert.ok(dayStart >= 0, `${dayHeading} missing`);
  let dayEnd = dayStart + 1;
  while (dayEnd < b.length && !/^(### |---)/.test(b[dayEnd]!)) dayEnd++;
  const beforeDay = b.slice(0, dayStart);
  const afterDay = b.slice(dayEnd);
  // The lines before the Day entry: one for one with the seed, except ticks and 状态 cells.
  for (let i = 0; i < beforeDay.length; i++) {
    const was = a[i]!;
    const now = beforeDay[i]!;
    if (was === now) continue;
    const tick = was.startsWith("- [ ] ") && now.startsWith(`- [x] ${was.slice(6)} — `);
    const cell =
      /^\| .* \| \[ \] \|$/.test(was) &&
      now.startsWith(was.slice(0, -5)) &&
      /\[ \] 实测 .*\(Day \d+\) \|$/.test(now);
    assert.ok(tick || cell, `line ${i + 1} changed unexpectedly:\n  was: ${was}\n  now: ${now}`);
  }
  // Everything after the Day entry is the seed's tail, byte for byte.
  assert.deepEqual(afterDay, a.slice(a.length - afterDay.length));
}

void test("nothing else in the file changes", () => {
  assertOnlyExpectedChanges(SEED, first.text, "### Day 1: 2025-11-26");
  // The Day 1 template's three lines are gone; Day 2's blank template is still there.
  assert.ok(!first.text.includes("### Day 1: ____"));
  assert.ok(first.text.includes("### Day 2: ____\n- 测量结果:\n- 发现问题:\n"));
});

void test("exporting twice gives Day 2 (the blank template), a third time Day 3 before the closing ---", () => {
  const second = exportAuto(first.text, "2025-11-27");
  assert.equal(second.day, 2);
  assert.equal(second.filledTemplate, true);
  assert.deepEqual(second.ticked, [], "ticked items stay as they are");
  assert.ok(
    second.text.startsWith(first.text.slice(0, first.text.indexOf("## 4."))),
    "sections 1–3 unchanged",
  );
  assert.match(second.text, /\[ \] 实测 ≈ 57\.5 KiB \(Day 2\)/);
  assert.ok(second.text.includes("### Day 1: 2025-11-26"));
  assert.ok(second.text.includes("### Day 2: 2025-11-27\n- 测量结果: "));
  assert.ok(!second.text.includes("____"));

  const third = exportAuto(second.text, "2025-11-28");
  assert.equal(third.day, 3);
  assert.equal(third.filledTemplate, false);
  const day3 = third.text.indexOf("### Day 3: 2025-11-28");
  const closing = third.text.indexOf("\n---\n", day3);
  const section7 = third.text.indexOf("## 7. 参考资料");
  assert.ok(day3 > third.text.indexOf("### Day 2: 2025-11-27"));
  assert.ok(closing > day3 && closing < section7, "Day 3 sits inside section 6, before its ---");
  assert.ok(third.text.endsWith(SEED.slice(SEED.indexOf("\n---\n\n## 7."))), "section 7 unchanged");
  // Day 2's block is untouched by the Day 3 export.
  const day2Block = second.text.slice(
    second.text.indexOf("### Day 2"),
    second.text.indexOf("\n---\n\n## 7."),
  );
  assert.ok(third.text.includes(day2Block));
});

void test("CRLF files stay CRLF, byte for byte outside the edits", () => {
  const crlf = SEED.replace(/\n/g, "\r\n");
  const out = exportFindings(crlf, input()).text;
  assert.ok(!/[^\r]\n/.test(out), "no bare LF");
  assert.equal(out, first.text.replace(/\n/g, "\r\n"));
});

void test("a log without section 6 or a final newline gets the Day appended; bad dates are refused", () => {
  const bare = "# My notes\n\n- [ ] 每个 block 多大?";
  const out = exportFindings(bare, input());
  assert.ok(out.text.startsWith("# My notes\n\n- [x] 每个 block 多大? — "));
  assert.match(out.text, /\n\n## 6\. 日志记录\n\n### Day 1: 2025-11-26\n/);
  assert.ok(out.text.endsWith("\n"));
  assert.throws(() => exportFindings(SEED, { ...input(), date: "26.11.2025" }), LogFormatError);
});

void test("minimalEdit turns the old text into the new with one replacement", () => {
  const edit = minimalEdit(SEED, first.text);
  const applied = SEED.slice(0, edit.start) + edit.text + SEED.slice(edit.end);
  assert.equal(applied, first.text);
  assert.ok(edit.start > 0 && edit.end < SEED.length, "the untouched head and tail are not in the edit");
  const crlfBefore = "a\r\nb\r\n";
  const crlfAfter = "a\r\nX\r\nb\r\n";
  const e2 = minimalEdit(crlfBefore, crlfAfter);
  assert.equal(crlfBefore.slice(0, e2.start) + e2.text + crlfBefore.slice(e2.end), crlfAfter);
});
