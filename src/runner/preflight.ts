// Preflight: before the first run on a place (host, wrapper, or this machine) in a session, find
// out whether a run can work there and what it will measure against: reachable, authenticated,
// Python (3.9+), torch, GPUs with their free memory now, and other processes already on them.
import { z } from "zod";
import { runToEnd, tailLines } from "./exec";
import { RunnerError, sshFailure } from "./errors";
import { commandAt, describePlace, isDirect, placeKey, type ExecutionPlace } from "./place";
import { ensureFilesAtPlace, MIN_PYTHON, requirePython, type PythonInfo, type RunnerSession } from "./remote";

const GiB = 1 << 30;

const gpuProcessSchema = z
  .object({
    pid: z.number(),
    used_bytes: z.number().nullish(),
    name: z.string().nullish(),
  })
  .passthrough();

const gpuSchema = z
  .object({
    index: z.number(),
    name: z.string().nullish(),
    total_bytes: z.number().nullish(),
    free_bytes: z.number().nullish(),
    used_bytes: z.number().nullish(),
    processes: z.array(gpuProcessSchema).nullish(),
  })
  .passthrough();

/** What `memlens_probe.pyz preflight --json` prints (python-probe/memlens_probe/preflight.py). */
export const probePreflightSchema = z
  .object({
    probe_version: z.string().nullish(),
    protocol: z.number().nullish(),
    python: z.object({ version: z.string(), executable: z.string().nullish() }).passthrough().nullish(),
    hostname: z.string().nullish(),
    torch: z.object({ installed: z.boolean(), version: z.string().nullish() }).passthrough().nullish(),
    cuda_visible_devices: z.string().nullish(),
    nvml: z
      .object({ available: z.boolean(), driver_version: z.string().nullish(), error: z.string().nullish() })
      .passthrough()
      .nullish(),
    gpus: z.array(gpuSchema).nullish(),
    /** The probe's fast path (fast_path.py) for this Python: absent from probes before it. */
    fast_path: z
      .object({ available: z.boolean(), library: z.string().nullish(), why: z.string().nullish() })
      .passthrough()
      .nullish(),
  })
  .passthrough();

export type ProbePreflight = z.infer<typeof probePreflightSchema>;

export type PreflightProblem = "no-torch" | "no-gpu" | "other-processes";

export interface PreflightReport {
  /** describePlace(): "host gpu1", "docker exec -i vllm on this machine", … */
  where: string;
  python: PythonInfo;
  torch: string | null;
  gpus: {
    index: number;
    name: string;
    totalBytes?: number;
    freeBytes?: number;
    processes: { pid: number; usedBytes?: number; name?: string }[];
  }[];
  /** Not fatal: a run can go on, but the user should know (a CPU-only run measures host memory only). */
  problems: { problem: PreflightProblem; message: string }[];
  /** One line per finding, for the output channel and the preflight command. */
  lines: string[];
  raw: ProbePreflight;
}

export interface PreflightResult extends PreflightReport {
  /** Resolved cache folder on the host (or "" on this machine). */
  cacheDir: string;
  /** Where each local file (probe, loader) is for the place: host path, or itself on this machine. */
  files: Map<string, string>;
  /** True when this call ran the checks (false: the session's earlier answer). */
  fresh: boolean;
}

export interface PreflightOptions {
  session: RunnerSession;
  probePath: string;
  /** More files the run needs there (the bundled loader). */
  extraFiles?: string[];
  onProgress?: (message: string) => void;
  /** Ignore the session's earlier answer (the "Check Remote GPU Host" command). */
  force?: boolean;
}

const PYTHON_VERSION_SCRIPT =
  'import sys; print("memlens-python %d %d %d %s" % (sys.version_info[0], sys.version_info[1], sys.version_info[2], sys.executable))';

async function localPython(place: ExecutionPlace, python: string): Promise<PythonInfo> {
  const ended = await runToEnd({ file: python, args: ["-c", PYTHON_VERSION_SCRIPT] }, { timeoutMs: 60_000 });
  if (ended.spawnError) return requirePython(place, python, null);
  const match = /^memlens-python (\d+) (\d+) (\d+) (.*)$/m.exec(ended.stdout);
  if (!match) {
    throw new RunnerError(
      "python-failed",
      "python",
      describePlace(place),
      `"${python} -c …" did not report its version (exit ${ended.exitCode ?? ended.signal ?? "?"})${tailLines(
        ended.stderr,
        1,
      )
        .map((l) => `: ${l}`)
        .join("")}. Is memlens.python a Python interpreter?`,
      tailLines(ended.stderr, 8),
    );
  }
  return requirePython(place, python, {
    version: [Number(match[1]), Number(match[2]), Number(match[3])],
    executable: match[4]!,
  });
}

export async function preflightPlace(
  place: ExecutionPlace,
  python: string,
  cacheDirSetting: string,
  options: PreflightOptions,
): Promise<PreflightResult> {
  const where = describePlace(place);
  const progress = options.onProgress ?? (() => undefined);
  const key = placeKey(place, python, cacheDirSetting);
  const localFiles = [options.probePath, ...(options.extraFiles ?? [])];
  const earlier = options.force
    ? undefined
    : (options.session.preflights.get(key) as PreflightReport | undefined);

  let cacheDir = "";
  let files: Map<string, string>;
  let pythonInfo: PythonInfo | undefined = earlier?.python;
  if (isDirect(place)) {
    files = new Map(localFiles.map((file) => [file, file]));
    if (!earlier) {
      progress(`Checking Python on ${where}`);
      pythonInfo = await localPython(place, python);
    }
  } else {
    if (!earlier) progress(`Connecting to ${where}`);
    if (!earlier) {
      // A fresh check every time there is no earlier answer: it also finds the interpreter.
      options.session.cacheDirs.delete(placeKey(place, cacheDirSetting));
      options.session.presentFiles.delete(placeKey(place, cacheDirSetting));
    }
    const placed = await ensureFilesAtPlace(place, python, cacheDirSetting, localFiles, options.session, {
      onProgress: progress,
    });
    cacheDir = placed.cacheDir;
    files = placed.paths;
    if (!earlier) pythonInfo = requirePython(place, python, placed.python);
  }
  if (earlier) return { ...earlier, cacheDir, files, fresh: false };

  progress(`Checking torch and GPUs on ${where}`);
  const probeThere = files.get(options.probePath)!;
  const ended = await runToEnd(commandAt(place, [python, probeThere, "preflight", "--json"]), {
    timeoutMs: 180_000,
  });
  const ssh = sshFailure(place, "preflight", ended);
  if (ssh) throw ssh;
  let raw: ProbePreflight;
  try {
    if (ended.exitCode !== 0) throw new Error(`exit ${ended.exitCode ?? ended.signal ?? "?"}`);
    raw = probePreflightSchema.parse(JSON.parse(lastJsonLine(ended.stdout)));
  } catch (error) {
    const tail = tailLines(ended.stderr, 8);
    throw new RunnerError(
      "preflight-failed",
      "preflight",
      where,
      `"${python} memlens_probe.pyz preflight --json" failed (${(error as Error).message})${tail.length ? `: ${tail[tail.length - 1]}` : ""}.`,
      tail,
    );
  }
  const report = buildReport(where, pythonInfo!, raw, `${python} ${probeThere}`);
  options.session.preflights.set(key, report);
  return { ...report, cacheDir, files, fresh: true };
}

function lastJsonLine(stdout: string): string {
  const lines = stdout.split("\n").filter((line) => line.trim().startsWith("{"));
  const last = lines[lines.length - 1];
  if (last === undefined) throw new Error("no JSON on stdout");
  return last;
}

function gib(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? "?" : `${(bytes / GiB).toFixed(2)} GiB`;
}

/** Turns the probe's answer into findings with their messages. `probeCommand`: how the probe runs
 * there (Python and the uploaded zipapp), for the line that says how to build its fast path.
 * Exported for tests. */
export function buildReport(
  where: string,
  python: PythonInfo,
  raw: ProbePreflight,
  probeCommand = `${python.executable} memlens_probe.pyz`,
): PreflightReport {
  const problems: PreflightReport["problems"] = [];
  const lines = [
    `${where}: Python ${python.version.join(".")} (${python.executable}), needs ${MIN_PYTHON.join(".")}+: ok`,
  ];
  const torch = raw.torch?.installed ? (raw.torch.version ?? "(unknown version)") : null;
  if (torch === null) {
    const message = `${where}: torch is not installed for ${python.executable}. vLLM needs it: point memlens.python at the environment where vLLM and torch are installed. Without torch the bundled workload measures host memory only.`;
    problems.push({ problem: "no-torch", message });
    lines.push(message);
  } else {
    lines.push(`${where}: torch ${torch}`);
  }
  const gpus = (raw.gpus ?? []).map((gpu) => ({
    index: gpu.index,
    name: gpu.name ?? `GPU ${gpu.index}`,
    totalBytes: gpu.total_bytes ?? undefined,
    freeBytes: gpu.free_bytes ?? undefined,
    processes: (gpu.processes ?? []).map((process) => ({
      pid: process.pid,
      usedBytes: process.used_bytes ?? undefined,
      name: process.name ?? undefined,
    })),
  }));
  if (gpus.length === 0) {
    const why = [
      raw.nvml?.error ? `NVML: ${raw.nvml.error}` : undefined,
      raw.cuda_visible_devices !== undefined && raw.cuda_visible_devices !== null
        ? `CUDA_VISIBLE_DEVICES=${JSON.stringify(raw.cuda_visible_devices)}`
        : undefined,
    ].filter((part) => part !== undefined);
    const message = `${where}: no GPU visible${why.length ? ` (${why.join("; ")})` : ""}. Runs there measure host memory only; check the driver (nvidia-smi), CUDA_VISIBLE_DEVICES in memlens.env, or the wrapper's GPU flags (docker --gpus, srun --gres=gpu:1).`;
    problems.push({ problem: "no-gpu", message });
    lines.push(message);
  } else {
    lines.push(
      `${where}: ${gpus.length} GPU${gpus.length > 1 ? "s" : ""}${raw.nvml?.driver_version ? ` (driver ${raw.nvml.driver_version})` : ""}: ` +
        gpus
          .map((gpu) => `${gpu.index}: ${gpu.name}, ${gib(gpu.freeBytes)} free of ${gib(gpu.totalBytes)} now`)
          .join("; "),
    );
    for (const gpu of gpus) {
      if (gpu.processes.length === 0) continue;
      const message = `${where}: GPU ${gpu.index} already has ${gpu.processes.length} other process${gpu.processes.length > 1 ? "es" : ""} (${gpu.processes
        .map(
          (process) =>
            `pid ${process.pid}${process.name ? ` ${process.name}` : ""}: ${gib(process.usedBytes)}`,
        )
        .join(
          ", ",
        )}); they take memory the run cannot use and move device-level readings. Stop them for clean numbers.`;
      problems.push({ problem: "other-processes", message });
      lines.push(message);
    }
  }
  const fast = raw.fast_path;
  if (fast?.available) {
    lines.push(
      `${where}: the probe's fast path (host readings and event lines in C): ${fast.library ?? "in use"}`,
    );
  } else if (fast) {
    // Not a problem: the readings are the same without it, each probe point costs ~1.5× more.
    lines.push(
      `${where}: the probe's fast path is not built for this Python (${fast.why ?? "not found"}); the readings are the same without it, probe points cost ~1.5× more. Build it once there (a C compiler and Python's headers): ${probeCommand} ${torch === null ? "build-fast-path" : "build-fast-stats"}`,
    );
  }
  return { where, python, torch, gpus, problems, lines, raw };
}
