// The host's side of scripts/bench-panel.ts: reads a run's events file into the run model and
// builds the panel's view model, timed, with the reader's fast path and with its full path
// (JSON.parse and the schema on every line). bench-panel.ts bundles this file with esbuild and
// runs it with plain `node`, as the extension's bundle runs: not the sources through tsx, whose
// loader slows every loop of the process by a third; each read in a fresh process.
//
//   node bench-reading.js FILE... > timings.json
import { execFileSync } from "node:child_process";
import { RunModel } from "../src/model/runModel";
import { buildSnapshot } from "../src/panel/viewModel";
import { readEventsFile } from "../src/runner/eventsFile";

/** Each timing is the best of this many runs: the machine may be shared, and the best is the code's own cost. */
export const RUNS = 2;

export interface ReadTiming {
  file: string;
  fastPath: boolean;
  /** Wall and CPU time (the reading process and its threads) of the read, best of RUNS. */
  ms: number;
  cpuMs: number;
  /** The view model (snapshot) of the model read, best of RUNS. */
  snapshotMs: number;
  samples: number;
  events: number;
}

/** One read of `file` into a model, and its view model, in this process. */
async function time(file: string, fastPath: boolean): Promise<ReadTiming> {
  const model = new RunModel();
  const cpu = process.cpuUsage();
  const start = performance.now();
  const report = await readEventsFile(file, (event) => model.add(event), {
    fastPath,
    onSample: (sample) => model.addSample(sample),
  });
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  if (report.malformedCount > 0) throw new Error(`${file}: ${report.malformedCount} malformed lines`);
  const snapshotStart = performance.now();
  const snapshot = buildSnapshot({
    id: "bench",
    model,
    meta: { id: "bench", label: "bench", started: "", host: null, command: ["bench"], status: "finished" },
  });
  return {
    file,
    fastPath,
    ms,
    cpuMs: (used.user + used.system) / 1000,
    snapshotMs: performance.now() - snapshotStart,
    samples: snapshot.sampleCount,
    events: model.eventCount,
  };
}

/**
 * `--one fast|full FILE`: one read in this process. Else each file both ways, each read in a fresh
 * process (as an editor reads the first run it opens: nothing compiled yet, no memory reused),
 * RUNS times; the best of each.
 */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--one") {
    process.stdout.write(JSON.stringify(await time(args[2]!, args[1] === "fast")));
    return;
  }
  const timings: ReadTiming[] = [];
  // The fast path first, as an editor opening a run reads it.
  for (const fastPath of [true, false]) {
    for (const file of args) {
      const runs: ReadTiming[] = [];
      for (let run = 0; run < RUNS; run++) {
        const out = execFileSync(process.execPath, [__filename, "--one", fastPath ? "fast" : "full", file], {
          encoding: "utf8",
        });
        runs.push(JSON.parse(out) as ReadTiming);
      }
      timings.push({
        ...runs[0]!,
        ms: Math.min(...runs.map((r) => r.ms)),
        cpuMs: Math.min(...runs.map((r) => r.cpuMs)),
        snapshotMs: Math.min(...runs.map((r) => r.snapshotMs)),
      });
    }
  }
  process.stdout.write(JSON.stringify(timings));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
