// "Measure here", "Measure this line", "Run with current probes", "Cancel run", "Clear probes":
// add a target to the probe set, start a run with every probe and the configured run description,
// and report how it went.
import * as vscode from "vscode";
import type { HotspotCatalog } from "../catalog/catalog";
import type { RunEntry } from "../host/host";
import type { LiveRun, MemlensHostImpl } from "../host/extensionHost";
import { buildPlan } from "../model/plan";
import type { CallRecord, RunModel } from "../model/runModel";
import { specLabel } from "../model/targets";
import type { RunDescription } from "../runner/types";
import type { QualnameResolver } from "../server/client";
import type { MeasureHereArgs } from "../server/protocol";
import { showRunProgress } from "../views/progress";
import { localizedPhase } from "../l10n/catalog";
import { uiLang } from "../l10n/vscode";
import { runLabel, type ProbeSet, type ProbeTarget } from "./probeSet";
import {
  describeRunFailure,
  describeStartError,
  describeUnresolvedProbes,
  type RunFailure,
} from "./runErrors";

/** What a lens or a caller may pass to memlens.measureLine. */
export interface MeasureLineArgs {
  uri: string | vscode.Uri;
  /** 1-based. */
  line: number;
}

export interface MeasureDeps {
  host: MemlensHostImpl;
  probes: ProbeSet;
  catalog: HotspotCatalog;
  /** The language server's answers (undefined while it is not running). */
  resolver: () => QualnameResolver | undefined;
  /** Called when a run ends (the language client gets the run then). */
  onRunFinished: (entry: RunEntry) => void;
}

function toUri(uri: string | vscode.Uri): vscode.Uri {
  return typeof uri === "string" ? vscode.Uri.parse(uri) : uri;
}

function isMeasureHereArgs(value: unknown): value is MeasureHereArgs {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.module === "string" && typeof v.qualname === "string" && v.uri !== undefined;
}

function isMeasureLineArgs(value: unknown): value is MeasureLineArgs {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.line === "number" && v.uri !== undefined && !("qualname" in v);
}

/** Names the load phase of a scope: its hotspot's catalog phase, else the probed target. */
export function phaseNamer(catalog: HotspotCatalog) {
  return (entry: RunEntry, call: CallRecord): string => {
    const target = entry.meta.targets?.find((t) => t.id === call.target);
    const hotspot =
      (target?.hotspot ? catalog.byId(target.hotspot) : undefined) ??
      (target?.spec ? catalog.lookup(target.spec)?.hotspot : undefined);
    const phase = hotspot ? catalog.phase(hotspot.phase) : undefined;
    if (phase) return localizedPhase(phase, uiLang()).title;
    return vscode.l10n.t("in {0}", target ? specLabel(target.spec, true) : call.target);
  };
}

export class MeasureCommands {
  constructor(private readonly deps: MeasureDeps) {}

  register(): vscode.Disposable[] {
    return [
      vscode.commands.registerCommand("memlens.measureHere", (arg?: unknown) => this.measureHere(arg)),
      vscode.commands.registerCommand("memlens.measureLine", (arg?: unknown) => this.measureLine(arg)),
      vscode.commands.registerCommand("memlens.runProbes", () => this.runWithProbes()),
      vscode.commands.registerCommand("memlens.cancelRun", () => this.cancel()),
      vscode.commands.registerCommand("memlens.clearProbes", () => this.clearProbes()),
    ];
  }

  async measureHere(arg?: unknown): Promise<RunEntry | undefined> {
    let target: ProbeTarget | undefined;
    if (isMeasureHereArgs(arg)) {
      target = {
        kind: "function",
        spec: `${arg.module}:${arg.qualname}`,
        hotspot: arg.hotspot ?? this.deps.catalog.lookupParts(arg.module, arg.qualname)?.hotspot.id,
        file: toUri(arg.uri).fsPath,
        line: arg.line,
      };
    } else {
      target = await this.functionAtCursor(arg instanceof vscode.Uri ? arg : undefined);
    }
    if (!target) return undefined;
    return this.addAndRun(target);
  }

  async measureLine(arg?: unknown): Promise<RunEntry | undefined> {
    let uri: vscode.Uri | undefined;
    let line: number | undefined;
    if (isMeasureLineArgs(arg)) {
      uri = toUri(arg.uri);
      line = arg.line;
    } else {
      const editor = vscode.window.activeTextEditor;
      if (!editor || editor.document.languageId !== "python") {
        void vscode.window.showWarningMessage(
          vscode.l10n.t("MemLens: put the cursor on a line of a Python file to measure that line."),
        );
        return undefined;
      }
      uri = editor.document.uri;
      line = editor.selection.active.line + 1;
      // A statement over several lines is probed at its first line, where Python reports it.
      const resolved = await this.deps.resolver()?.resolveQualname(uri, editor.selection.active, "line");
      if (resolved && !resolved.ok) {
        void vscode.window.showWarningMessage(vscode.l10n.t("MemLens: {0}", resolved.reason));
        return undefined;
      }
      if (resolved?.ok) line = resolved.line;
    }
    if (uri.scheme !== "file") {
      void vscode.window.showWarningMessage(
        vscode.l10n.t(
          "MemLens measures lines of files on disk; {0} is not one. Save it first.",
          uri.toString(),
        ),
      );
      return undefined;
    }
    return this.addAndRun({ kind: "line", spec: `${uri.fsPath}:${line}`, file: uri.fsPath, line });
  }

  /** The function around the cursor (or the top of `uri`'s editor), resolved by the language server. */
  private async functionAtCursor(uri: vscode.Uri | undefined): Promise<ProbeTarget | undefined> {
    const editor =
      vscode.window.activeTextEditor &&
      (!uri || vscode.window.activeTextEditor.document.uri.toString() === uri.toString())
        ? vscode.window.activeTextEditor
        : undefined;
    if (!editor || editor.document.languageId !== "python") {
      void vscode.window.showWarningMessage(
        vscode.l10n.t("MemLens: put the cursor inside a Python function to measure it."),
      );
      return undefined;
    }
    const resolver = this.deps.resolver();
    if (!resolver) {
      void vscode.window.showErrorMessage(
        vscode.l10n.t(
          "MemLens: the language server is not running, so the function name cannot be resolved.",
        ),
      );
      return undefined;
    }
    const resolved = await resolver.resolveQualname(editor.document.uri, editor.selection.active, "function");
    if (!resolved.ok || resolved.module === undefined || resolved.qualname === undefined) {
      const reason = resolved.ok
        ? vscode.l10n.t("no module name for {0}: add its folder to memlens.sourceRoots.", resolved.file)
        : resolved.reason;
      void vscode.window.showWarningMessage(
        vscode.l10n.t("MemLens: {0} (“Measure This Line” works on module-level code.)", reason),
      );
      return undefined;
    }
    return {
      kind: "function",
      spec: `${resolved.module}:${resolved.qualname}`,
      hotspot:
        resolved.hotspot ?? this.deps.catalog.lookupParts(resolved.module, resolved.qualname)?.hotspot.id,
      file: resolved.file,
      line: resolved.line,
    };
  }

  private async addAndRun(target: ProbeTarget): Promise<RunEntry | undefined> {
    if (!this.checkTrusted()) return undefined;
    await this.deps.probes.add(target);
    return this.run(target);
  }

  async runWithProbes(): Promise<RunEntry | undefined> {
    if (!this.checkTrusted()) return undefined;
    return this.run(undefined);
  }

  private checkTrusted(): boolean {
    if (vscode.workspace.isTrusted) return true;
    void vscode.window
      .showWarningMessage(
        vscode.l10n.t(
          "MemLens starts no program in an untrusted workspace: the Python path and the command come from this workspace's settings. Trust the workspace to measure.",
        ),
        vscode.l10n.t("Manage Workspace Trust"),
      )
      .then((choice) => {
        if (choice) void vscode.commands.executeCommand("workbench.trust.manage");
      });
    return false;
  }

  private async run(focus: ProbeTarget | undefined): Promise<RunEntry | undefined> {
    const { host } = this.deps;
    // Two loads at once would measure each other (and may not fit the card): one run at a time.
    const going = host.runs
      .live()
      .flatMap((entry) => (entry.handle ? [{ label: entry.meta.label, handle: entry.handle }] : []));
    if (going.length > 0) {
      const stopAndRun = vscode.l10n.t("Stop It and Run Now");
      const choice = await vscode.window.showWarningMessage(
        vscode.l10n.t(
          "MemLens: “{0}” is still running. The probes are kept for the next run.",
          going[0]!.label,
        ),
        stopAndRun,
      );
      if (choice !== stopAndRun) return undefined;
      await Promise.all(going.map(({ handle }) => handle.stop()));
    }
    const { description, allocationSites } = host.settings();
    const targets = this.deps.probes.list();
    const { plan, targets: metaTargets } = buildPlan(
      allocationSites ? targets.map((target) => ({ ...target, sites: true })) : targets,
    );
    const label = runLabel(targets, focus);
    let entry: RunEntry;
    try {
      entry = await host.startRun({ description, plan, label, targets: metaTargets });
    } catch (error) {
      this.report(describeStartError(error, description, uiLang()));
      // The runner records a run that failed to start; the Runs view lists it with its error.
      void host.loadStoredRuns();
      return undefined;
    }
    const live = host.liveRun(entry.id);
    if (live) void this.follow(live, description);
    return entry;
  }

  /** Progress while the run goes; then the result to the views, or the error to the user. */
  private async follow(live: LiveRun, description: RunDescription): Promise<void> {
    const { host } = this.deps;
    await showRunProgress(live.entry, live.outcome, phaseNamer(this.deps.catalog));
    try {
      const outcome = await live.outcome;
      // The target's stderr is in the model's log events; launcherStderr is the launcher's own.
      const failure = describeRunFailure(
        outcome.meta,
        live.entry.model,
        description,
        live.launcherStderr,
        uiLang(),
      );
      if (failure) this.report(failure);
      else this.warnUnresolved(live.entry.model);
    } catch (error) {
      this.report(describeStartError(error, description, uiLang()));
    }
    host.runs.select(live.entry.id);
    this.deps.onRunFinished(live.entry);
  }

  private warnUnresolved(model: RunModel | undefined): void {
    const warning = describeUnresolvedProbes(model, uiLang());
    if (!warning) return;
    const { output } = this.deps.host;
    output.appendLine(`[warning] ${warning}`);
    void vscode.window.showWarningMessage(warning, vscode.l10n.t("Open Output")).then((choice) => {
      if (choice) output.show(true);
    });
  }

  private report(failure: RunFailure): void {
    const { output } = this.deps.host;
    output.appendLine(`[error] ${failure.message}`);
    for (const line of failure.details)
      if (!failure.message.includes(line)) output.appendLine(`        ${line}`);
    void vscode.window.showErrorMessage(failure.message, vscode.l10n.t("Open Output")).then((choice) => {
      if (choice) output.show(true);
    });
  }

  async cancel(): Promise<void> {
    const live = this.deps.host.runs.live();
    if (live.length === 0) {
      void vscode.window.showInformationMessage(vscode.l10n.t("MemLens: no run is going."));
      return;
    }
    const stops = live.flatMap((entry) => (entry.handle ? [entry.handle.stop()] : []));
    if (stops.length === 0) {
      // Runs of a debug session end with the session.
      void vscode.window.showInformationMessage(
        vscode.l10n.t("MemLens: the run belongs to a debug session; stop it from the debug toolbar."),
      );
      return;
    }
    await Promise.all(stops);
  }

  async clearProbes(): Promise<void> {
    const count = this.deps.probes.list().length;
    await this.deps.probes.clear();
    void vscode.window.showInformationMessage(
      count === 0
        ? vscode.l10n.t("MemLens: there were no probes to clear.")
        : count === 1
          ? vscode.l10n.t("MemLens: cleared 1 probe.")
          : vscode.l10n.t("MemLens: cleared {0} probes.", count),
    );
  }
}
