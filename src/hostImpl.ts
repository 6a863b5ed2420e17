// The MemlensHost every feature receives: settings as a run description, the registry of runs
// (past ones from the run store, live ones as they start), the output channel, and startRun.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import type { LoadedRunEntry, MemlensHost, RunEntry, RunRegistry } from "./host";
import { RunModel } from "./model/runModel";
import { chooseCurrentRun, listStoredRuns, loadedRunEntry, type EventsReport } from "./runEntries";
import { startRun as launchRun } from "./runner/launch";
import { deleteRun, META_FILE } from "./runner/store";
import type { ProbeEvent } from "./protocol/events";
import type { RunDescription, RunMeta, RunOutcome, RunRequest } from "./runner/types";
import { resolveRunsDirectory, runDescriptionFromSettings, substitute } from "./runSettings";

/** How often views hear about new events of a live run (a load emits thousands per second). */
const CHANGE_THROTTLE_MS = 250;

function startedTime(entry: RunEntry): number {
  const t = Date.parse(entry.meta.started);
  return Number.isNaN(t) ? 0 : t;
}

export class RunRegistryImpl implements RunRegistry, vscode.Disposable {
  private readonly entries = new Map<string, RunEntry>();
  /** Runs registered in this window (live or finished here), not loaded from the store. */
  private readonly addedHere = new Set<string>();
  private selectedId: string | undefined;
  /** Runs whose events could not be read when they became current: not retried on every change. */
  private readonly failedLoads = new Set<string>();
  private readonly loading = new Map<RunEntry, Promise<RunModel | undefined>>();
  private readonly emitter = new vscode.EventEmitter<RunEntry | undefined>();
  private throttleTimer: NodeJS.Timeout | undefined;
  private throttledEntry: RunEntry | undefined;
  readonly onDidChange = this.emitter.event;

  /** `log`: where failures to read a run's events go (the output channel). */
  constructor(private readonly log: (line: string) => void = () => undefined) {}

  list(): RunEntry[] {
    return [...this.entries.values()].sort((a, b) => startedTime(b) - startedTime(a));
  }

  get(id: string): RunEntry | undefined {
    return this.entries.get(id);
  }

  current(): RunEntry | undefined {
    const selected = this.selectedId === undefined ? undefined : this.entries.get(this.selectedId);
    return chooseCurrentRun(this.list(), selected, (e) => this.isLive(e));
  }

  /** See RunRegistry.load: a run that cannot be read is reported once and shows no deltas. */
  load(entry: RunEntry): Promise<RunModel | undefined> {
    if (entry.model) return Promise.resolve(entry.model);
    let loading = this.loading.get(entry);
    if (!loading) {
      loading = entry.loadModel().then(
        (model) => {
          this.loading.delete(entry);
          this.failedLoads.delete(entry.id);
          if (this.entries.get(entry.id) === entry) this.fireNow(entry);
          return model;
        },
        (error: unknown) => {
          this.loading.delete(entry);
          this.failedLoads.add(entry.id);
          this.log(`[runs] ${error instanceof Error ? error.message : String(error)}`);
          return undefined;
        },
      );
      this.loading.set(entry, loading);
    }
    return loading;
  }

  /** The current run's events are always wanted (lenses, status bar, panel, checklist). */
  private loadCurrent(): void {
    const current = this.current();
    if (current && !current.model && !this.failedLoads.has(current.id)) void this.load(current);
  }

  private isLive(entry: RunEntry): boolean {
    return this.addedHere.has(entry.id) && entry.meta.status === "running";
  }

  /**
   * The runs going now, newest first: started in this window ("Measure here" or a debug session).
   * A stored run whose meta says "running" belongs to another window, or to one that crashed.
   */
  live(): RunEntry[] {
    return this.list().filter((e) => this.isLive(e));
  }

  select(id: string): void {
    if (!this.entries.has(id)) return;
    this.selectedId = id;
    this.fireNow(this.entries.get(id));
  }

  add(entry: RunEntry): void {
    this.entries.set(entry.id, entry);
    this.addedHere.add(entry.id);
    this.fireNow(entry);
  }

  /**
   * Replaces all stored (not live) runs, e.g. after the runs folder changed. A run listed again
   * with the same meta keeps its entry, and so its events if they were read.
   */
  replaceStored(stored: RunEntry[]): void {
    const before = new Map(this.entries);
    for (const id of before.keys()) if (!this.addedHere.has(id)) this.entries.delete(id);
    for (const entry of stored) {
      if (this.entries.has(entry.id)) continue;
      const kept = before.get(entry.id);
      const same = kept !== undefined && JSON.stringify(kept.meta) === JSON.stringify(entry.meta);
      this.entries.set(entry.id, same ? kept : entry);
      if (!same) this.failedLoads.delete(entry.id);
    }
    this.fireNow(undefined);
  }

  remove(id: string): void {
    if (!this.entries.delete(id)) return;
    this.addedHere.delete(id);
    if (this.selectedId === id) this.selectedId = undefined;
    this.fireNow(undefined);
  }

  /** A live run got events: views hear of it at most every CHANGE_THROTTLE_MS. */
  changed(entry: RunEntry): void {
    this.throttledEntry = entry;
    this.throttleTimer ??= setTimeout(() => {
      this.throttleTimer = undefined;
      const pending = this.throttledEntry;
      this.throttledEntry = undefined;
      this.emitter.fire(pending);
      this.loadCurrent();
    }, CHANGE_THROTTLE_MS);
  }

  fireNow(entry: RunEntry | undefined): void {
    if (this.throttleTimer) {
      clearTimeout(this.throttleTimer);
      this.throttleTimer = undefined;
      this.throttledEntry = undefined;
    }
    this.emitter.fire(entry);
    this.loadCurrent();
  }

  dispose(): void {
    if (this.throttleTimer) clearTimeout(this.throttleTimer);
    for (const entry of this.entries.values()) {
      // Closing VS Code must never leave a target holding GPU memory.
      if (entry.handle && entry.meta.status === "running") void entry.handle.stop();
    }
    this.emitter.dispose();
  }
}

export interface LiveRun {
  entry: LoadedRunEntry;
  /** Every event so far, for views that join late (the language server); dropped when the run ends. */
  events: ProbeEvent[];
  /** Launcher/ssh stderr lines of this run, newest last (for error messages). */
  launcherStderr: string[];
  outcome: Promise<RunOutcome>;
}

export class MemlensHostImpl implements MemlensHost, vscode.Disposable {
  readonly runs: RunRegistryImpl;
  private readonly liveRuns = new Map<string, LiveRun>();
  private readonly startedEmitter = new vscode.EventEmitter<LiveRun>();
  /** Fires for each run started through startRun (progress, status bar, error reporting). */
  readonly onDidStartRun = this.startedEmitter.event;

  constructor(
    readonly context: vscode.ExtensionContext,
    readonly output: vscode.OutputChannel,
    readonly probePath: string,
  ) {
    this.runs = new RunRegistryImpl((line) => output.appendLine(line));
  }

  private workspaceFolder(): string | undefined {
    return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  }

  runDescription(): RunDescription {
    return runDescriptionFromSettings(vscode.workspace.getConfiguration("memlens"), this.workspaceFolder());
  }

  runsDirectory(): string {
    const setting = vscode.workspace.getConfiguration("memlens").get<string>("runsDirectory") ?? "";
    return resolveRunsDirectory(
      setting,
      this.workspaceFolder(),
      path.join(this.context.globalStorageUri.fsPath, "runs"),
    );
  }

  /** memlens.sourceRoots (relative to the workspace), else the workspace folders. */
  sourceRoots(): string[] {
    const folder = this.workspaceFolder();
    const roots = vscode.workspace.getConfiguration("memlens").get<string[]>("sourceRoots") ?? [];
    if (roots.length === 0) return (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
    return roots.map((root) => {
      const expanded = substitute(root, { workspaceFolder: folder, python: "" });
      return folder && !path.isAbsolute(expanded) ? path.join(folder, expanded) : expanded;
    });
  }

  liveRun(id: string): LiveRun | undefined {
    return this.liveRuns.get(id);
  }

  /**
   * Lists the stored runs of the runs folder (at activation, and when the setting changes): their
   * meta.json only. Events are read when a view needs them; the current run's before this returns,
   * so a window reopened on a finished run shows its deltas at once.
   */
  async loadStoredRuns(): Promise<void> {
    const dir = this.runsDirectory();
    const isLive = (id: string) => this.liveRuns.has(id);
    let stored: RunEntry[];
    try {
      stored = await listStoredRuns(dir, { isLive, onReport: (_entry, report) => this.reportEvents(report) });
    } catch (error) {
      const message = `MemLens cannot read the runs folder ${dir} (${error instanceof Error ? error.message : String(error)}); past runs are not shown. Check memlens.runsDirectory.`;
      this.output.appendLine(`[runs] ${message}`);
      void vscode.window.showWarningMessage(message);
      return;
    }
    this.runs.replaceStored(stored.filter((entry) => !isLive(entry.id)));
    const current = this.runs.current();
    if (current) await this.runs.load(current);
  }

  private reportEvents(report: EventsReport): void {
    const dir = path.dirname(report.file);
    if (report.versionError) this.output.appendLine(`[runs] ${dir}: ${report.versionError.message}`);
    if (report.malformed > 0) {
      this.output.appendLine(`[runs] ${dir}: ${report.malformed} malformed line(s) in events.jsonl skipped`);
    }
    if (report.duplicates > 0) {
      this.output.appendLine(`[runs] ${dir}: ${report.duplicates} repeated line(s) in events.jsonl skipped`);
    }
  }

  async deleteRun(id: string): Promise<void> {
    const entry = this.runs.get(id);
    if (!entry) return;
    if (entry.handle && entry.meta.status === "running") await entry.handle.stop();
    await deleteRun(path.dirname(entry.dir), entry.id, { isLive: (runId) => this.liveRuns.has(runId) });
    this.runs.remove(id);
  }

  async startRun(request: Omit<RunRequest, "runsDir">): Promise<RunEntry> {
    const runsDir = this.runsDirectory();
    const description = request.description;
    const launcherStderr: string[] = [];
    this.output.appendLine("");
    this.output.appendLine(
      `── ${request.label} ── ${description.python} ${(description.command ?? ["<bundled loader>"]).join(" ")}` +
        (description.host ? ` on ${description.host}` : "") +
        (description.cwd ? ` (in ${description.cwd})` : ""),
    );
    const model = new RunModel();
    const handle = await launchRun(
      { ...request, runsDir },
      {
        probePath: this.probePath,
        sourceRoots: this.sourceRoots(),
        onProgress: (message: string) => this.output.appendLine(`[memlens] ${message}`),
      },
    );
    const meta = readMetaNow(handle.dir) ?? {
      id: handle.id,
      label: request.label,
      started: new Date().toISOString(),
      host: description.host ?? null,
      command: description.command ?? [],
      status: "running",
      targets: request.targets,
    };
    const entry = loadedRunEntry({ id: handle.id, dir: handle.dir, meta, model, handle });
    const events: ProbeEvent[] = [];
    handle.onEvent((event) => {
      events.push(event);
      model.add(event);
      if (event.type === "log") this.output.appendLine(`[${event.pid}] ${event.line}`);
      else if (event.type === "error") this.output.appendLine(`[probe ${event.pid}] error: ${event.message}`);
      else if (event.type === "target_not_found")
        this.output.appendLine(`[probe] ${event.spec}: ${event.reason}`);
      this.runs.changed(entry);
    });
    handle.onStderr((line) => {
      launcherStderr.push(line);
      if (launcherStderr.length > 200) launcherStderr.shift();
      this.output.appendLine(`[launcher] ${line}`);
    });
    const outcome = handle.done.then(
      (result) => {
        entry.meta = result.meta;
        entry.handle = undefined;
        this.liveRuns.delete(entry.id);
        this.output.appendLine(`── ${request.label}: ${describeEnd(result.meta)}`);
        this.runs.fireNow(entry);
        return result;
      },
      (error: unknown) => {
        entry.meta = {
          ...entry.meta,
          status: "failed",
          error: error instanceof Error ? error.message : String(error),
        };
        entry.handle = undefined;
        this.liveRuns.delete(entry.id);
        this.runs.fireNow(entry);
        throw error;
      },
    );
    const live: LiveRun = { entry, events, launcherStderr, outcome };
    this.liveRuns.set(entry.id, live);
    this.runs.add(entry);
    this.startedEmitter.fire(live);
    return entry;
  }

  dispose(): void {
    this.runs.dispose();
    this.startedEmitter.dispose();
  }
}

/** The meta.json the runner wrote when it started the run (it has the resolved command and pid). */
function readMetaNow(dir: string): RunMeta | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dir, META_FILE), "utf8")) as RunMeta;
  } catch {
    return undefined;
  }
}

function describeEnd(meta: RunMeta): string {
  if (meta.status === "stopped") return "stopped";
  const parts: string[] = [meta.status];
  if (meta.exitCode !== undefined && meta.exitCode !== null) parts.push(`exit code ${meta.exitCode}`);
  if (meta.signal) parts.push(`signal ${meta.signal}`);
  if (meta.error) parts.push(meta.error);
  if (meta.recordError) parts.push(`the run's record is incomplete: ${meta.recordError}`);
  return parts.join(", ");
}
