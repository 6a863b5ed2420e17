// The host's side of scripts/bench-panel.ts: reads a run's events file into the run model and
// builds the panel's view model, timed, with the reader's fast path and with its full path
// (JSON.parse and the schema on every line). bench-panel.ts bundles this file with esbuild and
// runs it in its own plain `node` process, as the extension's bundle runs: not the sources through
// tsx, whose loader slows every loop of the process by a third, and not in a process that just
// wrote a million events.
//
//   node bench-reading.js FILE... > timings.json
import { RunModel } from "../src/model/runModel";
import { buildSnapshot } from "../src/panel/viewModel";
import { readEventsFile } from "../src/runner/eventsFile";

/** Each timing is the best of this many runs: the machine may be shared, and the best is the code's own cost. */
export const RUNS = 2;

export interface ReadTiming {
  file: string;
  fastPath: boolean;
  /** Wall and CPU time (this process and its threads) of the read, best of RUNS. */
  ms: number;
  cpuMs: number;
  /** The view model (snapshot) of the model read, best of RUNS. */
  snapshotMs: number;
  samples: number;
  events: number;
}

async function time(file: string, fastPath: boolean): Promise<ReadTiming> {
  const out: ReadTiming = {
    file,
    fastPath,
    ms: Infinity,
    cpuMs: Infinity,
    snapshotMs: Infinity,
    samples: 0,
    events: 0,
  };
  for (let run = 0; run < RUNS; run++) {
    const model = new RunModel();
    const cpu = process.cpuUsage();
    const start = performance.now();
    const report = await readEventsFile(file, (event) => model.add(event), {
      fastPath,
      onSample: (sample) => model.addSample(sample),
    });
    out.ms = Math.min(out.ms, performance.now() - start);
    const used = process.cpuUsage(cpu);
    out.cpuMs = Math.min(out.cpuMs, (used.user + used.system) / 1000);
    if (report.malformedCount > 0) throw new Error(`${file}: ${report.malformedCount} malformed lines`);
    const snapshotStart = performance.now();
    const snapshot = buildSnapshot({
      id: "bench",
      model,
      meta: { id: "bench", label: "bench", started: "", host: null, command: ["bench"], status: "finished" },
    });
    out.snapshotMs = Math.min(out.snapshotMs, performance.now() - snapshotStart);
    out.samples = snapshot.sampleCount;
    out.events = model.eventCount;
  }
  return out;
}

async function main(): Promise<void> {
  const files = process.argv.slice(2);
  const timings: ReadTiming[] = [];
  // The fast path first, as an editor opening a run reads it, before the full path's millions of
  // objects keep the collector busy.
  for (const fastPath of [true, false]) for (const file of files) timings.push(await time(file, fastPath));
  process.stdout.write(JSON.stringify(timings));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
