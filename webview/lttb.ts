// Largest-Triangle-Three-Buckets over typed arrays (Steinarsson, 2013), for the visible range
// only, so a million samples cost one linear pass per redraw and zooming in shows full detail;
// each bucket's lowest and highest readings are kept beside LTTB's pick, so every peak is drawn.
// NaN marks a missing reading: each run of real values is reduced on its own and the runs are
// kept apart by a NaN point, so the line breaks instead of bridging the gap.

export interface XY {
  x: number;
  y: number;
}

/** First index whose x is >= value (x ascending). */
export function lowerBound(x: ArrayLike<number>, value: number, end = x.length): number {
  let lo = 0;
  let hi = end;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (x[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the last sample at or before `value`, or -1. */
export function indexAtOrBefore(x: ArrayLike<number>, value: number, end = x.length): number {
  let lo = 0;
  let hi = end;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (x[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

function lttbRun(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  start: number,
  end: number,
  threshold: number,
  out: XY[],
) {
  const count = end - start;
  if (count <= threshold || threshold < 5) {
    for (let i = start; i < end; i++) out.push({ x: x[i]!, y: y[i]! });
    return;
  }
  // Up to three points a bucket: LTTB's pick, and the bucket's lowest and highest readings, so
  // that no peak (an OOM's last climb, a transient spike) falls between the points drawn.
  const buckets = Math.max(1, Math.floor((threshold - 2) / 3));
  const bucket = (count - 2) / buckets;
  let a = start;
  out.push({ x: x[a]!, y: y[a]! });
  for (let b = 0; b < buckets; b++) {
    const nextStart = start + Math.floor((b + 1) * bucket) + 1;
    const nextEnd = Math.min(start + Math.floor((b + 2) * bucket) + 1, end);
    let avgX = 0;
    let avgY = 0;
    for (let j = nextStart; j < nextEnd; j++) {
      avgX += x[j]!;
      avgY += y[j]!;
    }
    const n = nextEnd - nextStart;
    avgX /= n;
    avgY /= n;
    const from = start + Math.floor(b * bucket) + 1;
    const to = start + Math.floor((b + 1) * bucket) + 1;
    const ax = x[a]!;
    const ay = y[a]!;
    let best = from;
    let bestArea = -1;
    let low = from;
    let high = from;
    for (let j = from; j < to; j++) {
      const yj = y[j]!;
      const area = Math.abs((ax - avgX) * (yj - ay) - (ax - x[j]!) * (avgY - ay));
      if (area > bestArea) {
        bestArea = area;
        best = j;
      }
      if (yj < y[low]!) low = j;
      if (yj > y[high]!) high = j;
    }
    for (const i of [...new Set([low, best, high])].sort((p, q) => p - q)) out.push({ x: x[i]!, y: y[i]! });
    a = best;
  }
  out.push({ x: x[end - 1]!, y: y[end - 1]! });
}

/** Points of (x, y)[start, end) reduced to about `threshold` points. */
export function decimate(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  start: number,
  end: number,
  threshold: number,
): XY[] {
  const out: XY[] = [];
  const total = end - start;
  if (total <= 0) return out;
  // Split into runs of real values.
  const runs: [number, number][] = [];
  let runStart = -1;
  for (let i = start; i < end; i++) {
    const real = !Number.isNaN(y[i]!);
    if (real && runStart < 0) runStart = i;
    else if (!real && runStart >= 0) {
      runs.push([runStart, i]);
      runStart = -1;
    }
  }
  if (runStart >= 0) runs.push([runStart, end]);
  for (let r = 0; r < runs.length; r++) {
    const [s, e] = runs[r]!;
    if (r > 0) out.push({ x: x[s - 1]!, y: NaN });
    lttbRun(x, y, s, e, Math.max(3, Math.round((threshold * (e - s)) / total)), out);
  }
  return out;
}
