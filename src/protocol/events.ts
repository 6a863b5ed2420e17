// Protocol v1 between the Python probe and MemLens. The contract is python-probe/PROTOCOL.md;
// both sides test against python-probe/examples/*.jsonl.

export const PROTOCOL_VERSION = 1;

/** Byte counts; a key whose source was missing is absent, never 0. */
export interface Readings {
  allocated?: number;
  reserved?: number;
  /** requested_bytes: what tensors asked for; allocated - requested is the allocator's rounding slack. */
  requested?: number;
  device_used?: number;
  device_total?: number;
  non_torch?: number;
  process_used?: number;
  host_rss?: number;
  host_hwm?: number;
}
export type ReadingKey = keyof Readings;
export const READING_KEYS: readonly ReadingKey[] = [
  "allocated",
  "reserved",
  "device_used",
  "device_total",
  "non_torch",
  "process_used",
  "host_rss",
  "host_hwm",
];

export interface Peak {
  allocated?: number;
  reserved?: number;
  /** Peak of what tensors asked for (before rounding), the unit of torch's memory history. */
  requested?: number;
  /** Sampled, so a lower bound. */
  host_rss?: number;
}

interface Common {
  v: number;
  ts: number;
  pid: number;
  rank: number | null;
  device: number | null;
}

export interface StackFrame {
  target: string;
  scope_id: string;
  call: number;
  file?: string;
  line?: number;
}

export interface StartEvent extends Common {
  type: "start";
  run_id: string;
  argv: string[];
  cwd: string;
  plan: unknown;
  probe_version: string;
  python?: string;
  hostname?: string;
  /** What the run ran on (package metadata and NVML, read by the launcher). */
  environment?: RunEnvironment;
}
export interface RunEnvironment {
  executable?: string;
  packages?: Record<string, string>;
  driver?: string;
  cuda_driver?: string;
  gpus?: { index: number; name: string; memory_total: number }[];
}
export interface HelloEvent extends Common {
  type: "hello";
  ppid: number;
  argv: string[];
  executable?: string;
  python?: string;
  origin: "main" | "spawn" | "fork" | "subprocess";
  torch: string | null;
  probe_version?: string;
  /** The interpreter's own argv (sys.orig_argv), where available. */
  orig_argv?: string[];
}
export interface TargetResolvedEvent extends Common {
  type: "target_resolved";
  target: string;
  kind: "function" | "line";
  spec: string;
  module?: string;
  qualname?: string;
  file?: string;
  line?: number;
  end_line?: number;
  aliases?: string[];
}
export interface TargetNotFoundEvent extends Common {
  type: "target_not_found";
  target: string;
  spec: string;
  reason: string;
}
export interface EnterEvent extends Common {
  type: "enter";
  target: string;
  scope_id: string;
  parent: string | null;
  call: number;
  depth: number;
  thread?: string;
  before: Readings;
  file?: string;
  line?: number;
  /** multiprocessing's name for the process (e.g. vLLM's "EngineCore_0"), when not MainProcess. */
  process_name?: string;
}
export interface ExitEvent extends Omit<EnterEvent, "type"> {
  type: "exit";
  after: Readings;
  peak: Peak;
  duration_ns: number;
  raised: string | null;
}
export interface PausedEvent extends Common {
  type: "paused";
  target: string;
  scope_id: string;
  at: "entry" | "exit";
  reason: "pause_target" | "step" | "pause_request";
  stack: StackFrame[];
  readings: Readings;
  since_entry?: Readings;
  peak?: Peak;
  process_name?: string;
}
export interface ResumedEvent extends Common {
  type: "resumed";
  scope_id: string;
  mode: ContinueMode;
}
export interface SampleEvent extends Common {
  type: "sample";
  readings: Readings;
}
export interface LogEvent extends Common {
  type: "log";
  stream: "stdout" | "stderr";
  line: string;
}
export type FactKind =
  | "model_loading"
  | "available_kv_cache"
  | "kv_cache_size"
  | "max_concurrency"
  | "graph_capture"
  | "memory_profiling"
  | "no_kv_memory"
  | "free_memory_low"
  | "cuda_oom"
  | "kv_cache_too_small"
  | "kv_cache_blocks"
  | "cuda_graph_estimate"
  | "cuda_graph_pool"
  | "memory_usage"
  | "emulated_device";
export interface FactEvent extends Common {
  type: "fact";
  /** A FactKind; readers keep kinds they do not know (newer probes add some). */
  kind: string;
  values: Record<string, number>;
  line: string;
}
export interface OomEvent extends Common {
  type: "oom";
  target: string;
  scope_id: string;
  stack: StackFrame[];
  readings: Readings;
  message: string;
  /** The allocator snapshot (memory_viz pickle, protocol 4); relative to the run folder when written there. */
  snapshot_file?: string;
  /** The failed request, from torch's message ("Tried to allocate 2.00 GiB"), as printed. */
  request_bytes?: number;
  /** The allocator at the OOM; fragmentation = inactive_split_bytes. Keys whose source is missing are absent. */
  allocator?: OomAllocator;
  /** The 10 largest live allocations at the OOM (only where torch's memory history recorded stacks). */
  largest_blocks?: OomBlock[];
  /** Target ids of the probed scopes open at the OOM, outermost first. */
  scope_stack?: string[];
}
export interface OomAllocator {
  free_bytes: number;
  total_bytes: number;
  reserved_bytes: number;
  allocated_bytes: number;
  inactive_split_bytes: number;
}
export interface OomBlock {
  bytes: number;
  file: string;
  line: number;
  function: string;
  stack?: string;
}
export interface ErrorEvent extends Common {
  type: "error";
  message: string;
  where?: string;
}
export interface ByeEvent extends Common {
  type: "bye";
  exitcode?: number | null;
  /** Time the probe spent in this process (ns), for its own overhead figure. */
  probe_ns?: number;
  /** Probed scopes this process opened. */
  scopes?: number;
}
export interface EndEvent extends Common {
  type: "end";
  exit_code: number | null;
  signal: string | null;
  duration_ns: number;
  stopped: boolean;
  counts: Record<string, number>;
}

/** Something the probe wants the user to know about a target or process (compiled callers,
 * CUDA graph capture, a lost channel). */
export interface NoteEvent extends Common {
  type: "note";
  kind: string;
  message: string;
  target?: string;
}
/** One allocation site of a scope: torch's memory history reduced to a line (requested bytes). */
export interface AllocationSite {
  file: string;
  line: number;
  function: string;
  allocated_bytes: number;
  freed_bytes: number;
  live_at_exit_bytes: number;
  at_peak_bytes: number;
  count: number;
  stacks?: { stack: string; count: number }[];
  root_file?: string;
  root_line?: number;
  root_function?: string;
}
/** Where a probed call's memory went, line by line (sent after its exit). */
export interface SitesEvent extends Common {
  type: "sites";
  target: string;
  scope_id: string;
  call: number;
  sites: AllocationSite[];
  peak_bytes: number;
  delta_bytes: number;
  freed_earlier_bytes: number;
  /** A file in the run folder with the raw history, when kept. */
  trace_file?: string;
}

export type ProbeEvent =
  | StartEvent
  | NoteEvent
  | SitesEvent
  | HelloEvent
  | TargetResolvedEvent
  | TargetNotFoundEvent
  | EnterEvent
  | ExitEvent
  | PausedEvent
  | ResumedEvent
  | SampleEvent
  | LogEvent
  | FactEvent
  | OomEvent
  | ErrorEvent
  | ByeEvent
  | EndEvent;

export type EventType = ProbeEvent["type"];

export type ContinueMode = "run" | "step_over" | "step_into";

export type ControlMessage =
  | { type: "stop" }
  | { type: "continue"; pid?: number; mode?: ContinueMode }
  | { type: "pause"; pid?: number }
  | { type: "set_pause"; targets: string[] };

export interface Plan {
  version: 1;
  targets: PlanTarget[];
  pause?: string[];
  sample_interval_ms?: number;
  emulate_device_bytes?: number | null;
  /** Absolute folders of the user's source: sites' root frames and OOM blocks are named under them. */
  source_roots?: string[];
  /** The most torch memory-history entries one sites recording keeps (probe default 100000). */
  sites_max_entries?: number;
  /** The first N calls of each sites target in each process get a `sites` event (N >= 1); absent
   * or null: every call (the probe's default). */
  sites_calls?: number | null;
}
/** `sites: true`: the probe records where the target's memory goes (a `sites` event per call). */
export type PlanTarget =
  | { id: string; function: string; sites?: boolean }
  | { id: string; line: string; sites?: boolean };
