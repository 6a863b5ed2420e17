// The registry of runs the views show: stored runs listed from the runs folder, runs started or
// followed in this window, which one is current, and change events (throttled while a run goes).
import * as vscode from "vscode";
import type { RunEntry, RunRegistry } from "./host";
import type { RunModel } from "../model/runModel";
import { chooseCurrentRun } from "./runEntries";

/** How often views hear about new events of a live run (a load emits thousands per second). */
const CHANGE_THROTTLE_MS = 250;

function startedTime(entry: RunEntry): number {
  const t = Date.parse(entry.meta.started);
  return Number.isNaN(t) ? 0 : t;
}

export class RunRegistryImpl implements RunRegistry, vscode.Disposable {
  private readonly entries = new Map<string, RunEntry>();
  /** Runs registered in this window (live or finished here), not loaded from the store. */
  private readonly addedHere = new Set<string>();
  private selectedId: string | undefined;
  /** Runs whose events could not be read when they became current: not retried on every change. */
  private readonly failedLoads = new Set<string>();
  private readonly loading = new Map<RunEntry, Promise<RunModel | undefined>>();
  private readonly emitter = new vscode.EventEmitter<RunEntry | undefined>();
  private throttleTimer: NodeJS.Timeout | undefined;
  private throttledEntry: RunEntry | undefined;
  readonly onDidChange = this.emitter.event;

  /** `log`: where failures to read a run's events go (the output channel). */
  constructor(private readonly log: (line: string) => void = () => undefined) {}

  list(): RunEntry[] {
    return [...this.entries.values()].sort((a, b) => startedTime(b) - startedTime(a));
  }

  get(id: string): RunEntry | undefined {
    return this.entries.get(id);
  }

  current(): RunEntry | undefined {
    const selected = this.selectedId === undefined ? undefined : this.entries.get(this.selectedId);
    return chooseCurrentRun(this.list(), selected, (e) => this.isLive(e));
  }

  /** See RunRegistry.load: a run that cannot be read is reported once and shows no deltas. */
  load(entry: RunEntry): Promise<RunModel | undefined> {
    if (entry.model) return Promise.resolve(entry.model);
    let loading = this.loading.get(entry);
    if (!loading) {
      loading = entry.loadModel().then(
        (model) => {
          this.loading.delete(entry);
          this.failedLoads.delete(entry.id);
          if (this.entries.get(entry.id) === entry) this.fireNow(entry);
          return model;
        },
        (error: unknown) => {
          this.loading.delete(entry);
          this.failedLoads.add(entry.id);
          this.log(`[runs] ${error instanceof Error ? error.message : String(error)}`);
          return undefined;
        },
      );
      this.loading.set(entry, loading);
    }
    return loading;
  }

  /** The current run's events are always wanted (lenses, status bar, panel, checklist). */
  private loadCurrent(): void {
    const current = this.current();
    if (current && !current.model && !this.failedLoads.has(current.id)) void this.load(current);
  }

  /** A run going on in this window: started here ("Measure here") or followed (a debug session). */
  isLive(entry: RunEntry): boolean {
    return this.addedHere.has(entry.id) && entry.meta.status === "running";
  }

  /**
   * The runs going now, newest first: started in this window ("Measure here" or a debug session).
   * A stored run whose meta says "running" belongs to another window, or to one that crashed.
   */
  live(): RunEntry[] {
    return this.list().filter((e) => this.isLive(e));
  }

  select(id: string): void {
    if (!this.entries.has(id)) return;
    this.selectedId = id;
    this.fireNow(this.entries.get(id));
  }

  add(entry: RunEntry): void {
    this.entries.set(entry.id, entry);
    this.addedHere.add(entry.id);
    this.fireNow(entry);
  }

  /**
   * Replaces all stored (not live) runs, e.g. after the runs folder changed. A run listed again
   * with the same meta keeps its entry, and so its events if they were read.
   */
  replaceStored(stored: RunEntry[]): void {
    const before = new Map(this.entries);
    for (const id of before.keys()) if (!this.addedHere.has(id)) this.entries.delete(id);
    for (const entry of stored) {
      if (this.entries.has(entry.id)) continue;
      const kept = before.get(entry.id);
      const same = kept !== undefined && JSON.stringify(kept.meta) === JSON.stringify(entry.meta);
      this.entries.set(entry.id, same ? kept : entry);
      if (!same) this.failedLoads.delete(entry.id);
    }
    this.fireNow(undefined);
  }

  remove(id: string): void {
    if (!this.entries.delete(id)) return;
    this.addedHere.delete(id);
    if (this.selectedId === id) this.selectedId = undefined;
    this.fireNow(undefined);
  }

  /** A live run got events: views hear of it at most every CHANGE_THROTTLE_MS. */
  changed(entry: RunEntry): void {
    this.throttledEntry = entry;
    this.throttleTimer ??= setTimeout(() => {
      this.throttleTimer = undefined;
      const pending = this.throttledEntry;
      this.throttledEntry = undefined;
      this.emitter.fire(pending);
      this.loadCurrent();
    }, CHANGE_THROTTLE_MS);
  }

  fireNow(entry: RunEntry | undefined): void {
    if (this.throttleTimer) {
      clearTimeout(this.throttleTimer);
      this.throttleTimer = undefined;
      this.throttledEntry = undefined;
    }
    this.emitter.fire(entry);
    this.loadCurrent();
  }

  dispose(): void {
    if (this.throttleTimer) clearTimeout(this.throttleTimer);
    for (const entry of this.entries.values()) {
      // Closing VS Code must never leave a target holding GPU memory.
      if (entry.handle && entry.meta.status === "running") void entry.handle.stop();
    }
    this.emitter.dispose();
  }
}
