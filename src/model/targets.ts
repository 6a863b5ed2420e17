// Probe targets as the plan names them: `module:qualname` for a function, `/abs/file.py:LINE` for
// a line. What a spec is and the short name a target goes by are decided here, once, so the lens,
// the panel, the Runs view, the debugger, the report and the CLI call a target the same.
import type { RunModel } from "./runModel";

export type TargetKind = "function" | "line";

/** `pkg.mod:Qual.name`: a dotted module, a colon, a dotted qualname (`<locals>` allowed). */
const FUNCTION_SPEC =
  /^[\p{L}_][\p{L}\p{N}_]*(\.[\p{L}_][\p{L}\p{N}_]*)*:([\p{L}_][\p{L}\p{N}_]*|<locals>)(\.([\p{L}_][\p{L}\p{N}_]*|<locals>))*$/u;

/** Whether `spec` is `module:qualname` in the syntax the probe resolves. */
export function isFunctionSpec(spec: string): boolean {
  return FUNCTION_SPEC.test(spec);
}

export interface FunctionSpec {
  module: string;
  qualname: string;
}

/** Splits `pkg.mod:Qual.name`; undefined when there is no colon or a side is empty. */
export function parseFunctionSpec(spec: string): FunctionSpec | undefined {
  const colon = spec.indexOf(":");
  if (colon <= 0 || colon === spec.length - 1) return undefined;
  return { module: spec.slice(0, colon), qualname: spec.slice(colon + 1) };
}

export interface LineSpec {
  file: string;
  /** 1-based, as Python counts. */
  line: number;
}

/** `/abs/file.py:123` → file and line; undefined for `module:qualname`. */
export function parseLineSpec(spec: string): LineSpec | undefined {
  const match = /^(.*):(\d+)$/.exec(spec);
  if (!match || !/[\\/]|\.pyw?$/.test(match[1]!)) return undefined;
  return { file: match[1]!, line: Number(match[2]) };
}

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
