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
  /** A phase stop of a tensor-parallel run: every rank is paused there (reported once, for all). */
  allThreadsStopped?: boolean;
  /** The ranks' processes paused at this stop, by rank (phase stops of ranks only). */
  rankPids?: number[];
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

/** The probed scope a stop phase narrowed to, and the processes inside it now (one per rank). */
interface PhaseScope {
  target: string;
  inside: Set<number>;
}

/** A phase stop the ranks of a tensor-parallel run share: held until every rank is paused there. */
interface RankStop {
  key: string;
  first: EngineStop;
  /** Paused here, by pid. */
  members: Set<number>;
  reported: boolean;
  timer?: NodeJS.Timeout;
}

/** How long a phase stop waits for the other ranks before it is reported with those that came. The
 * ranks of one tensor-parallel model meet in a collective at every layer, so a rank that has not
 * come by then is not on its way (it never calls this function, or it hangs). */
export const RANK_WAIT_MS = 15_000;
/** How long a ranked process's phase stop waits to learn of other ranks before it is reported as a
 * process's own: the launcher relays each process's events in batches, so the other ranks' first
 * events can come just after this one's pause. vLLM without tensor parallelism is rank 0 alone. */
export const RANK_SETTLE_MS = 300;

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
  private readonly phaseScopes = new Map<PhaseId, PhaseScope | "done">();
  /** Phase stops of ranks, by phase/at/target; and the reported one each paused rank belongs to. */
  private readonly rankStops = new Map<string, RankStop>();
  private readonly rankStopOf = new Map<number, RankStop>();
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
    if (open === "done") return;
    if (open === undefined && e.at === "entry") {
      this.phaseScopes.set(phase, { target: e.target, inside: new Set([e.pid]) });
    } else if (open !== undefined && open.target === e.target && e.at === "entry") {
      // Another rank entered the same function: it stops at its exit too.
      open.inside.add(e.pid);
      return;
    } else {
      // The phase is done once every process that entered its scope has left it.
      if (open !== undefined && open.target === e.target) {
        open.inside.delete(e.pid);
        if (open.inside.size > 0) return;
      }
      this.phaseScopes.set(phase, "done");
    }
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

  /** Resumes a paused process. Continue on a rank of a shared phase stop resumes every rank of it
   * (returns true then: all threads continued); a step moves only the rank stepped. */
  resume(pid: number, mode: ContinueMode): boolean {
    const group = mode === "run" ? this.rankStopOf.get(pid) : undefined;
    const pids = group ? [...group.members].filter((p) => this.model.paused.has(p)) : [pid];
    if (!pids.includes(pid)) pids.push(pid);
    for (const p of group ? group.members : [pid]) this.rankStopOf.delete(p);
    for (const p of pids) this.handle?.send({ type: "continue", pid: p, mode });
    return group !== undefined;
  }

  /** Pauses a process at its next probe point; a rank of a tensor-parallel run pauses with every
   * rank (one rank held alone would leave the others waiting for it in their next collective). */
  pause(pid?: number): void {
    if (pid === undefined) {
      this.handle?.send({ type: "pause" });
      return;
    }
    const ranks = this.rankWorkers(pid);
    for (const p of ranks.length > 1 ? ranks : [pid]) this.handle?.send({ type: "pause", pid: p });
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
    for (const group of this.rankStops.values()) clearTimeout(group.timer);
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
        this.rankStopOf.delete(e.pid);
        for (const group of this.rankStops.values()) if (!group.reported) this.reportIfComplete(group);
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
        if ((stop.reason === "phase" || stop.reason === "pause") && this.holdForRanks(stop)) break;
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

  // ---- ranks ---------------------------------------------------------------------------------

  /**
   * The ranks a phase stop of `pid` waits for, as slots ("rank N"): every rank of a live process,
   * one process of each being enough (under torchrun a rank's helpers, such as multiprocessing's
   * resource tracker, inherit its RANK). A worker whose group is not up yet has no rank and is not
   * waited for; the settle time (RANK_SETTLE_MS) lets the ranks' first ranked events arrive. One
   * slot: not a tensor-parallel stop (vLLM without it is rank 0 alone).
   */
  private rankSlots(pid: number): string[] {
    const self = this.model.processes.get(pid);
    if (!self || self.rank === null) return [];
    const slots = new Set<string>([`rank ${self.rank}`]);
    for (const p of this.model.processes.values())
      if (!p.exited && p.rank !== null) slots.add(`rank ${p.rank}`);
    return [...slots];
  }

  /** The live ranked processes that run probed code (not a rank's helpers), `pid` included. */
  private rankWorkers(pid: number): number[] {
    const self = this.model.processes.get(pid);
    if (!self || self.rank === null) return [];
    const running = new Set(this.model.calls.map((c) => c.pid));
    return [...this.model.processes.values()]
      .filter((p) => !p.exited && p.rank !== null && (p.pid === pid || running.has(p.pid)))
      .map((p) => p.pid);
  }

  /** The slots of rankSlots that none of `members` fills. */
  private missingSlots(members: Set<number>, slots: readonly string[]): string[] {
    const filled = new Set<string>();
    for (const pid of members) {
      const rank = this.model.processes.get(pid)?.rank;
      if (rank !== null && rank !== undefined) filled.add(`rank ${rank}`);
    }
    return slots.filter((slot) => !filled.has(slot));
  }

  /** Holds a phase stop of one rank until every rank is paused at it; true while held or merged. */
  private holdForRanks(stop: EngineStop): boolean {
    if (this.rankSlots(stop.pid).length === 0) return false;
    const e = stop.paused;
    // A pause request stops each rank wherever it is: one shared stop whatever the places.
    const key = stop.reason === "pause" ? "pause" : `${e.at}/${e.target}`;
    let group = this.rankStops.get(key);
    if (group?.reported && !group.members.has(stop.pid)) {
      // It came after the stop was reported without it: a stop of its own.
      return false;
    }
    if (!group || group.reported) {
      group = { key, first: stop, members: new Set(), reported: false };
      this.rankStops.set(key, group);
      const waiting = group;
      waiting.timer = setTimeout(() => this.settle(waiting), RANK_SETTLE_MS);
    }
    group.members.add(stop.pid);
    this.reportIfComplete(group);
    return true;
  }

  private pausedMembers(group: RankStop): number[] {
    const byRank = (pid: number) => this.model.processes.get(pid)?.rank ?? Number.MAX_SAFE_INTEGER;
    return [...group.members].filter((p) => this.model.paused.has(p)).sort((a, b) => byRank(a) - byRank(b));
  }

  private reportIfComplete(group: RankStop): void {
    const [anyMember] = this.pausedMembers(group);
    if (anyMember === undefined) return;
    const slots = this.rankSlots(anyMember);
    if (slots.length >= 2 && this.missingSlots(group.members, slots).length === 0) this.report(group);
  }

  /** Once the other ranks had time to show up: one rank alone stops as any process; else wait for them. */
  private settle(group: RankStop): void {
    if (group.reported || this.ended) return;
    const [anyMember] = this.pausedMembers(group);
    if (anyMember !== undefined && this.rankSlots(anyMember).length < 2) {
      group.reported = true;
      this.emit("stopped", group.first);
      return;
    }
    this.reportIfComplete(group);
    if (!group.reported) group.timer = setTimeout(() => this.report(group), RANK_WAIT_MS);
  }

  /** Reports the stop once: for all ranks when every one is there, else (after RANK_WAIT_MS) for those that came. */
  private report(group: RankStop): void {
    if (group.reported || this.ended) return;
    group.reported = true;
    clearTimeout(group.timer);
    const pids = this.pausedMembers(group);
    if (pids.length === 0) return;
    for (const pid of pids) this.rankStopOf.set(pid, group);
    const slots = this.rankSlots(pids[0]!);
    const all = this.missingSlots(group.members, slots).length === 0;
    const first = group.first;
    this.emit("stopped", {
      ...first,
      pid: pids.includes(first.pid) ? first.pid : pids[0]!,
      description: this.t(all ? "stop.allRanks" : "stop.someRanks", {
        stop: first.description,
        n: pids.length,
        total: slots.length,
      }),
      allThreadsStopped: all,
      rankPids: pids,
    });
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
