// A run's events.jsonl as the probe writes it when the plan limits allocation sites to the first
// calls of each target (`sites_calls`): every call's enter and exit, a `sites` event after the exit
// of each of the first calls only, and one `sites_limited` note per target and process when the
// first call past the limit enters. Shared by the model's and the CLI's tests.

const FP4 =
  "/opt/venv/lib/python3.12/site-packages/vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py";
const GiB = 1024 ** 3;
/** One expert's repacked copy at gpt-oss-20b's padded sizes. */
export const COPY_BYTES = 9_043_968;

export interface TargetCalls {
  target: string;
  pid: number;
  /** Calls that finished. */
  calls: number;
  /** The plan's sites_calls for it: calls past it get no sites (undefined: every call). */
  sitesCalls?: number;
  /** Calls still running at the end of the events (an enter, no exit). */
  open?: number;
}

/** The events, one JSON object a line, in the order the probe sends them. */
export function sitesCallsRunText(targets: readonly TargetCalls[]): string {
  const lines: object[] = [];
  let ts = 1_767_225_600_000_000_000;
  const common = (pid: number) => ({ v: 1, ts: (ts += 1_000_000), pid, rank: null, device: 0 });
  const seen = new Set<number>();
  for (const t of targets) {
    if (!seen.has(t.pid)) {
      seen.add(t.pid);
      lines.push({
        type: "hello",
        ...common(t.pid),
        ppid: 100,
        argv: ["-c"],
        origin: "spawn",
        torch: "2.8.0",
      });
    }
    lines.push({
      type: "target_resolved",
      ...common(t.pid),
      target: t.target,
      kind: "function",
      spec: "vllm.model_executor.layers.quantization.utils.marlin_utils_fp4:prepare_moe_fp4_layer_for_marlin",
      module: "vllm.model_executor.layers.quantization.utils.marlin_utils_fp4",
      qualname: "prepare_moe_fp4_layer_for_marlin",
      file: FP4,
      line: 280,
      end_line: 340,
    });
    const total = t.calls + (t.open ?? 0);
    for (let call = 1; call <= total; call++) {
      // Scope ids are the process's own: another process may use the same ones.
      const scope = { target: t.target, scope_id: `${call}`, parent: null, call, depth: 0 };
      const before = { allocated: GiB + (call - 1) * 4 * COPY_BYTES };
      lines.push({ type: "enter", ...common(t.pid), ...scope, before, file: FP4, line: 280 });
      const recorded = t.sitesCalls === undefined || call <= t.sitesCalls;
      if (!recorded && call === t.sitesCalls! + 1) {
        lines.push({
          type: "note",
          ...common(t.pid),
          kind: "sites_limited",
          message: `allocation sites of ${t.target} are recorded for its first ${t.sitesCalls} calls in this process (the plan's sites_calls); later calls are measured as usual but get no sites`,
          target: t.target,
        });
      }
      if (call > t.calls) continue;
      const after = { allocated: before.allocated + 4 * COPY_BYTES };
      lines.push({
        type: "exit",
        ...common(t.pid),
        ...scope,
        before,
        after,
        peak: { allocated: after.allocated + COPY_BYTES },
        duration_ns: 1_000_000,
        raised: null,
        file: FP4,
        line: 280,
      });
      if (!recorded) continue;
      lines.push({
        type: "sites",
        ...common(t.pid),
        target: t.target,
        scope_id: scope.scope_id,
        call,
        sites: [
          {
            file: FP4,
            line: 310,
            function: "_repack_marlin_experts",
            allocated_bytes: 8 * COPY_BYTES,
            freed_bytes: 4 * COPY_BYTES,
            live_at_exit_bytes: 4 * COPY_BYTES,
            at_peak_bytes: 5 * COPY_BYTES,
            count: 8,
          },
        ],
        peak_bytes: 5 * COPY_BYTES,
        delta_bytes: 4 * COPY_BYTES,
        freed_earlier_bytes: 0,
      });
    }
  }
  return lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
}
