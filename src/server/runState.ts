// The run the editor shows, and where its targets land in a given document: by the file the
// probe resolved them in (paths already mapped to local ones), else by the document's module
// name and the target's qualname, so a run recorded elsewhere still decorates local sources.
import { existsSync } from "node:fs";
import * as path from "node:path";
import type { HotspotCatalog } from "../catalog/catalog";
import { normalizePath } from "../catalog/moduleName";
import type { PythonDef } from "../catalog/pythonDefs";
import { RunModel } from "../model/runModel";
import { lineSites, type LineSite } from "../model/sites";
import { targetKind } from "../model/targets";
import { parseFunctionSpec, parseLineSpec } from "../protocol/specs";
import type { ProbeEvent } from "../protocol/events";
import type { SampleScan } from "../protocol/fastLine";
import { createHostPathMapper, mapEventPaths, type HostPathMapper } from "../runner/pathMap";
import { eventsFileOf, META_FILE, parseRunMeta, PLAN_FILE } from "../runner/store";
import type { PathMapping } from "../runner/types";
import { parseJson, readSmallTextFile } from "../files/read";
import type { DocumentAnalysis } from "./documentAnalysis";
import { EventsFileShrankError, EventsFollower } from "../runner/eventsFile";
import type { RunPayload, RunTargetInfo } from "./protocol";

export class RunLoadError extends Error {}

/** A run target placed in one document. */
export interface Placement {
  target: RunTargetInfo;
  /** 0-based line the lens, hint and diagnostics go on. */
  line: number;
  /** Lines a hover answers on: decorators to the end of the signature, or the statement. */
  hoverStart: number;
  hoverEnd: number;
  /** The definition, for function targets found in the document. */
  def?: PythonDef;
}

/** The targets of a plan read from a folder; entries that are not targets (a damaged file) are left out. */
function targetsFromPlan(plan: unknown): RunTargetInfo[] | undefined {
  const targets = (plan as { targets?: unknown } | null)?.targets;
  if (!Array.isArray(targets)) return undefined;
  const out: RunTargetInfo[] = [];
  for (const t of targets as Record<string, unknown>[]) {
    if (typeof t !== "object" || t === null || typeof t.id !== "string") continue;
    if (typeof t.function === "string") out.push({ id: t.id, spec: t.function, kind: "function" });
    else if (typeof t.line === "string") out.push({ id: t.id, spec: t.line, kind: "line" });
  }
  return out;
}

/** meta.json and plan.json of a run folder are small; a FIFO or a huge file there is not one. */
const MAX_RUN_JSON_BYTES = 64 * 1024 * 1024;

async function readJson(file: string): Promise<unknown> {
  const parsed = parseJson(await readSmallTextFile(file, MAX_RUN_JSON_BYTES));
  if (!parsed.ok) throw new Error(`${file} is ${parsed.reason}`);
  return parsed.value;
}

/** The plan's targets of a run folder: from meta.json (the extension's), else plan.json. */
export async function readFolderTargets(dir: string): Promise<RunTargetInfo[] | undefined> {
  try {
    const read = parseRunMeta(
      await readSmallTextFile(path.join(dir, META_FILE), MAX_RUN_JSON_BYTES),
      path.basename(dir),
    );
    const targets = "meta" in read ? read.meta.targets : undefined;
    if (targets) {
      return targets.map((t) => ({
        id: t.id,
        spec: t.spec,
        kind: targetKind(t.spec),
        hotspot: t.hotspot,
        adHoc: t.hotspot === undefined ? undefined : false,
      }));
    }
  } catch {
    // meta.json is the extension's; a folder without it still has plan.json or the events.
  }
  try {
    return targetsFromPlan(await readJson(path.join(dir, PLAN_FILE)));
  } catch {
    return undefined;
  }
}

/** Events of a run folder's events.jsonl appended since the last call (all of them the first time), each to onEvent. */
async function readAppended(
  tail: EventsFollower,
  dir: string,
  onEvent: (event: ProbeEvent) => void,
  onSample?: (sample: SampleScan) => void,
): Promise<void> {
  try {
    await tail.read(onEvent, false, onSample);
  } catch (error) {
    if (error instanceof EventsFileShrankError) throw error;
    // A run that just started has no events.jsonl yet: its probes show as waiting.
    if ((error as NodeJS.ErrnoException).code === "ENOENT" && existsSync(dir)) return;
    throw new RunLoadError(
      `Cannot read ${tail.file}: ${(error as Error).message}. Is ${dir} a MemLens run folder?`,
    );
  }
  if (tail.versionError) throw new RunLoadError(tail.versionError.message);
}

/** What identifies a run shown from its folder: the same key again means "read what was appended". */
export function folderRunKey(payload: RunPayload, sourceRoots: readonly string[]): string {
  return JSON.stringify([payload.id, payload.dir, payload.pathMappings ?? [], sourceRoots]);
}

export class RunState {
  // The editor shows scopes, never the sampled curve: samples are counted, not kept.
  readonly model = new RunModel({ keepSamples: false });
  private targetInfo = new Map<string, RunTargetInfo>();
  private readonly mapper: HostPathMapper;
  /** Reads the run folder's events, from where the last read stopped. */
  private readonly reader: EventsFollower;
  /** Allocation sites by local path and line, for the number of sites events they were made from. */
  private siteLines: { events: number; byPath: Map<string, Map<number, LineSite>> } | undefined;

  private constructor(
    readonly id: string,
    public label: string,
    readonly dir: string,
    private readonly catalog: HotspotCatalog,
    targets: readonly RunTargetInfo[],
    pathMappings: readonly PathMapping[],
    sourceRoots: readonly string[],
  ) {
    this.setTargets(targets);
    this.mapper = createHostPathMapper({ sourceRoots, pathMappings, fileExists: existsSync });
    this.reader = new EventsFollower(eventsFileOf(dir));
  }

  /** A run folder, read to its current end; readMore follows it from there. */
  static async load(
    payload: RunPayload,
    catalog: HotspotCatalog,
    sourceRoots: readonly string[],
  ): Promise<RunState> {
    const state = new RunState(
      payload.id,
      payload.label ?? payload.id,
      payload.dir,
      catalog,
      payload.targets ?? (await readFolderTargets(payload.dir)) ?? [],
      payload.pathMappings ?? [],
      sourceRoots,
    );
    // Into the model as they are read: a vLLM load's file is hundreds of MB.
    // Samples carry no paths to map: from the fast scan straight into the model.
    await readAppended(
      state.reader,
      payload.dir,
      (event) => state.add(event),
      (sample) => state.model.addSample(sample),
    );
    return state;
  }

  /** Lines of events.jsonl that were not events, so far. */
  get malformed(): number {
    return this.reader.malformed;
  }

  /**
   * The same run folder again (its key from folderRunKey is unchanged): adds the events written
   * since the last read, and takes up the targets and label anew.
   */
  async readMore(payload: RunPayload): Promise<void> {
    const events: ProbeEvent[] = [];
    await readAppended(this.reader, this.dir, (event) => events.push(event));
    const targets = payload.targets ?? (await readFolderTargets(this.dir));
    if (targets) this.setTargets(targets);
    if (payload.label !== undefined) this.label = payload.label;
    for (const event of events) this.add(event);
  }

  private setTargets(targets: readonly RunTargetInfo[]): void {
    this.targetInfo = new Map(targets.map((t) => [t.id, t]));
  }

  private add(event: ProbeEvent): void {
    this.model.add(mapEventPaths(event, this.mapper));
  }
  /** Every target of the run: the plan's, plus any that only appear in events. */
  targets(): RunTargetInfo[] {
    const out = new Map(this.targetInfo);
    for (const [id, info] of this.model.targets) {
      if (out.has(id)) continue;
      const spec = info.spec ?? [...info.resolved.values()][0]?.spec;
      if (spec === undefined) continue;
      out.set(id, { id, spec, kind: info.kind ?? targetKind(spec) });
    }
    return [...out.values()].map((t) => ({
      ...t,
      adHoc: t.adHoc ?? (t.kind === "line" || this.catalog.lookup(t.spec) === undefined),
      hotspot: t.hotspot ?? (t.kind === "function" ? this.catalog.lookup(t.spec)?.hotspot.id : undefined),
    }));
  }

  /** Lines of the document where probed functions allocated (their sites), by 1-based line. */
  sitesIn(doc: DocumentAnalysis): Map<number, LineSite> | undefined {
    if (doc.path === undefined || this.model.sites.length === 0) return undefined;
    if (this.siteLines?.events !== this.model.sites.length) {
      const byPath = new Map<string, Map<number, LineSite>>();
      for (const [file, lines] of lineSites(this.model.sites)) byPath.set(normalizePath(file), lines);
      this.siteLines = { events: this.model.sites.length, byPath };
    }
    return this.siteLines.byPath.get(doc.path);
  }

  /** Where this run's targets are in the document. */
  placements(doc: DocumentAnalysis): Placement[] {
    const out: Placement[] = [];
    for (const target of this.targets()) {
      const placed = target.kind === "line" ? this.placeLine(target, doc) : this.placeFunction(target, doc);
      if (placed) out.push(placed);
    }
    return out;
  }

  private samePath(file: string | undefined, doc: DocumentAnalysis): boolean {
    return file !== undefined && doc.path !== undefined && normalizePath(file) === doc.path;
  }

  private placeFunction(target: RunTargetInfo, doc: DocumentAnalysis): Placement | undefined {
    const resolved = [...(this.model.targets.get(target.id)?.resolved.values() ?? [])];
    const spec = parseFunctionSpec(target.spec);
    const candidates: { qualname: string; line?: number }[] = [];
    for (const e of resolved) {
      if (this.samePath(e.file, doc) || (e.module !== undefined && e.module === doc.module)) {
        candidates.push({ qualname: e.qualname ?? spec?.qualname ?? "", line: e.line });
      }
    }
    if (spec && doc.module !== undefined && spec.module === doc.module)
      candidates.push({ qualname: spec.qualname });
    for (const c of candidates) {
      const def = doc.index.findByQualname(c.qualname);
      if (def)
        return { target, line: def.defLine, hoverStart: def.startLine, hoverEnd: def.headerEndLine, def };
    }
    // The module is here but the definition is not (a version without it): say so at the top.
    if (candidates.length > 0) {
      const fallback = candidates.find((c) => c.line !== undefined)?.line;
      const line = fallback !== undefined ? Math.min(fallback - 1, doc.index.lineCount - 1) : 0;
      return { target, line, hoverStart: line, hoverEnd: line };
    }
    return undefined;
  }

  private placeLine(target: RunTargetInfo, doc: DocumentAnalysis): Placement | undefined {
    let line: number | undefined;
    const spec = parseLineSpec(target.spec);
    if (spec && this.samePath(this.mapper(spec.file), doc)) line = spec.line;
    if (line === undefined) {
      for (const e of this.model.targets.get(target.id)?.resolved.values() ?? []) {
        if (e.line === undefined) continue;
        if (this.samePath(e.file, doc) || (e.module !== undefined && e.module === doc.module)) {
          line = e.line;
          break;
        }
      }
    }
    if (line === undefined || line < 1 || line > doc.index.lineCount) return undefined;
    const statement = doc.index.statementAt(line - 1);
    return {
      target,
      line: line - 1,
      hoverStart: statement?.startLine ?? line - 1,
      hoverEnd: statement?.endLine ?? line - 1,
    };
  }
}
