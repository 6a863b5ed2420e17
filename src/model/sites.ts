// Allocation sites of probed functions: the probe's per-call `sites` events added up per target
// and line, for the CLI, the inlay hints and the panel's Sites table.
import type {
  AllocationSite,
  OomAllocator as ProtocolOomAllocator,
  OomBlock,
  OomEvent,
  ProbeEvent,
} from "../protocol/events";
import type { RunModel } from "./runModel";

export type { OomBlock } from "../protocol/events";

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
    addSites(totals, event.target, event.sites);
  }
  return [...totals.values()].sort((a, b) => b.allocatedBytes - a.allocatedBytes);
}

/** Sites read from elsewhere than a run (an allocator snapshot), as one target's totals. */
export function siteTotalsOf(target: string, sites: readonly AllocationSite[]): SiteTotal[] {
  const totals = new Map<string, SiteTotal>();
  addSites(totals, target, sites);
  return [...totals.values()].sort((a, b) => b.allocatedBytes - a.allocatedBytes);
}

function addSites(totals: Map<string, SiteTotal>, target: string, sites: readonly AllocationSite[]): void {
  for (const site of sites) {
    const key = `${target}\u0000${site.file}\u0000${site.line}\u0000${site.function}`;
    let total = totals.get(key);
    if (!total) {
      total = {
        target,
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

/**
 * How many of a target's calls its sites add up: the probe records sites for the first calls of
 * each target per process (the plan's `sites_calls`), so the totals may cover 2 of 24 calls.
 */
export interface SiteCoverage {
  target: string;
  /** Calls that sent a `sites` event (distinct pid and scope). */
  recordedCalls: number;
  /** The target's finished calls in the run, as the run model counts them (a call still running
   * has sent no sites yet); never fewer than recordedCalls. */
  calls: number;
  /** The probe said later calls get no sites (a `sites_limited` note for the target). */
  limited: boolean;
}

/** Per target with sites events (in order of its first; only `target` when given), the calls its
 * sites cover. */
export function siteCoverage(model: RunModel, target?: string): SiteCoverage[] {
  const recorded = new Map<string, Set<string>>();
  for (const event of model.sites) {
    if (target !== undefined && event.target !== target) continue;
    let scopes = recorded.get(event.target);
    if (!scopes) recorded.set(event.target, (scopes = new Set()));
    scopes.add(`${event.pid}/${event.scope_id}`);
  }
  const limited = new Set(
    model.notes.filter((n) => n.kind === "sites_limited" && n.target !== undefined).map((n) => n.target!),
  );
  return [...recorded].map(([id, scopes]) => {
    const summary = model.summary(id);
    const finished = summary ? summary.calls - summary.openCalls : 0;
    return {
      target: id,
      recordedCalls: scopes.size,
      calls: Math.max(finished, scopes.size),
      limited: limited.has(id),
    };
  });
}

/** The sites cover fewer calls than the target had: their sums are not the function's total. */
export function isPartialCoverage(coverage: Pick<SiteCoverage, "recordedCalls" | "calls">): boolean {
  return coverage.recordedCalls < coverage.calls;
}

/** What one source line allocated inside probed functions: the inlay hint and hover of that line. */
export interface LineSite extends SiteTotal {
  /** Other targets whose sites hold the same line (an outer probed function that called this one). */
  alsoIn: string[];
  /** Under tensor parallelism: the rank whose numbers these are (the one that allocated most on
   * this line; each rank is a card of its own, so ranks are not added up) and how many ranks ran it. */
  rank?: { rank: number; of: number };
}

/**
 * Sites per file and line. A line inside a probed function that another probed function calls is
 * in the sites of both (the outer scope's history holds the inner's allocations), so adding them
 * up would count its bytes twice: the line shows the target that saw most of it.
 */
export function lineSites(events: Iterable<ProbeEvent>): Map<string, Map<number, LineSite>> {
  const all = [...events];
  const ranks = [
    ...new Set(all.filter((e) => e.type === "sites" && e.rank !== null).map((e) => e.rank!)),
  ].sort((a, b) => a - b);
  if (ranks.length < 2) return lineSitesOf(all);
  // One map per rank, then per line the rank that allocated most there.
  const byFile = new Map<string, Map<number, LineSite>>();
  for (const rank of ranks) {
    const mine = all.filter((e) => e.type !== "sites" || e.rank === rank);
    for (const [file, lines] of lineSitesOf(mine)) {
      let shown = byFile.get(file);
      if (!shown) byFile.set(file, (shown = new Map<number, LineSite>()));
      for (const [line, site] of lines) {
        const known = shown.get(line);
        if (!known || site.allocatedBytes > known.allocatedBytes) {
          shown.set(line, { ...site, rank: { rank, of: ranks.length } });
        }
      }
    }
  }
  return byFile;
}

function lineSitesOf(events: Iterable<ProbeEvent>): Map<string, Map<number, LineSite>> {
  const byFile = new Map<string, Map<number, LineSite>>();
  const merged = new Map<string, SiteTotal>();
  // One total per target, file and line (a line with two function names, e.g. a lambda, is one line).
  for (const total of siteTotals(events)) {
    const key = `${total.target}\u0000${total.file}\u0000${total.line}`;
    const known = merged.get(key);
    if (!known) {
      merged.set(key, { ...total, stacks: [...total.stacks] });
      continue;
    }
    known.allocatedBytes += total.allocatedBytes;
    known.freedBytes += total.freedBytes;
    known.liveAtExitBytes += total.liveAtExitBytes;
    known.atPeakBytes = Math.max(known.atPeakBytes, total.atPeakBytes);
    known.count += total.count;
    known.calls = Math.max(known.calls, total.calls);
    known.stacks = [...known.stacks, ...total.stacks].sort((a, b) => b.count - a.count).slice(0, MAX_STACKS);
  }
  for (const total of merged.values()) {
    let lines = byFile.get(total.file);
    if (!lines) byFile.set(total.file, (lines = new Map<number, LineSite>()));
    const shown = lines.get(total.line);
    if (!shown) lines.set(total.line, { ...total, alsoIn: [] });
    else if (total.allocatedBytes > shown.allocatedBytes) {
      lines.set(total.line, { ...total, alsoIn: [...shown.alsoIn, shown.target] });
    } else shown.alsoIn.push(total.target);
  }
  return byFile;
}

/** How a site's bytes ended: all freed before the scope's exit, all still live, or some of each. */
export function siteFate(
  site: Pick<SiteTotal, "allocatedBytes" | "liveAtExitBytes">,
): "freed" | "retained" | "partly" {
  if (site.liveAtExitBytes <= 0) return "freed";
  return site.liveAtExitBytes >= site.allocatedBytes ? "retained" : "partly";
}

/** The allocator's state at an OOM (PROTOCOL.md `oom`), the figures present and well-formed. */
export type OomAllocator = Partial<ProtocolOomAllocator>;

/** The forensic fields of an `oom` event, those present and well-formed (older probes send none). */
export interface OomDetails {
  snapshotFile?: string;
  requestBytes?: number;
  allocator?: OomAllocator;
  largestBlocks: OomBlock[];
  scopeStack: string[];
}

const isNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value);
const isString = (value: unknown): value is string => typeof value === "string";

/**
 * The optional fields read defensively: the reader checks the fields every probe sends, and these
 * come from newer probes, so anything malformed here is left out rather than trusted.
 */
export function oomDetails(oom: OomEvent): OomDetails {
  const raw = oom as OomEvent & Record<string, unknown>;
  const details: OomDetails = { largestBlocks: [], scopeStack: [] };
  if (isString(raw.snapshot_file) && raw.snapshot_file !== "") details.snapshotFile = raw.snapshot_file;
  if (isNumber(raw.request_bytes)) details.requestBytes = raw.request_bytes;
  const allocator = raw.allocator;
  if (typeof allocator === "object" && allocator !== null) {
    const out: OomAllocator = {};
    for (const key of [
      "free_bytes",
      "total_bytes",
      "reserved_bytes",
      "allocated_bytes",
      "inactive_split_bytes",
    ] as const) {
      const value = (allocator as unknown as Record<string, unknown>)[key];
      if (isNumber(value)) out[key] = value;
    }
    if (Object.keys(out).length > 0) details.allocator = out;
  }
  if (Array.isArray(raw.largest_blocks)) {
    for (const block of raw.largest_blocks as unknown[]) {
      if (typeof block !== "object" || block === null) continue;
      const b = block as Record<string, unknown>;
      if (!isNumber(b.bytes) || !isNumber(b.line) || !isString(b.function)) continue;
      details.largestBlocks.push({
        bytes: b.bytes,
        file: isString(b.file) ? b.file : "?",
        line: b.line,
        function: b.function,
        ...(isString(b.stack) ? { stack: b.stack } : {}),
      });
    }
    details.largestBlocks.sort((a, b) => b.bytes - a.bytes);
  }
  if (Array.isArray(raw.scope_stack)) details.scopeStack = (raw.scope_stack as unknown[]).filter(isString);
  return details;
}
