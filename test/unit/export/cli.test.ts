// The built dist/cli.js as a subprocess: report, budget, export, and its errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import * as path from "node:path";
import { runMeta, vllmRun, YES } from "../checklist/vllmRun";
import { readGptOssInventory, tempDir, writeSparseCheckpoint, REPO_ROOT } from "../budget/sparseCheckpoint";

const CLI = path.join(REPO_ROOT, "dist", "cli.js");
const SEED = path.join(REPO_ROOT, "test", "fixtures", "export", "seed.md");
const LOG_EN = path.join(REPO_ROOT, "test", "fixtures", "export", "log-en.md");

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let work: string;
let runDir: string;

before(() => {
  // A test file that runs alone builds what it tests; the full suite builds first.
  if (!existsSync(CLI))
    execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: REPO_ROOT, stdio: "inherit" });
  work = tempDir("cli");
  runDir = path.join(work, "runs", "20251126-101500-000-abc123");
  mkdirSync(runDir, { recursive: true });
  const meta = runMeta({ ...YES, checklistLineId: true });
  writeFileSync(path.join(runDir, "meta.json"), JSON.stringify(meta, null, 2));
  writeFileSync(path.join(runDir, "plan.json"), JSON.stringify({ version: 1, targets: [] }));
  writeFileSync(
    path.join(runDir, "events.jsonl"),
    vllmRun({ ...YES, checklistLineId: true })
      .map((e) => JSON.stringify(e))
      .join("\n") + "\n",
  );
});

after(() => rmSync(work, { recursive: true, force: true }));

void test("--help and no arguments", async () => {
  const help = await cli(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /memlens report RUN_DIR/);
  assert.match(help.stdout, /memlens budget MODEL/);
  assert.match(help.stdout, /memlens export RUN_DIR --log FILE/);
  const none = await cli([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no command given/);
});

void test("budget of sparse gpt-oss-20b shards, markdown and JSON", async (t) => {
  const { config, inventory } = readGptOssInventory();
  const dir = tempDir("cli-model");
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeSparseCheckpoint(dir, config, inventory, 3);
  const md = await cli(["budget", dir, "--target-gib", "15.5", "--gpu-memory-utilization", "0.98"]);
  assert.equal(md.code, 0, md.stderr);
  assert.match(md.stdout, /\| Checkpoint, all tensors \| 12\.82 GiB \(13,761,264,768 B\)/);
  assert.match(md.stdout, /\(3 files\)/);
  const json = await cli(["budget", dir, "--json"]);
  assert.equal(json.code, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as {
    totalBytes: number;
    byDtype: Record<string, number>;
    parameters: number;
    marlinEstimate: { residentBytes: number };
    fits: boolean;
  };
  assert.equal(parsed.totalBytes, 13_761_264_768);
  assert.deepEqual(parsed.byDtype, { BF16: 3_608_919_168, U8: 10_152_345_600 });
  assert.equal(parsed.parameters, 20_914_757_184);
  assert.equal(parsed.marlinEstimate.residentBytes, 14_679_227_520);
  assert.equal(typeof parsed.fits, "boolean");

  // With a run beside it: measured rows join the theory.
  const withRun = await cli(["budget", dir, "--run", runDir]);
  assert.equal(withRun.code, 0, withRun.stderr);
  assert.match(withRun.stdout, /\| Marlin workspaces \| {2}\| 60\.00 KiB \(61,440 B\) \| measured \|/);
});

void test("budget errors: missing shard and bad numbers exit 2 with what to do", async (t) => {
  const { config, inventory } = readGptOssInventory();
  const dir = tempDir("cli-bad");
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { shardNames } = writeSparseCheckpoint(dir, config, inventory, 2);
  rmSync(path.join(dir, shardNames[0]!));
  const missing = await cli(["budget", dir]);
  assert.equal(missing.code, 2);
  assert.match(
    missing.stderr,
    /model\.safetensors\.index\.json: names shard missing .*model-00000-of-00001\.safetensors .*fetch the missing shard/,
  );
  const badUtil = await cli(["budget", dir, "--gpu-memory-utilization", "1.5"]);
  assert.equal(badUtil.code, 2);
  assert.match(badUtil.stderr, /--gpu-memory-utilization 1\.5: expected a number in \(0, 1\]/);
  const nowhere = await cli(["budget", path.join(dir, "nope")]);
  assert.equal(nowhere.code, 2);
  assert.match(
    nowhere.stderr,
    /neither a folder here nor in the local Hugging Face cache nor a model MemLens knows/,
  );
  const unknownFlag = await cli(["budget", dir, "--frobnicate"]);
  assert.equal(unknownFlag.code, 2);
  assert.match(unknownFlag.stderr, /Unknown option '--frobnicate'/);
});

void test("report: markdown and JSON of a run", async () => {
  const md = await cli([
    "report",
    runDir,
    "--model",
    "openai/gpt-oss-20b",
    "--target-gib",
    "15.5",
    "--gpu-memory-utilization",
    "0.98",
  ]);
  assert.equal(md.code, 0, md.stderr);
  assert.match(md.stdout, /^# MemLens run gpt-oss-20b load, 20251126-101500-000-abc123 on gpu1 \(finished\)/);
  assert.match(md.stdout, /\*\*Does not fit: /);
  assert.match(
    md.stdout,
    /- \[x\] `weight\[i\]\.view\(torch\.int32\)\.T\.contiguous\(\)` 是否创建了临时副本\? — .*\n {2}- Yes: each execution allocates a new 7\.9 MiB tensor/,
  );
  assert.match(
    md.stdout,
    /code: \/opt\/vllm\/vllm\/model_executor\/layers\/quantization\/utils\/marlin_utils_fp4\.py:298/,
  );
  const json = await cli(["report", runDir, "--json"]);
  assert.equal(json.code, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as {
    checklist: { id: string; state: string; verdict?: string }[];
    fits: boolean;
  };
  const byId = new Map(parsed.checklist.map((c) => [c.id, c]));
  assert.equal(byId.get("load.repack_inplace")?.verdict, "no");
  assert.equal(byId.get("workspace.per_layer")?.verdict, "yes");
  // Without --model the originals question needs the config.
  assert.equal(byId.get("load.original_freed")?.state, "needs_run");
  assert.equal(parsed.checklist.length, 21);
});

void test("report errors: not a run folder, wrong protocol version", async (t) => {
  const notRun = await cli(["report", work]);
  assert.equal(notRun.code, 2);
  assert.match(notRun.stderr, /has no events\.jsonl: not a MemLens run folder/);
  const v2 = path.join(work, "v2run");
  mkdirSync(v2);
  t.after(() => rmSync(v2, { recursive: true, force: true }));
  writeFileSync(path.join(v2, "events.jsonl"), '{"v":2,"type":"start","ts":1,"pid":1}\n');
  const refused = await cli(["report", v2]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /protocol v2 from the probe; this MemLens reads v1/);
});

void test("export writes Day 1, then Day 2, into a copy of the seed log", async () => {
  const log = path.join(work, "log.md");
  copyFileSync(SEED, log);
  const first = await cli([
    "export",
    runDir,
    "--log",
    log,
    "--date",
    "2025-11-26",
    "--model",
    "openai/gpt-oss-20b",
  ]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(
    first.stdout,
    /Wrote Day 1 \(2025-11-26, zh-CN\) to .*log\.md: 14 item\(s\) ticked, 5 状态 cell\(s\) filled/,
  );
  const second = await cli(["export", runDir, "--log", log, "--date", "2025-11-27"]);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /Wrote Day 2 \(2025-11-27, zh-CN\)/);
  const text = readFileSync(log, "utf8");
  // The seed's template is Chinese: the findings are too.
  assert.ok(text.includes("### Day 1: 2025-11-26\n- 测量结果: MemLens 运行 "));
  assert.ok(text.includes("### Day 2: 2025-11-27\n- 测量结果: "));
  assert.match(text, /^- \[x\] 每个 block 多大\? — 每层每个 16 token 的 block 为 /m);
  const badDate = await cli(["export", runDir, "--log", log, "--date", "yesterday"]);
  assert.equal(badDate.code, 2);
  assert.match(badDate.stderr, /--date yesterday: expected YYYY-MM-DD/);
  const noLog = await cli(["export", runDir]);
  assert.equal(noLog.code, 2);
  assert.match(noLog.stderr, /export needs --log FILE/);
  assert.equal(readFileSync(log, "utf8"), text, "failed exports leave the file alone");
});

void test("export --lang: auto follows the log (English log → English), zh-CN and en force it, others are refused", async () => {
  const en = path.join(work, "log-en.md");
  copyFileSync(LOG_EN, en);
  const auto = await cli(["export", runDir, "--log", en, "--date", "2025-11-26"]);
  assert.equal(auto.code, 0, auto.stderr);
  assert.match(auto.stdout, /Wrote Day 1 \(2025-11-26, en\)/);
  const enText = readFileSync(en, "utf8");
  assert.ok(enText.includes("### Day 1: 2025-11-26\n- Measurements: MemLens run "));
  assert.match(enText, /^- \[x\] How big is each block\? — 768\.0 KiB per block across all layers/m);

  const zh = path.join(work, "log-en-zh.md");
  copyFileSync(LOG_EN, zh);
  const forced = await cli(["export", runDir, "--log", zh, "--date", "2025-11-26", "--lang", "zh-CN"]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stdout, /\(2025-11-26, zh-CN\)/);
  assert.match(
    readFileSync(zh, "utf8"),
    /^- \[x\] How big is each block\? — 所有层合计每个 block 768\.0 KiB/m,
  );

  const seedEn = path.join(work, "seed-en.md");
  copyFileSync(SEED, seedEn);
  const english = await cli(["export", runDir, "--log", seedEn, "--date", "2025-11-26", "--lang", "en"]);
  assert.equal(english.code, 0, english.stderr);
  assert.match(
    readFileSync(seedEn, "utf8"),
    /^- \[x\] 每个 block 多大\? — 768\.0 KiB per block across all layers/m,
  );

  const bad = await cli(["export", runDir, "--log", seedEn, "--lang", "fr"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--lang fr: expected zh-CN, en or auto/);
});

void test("report --lang zh-CN: headings, answers and the verdict in Chinese, the same numbers", async () => {
  const args = [
    "report",
    runDir,
    "--model",
    "openai/gpt-oss-20b",
    "--target-gib",
    "15.5",
    "--gpu-memory-utilization",
    "0.98",
  ];
  const zh = await cli([...args, "--lang", "zh-CN"]);
  assert.equal(zh.code, 0, zh.stderr);
  assert.match(
    zh.stdout,
    /^# MemLens 运行 gpt-oss-20b load, 20251126-101500-000-abc123，在 gpu1 上（已完成）/,
  );
  assert.match(zh.stdout, /\*\*放不下：需要 15\.67 GiB，/);
  assert.match(zh.stdout, /^## 调查清单$/m);
  assert.match(zh.stdout, /^ {2}- 否：每次调用都会分配一个新的 7\.9 MiB 输出张量（1,536 次调用）/m);
  const en = await cli(args);
  assert.match(en.stdout, /\*\*Does not fit: 15\.67 GiB needed, /);
});
