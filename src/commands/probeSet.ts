// The current probe set: every function or line the user asked to measure, kept in the
// workspace's state so it survives reloads. No `vscode` import: the memento is passed in, so tests
// use a plain object.
import { specLabel, type TargetKind } from "../model/targets";

export interface ProbeTarget {
  kind: TargetKind;
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

/** The run's label: what was just added first, then how many others ride along. */
export function runLabel(targets: readonly ProbeTarget[], focus?: ProbeTarget): string {
  if (targets.length === 0) return "run without probes";
  const first = focus ?? targets[targets.length - 1]!;
  const others = targets.length - 1;
  const label = specLabel(first.spec, true);
  return others > 0 ? `${label} (+${others})` : label;
}
