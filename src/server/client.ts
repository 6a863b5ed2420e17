// The extension's side of the MemLens language server: starts dist/server.js over IPC, keeps
// trust and source roots in step with VS Code, and offers a small typed API for runs.
import { existsSync } from "node:fs";
import * as vscode from "vscode";
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  State,
  TransportKind,
  type LanguageClientOptions,
  type ServerOptions,
} from "vscode-languageclient/node";
import { targetKind } from "../model/targets";
import type { RunEntry } from "../host/host";
import type { PathMapping } from "../runner/types";
import {
  ResolveQualnameRequest,
  SetConfigNotification,
  SetRunRequest,
  SetTrustNotification,
  type MemlensConfig,
  type MemlensInitializationOptions,
  type ResolveQualnameParams,
  type ResolveQualnameResult,
  type RunPayload,
  type RunTargetInfo,
  type SetRunResult,
} from "./protocol";

/** Restarts allowed within RESTART_WINDOW_MS before the client gives up on a crashing server. */
const MAX_RESTARTS = 4;
const RESTART_WINDOW_MS = 3 * 60 * 1000;

/** What "Measure here" asks the language server: the function or line at a position. */
export type QualnameResolver = Pick<MemlensLanguageClient, "resolveQualname">;

export interface MemlensLanguageClient extends vscode.Disposable {
  readonly client: LanguageClient;
  start(): Promise<void>;
  /**
   * Shows a run from its folder; undefined clears the deltas. A run going on is followed by
   * calling this again: the server reads only what was appended to events.jsonl.
   */
  setRun(entry: RunEntry | undefined, pathMappings?: readonly PathMapping[]): Promise<SetRunResult>;
  setTrust(trusted: boolean): void;
  setConfig(config: MemlensConfig): void;
  /** The module:qualname (or file:line) to probe for a position, or why there is none. */
  resolveQualname(
    uri: vscode.Uri,
    position: vscode.Position,
    want?: ResolveQualnameParams["want"],
  ): Promise<ResolveQualnameResult>;
}

function targetsOf(entry: RunEntry): RunTargetInfo[] | undefined {
  return entry.meta.targets?.map((t) => ({
    id: t.id,
    spec: t.spec,
    kind: targetKind(t.spec),
    hotspot: t.hotspot,
  }));
}

export function createLanguageClient(
  context: vscode.ExtensionContext,
  serverModulePath: string,
  /** memlens.sourceRoots resolved (src/settings), else the workspace folders. */
  sourceRoots: () => string[],
  outputChannel?: vscode.OutputChannel,
): MemlensLanguageClient {
  if (!existsSync(serverModulePath)) {
    throw new Error(
      `The MemLens language server was not found at ${serverModulePath}. Build it with "npm run build" (or reinstall the extension).`,
    );
  }
  const serverOptions: ServerOptions = {
    run: { module: serverModulePath, transport: TransportKind.ipc },
    debug: {
      module: serverModulePath,
      transport: TransportKind.ipc,
      options: { execArgv: ["--nolazy", "--inspect=6011"] },
    },
  };
  const restarts: number[] = [];
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "python" },
      { scheme: "untitled", language: "python" },
    ],
    outputChannel,
    initializationOptions: (): MemlensInitializationOptions => ({
      sourceRoots: sourceRoots(),
      trusted: vscode.workspace.isTrusted,
      locale: vscode.env.language,
    }),
    initializationFailedHandler: (error) => {
      const message = error instanceof Error ? error.message : String(error);
      void vscode.window.showErrorMessage(
        vscode.l10n.t(
          "MemLens: the language server failed to start ({0}). Lenses and inline deltas are off; see the MemLens output.",
          message,
        ),
      );
      return false;
    },
    errorHandler: {
      error: (_error, _message, count) => ({
        action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown,
      }),
      closed: () => {
        const now = Date.now();
        restarts.push(now);
        while (restarts.length > 0 && now - restarts[0]! > RESTART_WINDOW_MS) restarts.shift();
        if (restarts.length <= MAX_RESTARTS) return { action: CloseAction.Restart };
        return {
          action: CloseAction.DoNotRestart,
          message: vscode.l10n.t(
            "The MemLens language server stopped 5 times in 3 minutes and will not be restarted. Reload the window to try again; the MemLens output has its log.",
          ),
        };
      },
    },
  };
  const client = new LanguageClient("memlens", "MemLens Language Server", serverOptions, clientOptions);

  // The server keeps the run in memory: after a restart it gets the last one again.
  let lastRun: RunPayload | null = null;
  const send = async (run: RunPayload | null): Promise<SetRunResult> => {
    lastRun = run;
    if (!client.isRunning()) return { runId: run?.id ?? null, events: 0, targets: 0, calls: 0, malformed: 0 };
    return client.sendRequest(SetRunRequest, { run });
  };
  const disposables: vscode.Disposable[] = [
    client.onDidChangeState(({ oldState, newState }) => {
      if (newState === State.Running && oldState !== State.Running && lastRun) {
        void client.sendRequest(SetRunRequest, { run: lastRun });
      }
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      if (client.isRunning()) void client.sendNotification(SetTrustNotification, { trusted: true });
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration("memlens.sourceRoots") && client.isRunning()) {
        void client.sendNotification(SetConfigNotification, { sourceRoots: sourceRoots() });
      }
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(() => {
      if (client.isRunning())
        void client.sendNotification(SetConfigNotification, { sourceRoots: sourceRoots() });
    }),
  ];

  let disposed = false;
  const api: MemlensLanguageClient = {
    client,
    start: () => client.start(),
    setRun: (entry, pathMappings) =>
      send(
        entry
          ? {
              id: entry.id,
              label: entry.meta.label,
              dir: entry.dir,
              targets: targetsOf(entry),
              pathMappings: pathMappings ? [...pathMappings] : undefined,
            }
          : null,
      ),
    setTrust: (trusted) => {
      if (client.isRunning()) void client.sendNotification(SetTrustNotification, { trusted });
    },
    setConfig: (config) => {
      if (client.isRunning()) void client.sendNotification(SetConfigNotification, config);
    },
    resolveQualname: async (uri, position, want) => {
      if (!client.isRunning()) {
        return { ok: false, reason: "The MemLens language server is not running; see the MemLens output." };
      }
      return client.sendRequest(ResolveQualnameRequest, {
        uri: uri.toString(),
        position: { line: position.line, character: position.character },
        want,
      });
    },
    dispose: () => {
      // Both the extension and context.subscriptions may dispose it.
      if (disposed) return;
      disposed = true;
      for (const d of disposables) d.dispose();
      void client.dispose();
    },
  };
  context.subscriptions.push(api);
  return api;
}
