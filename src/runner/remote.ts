// What runs on a host or inside a wrapper: the cache check, the upload of the probe (and the bundled
// loader) once per content hash, and the command line of a run. Each remote step is a fixed sh
// script that receives every variable part as a positional argument, so the only shell text built
// from values is the quoting in quote.ts.
import { createHash } from "node:crypto";
import { createReadStream, statSync } from "node:fs";
import * as path from "node:path";
import manifest from "../../package.json";
import { runToEnd, tailLines, type EndedCommand } from "./exec";
import { RunnerError, sshFailure, type RunnerStep } from "./errors";
import { commandAt, describePlace, placeKey, type ExecutionPlace } from "./place";

/** memlens.remoteCacheDir's default, as package.json declares it. */
export const DEFAULT_REMOTE_CACHE_DIR =
  manifest.contributes.configuration.properties["memlens.remoteCacheDir"].default;

/** Check: resolve the cache folder, list which files are there, find the interpreter. */
const CHECK_SCRIPT = `d=$1; py=$2; shift 2
case $d in "~") d=$HOME ;; "~/"*) d=$HOME/\${d#"~/"} ;; esac
case $d in /*) ;; *) d=$HOME/$d ;; esac
echo "memlens-dir $d"
for f do
  if [ -f "$d/$f" ]; then echo "memlens-cached $f"; else echo "memlens-missing $f"; fi
done
if command -v "$py" >/dev/null 2>&1; then
  "$py" -c 'import sys; print("memlens-python %d %d %d %s" % (sys.version_info[0], sys.version_info[1], sys.version_info[2], sys.executable))' || echo "memlens-python-failed $?"
else
  echo "memlens-no-python"
fi`;

/** Upload: stdin to a temporary name beside the target, checked against its hash, then renamed. */
const UPLOAD_SCRIPT = `d=$1; f=$2; sum=$3; py=$4
t=$d/$f.tmp.$$
mkdir -p "\${t%/*}" || exit 1
cat > "$t" || { rm -f "$t"; exit 1; }
got=$("$py" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$t") || { rm -f "$t"; exit 1; }
if [ "$got" != "$sum" ]; then rm -f "$t"; echo "memlens-upload: content hash $got, expected $sum (transfer damaged)" >&2; exit 1; fi
mv -f "$t" "$d/$f" && echo "memlens-uploaded $f"`;

/** Run: write the plan into the host's run folder, enter cwd, become the probe launcher (exec);
 * the remaining arguments are the launcher's ("--run-id ID -- COMMAND..."). */
const RUN_SCRIPT = `r=$1; plan=$2; cwd=$3; py=$4; probe=$5; shift 5
mkdir -p "$r" && printf '%s\\n' "$plan" > "$r/plan.json" || { echo "memlens-setup: cannot write the run folder $r" >&2; exit 125; }
if [ -n "$cwd" ]; then cd "$cwd" || { echo "memlens-setup: cannot change to the working directory $cwd" >&2; exit 125; }; fi
if [ ! -f "$probe" ]; then echo "memlens-setup: the probe is missing at $probe" >&2; exit 125; fi
exec "$py" "$probe" run --control stdin --plan "$r/plan.json" --out "$r" "$@"`;

/** Marks a failure of RUN_SCRIPT itself (as opposed to the target's own exit code). */
export const SETUP_FAILURE_MARK = "memlens-setup: ";

export interface CachedFile {
  /** Local file to upload. */
  localPath: string;
  /** Name under the cache folder: "<sha256 prefix>/<basename>". */
  relativeName: string;
  sha256: string;
  size: number;
}

export async function describeCachedFile(localPath: string): Promise<CachedFile> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(localPath)) hash.update(chunk as Buffer);
  const sha256 = hash.digest("hex");
  return {
    localPath,
    relativeName: `${sha256.slice(0, 16)}/${path.basename(localPath)}`,
    sha256,
    size: statSync(localPath).size,
  };
}

export interface PythonInfo {
  version: [number, number, number];
  executable: string;
}

export interface PlaceCheck {
  /** The cache folder with ~ resolved, absolute on the host. */
  cacheDir: string;
  cached: Set<string>;
  python: PythonInfo | null;
}

/** Per-session knowledge about places: resolved cache folders, files known to be there, preflight. */
export class RunnerSession {
  readonly cacheDirs = new Map<string, string>();
  readonly presentFiles = new Map<string, Set<string>>();
  readonly preflights = new Map<string, unknown>();

  knownPresent(key: string, relativeName: string): boolean {
    return this.presentFiles.get(key)?.has(relativeName) ?? false;
  }

  markPresent(key: string, relativeName: string): void {
    let files = this.presentFiles.get(key);
    if (!files) this.presentFiles.set(key, (files = new Set()));
    files.add(relativeName);
  }
}

/** The session used when callers pass none: one per extension host. */
export const defaultSession = new RunnerSession();

function validateCacheDir(cacheDir: string, place: ExecutionPlace): void {
  if (cacheDir.trim() === "" || /[\n\r\0]/.test(cacheDir)) {
    throw new RunnerError(
      "bad-config",
      "upload",
      describePlace(place),
      `memlens.remoteCacheDir ${JSON.stringify(cacheDir)} is not usable: give a folder path on the host (default ${DEFAULT_REMOTE_CACHE_DIR}).`,
    );
  }
}

/** Throws the clear error for an ssh or wrapper failure of one step. */
function failStep(place: ExecutionPlace, step: RunnerStep, ended: EndedCommand, what: string): never {
  const ssh = sshFailure(place, step, ended);
  if (ssh) throw ssh;
  const tail = tailLines(ended.stderr, 8);
  const where = describePlace(place);
  if (ended.spawnError) {
    const program = place.wrapper[0] ?? "the command";
    throw new RunnerError(
      "spawn-failed",
      step,
      where,
      `"${program}" could not be started (${ended.spawnError.code ?? ended.spawnError.message}). Check memlens.wrapper: its first word must be a program on PATH.`,
    );
  }
  const status = ended.timedOut ? "timed out" : `exited with ${ended.exitCode ?? ended.signal ?? "?"}`;
  const problem = place.wrapper.length > 0 ? "wrapper-failed" : "ssh-failed";
  const blame = place.wrapper.length > 0 ? ` (check memlens.wrapper: ${JSON.stringify(place.wrapper)})` : "";
  throw new RunnerError(
    problem,
    step,
    where,
    `${what} ${status}${tail.length ? `: ${tail[tail.length - 1]}` : ""}${blame}`,
    tail,
  );
}

export async function checkPlace(
  place: ExecutionPlace,
  python: string,
  cacheDir: string,
  files: readonly CachedFile[],
): Promise<PlaceCheck> {
  validateCacheDir(cacheDir, place);
  const ended = await runToEnd(
    commandAt(place, [
      "sh",
      "-c",
      CHECK_SCRIPT,
      "memlens-check",
      cacheDir,
      python,
      ...files.map((f) => f.relativeName),
    ]),
    { timeoutMs: 60_000 },
  );
  const lines = ended.stdout.split("\n");
  const dirLine = lines.find((line) => line.startsWith("memlens-dir "));
  if (ended.exitCode !== 0 || dirLine === undefined) failStep(place, "connect", ended, "the host check");
  const cached = new Set<string>();
  let pythonInfo: PythonInfo | null = null;
  for (const line of lines) {
    if (line.startsWith("memlens-cached ")) cached.add(line.slice("memlens-cached ".length));
    const match = /^memlens-python (\d+) (\d+) (\d+) (.*)$/.exec(line);
    if (match)
      pythonInfo = { version: [Number(match[1]), Number(match[2]), Number(match[3])], executable: match[4]! };
  }
  return { cacheDir: dirLine.slice("memlens-dir ".length), cached, python: pythonInfo };
}

export interface UploadOptions {
  onProgress?: (message: string) => void;
}

export async function uploadFile(
  place: ExecutionPlace,
  python: string,
  cacheDir: string,
  file: CachedFile,
  options: UploadOptions = {},
): Promise<void> {
  const where = describePlace(place);
  const name = path.basename(file.localPath);
  const report = (sent: number) =>
    options.onProgress?.(`Uploading ${name} to ${where}: ${formatKiB(sent)} of ${formatKiB(file.size)}`);
  report(0);
  const ended = await runToEnd(
    commandAt(place, [
      "sh",
      "-c",
      UPLOAD_SCRIPT,
      "memlens-upload",
      cacheDir,
      file.relativeName,
      file.sha256,
      python,
    ]),
    { inputFile: file.localPath, onInputProgress: report, timeoutMs: 10 * 60_000 },
  );
  if (ended.exitCode !== 0 || !ended.stdout.includes(`memlens-uploaded ${file.relativeName}`)) {
    const ssh = sshFailure(place, "upload", ended);
    if (ssh) throw ssh;
    const tail = tailLines(ended.stderr, 8);
    throw new RunnerError(
      "upload-failed",
      "upload",
      where,
      `copying ${name} to ${cacheDir}/${file.relativeName} failed (exit ${ended.exitCode ?? ended.signal ?? "?"})${tail.length ? `: ${tail[tail.length - 1]}` : ""}. Check that memlens.remoteCacheDir is writable there and the disk is not full.`,
      tail,
    );
  }
  options.onProgress?.(`Uploaded ${name} to ${where} (${formatKiB(file.size)})`);
}

export interface PlacedFiles {
  cacheDir: string;
  python: PythonInfo | null;
  /** Absolute path on the host of each file, by local path. */
  paths: Map<string, string>;
  uploaded: string[];
}

/**
 * Makes sure each file is in the host's cache (checking once per session, uploading what is
 * missing). Returns where they are. One round trip when everything is already there.
 */
export async function ensureFilesAtPlace(
  place: ExecutionPlace,
  python: string,
  cacheDirSetting: string,
  localFiles: readonly string[],
  session: RunnerSession,
  options: UploadOptions = {},
): Promise<PlacedFiles> {
  const files = await Promise.all(localFiles.map((file) => describeCachedFile(file)));
  const key = placeKey(place, cacheDirSetting);
  let cacheDir = session.cacheDirs.get(key);
  let pythonInfo: PythonInfo | null = null;
  const missing = files.filter((file) => !session.knownPresent(key, file.relativeName));
  const uploaded: string[] = [];
  if (cacheDir === undefined || missing.length > 0) {
    const check = await checkPlace(place, python, cacheDirSetting, files);
    cacheDir = check.cacheDir;
    pythonInfo = check.python;
    session.cacheDirs.set(key, cacheDir);
    for (const file of files) {
      if (check.cached.has(file.relativeName)) {
        session.markPresent(key, file.relativeName);
        continue;
      }
      requirePython(place, python, check.python);
      await uploadFile(place, python, cacheDir, file, options);
      session.markPresent(key, file.relativeName);
      uploaded.push(file.relativeName);
    }
  }
  const paths = new Map(files.map((file) => [file.localPath, `${cacheDir}/${file.relativeName}`] as const));
  return { cacheDir, python: pythonInfo, paths, uploaded };
}

export const MIN_PYTHON: readonly [number, number] = [3, 9];

/** Throws the "no python" / "too old" error for a check result. */
export function requirePython(place: ExecutionPlace, python: string, info: PythonInfo | null): PythonInfo {
  const where = describePlace(place);
  if (info === null) {
    throw new RunnerError(
      "no-python",
      "python",
      where,
      `no Python at "${python}" (memlens.python). Set memlens.python to the interpreter that has torch${place.host ? " on that host" : ""} (e.g. /opt/venv/bin/python); a non-login shell's PATH is used to look it up.`,
    );
  }
  const [major, minor] = info.version;
  if (major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1])) {
    throw new RunnerError(
      "python-too-old",
      "python",
      where,
      `"${python}" is Python ${info.version.join(".")} (${info.executable}); the probe needs Python ${MIN_PYTHON.join(".")} or newer. Point memlens.python at a newer interpreter.`,
    );
  }
  return info;
}

export interface RemoteRunCommand {
  /** The run's folder on the host (the probe writes its own events.jsonl there too). */
  hostRunDir: string;
  argv: string[];
}

function validateEnvName(name: string, where: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new RunnerError(
      "bad-config",
      "start",
      where,
      `environment variable name ${JSON.stringify(name)} (memlens.env) is not valid: use letters, digits and "_", not starting with a digit.`,
    );
  }
}

/** The argv (before the place's prefix) of a run on a host or in a wrapper. */
export function remoteRunCommand(args: {
  place: ExecutionPlace;
  cacheDir: string;
  runId: string;
  planJson: string;
  cwd: string;
  python: string;
  probePath: string;
  env: Record<string, string>;
  command: string[];
}): RemoteRunCommand {
  const where = describePlace(args.place);
  const envWords = Object.entries(args.env).map(([name, value]) => {
    validateEnvName(name, where);
    return `${name}=${value}`;
  });
  const hostRunDir = `${args.cacheDir}/runs/${args.runId}`;
  const script = [
    "sh",
    "-c",
    RUN_SCRIPT,
    "memlens-run",
    hostRunDir,
    args.planJson,
    args.cwd,
    args.python,
    args.probePath,
  ];
  return {
    hostRunDir,
    argv: [
      ...(envWords.length ? ["env", ...envWords] : []),
      ...script,
      "--run-id",
      args.runId,
      "--",
      ...args.command,
    ],
  };
}

function formatKiB(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${Math.ceil(bytes / 1024)} KiB`;
}
