// The timeline's reduction of a million samples to about two points a pixel: whatever it leaves
// out, every peak and every trough is drawn, at the sample it was read at.
import assert from "node:assert/strict";
import { test } from "node:test";
import { decimate } from "../../webview/lttb";

function noisyWithSpikes(n: number, spikes: number[]): { x: Float64Array; y: Float64Array } {
  const x = Float64Array.from({ length: n }, (_, i) => i / 1000);
  const y = Float64Array.from(
    { length: n },
    (_, i) => 1000 + ((i * 7919) % 97) + Math.floor(i / 50_000) * 300,
  );
  spikes.forEach((at, k) => (y[at] = y[at]! + (k % 2 === 0 ? 10_000 + k : -5000 - k)));
  return { x, y };
}

void test("a million samples reduced for a 1400 px chart keep every one-sample spike, up and down", () => {
  const n = 1_000_000;
  const spikes = Array.from({ length: 60 }, (_, k) => 1 + Math.floor(((k + 0.5) * (n - 2)) / 60) + (k % 7));
  const { x, y } = noisyWithSpikes(n, spikes);
  const out = decimate(x, y, 0, n, 2800);
  assert.ok(out.length <= 2810, `${out.length} points`);
  const drawn = new Set(out.map((p) => p.x));
  for (const at of spikes) assert.ok(drawn.has(x[at]!), `the spike at sample ${at} (${y[at]}) is drawn`);
  for (const p of out) assert.equal(p.y, y[Math.round(p.x * 1000)], "each point drawn is a sample as read");
  for (let i = 1; i < out.length; i++)
    assert.ok(out[i]!.x > out[i - 1]!.x, "points in time order, none twice");
});

void test("every stretch between two points drawn stays within the highest and lowest points drawn around it", () => {
  // The envelope: for each bucket of samples, its maximum and minimum are among the points drawn,
  // so the drawn line's top over the run is the run's top, whatever the window shown.
  const n = 200_000;
  const { x, y } = noisyWithSpikes(n, [17, 99_999, 199_990]);
  for (const [start, end] of [
    [0, n],
    [50_000, 150_000],
    [123, 4567],
  ] as const) {
    const out = decimate(x, y, start, end, 600);
    let max = -Infinity;
    let min = Infinity;
    for (let i = start; i < end; i++) {
      max = Math.max(max, y[i]!);
      min = Math.min(min, y[i]!);
    }
    assert.equal(Math.max(...out.map((p) => p.y)), max, `[${start}, ${end}): the top is drawn`);
    assert.equal(Math.min(...out.map((p) => p.y)), min, `[${start}, ${end}): the bottom is drawn`);
  }
});

void test("missing readings still break the line, and the peaks either side are kept", () => {
  const n = 50_000;
  const { x, y } = noisyWithSpikes(n, [1000, 30_000]);
  for (let i = 10_000; i < 20_000; i++) y[i] = NaN;
  const out = decimate(x, y, 0, n, 300);
  const gap = out.findIndex((p) => Number.isNaN(p.y));
  assert.ok(gap > 0 && out[gap - 1]!.x < 10 && out[gap + 1]!.x >= 20, "a NaN point separates the runs");
  assert.ok(out.some((p) => p.y === y[1000]) && out.some((p) => p.y === y[30_000]));
});
