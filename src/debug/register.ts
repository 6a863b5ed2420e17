// The extension side of the `memlens` debug type: launch.json defaults from settings, the shipped
// adapter as the debug adapter, and the run the adapter announces followed from its folder, so the
// lenses, the panel and the status bar follow a debug run live.
import * as path from "node:path";
import * as vscode from "vscode";
import type { MemlensHost } from "../host/host";
import { FollowedRunEntry } from "../host/runEntries";
import type { RunMeta } from "../runner/types";
import { resolveCwd, resolveSourceRoots } from "../settings/settings";
import { STARTER_CONFIGURATION, type MemlensLaunchArguments } from "./launchArgs";
import { RUN_EVENT, type RunEventBody } from "./customEvents";

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

/** How often a debug session's run folder is read for what the adapter appended. */
const FOLLOW_INTERVAL_MS = 250;

/**
 * Puts each memlens debug session's run in the registry, as "Measure here" runs are, and follows
 * it from the folder the adapter announced (the adapter's runner writes it, and decides its status).
 */
class DebugRunFollower implements vscode.Disposable {
  private readonly followed = new Map<string, { entry: FollowedRunEntry; timer: NodeJS.Timeout }>();
  private readonly subscriptions: vscode.Disposable[];

  constructor(private readonly host: MemlensHost) {
    this.subscriptions = [
      vscode.debug.onDidReceiveDebugSessionCustomEvent((e) => this.onCustomEvent(e)),
      vscode.debug.onDidTerminateDebugSession((session) => this.onTerminated(session)),
    ];
  }

  private onCustomEvent(e: vscode.DebugSessionCustomEvent): void {
    if (e.session.type !== DEBUG_TYPE || e.event !== RUN_EVENT) return;
    const run = e.body as RunEventBody;
    const config = e.session.configuration as LaunchConfiguration;
    // Until its meta.json is read: what the session knows.
    const meta: RunMeta = {
      id: run.id,
      label: e.session.name,
      started: new Date().toISOString(),
      host: config.host ?? null,
      command: config.command ?? [],
      status: "running",
    };
    const entry = new FollowedRunEntry(run.id, run.dir, meta);
    const timer = setInterval(() => this.refresh(entry, false), FOLLOW_INTERVAL_MS);
    this.followed.set(e.session.id, { entry, timer });
    this.host.runs.add(entry);
    this.host.runs.select(entry.id);
    this.refresh(entry, false);
  }

  private refresh(entry: FollowedRunEntry, ended: boolean): void {
    entry.refresh(ended).then(
      (changed) => {
        if (changed || ended) this.host.runs.changed(entry);
      },
      (error: unknown) => {
        this.host.output.appendLine(
          `[debug] reading run ${entry.id} failed: ${error instanceof Error ? error.message : String(error)}`,
        );
      },
    );
  }

  private onTerminated(session: vscode.DebugSession): void {
    const followed = this.followed.get(session.id);
    if (!followed) return;
    this.followed.delete(session.id);
    clearInterval(followed.timer);
    this.refresh(followed.entry, true);
  }

  dispose(): void {
    for (const { timer } of this.followed.values()) clearInterval(timer);
    for (const s of this.subscriptions) s.dispose();
  }
}

export function registerDebug(host: MemlensHost): vscode.Disposable {
  const adapterPath = host.context.asAbsolutePath(path.join("dist", "debugAdapter.js"));
  return vscode.Disposable.from(
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, new ConfigurationProvider(host)),
    vscode.debug.registerDebugAdapterDescriptorFactory(DEBUG_TYPE, new AdapterFactory(adapterPath)),
    new DebugRunFollower(host),
  );
}
