// The language server in the editor's language: VS Code's language client sends
// vscode.env.language as LSP's `locale` and MemLens also puts it in its initialization options.
// With "zh-cn" every lens, inlay hint, hover heading, diagnostic and refusal is Chinese, with the
// same numbers; any other locale (Traditional Chinese included) gets English.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { afterEach, describe, test } from "node:test";
import type { CodeLens, Diagnostic } from "vscode-languageserver-protocol";
import { parseEventsText } from "../../src/protocol/reader";
import {
  FIXTURE_ROOT,
  LspTestClient,
  REPO_ROOT,
  fileUri,
  type StartOptions,
  runFolder,
} from "./lspTestClient";

const FP4_FILE = path.join(FIXTURE_ROOT, "vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py");
const RUNNER_FILE = path.join(FIXTURE_ROOT, "vllm/v1/worker/gpu_model_runner.py");
const EVENTS = parseEventsText(
  readFileSync(path.join(REPO_ROOT, "test/fixtures/events/gpt_oss_load.jsonl"), "utf8"),
).events;

function lineOf(file: string, needle: string): number {
  const index = readFileSync(file, "utf8")
    .split("\n")
    .findIndex((l) => l.includes(needle));
  assert.ok(index >= 0, `${needle} not in ${file}`);
  return index;
}

let client: LspTestClient | undefined;
afterEach(async () => {
  await client?.stop();
  client = undefined;
});

async function withRun(options: StartOptions): Promise<{ c: LspTestClient; uri: string }> {
  const c = (client = await LspTestClient.start(options));
  const result = await c.setRun({
    run: { id: "run-1", label: "gpt-oss fixture", dir: runFolder(EVENTS) },
  });
  assert.equal(result.error, undefined);
  const uri = fileUri(FP4_FILE);
  await c.open(uri, readFileSync(FP4_FILE, "utf8"));
  return { c, uri };
}

const titlesAt = (lenses: CodeLens[], line: number) =>
  lenses.filter((l) => l.range.start.line === line).map((l) => l.command?.title ?? "");
const messagesAt = (d: Diagnostic[], line: number) =>
  d.filter((x) => x.range.start.line === line).map((x) => `${x.severity}:${x.message}`);

void describe("zh-CN", () => {
  void test("LSP's locale zh-cn: lenses, inlay hint and diagnostics in Chinese, the numbers unchanged", async () => {
    const { c, uri } = await withRun({ locale: "zh-cn" });
    const lenses = await c.codeLenses(uri);
    const prepare = lineOf(FP4_FILE, "def prepare_moe_fp4_layer_for_marlin(");
    assert.deepEqual(titlesAt(lenses, prepare), [
      "rank 0 上 已分配 +4.7 GiB · 2 个 rank · +4.7 GiB · 峰值 +500.0 MiB · 48 次调用 · 2 个进程",
    ]);
    const hints = await c.inlayHints(uri);
    assert.equal(hints[0]?.label, "← 已分配 +8.3 MiB ×32");
    const diagnostics = await c.waitForDiagnostics(uri, (d) => d.length > 0);
    assert.deepEqual(messagesAt(diagnostics, prepare), [
      "2:返回之后保留 4.7 GiB（已分配，24 次调用合计，rank 0 上，2 个 rank 中最多）",
      "2:临时峰值比保留量高出 300.0 MiB（已分配，取最大的一次调用）",
    ]);
    const copy = lineOf(FP4_FILE, "qweight = weight[i].view(torch.int32).T.contiguous()");
    assert.deepEqual(messagesAt(diagnostics, copy), [
      "3:此行之后保留 8.3 MiB（已分配，32 次调用合计）",
      "3:临时峰值比保留量高出 7.9 MiB（已分配，取最大的一次调用）",
    ]);
    const hover = await c.hover(uri, prepare, 6);
    const text = (hover?.contents as { value: string }).value;
    assert.match(
      text,
      /^rank 0 上 已分配 \+4\.7 GiB · 2 个 rank · \+4\.7 GiB · 峰值 \+500\.0 MiB · 48 次调用/m,
    );
    assert.match(text, /^\| 进程 \| 调用次数 \| 保留量 \| 高于调用前的峰值 \| 最大临时占用 \| 时间 \|$/m);
    assert.match(text, /^每次调用（调用前 → 调用后 \(Δ\) · 峰值；增量来源为 已分配）：$/m);
    assert.match(
      text,
      /^\| 进程 \| 调用 \| allocated \| reserved \| device_used \| non_torch \| host_rss \| 时间 \|$/m,
    );
    assert.match(text, /1\.0 GiB → 1\.2 GiB \(\+200\.0 MiB\) · 峰值 1\.5 GiB/);
    // The hotspot's question in Chinese, from the catalog's translation.
    assert.match(
      text,
      /^\*为 Marlin 重排一个 MoE 层的 MXFP4 权重、scale 和 bias 时分配多少显存？原始权重是否被释放？\*$/m,
    );
  });

  void test("the initialization options' locale: catalog lenses, hotspot hover and refusals in Chinese", async () => {
    const c = (client = await LspTestClient.start({ initializationOptions: { locale: "zh-cn" } }));
    const uri = fileUri(RUNNER_FILE);
    await c.open(uri, readFileSync(RUNNER_FILE, "utf8"));
    const lenses = await c.codeLenses(uri);
    const profile = lineOf(RUNNER_FILE, "def profile_run(");
    assert.deepEqual(titlesAt(lenses, profile), [
      "$(pulse) 在此测量 · 虚拟前向传播的峰值有多高？vLLM 会从 KV 缓存预算中减去这个激活峰值。",
    ]);
    const hover = await c.hover(uri, profile, 6);
    const text = (hover?.contents as { value: string }).value;
    assert.match(text, /^\*\*MemLens 热点\*\* · 显存分析运行$/m);
    assert.match(text, /点击定义上方的 \*\*在此测量\*\*/);
    const blank = await c.resolveQualname({ uri, position: { line: profile - 1, character: 0 } });
    assert.equal(blank.ok, false);
    assert.match(blank.ok ? "" : blank.reason, /^第 \d+ 行/);
  });

  void test("an untrusted workspace's lens says so in Chinese", async () => {
    const c = (client = await LspTestClient.start({
      locale: "zh-cn",
      initializationOptions: { trusted: false },
    }));
    const uri = fileUri(RUNNER_FILE);
    await c.open(uri, readFileSync(RUNNER_FILE, "utf8"));
    const lenses = await c.codeLenses(uri);
    assert.match(
      titlesAt(lenses, lineOf(RUNNER_FILE, "def profile_run("))[0] ?? "",
      /^\$\(workspace-untrusted\) 在此测量（工作区不受信任） · /,
    );
  });
});

void test("other locales get English (zh-tw included: only Simplified Chinese is translated)", async () => {
  for (const locale of ["zh-tw", "de", undefined]) {
    const { c, uri } = await withRun({ locale });
    const lenses = await c.codeLenses(uri);
    assert.deepEqual(titlesAt(lenses, lineOf(FP4_FILE, "def prepare_moe_fp4_layer_for_marlin(")), [
      "+4.7 GiB allocated on rank 0 · 2 ranks · +4.7 GiB · peak +500.0 MiB · 48 calls · 2 processes",
    ]);
    await c.stop();
    client = undefined;
  }
});
