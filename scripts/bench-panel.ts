// Renders a run of 1,000,000 samples in the memory panel (the built bundle, in Chromium) and
// prints the time to first paint and to a zoom, with the machine named. Goal: under 1 s each.
//
//   node --import tsx scripts/bench-panel.ts [--samples N] [--assert]
//
// --assert exits 1 when a goal is missed (timings depend on the machine, so CI only prints).
import os from "node:os";
import { RunModel } from "../src/model/runModel";
import { buildSnapshot } from "../src/panel/viewModel";
import type { ProbeEvent } from "../src/protocol/events";
import { envelope, ShowRun } from "../webview/protocol";
import { launchBrowser, openPanel, PanelServer } from "../test/webview/harness";

const GOAL_MS = 1000;
const MiB = 1024 ** 2;

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** A synthetic load: one GPU process sampled every millisecond, with a staircase of allocations. */
function syntheticRun(samples: number): RunModel {
  const model = new RunModel();
  const t0 = 1_764_000_000_000_000_000;
  const common = (ts: number) => ({ v: 1, ts: t0 + ts, pid: 7, rank: 0, device: 0 });
  model.add({
    ...common(0),
    type: "start",
    run_id: "bench",
    argv: ["bench"],
    cwd: "/",
    plan: {},
    probe_version: "bench",
  });
  model.add({ ...common(1), type: "hello", ppid: 1, argv: ["bench"], origin: "main", torch: "2.11" });
  const layers = 24;
  const perLayer = Math.floor(samples / layers);
  let allocated = 0;
  for (let i = 0; i < samples; i++) {
    const ts = 2 + i * 1_000_000;
    const layer = Math.floor(i / perLayer);
    if (i % perLayer === 0 && layer < layers) {
      model.add({
        ...common(ts),
        type: "enter",
        target: "t1",
        scope_id: `7:${layer}`,
        parent: null,
        call: layer + 1,
        depth: 0,
        before: { allocated },
      } as ProbeEvent);
    }
    // noise on top of the staircase, and a transient spike in each layer
    allocated =
      layer * 550 * MiB + ((i * 7919) % 97) * MiB + (i % perLayer === perLayer >> 1 ? 800 * MiB : 0);
    const reserved = Math.ceil(allocated / (20 * MiB)) * 20 * MiB;
    model.add({
      ...common(ts),
      type: "sample",
      readings: {
        allocated,
        reserved,
        device_used: reserved + 510 * MiB,
        host_rss: 900 * MiB + (i % 1000) * 4096,
      },
    });
    if (i % perLayer === perLayer - 1 && layer < layers) {
      model.add({
        ...common(ts),
        type: "exit",
        target: "t1",
        scope_id: `7:${layer}`,
        parent: null,
        call: layer + 1,
        depth: 0,
        before: { allocated: layer * 550 * MiB },
        after: { allocated },
        peak: { allocated: allocated + 800 * MiB },
        duration_ns: perLayer * 1_000_000,
        raised: null,
      } as ProbeEvent);
    }
  }
  return model;
}

async function main(): Promise<void> {
  const samples = Number(argValue("--samples") ?? 1_000_000);
  if (!Number.isInteger(samples) || samples < 10) {
    throw new Error(`--samples must be an integer ≥ 10, got ${argValue("--samples")}`);
  }
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const modelStart = performance.now();
  const model = syntheticRun(samples);
  const modelMs = performance.now() - modelStart;
  const buildStart = performance.now();
  const snapshot = buildSnapshot({
    id: "bench",
    model,
    meta: {
      id: "bench",
      label: `${samples.toLocaleString("en-US")} samples`,
      started: new Date().toISOString(),
      host: null,
      command: ["bench"],
      status: "finished",
    },
  });
  const buildMs = performance.now() - buildStart;

  const server = await PanelServer.start();
  const browser = await launchBrowser();
  try {
    const panel = await openPanel(browser, server, { width: 1400, height: 900 });
    const page = panel.page;
    await page.evaluate(() => {
      const w = window as unknown as { __messageAt?: number };
      window.addEventListener("message", () => (w.__messageAt = performance.now()), { capture: true });
    });
    await panel.send(envelope(ShowRun, { snapshot, pinned: false }));
    const paint = await page.evaluate(
      () =>
        new Promise<{ handled: number; painted: number; points: number }>((resolve) => {
          const w = window as unknown as {
            __messageAt: number;
            __memlens: { charts: { timeline: { data: { datasets: { data: unknown[] }[] } } } };
          };
          const handled = performance.now() - w.__messageAt;
          requestAnimationFrame(() =>
            requestAnimationFrame(() =>
              resolve({
                handled,
                painted: performance.now() - w.__messageAt,
                points: w.__memlens.charts.timeline.data.datasets.reduce((n, d) => n + d.data.length, 0),
              }),
            ),
          );
        }),
    );

    // A wheel zoom on the middle of the chart, timed from the wheel event to the painted frame.
    const canvas = await page.waitForSelector("#timeline");
    const box = (await canvas.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.evaluate(() => {
      const w = window as unknown as { __zoomed: Promise<number> };
      w.__zoomed = new Promise((resolve) => {
        window.addEventListener(
          "wheel",
          () => {
            const start = performance.now();
            requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - start)));
          },
          { capture: true, once: true },
        );
      });
    });
    await page.mouse.wheel(0, -500);
    const zoomMs = await page.evaluate(() => (window as unknown as { __zoomed: Promise<number> }).__zoomed);
    const range = await page.evaluate(() =>
      (
        window as unknown as {
          __memlens: { timeline: { visibleRange(): { min: number; max: number } | undefined } };
        }
      ).__memlens.timeline.visibleRange(),
    );
    if (!range) throw new Error("the wheel did not zoom the timeline");

    // Drag-zoom to 2 % of the width, timed from the mouse release to the painted frame.
    const y = box.y + box.height * 0.6;
    await page.mouse.move(box.x + box.width * 0.4, y);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.42, y, { steps: 4 });
    await page.evaluate(() => {
      const w = window as unknown as { __dragged: Promise<number> };
      w.__dragged = new Promise((resolve) => {
        window.addEventListener(
          "mouseup",
          () => {
            const start = performance.now();
            requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - start)));
          },
          { capture: true, once: true },
        );
      });
    });
    await page.mouse.up();
    const dragMs = await page.evaluate(() => (window as unknown as { __dragged: Promise<number> }).__dragged);
    const dragRange = await page.evaluate(() =>
      (
        window as unknown as {
          __memlens: { timeline: { visibleRange(): { min: number; max: number } | undefined } };
        }
      ).__memlens.timeline.visibleRange(),
    );
    if (!dragRange || dragRange.max - dragRange.min >= range.max - range.min)
      throw new Error("the drag did not zoom in");

    // Reset zoom: back to all samples.
    const resetMs = await page.evaluate(
      () =>
        new Promise<number>((resolve) => {
          const start = performance.now();
          const button = document.getElementById("reset-zoom") as HTMLButtonElement;
          if (button.disabled) throw new Error("Reset zoom is disabled while zoomed");
          button.click();
          requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - start)));
        }),
    );
    const problems = await panel.problems();
    await panel.close();

    const ms = (v: number) => `${v.toFixed(0)} ms`;
    const verdict = (v: number) => (v < GOAL_MS ? "ok" : `MISSED (goal < ${GOAL_MS} ms)`);
    console.log(`memory panel benchmark: ${samples.toLocaleString("en-US")} samples × 4 readings, 1 process`);
    console.log(
      `machine: ${cpu}, ${os.cpus().length} cores, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, ${os.platform()} ${os.release()}`,
    );
    console.log(
      `browser: Chromium ${browser.version()} (software rendering, --disable-gpu); node ${process.version}`,
    );
    console.log(`host: run model of the events in ${ms(modelMs)}, view model (snapshot) in ${ms(buildMs)}`);
    console.log(
      `first paint: ${ms(paint.painted)} (handler ${ms(paint.handled)}, ${paint.points.toLocaleString("en-US")} points drawn)  ${verdict(paint.painted)}`,
    );
    console.log(
      `zoom (wheel): ${ms(zoomMs)} to ${(range.max - range.min).toFixed(1)} s of ${snapshot.durationS.toFixed(1)} s  ${verdict(zoomMs)}`,
    );
    console.log(
      `zoom (drag): ${ms(dragMs)} to ${(dragRange.max - dragRange.min).toFixed(1)} s  ${verdict(dragMs)}`,
    );
    console.log(`reset zoom: ${ms(resetMs)}`);
    if (problems.length > 0) {
      console.log(`webview problems: ${problems.join("; ")}`);
      process.exitCode = 1;
    }
    if (process.argv.includes("--assert") && Math.max(paint.painted, zoomMs, dragMs) >= GOAL_MS)
      process.exitCode = 1;
  } finally {
    await browser.close();
    await server.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
