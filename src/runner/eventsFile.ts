// The one reader of a run's events file. It streams (a vLLM load writes hundreds of MB: the text is
// never held whole) and it follows: each read parses only the bytes appended since the last one, so
// a view that follows a run going on — the language server, a debug session's run in the editor —
// costs the new events, and reading a stored run is the same reader's first read.
import { StringDecoder } from "node:string_decoder";
import { createGunzip } from "node:zlib";
import { openRegularFile } from "../files/read";
import type { ProbeEvent } from "../protocol/events";
import { EventStreamReader, type ProtocolVersionError, type ReadReport } from "../protocol/reader";

/** Bytes read at a time. */
const CHUNK_BYTES = 1 << 20;

/** events.jsonl is shorter than what was read already: it was replaced, so read it from the start. */
export class EventsFileShrankError extends Error {}

export class EventsFollower {
  private offset = 0;
  private readonly decoder = new StringDecoder("utf8");
  private readonly reader: EventStreamReader;
  /** Where the events of the read going on go. */
  private sink: ((event: ProbeEvent) => void) | undefined;
  /** A compressed file is a finished run's archive: read whole, once. */
  private readonly compressed: boolean;
  private ended = false;

  constructor(readonly file: string) {
    this.reader = new EventStreamReader((event) => this.sink?.(event));
    this.compressed = file.endsWith(".gz");
  }

  /** Lines so far that were not events. */
  get malformed(): number {
    return this.reader.malformedCount;
  }

  /** Set once a line of an unknown protocol version was read; nothing after it is read. */
  get versionError(): ProtocolVersionError | undefined {
    return this.reader.versionError;
  }

  /** What the reads so far found besides the events. */
  report(): ReadReport {
    return {
      malformed: this.reader.malformed,
      malformedCount: this.reader.malformedCount,
      duplicates: this.reader.duplicates,
      versionError: this.reader.versionError,
    };
  }

  /**
   * Hands each event written since the last read to onEvent. `final`: the writer is done, so a last
   * line without its newline is read too (a torn one counts as malformed). Rejects with the file
   * system's error (ENOENT for a missing file), a FileReadError for a file that is not a regular
   * one, or EventsFileShrankError.
   */
  async read(onEvent: (event: ProbeEvent) => void, final = false): Promise<void> {
    if (this.ended) return;
    this.sink = onEvent;
    try {
      // A FIFO or device named events.jsonl would block the open (and then the reads) for ever.
      const handle = await openRegularFile(this.file);
      try {
        if (this.compressed) await this.readCompressed(handle);
        else await this.readAppended(handle);
      } finally {
        await handle.close();
      }
      if (final || this.compressed) {
        this.ended = true;
        this.reader.push(this.decoder.end());
        this.reader.finish();
      } else {
        this.reader.flushWholeLine();
      }
    } finally {
      this.sink = undefined;
    }
  }

  private async readAppended(handle: Awaited<ReturnType<typeof openRegularFile>>): Promise<void> {
    const { size } = await handle.stat();
    if (size < this.offset) {
      throw new EventsFileShrankError(
        `${this.file} shrank from ${this.offset} to ${size} bytes while it was followed`,
      );
    }
    const buffer = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(1, size - this.offset)));
    while (this.offset < size && !this.reader.versionError) {
      const want = Math.min(buffer.length, size - this.offset);
      const { bytesRead } = await handle.read(buffer, 0, want, this.offset);
      if (bytesRead === 0) break;
      this.offset += bytesRead;
      this.reader.push(this.decoder.write(buffer.subarray(0, bytesRead)));
    }
  }

  private async readCompressed(handle: Awaited<ReturnType<typeof openRegularFile>>): Promise<void> {
    const chunks = handle
      .createReadStream({ autoClose: false })
      .pipe(createGunzip()) as AsyncIterable<Buffer>;
    for await (const chunk of chunks) {
      this.reader.push(this.decoder.write(chunk));
      if (this.reader.versionError) break;
    }
  }
}

/**
 * Reads a finished run's events file (events.jsonl, or events.jsonl.gz) whole, each event to
 * onEvent; malformed and repeated lines are counted in the report, never thrown.
 */
export async function readEventsFile(
  file: string,
  onEvent: (event: ProbeEvent) => void,
): Promise<ReadReport> {
  const follower = new EventsFollower(file);
  await follower.read(onEvent, true);
  return follower.report();
}
