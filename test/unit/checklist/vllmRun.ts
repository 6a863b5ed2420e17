// Synthetic event streams of a vLLM gpt-oss-20b load, following PROTOCOL.md v1 field for field:
// the launcher's start/log/fact/end, the engine-core process's hello, target_resolved, enter/exit
// with readings, samples, bye. Each scenario flag flips one answer of the checklist.
import type { ProbeEvent, Readings } from "../../../src/protocol/events";
import type { RunMeta } from "../../../src/runner/types";

export const GiB = 1024 ** 3;
const MARLIN_FP4 = "/opt/vllm/vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py";
export const CONTIGUOUS_LINE = 298;
export const CONTIGUOUS_TEXT = "            qweight = weight[i].view(torch.int32).T.contiguous()";

export interface Scenario {
  layers: number;
  /** Expert weight tensors repacked per layer (w13 and w2 of each expert). */
  repacksPerLayer: number;
  workspacePerLayer: boolean;
  /** Bytes one workspace keeps (0: freed inside the call). */
  workspaceBytes: number;
  originalsFreed: boolean;
  conversionTransient: number;
  contiguousCopy: boolean;
  repackInPlace: boolean;
  kv: "allocated" | "none";
  nonTorch: number;
  activationPeak: number;
  concurrency: number;
  graphBytes: number | null;
  slack: number;
  fusedTransient: number;
  oomAfterKv: boolean;
  /** Give the line target the checklist's own id (as "Add the Probe This Item Needs" does). */
  checklistLineId: boolean;
}

export const YES: Scenario = {
  layers: 24,
  repacksPerLayer: 64,
  workspacePerLayer: true,
  workspaceBytes: 2560,
  originalsFreed: true,
  conversionTransient: 283_115_520,
  contiguousCopy: true,
  repackInPlace: false,
  kv: "allocated",
  nonTorch: 140_509_184,
  activationPeak: Math.round(1.4 * GiB),
  concurrency: 38_243,
  graphBytes: Math.round(0.47 * GiB),
  slack: 48 * 1024 * 1024,
  fusedTransient: 95_420_416,
  oomAfterKv: false,
  checklistLineId: false,
};

export const NO: Scenario = {
  layers: 24,
  repacksPerLayer: 64,
  workspacePerLayer: false,
  workspaceBytes: 2560,
  originalsFreed: false,
  conversionTransient: 0,
  contiguousCopy: false,
  repackInPlace: true,
  kv: "none",
  nonTorch: 0,
  activationPeak: 0,
  concurrency: 1,
  graphBytes: 0,
  slack: 0,
  fusedTransient: 0,
  oomAfterKv: false,
  checklistLineId: false,
};

const ORIGINAL_PER_LAYER = 423_567_360;
const PADDED_PER_LAYER = 461_815_808;
const EXPERT_TENSOR = 8_294_400;
const LAUNCHER = 4100;
const TARGET = 4101;
const ENGINE = 4202;
const TOTAL = 85_031_714_816; // 79.19 GiB, an H100 80GB as cudaMemGetInfo reports it

export const TARGET_SPECS = {
  load: "vllm.v1.worker.gpu_model_runner:GPUModelRunner.load_model",
  prepare: "vllm.model_executor.layers.quantization.utils.marlin_utils_fp4:prepare_moe_fp4_layer_for_marlin",
  workspace: "vllm.model_executor.layers.quantization.utils.marlin_utils:marlin_make_workspace_new",
  repack: "vllm._custom_ops:gptq_marlin_repack",
  line: `${MARLIN_FP4}:${CONTIGUOUS_LINE}`,
  profile: "vllm.v1.worker.gpu_model_runner:GPUModelRunner.profile_run",
  kv: "vllm.v1.worker.gpu_model_runner:GPUModelRunner.initialize_kv_cache",
  fused: "vllm.model_executor.layers.fused_moe.fused_marlin_moe:fused_marlin_moe",
} as const;

export function lineText(file: string, line: number): string | undefined {
  return file === MARLIN_FP4 && line === CONTIGUOUS_LINE ? CONTIGUOUS_TEXT : undefined;
}

export function metaTargets(s: Scenario): NonNullable<RunMeta["targets"]> {
  return [
    { id: "t1", spec: TARGET_SPECS.load, hotspot: "vllm.runner.load_model" },
    { id: "t2", spec: TARGET_SPECS.prepare, hotspot: "vllm.marlin.prepare_moe_fp4" },
    { id: "t3", spec: TARGET_SPECS.workspace, hotspot: "vllm.marlin.workspace_new" },
    { id: "t4", spec: TARGET_SPECS.repack },
    { id: lineId(s), spec: TARGET_SPECS.line, file: MARLIN_FP4, line: CONTIGUOUS_LINE },
    { id: "t6", spec: TARGET_SPECS.profile, hotspot: "vllm.runner.profile_run" },
    { id: "t7", spec: TARGET_SPECS.kv, hotspot: "vllm.runner.initialize_kv_cache" },
    { id: "t8", spec: TARGET_SPECS.fused },
  ];
}

function lineId(s: Scenario): string {
  return s.checklistLineId ? "checklist.load.contiguous_copy" : "t5";
}

export function runMeta(s: Scenario, id = "20251126-101500-000-abc123"): RunMeta {
  return {
    id,
    label: "gpt-oss-20b load",
    started: "2025-11-26T10:15:00.000Z",
    finished: "2025-11-26T10:16:40.000Z",
    host: "gpu1",
    command: ["python3", "-m", "memlens_loader", "--model", "/models/gpt-oss-20b"],
    status: "finished",
    exitCode: 0,
    targets: metaTargets(s),
  };
}

export function vllmRun(s: Scenario): ProbeEvent[] {
  const events: ProbeEvent[] = [];
  let ts = 1_764_151_200_000_000_000;
  let allocated = 0;
  let scope = 0;
  const calls = new Map<string, number>();
  const common = (pid: number, device: number | null) => {
    ts += 1_000_000;
    return { v: 1, ts, pid, rank: pid === ENGINE ? 0 : null, device };
  };
  const reading = (): Readings => {
    const reserved = allocated + s.slack;
    return {
      allocated,
      reserved,
      device_used: reserved + s.nonTorch,
      device_total: TOTAL,
      non_torch: s.nonTorch,
      host_rss: 2 * GiB,
      host_hwm: 3 * GiB,
    };
  };
  const push = (e: Record<string, unknown>): void => {
    events.push(e as unknown as ProbeEvent);
  };
  const sample = (): void => push({ ...common(ENGINE, 0), type: "sample", readings: reading() });
  const fact = (kind: string, values: Record<string, number>, line: string): void => {
    push({ ...common(TARGET, null), type: "log", stream: "stdout", line });
    push({ ...common(TARGET, null), type: "fact", kind, values, line });
  };
  const stack: {
    target: string;
    scope: string;
    before: Readings;
    peak: number;
    file?: string;
    line?: number;
  }[] = [];
  const enter = (target: string, file?: string, line?: number): void => {
    const id = `${ENGINE}:${++scope}`;
    const call = (calls.get(target) ?? 0) + 1;
    calls.set(target, call);
    const before = reading();
    push({
      ...common(ENGINE, 0),
      type: "enter",
      target,
      scope_id: id,
      parent: stack.at(-1)?.scope ?? null,
      call,
      depth: stack.length,
      thread: "MainThread",
      before,
      file,
      line,
    });
    stack.push({ target, scope: id, before, peak: allocated, file, line });
  };
  const bump = (bytes: number): void => {
    allocated += bytes;
    for (const f of stack) f.peak = Math.max(f.peak, allocated);
  };
  const exit = (): void => {
    const f = stack.pop()!;
    const after = reading();
    push({
      ...common(ENGINE, 0),
      type: "exit",
      target: f.target,
      scope_id: f.scope,
      parent: stack.at(-1)?.scope ?? null,
      call: calls.get(f.target),
      depth: stack.length,
      thread: "MainThread",
      before: f.before,
      after,
      peak: { allocated: f.peak, reserved: f.peak + s.slack },
      duration_ns: 1_000_000,
      raised: null,
      file: f.file,
      line: f.line,
    });
  };

  push({
    ...common(LAUNCHER, null),
    type: "start",
    run_id: "20251126-101500-000-abc123",
    argv: ["python3", "-m", "memlens_loader", "--model", "/models/gpt-oss-20b"],
    cwd: "/home/user",
    plan: { version: 1, targets: [], sample_interval_ms: 100 },
    probe_version: "0.1.0",
    python: "3.12.3",
    hostname: "gpu1",
  });
  push({
    ...common(TARGET, null),
    type: "hello",
    ppid: LAUNCHER,
    argv: ["-m", "memlens_loader"],
    executable: "/usr/bin/python3",
    python: "3.12.3",
    origin: "main",
    torch: null,
    probe_version: "0.1.0",
  });
  push({
    ...common(ENGINE, null),
    type: "hello",
    ppid: TARGET,
    argv: ["-c", "from multiprocessing.spawn import spawn_main"],
    executable: "/usr/bin/python3",
    python: "3.12.3",
    origin: "spawn",
    torch: "2.8.0",
    probe_version: "0.1.0",
  });
  const ids = {
    load: "t1",
    prepare: "t2",
    workspace: "t3",
    repack: "t4",
    line: lineId(s),
    profile: "t6",
    kv: "t7",
    fused: "t8",
  };
  for (const [key, spec] of Object.entries(TARGET_SPECS)) {
    const isLine = key === "line";
    const [module, qualname] = isLine ? [undefined, undefined] : spec.split(":");
    push({
      ...common(ENGINE, null),
      type: "target_resolved",
      target: ids[key as keyof typeof ids],
      kind: isLine ? "line" : "function",
      spec,
      module: isLine ? "vllm.model_executor.layers.quantization.utils.marlin_utils_fp4" : module,
      qualname,
      file: isLine ? MARLIN_FP4 : `/opt/vllm/${module!.replace(/\./g, "/")}.py`,
      line: isLine ? CONTIGUOUS_LINE : 100,
      end_line: isLine ? undefined : 180,
      aliases: [],
    });
  }
  sample();

  // Load: checkpoint bytes land, then each MoE layer is converted for Marlin.
  enter(ids.load, "/opt/vllm/vllm/v1/worker/gpu_model_runner.py", 100);
  bump(13_761_264_768);
  sample();
  for (let layer = 0; layer < s.layers; layer++) {
    enter(ids.prepare, MARLIN_FP4, 100);
    if (s.workspacePerLayer || layer === 0) {
      enter(ids.workspace);
      bump(s.workspaceBytes);
      exit();
    }
    for (let r = 0; r < s.repacksPerLayer; r++) {
      enter(ids.line, MARLIN_FP4, CONTIGUOUS_LINE);
      if (s.contiguousCopy) {
        bump(EXPERT_TENSOR);
        bump(-EXPERT_TENSOR);
      }
      exit();
      enter(ids.repack);
      if (!s.repackInPlace) {
        bump(EXPERT_TENSOR);
        bump(-EXPERT_TENSOR);
      }
      exit();
    }
    bump(s.conversionTransient);
    bump(-s.conversionTransient);
    bump(s.originalsFreed ? PADDED_PER_LAYER - ORIGINAL_PER_LAYER : PADDED_PER_LAYER);
    exit();
  }
  exit();
  sample();
  fact(
    "model_loading",
    { bytes: Math.round(13.7167 * GiB), seconds: 25.437 },
    "INFO 11-26 10:15:30 [gpu_model_runner.py:2001] Model loading took 13.7167 GiB and 25.437 seconds",
  );

  enter(ids.profile, "/opt/vllm/vllm/v1/worker/gpu_model_runner.py", 100);
  enter(ids.fused);
  bump(s.fusedTransient);
  bump(-s.fusedTransient);
  exit();
  bump(s.activationPeak);
  bump(-s.activationPeak);
  exit();
  sample();

  const budget = Math.round(79.19 * 0.9 * GiB);
  if (s.kv === "allocated") {
    const weights = Math.round(13.72 * GiB);
    const kvBytes = budget - weights - s.nonTorch - s.activationPeak;
    fact(
      "memory_profiling",
      {
        seconds: 5.12,
        total_bytes: Math.round(79.19 * GiB),
        utilization: 0.9,
        budget_bytes: budget,
        weights_bytes: weights,
        non_torch_bytes: s.nonTorch,
        activation_peak_bytes: s.activationPeak,
        kv_cache_bytes: kvBytes,
      },
      `INFO [gpu_worker.py:276] Memory profiling takes 5.12 seconds. the current vLLM instance can use total_gpu_memory (79.19GiB) x gpu_memory_utilization (0.90) = 71.27GiB; model weights take 13.72GiB; non_torch_memory takes ${(s.nonTorch / GiB).toFixed(2)}GiB; PyTorch activation peak memory takes ${(s.activationPeak / GiB).toFixed(2)}GiB; the rest of the memory reserved for KV Cache is ${(kvBytes / GiB).toFixed(2)}GiB.`,
    );
    fact(
      "available_kv_cache",
      { bytes: kvBytes },
      `INFO [kv_cache_utils.py:829] Available KV cache memory: ${(kvBytes / GiB).toFixed(2)} GiB`,
    );
    const tokens = s.concurrency * 32;
    fact(
      "kv_cache_size",
      { tokens },
      `INFO [kv_cache_utils.py:833] GPU KV cache size: ${tokens.toLocaleString("en-US")} tokens`,
    );
    fact(
      "max_concurrency",
      { tokens_per_request: 32, concurrency: s.concurrency },
      `INFO [kv_cache_utils.py:837] Maximum concurrency for 32 tokens per request: ${s.concurrency.toFixed(2)}x`,
    );
    enter(ids.kv, "/opt/vllm/vllm/v1/worker/gpu_model_runner.py", 100);
    bump(kvBytes);
    exit();
    sample();
    if (s.graphBytes !== null) {
      bump(s.graphBytes);
      fact(
        "graph_capture",
        { seconds: 8, bytes: s.graphBytes },
        `INFO [gpu_model_runner.py:2400] Graph capturing finished in 8 secs, took ${(s.graphBytes / GiB).toFixed(2)} GiB`,
      );
      sample();
    }
    if (s.oomAfterKv) {
      fact(
        "cuda_oom",
        { requested_bytes: 2 * 1024 * 1024, total_bytes: Math.round(15.57 * GiB), free_bytes: 1_509_949 },
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 MiB. GPU 0 has a total capacity of 15.57 GiB of which 1.44 MiB is free.",
      );
    }
  } else {
    fact(
      "no_kv_memory",
      {},
      "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.",
    );
  }
  push({ ...common(ENGINE, 0), type: "bye", exitcode: s.kv === "none" ? 1 : 0 });
  push({ ...common(TARGET, null), type: "bye", exitcode: s.kv === "none" ? 1 : 0 });
  push({
    ...common(LAUNCHER, null),
    type: "end",
    exit_code: s.kv === "none" ? 1 : 0,
    signal: null,
    duration_ns: 100_000_000_000,
    stopped: false,
    counts: { events: events.length + 1, processes: 2 },
  });
  return events;
}
