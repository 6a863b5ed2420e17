// Python module names from file paths: what `import` would call the file, so a definition in
// the editor can be matched to `module:qualname` in the catalog and in probe plans.
import { existsSync } from "node:fs";
import * as path from "node:path";

const INSTALL_DIRS = ["site-packages", "dist-packages"];
const PY_EXTENSIONS = [".py", ".pyi", ".pyw"];

/** Forward slashes, no trailing slash (so POSIX and Windows paths compare the same way). */
export function normalizePath(p: string): string {
  const forward = p.replace(/\\/g, "/");
  return forward.length > 1 && forward.endsWith("/") ? forward.replace(/\/+$/, "") : forward;
}

function stripPyExtension(file: string): string | undefined {
  const ext = PY_EXTENSIONS.find((e) => file.endsWith(e));
  return ext ? file.slice(0, -ext.length) : undefined;
}

/** `vllm/x/y.py` → `vllm.x.y`; `pkg/__init__.py` → `pkg`. Undefined for non-Python paths. */
export function moduleNameFromRelativePath(relativePath: string): string | undefined {
  const parts = normalizePath(relativePath)
    .split("/")
    .filter((p) => p !== "" && p !== ".");
  const last = parts.pop();
  if (last === undefined || parts.includes("..")) return undefined;
  const stem = stripPyExtension(last);
  if (stem === undefined) return undefined;
  if (stem !== "__init__") parts.push(stem);
  if (parts.length === 0) return undefined;
  return parts.join(".");
}

/** `…/site-packages/vllm/x.py` → `vllm.x` (the last site- or dist-packages wins). */
export function moduleNameInInstallDir(filePath: string): string | undefined {
  const parts = normalizePath(filePath).split("/");
  for (let i = parts.length - 2; i >= 0; i--) {
    if (INSTALL_DIRS.includes(parts[i]!)) return moduleNameFromRelativePath(parts.slice(i + 1).join("/"));
  }
  return undefined;
}

/** Relative to the deepest source root that contains the file. */
export function moduleNameFromSourceRoots(
  filePath: string,
  sourceRoots: readonly string[],
): string | undefined {
  const file = normalizePath(filePath);
  let best: string | undefined;
  for (const rootRaw of sourceRoots) {
    const root = normalizePath(rootRaw);
    if (root === "" || !file.startsWith(root === "/" ? "/" : `${root}/`)) continue;
    if (best === undefined || root.length > best.length) best = root;
  }
  if (best === undefined) return undefined;
  return moduleNameFromRelativePath(file.slice(best === "/" ? 1 : best.length + 1));
}

/**
 * Walks up from the file while the folder is a package (has `__init__.py`); the module name
 * is the path below the first folder that is not. Undefined when the file's own folder is
 * not a package (a script, or a namespace package: source roots decide those).
 */
export function moduleNameFromPackages(
  filePath: string,
  isFile: (candidate: string) => boolean,
): string | undefined {
  const file = normalizePath(filePath);
  const stem = stripPyExtension(path.posix.basename(file));
  if (stem === undefined) return undefined;
  const packages: string[] = [];
  let dir = path.posix.dirname(file);
  while (isFile(`${dir}/__init__.py`)) {
    packages.unshift(path.posix.basename(dir));
    const parent = path.posix.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  if (packages.length === 0) return undefined;
  return stem === "__init__" ? packages.join(".") : [...packages, stem].join(".");
}

export interface ModuleNameOptions {
  /** Folders whose layout gives module names (memlens.sourceRoots, else the workspace folders). */
  sourceRoots: readonly string[];
  /** Whether a file exists (injected so the rules stay testable without a file system). */
  isFile: (candidate: string) => boolean;
}

/**
 * The module name of a Python file: installed packages by their place under site-packages,
 * regular packages by walking up `__init__.py` files, anything else relative to the deepest
 * source root that holds it, and a file outside every root by its own name.
 */
export function resolveModuleName(filePath: string, options: ModuleNameOptions): string | undefined {
  return (
    moduleNameInInstallDir(filePath) ??
    moduleNameFromPackages(filePath, options.isFile) ??
    moduleNameFromSourceRoots(filePath, options.sourceRoots) ??
    moduleNameFromRelativePath(path.posix.basename(normalizePath(filePath)))
  );
}

/** resolveModuleName against the real file system. */
export function resolveModuleNameOnDisk(
  filePath: string,
  sourceRoots: readonly string[],
): string | undefined {
  return resolveModuleName(filePath, { sourceRoots, isFile: (p) => existsSync(p) });
}
