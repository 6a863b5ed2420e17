// The run folder's files the extension appends to while a run goes on (events.jsonl mirrored from
// a host, stderr.log). A write that fails (a full disk, a file size limit) is counted, never
// thrown: the run and its views go on, and the record says what it lacks.
import { closeSync, openSync, writeSync } from "node:fs";
import * as path from "node:path";

function errorText(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

/** Appends with a synchronous write per batch, so a crash of this process loses nothing written before it. */
export class LineFile {
  private fd: number | undefined;
  /** The last write stopped inside a line: the next starts on a new line, so the torn part stays one malformed line. */
  private torn = false;
  /** The first error, in words (undefined while every write went through). */
  error: string | undefined;
  /** Lines (or chunks, for append) that are not in the file. */
  lost = 0;

  constructor(
    readonly file: string,
    /** For tests: the write call (node's writeSync by default). */
    private readonly write: (fd: number, buffer: Buffer, offset: number) => number = (fd, buffer, offset) =>
      writeSync(fd, buffer, offset),
  ) {
    try {
      this.fd = openSync(file, "a");
    } catch (error) {
      this.error = `${path.basename(file)} could not be opened (${errorText(error)})`;
    }
  }

  /** Writes the bytes; how many went through before an error (all of them when it returns normally). */
  private writeAll(bytes: Buffer): { done: number; error?: unknown } {
    let done = 0;
    try {
      while (done < bytes.length) {
        const written = this.write(this.fd!, bytes, done);
        if (!(written > 0)) throw new Error("the file system took no more bytes");
        done += written;
      }
      return { done };
    } catch (error) {
      this.error ??= `${path.basename(this.file)} could not be written (${errorText(error)})`;
      return { done, error };
    }
  }

  /** Appends whole lines (each given without its newline); returns how many are wholly in the file. */
  appendLines(lines: readonly string[]): number {
    if (lines.length === 0) return 0;
    if (this.fd === undefined) {
      this.lost += lines.length;
      return 0;
    }
    const prefix = this.torn ? "\n" : "";
    const encoded = lines.map((line) => Buffer.from(`${line}\n`, "utf8"));
    const { done, error } = this.writeAll(Buffer.concat([Buffer.from(prefix), ...encoded]));
    if (error === undefined) {
      this.torn = false;
      return lines.length;
    }
    let whole = 0;
    let end = prefix.length;
    if (done >= end) {
      for (const bytes of encoded) {
        if (end + bytes.length > done) break;
        end += bytes.length;
        whole++;
      }
      this.torn = done > end;
    }
    this.lost += lines.length - whole;
    return whole;
  }

  /** Appends text as it is (stderr chunks); false when some of it is not in the file. */
  append(text: string): boolean {
    if (text === "") return true;
    if (this.fd === undefined) {
      this.lost++;
      return false;
    }
    const { error } = this.writeAll(Buffer.from(text, "utf8"));
    if (error !== undefined) this.lost++;
    return error === undefined;
  }

  close(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch (error) {
      // NFS and some others report a failed write only at close.
      this.error ??= `${path.basename(this.file)} could not be closed (${errorText(error)})`;
    }
    this.fd = undefined;
  }
}
