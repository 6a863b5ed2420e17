// The `memlens` launch configuration: the run description shared with "Measure here", plus what
// the debugger adds. package.json's configurationAttributes.launch mirrors this field for field
// (test/dap/launchArgs.test.ts holds them together).
import { z } from "zod";
import { PHASE_IDS } from "../catalog/catalog";
import { isProbeSpec } from "../model/targets";
import { runDescriptionSchema, type RunDescription } from "../runner/types";
import { runDescriptionFromSettings } from "../settings/settings";

export { PHASE_IDS };

export const launchArgsSchema = runDescriptionSchema.extend({
  python: runDescriptionSchema.shape.python.optional(),
  /** Catalog phases to stop at: every hotspot of these phases pauses on entry and exit. */
  stopAtPhases: z.array(z.enum(PHASE_IDS)).optional(),
  /** Extra scopes to measure (not pause at): module:qualname or /path/file.py:LINE. */
  probes: z
    .array(
      z.string().refine(isProbeSpec, (s) => ({
        message: `"${s}" is neither module:qualname (pkg.mod:Class.method) nor /path/file.py:LINE`,
      })),
    )
    .optional(),
  /** Parent folder of run folders. VS Code fills it from memlens.runsDirectory; the bare adapter uses $TMPDIR/memlens-runs. */
  runsDirectory: z.string().optional(),
  /** Folders whose layout gives Python module names for breakpoints on `def` lines. */
  sourceRoots: z.array(z.string()).optional(),
});

/** Launch arguments as VS Code sends them (it also adds name/type/request, which are ignored). */
export type MemlensLaunchArguments = z.infer<typeof launchArgsSchema>;

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
