// What the server knows about one open Python document: its file, its module and its
// definitions, recomputed when the text (or the source roots) change.
import { fileURLToPath } from "node:url";
import { normalizePath, resolveModuleNameOnDisk } from "../catalog/moduleName";
import { indexPythonSource, type PythonSourceIndex } from "../catalog/pythonDefs";

export interface DocumentAnalysis {
  uri: string;
  version: number;
  /** Absolute path with forward slashes; undefined for untitled buffers. */
  path: string | undefined;
  module: string | undefined;
  index: PythonSourceIndex;
}

export function pathOfUri(uri: string): string | undefined {
  if (!uri.startsWith("file:")) return undefined;
  try {
    return normalizePath(fileURLToPath(uri));
  } catch {
    return undefined;
  }
}

export function analyzeDocument(
  uri: string,
  version: number,
  text: string,
  sourceRoots: readonly string[],
): DocumentAnalysis {
  const path = pathOfUri(uri);
  return {
    uri,
    version,
    path,
    module: path === undefined ? undefined : resolveModuleNameOnDisk(path, sourceRoots),
    index: indexPythonSource(text),
  };
}

/** Caches analyses by document version; config changes clear it. */
export class AnalysisCache {
  private readonly entries = new Map<string, DocumentAnalysis>();

  constructor(private sourceRoots: readonly string[]) {}

  get(uri: string, version: number, text: () => string): DocumentAnalysis {
    const cached = this.entries.get(uri);
    if (cached && cached.version === version) return cached;
    const fresh = analyzeDocument(uri, version, text(), this.sourceRoots);
    this.entries.set(uri, fresh);
    return fresh;
  }

  forget(uri: string): void {
    this.entries.delete(uri);
  }

  setSourceRoots(roots: readonly string[]): void {
    this.sourceRoots = roots;
    this.entries.clear();
  }
}
