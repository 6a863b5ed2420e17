// Reads a run's events.jsonl while the runner is still writing it: each read parses only the
// bytes appended since the last one, so following a run from its folder (a debug session) costs
// the new events, not the whole file again every time.
import { StringDecoder } from "node:string_decoder";
import { openRegularFile } from "../files/read";
import type { ProbeEvent } from "../protocol/events";
import { EventStreamReader, type ProtocolVersionError } from "../protocol/reader";

const CHUNK_BYTES = 4 * 1024 * 1024;

/** events.jsonl is shorter than what was read already: it was replaced, so read it from the start. */
export class EventsFileShrankError extends Error {}

export class EventsFileTail {
  private offset = 0;
  private readonly decoder = new StringDecoder("utf8");
  /** Text after the last newline read: a line the writer may not have finished. */
  private partial = "";
  private readonly reader: EventStreamReader;
  private batch: ProbeEvent[] = [];
  /** Where events go during a read given a callback (else they are collected in batch). */
  private sink: ((event: ProbeEvent) => void) | undefined;

  constructor(readonly file: string) {
    this.reader = new EventStreamReader((event) => (this.sink ? this.sink(event) : this.batch.push(event)));
  }

  /** Lines so far that were not events. */
  get malformed(): number {
    return this.reader.malformedCount;
  }

  /** Lines so far skipped as repeats of an earlier line. */
  get duplicates(): number {
    return this.reader.duplicates;
  }

  /** Set once a line of an unknown protocol version was read; nothing after it is read. */
  get versionError(): ProtocolVersionError | undefined {
    return this.reader.versionError;
  }

  /**
   * The events of the lines written since the last read; with onEvent each goes there as it is
   * read instead (the first read of a long run is millions of events: not held in a list too).
   * Rejects with the file system's error.
   */
  async read(onEvent?: (event: ProbeEvent) => void): Promise<ProbeEvent[]> {
    this.sink = onEvent;
    try {
      await this.readAppended();
    } finally {
      this.sink = undefined;
    }
    const events = this.batch;
    this.batch = [];
    return events;
  }

  private async readAppended(): Promise<void> {
    // A FIFO or device named events.jsonl would block the open (and then the reads) for ever.
    const handle = await openRegularFile(this.file);
    try {
      const { size } = await handle.stat();
      if (size < this.offset) {
        throw new EventsFileShrankError(
          `${this.file} shrank from ${this.offset} to ${size} bytes while it was followed`,
        );
      }
      const buffer = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(1, size - this.offset)));
      while (this.offset < size) {
        const want = Math.min(buffer.length, size - this.offset);
        const { bytesRead } = await handle.read(buffer, 0, want, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        this.pushText(this.decoder.write(buffer.subarray(0, bytesRead)));
      }
    } finally {
      await handle.close();
    }
    // A file written without a final newline still has a whole event at its end. An unfinished
    // line is never a valid JSON object on its own, so it waits for the rest.
    if (isJsonObject(this.partial)) {
      this.reader.push(`${this.partial}\n`);
      this.partial = "";
    }
  }

  private pushText(text: string): void {
    const combined = this.partial + text;
    const end = combined.lastIndexOf("\n");
    if (end < 0) {
      this.partial = combined;
      return;
    }
    this.reader.push(combined.slice(0, end + 1));
    this.partial = combined.slice(end + 1);
  }
}

function isJsonObject(text: string): boolean {
  if (!text.trimStart().startsWith("{")) return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
