// One process's samples as columns: the times and each reading in its own Float64Array, no
// object per sample. A vLLM load has millions of samples; as objects they cost the reading most
// of its time (allocation, then the collector) and the memory panel copied them back into
// columns anyway. Every sample is kept at full resolution: the chart reduces what it draws, the
// model never does. SamplePoint objects are made only for the readers that ask for them.
import { SAMPLE_READING_KEYS } from "../protocol/fastLine";
import type { ReadingKey, Readings } from "../protocol/events";

export interface SamplePoint {
  ts: number;
  readings: Readings;
}

const FIRST_CAPACITY = 1024;
const KEY_INDEX: ReadonlyMap<string, number> = new Map(SAMPLE_READING_KEYS.map((key, i) => [key, i]));

export class SampleColumns {
  length = 0;
  private ts: Float64Array = new Float64Array(FIRST_CAPACITY);
  /** By SAMPLE_READING_KEYS; a column is made when its reading is first seen (NaN before: absent). */
  private readonly columns: (Float64Array | undefined)[] = SAMPLE_READING_KEYS.map(() => undefined);
  /**
   * The readings object of samples that had fields no column holds (a newer probe's), by index:
   * those samples are given back as they were read.
   */
  private extras: Map<number, Readings> | undefined;
  /** SamplePoint objects made so far, in order (points()). */
  private pointCache: SamplePoint[] | undefined;

  /** Adds a sample from its values by SAMPLE_READING_KEYS (NaN: absent). */
  push(ts: number, values: ArrayLike<number>): void {
    const i = this.grow();
    this.ts[i] = ts;
    for (let k = 0; k < SAMPLE_READING_KEYS.length; k++) {
      const value = values[k]!;
      const column = this.columns[k];
      if (column) column[i] = value;
      else if (!Number.isNaN(value)) this.columnFor(k)[i] = value;
    }
  }

  /** Adds a sample from its readings object (the full path's events). */
  pushReadings(ts: number, readings: Readings): void {
    const i = this.grow();
    this.ts[i] = ts;
    for (const column of this.columns) if (column) column[i] = NaN;
    let extra = false;
    for (const key of Object.keys(readings)) {
      const k = KEY_INDEX.get(key);
      const value = (readings as Record<string, unknown>)[key];
      if (k === undefined || typeof value !== "number") {
        if (value !== undefined) extra = true;
        continue;
      }
      this.columnFor(k)[i] = value;
    }
    if (extra) (this.extras ??= new Map()).set(i, readings);
  }

  /** Time of sample i (ns, the probe's clock). */
  tsAt(i: number): number {
    return this.ts[i]!;
  }

  /** Reading `key` of sample i; undefined when that sample did not have it. */
  valueAt(i: number, key: ReadingKey): number | undefined {
    const k = KEY_INDEX.get(key);
    const column = k === undefined ? undefined : this.columns[k];
    const value = column?.[i];
    return value === undefined || Number.isNaN(value) ? undefined : value;
  }

  /** The times of every sample (a view: valid until the next push). */
  times(): Float64Array {
    return this.ts.subarray(0, this.length);
  }

  /** Reading `key` of every sample, NaN where a sample did not have it; undefined if no sample had it (a view). */
  column(key: ReadingKey): Float64Array | undefined {
    const k = KEY_INDEX.get(key);
    const column = k === undefined ? undefined : this.columns[k];
    return column?.subarray(0, this.length);
  }

  /** Sample i as an object. */
  at(i: number): SamplePoint {
    return this.pointCache?.[i] ?? { ts: this.ts[i]!, readings: this.readingsAt(i) };
  }

  /** The readings of sample i, as the probe sent them (absent keys left out). */
  readingsAt(i: number): Readings {
    const extra = this.extras?.get(i);
    if (extra) return extra;
    const out: Record<string, number> = {};
    for (let k = 0; k < SAMPLE_READING_KEYS.length; k++) {
      const value = this.columns[k]?.[i];
      if (value !== undefined && !Number.isNaN(value)) out[SAMPLE_READING_KEYS[k]!] = value;
    }
    return out as Readings;
  }

  /** Every sample as an object, made once and then kept (for readers that walk them whole). */
  points(): SamplePoint[] {
    const cache = (this.pointCache ??= []);
    for (let i = cache.length; i < this.length; i++)
      cache.push({ ts: this.ts[i]!, readings: this.readingsAt(i) });
    return cache;
  }

  private grow(): number {
    const i = this.length;
    if (i === this.ts.length) {
      const capacity = this.ts.length * 2;
      // Rows past `length` are written before they are read (push writes every column), so the
      // new room needs no filling.
      this.ts = extended(this.ts, capacity);
      for (let k = 0; k < this.columns.length; k++) {
        const column = this.columns[k];
        if (column) this.columns[k] = extended(column, capacity);
      }
    }
    this.length = i + 1;
    return i;
  }

  private columnFor(k: number): Float64Array {
    let column = this.columns[k];
    if (!column) {
      // The samples before this one did not have the reading.
      column = new Float64Array(this.ts.length).fill(NaN, 0, this.length);
      this.columns[k] = column;
    }
    return column;
  }
}

function extended(array: Float64Array, capacity: number): Float64Array {
  const out = new Float64Array(capacity);
  out.set(array);
  return out;
}
