// Largest-Triangle-Three-Buckets over typed arrays (Steinarsson, 2013), for the visible range
// only, so a million samples cost one linear pass per redraw and zooming in shows full detail.
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
  if (count <= threshold || threshold < 3) {
    for (let i = start; i < end; i++) out.push({ x: x[i]!, y: y[i]! });
    return;
  }
  const bucket = (count - 2) / (threshold - 2);
  let a = start;
  out.push({ x: x[a]!, y: y[a]! });
  for (let b = 0; b < threshold - 2; b++) {
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
    for (let j = from; j < to; j++) {
      const area = Math.abs((ax - avgX) * (y[j]! - ay) - (ax - x[j]!) * (avgY - ay));
      if (area > bestArea) {
        bestArea = area;
        best = j;
      }
    }
    out.push({ x: x[best]!, y: y[best]! });
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
