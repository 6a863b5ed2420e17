// A generated protocol-v1 stream shaped like a vLLM gpt-oss-20b load: a front-end process (host
// RSS only) and an engine process (rank 0, cuda:0) with nested probed scopes, a line probe,
// samples every 10 ms, vLLM facts and an unresolved target. Used until python-probe/examples/
// holds recorded streams, and for what those cannot show (two runs differing in one change,
// hostile text). Torch peak semantics are simulated per open scope, as the probe reports them.
import type { ProbeEvent, Readings } from "../../src/protocol/events";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const T0 = 1_764_000_000_000_000_000;
const FRONT = 4100;
const ENGINE = 4101;

export const FIXTURE_FILES = {
  runner: "/opt/vllm/vllm/v1/worker/gpu_model_runner.py",
  mxfp4: "/opt/vllm/vllm/model_executor/layers/quantization/mxfp4.py",
  marlin: "/opt/vllm/vllm/model_executor/layers/quantization/utils/marlin_utils.py",
  marlinFp4: "/opt/vllm/vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py",
  llm: "/opt/vllm/vllm/entrypoints/llm.py",
  config: "/opt/vllm/vllm/config.py",
};

export interface FixtureOptions {
  /** One Marlin workspace shared by all layers instead of one per layer (the checklist's §4.1 fix). */
  sharedWorkspace?: boolean;
  layers?: number;
  /** Put HTML-looking text in a target spec and a log line (it must show as text). */
  hostileText?: boolean;
  runId?: string;
}

interface Scope {
  target: string;
  scopeId: string;
  parent: string | null;
  call: number;
  depth: number;
  before: Readings;
  peakAllocated: number;
  peakReserved: number;
  startNs: number;
  file: string;
  line: number;
}

class Simulation {
  readonly events: ProbeEvent[] = [];
  nowNs = 0;
  allocated = 0;
  reserved = 0;
  deviceBase = 0;
  cuda = false;
  engineRss = 900 * MiB;
  frontRss = 310 * MiB;
  private nextSampleNs = 0;
  private readonly open: Scope[] = [];
  private scopeCounter = 0;
  private readonly calls = new Map<string, number>();

  private common(pid: number) {
    const engine = pid === ENGINE;
    return {
      v: 1,
      ts: T0 + this.nowNs,
      pid,
      rank: engine ? 0 : null,
      device: engine && this.cuda ? 0 : null,
    };
  }

  emit(pid: number, rest: Record<string, unknown>): void {
    this.events.push({ ...this.common(pid), ...rest } as unknown as ProbeEvent);
  }

  readings(pid: number): Readings {
    if (pid === FRONT) return { host_rss: this.frontRss, host_hwm: this.frontRss };
    const r: Readings = { host_rss: this.engineRss, host_hwm: this.engineRss };
    if (this.cuda) {
      r.allocated = this.allocated;
      r.reserved = this.reserved;
      r.device_used = this.deviceBase + this.reserved;
      r.device_total = 80 * GiB;
      r.non_torch = this.deviceBase;
    }
    return r;
  }

  /** Advance time, sampling both processes every 10 ms. */
  advance(seconds: number): void {
    const until = this.nowNs + Math.round(seconds * 1e9);
    while (this.nextSampleNs <= until) {
      this.nowNs = this.nextSampleNs;
      this.emit(FRONT, { type: "sample", readings: this.readings(FRONT) });
      this.emit(ENGINE, { type: "sample", readings: this.readings(ENGINE) });
      this.nextSampleNs += 10_000_000;
    }
    this.nowNs = until;
  }

  alloc(bytes: number): void {
    this.allocated += Math.round(bytes);
    // The caching allocator grows in 20 MiB-rounded segments and keeps them.
    if (this.allocated > this.reserved) this.reserved = Math.ceil(this.allocated / (20 * MiB)) * 20 * MiB;
    for (const s of this.open) {
      s.peakAllocated = Math.max(s.peakAllocated, this.allocated);
      s.peakReserved = Math.max(s.peakReserved, this.reserved);
    }
  }

  enter(pid: number, target: string, file: string, line: number): Scope {
    const call = (this.calls.get(`${pid}/${target}`) ?? 0) + 1;
    this.calls.set(`${pid}/${target}`, call);
    const parent = [...this.open].reverse().find((s) => s.scopeId.startsWith(`${pid}:`));
    const before = this.readings(pid);
    const scope: Scope = {
      target,
      scopeId: `${pid}:${++this.scopeCounter}`,
      parent: parent?.scopeId ?? null,
      call,
      depth: this.open.filter((s) => s.scopeId.startsWith(`${pid}:`)).length,
      before,
      peakAllocated: this.allocated,
      peakReserved: this.reserved,
      startNs: this.nowNs,
      file,
      line,
    };
    this.open.push(scope);
    this.emit(pid, {
      type: "enter",
      target,
      scope_id: scope.scopeId,
      parent: scope.parent,
      call,
      depth: scope.depth,
      thread: "MainThread",
      before,
      file,
      line,
    });
    return scope;
  }

  exit(pid: number, scope: Scope, hostPeak?: number): void {
    this.open.splice(this.open.indexOf(scope), 1);
    const after = this.readings(pid);
    const peak: Record<string, number> = {};
    if (scope.before.allocated !== undefined) {
      peak.allocated = scope.peakAllocated;
      peak.reserved = scope.peakReserved;
    }
    if (hostPeak !== undefined) peak.host_rss = hostPeak;
    this.emit(pid, {
      type: "exit",
      target: scope.target,
      scope_id: scope.scopeId,
      parent: scope.parent,
      call: scope.call,
      depth: scope.depth,
      thread: "MainThread",
      before: scope.before,
      after,
      peak,
      duration_ns: this.nowNs - scope.startNs,
      raised: null,
      file: scope.file,
      line: scope.line,
    });
  }
}

/** The stream of one fixture run, in emission order. */
export function fixtureEvents(options: FixtureOptions = {}): ProbeEvent[] {
  const layers = options.layers ?? 24;
  const sim = new Simulation();
  const workspaceBytes = 48 * MiB;
  const expertBytes = 8_294_400;
  const layerWeights = Math.round((12.6 * GiB) / layers);
  const specs = {
    t1: "vllm.v1.worker.gpu_model_runner:GPUModelRunner.load_model",
    t2: "vllm.model_executor.layers.quantization.mxfp4:Mxfp4MoEMethod.process_weights_after_loading",
    t3: "vllm.model_executor.layers.quantization.utils.marlin_utils:marlin_make_workspace_new",
    t4: "vllm.v1.worker.gpu_model_runner:GPUModelRunner.initialize_kv_cache",
    t5: `${FIXTURE_FILES.marlinFp4}:212`,
    t6: options.hostileText
      ? "vllm.entrypoints.llm:LLM.<img src=x onerror=alert(1)>"
      : "vllm.entrypoints.llm:LLM.__init__",
    t7: "vllm.worker.worker:Worker._init_cache_engine",
    t8: "vllm.config:VllmConfig.__post_init__",
  };
  sim.emit(FRONT, {
    type: "start",
    run_id: options.runId ?? "fixture",
    argv: ["python", "load_gpt_oss.py"],
    cwd: "/work",
    plan: { version: 1, targets: Object.entries(specs).map(([id, s]) => ({ id, function: s })) },
    probe_version: "0.1.0",
    hostname: "gpu-host",
  });
  sim.advance(0.05);
  sim.emit(FRONT, { type: "hello", ppid: 4000, argv: ["load_gpt_oss.py"], origin: "main", torch: "2.11.0" });
  const resolved = (
    pid: number,
    target: keyof typeof specs,
    qualname: string,
    module: string,
    file: string,
    line: number,
  ) =>
    sim.emit(pid, {
      type: "target_resolved",
      target,
      kind: "function",
      spec: specs[target],
      module,
      qualname,
      file,
      line,
      end_line: line + 30,
      aliases: [],
    });
  resolved(FRONT, "t6", specs.t6.split(":")[1]!, "vllm.entrypoints.llm", FIXTURE_FILES.llm, 150);
  resolved(FRONT, "t8", "VllmConfig.__post_init__", "vllm.config", FIXTURE_FILES.config, 4400);
  const front = sim.enter(FRONT, "t6", FIXTURE_FILES.llm, 150);
  // The config is built in the front end and again in the engine process (host memory only).
  const configFront = sim.enter(FRONT, "t8", FIXTURE_FILES.config, 4400);
  sim.advance(0.03);
  sim.frontRss += 5 * MiB;
  sim.advance(0.02);
  sim.exit(FRONT, configFront, sim.frontRss);
  sim.advance(0.4);
  sim.frontRss += 120 * MiB;
  sim.emit(ENGINE, { type: "hello", ppid: FRONT, argv: ["-c"], origin: "spawn", torch: "2.11.0" });
  resolved(
    ENGINE,
    "t1",
    "GPUModelRunner.load_model",
    "vllm.v1.worker.gpu_model_runner",
    FIXTURE_FILES.runner,
    1710,
  );
  resolved(
    ENGINE,
    "t2",
    "Mxfp4MoEMethod.process_weights_after_loading",
    "vllm.model_executor.layers.quantization.mxfp4",
    FIXTURE_FILES.mxfp4,
    270,
  );
  resolved(
    ENGINE,
    "t3",
    "marlin_make_workspace_new",
    "vllm.model_executor.layers.quantization.utils.marlin_utils",
    FIXTURE_FILES.marlin,
    130,
  );
  resolved(
    ENGINE,
    "t4",
    "GPUModelRunner.initialize_kv_cache",
    "vllm.v1.worker.gpu_model_runner",
    FIXTURE_FILES.runner,
    2890,
  );
  sim.emit(ENGINE, {
    type: "target_resolved",
    target: "t5",
    kind: "line",
    spec: specs.t5,
    file: FIXTURE_FILES.marlinFp4,
    line: 212,
  });
  resolved(ENGINE, "t8", "VllmConfig.__post_init__", "vllm.config", FIXTURE_FILES.config, 4400);
  const configEngine = sim.enter(ENGINE, "t8", FIXTURE_FILES.config, 4400);
  sim.advance(0.04);
  sim.engineRss += 7 * MiB;
  sim.advance(0.01);
  sim.exit(ENGINE, configEngine, sim.engineRss);
  sim.advance(0.55);
  sim.cuda = true;
  sim.deviceBase = 510 * MiB;
  sim.advance(0.5);

  const load = sim.enter(ENGINE, "t1", FIXTURE_FILES.runner, 1710);
  for (let layer = 0; layer < layers; layer++) {
    // weights arrive in host memory first, then move to the device
    sim.engineRss += 40 * MiB;
    sim.advance(0.1);
    sim.alloc(layerWeights);
    sim.engineRss -= 40 * MiB;
    sim.advance(0.05);
    const convert = sim.enter(ENGINE, "t2", FIXTURE_FILES.mxfp4, 270);
    sim.advance(0.02);
    for (let copy = 0; copy < 2; copy++) {
      const lineScope = sim.enter(ENGINE, "t5", FIXTURE_FILES.marlinFp4, 212);
      sim.alloc(expertBytes);
      sim.advance(0.01);
      sim.alloc(-expertBytes);
      sim.exit(ENGINE, lineScope);
    }
    // a repacked copy, then the original freed: transient of one layer's weights
    sim.alloc(layerWeights);
    sim.advance(0.05);
    sim.alloc(-layerWeights + 2 * MiB);
    if (!options.sharedWorkspace || layer === 0) {
      const workspace = sim.enter(ENGINE, "t3", FIXTURE_FILES.marlin, 130);
      sim.alloc(workspaceBytes);
      sim.advance(0.01);
      sim.exit(ENGINE, workspace);
    }
    sim.advance(0.02);
    sim.exit(ENGINE, convert);
  }
  sim.exit(ENGINE, load);
  sim.emit(FRONT, {
    type: "log",
    stream: "stdout",
    line: "INFO Model loading took 13.7167 GiB and 10.0 seconds",
  });
  sim.emit(FRONT, {
    type: "fact",
    kind: "model_loading",
    values: { bytes: Math.round(13.7167 * GiB), seconds: 10.0 },
    line: options.hostileText
      ? "Model loading took 13.7167 GiB <script>alert(1)</script>"
      : "Model loading took 13.7167 GiB and 10.0 seconds",
  });
  sim.advance(0.8);
  // profile run: activations come and go
  sim.alloc(1.4 * GiB);
  sim.advance(0.3);
  sim.alloc(-1.4 * GiB);
  sim.advance(0.2);
  sim.emit(FRONT, {
    type: "fact",
    kind: "available_kv_cache",
    values: { bytes: Math.round(1.07 * GiB) },
    line: "Available KV cache memory: 1.07 GiB",
  });
  const kv = sim.enter(ENGINE, "t4", FIXTURE_FILES.runner, 2890);
  sim.advance(0.1);
  sim.alloc(Math.round(1.07 * GiB));
  sim.advance(0.2);
  sim.exit(ENGINE, kv);
  sim.emit(FRONT, {
    type: "fact",
    kind: "kv_cache_size",
    values: { tokens: 23360 },
    line: "GPU KV cache size: 23,360 tokens",
  });
  sim.advance(0.5);
  sim.frontRss += 230 * MiB;
  sim.advance(0.2);
  sim.exit(FRONT, front, sim.frontRss + 12 * MiB);
  sim.advance(0.3);
  sim.emit(ENGINE, {
    type: "target_not_found",
    target: "t7",
    spec: specs.t7,
    reason: "module vllm.worker.worker was never imported",
  });
  sim.emit(ENGINE, { type: "bye", exitcode: 0 });
  sim.emit(FRONT, { type: "bye", exitcode: 0 });
  sim.emit(FRONT, {
    type: "end",
    exit_code: 0,
    signal: null,
    duration_ns: sim.nowNs,
    stopped: false,
    counts: { events: sim.events.length + 1 },
  });
  return sim.events;
}

export function toJsonl(events: readonly ProbeEvent[]): string {
  return events.map((e) => JSON.stringify(e)).join("\n") + "\n";
}
