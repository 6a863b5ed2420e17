import { createHash } from "node:crypto";
import { StringDecoder } from "node:string_decoder";
// zod's v4 API: it checks an event in about a microsecond, where v3 took twenty (a vLLM load
// writes millions of sample events).
import { z } from "zod/v4";
import {
  PROTOCOL_VERSION,
  type ByeEvent,
  type EndEvent,
  type EnterEvent,
  type ErrorEvent,
  type EventType,
  type ExitEvent,
  type FactEvent,
  type HelloEvent,
  type LogEvent,
  type NoteEvent,
  type OomEvent,
  type PausedEvent,
  type ProbeEvent,
  type ResumedEvent,
  type SampleEvent,
  type SitesEvent,
  type StartEvent,
  type TargetNotFoundEvent,
  type TargetResolvedEvent,
} from "./events";
import { newSampleScan, sampleEventOf, scanSampleLine, type SampleScan } from "./fastLine";

export class ProtocolVersionError extends Error {
  constructor(readonly seen: number) {
    super(
      `protocol v${seen} from the probe; this MemLens reads v${PROTOCOL_VERSION}. ` +
        `Update MemLens or use a probe of the same release.`,
    );
    this.name = "ProtocolVersionError";
  }
}

export type ParsedLine =
  | { ok: true; event: ProbeEvent }
  | { ok: false; reason: string }
  | { ok: "version"; error: ProtocolVersionError };

// Every field a reader of the run model, the budget or the views uses is checked here, so that
// code downstream can trust the types of events.ts. Objects stay loose: the protocol lets newer
// probes add fields, and the runner adds its own (host_file).
const num = z.number();
const str = z.string();
const strings = z.array(str);
// The protocol sends null for the file and line of callables without Python code; the types say
// absent, which is what every reader already handles.
const nullishStr = str.nullish().transform((value) => value ?? undefined);
const nullishNum = num.nullish().transform((value) => value ?? undefined);

const readings = z.looseObject({
  allocated: num.optional(),
  reserved: num.optional(),
  requested: num.optional(),
  device_used: num.optional(),
  device_total: num.optional(),
  non_torch: num.optional(),
  process_used: num.optional(),
  host_rss: num.optional(),
  host_hwm: num.optional(),
});
const peak = z.looseObject({
  allocated: num.optional(),
  reserved: num.optional(),
  requested: num.optional(),
  host_rss: num.optional(),
});
const frame = z.looseObject({ target: str, scope_id: str, call: num, file: nullishStr, line: nullishNum });

const common = {
  v: num,
  ts: num,
  pid: num,
  rank: num.nullable(),
  device: num.nullable(),
};
const scope = {
  ...common,
  target: str,
  scope_id: str,
  parent: str.nullable(),
  call: num,
  depth: num,
  thread: str.optional(),
  before: readings,
  file: nullishStr,
  line: nullishNum,
  process_name: str.optional(),
};

const start = z.looseObject({
  ...common,
  type: z.literal("start"),
  run_id: str,
  argv: strings,
  cwd: str,
  plan: z.unknown(),
  probe_version: str,
  python: str.optional(),
  hostname: str.optional(),
  // Descriptive only: a malformed environment is dropped, never the start event.
  environment: z
    .looseObject({
      executable: str.optional(),
      packages: z.record(z.string(), z.string()).optional(),
      driver: str.optional(),
      cuda_driver: str.optional(),
      gpus: z.array(z.looseObject({ index: num, name: str, memory_total: num })).optional(),
    })
    .optional()
    .catch(undefined),
});
const hello = z.looseObject({
  ...common,
  type: z.literal("hello"),
  ppid: num,
  argv: strings,
  executable: str.optional(),
  python: str.optional(),
  origin: z.enum(["main", "spawn", "fork", "subprocess"]),
  torch: str.nullable(),
  probe_version: str.optional(),
  orig_argv: strings.optional(),
});
const targetResolved = z.looseObject({
  ...common,
  type: z.literal("target_resolved"),
  target: str,
  kind: z.enum(["function", "line"]),
  spec: str,
  module: nullishStr,
  qualname: nullishStr,
  file: nullishStr,
  line: nullishNum,
  end_line: nullishNum,
  aliases: strings.optional(),
});
const targetNotFound = z.looseObject({
  ...common,
  type: z.literal("target_not_found"),
  target: str,
  spec: str,
  reason: str,
});
const enter = z.looseObject({ ...scope, type: z.literal("enter") });
const exit = z.looseObject({
  ...scope,
  type: z.literal("exit"),
  after: readings,
  peak,
  duration_ns: num,
  raised: str.nullable(),
});
const paused = z.looseObject({
  ...common,
  type: z.literal("paused"),
  target: str,
  scope_id: str,
  at: z.enum(["entry", "exit"]),
  reason: z.enum(["pause_target", "step", "pause_request"]),
  stack: z.array(frame),
  readings,
  since_entry: readings.optional(),
  peak: peak.optional(),
  process_name: str.optional(),
});
const resumed = z.looseObject({
  ...common,
  type: z.literal("resumed"),
  scope_id: str,
  mode: z.enum(["run", "step_over", "step_into"]),
});
const sample = z.looseObject({ ...common, type: z.literal("sample"), readings });
const log = z.looseObject({
  ...common,
  type: z.literal("log"),
  stream: z.enum(["stdout", "stderr"]),
  line: str,
});
const fact = z.looseObject({
  ...common,
  type: z.literal("fact"),
  kind: str,
  values: z.record(str, num),
  line: str,
});
const oom = z.looseObject({
  ...common,
  type: z.literal("oom"),
  target: str,
  scope_id: str,
  stack: z.array(frame),
  readings,
  message: str,
  snapshot_file: str.optional(),
  request_bytes: num.optional(),
  allocator: z
    .looseObject({
      free_bytes: num,
      total_bytes: num,
      reserved_bytes: num,
      allocated_bytes: num,
      inactive_split_bytes: num,
    })
    .optional(),
  largest_blocks: z
    .array(z.looseObject({ bytes: num, file: str, line: num, function: str, stack: str.optional() }))
    .optional(),
  scope_stack: strings.optional(),
});
const error = z.looseObject({ ...common, type: z.literal("error"), message: str, where: str.optional() });
const note = z.looseObject({
  ...common,
  type: z.literal("note"),
  kind: str,
  message: str,
  target: str.optional(),
});
/** One allocation site as the probe sends it (the `sites` event's, and `memlens_probe snapshot sites`'). */
export const allocationSiteSchema = z.looseObject({
  file: str,
  line: num,
  function: str,
  allocated_bytes: num,
  freed_bytes: num,
  live_at_exit_bytes: num,
  at_peak_bytes: num,
  count: num,
  stacks: z.array(z.looseObject({ stack: str, count: num })).optional(),
  root_file: str.optional(),
  root_line: num.optional(),
  root_function: str.optional(),
});
const sites = z.looseObject({
  ...common,
  type: z.literal("sites"),
  target: str,
  scope_id: str,
  call: num,
  sites: z.array(allocationSiteSchema),
  peak_bytes: num,
  delta_bytes: num,
  freed_earlier_bytes: num,
  trace_file: str.optional(),
});
const bye = z.looseObject({
  ...common,
  type: z.literal("bye"),
  exitcode: num.nullable().optional(),
  probe_ns: num.optional(),
  scopes: num.optional(),
});
const end = z.looseObject({
  ...common,
  type: z.literal("end"),
  exit_code: num.nullable(),
  signal: str.nullable(),
  duration_ns: num,
  stopped: z.boolean(),
  counts: z.record(str, num),
});

/** The schema of each event type; the mapped type makes a missing or mistyped one a compile error. */
const SCHEMAS: { [K in EventType]: z.ZodType<Extract<ProbeEvent, { type: K }>> } = {
  start: start satisfies z.ZodType<StartEvent>,
  hello: hello satisfies z.ZodType<HelloEvent>,
  target_resolved: targetResolved satisfies z.ZodType<TargetResolvedEvent>,
  target_not_found: targetNotFound satisfies z.ZodType<TargetNotFoundEvent>,
  enter: enter satisfies z.ZodType<EnterEvent>,
  exit: exit satisfies z.ZodType<ExitEvent>,
  paused: paused satisfies z.ZodType<PausedEvent>,
  resumed: resumed satisfies z.ZodType<ResumedEvent>,
  sample: sample satisfies z.ZodType<SampleEvent>,
  log: log satisfies z.ZodType<LogEvent>,
  fact: fact satisfies z.ZodType<FactEvent>,
  oom: oom satisfies z.ZodType<OomEvent>,
  error: error satisfies z.ZodType<ErrorEvent>,
  note: note satisfies z.ZodType<NoteEvent>,
  sites: sites satisfies z.ZodType<SitesEvent>,
  bye: bye satisfies z.ZodType<ByeEvent>,
  end: end satisfies z.ZodType<EndEvent>,
};

/** Types a newer probe may add: their common fields are checked, the rest is left to whoever knows them. */
const unknownType = z.looseObject({ ...common, type: str });

const COMMON_NUMBER_FIELDS = ["v", "ts", "pid"] as const;

/** Why a line is not an event, in words that never quote the line (it may hold anything). */
function issueReason(type: string, value: Record<string, unknown>, issue: z.core.$ZodIssue): string {
  const field = issue.path.map(String).join(".");
  let at: unknown = value;
  for (const key of issue.path) {
    at = typeof at === "object" && at !== null ? (at as Record<PropertyKey, unknown>)[key] : undefined;
  }
  const problem =
    at === undefined
      ? "missing"
      : issue.code === "invalid_type"
        ? `not ${issue.expected === "record" || issue.expected === "object" ? "an object" : `a ${issue.expected}`}`
        : "not a value the protocol allows";
  return `${type} event: field "${field}" ${problem}`;
}

/** Parses one JSON line; never throws. */
export function parseEventLine(line: string): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, reason: "not JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, reason: "not a JSON object" };
  }
  const obj = value as Record<string, unknown>;
  for (const field of COMMON_NUMBER_FIELDS) {
    if (typeof obj[field] !== "number")
      return { ok: false, reason: `field "${field}" missing or not a number` };
  }
  if (typeof obj.type !== "string") return { ok: false, reason: `field "type" missing or not a string` };
  if (obj.v !== PROTOCOL_VERSION) return { ok: "version", error: new ProtocolVersionError(obj.v as number) };
  if (!("rank" in obj)) obj.rank = null;
  if (!("device" in obj)) obj.device = null;
  const schema: z.ZodType = Object.hasOwn(SCHEMAS, obj.type) ? SCHEMAS[obj.type as EventType] : unknownType;
  const checked = schema.safeParse(obj);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    const type = obj.type.slice(0, 40);
    return { ok: false, reason: issue ? issueReason(type, obj, issue) : `${type} event: not valid` };
  }
  return { ok: true, event: checked.data as ProbeEvent };
}

export interface MalformedLine {
  lineNumber: number;
  reason: string;
  text: string;
}

/**
 * Longest line kept while waiting for its newline. The probe cuts log lines at 1 MiB and OOM
 * messages at 8000 characters, so a longer line is garbage (or not an events file); without a
 * bound, one newline-free file would grow the buffer until V8 throws "Invalid string length".
 */
export const MAX_LINE_CHARS = 64 * 1024 * 1024;

const NEWLINE = 0x0a;

/** Malformed lines kept with their text for reports; the rest are only counted. */
const MALFORMED_KEPT = 1000;

export interface ReaderOptions {
  /**
   * Sample lines the fast scan accepts go here as their fields (the scan is reused: copy what you
   * keep) instead of to onEvent as objects; samples the full path reads still go to onEvent.
   */
  onSample?: (sample: SampleScan) => void;
  /** false: every line of pushBytes through JSON.parse and the schema (for comparisons; default true). */
  fastPath?: boolean;
}

/**
 * Splits a byte stream into lines and parses them. Malformed lines are counted and skipped, and
 * the first of them kept for reporting; an unknown protocol version stops the reader (everything
 * after it is ignored). Never throws.
 */
export class EventStreamReader {
  private pending = "";
  /** The line being read is over MAX_LINE_CHARS: drop it up to its newline. */
  private skippingLongLine = false;
  private lineNumber = 0;
  /** The first MALFORMED_KEPT malformed lines; malformedCount counts them all. */
  readonly malformed: MalformedLine[] = [];
  malformedCount = 0;
  /** Lines skipped because the same line was read before (see accept). */
  duplicates = 0;
  versionError: ProtocolVersionError | undefined;
  private readonly seen = new Set<string>();
  private readonly scan = newSampleScan();
  private readonly fastPath: boolean;
  private readonly onSample: ((sample: SampleScan) => void) | undefined;
  /** Decodes what pushBytes hands to the text path. */
  private readonly decoder = new StringDecoder("utf8");
  /** The bytes pushed last did not end with a newline: the next ones start inside a line. */
  private midLine = false;

  constructor(
    private readonly onEvent: (event: ProbeEvent) => void,
    options: ReaderOptions = {},
  ) {
    this.fastPath = options.fastPath ?? true;
    this.onSample = options.onSample;
  }

  push(chunk: string): void {
    if (this.versionError || chunk.length === 0) return;
    let from = 0;
    let newline = chunk.indexOf("\n");
    while (newline >= 0) {
      if (this.skippingLongLine) {
        this.skippingLongLine = false;
        this.pending = "";
      } else {
        const line =
          this.pending === "" ? chunk.slice(from, newline) : this.pending + chunk.slice(from, newline);
        this.pending = "";
        this.handleLine(line);
        if (this.versionError) return;
      }
      from = newline + 1;
      newline = chunk.indexOf("\n", from);
    }
    if (this.skippingLongLine || from === chunk.length) return;
    if (this.pending.length + (chunk.length - from) > MAX_LINE_CHARS) {
      this.lineNumber++;
      this.countMalformed(`longer than ${MAX_LINE_CHARS} characters without a newline`, "");
      this.pending = "";
      this.skippingLongLine = true;
      return;
    }
    this.pending += chunk.slice(from);
  }

  /**
   * Bytes of the stream (UTF-8). Whole sample lines the fast scan answers for are read from the
   * bytes; every other line is decoded and read as push() reads text. Lines split on the newline
   * byte, which UTF-8 never uses inside a character, so the lines are the ones push() would see.
   */
  pushBytes(bytes: Uint8Array): void {
    if (this.versionError || bytes.length === 0) return;
    if (!this.fastPath) {
      this.push(this.decoder.write(bytes));
      return;
    }
    let from = 0;
    if (this.midLine) {
      // The rest of the line begun in the last bytes goes the text path, to join its start.
      const newline = bytes.indexOf(NEWLINE);
      if (newline < 0) {
        this.push(this.decoder.write(bytes));
        return;
      }
      this.push(this.decoder.write(bytes.subarray(0, newline + 1)));
      from = newline + 1;
      this.midLine = false;
    }
    const scan = this.scan;
    while (from < bytes.length && !this.versionError) {
      const lineEnd = scanSampleLine(bytes, from, bytes.length, scan);
      if (lineEnd >= 0) {
        // Samples are exempt from the check for repeated lines (see accept).
        this.lineNumber++;
        if (this.onSample) this.onSample(scan);
        else this.onEvent(sampleEventOf(scan));
        from = lineEnd + 1;
        continue;
      }
      const newline = bytes.indexOf(NEWLINE, from);
      if (newline < 0) {
        this.push(this.decoder.write(bytes.subarray(from)));
        this.midLine = true;
        return;
      }
      // With its newline, so that a character cut at the line's end decodes as push() decodes it.
      this.push(this.decoder.write(bytes.subarray(from, newline + 1)));
      from = newline + 1;
    }
  }

  /** The end of a stream given as bytes: what the decoder held, then finish(). */
  finishBytes(): void {
    this.push(this.decoder.end());
    this.finish();
  }

  /** Call at end of stream: a last line without a newline still counts. */
  finish(): void {
    if (this.pending.length > 0 && !this.versionError && !this.skippingLongLine)
      this.handleLine(this.pending);
    this.pending = "";
    this.skippingLongLine = false;
  }

  /**
   * For a file still being written: the text after the last newline is read now if it is a whole
   * event already (a writer that ends its file without a newline); else it waits for the rest. An
   * unfinished line is never a valid JSON object on its own.
   */
  flushWholeLine(): void {
    if (this.versionError || this.skippingLongLine || !this.pending.trimStart().startsWith("{")) return;
    try {
      JSON.parse(this.pending);
    } catch {
      return;
    }
    const line = this.pending;
    this.pending = "";
    this.handleLine(line);
  }

  private handleLine(raw: string): void {
    this.lineNumber++;
    let line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    // A byte order mark (an editor saved the file, or files were concatenated) is not JSON.
    if (line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    if (line.trim() === "") return;
    const parsed = parseEventLine(line);
    if (parsed.ok === true) {
      if (this.accept(parsed.event, line)) this.onEvent(parsed.event);
    } else if (parsed.ok === "version") this.versionError = parsed.error;
    else this.countMalformed(parsed.reason, line.slice(0, 200));
  }

  /**
   * Whether an event is new. A line read twice (a file appended to itself, a mirror that wrote a
   * batch again) would count its calls twice. The key is the exact line: the probe stamps every
   * event with its process and a nanosecond clock, and scope events with an id unique in that
   * process, so two events it sent cannot be the same text; a looser key (pid+type+ts) could
   * merge two facts parsed from one log line. Samples are exempt: a repeated sample is the same
   * point of the curve again and changes no figure, and millions of keys would cost more memory
   * than the samples.
   */
  private accept(event: ProbeEvent, line: string): boolean {
    if (event.type === "sample") return true;
    const key = line.length <= 40 ? line : createHash("sha1").update(line).digest("base64");
    if (this.seen.has(key)) {
      this.duplicates++;
      return false;
    }
    this.seen.add(key);
    return true;
  }

  private countMalformed(reason: string, text: string): void {
    this.malformedCount++;
    if (this.malformed.length < MALFORMED_KEPT)
      this.malformed.push({ lineNumber: this.lineNumber, reason, text });
  }
}

/** What reading an events stream found besides the events. */
export interface ReadReport {
  malformed: MalformedLine[];
  malformedCount: number;
  duplicates: number;
  versionError?: ProtocolVersionError;
}

/** Parses a whole events.jsonl text (small texts; files are read with readEventsFile). */
export function parseEventsText(text: string): {
  events: ProbeEvent[];
  malformed: MalformedLine[];
  malformedCount: number;
  duplicates: number;
  versionError?: ProtocolVersionError;
} {
  const events: ProbeEvent[] = [];
  const reader = new EventStreamReader((e) => events.push(e));
  reader.push(text);
  reader.finish();
  return {
    events,
    malformed: reader.malformed,
    malformedCount: reader.malformedCount,
    duplicates: reader.duplicates,
    versionError: reader.versionError,
  };
}
