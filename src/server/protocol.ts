// MemLens's own LSP messages, shared by the language server and its client (src/server/client.ts).
// Each message is one typed constant; both sides import it from here and nowhere else.
import { NotificationType, RequestType } from "vscode-languageserver-protocol";
import type { PathMapping } from "../runner/types";

/** Sent once in `initialize`. */
export interface MemlensInitializationOptions {
  /** Folders whose layout gives Python module names (setting, else the workspace folders). */
  sourceRoots: string[];
  /** Whether the workspace is trusted: untrusted lenses say why they will not run. */
  trusted: boolean;
  /** The editor's UI language (vscode.env.language, e.g. "zh-cn"): lens, hover and diagnostic text. */
  locale?: string;
}

export interface MemlensConfig {
  sourceRoots: string[];
}

/** One target of the run's plan, as the extension knows it. */
export interface RunTargetInfo {
  /** Plan id (`target` in events). */
  id: string;
  /** `module:qualname` or `/abs/file.py:line`, as in the plan. */
  spec: string;
  kind: "function" | "line";
  /** The user picked it (not a catalog hotspot). Derived from the catalog when absent. */
  adHoc?: boolean;
  /** Catalog id when it came from the catalog. */
  hotspot?: string;
}

/**
 * A run the server shows from its folder (the one record of a run): it reads events.jsonl, and
 * meta.json or plan.json for the targets. The same run again reads only what was appended, so a
 * run going on is followed by sending it again.
 */
export interface RunPayload {
  id: string;
  label?: string;
  dir: string;
  /** The plan's targets; when absent, taken from the run folder's meta.json or plan.json. */
  targets?: RunTargetInfo[];
  /** Applied to file paths in the events (remote prefix → local folder). */
  pathMappings?: PathMapping[];
}

export interface SetRunParams {
  /** null clears the run: lenses go back to "Measure here". */
  run: RunPayload | null;
}

export interface SetRunResult {
  runId: string | null;
  events: number;
  targets: number;
  calls: number;
  /** Lines of events.jsonl that were not events (counted, not fatal). */
  malformed: number;
  /** Why the run could not be read (unreadable folder, unknown protocol version). */
  error?: string;
}

export interface SetTrustParams {
  trusted: boolean;
}

/** 0-based, as in LSP. */
export interface Position0 {
  line: number;
  character: number;
}

export interface ResolveQualnameParams {
  uri: string;
  position: Position0;
  /** function: the innermost function around the position; line: the statement at it. Default: function if inside one, else line. */
  want?: "function" | "line";
}

export type ResolveQualnameResult =
  | {
      ok: true;
      kind: "function" | "line";
      /** Python module of the document (undefined for a file outside any package or root). */
      module: string | undefined;
      /** Function qualname (kind function), or the enclosing function's (kind line), if any. */
      qualname: string | undefined;
      /** 1-based, as Python counts: the def line, or the first line of the statement. */
      line: number;
      /** Absolute path of the document. */
      file: string;
      /** The plan spec: `module:qualname` or `/abs/file.py:line`. */
      spec: string;
      /** Catalog id when the function is a known hotspot. */
      hotspot?: string;
    }
  | { ok: false; reason: string };

/** Arguments of the `memlens.measureHere` command a lens carries. */
export interface MeasureHereArgs {
  uri: string;
  qualname: string;
  module: string;
  /** 1-based def line. */
  line: number;
  hotspot?: string;
}

export const SetRunRequest = new RequestType<SetRunParams, SetRunResult, void>("memlens/setRun");
export const SetTrustNotification = new NotificationType<SetTrustParams>("memlens/setTrust");
export const SetConfigNotification = new NotificationType<MemlensConfig>("memlens/setConfig");
export const ResolveQualnameRequest = new RequestType<ResolveQualnameParams, ResolveQualnameResult, void>(
  "memlens/resolveQualname",
);

/** Commands a lens runs; the extension registers `memlens.*`, VS Code owns the trust editor. */
export const MEASURE_HERE_COMMAND = "memlens.measureHere";
export const OPEN_PANEL_COMMAND = "memlens.openPanel";
export const MANAGE_TRUST_COMMAND = "workbench.trust.manage";
/** Opens an allocator snapshot pickle (argument: its path) in the memory panel. */
export const OPEN_ALLOCATOR_SNAPSHOT_COMMAND = "memlens.openAllocatorSnapshot";
