// A target run under the real probe launcher (`python3 -m memlens_probe run`, python-probe of this
// tree), for tests that read the run's events afterwards.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import type { ProbeEvent } from "../../src/protocol/events";
import { parseEventsText } from "../../src/protocol/reader";

const PROBE_DIR = path.resolve(__dirname, "../../python-probe");

export interface ProbeLaunch {
  /** The plan, written to DIR/plan.json. */
  plan: object;
  /** A folder of the test's: the plan and the run folder (DIR/run) go there. */
  dir: string;
  /** The target's command and working directory. */
  command: string[];
  cwd: string;
  timeoutMs: number;
}

/** Runs the target to its end under the probe; its run folder and every event it wrote. */
export async function runUnderProbe(launch: ProbeLaunch): Promise<{ runDir: string; events: ProbeEvent[] }> {
  const planPath = path.join(launch.dir, "plan.json");
  const runDir = path.join(launch.dir, "run");
  writeFileSync(planPath, JSON.stringify(launch.plan));
  await promisify(execFile)(
    "python3",
    [
      "-m",
      "memlens_probe",
      "run",
      "--plan",
      planPath,
      "--out",
      runDir,
      "--no-stdin-control",
      "--",
      ...launch.command,
    ],
    {
      cwd: launch.cwd,
      env: { ...process.env, PYTHONPATH: PROBE_DIR },
      timeout: launch.timeoutMs,
    },
  );
  const parsed = parseEventsText(readFileSync(path.join(runDir, "events.jsonl"), "utf8"));
  assert.equal(parsed.versionError, undefined);
  return { runDir, events: parsed.events };
}
