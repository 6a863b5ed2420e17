// Child processes of the runner, all through execa with argument arrays. Short commands (checks,
// uploads, preflight) go through runToEnd, which reports instead of throwing.
import { createReadStream } from "node:fs";
import type { execa as ExecaFunction } from "execa" with { "resolution-mode": "import" };

export type Execa = typeof ExecaFunction;

let execaLoaded: Promise<Execa> | undefined;

/** Why no process may start now (an untrusted workspace), or undefined when they may. */
export type ProcessGate = () => string | undefined;

let gate: ProcessGate | undefined;

/**
 * Installs the one check every child process of this module passes. The extension host sets it
 * to workspace trust, so that a code path that forgot its own check (or one added later) still
 * starts nothing in Restricted Mode; the CLI and the debug adapter set none.
 */
export function setProcessGate(check: ProcessGate | undefined): void {
  gate = check;
}

/** A process was not started because the gate refused it; the message says why and what to do. */
export class ProcessRefusedError extends Error {
  override name = "ProcessRefusedError";
}

/**
 * execa, once the gate allows a process. execa is ESM only and the extension CommonJS, so it is
 * loaded on first use (esbuild bundles it). Every process start goes through here.
 */
export async function loadExeca(): Promise<Execa> {
  const refused = gate?.();
  if (refused !== undefined) throw new ProcessRefusedError(refused);
  execaLoaded ??= import("execa").then((module) => module.execa);
  return execaLoaded;
}

export interface CommandLine {
  file: string;
  args: string[];
}

export interface EndedCommand {
  /** null when the process did not exit normally (signal, spawn error, timeout). */
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Set when the program could not be started at all (ENOENT, EACCES). */
  spawnError?: NodeJS.ErrnoException;
  timedOut: boolean;
}

export interface RunToEndOptions {
  /** Sent on stdin, then stdin is closed. */
  input?: string;
  /** A file streamed to stdin (uploads); progress in bytes through onInputProgress. */
  inputFile?: string;
  onInputProgress?: (sentBytes: number) => void;
  timeoutMs?: number;
  env?: Record<string, string>;
}

export async function runToEnd(command: CommandLine, options: RunToEndOptions = {}): Promise<EndedCommand> {
  const execa = await loadExeca();
  const stdinOption =
    options.input !== undefined
      ? { input: options.input }
      : { stdin: options.inputFile !== undefined ? ("pipe" as const) : ("ignore" as const) };
  const subprocess = execa(command.file, command.args, {
    reject: false,
    ...stdinOption,
    stripFinalNewline: false,
    timeout: options.timeoutMs,
    env: options.env,
    encoding: "utf8",
  });
  if (options.inputFile !== undefined && subprocess.stdin) {
    const stdin = subprocess.stdin;
    const source = createReadStream(options.inputFile);
    let sent = 0;
    source.on("data", (chunk) => {
      sent += chunk.length;
      options.onInputProgress?.(sent);
    });
    // A remote side that exits early closes the pipe; that failure shows in the exit code.
    stdin.on("error", () => undefined);
    source.on("error", (error) => stdin.destroy(error));
    source.pipe(stdin);
  }
  const result = await subprocess;
  const spawnError =
    result.failed && result.exitCode === undefined && !result.isTerminated && !result.timedOut;
  return {
    exitCode: result.exitCode ?? null,
    signal: result.signal ?? null,
    stdout: typeof result.stdout === "string" ? result.stdout : "",
    stderr: typeof result.stderr === "string" ? result.stderr : "",
    spawnError: spawnError ? (result.cause as NodeJS.ErrnoException | undefined) : undefined,
    timedOut: result.timedOut,
  };
}

/** The last `count` non-empty lines of a text. */
export function tailLines(text: string, count: number): string[] {
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== "");
  return lines.slice(-count);
}
