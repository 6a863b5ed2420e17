// The extension side of the `memlens` debug type: launch.json defaults from settings, the shipped
// adapter as the debug adapter, and the adapter's probe events into the run registry so the
// panel and status bar follow a debug run live.
import * as path from "node:path";
import * as vscode from "vscode";
import type { LoadedRunEntry, MemlensHost } from "../host/host";
import { RunModel } from "../model/runModel";
import { loadedRunEntry } from "../host/runEntries";
import type { RunMeta } from "../runner/types";
import { resolveCwd, resolveSourceRoots } from "../settings/settings";
import { STARTER_CONFIGURATION, type MemlensLaunchArguments } from "./launchArgs";
import { PROBE_EVENT, RUN_EVENT, type ProbeEventBody, type RunEventBody } from "./customEvents";

export const DEBUG_TYPE = "memlens";

type LaunchConfiguration = vscode.DebugConfiguration & MemlensLaunchArguments;

class ConfigurationProvider implements vscode.DebugConfigurationProvider {
  constructor(private readonly host: MemlensHost) {}

  provideDebugConfigurations(): vscode.DebugConfiguration[] {
    return [
      {
        ...STARTER_CONFIGURATION,
        name: vscode.l10n.t("MemLens: step through loading gpt-oss-20b"),
        stopAtPhases: [...STARTER_CONFIGURATION.stopAtPhases],
      },
    ];
  }

  /** Fills what launch.json leaves out from the memlens.* settings ("Measure here" uses the same). */
  resolveDebugConfiguration(
    folder: vscode.WorkspaceFolder | undefined,
    debugConfiguration: vscode.DebugConfiguration,
  ): vscode.DebugConfiguration | undefined {
    if (!vscode.workspace.isTrusted) {
      void vscode.window.showErrorMessage(
        vscode.l10n.t(
          "MemLens starts no program in an untrusted workspace: the Python path and command come from this workspace. Trust it to debug.",
        ),
      );
      return undefined;
    }
    // F5 with no launch.json arrives as an empty configuration.
    const config: LaunchConfiguration =
      !debugConfiguration.type && !debugConfiguration.request && !debugConfiguration.name
        ? { ...this.provideDebugConfigurations()[0]! }
        : { ...debugConfiguration };
    const settings = this.host.settings();
    const filled: LaunchConfiguration = { ...config };
    for (const [key, value] of Object.entries(settings.description) as [
      keyof MemlensLaunchArguments,
      unknown,
    ][]) {
      if (filled[key] === undefined && value !== undefined) (filled as Record<string, unknown>)[key] = value;
    }
    const workspaceFolder = folder?.uri.fsPath ?? vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    if (filled.cwd !== undefined) filled.cwd = resolveCwd(filled.cwd, filled.host, workspaceFolder);
    filled.runsDirectory ??= settings.runsDirectory;
    // The adapter gets them resolved, as the language server and the runner do.
    filled.sourceRoots =
      filled.sourceRoots === undefined
        ? settings.sourceRoots
        : resolveSourceRoots(filled.sourceRoots, workspaceFolder, settings.sourceRoots);
    return filled;
  }
}

class AdapterFactory implements vscode.DebugAdapterDescriptorFactory {
  constructor(private readonly adapterPath: string) {}

  createDebugAdapterDescriptor(): vscode.DebugAdapterDescriptor {
    // The adapter starts the target from the launch configuration, outside the extension host's
    // trust gate: a session that reaches here without resolveDebugConfiguration's check stops too.
    if (!vscode.workspace.isTrusted) {
      throw new Error(
        vscode.l10n.t("MemLens starts no program in an untrusted workspace. Trust the workspace to debug."),
      );
    }
    // The extension host's own runtime; ELECTRON_RUN_AS_NODE makes desktop VS Code's binary a plain node.
    return new vscode.DebugAdapterExecutable(process.execPath, [this.adapterPath], {
      env: { ELECTRON_RUN_AS_NODE: "1" },
    });
  }
}

/** Follows each memlens debug session's run in the registry, as "Measure here" runs are. */
class LiveRunForwarder implements vscode.Disposable {
  private readonly entries = new Map<string, LoadedRunEntry>();
  private readonly subscriptions: vscode.Disposable[];

  constructor(private readonly host: MemlensHost) {
    this.subscriptions = [
      vscode.debug.onDidReceiveDebugSessionCustomEvent((e) => this.onCustomEvent(e)),
      vscode.debug.onDidTerminateDebugSession((session) => this.onTerminated(session)),
    ];
  }

  private onCustomEvent(e: vscode.DebugSessionCustomEvent): void {
    if (e.session.type !== DEBUG_TYPE) return;
    if (e.event === RUN_EVENT) {
      const run = e.body as RunEventBody;
      const config = e.session.configuration as LaunchConfiguration;
      const meta: RunMeta = {
        id: run.id,
        label: e.session.name,
        started: new Date().toISOString(),
        host: config.host ?? null,
        command: config.command ?? [],
        status: "running",
      };
      const entry = loadedRunEntry({ id: run.id, dir: run.dir, meta, model: new RunModel() });
      this.entries.set(e.session.id, entry);
      this.host.runs.add(entry);
      this.host.runs.select(entry.id);
    } else if (e.event === PROBE_EVENT) {
      const entry = this.entries.get(e.session.id);
      if (!entry) return;
      const event = e.body as ProbeEventBody;
      entry.model.add(event);
      if (event.type === "end") {
        entry.meta = {
          ...entry.meta,
          status: event.stopped ? "stopped" : event.exit_code === 0 ? "finished" : "failed",
          exitCode: event.exit_code,
          signal: event.signal,
          finished: new Date().toISOString(),
        };
      }
      this.host.runs.changed(entry);
    }
  }

  private onTerminated(session: vscode.DebugSession): void {
    const entry = this.entries.get(session.id);
    if (!entry) return;
    this.entries.delete(session.id);
    if (entry.meta.status === "running") entry.meta = { ...entry.meta, status: "stopped" };
    this.host.runs.changed(entry);
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
  }
}

export function registerDebug(host: MemlensHost): vscode.Disposable {
  const adapterPath = host.context.asAbsolutePath(path.join("dist", "debugAdapter.js"));
  return vscode.Disposable.from(
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, new ConfigurationProvider(host)),
    vscode.debug.registerDebugAdapterDescriptorFactory(DEBUG_TYPE, new AdapterFactory(adapterPath)),
    new LiveRunForwarder(host),
  );
}
