// The extension's side of the language server (lenses, hovers, inline deltas, diagnostics): starts
// the client and keeps the server showing the current run — a live run as its events arrive, a
// finished or stored one from its folder.
import * as vscode from "vscode";
import type { RunEntry } from "../host/host";
import type { LiveRun, MemlensHostImpl } from "../host/extensionHost";
import type { QualnameResolver } from "../commands/measure";
import type { ProbeEvent } from "../protocol/events";
import { createLanguageClient, type MemlensLanguageClient } from "./client";
import { targetKind } from "../model/targets";
import { hasEvents } from "../host/runEntries";
import type { RunTargetInfo } from "./protocol";

/** Live events reach the server in batches at most this often. */
const APPEND_INTERVAL_MS = 250;

type Shown =
  | { id: string; mode: "events" }
  | { id: string; mode: "folder"; status: string; eventCount: number };

export class LanguageFeatures implements vscode.Disposable {
  private client: MemlensLanguageClient | undefined;
  private shown: Shown | undefined;
  private pending: { runId: string; events: ProbeEvent[] } | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    private readonly extension: vscode.ExtensionContext,
    private readonly host: MemlensHostImpl,
  ) {
    this.subscriptions.push(host.onDidStartRun((live) => this.follow(live)));
  }

  /** Starts the server; a failure is reported and the rest of MemLens keeps working without lenses. */
  async start(): Promise<void> {
    try {
      this.client = createLanguageClient(
        this.extension,
        this.extension.asAbsolutePath("dist/server.js"),
        () => this.host.settings().sourceRoots,
      );
      await this.client.start();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.host.output.appendLine(`[memlens] the language server did not start: ${message}`);
      void vscode.window.showErrorMessage(
        vscode.l10n.t(
          "MemLens: the language server did not start ({0}). Lenses and inline deltas are off.",
          message,
        ),
      );
    }
  }

  resolver(): QualnameResolver | undefined {
    return this.client;
  }

  /** Shows `entry`'s deltas in the editor (undefined: none). Cheap to call often: unchanged runs are not resent. */
  showRun(entry: RunEntry | undefined): void {
    const client = this.client;
    if (!client) return;
    // A stored run not read yet shows from its folder (the server reads it); the size of its
    // events.jsonl says whether there is anything to show.
    if (!entry || (!hasEvents(entry) && !this.host.liveRun(entry.id))) {
      if (this.shown) void client.setRun(undefined);
      this.shown = undefined;
      return;
    }
    const live = entry.meta.status === "running" ? this.host.liveRun(entry.id) : undefined;
    if (live) {
      if (this.shown?.id === entry.id && this.shown.mode === "events") return;
      this.shown = { id: entry.id, mode: "events" };
      // Everything so far goes with setRun; what is pending for this run was in it already.
      if (this.pending?.runId === entry.id) this.pending = undefined;
      void this.report(
        client.setRunEvents({
          id: entry.id,
          label: entry.meta.label,
          events: [...live.events],
          targets: targetsOf(entry),
        }),
      );
      return;
    }
    // Runs followed elsewhere (a debug session) grow on disk: resend when they got events.
    const shown = this.shown;
    if (
      shown?.mode === "folder" &&
      shown.id === entry.id &&
      shown.status === entry.meta.status &&
      (entry.meta.status !== "running" || shown.eventCount === (entry.model?.eventCount ?? 0))
    ) {
      return;
    }
    this.shown = {
      id: entry.id,
      mode: "folder",
      status: entry.meta.status,
      eventCount: entry.model?.eventCount ?? 0,
    };
    void this.report(client.setRun(entry));
  }

  private async report(result: Promise<{ error?: string; runId: string | null }>): Promise<void> {
    try {
      const answer = await result;
      if (answer.error)
        this.host.output.appendLine(`[memlens] the editor cannot show run ${answer.runId}: ${answer.error}`);
    } catch (error) {
      this.host.output.appendLine(
        `[memlens] sending the run to the language server failed: ${String(error)}`,
      );
    }
  }

  /** Batches a live run's events to the server while that run is the one shown. */
  private follow(live: LiveRun): void {
    const handle = live.entry.handle;
    if (!handle) return;
    const unsubscribe = handle.onEvent((event) => {
      if (this.shown?.id !== live.entry.id || this.shown.mode !== "events") return;
      if (this.pending?.runId !== live.entry.id) this.pending = { runId: live.entry.id, events: [] };
      this.pending.events.push(event);
      this.flushTimer ??= setTimeout(() => this.flush(), APPEND_INTERVAL_MS);
    });
    void live.outcome
      .catch(() => undefined)
      .then(() => {
        unsubscribe();
        this.flush();
      });
  }

  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const pending = this.pending;
    this.pending = undefined;
    if (
      pending &&
      pending.events.length > 0 &&
      this.shown?.id === pending.runId &&
      this.shown.mode === "events"
    ) {
      this.client?.appendEvents(pending.runId, pending.events);
    }
  }

  dispose(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    for (const s of this.subscriptions) s.dispose();
    // The client registered itself in the extension's subscriptions, which VS Code disposes.
  }
}

function targetsOf(entry: RunEntry): RunTargetInfo[] | undefined {
  return entry.meta.targets?.map((t) => ({
    id: t.id,
    spec: t.spec,
    kind: targetKind(t.spec),
    hotspot: t.hotspot,
  }));
}
