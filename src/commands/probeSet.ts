// The current probe set: every function or line the user asked to measure, kept in the
// workspace's state so it survives reloads, and the plan built from it. No `vscode` import: the
// memento is passed in, so tests use a plain object.
import type { Plan, PlanTarget } from "../protocol/events";
import type { RunMeta } from "../runner/types";

export interface ProbeTarget {
  kind: "function" | "line";
  /** `module:qualname` for functions, `/abs/file.py:LINE` for lines. */
  spec: string;
  /** Catalog id when the target is a known hotspot. */
  hotspot?: string;
  /** Local source file and 1-based line (the `def` line or the probed line). */
  file?: string;
  line?: number;
}

/** The part of vscode.Memento the probe set uses. */
export interface StateStore {
  get<T>(key: string): T | undefined;
  update(key: string, value: unknown): Thenable<void>;
}

const STATE_KEY = "memlens.probes";

export class ProbeSet {
  private readonly listeners = new Set<() => void>();

  constructor(private readonly state: StateStore) {}

  list(): ProbeTarget[] {
    const stored = this.state.get<unknown>(STATE_KEY);
    return Array.isArray(stored) ? stored.filter(isProbeTarget) : [];
  }

  /** Adds a target unless the same spec is already there; true when it was added. */
  async add(target: ProbeTarget): Promise<boolean> {
    const current = this.list();
    if (current.some((t) => t.spec === target.spec)) return false;
    await this.state.update(STATE_KEY, [...current, target]);
    this.fire();
    return true;
  }

  async clear(): Promise<void> {
    await this.state.update(STATE_KEY, []);
    this.fire();
  }

  onDidChange(listener: () => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  private fire(): void {
    for (const listener of this.listeners) listener();
  }
}

function isProbeTarget(value: unknown): value is ProbeTarget {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return (v.kind === "function" || v.kind === "line") && typeof v.spec === "string";
}

export interface PlanOptions {
  sampleIntervalMs?: number;
  emulateGpuGiB?: number | null;
}

const GiB = 1024 ** 3;

/** The probe plan for a run, and the target list its meta records (ids t1, t2, … in order). */
export function buildPlan(
  targets: readonly ProbeTarget[],
  options: PlanOptions,
): { plan: Plan; targets: NonNullable<RunMeta["targets"]> } {
  const planTargets: PlanTarget[] = [];
  const metaTargets: NonNullable<RunMeta["targets"]> = [];
  targets.forEach((target, index) => {
    const id = `t${index + 1}`;
    planTargets.push(target.kind === "function" ? { id, function: target.spec } : { id, line: target.spec });
    metaTargets.push({
      id,
      spec: target.spec,
      hotspot: target.hotspot,
      file: target.file,
      line: target.line,
    });
  });
  const plan: Plan = { version: 1, targets: planTargets, pause: [] };
  if (options.sampleIntervalMs !== undefined) plan.sample_interval_ms = options.sampleIntervalMs;
  if (options.emulateGpuGiB) plan.emulate_device_bytes = Math.round(options.emulateGpuGiB * GiB);
  return { plan, targets: metaTargets };
}

/** "loader:load_weights" or "loader.py:42": short enough for a notification title. */
export function shortLabel(target: ProbeTarget): string {
  if (target.kind === "line") {
    const sep = target.spec.lastIndexOf(":");
    const file = target.spec.slice(0, sep);
    return `${file.split(/[\\/]/).pop() ?? file}:${target.spec.slice(sep + 1)}`;
  }
  const [module, qualname] = target.spec.split(":");
  return `${module?.split(".").pop() ?? module}:${qualname}`;
}

/** The run's label: what was just added first, then how many others ride along. */
export function runLabel(targets: readonly ProbeTarget[], focus?: ProbeTarget): string {
  if (targets.length === 0) return "run without probes";
  const first = focus ?? targets[targets.length - 1]!;
  const others = targets.length - 1;
  return others > 0 ? `${shortLabel(first)} (+${others})` : shortLabel(first);
}
