// The extension's side of the language server (lenses, hovers, inline deltas, diagnostics): starts
// the client and keeps the server showing the current run from its folder. A run going on is sent
// again as it grows; the server reads only what was appended to its events.jsonl. The client
// registers itself in the extension's subscriptions, which VS Code disposes.
import * as vscode from "vscode";
import type { MemlensHost, RunEntry } from "../host/host";
import { hasEvents } from "../host/runEntries";
import { createLanguageClient, type MemlensLanguageClient, type QualnameResolver } from "./client";

export class LanguageFeatures {
  private client: MemlensLanguageClient | undefined;
  /** The run the server was sent last, as it was then. */
  private shown: { id: string; status: string; eventCount: number } | undefined;

  constructor(
    private readonly extension: vscode.ExtensionContext,
    private readonly host: MemlensHost,
  ) {}

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
    // events.jsonl says whether there is anything to show. A run going on shows its probes at once.
    if (!entry || (!hasEvents(entry) && entry.meta.status !== "running")) {
      if (this.shown) void client.setRun(undefined);
      this.shown = undefined;
      return;
    }
    const now = { id: entry.id, status: entry.meta.status, eventCount: entry.model?.eventCount ?? 0 };
    const shown = this.shown;
    if (
      shown?.id === now.id &&
      shown.status === now.status &&
      (now.status !== "running" || shown.eventCount === now.eventCount)
    ) {
      return;
    }
    this.shown = now;
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
}
