// What src/extension.ts hands to each feature's register function (panel, debug, checklist,
// remote). Features depend on this interface, not on each other.
import type * as vscode from "vscode";
import type { RunModel } from "./model/runModel";
import type { RunDescription, RunMeta, RunRequest, RunHandle } from "./runner/types";

export interface RunEntry {
  id: string;
  dir: string;
  meta: RunMeta;
  model: RunModel;
  /** Present while the run is going. */
  handle?: RunHandle;
}

export interface RunRegistry {
  list(): RunEntry[];
  get(id: string): RunEntry | undefined;
  /** The run the views show: the live one, else the one the user picked last, else the newest. */
  current(): RunEntry | undefined;
  select(id: string): void;
  /** Registers a run started elsewhere (a debug session's run) so the views follow it. */
  add(entry: RunEntry): void;
  /** A run got events: views hear of it (throttled). */
  changed(entry: RunEntry): void;
  /** Fires when a run is added, removed, selected, or gets events (throttled). */
  readonly onDidChange: vscode.Event<RunEntry | undefined>;
}

export interface MemlensHost {
  readonly context: vscode.ExtensionContext;
  readonly runs: RunRegistry;
  readonly output: vscode.OutputChannel;
  /** Run description from settings (memlens.*), for "Measure here" and as launch.json defaults. */
  runDescription(): RunDescription;
  /** Where runs are stored (memlens.runsDirectory, else the workspace's .memlens/runs). */
  runsDirectory(): string;
  /** Starts a run through the runner (local, ssh or wrapper), stores it and registers it. */
  startRun(request: Omit<RunRequest, "runsDir">): Promise<RunEntry>;
  /** Absolute path of the probe zipapp shipped in the extension. */
  readonly probePath: string;
}
