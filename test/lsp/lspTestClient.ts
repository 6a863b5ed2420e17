// A minimal LSP client for tests: starts the real MemLens server over its real transport
// (stdio from src/server/main.ts through tsx, or a bundled server over Node IPC) and waits on
// messages, never on time.
import { fork, spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import {
  CodeLensRefreshRequest,
  CodeLensRequest,
  DidChangeTextDocumentNotification,
  DidCloseTextDocumentNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  HoverRequest,
  InitializeRequest,
  InitializedNotification,
  InlayHintRefreshRequest,
  InlayHintRequest,
  IPCMessageReader,
  IPCMessageWriter,
  PublishDiagnosticsNotification,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  createProtocolConnection,
  type CodeLens,
  type Diagnostic,
  type Hover,
  type InitializeResult,
  type InlayHint,
  type ProtocolConnection,
} from "vscode-languageserver-protocol/node";
import type { ProbeEvent } from "../../src/protocol/events";
import {
  ResolveQualnameRequest,
  SetConfigNotification,
  SetRunRequest,
  SetTrustNotification,
  type MemlensInitializationOptions,
  type ResolveQualnameParams,
  type ResolveQualnameResult,
  type SetRunParams,
  type SetRunResult,
} from "../../src/server/protocol";

export const REPO_ROOT = path.resolve(__dirname, "../..");
export const FIXTURE_ROOT = path.join(REPO_ROOT, "test/fixtures/python");
const WAIT_MS = 15_000;

const runFolders: string[] = [];
process.once("exit", () => {
  for (const dir of runFolders) rmSync(dir, { recursive: true, force: true });
});

const jsonl = (events: readonly ProbeEvent[]): string => events.map((e) => `${JSON.stringify(e)}\n`).join("");

/** A run folder whose events.jsonl holds `events`, as the runner writes it (the server reads runs from folders). */
export function runFolder(events: readonly ProbeEvent[]): string {
  const dir = mkdtempSync(path.join(tmpdir(), "memlens-lsp-run-"));
  runFolders.push(dir);
  writeFileSync(path.join(dir, "events.jsonl"), jsonl(events));
  return dir;
}

/** What the runner appends to a run going on. */
export function appendToRun(dir: string, events: readonly ProbeEvent[]): void {
  appendFileSync(path.join(dir, "events.jsonl"), jsonl(events));
}

export function fileUri(file: string): string {
  return pathToFileURL(file).href;
}

export interface StartOptions {
  transport?: "stdio" | "ipc";
  /** A bundled server file; default: src/server/main.ts through tsx (stdio only). */
  serverModule?: string;
  initializationOptions?: Partial<MemlensInitializationOptions>;
  /** LSP's own InitializeParams.locale (VS Code's language client sends vscode.env.language). */
  locale?: string;
}

type Waiter = { check: () => boolean; resolve: () => void };

export class LspTestClient {
  readonly diagnostics = new Map<string, Diagnostic[]>();
  codeLensRefreshes = 0;
  inlayHintRefreshes = 0;
  stderr = "";
  initializeResult!: InitializeResult;
  private readonly waiters = new Set<Waiter>();
  private readonly versions = new Map<string, number>();

  private constructor(
    private readonly child: ChildProcess,
    private readonly connection: ProtocolConnection,
  ) {}

  static async start(options: StartOptions = {}): Promise<LspTestClient> {
    const transport = options.transport ?? "stdio";
    let child: ChildProcess;
    let connection: ProtocolConnection;
    if (transport === "ipc") {
      if (!options.serverModule) throw new Error("IPC needs a bundled serverModule");
      child = fork(options.serverModule, ["--node-ipc"], { stdio: ["ignore", "ignore", "pipe", "ipc"] });
      connection = createProtocolConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
    } else {
      const args = options.serverModule
        ? [options.serverModule, "--stdio"]
        : ["--import", "tsx", path.join(REPO_ROOT, "src/server/main.ts"), "--stdio"];
      child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "pipe"] });
      connection = createProtocolConnection(
        new StreamMessageReader(child.stdout!),
        new StreamMessageWriter(child.stdin!),
      );
    }
    const client = new LspTestClient(child, connection);
    child.stderr?.on("data", (chunk: Buffer) => (client.stderr += chunk.toString()));
    connection.onNotification(PublishDiagnosticsNotification.type, ({ uri, diagnostics }) => {
      client.diagnostics.set(uri, diagnostics);
      client.wake();
    });
    connection.onRequest(CodeLensRefreshRequest.type, () => {
      client.codeLensRefreshes++;
      client.wake();
      return null;
    });
    connection.onRequest(InlayHintRefreshRequest.type, () => {
      client.inlayHintRefreshes++;
      client.wake();
      return null;
    });
    connection.listen();
    client.initializeResult = await connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      rootUri: null,
      locale: options.locale,
      capabilities: {
        workspace: { codeLens: { refreshSupport: true }, inlayHint: { refreshSupport: true } },
      },
      initializationOptions: { sourceRoots: [FIXTURE_ROOT], trusted: true, ...options.initializationOptions },
    });
    await connection.sendNotification(InitializedNotification.type, {});
    return client;
  }

  private wake(): void {
    for (const w of [...this.waiters]) {
      if (w.check()) {
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }

  /** Resolves once `check` holds, re-checked on every message from the server. */
  waitFor(what: string, check: () => boolean, timeoutMs = WAIT_MS): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out waiting for ${what}; server stderr:\n${this.stderr}`));
      }, timeoutMs);
      const waiter: Waiter = {
        check,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.waiters.add(waiter);
    });
  }

  async waitForDiagnostics(uri: string, check: (d: Diagnostic[]) => boolean): Promise<Diagnostic[]> {
    await this.waitFor(`diagnostics on ${uri}`, () => {
      const d = this.diagnostics.get(uri);
      return d !== undefined && check(d);
    });
    return this.diagnostics.get(uri)!;
  }

  async open(uri: string, text: string): Promise<void> {
    this.versions.set(uri, 1);
    await this.connection.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri, languageId: "python", version: 1, text },
    });
  }

  async change(uri: string, text: string): Promise<void> {
    const version = (this.versions.get(uri) ?? 1) + 1;
    this.versions.set(uri, version);
    await this.connection.sendNotification(DidChangeTextDocumentNotification.type, {
      textDocument: { uri, version },
      contentChanges: [{ text }],
    });
  }

  async close(uri: string): Promise<void> {
    await this.connection.sendNotification(DidCloseTextDocumentNotification.type, { textDocument: { uri } });
  }

  async codeLenses(uri: string): Promise<CodeLens[]> {
    return (await this.connection.sendRequest(CodeLensRequest.type, { textDocument: { uri } })) ?? [];
  }

  hover(uri: string, line: number, character = 0): Promise<Hover | null> {
    return this.connection.sendRequest(HoverRequest.type, {
      textDocument: { uri },
      position: { line, character },
    });
  }

  async inlayHints(uri: string, fromLine = 0, toLine = 100_000): Promise<InlayHint[]> {
    const hints = await this.connection.sendRequest(InlayHintRequest.type, {
      textDocument: { uri },
      range: { start: { line: fromLine, character: 0 }, end: { line: toLine, character: 0 } },
    });
    return hints ?? [];
  }

  setRun(params: SetRunParams): Promise<SetRunResult> {
    return this.connection.sendRequest(SetRunRequest, params);
  }

  resolveQualname(params: ResolveQualnameParams): Promise<ResolveQualnameResult> {
    return this.connection.sendRequest(ResolveQualnameRequest, params);
  }

  async setTrust(trusted: boolean): Promise<void> {
    await this.connection.sendNotification(SetTrustNotification, { trusted });
  }

  async setConfig(sourceRoots: string[]): Promise<void> {
    await this.connection.sendNotification(SetConfigNotification, { sourceRoots });
  }

  /** LSP shutdown + exit; resolves with the exit code once the process is gone. */
  async stop(): Promise<number | null> {
    const exited = new Promise<number | null>((resolve) => {
      if (this.child.exitCode !== null) resolve(this.child.exitCode);
      else this.child.once("exit", (code) => resolve(code));
    });
    try {
      await this.connection.sendRequest(ShutdownRequest.type);
      await this.connection.sendNotification(ExitNotification.type);
    } catch {
      this.child.kill();
    }
    const code = await exited;
    this.connection.dispose();
    return code;
  }
}
