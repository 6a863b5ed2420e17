// Reads safetensors headers (never tensor data) from local files or through an injected byte
// source (ssh to the GPU host), and checks them so a broken checkpoint gives a clear error.
import { readdir, stat } from "node:fs/promises";
import * as path from "node:path";
import { FileReadError, openRegularFile, parseJson } from "../files/read";

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

  /** Only regular files have a size worth reading: a FIFO would block the read, a directory fail it. */
  async size(filePath: string): Promise<number> {
    const stats = await stat(filePath);
    if (!stats.isFile()) {
      throw new FileReadError(
        filePath,
        stats.isDirectory()
          ? "is a directory, not a file"
          : "is not a regular file (a pipe, socket or device)",
      );
    }
    return stats.size;
  }

  async read(filePath: string, offset: number, length: number): Promise<Uint8Array> {
    const handle = await openRegularFile(filePath);
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

/** Bits per element of each safetensors dtype (F4/F6 are sub-byte). Look up with dtypeBits. */
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

/**
 * Bits per element of a dtype named in a file; undefined for one safetensors does not define.
 * Own properties only: "__proto__" or "constructor" from a header must not find Object's.
 */
export function dtypeBits(dtype: string): number | undefined {
  return Object.hasOwn(DTYPE_BITS, dtype) ? DTYPE_BITS[dtype] : undefined;
}

/** safetensors refuses headers over 100 MB; anything bigger means the file is not one. */
const MAX_HEADER_BYTES = 100_000_000;
/** A model's config.json is a few kB; this much is not one (and is never read whole). */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/** A name read from a file, for a message: quoted, control characters escaped, and short. */
function quoted(name: string): string {
  return JSON.stringify(name.length > 120 ? `${name.slice(0, 120)}…` : name);
}

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
  const bits = dtypeBits(dtype);
  if (bits === undefined) throw new Error(`unknown dtype ${quoted(dtype)}`);
  return Math.ceil((elementCount(shape) * bits) / 8);
}

/** A read through the source, with a failure (EISDIR, ENOENT, a lost connection) as a CheckpointError. */
async function readBytes(
  source: ByteSource,
  file: string,
  offset: number,
  length: number,
  what: string,
): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await source.read(file, offset, length);
  } catch (err) {
    throw new CheckpointError(file, `could not be read (${errorText(err)}).`);
  }
  if (bytes.length < length) throw new CheckpointError(file, `could not read its ${what}.`);
  return bytes;
}

async function sizeOf(source: ByteSource, file: string, advice?: string): Promise<number> {
  try {
    return await source.size(file);
  } catch (err) {
    throw new CheckpointError(file, `cannot be read (${errorText(err)}).`, advice);
  }
}

/** Reads and validates one file's header: 8-byte little-endian length, then that much JSON. */
export async function readSafetensorsHeader(source: ByteSource, file: string): Promise<SafetensorsHeader> {
  const fileSize = await sizeOf(source, file);
  if (fileSize < 8) {
    throw new CheckpointError(
      file,
      `is ${fileSize} bytes: too short for a safetensors file (it starts with an 8-byte header length).`,
      "The file is truncated: download it again.",
    );
  }
  const lengthBytes = await readBytes(source, file, 0, 8, "first 8 bytes");
  const headerLength64 = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength64 > BigInt(MAX_HEADER_BYTES)) {
    // The number is not given: it is the file's first 8 bytes, and the file may be any file.
    throw new CheckpointError(
      file,
      `is not a safetensors file: its first 8 bytes are not a header length safetensors allows (at most ${MAX_HEADER_BYTES}).`,
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
  const headerBytes = await readBytes(source, file, 8, headerLength, `${headerLength}-byte header`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  } catch {
    throw new CheckpointError(file, "has a malformed header: not valid UTF-8.");
  }
  const parsed = parseJson(text);
  if (!parsed.ok) throw new CheckpointError(file, `has a malformed header: ${parsed.reason}.`);
  if (typeof parsed.value !== "object" || parsed.value === null || Array.isArray(parsed.value)) {
    throw new CheckpointError(file, "has a malformed header: the JSON is not an object of tensors.");
  }
  const dataBytes = fileSize - 8 - headerLength;
  const tensors: TensorEntry[] = [];
  const spans: { name: string; begin: number; end: number }[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(parsed.value as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw === "object" && raw !== null) metadata = raw as Record<string, string>;
      continue;
    }
    const entry = validateEntry(file, name, raw, dataBytes);
    if (entry.end > entry.begin) spans.push({ name, begin: entry.begin, end: entry.end });
    tensors.push({
      name,
      dtype: entry.dtype,
      shape: entry.shape,
      bytes: entry.end - entry.begin,
      elements: elementCount(entry.shape),
      file,
    });
  }
  // Two tensors on the same bytes would be counted twice (and loading would alias them).
  spans.sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < spans.length; i++) {
    const [before, after] = [spans[i - 1]!, spans[i]!];
    if (after.begin < before.end) {
      throw new CheckpointError(
        file,
        `has a malformed header: tensors ${quoted(before.name)} (bytes ${before.begin}–${before.end}) and ${quoted(after.name)} (bytes ${after.begin}–${after.end}) overlap in the data.`,
        "The file is corrupt: download it again.",
      );
    }
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
    new CheckpointError(file, `has a malformed header: tensor ${quoted(name)} ${problem}.`);
  if (typeof raw !== "object" || raw === null) throw bad("is not an object");
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== "string") throw bad("has no dtype");
  if (dtypeBits(dtype) === undefined) {
    throw bad(`has unknown dtype ${quoted(dtype)} (known: ${Object.keys(DTYPE_BITS).join(", ")})`);
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
      `is truncated: tensor ${quoted(name)} ends at byte ${end} of the data, but the file holds only ${dataBytes} data bytes after its header.`,
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
  const seen = new Map<string, string>();
  const repeated: string[] = [];
  for (const shard of shardNames) {
    const header = await readSafetensorsHeader(source, source.join(dir, shard));
    inventory.files.push({
      file: header.file,
      size: header.fileSize,
      headerLength: header.headerLength,
      tensors: header.tensors.length,
    });
    for (const t of header.tensors) {
      // A tensor in two shards is loaded once (the index names one of them): counted once.
      if (seen.has(t.name)) {
        repeated.push(t.name);
        continue;
      }
      seen.set(t.name, shard);
      inventory.tensors.push(t);
      inventory.totalBytes += t.bytes;
    }
  }
  if (repeated.length > 0) {
    warnings.push(
      `${repeated.length} tensor(s) appear in more than one shard (e.g. ${quoted(repeated[0]!)}); each is counted once.`,
    );
  }
  if (weightMap && index) {
    const byName = new Map(inventory.tensors.map((t) => [t.name, t]));
    for (const [name, shard] of Object.entries(weightMap)) {
      const found = byName.get(name);
      if (!found) {
        throw new CheckpointError(
          source.join(dir, shard),
          `does not hold tensor ${quoted(name)}, which ${INDEX_NAME} places there.`,
          "The shard and the index come from different downloads: fetch them again.",
        );
      }
    }
    const unlisted = inventory.tensors.filter((t) => !Object.hasOwn(weightMap, t.name)).length;
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

/** A small JSON file of a model folder, whole: bounded, and never quoted in an error. */
async function readJsonFile(
  source: ByteSource,
  file: string,
  maxBytes: number,
  advice?: string,
): Promise<unknown> {
  const size = await sizeOf(source, file, advice);
  if (size > maxBytes) {
    throw new CheckpointError(
      file,
      `is ${size} bytes: more than a file of its kind holds (at most ${maxBytes}).`,
    );
  }
  if (size === 0) throw new CheckpointError(file, "is empty.", advice);
  const bytes = await readBytes(source, file, 0, size, `${size} bytes`);
  // TextDecoder drops a byte order mark.
  const parsed = parseJson(new TextDecoder().decode(bytes));
  if (!parsed.ok) throw new CheckpointError(file, `is ${parsed.reason}.`);
  return parsed.value;
}

async function readIndex(
  source: ByteSource,
  index: string,
): Promise<{ weightMap: Record<string, string>; totalSize?: number }> {
  const parsed = await readJsonFile(source, index, MAX_HEADER_BYTES);
  const weightMap = (parsed as { weight_map?: unknown } | null)?.weight_map;
  // Shard names are file names in the folder: nothing that leads out of it ("..", "a/b").
  const fileName = (v: unknown) =>
    typeof v === "string" && v !== "" && v !== "." && v !== ".." && !v.includes("/") && !v.includes("\\");
  if (
    typeof weightMap !== "object" ||
    weightMap === null ||
    Array.isArray(weightMap) ||
    !Object.values(weightMap).every(fileName)
  ) {
    throw new CheckpointError(index, 'has no "weight_map" object of tensor name → shard file name.');
  }
  const totalSize = (parsed as { metadata?: { total_size?: unknown } }).metadata?.total_size;
  return {
    weightMap: weightMap as Record<string, string>,
    totalSize: typeof totalSize === "number" ? totalSize : undefined,
  };
}

/** Reads and parses `config.json` of a model folder (a regular file of at most MAX_CONFIG_BYTES). */
export async function readModelConfig(source: ByteSource, dir: string): Promise<Record<string, unknown>> {
  const file = source.join(dir, "config.json");
  const parsed = await readJsonFile(source, file, MAX_CONFIG_BYTES, "A model folder needs its config.json.");
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new CheckpointError(file, "is not a JSON object.");
  }
  return parsed as Record<string, unknown>;
}

function errorText(err: unknown): string {
  if (err instanceof FileReadError) return err.problem;
  return err instanceof Error ? err.message : String(err);
}
