// memlens.* settings as a run description, and where runs are stored. No `vscode` import: the
// settings arrive through a `get`, so this is unit-tested.
import * as path from "node:path";
import type { RunDescription } from "./runner/types";

/** The part of vscode.WorkspaceConfiguration read here. */
export interface SettingsReader {
  get<T>(section: string): T | undefined;
}

/** `${workspaceFolder}` and `${python}` in settings, as in launch.json. */
export function substitute(value: string, vars: { workspaceFolder?: string; python: string }): string {
  return value
    .replace(/\$\{workspaceFolder\}/g, vars.workspaceFolder ?? "${workspaceFolder}")
    .replace(/\$\{python\}/g, vars.python);
}

/** memlens.* settings as a run description; relative cwd resolves against the workspace folder. */
export function runDescriptionFromSettings(
  config: SettingsReader,
  workspaceFolder: string | undefined,
): RunDescription {
  const pythonSetting = config.get<string>("python")?.trim() || "python3";
  // ${python} in the command means the interpreter as resolved, so it is expanded first.
  const python = substitute(pythonSetting, { workspaceFolder, python: "python3" });
  const vars = { workspaceFolder, python };
  const command = (config.get<string[]>("command") ?? []).map((arg) => substitute(arg, vars));
  const cwdSetting = substitute(config.get<string>("cwd")?.trim() ?? "", vars);
  const host = config.get<string>("host")?.trim() ?? "";
  let cwd: string | undefined;
  if (cwdSetting !== "") {
    cwd =
      host === "" && workspaceFolder && !path.isAbsolute(cwdSetting)
        ? path.join(workspaceFolder, cwdSetting)
        : cwdSetting;
  } else if (host === "") {
    cwd = workspaceFolder;
  }
  const env = config.get<Record<string, string>>("env") ?? {};
  const description: RunDescription = {
    python,
    command: command.length > 0 ? command : undefined,
    model: config.get<string>("model") || undefined,
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
    sampleIntervalMs: config.get<number>("sampleIntervalMs"),
    gpuMemoryUtilization: config.get<number>("gpuMemoryUtilization"),
    emulateGpuGiB: config.get<number | null>("emulateGpuGiB") ?? null,
  };
  return description;
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
