// Allocation sites of probed functions: the probe's per-call `sites` events added up per target
// and line, for the CLI, the inlay hints and the panel's Sites table.
import type { AllocationSite, ProbeEvent } from "../protocol/events";

export interface SiteTotal {
  target: string;
  file: string;
  line: number;
  function: string;
  allocatedBytes: number;
  freedBytes: number;
  liveAtExitBytes: number;
  /** Largest share of one call's peak held by this site's blocks. */
  atPeakBytes: number;
  count: number;
  calls: number;
  stacks: { stack: string; count: number }[];
  root?: { file: string; line: number; function: string };
}

const MAX_STACKS = 3;

function add(total: SiteTotal, site: AllocationSite): void {
  total.allocatedBytes += site.allocated_bytes;
  total.freedBytes += site.freed_bytes;
  total.liveAtExitBytes += site.live_at_exit_bytes;
  total.atPeakBytes = Math.max(total.atPeakBytes, site.at_peak_bytes);
  total.count += site.count;
  total.calls += 1;
  for (const s of site.stacks ?? []) {
    const known = total.stacks.find((k) => k.stack === s.stack);
    if (known) known.count += s.count;
    else total.stacks.push({ ...s });
  }
  total.stacks.sort((a, b) => b.count - a.count).splice(MAX_STACKS);
}

/** Sites of every target (or one), largest allocation first. */
export function siteTotals(events: Iterable<ProbeEvent>, target?: string): SiteTotal[] {
  const totals = new Map<string, SiteTotal>();
  for (const event of events) {
    if (event.type !== "sites" || (target !== undefined && event.target !== target)) continue;
    for (const site of event.sites) {
      const key = `${event.target}\u0000${site.file}\u0000${site.line}\u0000${site.function}`;
      let total = totals.get(key);
      if (!total) {
        total = {
          target: event.target,
          file: site.file,
          line: site.line,
          function: site.function,
          allocatedBytes: 0,
          freedBytes: 0,
          liveAtExitBytes: 0,
          atPeakBytes: 0,
          count: 0,
          calls: 0,
          stacks: [],
          ...(site.root_file !== undefined
            ? {
                root: { file: site.root_file, line: site.root_line ?? 0, function: site.root_function ?? "" },
              }
            : {}),
        };
        totals.set(key, total);
      }
      add(total, site);
    }
  }
  return [...totals.values()].sort((a, b) => b.allocatedBytes - a.allocatedBytes);
}
