// memlens.* settings read once into resolved values: the run description, the source roots, the
// runs folder and the budget's card. Each setting's default is the one package.json declares.
// No `vscode` import: the settings arrive through a `get`, so this is unit-tested, and a launch
// configuration (the same field names) is read by the same code.
import * as path from "node:path";
import manifest from "../../package.json";
import type { RunDescription } from "../runner/types";
import { parseLang, type Lang } from "../l10n/lang";

/** The part of vscode.WorkspaceConfiguration read here. */
export interface SettingsReader {
  get<T>(section: string): T | undefined;
}

const declared = manifest.contributes.configuration.properties;

/** Defaults of the settings that have a value of their own (package.json's `default`). */
export const SETTING_DEFAULTS = {
  python: declared["memlens.python"].default,
  model: declared["memlens.model"].default,
  sampleIntervalMs: declared["memlens.sampleIntervalMs"].default,
  sitesCalls: declared["memlens.sitesCalls"].default,
  gpuMemoryUtilization: declared["memlens.gpuMemoryUtilization"].default,
  targetGpuGiB: declared["memlens.targetGpuGiB"].default,
  logLanguage: declared["memlens.logLanguage"].default,
} as const;

const GiB = 1024 ** 3;

/** `${workspaceFolder}` and `${python}` in settings, as in launch.json. */
export function substitute(value: string, vars: { workspaceFolder?: string; python: string }): string {
  return value
    .replace(/\$\{workspaceFolder\}/g, vars.workspaceFolder ?? "${workspaceFolder}")
    .replace(/\$\{python\}/g, vars.python);
}

/** A working directory: relative to the workspace folder for local runs, the host's own for remote ones. */
export function resolveCwd(
  cwd: string,
  host: string | undefined,
  workspaceFolder: string | undefined,
): string {
  return !host && workspaceFolder && !path.isAbsolute(cwd) ? path.join(workspaceFolder, cwd) : cwd;
}

/**
 * memlens.* settings (or a launch configuration's fields of the same names) as a run description;
 * relative cwd resolves against the workspace folder.
 */
export function runDescriptionFromSettings(
  config: SettingsReader,
  workspaceFolder: string | undefined,
): RunDescription {
  const pythonSetting = config.get<string>("python")?.trim() || SETTING_DEFAULTS.python;
  // ${python} in the command means the interpreter as resolved, so it is expanded first.
  const python = substitute(pythonSetting, { workspaceFolder, python: SETTING_DEFAULTS.python });
  const vars = { workspaceFolder, python };
  const command = (config.get<string[]>("command") ?? []).map((arg) => substitute(arg, vars));
  const cwdSetting = substitute(config.get<string>("cwd")?.trim() ?? "", vars);
  const host = config.get<string>("host")?.trim() ?? "";
  let cwd: string | undefined;
  if (cwdSetting !== "") cwd = resolveCwd(cwdSetting, host, workspaceFolder);
  else if (host === "") cwd = workspaceFolder;
  const env = config.get<Record<string, string>>("env") ?? {};
  return {
    python,
    command: command.length > 0 ? command : undefined,
    model: (config.get<string>("model") ?? SETTING_DEFAULTS.model) || undefined,
    env: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, substitute(String(v), vars)])),
    cwd,
    host: host || undefined,
    sshArgs: config.get<string[]>("sshArgs") ?? [],
    wrapper: config.get<string[]>("wrapper") ?? [],
    remoteCacheDir: config.get<string>("remoteCacheDir") || undefined,
    // The documented form is {"remote": "/srv/vllm", "local": "${workspaceFolder}"}.
    pathMappings: (config.get<{ remote: string; local: string }[]>("pathMappings") ?? []).map((mapping) => ({
      remote: String(mapping.remote),
      local: substitute(String(mapping.local), vars),
    })),
    sampleIntervalMs: config.get<number>("sampleIntervalMs") ?? SETTING_DEFAULTS.sampleIntervalMs,
    sitesCalls: config.get<number>("sitesCalls") ?? SETTING_DEFAULTS.sitesCalls,
    gpuMemoryUtilization: config.get<number>("gpuMemoryUtilization") ?? SETTING_DEFAULTS.gpuMemoryUtilization,
    emulateGpuGiB: config.get<number | null>("emulateGpuGiB") ?? null,
  };
}

/** memlens.runsDirectory, or `<workspace>/.memlens/runs`, or the extension's storage without a workspace. */
export function resolveRunsDirectory(
  setting: string,
  workspaceFolder: string | undefined,
  fallback: string,
): string {
  const trimmed = setting.trim();
  if (trimmed !== "") {
    const expanded = substitute(trimmed, { workspaceFolder, python: "" });
    if (path.isAbsolute(expanded)) return expanded;
    if (workspaceFolder) return path.join(workspaceFolder, expanded);
    return path.join(fallback, expanded);
  }
  return workspaceFolder ? path.join(workspaceFolder, ".memlens", "runs") : fallback;
}

/** memlens.sourceRoots (relative to the workspace folder), else every workspace folder. */
export function resolveSourceRoots(
  roots: readonly string[],
  workspaceFolder: string | undefined,
  workspaceFolders: readonly string[],
): string[] {
  if (roots.length === 0) return [...workspaceFolders];
  return roots.map((root) => {
    const expanded = substitute(root, { workspaceFolder, python: "" });
    return workspaceFolder && !path.isAbsolute(expanded) ? path.join(workspaceFolder, expanded) : expanded;
  });
}

/** Where the workspace is, for resolving what the settings name. */
export interface WorkspacePlaces {
  /** The first workspace folder: relative paths and `${workspaceFolder}` resolve against it. */
  folder?: string;
  /** Every workspace folder on disk. */
  folders: readonly string[];
  /** Where runs go without a workspace (the extension's storage). */
  storage: string;
}

export interface MemlensSettings {
  /** What "Measure here" runs, and what a launch configuration leaves out. */
  description: RunDescription;
  /** Folders whose layout gives Python module names: the language server, the debugger and the runner's path mapping. */
  sourceRoots: string[];
  runsDirectory: string;
  /** memlens.model as written; the budget resolves it to a checkpoint. */
  model: string;
  /** The card the budget's verdict is for. */
  targetBytes: number;
  targetGpuGiB: number;
  /** vLLM's gpu_memory_utilization, for the loader and the verdict alike. */
  gpuMemoryUtilization: number;
  /** The language Export Findings writes in: the log's own ("auto"), or the one named. */
  logLanguage: "auto" | Lang;
  /** "Measure here" targets also record their allocation sites (the plan's `sites`). */
  allocationSites: boolean;
}

/** Every memlens.* setting, resolved. */
export function readSettings(config: SettingsReader, places: WorkspacePlaces): MemlensSettings {
  const description = runDescriptionFromSettings(config, places.folder);
  const targetGpuGiB = config.get<number>("targetGpuGiB") ?? SETTING_DEFAULTS.targetGpuGiB;
  return {
    description,
    sourceRoots: resolveSourceRoots(config.get<string[]>("sourceRoots") ?? [], places.folder, places.folders),
    runsDirectory: resolveRunsDirectory(
      config.get<string>("runsDirectory") ?? "",
      places.folder,
      places.storage,
    ),
    model: config.get<string>("model") ?? SETTING_DEFAULTS.model,
    targetGpuGiB,
    targetBytes: Math.round(targetGpuGiB * GiB),
    gpuMemoryUtilization: description.gpuMemoryUtilization ?? SETTING_DEFAULTS.gpuMemoryUtilization,
    logLanguage: parseLang(config.get<string>("logLanguage") ?? SETTING_DEFAULTS.logLanguage) ?? "auto",
    allocationSites: config.get<boolean>("allocationSites") === true,
  };
}
