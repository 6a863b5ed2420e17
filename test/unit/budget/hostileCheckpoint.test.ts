// A model folder is read as it is found: the budget reader must give a clear error, never hang,
// never count a byte twice and never quote a file that is not what its name says.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, ftruncateSync, mkdirSync, openSync, symlinkSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { summarizeTensors } from "../../../src/budget/checkpoint";
import { ConfigError, kvModelFromConfig } from "../../../src/budget/kvcache";
import { loadModelBudget } from "../../../src/budget/modelBudget";
import {
  CheckpointError,
  LocalByteSource,
  MAX_CONFIG_BYTES,
  readCheckpoint,
  readModelConfig,
  tensorBytes,
} from "../../../src/budget/safetensors";
import { main } from "../../../src/cli/main";
import { tempDir } from "../../remote/helpers";
import { writeSparseShard } from "./sparseCheckpoint";

const source = new LocalByteSource();
const SECRET = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\n";
const CONFIG = {
  num_hidden_layers: 4,
  num_attention_heads: 8,
  num_key_value_heads: 2,
  head_dim: 64,
  sliding_window: 128,
  layer_types: ["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
};

function modelDir(prefix: string): string {
  const dir = tempDir(prefix);
  writeFileSync(path.join(dir, "config.json"), JSON.stringify(CONFIG));
  return dir;
}

async function rejectsWith(promise: Promise<unknown>, pattern: RegExp): Promise<CheckpointError> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    assert.ok(err instanceof CheckpointError, `a CheckpointError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
  return caught as CheckpointError;
}

const unix = { skip: process.platform === "win32" && "no FIFOs in the Windows file system" };

void test("config.json that is a FIFO is refused at once, not waited on", unix, async () => {
  const dir = tempDir("budget-fifo");
  execFileSync("mkfifo", [path.join(dir, "config.json")]);
  await rejectsWith(readModelConfig(source, dir), /config\.json: cannot be read \(is not a regular file/);
  // A FIFO named like a shard, too (the size of a FIFO is 0, its read would block).
  execFileSync("mkfifo", [path.join(dir, "model.safetensors")]);
  await rejectsWith(
    readCheckpoint(source, dir),
    /model\.safetensors: cannot be read \(is not a regular file/,
  );
  await assert.rejects(source.read(path.join(dir, "model.safetensors"), 0, 8), /not a regular file/);
});

void test("config.json larger than any config is refused without reading it", async () => {
  const dir = tempDir("budget-huge-config");
  const fd = openSync(path.join(dir, "config.json"), "w");
  ftruncateSync(fd, MAX_CONFIG_BYTES + 1);
  closeSync(fd);
  await rejectsWith(readModelConfig(source, dir), /is 16777217 bytes: more than a file of its kind holds/);
  writeFileSync(path.join(dir, "config.json"), "");
  await rejectsWith(readModelConfig(source, dir), /config\.json: is empty\./);
});

void test("a shard that is a directory is a clear error, also from the CLI (no internal error)", async () => {
  const dir = modelDir("budget-dir-shard");
  mkdirSync(path.join(dir, "model.safetensors"));
  await rejectsWith(
    readCheckpoint(source, dir),
    /model\.safetensors: cannot be read \(is a directory, not a file\)/,
  );
  let err = "";
  const code = await main(
    ["budget", dir],
    () => undefined,
    (text) => (err += text),
  );
  assert.equal(code, 2, err);
  assert.match(err, /^memlens: .*model\.safetensors: cannot be read \(is a directory, not a file\)/);
  assert.doesNotMatch(err, /internal error|EISDIR/);
});

void test("overlapping data_offsets are refused with both tensors named, not counted twice", async () => {
  const dir = modelDir("budget-overlap");
  const header = JSON.stringify({
    a: { dtype: "U8", shape: [100], data_offsets: [0, 100] },
    b: { dtype: "U8", shape: [100], data_offsets: [50, 150] },
    empty: { dtype: "U8", shape: [0], data_offsets: [60, 60] },
  });
  writeSparseShard(path.join(dir, "model.safetensors"), [["pad", { dtype: "U8", shape: [150] }]], {
    headerOverride: header,
  });
  await rejectsWith(
    readCheckpoint(source, dir),
    /tensors "a" \(bytes 0–100\) and "b" \(bytes 50–150\) overlap in the data/,
  );
});

void test("a tensor in two shards is counted once, with a warning", async () => {
  const dir = modelDir("budget-twice");
  writeSparseShard(path.join(dir, "model-1.safetensors"), [["w", { dtype: "BF16", shape: [1024] }]]);
  writeSparseShard(path.join(dir, "model-2.safetensors"), [
    ["w", { dtype: "BF16", shape: [1024] }],
    ["v", { dtype: "U8", shape: [10] }],
  ]);
  const inventory = await readCheckpoint(source, dir);
  assert.equal(inventory.totalBytes, 2048 + 10);
  assert.match(inventory.warnings.join("\n"), /1 tensor\(s\) appear in more than one shard \(e\.g\. "w"\)/);
});

void test("dtype names that are Object's members are not dtypes", async () => {
  for (const dtype of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
    const dir = modelDir("budget-proto");
    writeSparseShard(path.join(dir, "model.safetensors"), [["x", { dtype: "U8", shape: [4] }]], {
      headerOverride: JSON.stringify({ x: { dtype, shape: [4], data_offsets: [0, 4] } }),
    });
    await rejectsWith(readCheckpoint(source, dir), new RegExp(`tensor "x" has unknown dtype "${dtype}"`));
    assert.throws(() => tensorBytes(dtype, [4]), /unknown dtype/);
    assert.throws(() => kvModelFromConfig({ ...CONFIG, torch_dtype: dtype }), ConfigError);
    assert.throws(() => kvModelFromConfig(CONFIG, dtype), ConfigError);
  }
  const summary = summarizeTensors([{ name: "x", dtype: "__proto__", shape: [1], bytes: 7, elements: 1 }]);
  assert.equal(Object.getOwnPropertyDescriptor(summary.byDtype, "__proto__")?.value, 7);
});

void test("layer_types must name each layer once: more entries than layers is refused, not negative tokens", () => {
  assert.equal(kvModelFromConfig(CONFIG).fullLayers, 2);
  const longer = {
    ...CONFIG,
    layer_types: [...CONFIG.layer_types, "sliding_attention", "sliding_attention"],
  };
  assert.throws(() => kvModelFromConfig(longer), /layer_types has 6 entries but num_hidden_layers is 4/);
  assert.throws(() => kvModelFromConfig({ ...CONFIG, layer_types: ["full_attention"] }), /has 1 entries/);
  assert.throws(
    () => kvModelFromConfig({ ...CONFIG, layer_types: "sliding" }),
    /not a list of layer type names/,
  );
  assert.throws(() => kvModelFromConfig({ ...CONFIG, layer_types: [1, 2, 3, 4] }), /not a list/);
  // Absent layer_types keeps the old reading (every layer slides when a window is given).
  const { layer_types: _omitted, ...plain } = CONFIG;
  assert.equal(kvModelFromConfig(plain).slidingLayers, 4);
});

void test("errors never quote a file that is a link to something else (config, index, shard)", async () => {
  const dir = tempDir("budget-secret");
  const secret = path.join(tempDir("budget-secret-home"), "id_ed25519");
  writeFileSync(secret, SECRET);
  symlinkSync(secret, path.join(dir, "config.json"));
  symlinkSync(secret, path.join(dir, "model.safetensors"));
  const leaks = (message: string) => {
    const first8 = Buffer.from(SECRET).readBigUInt64LE(0).toString();
    for (const piece of ["BEGIN", "OPENSSH", "b3Bl", "-----", first8]) {
      assert.ok(!message.includes(piece), `"${piece}" in: ${message}`);
    }
  };
  leaks((await rejectsWith(readModelConfig(source, dir), /config\.json: is not valid JSON/)).message);
  leaks((await rejectsWith(readCheckpoint(source, dir), /is not a safetensors file/)).message);
  await assert.rejects(loadModelBudget(source, dir), (err: unknown) => (leaks(String(err)), true));
  symlinkSync(secret, path.join(dir, "model.safetensors.index.json"));
  leaks((await rejectsWith(readCheckpoint(source, dir), /index\.json: is not valid JSON/)).message);
});

void test("an index cannot name a shard outside the folder", async () => {
  const dir = modelDir("budget-index-escape");
  writeSparseShard(path.join(dir, "model.safetensors"), [["w", { dtype: "U8", shape: [4] }]]);
  for (const shard of ["..", ".", "../model.safetensors", ""]) {
    writeFileSync(
      path.join(dir, "model.safetensors.index.json"),
      JSON.stringify({ weight_map: { w: shard } }),
    );
    await rejectsWith(
      readCheckpoint(source, dir),
      /has no "weight_map" object of tensor name → shard file name/,
    );
  }
});
