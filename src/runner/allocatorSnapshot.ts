// torch allocator snapshots (the pickles torch.cuda.memory._dump_snapshot writes, and the one the
// probe keeps at an OOM) through the bundled probe: `snapshot export` rewrites one with pickle
// protocol 4 for pytorch.org/memory_viz, `snapshot timeline|sites` read one with the probe's
// restricted unpickler (no global is ever resolved, so nothing from the file runs). Every process
// starts through runToEnd, behind the one process gate of exec.ts.
import { z } from "zod/v4";
import type { AllocationSite } from "../protocol/events";
import { allocationSiteSchema } from "../protocol/reader";
import { runToEnd, tailLines, type EndedCommand } from "./exec";

/** Where the probe runs: a local interpreter and the zipapp (dist/memlens_probe.pyz). */
export interface SnapshotTool {
  python: string;
  probePath: string;
  /** Default 120 s: a large snapshot takes a while to unpickle. */
  timeoutMs?: number;
}

export class SnapshotToolError extends Error {
  override name = "SnapshotToolError";
}

/** What `snapshot timeline` and `snapshot sites` say about one pickle. */
export interface AllocatorSnapshotData {
  file: string;
  /** [time in µs, requested bytes live], thinned by the probe (peaks kept). */
  timeline: [number, number][];
  sites: AllocationSite[];
  peakBytes: number;
}

const site = allocationSiteSchema satisfies z.ZodType<AllocationSite>;
const sitesOutput = z.looseObject({ sites: z.array(site), peak_bytes: z.number() });
const timelineOutput = z.array(z.tuple([z.number(), z.number()]));
const snapshotData = z.object({
  file: z.string(),
  timeline: timelineOutput,
  sites: z.array(site),
  peakBytes: z.number(),
});

/** What readAllocatorSnapshot returned, checked again where it arrives untyped (a command's
 * argument: anyone can call the command); undefined when it is not that. */
export function parseAllocatorSnapshotData(raw: unknown): AllocatorSnapshotData | undefined {
  const parsed = snapshotData.safeParse(raw);
  return parsed.success ? (parsed.data as AllocatorSnapshotData) : undefined;
}

async function probe(tool: SnapshotTool, args: string[]): Promise<EndedCommand> {
  const ended = await runToEnd(
    { file: tool.python, args: [tool.probePath, "snapshot", ...args] },
    { timeoutMs: tool.timeoutMs ?? 120_000 },
  );
  if (ended.spawnError) {
    throw new SnapshotToolError(`cannot start ${tool.python}: ${ended.spawnError.message}`);
  }
  if (ended.exitCode !== 0) {
    const why = tailLines(ended.stderr, 1)[0] ?? (ended.timedOut ? "timed out" : `exit ${ended.exitCode}`);
    throw new SnapshotToolError(why);
  }
  return ended;
}

function lastLine(stdout: string): unknown {
  const line = tailLines(stdout, 1)[0];
  if (line === undefined) throw new SnapshotToolError("the probe printed nothing");
  try {
    return JSON.parse(line);
  } catch {
    throw new SnapshotToolError("the probe's answer is not JSON");
  }
}

/** Writes `input` again with pickle protocol 4 (memory_viz's reader rejects torch's protocol 5). */
export async function exportForMemoryViz(tool: SnapshotTool, input: string, output: string): Promise<void> {
  await probe(tool, ["export", input, output]);
}

async function sitesOf(tool: SnapshotTool, file: string, roots: readonly string[]) {
  const args = ["sites", file, ...roots.flatMap((root) => ["--root", root])];
  const sites = sitesOutput.safeParse(lastLine((await probe(tool, args)).stdout));
  if (!sites.success) throw new SnapshotToolError("the probe's sites are not allocation sites");
  return sites.data;
}

/**
 * The pickle's timeline and allocation sites, read without running anything from it. A site is
 * an allocation's innermost frame under one of `roots` (the host's source folders); when none of
 * its frames is under them (a snapshot from elsewhere), the innermost frame of any file.
 */
export async function readAllocatorSnapshot(
  tool: SnapshotTool,
  file: string,
  roots: readonly string[],
): Promise<AllocatorSnapshotData> {
  const timeline = timelineOutput.safeParse(lastLine((await probe(tool, ["timeline", file])).stdout));
  if (!timeline.success) throw new SnapshotToolError("the probe's timeline is not [time, bytes] pairs");
  let sites = await sitesOf(tool, file, roots);
  if (sites.sites.every((s) => s.file === "?")) sites = await sitesOf(tool, file, ["/"]);
  return { file, timeline: timeline.data, sites: sites.sites, peakBytes: sites.peak_bytes };
}
