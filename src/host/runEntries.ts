// The entries of the run registry, without `vscode`: stored runs are listed from their meta.json
// alone, and their events.jsonl (hundreds of MB for a vLLM load) is parsed only when a view needs
// it; a run started in this window has its model from the start; a run another process writes is
// followed from its folder.
import { stat } from "node:fs/promises";
import type { LoadedRunEntry, RunEntry } from "./host";
import { RunModel } from "../model/runModel";
import { readErrorText } from "../files/read";
import type { ProtocolVersionError } from "../protocol/reader";
import { EventsFollower, readEventsFile } from "../runner/eventsFile";
import { eventsFileOf, listRuns, readRunMeta, type LoadOptions } from "../runner/store";
import type { RunHandle, RunMeta } from "../runner/types";

/** What reading a run's events found besides the events. */
export interface EventsReport {
  file: string;
  /** Lines that were not events (skipped). */
  malformed: number;
  /** Lines that repeated an earlier line (skipped). */
  duplicates: number;
  /** An unknown protocol version: the events before it are kept, nothing after it is read. */
  versionError?: ProtocolVersionError;
}

/**
 * Reads events.jsonl into a model as a stream (no copy of the whole text or of the event list).
 * A missing file is a run without events. Rejects with a message that names the file.
 */
export async function readEventsModel(file: string): Promise<{ model: RunModel; report: EventsReport }> {
  const model = new RunModel();
  try {
    const read = await readEventsFile(file, (event) => model.add(event), {
      onSample: (sample) => model.addSample(sample),
    });
    return {
      model,
      report: {
        file,
        malformed: read.malformedCount,
        duplicates: read.duplicates,
        versionError: read.versionError,
      },
    };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      return { model, report: { file, malformed: 0, duplicates: 0 } };
    }
    throw new Error(
      `Cannot read ${file}: it ${readErrorText(error)} Check that the file is readable, or delete the run.`,
    );
  }
}

/** A run of the runs folder: meta now, events on first loadModel(). */
export class StoredRunEntry implements RunEntry {
  private loaded: RunModel | undefined;
  private loading: Promise<RunModel> | undefined;

  constructor(
    readonly id: string,
    readonly dir: string,
    public meta: RunMeta,
    /** Size of events.jsonl when listed (0: none), to tell runs with events from runs that never started. */
    readonly eventsBytes: number,
    private readonly onReport?: (entry: StoredRunEntry, report: EventsReport) => void,
  ) {}

  get model(): RunModel | undefined {
    return this.loaded;
  }

  loadModel(): Promise<RunModel> {
    if (this.loaded) return Promise.resolve(this.loaded);
    this.loading ??= readEventsModel(eventsFileOf(this.dir)).then(
      ({ model, report }) => {
        this.loaded = model;
        this.loading = undefined;
        this.onReport?.(this, report);
        return model;
      },
      (error: unknown) => {
        // The next call tries again (the file may have been fixed or become readable).
        this.loading = undefined;
        throw error;
      },
    );
    return this.loading;
  }
}

/** A run started in this window: its model fills as events arrive. */
export function loadedRunEntry(fields: {
  id: string;
  dir: string;
  meta: RunMeta;
  model: RunModel;
  handle?: RunHandle;
}): LoadedRunEntry {
  const { model } = fields;
  return { ...fields, model, loadModel: () => Promise.resolve(model) };
}

/** Whether a run has anything to show, without loading it. */
export function hasEvents(entry: RunEntry): boolean {
  if (entry.model) return entry.model.eventCount > 0;
  return entry instanceof StoredRunEntry && entry.eventsBytes > 0;
}

/** Lists a runs folder, newest first, reading each run's meta.json and the size of its events. */
export async function listStoredRuns(
  runsDir: string,
  options: LoadOptions & { onReport?: (entry: StoredRunEntry, report: EventsReport) => void } = {},
): Promise<StoredRunEntry[]> {
  const summaries = await listRuns(runsDir, options);
  return Promise.all(
    summaries.map(async (summary) => {
      const bytes = await stat(eventsFileOf(summary.dir)).then(
        (s) => s.size,
        () => 0,
      );
      return new StoredRunEntry(summary.id, summary.dir, summary.meta, bytes, options.onReport);
    }),
  );
}

/**
 * The run the views show: the newest live one, else the one picked last, else the newest with
 * events (a run that never started, e.g. a bad python path, has nothing to show), else the newest.
 * `runs` is newest first.
 */
export function chooseCurrentRun(
  runs: readonly RunEntry[],
  selected: RunEntry | undefined,
  isLive: (entry: RunEntry) => boolean,
): RunEntry | undefined {
  return runs.find(isLive) ?? selected ?? runs.find(hasEvents) ?? runs[0];
}

/**
 * A run another process writes (a debug session's adapter), followed from its folder with the
 * reader the language server uses: the events as they are appended, the status as its meta.json
 * (the runner's) says.
 */
export class FollowedRunEntry implements LoadedRunEntry {
  readonly model = new RunModel();
  private readonly follower: EventsFollower;
  private reading: Promise<boolean> = Promise.resolve(false);

  constructor(
    readonly id: string,
    readonly dir: string,
    public meta: RunMeta,
  ) {
    this.follower = new EventsFollower(eventsFileOf(dir));
  }

  loadModel(): Promise<RunModel> {
    return Promise.resolve(this.model);
  }

  /**
   * Reads the events appended since the last read, and meta.json; `ended`: the writer is done, so
   * the last line counts and a meta.json still "running" is checked against its process. Reads
   * queue up, never overlap. Resolves whether anything changed.
   */
  refresh(ended = false): Promise<boolean> {
    const read = () => this.readOnce(ended);
    this.reading = this.reading.then(read, read);
    return this.reading;
  }

  private async readOnce(ended: boolean): Promise<boolean> {
    const events = this.model.eventCount;
    const status = this.meta.status;
    try {
      await this.follower.read(
        (event) => this.model.add(event),
        ended,
        (sample) => this.model.addSample(sample),
      );
    } catch (error) {
      // The runner creates events.jsonl with the first event.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    this.meta = await readRunMeta(this.dir, { isLive: () => !ended });
    return this.model.eventCount !== events || this.meta.status !== status;
  }
}
