// The two-rank stand-in of vLLM's tensor parallelism (test/fixtures/dap/tp_load.py) run under the
// real probe launcher: a parent and one spawn worker per rank. Each worker prints the rank
// torch.distributed gave it (or RANK, without torch), so tests compare every event with it.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { RunModel } from "../../src/model/runModel";
import { runUnderProbe } from "./probeLauncher";
import type { ProbeEvent } from "../../src/protocol/events";

export const REPO_ROOT = path.resolve(__dirname, "../..");
export const TP_DIR = path.join(REPO_ROOT, "test/fixtures/dap");
export const TP_SCRIPT = path.join(TP_DIR, "tp_load.py");
export const TP_WORKER_FILE = path.join(TP_DIR, "vllm/v1/worker/gpu_worker.py");
export const MiB = 1024 * 1024;

/** A Python with torch (for the gloo process group): MEMLENS_TORCH_PYTHON, else python3 if it has torch. */
export function torchPython(): string | undefined {
  for (const python of [process.env.MEMLENS_TORCH_PYTHON, "python3"]) {
    if (!python) continue;
    try {
      execFileSync(python, ["-c", "import torch.distributed"], { stdio: "ignore", timeout: 60_000 });
      return python;
    } catch {
      continue;
    }
  }
  return undefined;
}

export const TP_TARGETS = [
  { id: "init", function: "vllm.v1.worker.gpu_worker:Worker.init_device" },
  { id: "load", function: "vllm.v1.worker.gpu_worker:Worker.load_model" },
  {
    id: "ws",
    function: "vllm.model_executor.layers.quantization.utils.marlin_utils:marlin_make_workspace_new",
  },
  { id: "profile", function: "vllm.v1.worker.gpu_worker:Worker.determine_available_memory" },
  { id: "kv", function: "vllm.v1.worker.gpu_worker:Worker.initialize_from_config" },
];

export interface TpWorker {
  pid: number;
  /** What torch.distributed.get_rank() (or RANK) said in that process. */
  rank: number;
  via: "torch.distributed" | "env";
}

export interface TpRun {
  runDir: string;
  events: ProbeEvent[];
  model: RunModel;
  workers: TpWorker[];
  remove(): void;
}

/** The workers' own report of their rank, from the run's log lines. */
export function workersOf(events: readonly ProbeEvent[]): TpWorker[] {
  const out: TpWorker[] = [];
  for (const e of events) {
    if (e.type !== "log") continue;
    for (const m of e.line.matchAll(
      /tp worker pid=(\d+) rank=(\d+) world=\d+ via=(torch\.distributed|env)/g,
    )) {
      out.push({ pid: Number(m[1]), rank: Number(m[2]), via: m[3] as TpWorker["via"] });
    }
  }
  return out.sort((a, b) => a.rank - b.rank);
}

/** Runs the stand-in under the probe (`python3 -m memlens_probe run`) with `python` as the target's interpreter. */
export async function runTpStandIn(python: string, args: string[] = []): Promise<TpRun> {
  const dir = mkdtempSync(path.join(tmpdir(), "memlens-tp-"));
  const { runDir, events } = await runUnderProbe({
    plan: { version: 1, targets: TP_TARGETS, sample_interval_ms: 20 },
    dir,
    command: [python, TP_SCRIPT, ...args],
    cwd: TP_DIR,
    timeoutMs: 180_000,
  });
  const workers = workersOf(events);
  assert.equal(workers.length, 2, "both workers reported their rank");
  return {
    runDir,
    events,
    model: RunModel.fromEvents(events),
    workers,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
