// The stepping engine: drives one run of the probe and turns its events into debugger terms
// (processes as threads, pauses as stops, probe scopes as frames). No DAP import: the session
// translates; this could drive any front end.
import { EventEmitter } from "node:events";
import { constants as osConstants } from "node:os";
import type { Catalog, Hotspot, Phase, PhaseId } from "../catalog/types";
import { buildPlan, hotspotTargets, type RunTarget } from "../model/plan";
import { processLabel } from "../model/processes";
import { readingsDelta } from "../model/readings";
import { RunModel } from "../model/runModel";
import { targetLabel } from "../model/targets";
import { isFunctionSpec } from "../protocol/specs";
import type {
  ContinueMode,
  PausedEvent,
  Peak,
  Plan,
  ProbeEvent,
  Readings,
  TargetNotFoundEvent,
  TargetResolvedEvent,
} from "../protocol/events";
import type { RunDescription, RunHandle, RunOutcome, RunRequest } from "../runner/types";
import { resolveBreakpointLocation, type BreakpointLocation, type ResolveContext } from "./breakpoints";
import { DEBUG_TEXT, type DebugKey } from "../l10n/debug";
import { translator, type Lang, type Translate } from "../l10n/lang";
import { localizedCatalog } from "../l10n/catalog";

/** Starts a run; the runner maps host paths in events to local files through `sourceRoots`. */
export type RunStarter = (request: RunRequest, options: { sourceRoots: string[] }) => Promise<RunHandle>;

export interface EngineConfig {
  description: RunDescription;
  catalog: Catalog;
  stopAtPhases: readonly PhaseId[];
  /** Extra scopes to measure: module:qualname or /path/file.py:LINE. */
  probes: readonly string[];
  runsDir: string;
  label: string;
  sourceRoots: readonly string[];
  /** The editor's language (DAP's initialize `locale`): stop descriptions, messages, phase titles. */
  lang?: Lang;
}

export interface EngineBreakpoint {
  id: number;
  /** Local file and requested line (absent for function breakpoints). */
  file?: string;
  line?: number;
  /** The pause target it became: module:qualname or file:line (absent when it could not become one). */
  spec?: string;
  verified: boolean;
  message?: string;
}

export type StopReason = "breakpoint" | "function breakpoint" | "phase" | "step" | "pause";

export interface EngineStop {
  pid: number;
  reason: StopReason;
  description: string;
  breakpointIds: number[];
  paused: PausedEvent;
}

export interface EngineFrame {
  /** Index in the probe's stack, 0 = outermost. */
  index: number;
  name: string;
  file?: string;
  line?: number;
}

export interface FrameReadings {
  now: Readings;
  sinceEntry?: Readings;
  /** Known for the innermost scope only (the probe tracks the peak of the scope it paused in). */
  peak?: Peak;
}

export interface EngineEnd {
  exitCode: number;
  signal: string | null;
  stopped: boolean;
}

export type OutputCategory = "stdout" | "stderr" | "console";

interface EngineEvents {
  stopped: [stop: EngineStop];
  continued: [pid: number];
  processStarted: [pid: number];
  processExited: [pid: number];
  output: [category: OutputCategory, text: string];
  breakpointChanged: [breakpoint: EngineBreakpoint];
  ended: [end: EngineEnd];
}

interface EngineTarget {
  id: string;
  spec: string;
  hotspot?: Hotspot;
  /** Pauses because its hotspot's phase is in stopAtPhases. */
  phaseStop: boolean;
  /** Breakpoint ids that made it a pause target. */
  breakpoints: Set<number>;
  functionBreakpoint: boolean;
}

interface BreakpointEntry {
  breakpoint: EngineBreakpoint;
  kind: "source" | "function";
}

export class DebugEngine extends EventEmitter<EngineEvents> {
  readonly model = new RunModel();
  private handle?: RunHandle;
  private ended = false;
  private readonly targetsBySpec = new Map<string, EngineTarget>();
  private readonly targetsById = new Map<string, EngineTarget>();
  private readonly breakpointsByFile = new Map<string, BreakpointEntry[]>();
  private functionBreakpoints: BreakpointEntry[] = [];
  private nextBreakpointId = 1;
  private lastPauseSet = "";
  /** Per stop phase, the scope whose entry stopped there first: the phase then stops only at that
   * scope's exit, and after it at nothing more of the phase. One gpt-oss-20b load has 1,600+
   * calls of conversion hotspots; stopping at each would bury the phase under Continues. */
  private readonly phaseScopes = new Map<PhaseId, { target: string; scopeId: string } | "done">();
  private readonly phaseTitles: Map<PhaseId, Phase>;
  private readonly t: Translate<DebugKey>;
  private readonly resolveContext: ResolveContext;

  constructor(private readonly config: EngineConfig) {
    super();
    const lang = config.lang ?? "en";
    this.t = translator(DEBUG_TEXT, lang);
    this.phaseTitles = new Map(localizedCatalog(config.catalog, lang).phases.map((p) => [p.id, p]));
    this.resolveContext = {
      sourceRoots: config.sourceRoots,
      pathMappings: config.description.pathMappings ?? [],
      cwd: config.description.cwd,
      command: config.description.command,
      lang,
    };
  }

  get running(): boolean {
    return this.handle !== undefined && !this.ended;
  }

  // ---- breakpoints -------------------------------------------------------------------------

  /** Replaces the breakpoints of one file. Before the run they shape the plan; during it they can
   * only pause targets already in the plan (set_pause), anything else takes effect next run. */
  setSourceBreakpoints(file: string, lines: readonly number[]): EngineBreakpoint[] {
    const previous = this.breakpointsByFile.get(file) ?? [];
    const entries = lines.map((line) => {
      const kept = previous.find((e) => e.breakpoint.line === line);
      if (kept) return kept;
      return this.newBreakpoint("source", resolveBreakpointLocation(file, line, this.resolveContext), {
        file,
        line,
      });
    });
    this.breakpointsByFile.set(file, entries);
    this.rebindBreakpoints();
    return entries.map((e) => ({ ...e.breakpoint }));
  }

  /** Function breakpoints by module:qualname (the Breakpoints view's "+"). */
  setFunctionBreakpoints(names: readonly string[]): EngineBreakpoint[] {
    const previous = this.functionBreakpoints;
    this.functionBreakpoints = names.map((raw) => {
      const name = raw.trim();
      const kept = previous.find((e) => e.breakpoint.spec === name);
      if (kept) return kept;
      const location: BreakpointLocation = isFunctionSpec(name)
        ? { kind: "function", spec: name }
        : {
            kind: "error",
            message: this.t("bp.notFunctionSpec", { name }),
          };
      return this.newBreakpoint("function", location, {});
    });
    this.rebindBreakpoints();
    return this.functionBreakpoints.map((e) => ({ ...e.breakpoint }));
  }

  private newBreakpoint(
    kind: BreakpointEntry["kind"],
    location: BreakpointLocation,
    where: { file?: string; line?: number },
  ): BreakpointEntry {
    const breakpoint: EngineBreakpoint = { id: this.nextBreakpointId++, ...where, verified: false };
    if (location.kind === "error") {
      breakpoint.message = location.message;
    } else {
      breakpoint.spec = location.spec;
      if (location.kind === "function" && location.line !== undefined) breakpoint.line = location.line;
      breakpoint.message = this.running
        ? undefined
        : this.t(location.kind === "function" ? "bp.pendingFunction" : "bp.pendingFile");
    }
    return { breakpoint, kind };
  }

  private allBreakpoints(): BreakpointEntry[] {
    return [...[...this.breakpointsByFile.values()].flat(), ...this.functionBreakpoints];
  }

  /** Attaches each breakpoint to the plan's target of its spec; returns those without one. */
  private attachBreakpoints(): {
    attached: [BreakpointEntry, EngineTarget][];
    unplanned: BreakpointEntry[];
  } {
    for (const target of this.targetsBySpec.values()) {
      target.breakpoints.clear();
      target.functionBreakpoint = false;
    }
    const attached: [BreakpointEntry, EngineTarget][] = [];
    const unplanned: BreakpointEntry[] = [];
    for (const entry of this.allBreakpoints()) {
      if (entry.breakpoint.spec === undefined) continue;
      const target = this.targetsBySpec.get(entry.breakpoint.spec);
      if (!target) {
        unplanned.push(entry);
        continue;
      }
      target.breakpoints.add(entry.breakpoint.id);
      if (entry.kind === "function") target.functionBreakpoint = true;
      attached.push([entry, target]);
    }
    return { attached, unplanned };
  }

  /** During a run: breakpoints change which planned targets pause (the plan itself is fixed). */
  private rebindBreakpoints(): void {
    if (!this.running) return;
    const { attached, unplanned } = this.attachBreakpoints();
    for (const [entry, target] of attached) this.applyTargetState(entry.breakpoint, target);
    for (const { breakpoint } of unplanned) {
      breakpoint.verified = false;
      breakpoint.message = this.t("bp.notInPlan");
    }
    this.sendPauseSet();
  }

  private applyTargetState(bp: EngineBreakpoint, target: EngineTarget): void {
    const info = this.model.targets.get(target.id);
    const resolved = info ? [...info.resolved.values()][0] : undefined;
    if (resolved) {
      bp.verified = true;
      bp.message = undefined;
      if (resolved.kind === "function" && resolved.line !== undefined) bp.line = resolved.line;
      if (resolved.file !== undefined && bp.file === undefined) bp.file = resolved.file;
      return;
    }
    const notFound = info ? [...info.notFound.values()][0] : undefined;
    bp.verified = false;
    bp.message = notFound ? notFound.reason : this.t("bp.pending");
  }

  private narrowPhaseStops(e: PausedEvent): void {
    const phase = this.targetsById.get(e.target)?.hotspot?.phase;
    if (phase === undefined) return;
    const open = this.phaseScopes.get(phase);
    if (open === undefined && e.at === "entry")
      this.phaseScopes.set(phase, { target: e.target, scopeId: e.scope_id });
    else if (open !== "done" && (e.at === "exit" || open === undefined)) this.phaseScopes.set(phase, "done");
    else return;
    const now = this.phaseScopes.get(phase);
    for (const target of this.targetsById.values()) {
      if (target.hotspot?.phase !== phase || !target.phaseStop) continue;
      target.phaseStop = now !== "done" && target.id === now?.target;
    }
    this.sendPauseSet();
  }

  private pauseTargets(): string[] {
    return [...this.targetsById.values()]
      .filter((t) => t.phaseStop || t.breakpoints.size > 0)
      .map((t) => t.id)
      .sort();
  }

  private sendPauseSet(): void {
    const targets = this.pauseTargets();
    const key = targets.join("\n");
    if (key === this.lastPauseSet) return;
    this.lastPauseSet = key;
    this.handle?.send({ type: "set_pause", targets });
  }

  // ---- the run -----------------------------------------------------------------------------

  /** Every catalog hotspot is measured (so Step Into stops at the next one); those of
   * stopAtPhases and every breakpoint pause. */
  private buildPlan(): { plan: Plan; targets: RunTarget[] } {
    const phases = new Set(this.config.stopAtPhases);
    const built = buildPlan([
      ...hotspotTargets(this.config.catalog.hotspots, (h) => phases.has(h.phase)),
      ...this.config.probes.map((spec, i) => ({ id: `probe${i + 1}`, spec })),
      ...this.allBreakpoints().flatMap(({ breakpoint }) =>
        breakpoint.spec === undefined
          ? []
          : [{ id: `bp${breakpoint.id}`, spec: breakpoint.spec, pause: true }],
      ),
    ]);
    const hotspots = new Map(this.config.catalog.hotspots.map((h) => [h.id, h]));
    for (const { id, spec, hotspot: hotspotId } of built.targets) {
      const hotspot = hotspotId === undefined ? undefined : hotspots.get(hotspotId);
      const target: EngineTarget = {
        id,
        spec,
        hotspot,
        phaseStop: hotspot !== undefined && phases.has(hotspot.phase),
        breakpoints: new Set(),
        functionBreakpoint: false,
      };
      this.targetsBySpec.set(spec, target);
      this.targetsById.set(id, target);
    }
    this.attachBreakpoints();
    this.lastPauseSet = (built.plan.pause ?? []).join("\n");
    return built;
  }

  /** Starts the run. Rejects (with the runner's message) if the target could not be started. */
  async start(startRun: RunStarter): Promise<{ id: string; dir: string }> {
    if (this.handle) throw new Error("This debug session has already started its run.");
    const { plan, targets } = this.buildPlan();
    const handle = await startRun(
      {
        description: this.config.description,
        plan,
        label: this.config.label,
        runsDir: this.config.runsDir,
        targets,
      },
      { sourceRoots: [...this.config.sourceRoots] },
    );
    this.handle = handle;
    handle.onEvent((e) => this.onProbeEvent(e));
    handle.onStderr((line) => this.emit("output", "stderr", `${line}\n`));
    handle.done.then(
      (outcome) => this.finish(outcomeEnd(outcome)),
      (error: unknown) => {
        this.emit("output", "stderr", `${this.t("out.runFailed", { error: errorText(error) })}\n`);
        this.finish({ exitCode: 1, signal: null, stopped: false });
      },
    );
    const stops = this.config.stopAtPhases.map((p) => this.phaseTitles.get(p)?.title ?? p).join(", ");
    const pausing = plan.pause?.length ?? 0;
    this.emit(
      "output",
      "console",
      `${this.t("out.started", {
        id: handle.id,
        dir: handle.dir,
        targets: plan.targets.length,
        pauses: pausing,
        stops: stops ? this.t("out.stops", { phases: stops }) : "",
      })}\n`,
    );
    return { id: handle.id, dir: handle.dir };
  }

  resume(pid: number, mode: ContinueMode): void {
    this.handle?.send({ type: "continue", pid, mode });
  }

  pause(pid?: number): void {
    this.handle?.send(pid === undefined ? { type: "pause" } : { type: "pause", pid });
  }

  /** Ends the whole process tree; resolves when the run has ended (at once if it never started). */
  async stop(): Promise<void> {
    if (!this.handle || this.ended) return;
    const outcome = await this.handle.stop();
    this.finish(outcomeEnd(outcome));
  }

  private finish(end: EngineEnd): void {
    if (this.ended) return;
    this.ended = true;
    this.emit("ended", end);
  }

  private onProbeEvent(e: ProbeEvent): void {
    this.model.add(e);
    switch (e.type) {
      case "hello":
        this.emit("processStarted", e.pid);
        break;
      case "bye":
        this.emit("processExited", e.pid);
        break;
      case "log":
        this.emit("output", e.stream, `${e.line}\n`);
        break;
      case "error":
        this.emit(
          "output",
          "stderr",
          `${this.t("out.probeError", {
            where: e.where ? this.t("out.probeErrorWhere", { where: e.where }) : "",
            message: e.message,
          })}\n`,
        );
        break;
      case "oom":
        this.emit(
          "output",
          "stderr",
          `${this.t("out.oom", { target: this.targetLabel(e.target), message: e.message })}\n`,
        );
        break;
      case "target_resolved":
      case "target_not_found":
        this.onTargetState(e);
        break;
      case "paused": {
        const stop = this.describeStop(e);
        if (stop.reason === "phase") this.narrowPhaseStops(e);
        this.emit("stopped", stop);
        break;
      }
      case "resumed":
        this.emit("continued", e.pid);
        break;
      case "end":
        // The session ends when the launcher has exited (handle.done), not at its last event.
        for (const [pid, process] of this.model.processes)
          if (!process.exited) this.emit("processExited", pid);
        break;
      default:
        break;
    }
  }

  private onTargetState(e: TargetResolvedEvent | TargetNotFoundEvent): void {
    const target = this.targetsById.get(e.target);
    if (!target) return;
    for (const entry of this.allBreakpoints()) {
      if (!target.breakpoints.has(entry.breakpoint.id)) continue;
      const before = JSON.stringify(entry.breakpoint);
      this.applyTargetState(entry.breakpoint, target);
      if (JSON.stringify(entry.breakpoint) !== before)
        this.emit("breakpointChanged", { ...entry.breakpoint });
    }
  }

  private describeStop(e: PausedEvent): EngineStop {
    const target = this.targetsById.get(e.target);
    const name = this.targetLabel(e.target);
    const where = this.t(e.at === "entry" ? "stop.entry" : "stop.exit", { name });
    const breakpointIds = e.reason === "pause_target" && target ? [...target.breakpoints] : [];
    let reason: StopReason;
    let description: string;
    if (e.reason === "step") {
      reason = "step";
      description = this.t("stop.step", { where });
    } else if (e.reason === "pause_request") {
      reason = "pause";
      description = this.t("stop.paused", { where });
    } else if (breakpointIds.length > 0) {
      reason = target?.functionBreakpoint ? "function breakpoint" : "breakpoint";
      description = this.t("stop.breakpoint", { where });
    } else {
      reason = "phase";
      const phase = target?.hotspot ? this.phaseTitles.get(target.hotspot.phase)?.title : undefined;
      description = this.t("stop.phase", { phase: phase ?? this.t("stop.phaseUnknown"), where });
    }
    return { pid: e.pid, reason, description, breakpointIds, paused: e };
  }

  // ---- what the debugger shows -------------------------------------------------------------

  /** Live processes of the target, oldest first. */
  threads(): { pid: number; name: string }[] {
    return [...this.model.processes.values()]
      .filter((p) => !p.exited || this.model.paused.has(p.pid))
      .sort((a, b) => a.firstTs - b.firstTs)
      .map((p) => ({ pid: p.pid, name: processLabel(p) }));
  }

  /** The paused process's probe scope stack, innermost first (as debuggers list frames). */
  stack(pid: number): EngineFrame[] {
    const paused = this.model.paused.get(pid);
    if (!paused) return [];
    const frames = paused.stack.map((f, index): EngineFrame => {
      const innermost = index === paused.stack.length - 1;
      const label = this.targetLabel(f.target);
      const resolved = this.model.targets.get(f.target)?.resolved.get(pid);
      const file = f.file ?? resolved?.file;
      return {
        index,
        name: innermost
          ? `${label} · ${this.t(paused.at === "entry" ? "frame.entry" : "frame.exit")}`
          : label,
        file,
        line: f.line ?? resolved?.line,
      };
    });
    return frames.reverse();
  }

  frameReadings(pid: number, index: number): FrameReadings | undefined {
    const paused = this.model.paused.get(pid);
    const frame = paused?.stack[index];
    if (!paused || !frame) return undefined;
    if (index === paused.stack.length - 1) {
      return { now: paused.readings, sinceEntry: paused.since_entry, peak: paused.peak };
    }
    const before = this.model.scope(pid, frame.scope_id)?.before;
    return { now: paused.readings, sinceEntry: before ? readingsDelta(paused.readings, before) : undefined };
  }

  private targetLabel(targetId: string): string {
    return targetLabel(this.model, targetId, this.targetsById.get(targetId)?.spec);
  }
}

function exitCodeOf(exitCode: number | null, signal: string | null): number {
  if (exitCode !== null) return exitCode;
  const number = signal ? osConstants.signals[signal as keyof typeof osConstants.signals] : undefined;
  return number !== undefined ? 128 + number : 1;
}

function outcomeEnd(outcome: RunOutcome): EngineEnd {
  const meta = outcome.meta;
  return {
    exitCode: exitCodeOf(meta.exitCode ?? null, meta.signal ?? null),
    signal: meta.signal ?? null,
    stopped: meta.status === "stopped",
  };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
