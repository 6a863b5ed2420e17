// Starts a run: the probe launcher around the target command, here, over ssh or inside a wrapper.
// Events come from the launcher's stdout; for runs elsewhere they are mirrored into the local run
// folder as they arrive (that copy is the record), for local runs the launcher writes it itself.
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { finished } from "node:stream/promises";
import type { ControlMessage, Plan, ProbeEvent, EndEvent } from "../protocol/events";
import { EventStreamReader } from "../protocol/reader";
import { withRunSettings } from "../model/plan";
import { endedStatus } from "../model/runStatus";
import { loadExeca, type CommandLine } from "./exec";
import { RunnerError, sshFailure } from "./errors";
import { LineFile } from "./lineFile";
import { createHostPathMapper, mapEventPaths, planForHost, type HostPathMapper } from "./pathMap";
import { commandAt, describePlace, isDirect, placeOf, PlaceConfigError, type ExecutionPlace } from "./place";
import { preflightPlace } from "./preflight";
import {
  defaultSession,
  DEFAULT_REMOTE_CACHE_DIR,
  remoteRunCommand,
  SETUP_FAILURE_MARK,
  type RunnerSession,
} from "./remote";
import { EVENTS_FILE, newRunId, PLAN_FILE, STDERR_FILE, writeMetaSync } from "./store";
import type { RunDescription, RunHandle, RunMeta, RunOutcome, RunRequest } from "./types";

export const GiB = 1 << 30;

/** How long stop() waits after {"type":"stop"} and EOF before killing (the launcher itself
 * escalates SIGTERM to SIGKILL after 3 s). */
export const DEFAULT_STOP_GRACE_MS = 8_000;
const STDERR_TAIL_LINES = 20;

export interface StartRunOptions {
  /** The probe zipapp (dist/memlens_probe.pyz) on this machine. */
  probePath: string;
  /** The bundled loader (media/loader/load_model.py); default: ../media/loader next to the probe's folder. */
  loaderPath?: string;
  /** Steps (connecting, uploading bytes, checking GPUs) and the preflight's findings, one line each. */
  onProgress?: (message: string) => void;
  /** Local folders whose layout gives module names, for mapping host paths (remote and wrapper runs). */
  sourceRoots?: string[];
  /** Per-session caches (preflight, uploads); the extension host's default one if absent. */
  session?: RunnerSession;
  stopGraceMs?: number;
}

export function defaultLoaderPath(probePath: string): string {
  return path.resolve(path.dirname(probePath), "..", "media", "loader", "load_model.py");
}

/** The plan as it goes to the probe: sampling, emulation and the sites limit from the description,
 * and the source roots (absolute ones), under which allocation sites and OOM blocks name the
 * user's own frame. */
export function planForRun(
  plan: Plan,
  description: RunDescription,
  sourceRoots: readonly string[] = [],
): Plan {
  const roots = sourceRoots.filter((root) => path.isAbsolute(root));
  const withSettings = withRunSettings(plan, {
    sampleIntervalMs: description.sampleIntervalMs,
    emulateDeviceBytes: emulationBytes(description),
    sitesCalls: sitesCallsOf(description),
  });
  return roots.length > 0 && !plan.source_roots ? { ...withSettings, source_roots: roots } : withSettings;
}

function emulationBytes(description: RunDescription): number | undefined {
  const gib = description.emulateGpuGiB;
  if (gib === undefined || gib === null) return undefined;
  if (!(gib > 0) || !Number.isFinite(gib)) {
    throw new RunnerError(
      "bad-config",
      "start",
      "this machine",
      `memlens.emulateGpuGiB is ${gib}; give the size of the card to emulate in GiB (e.g. 16), or null to turn emulation off.`,
    );
  }
  return Math.round(gib * GiB);
}

/** memlens.sitesCalls checked: VS Code only warns about a setting that is not an integer, and the
 * probe refuses a plan whose sites_calls is not one. */
function sitesCallsOf(description: RunDescription): number | undefined {
  const calls = description.sitesCalls;
  if (calls === undefined) return undefined;
  if (!Number.isInteger(calls) || calls < 0) {
    throw new RunnerError(
      "bad-config",
      "start",
      "this machine",
      `memlens.sitesCalls is ${calls}; give how many calls of each target record allocation sites (e.g. 2), or 0 for every call.`,
    );
  }
  return calls;
}

/** Target command and its extra environment: the user's command, or the bundled loader. */
export function targetCommand(
  description: RunDescription,
  loaderPathThere: string,
): { command: string[]; env: Record<string, string> } {
  const env: Record<string, string> = {};
  if (description.command && description.command.length > 0) {
    return { command: [...description.command], env: { ...(description.env ?? {}) } };
  }
  if (description.model) env.MEMLENS_MODEL = description.model;
  if (description.gpuMemoryUtilization !== undefined) {
    env.MEMLENS_GPU_MEMORY_UTILIZATION = String(description.gpuMemoryUtilization);
  }
  const emulateBytes = emulationBytes(description);
  if (emulateBytes !== undefined) env.MEMLENS_EMULATE_GPU_BYTES = String(emulateBytes);
  // memlens.env comes last so that the user can override what the settings put there.
  return { command: [description.python, loaderPathThere], env: { ...env, ...(description.env ?? {}) } };
}

class Listeners<T> {
  private readonly set = new Set<(value: T) => void>();
  add(listener: (value: T) => void): () => void {
    this.set.add(listener);
    return () => this.set.delete(listener);
  }
  emit(value: T): void {
    for (const listener of [...this.set]) {
      try {
        listener(value);
      } catch {
        // One broken view must not stop the record or the other views.
      }
    }
  }
}

export async function startRun(request: RunRequest, options: StartRunOptions): Promise<RunHandle> {
  const { description } = request;
  const session = options.session ?? defaultSession;
  const progress = options.onProgress ?? (() => undefined);
  let place: ExecutionPlace;
  try {
    place = placeOf(description);
  } catch (error) {
    if (error instanceof PlaceConfigError)
      throw new RunnerError("bad-config", "start", "this machine", error.message);
    throw error;
  }
  const where = describePlace(place);
  if (!description.python || description.python.trim() === "") {
    throw new RunnerError(
      "bad-config",
      "start",
      where,
      "memlens.python is empty; set it to a Python 3.9+ interpreter.",
    );
  }
  const probePath = path.resolve(options.probePath);
  if (!existsSync(probePath)) {
    throw new RunnerError(
      "bad-config",
      "start",
      "this machine",
      `the probe is missing at ${probePath}; build it with "python3 python-probe/build_zipapp.py dist/memlens_probe.pyz" (npm run build).`,
    );
  }
  const loaderPath = path.resolve(options.loaderPath ?? defaultLoaderPath(probePath));
  const usesLoader = !(description.command && description.command.length > 0);
  if (usesLoader && !existsSync(loaderPath)) {
    throw new RunnerError(
      "bad-config",
      "start",
      "this machine",
      `the bundled loader is missing at ${loaderPath}.`,
    );
  }

  const emulateBytes = emulationBytes(description);
  const plan = planForRun(request.plan, description, options.sourceRoots);
  const planJson = JSON.stringify(plan, null, 2);
  const id = newRunId();
  const dir = path.join(request.runsDir, id);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, PLAN_FILE), `${planJson}\n`);

  const meta: RunMeta = {
    id,
    label: request.label,
    started: new Date().toISOString(),
    host: place.host,
    command: description.command?.length ? [...description.command] : [description.python, loaderPath],
    status: "running",
    targets: request.targets,
    ...(place.wrapper.length ? { wrapper: place.wrapper } : {}),
    ...(emulateBytes !== undefined
      ? {
          emulation: {
            gpuGiB: description.emulateGpuGiB as number,
            deviceBytes: emulateBytes,
            gpuMemoryUtilization: usesLoader ? description.gpuMemoryUtilization : undefined,
          },
        }
      : {}),
  };
  writeMetaSync(dir, meta);
  const fail = (error: unknown): never => {
    meta.status = "failed";
    meta.finished = new Date().toISOString();
    meta.error = error instanceof Error ? error.message : String(error);
    if (error instanceof RunnerError && error.stderrTail.length) meta.stderrTail = error.stderrTail;
    // The run's own error says more than a failure to record it.
    tryWriteMeta(dir, meta);
    throw error;
  };

  try {
    if (isDirect(place)) {
      const target = targetCommand(description, loaderPath);
      const command: CommandLine = {
        file: description.python,
        args: [
          probePath,
          "run",
          "--control",
          "stdin",
          "--plan",
          path.join(dir, PLAN_FILE),
          "--out",
          dir,
          "--run-id",
          id,
          "--",
          ...target.command,
        ],
      };
      const spawned = await spawnRun(command, { cwd: description.cwd || undefined, env: target.env });
      return followRun(spawned, { id, dir, meta, place, mirror: false, options });
    }
    const cacheDir = description.remoteCacheDir?.trim() || DEFAULT_REMOTE_CACHE_DIR;
    const files = usesLoader ? [probePath, loaderPath] : [probePath];
    const preflight = await preflightPlace(place, description.python, cacheDir, {
      session,
      probePath,
      extraFiles: files.slice(1),
      onProgress: progress,
    });
    if (preflight.fresh) for (const line of preflight.lines) progress(line);
    const target = targetCommand(description, preflight.files.get(loaderPath) ?? loaderPath);
    const remote = remoteRunCommand({
      place,
      cacheDir: preflight.cacheDir,
      runId: id,
      // The local plan.json keeps the editor's paths (the views place results by them).
      planJson: JSON.stringify(planForHost(plan, description.pathMappings ?? []), null, 2),
      cwd: description.cwd ?? "",
      python: description.python,
      probePath: preflight.files.get(probePath)!,
      env: target.env,
      command: target.command,
    });
    meta.hostRunDir = remote.hostRunDir;
    tryWriteMeta(dir, meta);
    const command = commandAt(place, remote.argv);
    const mapper = createHostPathMapper({
      sourceRoots: options.sourceRoots ?? [],
      pathMappings: description.pathMappings ?? [],
      fileExists: cachedExists(),
    });
    progress(`Starting the run on ${where}`);
    const spawned = await spawnRun(command, {});
    return followRun(spawned, { id, dir, meta, place, mirror: true, mapper, options });
  } catch (error) {
    return fail(error);
  }
}

/** Writes meta.json; false (the reason in recordError) where the disk refused it. */
function tryWriteMeta(dir: string, meta: RunMeta): boolean {
  try {
    writeMetaSync(dir, meta);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = `meta.json could not be written (${code ?? (error instanceof Error ? error.message : String(error))})`;
    if (!meta.recordError?.includes(why))
      meta.recordError = meta.recordError ? `${meta.recordError}; ${why}` : why;
    return false;
  }
}

function cachedExists(): (file: string) => boolean {
  const known = new Map<string, boolean>();
  return (file) => {
    let exists = known.get(file);
    if (exists === undefined) {
      try {
        exists = statSync(file).isFile();
      } catch {
        exists = false;
      }
      known.set(file, exists);
    }
    return exists;
  };
}

type Subprocess = ReturnType<Awaited<ReturnType<typeof loadExeca>>>;

interface Spawned {
  subprocess: Subprocess;
  stdin: NodeJS.WritableStream & {
    writable: boolean;
    end(): void;
    on(event: "error", listener: () => void): unknown;
  };
  stdout: NodeJS.ReadableStream;
  stderr: NodeJS.ReadableStream;
  command: CommandLine;
}

/** Starts the process and waits until it exists, so that ENOENT/EACCES become a clear error here. */
async function spawnRun(
  command: CommandLine,
  spawnOptions: { cwd?: string; env?: Record<string, string> },
): Promise<Spawned> {
  if (spawnOptions.cwd !== undefined && !existsSync(spawnOptions.cwd)) {
    throw new RunnerError(
      "bad-config",
      "start",
      "this machine",
      `the working directory "${spawnOptions.cwd}" (memlens.cwd) does not exist; set memlens.cwd to an existing folder or leave it empty.`,
    );
  }
  const execa = await loadExeca();
  const subprocess = execa(command.file, command.args, {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    buffer: false,
    reject: false,
    cwd: spawnOptions.cwd,
    env: spawnOptions.env,
    extendEnv: true,
  });
  // A process killed later must not make execa's promise reject into nowhere.
  const result = subprocess.then(
    (value) => value,
    (error: unknown) => error,
  );
  const started = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    subprocess.once("spawn", () => resolve(undefined));
    subprocess.once("error", (error) => resolve(error as NodeJS.ErrnoException));
  });
  if (started) {
    await result;
    throw spawnFailure(command, started);
  }
  const { stdin, stdout, stderr } = subprocess;
  if (!stdin || !stdout || !stderr) throw new Error("spawnRun: the child process has no stdio pipes");
  return { subprocess, stdin, stdout, stderr, command };
}

function spawnFailure(command: CommandLine, error: NodeJS.ErrnoException): RunnerError {
  const code = error.code ?? error.message;
  if (command.file === "ssh") {
    return new RunnerError(
      "ssh-missing",
      "start",
      "this machine",
      `the OpenSSH client "ssh" could not be started (${code}). Install OpenSSH so that "ssh" is on PATH.`,
    );
  }
  const reason =
    error.code === "ENOENT"
      ? "no such file (not found on PATH, or the path does not exist)"
      : error.code === "EACCES"
        ? "permission denied (not executable)"
        : code;
  return new RunnerError(
    "spawn-failed",
    "start",
    "this machine",
    `cannot start "${command.file}": ${reason} [${code}]. Check memlens.python (or memlens.wrapper's first word): give the full path of an existing Python 3.9+ interpreter, e.g. /usr/bin/python3 or your venv's bin/python.`,
  );
}

interface FollowContext {
  id: string;
  dir: string;
  meta: RunMeta;
  place: ExecutionPlace;
  /** Write events.jsonl here (runs elsewhere); local launchers write their own. */
  mirror: boolean;
  mapper?: HostPathMapper;
  options: StartRunOptions;
}

function followRun(spawned: Spawned, context: FollowContext): RunHandle {
  const { subprocess, stdin, stdout, stderr } = spawned;
  const { dir, meta, place } = context;
  const eventListeners = new Listeners<ProbeEvent>();
  const stderrListeners = new Listeners<string>();
  const eventsFile = context.mirror ? new LineFile(path.join(dir, EVENTS_FILE)) : undefined;
  const stderrFile = new LineFile(path.join(dir, STDERR_FILE));
  const ownStderr: string[] = [];
  const targetStderr: string[] = [];
  let endEvent: EndEvent | undefined;
  let stopRequested = false;
  let received: ProbeEvent[] = [];
  /** Events handed on so far, and the stream positions (1-based) of the first and last not written. */
  let delivered = 0;
  const unwritten: { first?: number; last?: number } = {};

  meta.pid = subprocess.pid;
  tryWriteMeta(dir, meta);

  const reader = new EventStreamReader((raw) => {
    let event = raw;
    if (context.mapper) {
      try {
        event = mapEventPaths(raw, context.mapper);
      } catch {
        // An event whose paths cannot be mapped is still an event: the rest of the run depends on
        // its enter/exit/end reaching the record.
      }
    }
    if (event.type === "end") endEvent = event;
    if (event.type === "log" && event.stream === "stderr") pushTail(targetStderr, event.line);
    received.push(event);
  });
  // On disk first, then to the views: whatever anyone saw survives a crash of this process. A batch
  // the disk refused still goes to the views; eventsFile counts it for the run's record.
  const deliver = () => {
    if (received.length === 0) return;
    const events = received;
    received = [];
    if (eventsFile) {
      const written = eventsFile.appendLines(events.map((event) => JSON.stringify(event)));
      if (written < events.length) {
        unwritten.first ??= delivered + written + 1;
        unwritten.last = delivered + events.length;
      }
    }
    delivered += events.length;
    for (const event of events) eventListeners.emit(event);
  };

  stdout.setEncoding("utf8");
  stdout.on("data", (chunk: string) => {
    reader.push(chunk);
    deliver();
    if (reader.versionError && !stopRequested) void handle.stop();
  });

  let stderrPending = "";
  stderr.setEncoding("utf8");
  stderr.on("data", (chunk: string) => {
    stderrFile.append(chunk);
    stderrPending += chunk;
    const lines = stderrPending.split("\n");
    stderrPending = lines.pop() ?? "";
    for (const line of lines) {
      const clean = line.replace(/\r$/, "");
      pushTail(ownStderr, clean);
      stderrListeners.emit(clean);
    }
  });
  // Writing to a launcher that already exited must not crash the extension host.
  stdin.on("error", () => undefined);

  let killTimers: NodeJS.Timeout[] = [];
  const done: Promise<RunOutcome> = (async () => {
    const result = await subprocess;
    // Every byte of stdout is read before the run is closed (the end event comes last).
    await finished(stdout).catch(() => undefined);
    killTimers.forEach(clearTimeout);
    reader.finish();
    deliver();
    if (stderrPending) {
      pushTail(ownStderr, stderrPending);
      stderrListeners.emit(stderrPending);
    }
    eventsFile?.close();
    stderrFile.close();

    const exitCode = endEvent ? endEvent.exit_code : (result.exitCode ?? null);
    const signal = endEvent ? endEvent.signal : (result.signal ?? null);
    meta.exitCode = exitCode;
    meta.signal = signal;
    meta.finished = new Date().toISOString();
    if (reader.malformedCount) meta.malformedLines = reader.malformedCount;
    if (reader.duplicates) meta.duplicateLines = reader.duplicates;
    const recordErrors: string[] = meta.recordError ? [meta.recordError] : [];
    if (eventsFile?.error !== undefined) {
      if (eventsFile.lost > 0) meta.unwrittenEvents = eventsFile.lost;
      const which =
        unwritten.first === undefined
          ? ""
          : ` (between event ${unwritten.first} and event ${unwritten.last} of ${delivered})`;
      recordErrors.push(
        eventsFile.lost > 0
          ? `${eventsFile.error}: ${eventsFile.lost} event(s)${which} reached the views but are not in ${EVENTS_FILE}`
          : eventsFile.error,
      );
    }
    if (stderrFile.error !== undefined) recordErrors.push(stderrFile.error);
    if (recordErrors.length) meta.recordError = recordErrors.join("; ");
    const stderrTail = [...targetStderr, ...ownStderr].slice(-STDERR_TAIL_LINES);
    const error = failureMessage({ place, endEvent, result, stopRequested, reader, targetStderr, ownStderr });
    meta.status = endedStatus({
      end: endEvent,
      stopRequested,
      failure: error,
      streamRefused: reader.versionError !== undefined,
    });
    if (error !== undefined && meta.status !== "stopped") {
      meta.error = error;
      meta.stderrTail = stderrTail;
    }
    // On a full disk the views still get the final state; meta.json on disk keeps "running", which
    // the next load reads as "interrupted" once this process is gone.
    tryWriteMeta(dir, meta);
    return { meta: { ...meta }, stderrTail };
  })();

  const handle: RunHandle = {
    id: context.id,
    dir,
    onEvent: (listener) => eventListeners.add(listener),
    onStderr: (listener) => stderrListeners.add(listener),
    send(message: ControlMessage) {
      if (stdin.writable) stdin.write(`${JSON.stringify(message)}\n`);
    },
    stop() {
      if (!stopRequested && subprocess.exitCode === null && subprocess.signalCode === null) {
        stopRequested = true;
        handle.send({ type: "stop" });
        stdin.end();
        const grace = context.options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
        killTimers = [
          setTimeout(() => subprocess.kill("SIGTERM"), grace),
          setTimeout(() => subprocess.kill("SIGKILL"), grace + 3_000),
        ];
      }
      return done;
    },
    done,
  };
  return handle;
}

function pushTail(lines: string[], line: string): void {
  lines.push(line);
  if (lines.length > STDERR_TAIL_LINES) lines.shift();
}

interface FailureInputs {
  place: ExecutionPlace;
  endEvent: EndEvent | undefined;
  result: { exitCode?: number; signal?: string; stderr?: unknown };
  stopRequested: boolean;
  reader: EventStreamReader;
  targetStderr: string[];
  ownStderr: string[];
}

/** Why a run failed, in one message that names where and says what the target printed last; undefined when it did not. */
function failureMessage(inputs: FailureInputs): string | undefined {
  const { place, endEvent, result, reader } = inputs;
  const where = describePlace(place);
  if (reader.versionError) return `${where}: ${reader.versionError.message}`;
  const setup = inputs.ownStderr.find((line) => line.startsWith(SETUP_FAILURE_MARK));
  if (setup) return `${where}, start: ${setup.slice(SETUP_FAILURE_MARK.length)}`;
  const tail = (lines: string[]) =>
    lines.length ? `. Last stderr lines:\n${lines.slice(-8).join("\n")}` : "";
  if (!endEvent) {
    if (inputs.stopRequested) return undefined;
    const ssh =
      place.host !== null && result.exitCode === 255
        ? sshFailure(place, "run", {
            exitCode: 255,
            signal: null,
            stdout: "",
            stderr: inputs.ownStderr.join("\n"),
            timedOut: false,
          })
        : undefined;
    if (ssh && ssh.problem !== "ssh-failed") return ssh.message;
    if (place.host !== null && result.exitCode === 255) {
      return `${where}, run: the connection to ${place.host} was lost before the run ended (ssh exit 255); the host's launcher stops the target when its input closes. Events received until then are kept${tail(inputs.ownStderr)}`;
    }
    const status = result.signal
      ? `was killed by ${result.signal}`
      : `exited with code ${result.exitCode ?? "?"}`;
    const process =
      place.host !== null
        ? "the ssh client"
        : place.wrapper.length
          ? `the wrapper (${place.wrapper[0]})`
          : "the probe launcher";
    const consequence = isDirect(place) ? "" : "; the launcher there stops the target when its input closes";
    return `${where}, run: ${process} ${status} before the run ended${consequence}${tail([...inputs.targetStderr, ...inputs.ownStderr])}`;
  }
  if (endEvent.stopped) return undefined;
  if (endEvent.signal) {
    return `${where}, run: the target was killed by ${endEvent.signal}${endEvent.signal === "SIGKILL" ? " (out of host memory? the kernel's OOM killer sends SIGKILL)" : ""}${tail(inputs.targetStderr)}`;
  }
  if (endEvent.exit_code !== 0 && endEvent.exit_code !== null) {
    return `${where}, run: the target exited with code ${endEvent.exit_code}${tail(inputs.targetStderr.length ? inputs.targetStderr : inputs.ownStderr)}`;
  }
  return undefined;
}
