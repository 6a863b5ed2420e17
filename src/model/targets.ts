// Probe targets: what kind a spec is, whether a plan may name it, and the short name a target goes
// by, decided here once, so the lens, the panel, the Runs view, the debugger, the report and the
// CLI call a target the same. The spec syntax itself is the plan's (src/protocol/specs.ts).
import { isFunctionSpec, parseFunctionSpec, parseLineSpec } from "../protocol/specs";
import type { RunModel } from "./runModel";

export type TargetKind = "function" | "line";

export function targetKind(spec: string): TargetKind {
  return parseLineSpec(spec) ? "line" : "function";
}

/** Whether a plan may name `spec`: a function, or a line of a file from line 1 on. */
export function isProbeSpec(spec: string): boolean {
  const line = parseLineSpec(spec);
  return line ? line.line >= 1 : isFunctionSpec(spec);
}

function baseName(file: string): string {
  const at = Math.max(file.lastIndexOf("/"), file.lastIndexOf("\\"));
  return at >= 0 ? file.slice(at + 1) : file;
}

/**
 * A spec, short: "file.py:12" for a line, the qualname for a function. `withModule` keeps the last
 * part of the module ("marlin_utils_fp4:prepare_moe_fp4_layer_for_marlin"), for run labels that
 * stand alone in a notification.
 */
export function specLabel(spec: string, withModule = false): string {
  const line = parseLineSpec(spec);
  if (line) return `${baseName(line.file)}:${line.line}`;
  const fn = parseFunctionSpec(spec);
  if (!fn) return spec;
  return withModule ? `${fn.module.split(".").pop() ?? fn.module}:${fn.qualname}` : fn.qualname;
}

/**
 * The name a run's target goes by: the qualname the probe resolved, the file:line of a resolved
 * line, else the plan's spec, short; the target id when nothing else is known.
 */
export function targetLabel(model: RunModel, targetId: string, spec?: string): string {
  const info = model.targets.get(targetId);
  const resolved = info ? [...info.resolved.values()][0] : undefined;
  if (resolved?.qualname) return resolved.qualname;
  if (resolved?.kind === "line" && resolved.file && resolved.line !== undefined) {
    return `${baseName(resolved.file)}:${resolved.line}`;
  }
  const planned = spec ?? info?.spec ?? resolved?.spec;
  return planned === undefined ? targetId : specLabel(planned);
}
