// The probe plan of a run: which functions and lines to measure and where to pause, and the list
// of targets its meta.json keeps. "Measure here", the debugger and `memlens run` all build it here;
// the runner adds only what the run description says about sampling and emulation.
import type { Plan, PlanTarget } from "../protocol/events";
import { targetKind, type TargetKind } from "./targets";

/** One target of a run, as meta.json records it: the plan id, the spec and where it came from. */
export interface RunTarget {
  /** Plan id (`target` in events). */
  id: string;
  spec: string;
  /** Catalog id when the target is a known hotspot. */
  hotspot?: string;
  /** Local source file and 1-based line (the `def` line or the probed line), when known. */
  file?: string;
  line?: number;
}

/** A target to put in a plan. */
export interface PlannedTarget {
  spec: string;
  /** Derived from the spec when absent. */
  kind?: TargetKind;
  /** Plan id; `t1`, `t2`, … by position when absent. */
  id?: string;
  hotspot?: string;
  file?: string;
  line?: number;
  /** The probe stops the process at this target's entry and exit. */
  pause?: boolean;
  /** The probe records where the target's memory goes, line by line (a `sites` event per call). */
  sites?: boolean;
}

/** What a plan needs of a catalog hotspot (src/catalog/types.ts Hotspot has it). */
export interface HotspotSpecs {
  id: string;
  function: string;
  aliases: readonly string[];
  /** Record allocation sites by default (the weight-conversion hotspots). */
  sites?: boolean;
}

/**
 * Every spelling of each hotspot as a target: its function under the hotspot's id, each alias
 * under `<id>-alias<n>` (vLLM renamed functions between releases; whichever exists is probed).
 */
export function hotspotTargets<H extends HotspotSpecs>(
  hotspots: readonly H[],
  pause: (hotspot: H) => boolean = () => false,
): PlannedTarget[] {
  return hotspots.flatMap((hotspot) =>
    [hotspot.function, ...hotspot.aliases].map((spec, i) => ({
      id: i === 0 ? hotspot.id : `${hotspot.id}-alias${i}`,
      spec,
      hotspot: hotspot.id,
      pause: pause(hotspot),
      ...(hotspot.sites ? { sites: true } : {}),
    })),
  );
}

/**
 * The plan for `targets` and the list meta.json keeps. A spec named twice is one target: the
 * first keeps its id and hotspot, and it pauses (records sites) if any of them asked to.
 */
export function buildPlan(targets: readonly PlannedTarget[]): { plan: Plan; targets: RunTarget[] } {
  const bySpec = new Map<string, PlannedTarget & { id: string }>();
  targets.forEach((target, index) => {
    const seen = bySpec.get(target.spec);
    if (seen) {
      seen.pause ||= target.pause;
      seen.sites ||= target.sites;
      seen.hotspot ??= target.hotspot;
      return;
    }
    bySpec.set(target.spec, { ...target, id: target.id ?? `t${index + 1}` });
  });
  const planned = [...bySpec.values()];
  const planTargets: PlanTarget[] = planned.map((t) => {
    const sites = t.sites ? { sites: true } : {};
    return (t.kind ?? targetKind(t.spec)) === "line"
      ? { id: t.id, line: t.spec, ...sites }
      : { id: t.id, function: t.spec, ...sites };
  });
  const pause = planned
    .filter((t) => t.pause)
    .map((t) => t.id)
    .sort();
  const runTargets = planned.map(({ id, spec, hotspot, file, line }) => ({ id, spec, hotspot, file, line }));
  return { plan: { version: 1, targets: planTargets, pause }, targets: runTargets };
}

export interface RunSettings {
  /** Timeline sampling interval (0: off); the plan's own when absent. */
  sampleIntervalMs?: number;
  /** Torch allocations capped at this many bytes per device (emulating a smaller card). */
  emulateDeviceBytes?: number;
  /** Allocation sites for the first N calls of each sites target per process (0: every call); the
   * plan's own `sites_calls` when absent. */
  sitesCalls?: number;
}

/** The plan as it goes to the probe, with the run's sampling, emulation and sites limit. */
export function withRunSettings(plan: Plan, settings: RunSettings): Plan {
  const out: Plan = {
    ...plan,
    sample_interval_ms: settings.sampleIntervalMs ?? plan.sample_interval_ms,
    emulate_device_bytes: settings.emulateDeviceBytes ?? plan.emulate_device_bytes ?? null,
  };
  // 0 means every call, which the probe does when the key is absent: the plan then has none.
  if (settings.sitesCalls !== undefined) {
    if (settings.sitesCalls > 0) out.sites_calls = settings.sitesCalls;
    else delete out.sites_calls;
  }
  return out;
}
