// Where a breakpoint in a Python file pauses: on a `def` line (or its decorators or signature),
// the function's entry by module:qualname; on any other code line, that line (file:line).
import { MAX_SOURCE_BYTES, readErrorText, readSmallTextFileSync } from "../files/read";
import path from "node:path";
import { resolveModuleNameOnDisk } from "../catalog/moduleName";
import { indexPythonSource, type PythonDef, type PythonSourceIndex } from "../catalog/pythonDefs";
import type { PathMapping } from "../runner/types";
import { hostPathOf } from "./sourcePaths";
import { DEBUG_TEXT } from "../l10n/debug";
import { translator, type Lang } from "../l10n/lang";

export type BreakpointLocation =
  /** `line` is the 1-based `def` line, where the breakpoint is shown. */
  | { kind: "function"; spec: string; line?: number }
  /** `line` is the 1-based first line of the statement the probe watches. */
  | { kind: "line"; spec: string; line?: number }
  | { kind: "error"; message: string };

export interface ResolveContext {
  sourceRoots: readonly string[];
  pathMappings: readonly PathMapping[];
  cwd?: string;
  command?: readonly string[];
  /** The language of the messages of breakpoints that cannot be placed (default English). */
  lang?: Lang;
}

/** `line` is 1-based. Reads the file as it is on disk. */
export function resolveBreakpointLocation(
  file: string,
  line: number,
  context: ResolveContext,
): BreakpointLocation {
  let text: string;
  try {
    text = readSmallTextFileSync(file, MAX_SOURCE_BYTES);
  } catch (error) {
    return {
      kind: "error",
      message: messages(context)("bp.cannotRead", { file, why: readErrorText(error) }),
    };
  }
  const index = indexPythonSource(text);
  const line0 = line - 1;
  const def = defHeaderAt(index, line0);
  if (def) return functionLocation(file, def, index, context);

  const statement = index.statementAt(line0);
  if (!statement) {
    return {
      kind: "error",
      message: messages(context)("bp.noCode", { line }),
    };
  }
  return lineLocation(file, statement.startLine + 1, context);
}

function messages(context: ResolveContext) {
  return translator(DEBUG_TEXT, context.lang ?? "en");
}

/** The function whose decorators, `def` line or signature cover `line0`. */
function defHeaderAt(index: PythonSourceIndex, line0: number): PythonDef | undefined {
  return index.defs.find((d) => d.kind === "function" && line0 >= d.startLine && line0 <= d.headerEndLine);
}

function functionLocation(
  file: string,
  def: PythonDef,
  index: PythonSourceIndex,
  context: ResolveContext,
): BreakpointLocation {
  if (def.qualname.includes("<locals>")) {
    return {
      kind: "error",
      message: messages(context)("bp.nested", { qualname: def.qualname }),
    };
  }
  if (isMainScript(file, context)) {
    // A script runs as __main__ and is never imported, so its functions cannot be hooked by
    // name; its first body line pauses at the same moment.
    const body = firstBodyLine(index, def);
    if (body === undefined)
      return { kind: "error", message: messages(context)("bp.noBody", { qualname: def.qualname }) };
    return lineLocation(file, body + 1, context);
  }
  const module = resolveModuleNameOnDisk(file, context.sourceRoots);
  if (module === undefined) {
    return {
      kind: "error",
      message: messages(context)("bp.noModule", { file }),
    };
  }
  return { kind: "function", spec: `${module}:${def.qualname}`, line: def.defLine + 1 };
}

function lineLocation(file: string, line: number, context: ResolveContext): BreakpointLocation {
  return { kind: "line", spec: `${hostPathOf(file, context.pathMappings)}:${line}`, line };
}

function firstBodyLine(index: PythonSourceIndex, def: PythonDef): number | undefined {
  for (let line = def.headerEndLine + 1; line <= def.endLine; line++) {
    if (index.statementAt(line)?.startLine === line) return line;
  }
  return undefined;
}

/** Whether `file` is the script the target command runs (`python script.py`). */
function isMainScript(file: string, context: ResolveContext): boolean {
  const script = context.command?.find((arg) => arg.endsWith(".py"));
  if (script === undefined) return false;
  return path.resolve(context.cwd ?? process.cwd(), script) === path.resolve(file);
}
