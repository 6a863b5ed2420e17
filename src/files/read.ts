// Reading files a workspace, a run folder or a model folder names: only regular files, small ones
// whole and with a bound, and errors that name the file but never quote what is in it (the file
// may be a link to a secret).
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";

/** Python sources (the largest of vLLM are a few hundred kB): a file past this is not one to index. */
export const MAX_SOURCE_BYTES = 64 * 1024 * 1024;

export class FileReadError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
    readonly code?: string,
  ) {
    super(`${file} ${problem}`);
    this.name = "FileReadError";
  }
}

function kindOf(stats: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean }): string {
  if (stats.isDirectory()) return "a directory";
  if (stats.isFIFO()) return "a named pipe (FIFO)";
  if (stats.isSocket()) return "a socket";
  return "a device or other special file";
}

/**
 * Opens a regular file for reading. O_NONBLOCK keeps a FIFO from blocking the open until some
 * writer comes (for a regular file it changes nothing); the type is then checked on the open
 * handle, so a file swapped after a stat cannot slip through.
 */
export async function openRegularFile(file: string): Promise<FileHandle> {
  // Windows has no O_NONBLOCK (nor FIFOs in the file system).
  const flags = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);
  const handle = await open(file, flags);
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) {
      throw new FileReadError(
        file,
        `is ${kindOf(stats)}, not a regular file.`,
        stats.isDirectory() ? "EISDIR" : "ENOTREG",
      );
    }
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** A regular file of at most maxBytes, whole. Rejects with a FileReadError or the system's error. */
export async function readSmallFile(file: string, maxBytes: number): Promise<Buffer> {
  const handle = await openRegularFile(file);
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) {
      throw new FileReadError(
        file,
        `is ${size} bytes; more than the ${maxBytes} bytes expected of it.`,
        "EFBIG",
      );
    }
    // Read to the end rather than to the size of the stat: the file may have grown since.
    const chunks: Buffer[] = [];
    let done = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(Math.max(size - done, 4095) + 1, maxBytes + 1 - done, 1 << 20));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, done);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      done += bytesRead;
      if (done > maxBytes) {
        throw new FileReadError(file, `is more than the ${maxBytes} bytes expected of it.`, "EFBIG");
      }
    }
    return Buffer.concat(chunks, done);
  } finally {
    await handle.close();
  }
}

/**
 * readSmallTextFile for callers that cannot wait (line texts looked up while a view is built):
 * the same checks, so a FIFO or /dev/zero behind a source path cannot hang or fill memory.
 */
export function readSmallTextFileSync(file: string, maxBytes: number): string {
  const fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) {
      throw new FileReadError(file, `is ${kindOf(stats)}, not a regular file.`, "ENOTREG");
    }
    if (stats.size > maxBytes) {
      throw new FileReadError(
        file,
        `is ${stats.size} bytes; more than the ${maxBytes} bytes expected of it.`,
        "EFBIG",
      );
    }
    const buffer = Buffer.alloc(stats.size);
    let done = 0;
    while (done < buffer.length) {
      const read = readSync(fd, buffer, done, buffer.length - done, done);
      if (read === 0) break;
      done += read;
    }
    const text = buffer.subarray(0, done).toString("utf8");
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } finally {
    closeSync(fd);
  }
}

export async function readSmallTextFile(file: string, maxBytes: number): Promise<string> {
  const text = (await readSmallFile(file, maxBytes)).toString("utf8");
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * JSON.parse without its message: V8's quotes the start of the text ('Unexpected token …,
 * "root:x:0:0:…" is not valid JSON'). Only the position is kept.
 */
export function parseJson(text: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    const message = error instanceof Error ? error.message : "";
    const at = /at position (\d+)(?: \(line (\d+) column (\d+)\))?/.exec(message);
    if (/Unexpected end of JSON input/.test(message))
      return { ok: false, reason: "not valid JSON (it ends early)" };
    if (!at) return { ok: false, reason: "not valid JSON" };
    const where = at[2] !== undefined ? `line ${at[2]} column ${at[3]}` : `position ${at[1]}`;
    return { ok: false, reason: `not valid JSON (at ${where})` };
  }
}

/** The message of an error from reading a file, without anything read from it. */
export function readErrorText(error: unknown): string {
  if (error instanceof FileReadError) return error.problem;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT") return "does not exist.";
  if (code === "EACCES" || code === "EPERM") return "cannot be read (permission denied).";
  if (code === "EISDIR") return "is a directory, not a regular file.";
  if (code === "ELOOP") return "is a loop of symbolic links.";
  return `cannot be read (${code ?? (error instanceof Error ? error.message : String(error))}).`;
}

/**
 * Lines of local source files by path and 1-based line, for matching line probes by their text
 * (the checklist, reports). Paths come from runs, so only a regular file of source size is read;
 * each file once.
 */
export function sourceLineReader(): (file: string, line: number) => string | undefined {
  const cache = new Map<string, string[] | null>();
  return (file, line) => {
    let lines = cache.get(file);
    if (lines === undefined) {
      try {
        lines = readSmallTextFileSync(file, MAX_SOURCE_BYTES).split(/\r?\n/);
      } catch {
        lines = null;
      }
      cache.set(file, lines);
    }
    return lines?.[line - 1];
  };
}
