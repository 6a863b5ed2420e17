// The DAP side of the `memlens` debug type: translates requests into engine calls and engine
// events into DAP events, nothing more.
import os from "node:os";
import path from "node:path";
import {
  Breakpoint,
  BreakpointEvent,
  ContinuedEvent,
  Event,
  ExitedEvent,
  Handles,
  InitializedEvent,
  LoggingDebugSession,
  OutputEvent,
  Scope,
  Source,
  StackFrame,
  StoppedEvent,
  TerminatedEvent,
  Thread,
  ThreadEvent,
} from "@vscode/debugadapter";
import type { DebugProtocol } from "@vscode/debugprotocol";
import type { Catalog } from "../catalog/types";
import type { ContinueMode, Peak, Readings } from "../protocol/events";
import { RUN_EVENT, type RunEventBody } from "./customEvents";
import { DebugEngine, type EngineBreakpoint, type RunStarter } from "./engine";
import { parseLaunchArgs, runDescriptionOf } from "./launchArgs";
import {
  deltaVariables,
  nowVariables,
  peakVariables,
  readingsBySource,
  READING_SOURCES,
  type ReadingVariable,
} from "./readingsView";
import { DEBUG_TEXT, type DebugKey } from "../l10n/debug";
import { langOf, translator, type Lang, type Translate } from "../l10n/lang";

export interface SessionDependencies {
  startRun: RunStarter;
  catalog: Catalog;
}

type VariableContainer =
  | { kind: "list"; variables: ReadingVariable[] }
  | { kind: "sources"; now: Readings; sinceEntry?: Readings; peak?: Peak };

const ErrorId = {
  BadLaunch: 1001,
  StartFailed: 1002,
  NotLaunched: 1003,
} as const;
type ErrorId = (typeof ErrorId)[keyof typeof ErrorId];

export class MemlensDebugSession extends LoggingDebugSession {
  private engine?: DebugEngine;
  private readonly configurationDone: Promise<void>;
  private markConfigurationDone!: () => void;
  private readonly frameHandles = new Handles<{ pid: number; index: number }>();
  private readonly variableHandles = new Handles<VariableContainer>();
  /** The client's UI language, from the initialize request's `locale` (VS Code sends its own). */
  private lang: Lang = "en";
  private t: Translate<DebugKey> = translator(DEBUG_TEXT, "en");

  constructor(private readonly deps: SessionDependencies) {
    super();
    this.configurationDone = new Promise((resolve) => (this.markConfigurationDone = resolve));
    this.setDebuggerLinesStartAt1(true);
    this.setDebuggerColumnsStartAt1(true);
  }

  protected override initializeRequest(
    response: DebugProtocol.InitializeResponse,
    args: DebugProtocol.InitializeRequestArguments,
  ): void {
    this.lang = langOf(args.locale);
    this.t = translator(DEBUG_TEXT, this.lang);
    response.body = {
      ...response.body,
      supportsConfigurationDoneRequest: true,
      supportsTerminateRequest: true,
      supportsFunctionBreakpoints: true,
      supportTerminateDebuggee: true,
      supportsSingleThreadExecutionRequests: true,
    };
    // `initialized` is sent from launch: breakpoints need the launch's source roots and mappings.
    this.sendResponse(response);
  }

  protected override configurationDoneRequest(response: DebugProtocol.ConfigurationDoneResponse): void {
    this.markConfigurationDone();
    this.sendResponse(response);
  }

  protected override launchRequest(response: DebugProtocol.LaunchResponse, rawArgs: unknown): void {
    void this.launch(response, rawArgs);
  }

  /** Never rejects: every failure becomes the launch's error response. */
  private async launch(response: DebugProtocol.LaunchResponse, rawArgs: unknown): Promise<void> {
    let engine: DebugEngine;
    try {
      const args = parseLaunchArgs(rawArgs);
      const name = (rawArgs as { name?: unknown } | null)?.name;
      engine = new DebugEngine({
        description: runDescriptionOf(args),
        catalog: this.deps.catalog,
        stopAtPhases: args.stopAtPhases ?? [],
        probes: args.probes ?? [],
        runsDir: args.runsDirectory ?? path.join(os.tmpdir(), "memlens-runs"),
        label: typeof name === "string" && name !== "" ? name : "memlens debug",
        sourceRoots: args.sourceRoots ?? [],
        lang: this.lang,
      });
    } catch (error) {
      this.sendError(response, ErrorId.BadLaunch, errorText(error));
      return;
    }
    this.engine = engine;
    this.wireEngine(engine);
    this.sendEvent(new InitializedEvent());
    await this.configurationDone;
    try {
      const run = await engine.start(this.deps.startRun);
      const body: RunEventBody = run;
      this.sendEvent(new Event(RUN_EVENT, body));
    } catch (error) {
      this.sendError(response, ErrorId.StartFailed, this.t("error.startFailed", { error: errorText(error) }));
      return;
    }
    this.sendResponse(response);
  }

  private wireEngine(engine: DebugEngine): void {
    engine.on("stopped", (stop) => {
      const event = new StoppedEvent(stop.reason, stop.pid) as DebugProtocol.StoppedEvent;
      event.body.description = stop.description;
      event.body.allThreadsStopped = stop.allThreadsStopped ?? false;
      if (stop.breakpointIds.length > 0) event.body.hitBreakpointIds = stop.breakpointIds;
      this.sendEvent(event);
    });
    engine.on("continued", (pid) => this.sendEvent(new ContinuedEvent(pid, false)));
    engine.on("processStarted", (pid) => this.sendEvent(new ThreadEvent("started", pid)));
    engine.on("processExited", (pid) => this.sendEvent(new ThreadEvent("exited", pid)));
    engine.on("output", (category, text) => this.sendEvent(new OutputEvent(text, category)));
    engine.on("breakpointChanged", (bp) =>
      this.sendEvent(new BreakpointEvent("changed", this.toDapBreakpoint(bp))),
    );
    engine.on("ended", (end) => {
      this.sendEvent(new ExitedEvent(end.exitCode));
      this.sendEvent(new TerminatedEvent());
    });
  }

  private toDapBreakpoint(bp: EngineBreakpoint): DebugProtocol.Breakpoint {
    const line = bp.line !== undefined ? this.convertDebuggerLineToClient(bp.line) : undefined;
    const source = bp.file !== undefined ? this.source(bp.file) : undefined;
    const out: DebugProtocol.Breakpoint = new Breakpoint(bp.verified, line, undefined, source);
    out.id = bp.id;
    if (bp.message !== undefined) out.message = bp.message;
    return out;
  }

  protected override setBreakPointsRequest(
    response: DebugProtocol.SetBreakpointsResponse,
    args: DebugProtocol.SetBreakpointsArguments,
  ): void {
    const file = args.source.path;
    if (!this.engine || file === undefined) {
      this.sendError(response, ErrorId.NotLaunched, this.t("error.breakpointsNeedLaunch"));
      return;
    }
    const lines = (args.breakpoints ?? args.lines?.map((line) => ({ line })) ?? []).map((b) =>
      this.convertClientLineToDebugger(b.line),
    );
    const breakpoints = this.engine.setSourceBreakpoints(this.convertClientPathToDebugger(file), lines);
    response.body = { breakpoints: breakpoints.map((bp) => this.toDapBreakpoint(bp)) };
    this.sendResponse(response);
  }

  protected override setFunctionBreakPointsRequest(
    response: DebugProtocol.SetFunctionBreakpointsResponse,
    args: DebugProtocol.SetFunctionBreakpointsArguments,
  ): void {
    if (!this.engine) {
      this.sendError(response, ErrorId.NotLaunched, this.t("error.functionBreakpointsNeedLaunch"));
      return;
    }
    const breakpoints = this.engine.setFunctionBreakpoints(args.breakpoints.map((b) => b.name));
    response.body = { breakpoints: breakpoints.map((bp) => this.toDapBreakpoint(bp)) };
    this.sendResponse(response);
  }

  protected override threadsRequest(response: DebugProtocol.ThreadsResponse): void {
    const threads = this.engine?.threads() ?? [];
    response.body = { threads: threads.map((t) => new Thread(t.pid, t.name)) };
    this.sendResponse(response);
  }

  protected override stackTraceRequest(
    response: DebugProtocol.StackTraceResponse,
    args: DebugProtocol.StackTraceArguments,
  ): void {
    const all = this.engine?.stack(args.threadId) ?? [];
    const start = args.startFrame ?? 0;
    const frames = all.slice(start, args.levels ? start + args.levels : undefined);
    response.body = {
      stackFrames: frames.map((f) => {
        const frame: DebugProtocol.StackFrame = new StackFrame(
          this.frameHandles.create({ pid: args.threadId, index: f.index }),
          f.name,
          f.file !== undefined ? this.source(f.file) : undefined,
          f.line !== undefined ? this.convertDebuggerLineToClient(f.line) : 0,
        );
        return frame;
      }),
      totalFrames: all.length,
    };
    this.sendResponse(response);
  }

  protected override scopesRequest(
    response: DebugProtocol.ScopesResponse,
    args: DebugProtocol.ScopesArguments,
  ): void {
    const frame = this.frameHandles.get(args.frameId);
    const readings = frame && this.engine?.frameReadings(frame.pid, frame.index);
    const scopes: DebugProtocol.Scope[] = [];
    if (readings) {
      const list = (name: string, variables: ReadingVariable[]) =>
        scopes.push(new Scope(name, this.variableHandles.create({ kind: "list", variables }), false));
      const { t, lang } = this;
      list(t("scope.now"), nowVariables(readings.now, lang));
      if (readings.sinceEntry) list(t("scope.sinceEntry"), deltaVariables(readings.sinceEntry, lang));
      if (readings.peak && Object.keys(readings.peak).length > 0)
        list(t("scope.peak"), peakVariables(readings.peak, lang));
      scopes.push(
        new Scope(t("scope.perSource"), this.variableHandles.create({ kind: "sources", ...readings }), false),
      );
    }
    response.body = { scopes };
    this.sendResponse(response);
  }

  protected override variablesRequest(
    response: DebugProtocol.VariablesResponse,
    args: DebugProtocol.VariablesArguments,
  ): void {
    const container = this.variableHandles.get(args.variablesReference);
    const variables: DebugProtocol.Variable[] = [];
    if (container?.kind === "list") {
      for (const v of container.variables)
        variables.push({ name: v.name, value: v.value, type: v.type, variablesReference: 0 });
    } else if (container?.kind === "sources") {
      for (const group of readingsBySource(container.now, this.lang)) {
        const children = this.sourceChildren(group.source.keys, container);
        variables.push({
          name: group.name,
          value: group.variables.map((v) => `${v.name} ${v.value.split(" (")[0]}`).join(" · "),
          variablesReference: this.variableHandles.create({ kind: "list", variables: children }),
        });
      }
    }
    response.body = { variables };
    this.sendResponse(response);
  }

  /** One source's readings: now, the delta since scope entry and the peak, side by side. */
  private sourceChildren(
    keys: (typeof READING_SOURCES)[number]["keys"],
    readings: { now: Readings; sinceEntry?: Readings; peak?: Peak },
  ): ReadingVariable[] {
    const pick = <T extends object>(values: T | undefined): T =>
      Object.fromEntries(keys.map((k) => [k, (values as Record<string, number> | undefined)?.[k]])) as T;
    return [
      ...nowVariables(pick(readings.now), this.lang),
      ...deltaVariables(pick(readings.sinceEntry), this.lang).map((v) => ({
        ...v,
        name: this.t("var.sinceEntry", { name: v.name }),
      })),
      ...peakVariables(pick(readings.peak), this.lang).map((v) => ({
        ...v,
        name: this.t("var.peak", { name: v.name }),
      })),
    ];
  }

  protected override continueRequest(
    response: DebugProtocol.ContinueResponse,
    args: DebugProtocol.ContinueArguments,
  ): void {
    // Continue at a phase stop the ranks share resumes every rank of it.
    response.body = { allThreadsContinued: this.engine?.resume(args.threadId, "run") ?? false };
    this.sendResponse(response);
  }

  protected override nextRequest(
    response: DebugProtocol.NextResponse,
    args: DebugProtocol.NextArguments,
  ): void {
    this.resume(args.threadId, "step_over");
    this.sendResponse(response);
  }

  protected override stepInRequest(
    response: DebugProtocol.StepInResponse,
    args: DebugProtocol.StepInArguments,
  ): void {
    this.resume(args.threadId, "step_into");
    this.sendResponse(response);
  }

  /** The probe's step_over runs to the exit of the scope it paused in: that is also "out". */
  protected override stepOutRequest(
    response: DebugProtocol.StepOutResponse,
    args: DebugProtocol.StepOutArguments,
  ): void {
    this.resume(args.threadId, "step_over");
    this.sendResponse(response);
  }

  private resume(pid: number, mode: ContinueMode): void {
    this.engine?.resume(pid, mode);
  }

  protected override pauseRequest(
    response: DebugProtocol.PauseResponse,
    args: DebugProtocol.PauseArguments,
  ): void {
    this.engine?.pause(args.threadId);
    this.sendResponse(response);
  }

  protected override terminateRequest(response: DebugProtocol.TerminateResponse): void {
    void this.stopRun().then(() => this.sendResponse(response));
  }

  protected override disconnectRequest(response: DebugProtocol.DisconnectResponse): void {
    void this.stopRun().then(() => this.sendResponse(response));
  }

  /** Ends the run and its process tree (also when the adapter itself is told to go). Never rejects. */
  async stopRun(): Promise<void> {
    try {
      await this.engine?.stop();
    } catch (error) {
      this.sendEvent(new OutputEvent(`${this.t("out.stopFailed", { error: errorText(error) })}\n`, "stderr"));
    }
  }

  private source(file: string): Source {
    return new Source(path.basename(file), this.convertDebuggerPathToClient(file));
  }

  private sendError(response: DebugProtocol.Response, id: ErrorId, message: string): void {
    // The message goes in as a variable so braces in paths or errors are not read as placeholders;
    // a leading underscore marks it as not personal data, so it also fills response.message.
    this.sendErrorResponse(response, {
      id,
      format: "{_message}",
      variables: { _message: message },
      showUser: true,
    });
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
