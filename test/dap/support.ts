// Shared by the DAP tests: the shipped adapter (dist/debugAdapter.js, built when older than its
// sources), a DebugClient on it, and an event log that never misses an event that came early.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DebugClient } from "@vscode/debugadapter-testsupport";
import type { DebugProtocol } from "@vscode/debugprotocol";
import { after, before } from "node:test";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");
export const FIXTURES = path.join(REPO_ROOT, "test", "fixtures", "dap");
export const ADAPTER = path.join(REPO_ROOT, "dist", "debugAdapter.js");
export const PROBE_ZIPAPP = path.join(REPO_ROOT, "dist", "memlens_probe.pyz");
/** Generous: a loaded 2-core CI machine starts Python processes slowly. */
export const EVENT_TIMEOUT_MS = 30_000;

function newestMtime(target: string): number {
  if (!existsSync(target)) return 0;
  const stat = statSync(target);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(target)) {
    if (entry === "__pycache__") continue;
    newest = Math.max(newest, newestMtime(path.join(target, entry)));
  }
  return newest;
}

/** Builds dist/ (adapter bundle and probe zipapp) when it is missing or older than its sources. */
export function ensureBuilt(): void {
  const inputs = ["src", "python-probe/memlens_probe", "scripts/build.mjs"].map((p) =>
    path.join(REPO_ROOT, p),
  );
  const built = Math.min(...[ADAPTER, PROBE_ZIPAPP].map((f) => (existsSync(f) ? statSync(f).mtimeMs : 0)));
  if (built > 0 && built >= Math.max(...inputs.map(newestMtime))) return;
  execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: REPO_ROOT, stdio: "inherit" });
}

export function fixture(...parts: string[]): string {
  return path.join(FIXTURES, ...parts);
}

/** 1-based number of the first line of `file` that contains `text` (tests never hard-code lines). */
export function lineOf(file: string, text: string): number {
  const index = readFileSync(file, "utf8")
    .split("\n")
    .findIndex((line) => line.includes(text));
  if (index < 0) throw new Error(`"${text}" is not in ${file}`);
  return index + 1;
}

export function tempDir(name: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), `memlens-dap-${name}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A runs folder for this test file: the adapter and probe built and the folder made before its
 * tests, the folder removed after them. */
export function suiteRunsFolder(name: string): { readonly dir: string } {
  let folder: ReturnType<typeof tempDir> | undefined;
  before(() => {
    ensureBuilt();
    folder = tempDir(name);
  });
  after(() => folder?.remove());
  return {
    get dir(): string {
      if (!folder) throw new Error(`the ${name} runs folder is made before the tests run`);
      return folder.dir;
    },
  };
}

/** Launch arguments for a fixture script, run with this machine's python3 in the fixtures folder. */
export function launchArgs(script: string, runsDirectory: string, extra: Record<string, unknown> = {}) {
  return {
    name: `dap test ${script}`,
    python: "python3",
    command: ["python3", script],
    cwd: FIXTURES,
    runsDirectory,
    sourceRoots: [FIXTURES],
    sampleIntervalMs: 20,
    ...extra,
  };
}

const RECORDED = [
  "initialized",
  "stopped",
  "continued",
  "thread",
  "output",
  "breakpoint",
  "exited",
  "terminated",
  "memlens/run",
];

/** Every event of the recorded types, in order; `next` hands each out once. */
export class EventLog {
  private readonly events: DebugProtocol.Event[] = [];
  private readonly consumed = new Set<DebugProtocol.Event>();
  private readonly waiters = new Set<() => void>();

  constructor(client: DebugClient) {
    for (const type of RECORDED) {
      client.on(type, (event: DebugProtocol.Event) => {
        this.events.push(event);
        for (const wake of [...this.waiters]) wake();
      });
    }
  }

  all(type: string): DebugProtocol.Event[] {
    return this.events.filter((e) => e.event === type);
  }

  /** The console/stdout/stderr text so far. */
  output(): string {
    return this.all("output")
      .map((e) => (e as DebugProtocol.OutputEvent).body.output)
      .join("");
  }

  /** The first not yet consumed event of `type` (or of any of the types) that matches; waits for it if none came yet. */
  next<T extends DebugProtocol.Event = DebugProtocol.Event>(
    type: string | string[],
    matches: (event: T) => boolean = () => true,
    timeoutMs = EVENT_TIMEOUT_MS,
  ): Promise<T> {
    const types = Array.isArray(type) ? type : [type];
    const find = () =>
      this.events.find((e) => types.includes(e.event) && !this.consumed.has(e) && matches(e as T)) as
        | T
        | undefined;
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        const found = find();
        if (!found) return false;
        this.consumed.add(found);
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(
            `no "${types.join('" or "')}" event within ${timeoutMs} ms; output so far:\n${this.output()}`,
          ),
        );
      }, timeoutMs);
      if (!check()) this.waiters.add(check);
    });
  }
}

export interface Session {
  client: DebugClient;
  events: EventLog;
}

/**
 * Starts the shipped adapter; `initialize` is sent (with `locale`, as VS Code sends its UI
 * language, when given), `launch` is left to the test.
 */
export async function startAdapter(locale?: string): Promise<Session> {
  const client = new DebugClient(process.execPath, ADAPTER, "memlens", undefined, true);
  client.defaultTimeout = EVENT_TIMEOUT_MS;
  const events = new EventLog(client);
  await client.start();
  await client.initializeRequest({
    adapterID: "memlens",
    linesStartAt1: true,
    columnsStartAt1: true,
    pathFormat: "path",
    locale,
  });
  return { client, events };
}

/**
 * Sends launch, then (once `initialized` arrives) the source breakpoints and configurationDone,
 * as VS Code does. Resolves with the setBreakpoints responses, by file.
 */
export async function launchWithBreakpoints(
  session: Session,
  args: Record<string, unknown>,
  breakpoints: Record<string, number[]> = {},
  functionBreakpoints: string[] = [],
): Promise<Map<string, DebugProtocol.Breakpoint[]>> {
  const launched = session.client.launchRequest(args as DebugProtocol.LaunchRequestArguments);
  await session.events.next("initialized");
  const set = new Map<string, DebugProtocol.Breakpoint[]>();
  for (const [file, lines] of Object.entries(breakpoints)) {
    const response = await session.client.setBreakpointsRequest({
      source: { path: file },
      breakpoints: lines.map((line) => ({ line })),
    });
    set.set(file, response.body.breakpoints);
  }
  if (functionBreakpoints.length > 0) {
    await session.client.setFunctionBreakpointsRequest({
      breakpoints: functionBreakpoints.map((name) => ({ name })),
    });
  }
  await session.client.configurationDoneRequest();
  await launched;
  return set;
}

export type StoppedEvent = DebugProtocol.StoppedEvent;

/** The stack of a stopped thread, innermost first. */
export async function stackOf(session: Session, threadId: number): Promise<DebugProtocol.StackFrame[]> {
  const response = await session.client.stackTraceRequest({ threadId });
  return response.body.stackFrames;
}

/** Scope name -> variable name -> value, for one frame. */
/** The groups of a frame's "Per source" scope (`scopeName`, as the locale names it), each with
 * the names of its readings. */
export async function perSourceGroups(
  session: Session,
  frameId: number,
  scopeName: string,
): Promise<{ name: string; readings: string[] }[]> {
  const scope = (await session.client.scopesRequest({ frameId })).body.scopes.find(
    (s) => s.name === scopeName,
  );
  if (!scope) throw new Error(`no "${scopeName}" scope in frame ${frameId}`);
  const groups = (await session.client.variablesRequest({ variablesReference: scope.variablesReference }))
    .body.variables;
  return Promise.all(
    groups.map(async (group) => ({
      name: group.name,
      readings: (
        await session.client.variablesRequest({ variablesReference: group.variablesReference })
      ).body.variables.map((v) => v.name),
    })),
  );
}

export async function variablesOf(
  session: Session,
  frameId: number,
): Promise<Map<string, Map<string, DebugProtocol.Variable>>> {
  const scopes = (await session.client.scopesRequest({ frameId })).body.scopes;
  const out = new Map<string, Map<string, DebugProtocol.Variable>>();
  for (const scope of scopes) {
    const variables = (
      await session.client.variablesRequest({ variablesReference: scope.variablesReference })
    ).body.variables;
    out.set(scope.name, new Map(variables.map((v) => [v.name, v])));
  }
  return out;
}

/** The exact byte count in a value such as "96.00 MiB (100,663,296 B)" or "+1,024 B". */
export function bytesIn(value: string): number {
  const exact = /\(?([+−-]?[\d,]+) B\)?$/.exec(value);
  if (!exact) throw new Error(`no byte count in "${value}"`);
  const text = exact[1]!.replace(/,/g, "").replace("−", "-");
  return Number(text);
}

/** Whether a process is gone (a zombie waiting for its parent to reap it counts as gone). */
export function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return true;
  }
}
