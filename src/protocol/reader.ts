import { PROTOCOL_VERSION, type ProbeEvent } from "./events";

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

const COMMON_NUMBER_FIELDS = ["v", "ts", "pid"] as const;

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
  return { ok: true, event: obj as unknown as ProbeEvent };
}

export interface MalformedLine {
  lineNumber: number;
  reason: string;
  text: string;
}

/**
 * Splits a byte stream into lines and parses them. Malformed lines are counted and kept for
 * reporting; an unknown protocol version stops the reader (everything after it is ignored).
 */
export class EventStreamReader {
  private pending = "";
  private lineNumber = 0;
  readonly malformed: MalformedLine[] = [];
  versionError: ProtocolVersionError | undefined;

  constructor(private readonly onEvent: (event: ProbeEvent) => void) {}

  push(chunk: string): void {
    if (this.versionError) return;
    this.pending += chunk;
    let newline = this.pending.indexOf("\n");
    while (newline >= 0) {
      const line = this.pending.slice(0, newline);
      this.pending = this.pending.slice(newline + 1);
      this.handleLine(line);
      if (this.versionError) return;
      newline = this.pending.indexOf("\n");
    }
  }

  /** Call at end of stream: a last line without a newline still counts. */
  finish(): void {
    if (this.pending.length > 0 && !this.versionError) this.handleLine(this.pending);
    this.pending = "";
  }

  private handleLine(raw: string): void {
    this.lineNumber++;
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") return;
    const parsed = parseEventLine(line);
    if (parsed.ok === true) this.onEvent(parsed.event);
    else if (parsed.ok === "version") this.versionError = parsed.error;
    else
      this.malformed.push({ lineNumber: this.lineNumber, reason: parsed.reason, text: line.slice(0, 200) });
  }
}

/** Parses a whole events.jsonl text. */
export function parseEventsText(text: string): {
  events: ProbeEvent[];
  malformed: MalformedLine[];
  versionError?: ProtocolVersionError;
} {
  const events: ProbeEvent[] = [];
  const reader = new EventStreamReader((e) => events.push(e));
  reader.push(text);
  reader.finish();
  return { events, malformed: reader.malformed, versionError: reader.versionError };
}
