// One description of a run, shared by "Measure here", the debugger (launch.json) and the CLI, and
// the runner's record of a run.
import { z } from "zod";
import type { RunTarget } from "../model/plan";
import type { RunStatus } from "../model/runStatus";
import type { ControlMessage, Plan, ProbeEvent } from "../protocol/events";

const stringArray = z.array(z.string());

export const pathMappingSchema = z.object({
  /** Path prefix as the host sees it (site-packages or a checkout). */
  remote: z.string().min(1),
  /** The same tree in the local workspace. */
  local: z.string().min(1),
});
export type PathMapping = z.infer<typeof pathMappingSchema>;

/**
 * A run: what runs where, and how it is measured. The settings, a launch configuration and the
 * CLI all make one; the debugger's launch arguments are this schema plus its own fields.
 */
export const runDescriptionSchema = z.object({
  /** Python interpreter on the machine that runs the target (local, or on `host`). */
  python: z.string().min(1, "python must name an interpreter, e.g. python3"),
  /**
   * Target command. Empty/undefined: the bundled loader script, which builds vLLM's LLM with the
   * checklist's minimal configuration (gpu_memory_utilization, max_model_len=32, enforce_eager).
   */
  command: stringArray.optional(),
  /** Model path or name passed to the bundled loader. */
  model: z.string().optional(),
  env: z.record(z.string()).optional(),
  cwd: z.string().optional(),
  /** `user@host` or an alias from ~/.ssh/config; empty = run locally. */
  host: z.string().optional(),
  /** Extra arguments for the system ssh client (e.g. ["-p", "2222", "-i", "key"]). */
  sshArgs: stringArray.optional(),
  /** Prefix the command runs inside, e.g. ["docker", "exec", "-i", "NAME"]; inside ssh when host is set. */
  wrapper: stringArray.optional(),
  /** Where the probe zipapp is cached on the host. */
  remoteCacheDir: z.string().optional(),
  pathMappings: z.array(pathMappingSchema).optional(),
  sampleIntervalMs: z.number().min(0).optional(),
  /** Allocation sites (the plan's `sites_calls`) for the first N calls of each sites target per process; 0: every call. */
  sitesCalls: z.number().int().min(0).optional(),
  /** gpu_memory_utilization the bundled loader passes to vLLM. */
  gpuMemoryUtilization: z.number().min(0.05).max(1).optional(),
  /** Emulate a card of this many GiB on a bigger one (torch allocations capped; labelled as emulation). */
  emulateGpuGiB: z.number().positive().nullable().optional(),
});
export type RunDescription = z.infer<typeof runDescriptionSchema>;

export interface RunMeta {
  id: string;
  label: string;
  /** ISO time. */
  started: string;
  finished?: string;
  host: string | null;
  command: string[];
  status: RunStatus;
  exitCode?: number | null;
  signal?: string | null;
  /** The plan's targets with the catalog id / user pick each came from. */
  targets?: RunTarget[];
  error?: string;
  /** Wrapper prefix the target ran inside (docker exec …), if any. */
  wrapper?: string[];
  /** Local pid of the process MemLens started (launcher, ssh or wrapper), to tell a live run from a crashed one. */
  pid?: number;
  /** Set when the run emulated a smaller card: torch allocations were capped at deviceBytes. */
  emulation?: { gpuGiB: number; deviceBytes: number; gpuMemoryUtilization?: number };
  /** The run's folder on the host (remote and wrapper runs); the local folder holds the record. */
  hostRunDir?: string;
  /** Last lines of stderr (the target's, then the launcher's or ssh's) when the run failed. */
  stderrTail?: string[];
  /** Lines of the event stream that were not events (see src/protocol/reader.ts). */
  malformedLines?: number;
  /** Lines of the event stream skipped as repeats of an earlier line (see src/protocol/reader.ts). */
  duplicateLines?: number;
  /** Events that reached the views but could not be written to events.jsonl (a full disk). */
  unwrittenEvents?: number;
  /** Why the run's record (events.jsonl, stderr.log, meta.json) is incomplete, when it is. */
  recordError?: string;
}

export interface RunRequest {
  description: RunDescription;
  plan: Plan;
  label: string;
  /** Parent folder; the run gets its own subfolder. */
  runsDir: string;
  targets?: RunMeta["targets"];
}

export interface RunOutcome {
  meta: RunMeta;
  /** Launcher/ssh stderr that was not an event (for error messages). */
  stderrTail: string[];
}

export interface RunHandle {
  readonly id: string;
  readonly dir: string;
  onEvent(listener: (e: ProbeEvent) => void): () => void;
  /** Lines the target printed are `log` events; this is the launcher's or ssh's own stderr. */
  onStderr(listener: (line: string) => void): () => void;
  send(message: ControlMessage): void;
  /** Ends the whole process tree (on the host too) and resolves when the run has ended. */
  stop(): Promise<RunOutcome>;
  readonly done: Promise<RunOutcome>;
}
