// The `memlens` launch configuration: the run description shared with "Measure here", plus what
// the debugger adds. package.json's configurationAttributes.launch mirrors this field for field
// (test/dap/launchArgs.test.ts holds them together).
import { z } from "zod";
import { PHASE_IDS } from "../catalog/catalog";
import type { PhaseId } from "../catalog/types";
import { isProbeSpec } from "../model/targets";
import type { RunDescription } from "../runner/types";
import { runDescriptionFromSettings } from "../settings/settings";

export { PHASE_IDS };

const stringArray = z.array(z.string());

export const launchArgsSchema = z.object({
  python: z.string().min(1, "python must name an interpreter, e.g. python3").optional(),
  command: stringArray.optional(),
  model: z.string().optional(),
  env: z.record(z.string()).optional(),
  cwd: z.string().optional(),
  host: z.string().optional(),
  sshArgs: stringArray.optional(),
  wrapper: stringArray.optional(),
  remoteCacheDir: z.string().optional(),
  pathMappings: z.array(z.object({ remote: z.string().min(1), local: z.string().min(1) })).optional(),
  sampleIntervalMs: z.number().min(0).optional(),
  gpuMemoryUtilization: z.number().min(0.05).max(1).optional(),
  emulateGpuGiB: z.number().positive().nullable().optional(),
  stopAtPhases: z.array(z.enum(PHASE_IDS)).optional(),
  probes: z
    .array(
      z.string().refine(isProbeSpec, (s) => ({
        message: `"${s}" is neither module:qualname (pkg.mod:Class.method) nor /path/file.py:LINE`,
      })),
    )
    .optional(),
  runsDirectory: z.string().optional(),
  sourceRoots: stringArray.optional(),
});

/** Launch arguments as VS Code sends them (it also adds name/type/request, which are ignored). */
export interface MemlensLaunchArguments {
  python?: string;
  command?: string[];
  model?: string;
  env?: Record<string, string>;
  cwd?: string;
  host?: string;
  sshArgs?: string[];
  wrapper?: string[];
  remoteCacheDir?: string;
  pathMappings?: { remote: string; local: string }[];
  sampleIntervalMs?: number;
  gpuMemoryUtilization?: number;
  emulateGpuGiB?: number | null;
  /** Catalog phases to stop at: every hotspot of these phases pauses on entry and exit. */
  stopAtPhases?: PhaseId[];
  /** Extra scopes to measure (not pause at): module:qualname or /path/file.py:LINE. */
  probes?: string[];
  /** Parent folder of run folders. VS Code fills it from memlens.runsDirectory; the bare adapter uses $TMPDIR/memlens-runs. */
  runsDirectory?: string;
  /** Folders whose layout gives Python module names for breakpoints on `def` lines. */
  sourceRoots?: string[];
}

// Compile-time guard: the interface and the schema must describe the same fields.
type SchemaArgs = z.infer<typeof launchArgsSchema>;
type SameKeys<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never]
  ? true
  : false;
const _sameFields: SameKeys<SchemaArgs, MemlensLaunchArguments> = true;

/** The gpt-oss-20b starter: package.json's initialConfigurations holds the same object. */
export const STARTER_CONFIGURATION = {
  type: "memlens",
  request: "launch",
  name: "MemLens: step through loading gpt-oss-20b",
  model: "openai/gpt-oss-20b",
  gpuMemoryUtilization: 0.98,
  stopAtPhases: ["load_weights", "convert_weights", "workspace", "profile", "kv_cache"],
} as const satisfies MemlensLaunchArguments & { type: string; request: string; name: string };

export class LaunchArgumentError extends Error {
  override name = "LaunchArgumentError";
}

/** Validates raw launch arguments; the error names each bad field and what it should be. */
export function parseLaunchArgs(raw: unknown): MemlensLaunchArguments {
  const result = launchArgsSchema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const where = issue.path.length > 0 ? issue.path.join(".") : "configuration";
    return `${where}: ${issue.message}`;
  });
  throw new LaunchArgumentError(`The memlens launch configuration is not valid. ${problems.join("; ")}.`);
}

/**
 * The part of the launch arguments that the runner understands. They carry the settings' names,
 * so they are read as the settings are, with the same defaults.
 */
export function runDescriptionOf(args: MemlensLaunchArguments): RunDescription {
  const fields = args as Record<string, unknown>;
  return runDescriptionFromSettings({ get: <T>(key: string) => fields[key] as T | undefined }, undefined);
}
