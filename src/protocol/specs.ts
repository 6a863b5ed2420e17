// Target specs as the probe's plan takes them (PROTOCOL.md): `module:qualname` for a function,
// `/abs/file.py:LINE` for a line. The catalog's data and every reader of a plan use this syntax.

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
