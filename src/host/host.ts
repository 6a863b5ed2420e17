// What src/extension.ts hands to each feature's register function (panel, debug, checklist,
// remote). Features depend on this interface, not on each other.
import type * as vscode from "vscode";
import type { RunModel } from "../model/runModel";
import type { RunMeta, RunRequest, RunHandle } from "../runner/types";
import type { MemlensSettings } from "../settings/settings";
import type { ResolvedBudget } from "./budget";

export interface RunEntry {
  id: string;
  dir: string;
  meta: RunMeta;
  /**
   * The run's events, once in memory: always for a run started in this window; for a stored run
   * after loadModel() (the registry loads the current run's itself and fires onDidChange then).
   */
  readonly model: RunModel | undefined;
  /** Reads events.jsonl once (later calls share it); rejects with a message naming the file. */
  loadModel(): Promise<RunModel>;
  /** Present while the run is going. */
  handle?: RunHandle;
}

/** A run whose events are in memory: one going in this window, or a stored one after loadModel(). */
export type LoadedRunEntry = RunEntry & { readonly model: RunModel };

export interface RunRegistry {
  list(): RunEntry[];
  get(id: string): RunEntry | undefined;
  /**
   * The run the views show: the live one, else the one the user picked last, else the newest
   * with events. Its model may still be loading: onDidChange fires with it once loaded.
   */
  current(): RunEntry | undefined;
  /** Whether a run is going on in this window (started here, or a debug session's followed here). */
  isLive(entry: RunEntry): boolean;
  select(id: string): void;
  /**
   * Reads a run's events if they are not in memory yet (once, however many ask); fires
   * onDidChange with it when they were read. Never rejects: a failure goes to the output and
   * resolves undefined.
   */
  load(entry: RunEntry): Promise<RunModel | undefined>;
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
  /** The memlens.* settings, resolved: the run description, source roots, runs folder, target card. */
  settings(): MemlensSettings;
  /** memlens.model resolved to a checkpoint (once per settings and trust), with the target card. */
  budget(): Promise<ResolvedBudget>;
  /** Starts a run through the runner (local, ssh or wrapper), stores it and registers it. */
  startRun(request: Omit<RunRequest, "runsDir">): Promise<RunEntry>;
  /** Absolute path of the probe zipapp shipped in the extension. */
  readonly probePath: string;
}
