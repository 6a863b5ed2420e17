import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { RunModel } from "../../../src/model/runModel";
import { knownModelBudget } from "../../../src/budget/modelBudget";
import { computeFindings, findingsInput } from "../../../src/export/findings";
import {
  exportFindings,
  LogFormatError,
  minimalEdit,
  type FindingsInput,
} from "../../../src/export/logExport";
import { lineText, runMeta, vllmRun, YES } from "../checklist/vllmRun";

const FIXTURES = path.resolve(__dirname, "../../fixtures/export");
const SEED = readFileSync(path.join(FIXTURES, "seed.md"), "utf8");
const GOLDEN = path.join(FIXTURES, "expected-day1.md");
const GiB = 1024 ** 3;

function input(date = "2025-11-26"): FindingsInput {
  const run = RunModel.fromEvents(vllmRun(YES));
  const findings = computeFindings(run, {
    meta: runMeta(YES),
    model: knownModelBudget("openai/gpt-oss-20b"),
    targetBytes: 15.5 * GiB,
    gpuMemoryUtilization: 0.98,
    lineText,
  });
  return findingsInput(findings, date);
}

const first = exportFindings(SEED, input());

void test("export after a recorded run gives the expected Day section, ticks and 状态 cells (golden)", () => {
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
    /^- \[x\] `weight\[i\]\.view\(torch\.int32\)\.T\.contiguous\(\)` 是否创建了临时副本\? — Yes: each execution allocates a new 7\.9 MiB tensor/m,
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
    /^### Day 1: 2025-11-26\n- 测量结果: MemLens run gpt-oss-20b load, 20251126-101500-000-abc123 on gpu1 \(finished\)\n/m,
  );
  assert.match(first.text, /^- 发现问题:\n {2}- Does not fit: /m);
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
  const second = exportFindings(first.text, input("2025-11-27"));
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

  const third = exportFindings(second.text, input("2025-11-28"));
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
