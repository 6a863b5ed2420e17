// The one reader of a run's events file. It streams (a vLLM load writes hundreds of MB: the text is
// never held whole) and it follows: each read parses only the bytes appended since the last one, so
// a view that follows a run going on — the language server, a debug session's run in the editor —
// costs the new events, and reading a stored run is the same reader's first read.
import { createGunzip } from "node:zlib";
import { openRegularFile } from "../files/read";
import type { ProbeEvent } from "../protocol/events";
import { sampleEventOf, type SampleScan } from "../protocol/fastLine";
import { EventStreamReader, type ProtocolVersionError, type ReadReport } from "../protocol/reader";

/** Bytes read at a time. */
const CHUNK_BYTES = 1 << 20;
/** Bytes inflated at a time from events.jsonl.gz. */
const GUNZIP_CHUNK_BYTES = 256 * 1024;

/** events.jsonl is shorter than what was read already: it was replaced, so read it from the start. */
export class EventsFileShrankError extends Error {}

export class EventsFollower {
  private offset = 0;
  private readonly reader: EventStreamReader;
  /** Where the events of the read going on go. */
  private sink: ((event: ProbeEvent) => void) | undefined;
  /** Where the samples of the read going on go as fields, if its reader takes them so. */
  private sampleSink: ((sample: SampleScan) => void) | undefined;
  /** A compressed file is a finished run's archive: read whole, once. */
  private readonly compressed: boolean;
  private ended = false;

  constructor(
    readonly file: string,
    options: { fastPath?: boolean } = {},
  ) {
    this.reader = new EventStreamReader((event) => this.sink?.(event), {
      fastPath: options.fastPath,
      onSample: (sample) => {
        if (this.sampleSink) this.sampleSink(sample);
        else this.sink?.(sampleEventOf(sample));
      },
    });
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
   * one, or EventsFileShrankError. `onSample`: the sample lines the fast scan read, as fields
   * (RunModel.addSample) instead of objects to onEvent.
   */
  async read(
    onEvent: (event: ProbeEvent) => void,
    final = false,
    onSample?: (sample: SampleScan) => void,
  ): Promise<void> {
    if (this.ended) return;
    this.sink = onEvent;
    this.sampleSink = onSample;
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
        this.reader.finishBytes();
      } else {
        this.reader.flushWholeLine();
      }
    } finally {
      this.sink = undefined;
      this.sampleSink = undefined;
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
      this.reader.pushBytes(buffer.subarray(0, bytesRead));
    }
  }

  private async readCompressed(handle: Awaited<ReturnType<typeof openRegularFile>>): Promise<void> {
    const chunks = handle
      .createReadStream({ autoClose: false, highWaterMark: CHUNK_BYTES })
      // zlib's default of 16 KiB output chunks costs a 180 MB archive most of a second in handoffs.
      .pipe(createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES })) as AsyncIterable<Buffer>;
    for await (const chunk of chunks) {
      this.reader.pushBytes(chunk);
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
  options: { onSample?: (sample: SampleScan) => void; fastPath?: boolean } = {},
): Promise<ReadReport> {
  const follower = new EventsFollower(file, { fastPath: options.fastPath });
  await follower.read(onEvent, true, options.onSample);
  return follower.report();
}
