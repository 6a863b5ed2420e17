// The fast path of the reader for the line a run writes most: `sample` (a vLLM load writes millions
// of them). A scanner reads the line's bytes straight into numbers: no text decoded, no JSON.parse,
// no zod, no object per line. It takes only lines it can answer for exactly — a JSON object
// holding just the fields of a sample event (v, type, ts, pid, rank, device, readings), each of the
// type the schema in reader.ts demands, keys without escapes, no key twice — and gives up on
// anything else, which then goes down the full path (JSON.parse, then the schema): a line is
// accepted here only when the full path would accept it with the same numbers, and every line the
// full path would reject (with its reason) goes there.
import { PROTOCOL_VERSION, type Readings, type SampleEvent } from "./events";

/** Every reading the sample schema knows, in the order of the scan's values. */
export const SAMPLE_READING_KEYS = [
  "allocated",
  "reserved",
  "requested",
  "device_used",
  "device_total",
  "non_torch",
  "process_used",
  "host_rss",
  "host_hwm",
] as const satisfies readonly (keyof Readings)[];

/** One sample line's fields; NaN in values marks a reading the line did not have. */
export interface SampleScan {
  ts: number;
  pid: number;
  rank: number | null;
  device: number | null;
  /** By SAMPLE_READING_KEYS. */
  readonly values: Float64Array;
}

export function newSampleScan(): SampleScan {
  return { ts: 0, pid: 0, rank: null, device: null, values: new Float64Array(SAMPLE_READING_KEYS.length) };
}

/** The event a scan stands for, for readers that want objects (a live model's listeners). */
export function sampleEventOf(scan: SampleScan): SampleEvent {
  return {
    v: PROTOCOL_VERSION,
    type: "sample",
    ts: scan.ts,
    pid: scan.pid,
    rank: scan.rank,
    device: scan.device,
    readings: readingsOf(scan.values),
  };
}

/** The readings object of a scan's values (absent keys left out, as the probe leaves them out). */
export function readingsOf(values: ArrayLike<number>): Readings {
  const out: Readings = {};
  for (let k = 0; k < SAMPLE_READING_KEYS.length; k++) {
    const value = values[k]!;
    if (!Number.isNaN(value)) out[SAMPLE_READING_KEYS[k]!] = value;
  }
  return out;
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN = 0x7b;
const CLOSE = 0x7d;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;
const BACKSLASH = 0x5c;
const TWO_32 = 2 ** 32;
const NEWLINE = 0x0a;

const bytesOf = (text: string): Uint8Array => new TextEncoder().encode(text);
// Top-level fields, by their bit in `seen` (a key given twice is refused: JSON.parse keeps the last).
const F_V = 0;
const F_TYPE = 1;
const F_TS = 2;
const F_PID = 3;
const F_RANK = 4;
const F_DEVICE = 5;
const F_READINGS = 6;
const FIELD_KEYS = ["v", "type", "ts", "pid", "rank", "device", "readings"].map(bytesOf);
const REQUIRED = (1 << F_V) | (1 << F_TYPE) | (1 << F_TS) | (1 << F_PID) | (1 << F_READINGS);
const READING_KEY_BYTES = SAMPLE_READING_KEYS.map(bytesOf);
const SAMPLE_TYPE = [bytesOf("sample")];
const NULL_BYTES = bytesOf("null");
/** How the probe starts every sample line: read as one run of bytes. */
const PROBE_START = bytesOf(`{"v":${PROTOCOL_VERSION},"type":"sample","ts":`);

/** Bytes as text, one character each (a number's bytes are ASCII). */
function latin1(b: Uint8Array, start: number, end: number): string {
  return Buffer.isBuffer(b)
    ? b.toString("latin1", start, end)
    : String.fromCharCode(...b.subarray(start, end));
}

/**
 * The number read last by readNumber, in a typed array: a module variable would hold each double
 * in a new heap box (six a line, millions a run, for the collector to sweep).
 */
const numberSlot = new Float64Array(1);
/** The key read last by readKey. */
let keyFound = -1;
const quotedKeys = (keys: readonly Uint8Array[]) =>
  keys.map((key) => bytesOf(`"${new TextDecoder().decode(key)}":`));
const FIELD_KEYS_QUOTED = quotedKeys(FIELD_KEYS);
const READING_KEYS_QUOTED = quotedKeys(READING_KEY_BYTES);
/** The order of the keys in the last sample line read (-1: not known). */
const fieldOrder = new Int8Array(FIELD_KEYS.length + 1).fill(-1);
const readingOrder = new Int8Array(READING_KEY_BYTES.length + 1).fill(-1);

/** JSON's white space inside a line (a newline ends the line). */
function skipSpace(b: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** Whether the bytes at i are `literal`. */
function bytesAt(b: Uint8Array, i: number, end: number, literal: Uint8Array): boolean {
  if (end - i < literal.length) return false;
  for (let j = 0; j < literal.length; j++) if (b[i + j] !== literal[j]) return false;
  return true;
}

/**
 * The key at i, and its colon: its index in `keys` (-1: none of them) into keyFound, and where its
 * value starts; -1 to give up. The probe writes its keys in the same order on every line, so the
 * key at the same place in the last line (`order`) is tried first, as one run of bytes.
 */
function readKey(
  b: Uint8Array,
  i: number,
  end: number,
  keys: readonly Uint8Array[],
  quoted: readonly Uint8Array[],
  order: Int8Array,
  place: number,
): number {
  const guess = order[place]!;
  if (guess >= 0 && bytesAt(b, i, end, quoted[guess]!)) {
    keyFound = guess;
    return i + quoted[guess]!.length;
  }
  const keyEnd = skipPlainString(b, i, end);
  if (keyEnd < 0) return -1;
  keyFound = keyIndex(b, i + 1, keyEnd - 1, keys);
  if (place < order.length) order[place] = keyFound;
  i = skipSpace(b, keyEnd, end);
  if (b[i] !== COLON) return -1;
  return skipSpace(b, i + 1, end);
}

/** After the closing quote of a string without escapes or control characters at i; -1 to give up. */
function skipPlainString(b: Uint8Array, i: number, end: number): number {
  if (b[i] !== QUOTE) return -1;
  for (let j = i + 1; j < end; j++) {
    const c = b[j]!;
    if (c === QUOTE) return j + 1;
    if (c === BACKSLASH || c < 0x20) return -1;
  }
  return -1;
}

/** Which of `keys` the bytes [start, end) are; -1 for none. */
function keyIndex(b: Uint8Array, start: number, end: number, keys: readonly Uint8Array[]): number {
  const n = end - start;
  next: for (let k = 0; k < keys.length; k++) {
    const key = keys[k]!;
    if (key.length !== n) continue;
    for (let j = 0; j < n; j++) if (b[start + j] !== key[j]) continue next;
    return k;
  }
  return -1;
}

/**
 * A JSON number at i (the full grammar) into numberSlot; returns where it ends, or -1 to give
 * up (not a number, or one the schema refuses: JSON.parse reads 1e400 as Infinity, which
 * z.number() rejects).
 */
function readNumber(b: Uint8Array, i: number, end: number): number {
  const start = i;
  const negative = b[i] === MINUS;
  if (negative) i++;
  const digits = i;
  let c = b[i]!;
  // The integer part: summed in a double while it has at most 15 digits (exact); beyond, as
  // high * 2^32 + low, both exact while it has at most 19 digits (< 2^64).
  let high = 0;
  let low = 0;
  if (c === ZERO) i++;
  else if (c > ZERO && c <= NINE) {
    const simpleEnd = Math.min(end, i + 15);
    while (i < simpleEnd && (c = b[i]!) >= ZERO && c <= NINE) {
      low = low * 10 + (c - ZERO);
      i++;
    }
    if (i === simpleEnd && i < end && (c = b[i]!) >= ZERO && c <= NINE) {
      high = Math.floor(low / TWO_32);
      low -= high * TWO_32;
      while (i < end && (c = b[i]!) >= ZERO && c <= NINE) {
        low = low * 10 + (c - ZERO);
        const carry = Math.floor(low / TWO_32);
        low -= carry * TWO_32;
        high = high * 10 + carry;
        i++;
      }
    }
  } else return -1;
  const integerEnd = i;
  if (b[i] === 0x2e) {
    i++;
    const from = i;
    while (i < end && (c = b[i]!) >= ZERO && c <= NINE) i++;
    if (i === from) return -1;
  }
  c = b[i]!;
  if (c === 0x65 || c === 0x45) {
    i++;
    c = b[i]!;
    if (c === 0x2b || c === MINUS) i++;
    const from = i;
    while (i < end && (c = b[i]!) >= ZERO && c <= NINE) i++;
    if (i === from) return -1;
  }
  // An integer of up to 19 digits: high * 2^32 is exact, so the one rounding of the sum is the
  // correctly rounded value, the one JSON.parse gives (a nanosecond clock has 19 digits). Longer
  // integers, fractions and exponents: Number() of the text, which rounds as JSON.parse does.
  if (integerEnd === i && integerEnd - digits <= 19) {
    const value = high * TWO_32 + low;
    numberSlot[0] = negative ? -value : value;
    return i;
  }
  const parsed = Number(latin1(b, start, i));
  numberSlot[0] = parsed;
  return Number.isFinite(parsed) ? i : -1;
}

/** A number, or null (NaN in numberSlot); where it ends, or -1. */
function readNumberOrNull(b: Uint8Array, i: number, end: number): number {
  if (b[i] !== 0x6e) return readNumber(b, i, end);
  if (end - i < 4 || keyIndex(b, i, i + 4, [NULL_BYTES]) !== 0) return -1;
  numberSlot[0] = NaN;
  return i + 4;
}

/** The readings object at i into values; where it ends, or -1 (an unknown key, a value not a number, a key twice). */
function readReadings(b: Uint8Array, i: number, end: number, values: Float64Array): number {
  values.fill(NaN);
  i = skipSpace(b, i + 1, end);
  if (b[i] === CLOSE) return i + 1;
  for (let place = 0; ; place++) {
    i = readKey(b, i, end, READING_KEY_BYTES, READING_KEYS_QUOTED, readingOrder, place);
    const k = keyFound;
    if (i < 0 || k < 0 || !Number.isNaN(values[k]!)) return -1;
    i = recordNumber(b, i, end, SLOT_READING + k);
    if (i < 0) return -1;
    values[k] = numberSlot[0]!;
    i = skipSpace(b, i, end);
    const c = b[i++];
    if (c === CLOSE) return i;
    if (c !== COMMA) return -1;
    i = skipSpace(b, i, end);
  }
}

// The shape of the last sample line read in full: its bytes between its numbers, and which field
// each number is. The probe writes every sample line of a process alike but for the digits, so
// the next line is first read against that shape: the bytes between numbers compared as runs,
// each number read by readNumber. A line that matches has the same keys, in the same places, as
// one the full scan accepted, with other valid numbers in them; anything else is scanned in full.
const SLOT_V = 0;
const SLOT_TS = 1;
const SLOT_PID = 2;
const SLOT_RANK = 3;
const SLOT_DEVICE = 4;
const SLOT_READING = 5;
const MAX_NUMBERS = SLOT_READING + SAMPLE_READING_KEYS.length;

interface Template {
  /** The bytes before each number, then the bytes after the last one up to the newline. */
  literals: Uint8Array[];
  /** The field of each number. */
  slots: Int8Array;
}

let template: Template | undefined;
/** Where the numbers of the line being scanned in full are, and their fields. */
const recordedStart = new Int32Array(MAX_NUMBERS);
const recordedEnd = new Int32Array(MAX_NUMBERS);
const recordedSlot = new Int8Array(MAX_NUMBERS);
let recorded = 0;

/** readNumber, noting where the number is and its field. */
function recordNumber(b: Uint8Array, i: number, end: number, slot: number): number {
  const numberEnd = readNumber(b, i, end);
  if (numberEnd >= 0 && recorded < MAX_NUMBERS) {
    recordedStart[recorded] = i;
    recordedEnd[recorded] = numberEnd;
    recordedSlot[recorded] = slot;
  }
  recorded++;
  return numberEnd;
}

/**
 * Copies of the bytes: Buffer's slice() is a view, and the reader reuses its buffer for the next
 * bytes of the file. Plain Uint8Arrays, as every literal here is, so comparisons see one kind.
 */
function copyOf(b: Uint8Array, from: number, to: number): Uint8Array {
  return new Uint8Array(b.subarray(from, to));
}

function templateOf(b: Uint8Array, start: number, lineEnd: number): Template {
  const literals: Uint8Array[] = [];
  let from = start;
  for (let j = 0; j < recorded; j++) {
    literals.push(copyOf(b, from, recordedStart[j]!));
    from = recordedEnd[j]!;
  }
  literals.push(copyOf(b, from, lineEnd));
  return { literals, slots: recordedSlot.slice(0, recorded) };
}

/** The line read against `shape` (see Template); where its newline is, or -1. */
function scanLikeTemplate(
  shape: Template,
  b: Uint8Array,
  start: number,
  end: number,
  out: SampleScan,
): number {
  const { literals, slots } = shape;
  const values = out.values;
  values.fill(NaN);
  out.rank = null;
  out.device = null;
  let i = start;
  for (let j = 0; j < slots.length; j++) {
    const literal = literals[j]!;
    if (!bytesAt(b, i, end, literal)) return -1;
    i = readNumber(b, i + literal.length, end);
    if (i < 0) return -1;
    const value = numberSlot[0]!;
    const slot = slots[j]!;
    if (slot >= SLOT_READING) values[slot - SLOT_READING] = value;
    else if (slot === SLOT_TS) out.ts = value;
    else if (slot === SLOT_PID) out.pid = value;
    else if (slot === SLOT_RANK) out.rank = value;
    else if (slot === SLOT_DEVICE) out.device = value;
    else if (value !== PROTOCOL_VERSION) return -1;
  }
  const last = literals[slots.length]!;
  if (!bytesAt(b, i, end, last)) return -1;
  i += last.length;
  return i < end && b[i] === NEWLINE ? i : -1;
}

/**
 * Reads the sample line that starts at `start` in bytes (UTF-8) that go on to `end` into `out`,
 * and returns where its newline is; -1 when the line is anything else, or anything this scan
 * does not answer for exactly, or has no newline before `end` (the caller then decodes and parses
 * it in full). `out` is scratch: its fields mean something only after a line was read.
 */
export function scanSampleLine(b: Uint8Array, start: number, end: number, out: SampleScan): number {
  if (template) {
    const lineEnd = scanLikeTemplate(template, b, start, end, out);
    if (lineEnd >= 0) return lineEnd;
  }
  recorded = 0;
  const lineEnd = scanFields(b, start, end, out);
  if (lineEnd >= 0 && recorded <= MAX_NUMBERS) template = templateOf(b, start, lineEnd);
  return lineEnd;
}

/** The full scan of a sample line's fields, key by key (see scanSampleLine). */
function scanFields(b: Uint8Array, start: number, end: number, out: SampleScan): number {
  let i: number;
  let seen = 0;
  /** The field whose value is at i, its key read already (the probe's usual start). */
  let known = -1;
  out.rank = null;
  out.device = null;
  if (
    end - start > PROBE_START.length &&
    keyIndex(b, start, start + PROBE_START.length, [PROBE_START]) === 0
  ) {
    i = start + PROBE_START.length;
    seen = (1 << F_V) | (1 << F_TYPE);
    known = F_TS;
  } else {
    i = skipSpace(b, start, end);
    if (b[i] !== OPEN) return -1;
    i = skipSpace(b, i + 1, end);
  }
  for (let place = 0; ; place++) {
    let field = known;
    known = -1;
    if (field < 0) {
      i = readKey(b, i, end, FIELD_KEYS, FIELD_KEYS_QUOTED, fieldOrder, place);
      if (i < 0) return -1;
      field = keyFound;
    }
    switch (field) {
      case F_V:
        i = recordNumber(b, i, end, SLOT_V);
        if (i < 0 || numberSlot[0] !== PROTOCOL_VERSION) return -1;
        break;
      case F_TYPE: {
        const typeEnd = skipPlainString(b, i, end);
        if (typeEnd < 0 || keyIndex(b, i + 1, typeEnd - 1, SAMPLE_TYPE) !== 0) return -1;
        i = typeEnd;
        break;
      }
      case F_TS:
        i = recordNumber(b, i, end, SLOT_TS);
        out.ts = numberSlot[0]!;
        break;
      case F_PID:
        i = recordNumber(b, i, end, SLOT_PID);
        out.pid = numberSlot[0]!;
        break;
      case F_RANK:
        i = b[i] === 0x6e ? readNumberOrNull(b, i, end) : recordNumber(b, i, end, SLOT_RANK);
        out.rank = Number.isNaN(numberSlot[0]) ? null : numberSlot[0]!;
        break;
      case F_DEVICE:
        i = b[i] === 0x6e ? readNumberOrNull(b, i, end) : recordNumber(b, i, end, SLOT_DEVICE);
        out.device = Number.isNaN(numberSlot[0]) ? null : numberSlot[0]!;
        break;
      case F_READINGS:
        if (b[i] !== OPEN) return -1;
        i = readReadings(b, i, end, out.values);
        break;
      default:
        return -1;
    }
    if (i < 0 || seen & (1 << field)) return -1;
    seen |= 1 << field;
    i = skipSpace(b, i, end);
    const c = b[i++];
    if (c === CLOSE) break;
    if (c !== COMMA) return -1;
    i = skipSpace(b, i, end);
  }
  i = skipSpace(b, i, end);
  return i < end && b[i] === NEWLINE && (seen & REQUIRED) === REQUIRED ? i : -1;
}
