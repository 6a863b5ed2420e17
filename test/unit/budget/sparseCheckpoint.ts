// Writes real-format safetensors shards from a tensor inventory as sparse files: the header is
// written, then the file is extended to its full size without writing data (no disk used).
import {
  mkdtempSync,
  openSync,
  closeSync,
  writeSync,
  ftruncateSync,
  writeFileSync,
  readFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { tensorBytes } from "../../../src/budget/safetensors";

export const REPO_ROOT = path.resolve(__dirname, "../../..");
/** The published config.json and tensor inventory, kept in the repo so a bare clone runs the tests. */
export const GPT_OSS_DIR = path.join(REPO_ROOT, "test/fixtures/gpt-oss-20b");

export interface Inventory {
  total_size: number;
  tensors: Record<string, { dtype: string; shape: number[] }>;
}

export function readGptOssInventory(): { config: Record<string, unknown>; inventory: Inventory } {
  return {
    config: JSON.parse(readFileSync(path.join(GPT_OSS_DIR, "config.json"), "utf8")) as Record<
      string,
      unknown
    >,
    inventory: JSON.parse(readFileSync(path.join(GPT_OSS_DIR, "tensors.json"), "utf8")) as Inventory,
  };
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `memlens-${prefix}-`));
}

/** Writes one shard; returns its file path. `headerOverride` replaces the JSON text (for malformed cases). */
export function writeSparseShard(
  file: string,
  tensors: [string, { dtype: string; shape: number[] }][],
  options: { headerOverride?: string; truncateBy?: number } = {},
): { file: string; dataBytes: number } {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = tensorBytes(t.dtype, t.shape);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = options.headerOverride ?? JSON.stringify(header);
  // safetensors pads the header with spaces to a multiple of 8.
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, "utf8");
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerBytes.length));
  const fd = openSync(file, "w");
  try {
    writeSync(fd, length);
    writeSync(fd, headerBytes);
    ftruncateSync(fd, 8 + headerBytes.length + offset - (options.truncateBy ?? 0));
  } finally {
    closeSync(fd);
  }
  return { file, dataBytes: offset };
}

/** A sharded checkpoint folder like the published one: config.json, index.json and `shards` shard files. */
export function writeSparseCheckpoint(
  dir: string,
  config: Record<string, unknown>,
  inventory: Inventory,
  shards = 3,
): { shardNames: string[]; weightMap: Record<string, string> } {
  const entries = Object.entries(inventory.tensors);
  const per = Math.ceil(entries.length / shards);
  const shardNames: string[] = [];
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < shards; i++) {
    const name = `model-${String(i).padStart(5, "0")}-of-${String(shards - 1).padStart(5, "0")}.safetensors`;
    const slice = entries.slice(i * per, (i + 1) * per);
    writeSparseShard(path.join(dir, name), slice);
    for (const [tensor] of slice) weightMap[tensor] = name;
    shardNames.push(name);
  }
  writeFileSync(
    path.join(dir, "model.safetensors.index.json"),
    JSON.stringify({ metadata: { total_size: inventory.total_size }, weight_map: weightMap }, null, 2),
  );
  writeFileSync(path.join(dir, "config.json"), JSON.stringify(config, null, 2));
  return { shardNames, weightMap };
}
