// Wires MemLens together: one context object owns every disposable. The features themselves live
// in their own folders (runner, server, panel, debug, checklist); this file only connects them.
import * as vscode from "vscode";
import { loadBundledCatalog } from "./catalog/catalog";
import { registerChecklist } from "./commands/checklist";
import { registerDebug } from "./debug/register";
import { registerPanel } from "./panel/register";
import { MeasureCommands } from "./commands/measure";
import { ProbeSet } from "./commands/probeSet";
import { registerPreflightCommand } from "./commands/preflight";
import { registerRunCommands } from "./commands/runs";
import { registerAllocatorSnapshotCommands } from "./commands/allocatorSnapshot";
import { MemlensHostImpl } from "./host/extensionHost";
import { setProcessGate } from "./runner/exec";
import { LanguageFeatures } from "./server/languageFeatures";
import { MemoryStatusBar } from "./views/statusBar";
import { RunsTreeProvider } from "./views/runsTree";

/** Owns everything activate() creates; deactivate() disposes it in reverse order. */
class MemlensContext implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];

  constructor(readonly extension: vscode.ExtensionContext) {}

  push<T extends vscode.Disposable>(disposable: T): T {
    this.disposables.push(disposable);
    return disposable;
  }

  pushAll(disposables: vscode.Disposable[]): void {
    for (const d of disposables) this.push(d);
  }

  dispose(): void {
    for (const d of this.disposables.splice(0).reverse()) {
      try {
        d.dispose();
      } catch (error) {
        console.error("MemLens: dispose failed", error);
      }
    }
  }
}

let active: MemlensContext | undefined;

export async function activate(extension: vscode.ExtensionContext): Promise<void> {
  const ctx = new MemlensContext(extension);
  active = ctx;
  try {
    await activateIn(ctx);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    void vscode.window.showErrorMessage(vscode.l10n.t("MemLens failed to start: {0}", message));
    throw error;
  }
}

/** Said when the trust gate stops a process that no command-level check stopped first. */
export function untrustedProcessMessage(): string {
  return vscode.l10n.t(
    "MemLens starts no program in an untrusted workspace: the Python path, command, host, ssh arguments and wrapper come from this workspace's settings. Trust the workspace to run.",
  );
}

async function activateIn(ctx: MemlensContext): Promise<void> {
  const extension = ctx.extension;
  // Installed before anything else can start a process (the checklist reads budgets at activation).
  setProcessGate(() => (vscode.workspace.isTrusted ? undefined : untrustedProcessMessage()));
  ctx.push({ dispose: () => setProcessGate(undefined) });
  const output = ctx.push(vscode.window.createOutputChannel("MemLens"));
  const host = ctx.push(
    new MemlensHostImpl(extension, output, extension.asAbsolutePath("dist/memlens_probe.pyz")),
  );
  const catalog = loadBundledCatalog();
  const probes = new ProbeSet(extension.workspaceState);

  const language = new LanguageFeatures(extension, host);
  const showCurrentRun = () => language.showRun(host.runs.current());

  let panelRegistered = false;
  const measure = new MeasureCommands({
    host,
    probes,
    catalog,
    resolver: () => language.resolver(),
    onRunFinished: () => showCurrentRun(),
  });
  ctx.pushAll(measure.register());
  ctx.pushAll(registerRunCommands({ host, hasPanel: () => panelRegistered }));
  ctx.push(registerPreflightCommand(host));
  ctx.pushAll(registerAllocatorSnapshotCommands(host));

  const tree = ctx.push(new RunsTreeProvider(host.runs));
  ctx.push(vscode.window.createTreeView("memlens.runs", { treeDataProvider: tree, showCollapseAll: true }));

  // Lenses follow the current run; a live run's deltas reach them as they come.
  ctx.push(host.runs.onDidChange(showCurrentRun));
  // "memlens.running" puts Cancel in the Runs view's title while a run is going.
  let running = false;
  ctx.push(
    host.runs.onDidChange(() => {
      const now = host.runs.live().length > 0;
      if (now !== running) {
        running = now;
        void vscode.commands.executeCommand("setContext", "memlens.running", now);
      }
    }),
  );
  ctx.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration("memlens.runsDirectory")) void host.loadStoredRuns();
    }),
  );

  // Past runs are read while the language server starts; features (a panel restored after a
  // reload among them) find the runs loaded, the lenses get the current run once the server is up.
  const languageStarted = language.start();
  await host.loadStoredRuns();
  panelRegistered = registerFeatures(ctx, host, probes);
  ctx.push(new MemoryStatusBar(host.runs, panelRegistered ? "memlens.openPanel" : "memlens.showOutput"));
  await languageStarted;
  showCurrentRun();
}

/**
 * The panel, the debugger and the checklist register themselves through the host. Each gets its
 * own try: one failing feature is reported and the others still work.
 */
function registerFeatures(ctx: MemlensContext, host: MemlensHostImpl, probes: ProbeSet): boolean {
  const features: { name: string; register: () => vscode.Disposable | vscode.Disposable[] | void }[] = [
    { name: "panel", register: () => registerPanel(host) },
    { name: "debugger", register: () => registerDebug(host) },
    // The checklist adds probes through the same set, so its probes and "Measure here"'s agree.
    {
      name: "checklist",
      register: () => registerChecklist(host, { addProbe: (target) => probes.add(target) }),
    },
  ];
  let panel = false;
  for (const feature of features) {
    try {
      const result = feature.register();
      if (Array.isArray(result)) ctx.pushAll(result);
      else if (result) ctx.push(result);
      if (feature.name === "panel") panel = true;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      host.output.appendLine(`[memlens] the ${feature.name} failed to start: ${message}`);
      void vscode.window.showErrorMessage(featureFailed(feature.name, message));
    }
  }
  return panel;
}

function featureFailed(feature: string, message: string): string {
  if (feature === "panel") return vscode.l10n.t("MemLens: the memory panel failed to start: {0}", message);
  if (feature === "debugger") return vscode.l10n.t("MemLens: the debugger failed to start: {0}", message);
  return vscode.l10n.t("MemLens: the checklist failed to start: {0}", message);
}

export function deactivate(): void {
  active?.dispose();
  active = undefined;
}
