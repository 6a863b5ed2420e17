import { test } from "node:test";
import assert from "node:assert/strict";
import { statSync, writeFileSync, unlinkSync, rmSync } from "node:fs";
import * as path from "node:path";
import { CheckpointError, LocalByteSource, readCheckpoint } from "../../../src/budget/safetensors";
import { knownModelBudget, loadModelBudget } from "../../../src/budget/modelBudget";
import { kvBytesForTokens, kvModelFromConfig, kvTokensForBytes } from "../../../src/budget/kvcache";
import { moduleGroup } from "../../../src/budget/checkpoint";
import { readGptOssInventory, tempDir, writeSparseCheckpoint, writeSparseShard } from "./sparseCheckpoint";

const source = new LocalByteSource();
const { config, inventory } = readGptOssInventory();

void test("gpt-oss-20b from sparse shards: exact bytes, dtype split, parameters", async (t) => {
  const dir = tempDir("budget");
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { shardNames } = writeSparseCheckpoint(dir, config, inventory, 3);
  // The shards are full size on paper and (almost) nothing on disk.
  let apparent = 0;
  let onDisk = 0;
  for (const name of shardNames) {
    const st = statSync(path.join(dir, name));
    apparent += st.size;
    onDisk += st.blocks * 512;
  }
  assert.ok(apparent > 13_761_264_768, `apparent size ${apparent}`);
  assert.ok(onDisk < 4 * 1024 * 1024, `sparse shards use ${onDisk} bytes on disk`);

  const budget = await loadModelBudget(source, dir);
  const s = budget.summary;
  assert.equal(s.totalBytes, 13_761_264_768);
  assert.equal(s.tensorCount, 459);
  assert.deepEqual(s.byDtype, { BF16: 3_608_919_168, U8: 10_152_345_600 });
  assert.equal(s.mxfp4.blocksBytes + s.mxfp4.scalesBytes, 10_152_345_600);
  assert.equal(s.mxfp4.scalesBytes, 597_196_800);
  assert.equal(s.parameters, 20_914_757_184);
  assert.equal(s.unquantizedBytes, 3_608_919_168);
  assert.equal(
    Object.values(s.byGroup).reduce((a, b) => a + b, 0),
    s.totalBytes,
    "every byte lands in exactly one group",
  );
  // Experts: MXFP4 blocks + scales + their BF16 biases (32 × (5760 + 2880) × 2 B × 24 layers).
  assert.equal(s.byGroup.experts, 10_152_345_600 + 13_271_040);
  assert.equal(s.byGroup.embeddings, 2 * 201_088 * 2880 * 2);
  assert.equal(s.byGroup.router, 24 * (32 * 2880 + 32) * 2);
  assert.equal(s.byGroup.other, 0);
  assert.equal(budget.inventory?.files.length, 3);
  assert.deepEqual(budget.warnings, []);
  assert.match(budget.origin, /safetensors headers of .* \(3 files\)/);

  // Labelled estimates.
  assert.equal(budget.marlin?.residentBytes, 14_679_227_520);
  assert.equal(budget.marlin?.paddedHidden, 3072);
  assert.equal(budget.marlin?.paddedIntermediate, 2944);
  assert.ok(budget.marlin && Math.abs(budget.marlin.residentBytes / 1024 ** 3 - 13.67) < 0.005);
  assert.equal(budget.theory.bytes, 11.26e9);
  assert.ok(budget.theory.whyWrong.some((l) => l.includes("NVFP4") && l.includes("per 32")));
  assert.ok(budget.theory.whyWrong.some((l) => l.includes("BF16")));
});

void test("the bundled gpt-oss-20b inventory gives the same budget as the headers", async (t) => {
  const dir = tempDir("budget-known");
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeSparseCheckpoint(dir, config, inventory, 2);
  const fromFiles = await loadModelBudget(source, dir);
  const known = knownModelBudget("openai/gpt-oss-20b");
  assert.ok(known);
  assert.deepEqual(known.summary, fromFiles.summary);
  assert.equal(known.marlin?.residentBytes, fromFiles.marlin?.residentBytes);
  assert.match(known.origin, /bundled tensor inventory/);
  assert.equal(knownModelBudget("someone/else"), undefined);
});

void test("KV cache per token from config.json: full vs sliding layers", () => {
  const kv = kvModelFromConfig(config);
  assert.equal(kv.bytesPerTokenPerLayer, 2048);
  assert.equal(kv.fullLayers, 12);
  assert.equal(kv.slidingLayers, 12);
  assert.equal(kv.slidingWindow, 128);
  assert.equal(kv.fullBytesPerToken, 24_576);
  assert.equal(kv.slidingBytesPerToken, 24_576);
  assert.equal(kv.dtype, "bfloat16");
  // Sliding layers stop growing at the window.
  assert.equal(kvBytesForTokens(kv, 32), 32 * 49_152);
  assert.equal(kvBytesForTokens(kv, 1000), 1000 * 24_576 + 128 * 24_576);
  assert.equal(kvTokensForBytes(kv, kvBytesForTokens(kv, 1000)), 1000);
  assert.equal(kvTokensForBytes(kv, kvBytesForTokens(kv, 100)), 100);
  assert.equal(kvTokensForBytes(kv, -5), 0);
  assert.equal(kvModelFromConfig(config, "fp8").fullBytesPerToken, 12_288);
  assert.throws(() => kvModelFromConfig({ hidden_size: 8 }), /num_hidden_layers/);
  assert.throws(() => kvModelFromConfig(config, "int3"), /KV cache dtype "int3"/);
});

void test("module groups", () => {
  assert.equal(moduleGroup("model.layers.3.mlp.experts.down_proj_blocks"), "experts");
  assert.equal(moduleGroup("model.layers.3.self_attn.sinks"), "attention");
  assert.equal(moduleGroup("model.layers.3.mlp.router.bias"), "router");
  assert.equal(moduleGroup("model.layers.3.mlp.gate.weight"), "router");
  assert.equal(moduleGroup("model.embed_tokens.weight"), "embeddings");
  assert.equal(moduleGroup("lm_head.weight"), "embeddings");
  assert.equal(moduleGroup("model.norm.weight"), "norms");
  assert.equal(moduleGroup("model.layers.0.post_attention_layernorm.weight"), "norms");
  assert.equal(moduleGroup("model.layers.0.mlp.gate_proj.weight"), "other");
});

void test("single-file checkpoint", async (t) => {
  const dir = tempDir("budget-single");
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeSparseShard(path.join(dir, "model.safetensors"), [
    ["a.weight", { dtype: "F32", shape: [4, 4] }],
    ["b.weight", { dtype: "BF16", shape: [3] }],
  ]);
  const inv = await readCheckpoint(source, dir);
  assert.equal(inv.totalBytes, 64 + 6);
  assert.equal(inv.index, undefined);
});

async function expectError(dir: string, pattern: RegExp, fileName: string): Promise<void> {
  await assert.rejects(readCheckpoint(source, dir), (err: unknown) => {
    assert.ok(err instanceof CheckpointError, `got ${String(err)}`);
    assert.match(err.message, pattern);
    assert.ok(err.file.endsWith(fileName), `error names ${err.file}, expected ${fileName}`);
    return true;
  });
}

void test("malformed header: not JSON, bad dtype, bad offsets, absurd length", async (t) => {
  const dir = tempDir("budget-bad");
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "model.safetensors");
  writeSparseShard(file, [["x", { dtype: "U8", shape: [10] }]], {
    headerOverride: '{"x": {"dtype": "U8", "shape": [10',
  });
  await expectError(dir, /malformed header: not valid JSON/, "model.safetensors");

  writeSparseShard(file, [["x", { dtype: "U8", shape: [10] }]], {
    headerOverride: '{"x": {"dtype": "Q3", "shape": [10], "data_offsets": [0, 10]}}',
  });
  await expectError(dir, /tensor "x" has unknown dtype "Q3"/, "model.safetensors");

  writeSparseShard(file, [["x", { dtype: "U8", shape: [10] }]], {
    headerOverride: '{"x": {"dtype": "BF16", "shape": [10], "data_offsets": [0, 10]}}',
  });
  await expectError(dir, /spans 10 bytes but BF16 \[10\] needs 20/, "model.safetensors");

  const huge = Buffer.alloc(16);
  huge.writeBigUInt64LE(2n ** 40n);
  writeFileSync(file, huge);
  await expectError(
    dir,
    /not a safetensors file: its first 8 bytes are not a header length safetensors allows/,
    "model.safetensors",
  );

  writeFileSync(file, Buffer.from([1, 2, 3]));
  await expectError(dir, /is 3 bytes: too short/, "model.safetensors");
});

void test("truncated files: header cut, data cut", async (t) => {
  const dir = tempDir("budget-trunc");
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "model.safetensors");
  writeSparseShard(file, [["w", { dtype: "BF16", shape: [1024, 1024] }]], { truncateBy: 4096 });
  await expectError(
    dir,
    /is truncated: tensor "w" ends at byte 2097152 .* only 2093056 data bytes/,
    "model.safetensors",
  );

  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(5000n);
  writeFileSync(file, Buffer.concat([length, Buffer.from('{"w": ')]));
  await expectError(
    dir,
    /is truncated: its header says 5000 bytes of JSON follow, but the file is only 14 bytes/,
    "model.safetensors",
  );
});

void test("missing shard and a shard without its tensors name the files", async (t) => {
  const dir = tempDir("budget-missing");
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { shardNames } = writeSparseCheckpoint(dir, config, inventory, 3);
  unlinkSync(path.join(dir, shardNames[1]!));
  await expectError(
    dir,
    new RegExp(`missing from .*: ${shardNames[1]!.replace(/\./g, "\\.")} \\(153 tensors\\)`),
    "model.safetensors.index.json",
  );

  writeSparseShard(path.join(dir, shardNames[1]!), [["not.the.right.tensor", { dtype: "U8", shape: [1] }]]);
  await expectError(
    dir,
    /does not hold tensor ".*", which model\.safetensors\.index\.json places there/,
    shardNames[1]!,
  );
});

void test("an empty folder and an index with total_size that disagrees", async (t) => {
  const dir = tempDir("budget-empty");
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await expectError(dir, /holds no \.safetensors file/, path.basename(dir));
  writeSparseCheckpoint(dir, config, { ...inventory, total_size: 5 }, 1);
  const inv = await readCheckpoint(source, dir);
  assert.equal(inv.totalBytes, 13_761_264_768);
  assert.match(inv.warnings.join("\n"), /total_size 5 bytes; the shard headers add up to 13761264768/);
});
