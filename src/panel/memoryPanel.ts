// One memory panel: owns its webview, sends the shown run as a snapshot after each `ready` and as
// increments while the run goes, and acts on what the webview asks (open source, save PNG,
// compare). Messages posted before `ready` are queued; run data is not queued but re-sent whole
// at `ready`, since a snapshot built then already holds everything the increments carried.
import { existsSync } from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import type { LoadedRunEntry, MemlensHost, RunEntry } from "../host/host";
import {
  AppendRun,
  CapturePng,
  ClearCompare,
  envelope,
  Init,
  isMessage,
  OpenSource,
  PickCompare,
  Ready,
  SavePng,
  ShowBudget,
  ShowCompare,
  ShowRun,
  ShowAllocatorSnapshot,
  WebviewError,
  type AllocatorSnapshotView,
  type ChartName,
  type Envelope,
  type MessageType,
} from "../../webview/protocol";
import { createHostPathMapper } from "../runner/pathMap";
import { budgetForRun } from "./budgetSource";
import { makeNonce, panelHtml } from "./html";
import { parseWebviewMessage } from "./messages";
import { decodePngDataUrl } from "./png";
import { buildCompare, RunViewTracker } from "./viewModel";
import { translator, type Args } from "../l10n/lang";
import { PANEL_TEXT, panelInit, type PanelKey } from "../l10n/panel";
import { uiLang } from "../l10n/vscode";

export const PANEL_VIEW_TYPE = "memlens.panel";
/** Run data: superseded by the snapshot sent at `ready`, so never queued. */
const SNAPSHOT_METHODS = new Set([ShowRun.method, AppendRun.method, ShowBudget.method, ShowCompare.method]);
const BUDGET_REFRESH_MS = 2000;

export interface PanelChoice {
  /** Show this run and stay on it; undefined: follow the registry's current run. */
  pinnedRunId?: string;
  compare?: { a: string; b: string };
}

export class MemoryPanel implements vscode.Disposable {
  private ready = false;
  private queue: Envelope[] = [];
  private pinnedRunId: string | undefined;
  private compare: { a: string; b: string } | undefined;
  private tracker: RunViewTracker | undefined;
  private sentEvents = -1;
  private sentStatus: string | undefined;
  private budgetSentAt = 0;
  private budgetsAsked = 0;
  private readonly pendingCaptures = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  private readonly disposables: vscode.Disposable[] = [];
  private disposed = false;
  /** The allocator snapshot shown, sent again when the webview is rebuilt (it is not retained). */
  private allocatorSnapshot: AllocatorSnapshotView | undefined;

  constructor(
    private readonly host: MemlensHost,
    readonly panel: vscode.WebviewPanel,
    choice: PanelChoice,
    private readonly onDisposed: () => void,
  ) {
    this.pinnedRunId = choice.pinnedRunId;
    this.compare = choice.compare;
    const root = vscode.Uri.joinPath(host.context.extensionUri, "dist", "webview");
    const webview = panel.webview;
    webview.options = { enableScripts: true, localResourceRoots: [root] };
    webview.html = panelHtml({
      cspSource: webview.cspSource,
      nonce: makeNonce(),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(root, "panel.js")).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(root, "panel.css")).toString(),
      lang: uiLang(),
    });
    panel.iconPath = vscode.Uri.joinPath(host.context.extensionUri, "media", "memlens.svg");
    this.disposables.push(
      webview.onDidReceiveMessage((raw: unknown) => void this.receive(raw)),
      // Not retained when hidden: the webview is rebuilt on show and says `ready` again.
      panel.onDidChangeViewState((e) => {
        if (!e.webviewPanel.visible) this.ready = false;
      }),
      panel.onDidDispose(() => this.dispose()),
      host.runs.onDidChange(() => this.runsChanged()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (
          e.affectsConfiguration("memlens.targetGpuGiB") ||
          e.affectsConfiguration("memlens.gpuMemoryUtilization") ||
          e.affectsConfiguration("memlens.model")
        ) {
          this.sendBudget(this.shownRun());
        }
      }),
    );
  }

  /** Show a run (pinned) or follow the current run (undefined), and bring the panel forward. */
  show(pinnedRunId: string | undefined): void {
    this.pinnedRunId = pinnedRunId;
    this.panel.reveal(undefined, false);
    if (this.ready) this.sendSnapshot();
  }

  showCompare(a: string, b: string): void {
    this.compare = { a, b };
    this.panel.reveal(undefined, false);
    this.sendCompare();
  }

  /** Shows an allocator snapshot's timeline and sites (read by the probe; nothing of it ran). */
  showAllocatorSnapshot(view: AllocatorSnapshotView): void {
    this.allocatorSnapshot = view;
    this.panel.reveal(undefined, false);
    if (this.ready) this.post(ShowAllocatorSnapshot, { view });
  }

  /** Asks the webview for a chart's PNG and writes it to `file`; resolves when written. */
  capturePng(chart: ChartName, file: string): Promise<void> {
    const target = path.resolve(file);
    return new Promise((resolve, reject) => {
      this.pendingCaptures.set(target, { resolve, reject });
      this.post(CapturePng, { chart, path: target });
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const pending of this.pendingCaptures.values())
      pending.reject(new Error("the memory panel was closed"));
    this.pendingCaptures.clear();
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
    this.onDisposed();
  }

  /** The panel's own text (src/l10n/panel.ts) in the editor's language. */
  private text(key: PanelKey, args?: Args): string {
    return translator(PANEL_TEXT, uiLang())(key, args);
  }

  private shownRun(): RunEntry | undefined {
    if (this.pinnedRunId !== undefined) {
      const pinned = this.host.runs.get(this.pinnedRunId);
      if (pinned) return pinned;
      this.pinnedRunId = undefined;
    }
    return this.host.runs.current();
  }

  private post<P>(type: MessageType<P>, params: P): void {
    const message = envelope(type, params);
    if (this.ready) {
      void this.panel.webview.postMessage(message);
    } else if (!SNAPSHOT_METHODS.has(type.method)) {
      this.queue.push(message);
    }
  }

  private sendSnapshot(): void {
    const shown = this.shownRun();
    if (shown && !isLoaded(shown)) {
      this.showLoading(shown);
      return;
    }
    const run = shown;
    this.tracker = run ? new RunViewTracker(run, uiLang()) : undefined;
    this.sentEvents = run?.model.eventCount ?? -1;
    this.sentStatus = run?.meta.status;
    this.post(ShowRun, {
      snapshot: this.tracker?.snapshot() ?? null,
      emptyReason: run ? undefined : this.text("empty.noRuns"),
      pinned: this.pinnedRunId !== undefined,
    });
    this.sendBudget(run);
    this.sendCompare();
  }

  /** A stored run whose events are not read yet: say so, read them, then show the run. */
  private showLoading(run: RunEntry): void {
    this.tracker = undefined;
    this.sentEvents = -1;
    this.sentStatus = undefined;
    this.post(ShowRun, {
      snapshot: null,
      emptyReason: this.text("empty.reading", { label: run.meta.label }),
      pinned: this.pinnedRunId !== undefined,
    });
    this.sendBudget(undefined);
    this.sendCompare();
    // Once read, the registry's change event brings the snapshot (runsChanged).
    void this.host.runs.load(run).then((model) => {
      if (!model && this.ready && !this.disposed && this.shownRun() === run) {
        this.post(ShowRun, {
          snapshot: null,
          emptyReason: this.text("empty.unreadable", { label: run.meta.label }),
          pinned: this.pinnedRunId !== undefined,
        });
      }
    });
  }

  private runsChanged(): void {
    if (!this.ready) return;
    const run = this.shownRun();
    if (run?.id !== this.tracker?.runId) {
      this.sendSnapshot();
      return;
    }
    if (!run || !this.tracker || !isLoaded(run)) return;
    const statusChanged = run.meta.status !== this.sentStatus;
    if (run.model.eventCount !== this.sentEvents || statusChanged) {
      this.sentEvents = run.model.eventCount;
      this.sentStatus = run.meta.status;
      this.post(AppendRun, this.tracker.increment());
      if (statusChanged || Date.now() - this.budgetSentAt > BUDGET_REFRESH_MS) this.sendBudget(run);
    }
    if (this.compare && (this.compare.a === run.id || this.compare.b === run.id)) this.sendCompare();
  }

  private sendBudget(run: RunEntry | undefined): void {
    this.budgetSentAt = Date.now();
    const sent = ++this.budgetsAsked;
    const loaded = run && isLoaded(run) ? run : undefined;
    // The first resolution may read a checkpoint's headers (over ssh too): a newer ask wins.
    void this.host.budget().then((budget) => {
      if (sent === this.budgetsAsked && !this.disposed)
        this.post(ShowBudget, budgetForRun(loaded, budget, uiLang()));
    });
  }

  private sendCompare(): void {
    const a = this.compare && this.host.runs.get(this.compare.a);
    const b = this.compare && this.host.runs.get(this.compare.b);
    if (!a || !b) this.compare = undefined;
    if (a && b && !(isLoaded(a) && isLoaded(b))) {
      // Stored runs: read both, then compare (unless the choice changed meanwhile).
      const wanted = this.compare;
      void Promise.all([this.host.runs.load(a), this.host.runs.load(b)]).then(([ma, mb]) => {
        if (ma && mb && this.compare === wanted && !this.disposed) this.sendCompare();
      });
      return;
    }
    this.post(ShowCompare, { compare: a && b && isLoaded(a) && isLoaded(b) ? buildCompare(a, b) : null });
  }

  private async receive(raw: unknown): Promise<void> {
    const parsed = parseWebviewMessage(raw);
    if (!parsed.ok) {
      this.host.output.appendLine(`[panel] ignored a message from the webview: ${parsed.reason}`);
      return;
    }
    const message = parsed.message;
    try {
      if (isMessage(message, Ready)) this.onReady();
      else if (isMessage(message, OpenSource))
        await this.openSource(message.params.file, message.params.line);
      else if (isMessage(message, SavePng))
        await this.savePng(message.params.chart, message.params.dataUrl, message.params.path);
      else if (isMessage(message, PickCompare)) await vscode.commands.executeCommand("memlens.compareRuns");
      else if (isMessage(message, ClearCompare)) this.compare = undefined;
      else if (isMessage(message, WebviewError)) {
        this.host.output.appendLine(`[panel] webview error: ${message.params.message}`);
        if (message.params.stack) this.host.output.appendLine(message.params.stack);
      }
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      this.host.output.appendLine(`[panel] ${message.method} failed: ${text}`);
      void vscode.window.showErrorMessage(vscode.l10n.t("MemLens panel: {0}", text));
    }
  }

  private onReady(): void {
    this.ready = true;
    // Before any run: the panel's text in the editor's language.
    void this.panel.webview.postMessage(envelope(Init, panelInit(uiLang())));
    this.sendSnapshot();
    if (this.allocatorSnapshot) this.post(ShowAllocatorSnapshot, { view: this.allocatorSnapshot });
    const queued = this.queue.splice(0);
    for (const message of queued) void this.panel.webview.postMessage(message);
  }

  private async openSource(file: string, line: number): Promise<void> {
    // A stored run keeps the host's paths (a run folder from a GPU host): map them as the editor's
    // lenses do, by module layout under the source roots, then by memlens.pathMappings.
    const settings = this.host.settings();
    const local = existsSync(file)
      ? file
      : (createHostPathMapper({
          sourceRoots: settings.sourceRoots,
          pathMappings: settings.description.pathMappings ?? [],
          fileExists: existsSync,
        })(file) ?? file);
    const uri = vscode.Uri.file(local);
    try {
      await vscode.workspace.fs.stat(uri);
    } catch {
      throw new Error(
        vscode.l10n.t(
          "{0} is not on this machine. Set memlens.sourceRoots (or memlens.pathMappings) so that the host's paths map to your local checkout.",
          file,
        ),
      );
    }
    const position = new vscode.Position(Math.max(0, line - 1), 0);
    const column =
      this.panel.viewColumn === vscode.ViewColumn.One ? vscode.ViewColumn.Beside : vscode.ViewColumn.One;
    await vscode.window.showTextDocument(uri, {
      viewColumn: column,
      selection: new vscode.Range(position, position),
      preview: true,
    });
  }

  private async savePng(chart: ChartName, dataUrl: string, requestedPath: string | undefined): Promise<void> {
    const bytes = decodePngDataUrl(dataUrl);
    if (requestedPath !== undefined) {
      // Only a path the host asked for: the webview never chooses where files go.
      const pending = this.pendingCaptures.get(requestedPath);
      if (!pending) throw new Error(`the webview sent a PNG for ${requestedPath}, which was not requested`);
      this.pendingCaptures.delete(requestedPath);
      try {
        await vscode.workspace.fs.writeFile(vscode.Uri.file(requestedPath), bytes);
        pending.resolve();
      } catch (error) {
        pending.reject(error instanceof Error ? error : new Error(String(error)));
      }
      return;
    }
    const run = this.shownRun();
    const folder = run ? vscode.Uri.file(run.dir) : vscode.workspace.workspaceFolders?.[0]?.uri;
    const name = `memlens-${chart}${run ? `-${run.id}` : ""}.png`;
    const target = await vscode.window.showSaveDialog({
      defaultUri: folder ? vscode.Uri.joinPath(folder, name) : undefined,
      filters: { [vscode.l10n.t("PNG image")]: ["png"] },
      saveLabel: vscode.l10n.t("Save chart"),
    });
    if (!target) return;
    await vscode.workspace.fs.writeFile(target, bytes);
    void vscode.window.showInformationMessage(
      chart === "timeline"
        ? vscode.l10n.t("MemLens: saved the timeline chart to {0}.", target.fsPath)
        : vscode.l10n.t("MemLens: saved the budget chart to {0}.", target.fsPath),
    );
  }
}

function isLoaded(run: RunEntry): run is LoadedRunEntry {
  return run.model !== undefined;
}
