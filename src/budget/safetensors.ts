// Reads safetensors headers (never tensor data) from local files or through an injected byte
// source (ssh to the GPU host), and checks them so a broken checkpoint gives a clear error.
import { open, readdir, stat } from "node:fs/promises";
import * as path from "node:path";

/** Where checkpoint bytes come from: the local disk, or the remote host through the runner. */
export interface ByteSource {
  /** Human name of where the files live ("local", "ssh gpu-box"), for error messages. */
  readonly where: string;
  size(filePath: string): Promise<number>;
  read(filePath: string, offset: number, length: number): Promise<Uint8Array>;
  /** File names (not paths) in a folder. */
  list(dir: string): Promise<string[]>;
  join(dir: string, name: string): string;
}

export class LocalByteSource implements ByteSource {
  readonly where = "local";

  async size(filePath: string): Promise<number> {
    return (await stat(filePath)).size;
  }

  async read(filePath: string, offset: number, length: number): Promise<Uint8Array> {
    const handle = await open(filePath, "r");
    try {
      const buffer = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buffer, done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return buffer.subarray(0, done);
    } finally {
      await handle.close();
    }
  }

  async list(dir: string): Promise<string[]> {
    return (await readdir(dir)).sort();
  }

  join(dir: string, name: string): string {
    return path.join(dir, name);
  }
}

export class CheckpointError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
    readonly advice?: string,
  ) {
    super(`${file}: ${problem}${advice ? ` ${advice}` : ""}`);
    this.name = "CheckpointError";
  }
}

/** Bits per element of each safetensors dtype (F4/F6 are sub-byte). */
export const DTYPE_BITS: Readonly<Record<string, number>> = {
  BOOL: 8,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  I64: 64,
  U64: 64,
  F64: 64,
};

/** safetensors refuses headers over 100 MB; anything bigger means the file is not one. */
const MAX_HEADER_BYTES = 100_000_000;

export interface TensorEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Bytes of this tensor's data in the file. */
  bytes: number;
  /** Number of elements (product of the shape). */
  elements: number;
  file: string;
}

export interface SafetensorsHeader {
  file: string;
  fileSize: number;
  headerLength: number;
  metadata: Record<string, string>;
  tensors: TensorEntry[];
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function tensorBytes(dtype: string, shape: readonly number[]): number {
  const bits = DTYPE_BITS[dtype];
  if (bits === undefined) throw new Error(`unknown dtype ${dtype}`);
  return Math.ceil((elementCount(shape) * bits) / 8);
}

/** Reads and validates one file's header: 8-byte little-endian length, then that much JSON. */
export async function readSafetensorsHeader(source: ByteSource, file: string): Promise<SafetensorsHeader> {
  let fileSize: number;
  try {
    fileSize = await source.size(file);
  } catch (err) {
    throw new CheckpointError(file, `cannot be read (${errorText(err)}).`);
  }
  if (fileSize < 8) {
    throw new CheckpointError(
      file,
      `is ${fileSize} bytes: too short for a safetensors file (it starts with an 8-byte header length).`,
      "The file is truncated: download it again.",
    );
  }
  const lengthBytes = await source.read(file, 0, 8);
  if (lengthBytes.length < 8) throw new CheckpointError(file, "could not read its first 8 bytes.");
  const headerLength64 = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength64 > BigInt(MAX_HEADER_BYTES)) {
    throw new CheckpointError(
      file,
      `is not a safetensors file: its first 8 bytes give a header length of ${headerLength64} bytes (safetensors allows at most ${MAX_HEADER_BYTES}).`,
    );
  }
  const headerLength = Number(headerLength64);
  if (headerLength < 2)
    throw new CheckpointError(file, `has a header length of ${headerLength} bytes: too short for JSON.`);
  if (8 + headerLength > fileSize) {
    throw new CheckpointError(
      file,
      `is truncated: its header says ${headerLength} bytes of JSON follow, but the file is only ${fileSize} bytes.`,
      "Download it again.",
    );
  }
  const headerBytes = await source.read(file, 8, headerLength);
  if (headerBytes.length < headerLength)
    throw new CheckpointError(file, `could not read its ${headerLength}-byte header.`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch (err) {
    throw new CheckpointError(file, `has a malformed header: not valid JSON (${errorText(err)}).`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new CheckpointError(file, "has a malformed header: the JSON is not an object of tensors.");
  }
  const dataBytes = fileSize - 8 - headerLength;
  const tensors: TensorEntry[] = [];
  let metadata: Record<string, string> = {};
  let dataEnd = 0;
  for (const [name, raw] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw === "object" && raw !== null) metadata = raw as Record<string, string>;
      continue;
    }
    const entry = validateEntry(file, name, raw, dataBytes);
    dataEnd = Math.max(dataEnd, entry.end);
    tensors.push({
      name,
      dtype: entry.dtype,
      shape: entry.shape,
      bytes: entry.end - entry.begin,
      elements: elementCount(entry.shape),
      file,
    });
  }
  return { file, fileSize, headerLength, metadata, tensors };
}

function validateEntry(
  file: string,
  name: string,
  raw: unknown,
  dataBytes: number,
): { dtype: string; shape: number[]; begin: number; end: number } {
  const bad = (problem: string): CheckpointError =>
    new CheckpointError(file, `has a malformed header: tensor "${name}" ${problem}.`);
  if (typeof raw !== "object" || raw === null) throw bad("is not an object");
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== "string") throw bad("has no dtype");
  if (DTYPE_BITS[dtype] === undefined) {
    throw bad(`has unknown dtype "${dtype}" (known: ${Object.keys(DTYPE_BITS).join(", ")})`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw bad("has a shape that is not a list of non-negative integers");
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
  ) {
    throw bad("has data_offsets that are not two non-negative integers");
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw bad(`has data_offsets [${begin}, ${end}] that end before they begin`);
  const expected = tensorBytes(dtype, shape as number[]);
  if (end - begin !== expected) {
    throw bad(`spans ${end - begin} bytes but ${dtype} ${JSON.stringify(shape)} needs ${expected}`);
  }
  if (end > dataBytes) {
    throw new CheckpointError(
      file,
      `is truncated: tensor "${name}" ends at byte ${end} of the data, but the file holds only ${dataBytes} data bytes after its header.`,
      "Download it again.",
    );
  }
  return { dtype, shape: shape as number[], begin, end };
}

export interface CheckpointInventory {
  dir: string;
  where: string;
  /** The index file when the checkpoint is sharded. */
  index?: string;
  files: { file: string; size: number; headerLength: number; tensors: number }[];
  tensors: TensorEntry[];
  totalBytes: number;
  /** Things that look wrong but do not stop the count (e.g. index total_size disagrees). */
  warnings: string[];
}

const INDEX_NAME = "model.safetensors.index.json";

/** Reads every header of a checkpoint folder: sharded (index.json weight_map) or single-file. */
export async function readCheckpoint(source: ByteSource, dir: string): Promise<CheckpointInventory> {
  let names: string[];
  try {
    names = await source.list(dir);
  } catch (err) {
    throw new CheckpointError(dir, `cannot be listed (${errorText(err)}).`, "Check the model folder path.");
  }
  const warnings: string[] = [];
  let shardNames: string[];
  let index: string | undefined;
  let weightMap: Record<string, string> | undefined;
  let indexTotal: number | undefined;
  if (names.includes(INDEX_NAME)) {
    index = source.join(dir, INDEX_NAME);
    const parsedIndex = await readIndex(source, index);
    weightMap = parsedIndex.weightMap;
    indexTotal = parsedIndex.totalSize;
    shardNames = [...new Set(Object.values(weightMap))].sort();
    const missing = shardNames.filter((s) => !names.includes(s));
    if (missing.length > 0) {
      const counts = missing.map(
        (s) => `${s} (${Object.values(weightMap!).filter((v) => v === s).length} tensors)`,
      );
      throw new CheckpointError(
        index,
        `names shard${missing.length > 1 ? "s" : ""} missing from ${dir}: ${counts.join(", ")}.`,
        "The download is incomplete: fetch the missing shard files.",
      );
    }
  } else {
    shardNames = names.filter((n) => n.endsWith(".safetensors"));
    if (shardNames.length === 0) {
      throw new CheckpointError(
        dir,
        "holds no .safetensors file and no model.safetensors.index.json.",
        "Point MemLens at the folder with config.json and the weights (a Hugging Face snapshot folder).",
      );
    }
  }
  const inventory: CheckpointInventory = {
    dir,
    where: source.where,
    index,
    files: [],
    tensors: [],
    totalBytes: 0,
    warnings,
  };
  for (const shard of shardNames) {
    const header = await readSafetensorsHeader(source, source.join(dir, shard));
    inventory.files.push({
      file: header.file,
      size: header.fileSize,
      headerLength: header.headerLength,
      tensors: header.tensors.length,
    });
    for (const t of header.tensors) {
      inventory.tensors.push(t);
      inventory.totalBytes += t.bytes;
    }
  }
  if (weightMap && index) {
    const byName = new Map(inventory.tensors.map((t) => [t.name, t]));
    for (const [name, shard] of Object.entries(weightMap)) {
      const found = byName.get(name);
      if (!found) {
        throw new CheckpointError(
          source.join(dir, shard),
          `does not hold tensor "${name}", which ${INDEX_NAME} places there.`,
          "The shard and the index come from different downloads: fetch them again.",
        );
      }
    }
    const unlisted = inventory.tensors.filter((t) => weightMap[t.name] === undefined).length;
    if (unlisted > 0)
      warnings.push(`${unlisted} tensors in the shards are not in ${INDEX_NAME}'s weight_map (counted).`);
    if (indexTotal !== undefined && indexTotal !== inventory.totalBytes) {
      warnings.push(
        `${INDEX_NAME} says total_size ${indexTotal} bytes; the shard headers add up to ${inventory.totalBytes}.`,
      );
    }
  }
  return inventory;
}

async function readIndex(
  source: ByteSource,
  index: string,
): Promise<{ weightMap: Record<string, string>; totalSize?: number }> {
  const size = await source.size(index);
  if (size > MAX_HEADER_BYTES)
    throw new CheckpointError(index, `is ${size} bytes: too big for an index file.`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(await source.read(index, 0, size)));
  } catch (err) {
    throw new CheckpointError(index, `is not valid JSON (${errorText(err)}).`);
  }
  const weightMap = (parsed as { weight_map?: unknown } | null)?.weight_map;
  if (
    typeof weightMap !== "object" ||
    weightMap === null ||
    !Object.values(weightMap).every((v) => typeof v === "string" && !v.includes("/") && !v.includes("\\"))
  ) {
    throw new CheckpointError(index, 'has no "weight_map" object of tensor name → shard file name.');
  }
  const totalSize = (parsed as { metadata?: { total_size?: unknown } }).metadata?.total_size;
  return {
    weightMap: weightMap as Record<string, string>,
    totalSize: typeof totalSize === "number" ? totalSize : undefined,
  };
}

/** Reads and parses `config.json` of a model folder. */
export async function readModelConfig(source: ByteSource, dir: string): Promise<Record<string, unknown>> {
  const file = source.join(dir, "config.json");
  let size: number;
  try {
    size = await source.size(file);
  } catch (err) {
    throw new CheckpointError(
      file,
      `cannot be read (${errorText(err)}).`,
      "A model folder needs its config.json.",
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(await source.read(file, 0, size)));
  } catch (err) {
    throw new CheckpointError(file, `is not valid JSON (${errorText(err)}).`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new CheckpointError(file, "is not a JSON object.");
  }
  return parsed as Record<string, unknown>;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
