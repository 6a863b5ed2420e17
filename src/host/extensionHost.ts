// The MemlensHost every feature receives: settings as a run description, the registry of runs
// (past ones from the run store, live ones as they start), the output channel, and startRun.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import { BudgetResolver, type ResolvedBudget } from "./budget";
import type { LoadedRunEntry, MemlensHost, RunEntry } from "./host";
import { RunModel } from "../model/runModel";
import { RunRegistryImpl } from "./registry";
import { listStoredRuns, loadedRunEntry, type EventsReport } from "./runEntries";
import { startRun as launchRun } from "../runner/launch";
import { deleteRun, META_FILE } from "../runner/store";
import type { RunMeta, RunOutcome, RunRequest } from "../runner/types";
import { readSettings, type MemlensSettings } from "../settings/settings";

export interface LiveRun {
  entry: LoadedRunEntry;
  /** Launcher/ssh stderr lines of this run, newest last (for error messages). */
  launcherStderr: string[];
  outcome: Promise<RunOutcome>;
}

export class MemlensHostImpl implements MemlensHost, vscode.Disposable {
  readonly runs: RunRegistryImpl;
  private readonly budgets: BudgetResolver;
  private readonly liveRuns = new Map<string, LiveRun>();

  constructor(
    readonly context: vscode.ExtensionContext,
    readonly output: vscode.OutputChannel,
    readonly probePath: string,
  ) {
    this.runs = new RunRegistryImpl((line) => output.appendLine(line));
    this.budgets = new BudgetResolver((line) => output.appendLine(line));
  }

  budget(): Promise<ResolvedBudget> {
    return this.budgets.resolve(
      this.settings(),
      vscode.workspace.isTrusted,
      vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
    );
  }

  settings(): MemlensSettings {
    const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === "file");
    return readSettings(vscode.workspace.getConfiguration("memlens"), {
      folder: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
      folders: folders.map((f) => f.uri.fsPath),
      storage: path.join(this.context.globalStorageUri.fsPath, "runs"),
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
    const dir = this.settings().runsDirectory;
    const isLive = (id: string) => this.liveRuns.has(id);
    let stored: RunEntry[];
    try {
      stored = await listStoredRuns(dir, { isLive, onReport: (_entry, report) => this.reportEvents(report) });
    } catch (error) {
      const message = vscode.l10n.t(
        "MemLens cannot read the runs folder {0} ({1}); past runs are not shown. Check memlens.runsDirectory.",
        dir,
        error instanceof Error ? error.message : String(error),
      );
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
    const settings = this.settings();
    const runsDir = settings.runsDirectory;
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
        sourceRoots: settings.sourceRoots,
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
    handle.onEvent((event) => {
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
    this.liveRuns.set(entry.id, { entry, launcherStderr, outcome });
    this.runs.add(entry);
    return entry;
  }

  dispose(): void {
    this.runs.dispose();
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
