// The run store: one folder per run under a runs folder, holding meta.json, plan.json and
// events.jsonl (plus stderr.log and any payload files). Folder names are run ids, which sort by time.
import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { z } from "zod/v4";
import { FileReadError, parseJson, readErrorText, readSmallTextFile } from "../files/read";
import type { Plan } from "../protocol/events";
import type { MalformedLine, ReadReport } from "../protocol/reader";
import type { ProbeEvent } from "../protocol/events";
import { readEventsFile } from "./eventsFile";
import type { RunMeta } from "./types";

export const META_FILE = "meta.json";
export const PLAN_FILE = "plan.json";
export const EVENTS_FILE = "events.jsonl";
/** A shipped or archived run may keep its events compressed; readers take either. */
export const EVENTS_GZ_FILE = "events.jsonl.gz";

/** The run's events file: events.jsonl, else events.jsonl.gz where only that exists. */
export function eventsFileOf(dir: string): string {
  const plain = path.join(dir, EVENTS_FILE);
  const gz = path.join(dir, EVENTS_GZ_FILE);
  return !existsSync(plain) && existsSync(gz) ? gz : plain;
}
export const STDERR_FILE = "stderr.log";

/** "20251126-193301-123-a1b2c3": UTC time to the millisecond, then 6 random hex digits. */
export function newRunId(now: Date = new Date()): string {
  const iso = now.toISOString(); // 2025-11-26T19:33:01.123Z
  const stamp = `${iso.slice(0, 10).replaceAll("-", "")}-${iso.slice(11, 19).replaceAll(":", "")}-${iso.slice(20, 23)}`;
  return `${stamp}-${randomBytes(3).toString("hex")}`;
}

const RUN_ID = /^\d{8}-\d{6}-\d{3}-[0-9a-f]{6}$/;

export function isRunId(name: string): boolean {
  return RUN_ID.test(name);
}

/**
 * Writes a file whole or not at all (temporary name, fsync, rename), so readers never see half.
 * When that fails (a full disk) the temporary file is removed and the old file is left as it was.
 */
export function writeFileAtomicSync(file: string, text: string): void {
  const temporary = `${file}.tmp-${process.pid}-${randomBytes(3).toString("hex")}`;
  const fd = openSync(temporary, "w");
  try {
    try {
      const bytes = Buffer.from(text, "utf8");
      // writeSync may write less than asked (a disk filling up) without an error.
      for (let done = 0; done < bytes.length; ) {
        const written = writeSync(fd, bytes, done);
        if (written <= 0) throw new Error(`${temporary}: the file system took no more bytes`);
        done += written;
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, file);
  } catch (error) {
    try {
      unlinkSync(temporary);
    } catch {
      // Gone already, or the folder itself is gone.
    }
    throw error;
  }
}

export function writeMetaSync(runDir: string, meta: RunMeta): void {
  writeFileAtomicSync(path.join(runDir, META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
}

export interface RunSummary {
  id: string;
  dir: string;
  meta: RunMeta;
}

export interface StoredRun extends RunSummary {
  plan: Plan | undefined;
  events: ProbeEvent[];
  /** The first malformed lines, for messages; malformedCount counts them all. */
  malformed: MalformedLine[];
  malformedCount: number;
  /** Lines skipped as repeats of an earlier line (see EventStreamReader). */
  duplicates: number;
  versionError?: ReadReport["versionError"];
}

export interface LoadOptions {
  /** Runs this session is still running (their "running" status is true). */
  isLive?: (id: string) => boolean;
  /** Whether a local pid still exists; process.kill(pid, 0) by default. */
  pidAlive?: (pid: number) => boolean;
}

/** Whether a local process exists; on Linux a zombie (exited, never reaped) counts as gone. */
function defaultPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.charAt(stat.lastIndexOf(")") + 2);
    return state !== "Z" && state !== "X";
  } catch {
    return true;
  }
}

/** meta.json is written by MemLens, but small and whole: more than this is not one. */
const MAX_META_BYTES = 4 * 1024 * 1024;
/** plan.json: a plan of thousands of targets stays far below this. */
const MAX_PLAN_BYTES = 64 * 1024 * 1024;

const optionalString = z.string().optional().catch(undefined);
const optionalNumber = z.number().optional().catch(undefined);
const nullableNumber = z.number().nullable().optional().catch(undefined);
/**
 * A run record as read back: a field of the wrong type (a hand-edited or damaged file) is dropped
 * or given its default, so one bad field does not take the run, or the list of runs, with it.
 */
const metaSchema = z.looseObject({
  id: optionalString,
  label: optionalString,
  started: z.string().catch(""),
  finished: optionalString,
  host: z.string().nullable().catch(null),
  command: z.array(z.string()).catch([]),
  status: z.enum(["running", "finished", "failed", "stopped", "interrupted"]).catch("failed"),
  exitCode: nullableNumber,
  signal: z.string().nullable().optional().catch(undefined),
  targets: z
    .array(
      z.looseObject({
        id: z.string(),
        spec: z.string(),
        hotspot: z.string().optional(),
        file: z.string().optional(),
        line: z.number().optional(),
      }),
    )
    .optional()
    .catch(undefined),
  error: optionalString,
  wrapper: z.array(z.string()).optional().catch(undefined),
  pid: optionalNumber,
  emulation: z
    .object({ gpuGiB: z.number(), deviceBytes: z.number(), gpuMemoryUtilization: z.number().optional() })
    .optional()
    .catch(undefined),
  hostRunDir: optionalString,
  stderrTail: z.array(z.string()).optional().catch(undefined),
  malformedLines: optionalNumber,
  duplicateLines: optionalNumber,
  unwrittenEvents: optionalNumber,
  recordError: optionalString,
});

/** A run record from meta.json's text, or why it is not one (never quoting the text). */
export function parseRunMeta(text: string, id: string): { meta: RunMeta } | { reason: string } {
  const parsed = parseJson(text);
  if (!parsed.ok) return { reason: parsed.reason };
  if (typeof parsed.value !== "object" || parsed.value === null || Array.isArray(parsed.value)) {
    return { reason: "not a JSON object" };
  }
  const checked = metaSchema.safeParse(parsed.value);
  if (!checked.success) return { reason: "not a run record" };
  const meta = checked.data;
  return { meta: { ...meta, id: meta.id ?? id, label: meta.label ?? meta.id ?? id } as RunMeta };
}

/** meta.json's run record, or a failed one that says what is wrong with the file. */
async function readMetaFile(dir: string, id: string): Promise<RunMeta> {
  const file = path.join(dir, META_FILE);
  let problem: string;
  try {
    const read = parseRunMeta(await readSmallTextFile(file, MAX_META_BYTES), id);
    if ("meta" in read) return read.meta;
    problem = `is ${read.reason}`;
  } catch (error) {
    problem = readErrorText(error).replace(/\.$/, "");
  }
  return {
    id,
    label: id,
    started: "",
    host: null,
    command: [],
    status: "failed",
    error: `${file} ${problem}; the run's events, if any, are still shown.`,
  };
}

/** Reads meta.json; a run whose process is gone while its meta says "running" becomes "interrupted". */
async function readMeta(dir: string, id: string, options: LoadOptions): Promise<RunMeta> {
  let meta = await readMetaFile(dir, id);
  if (meta.status === "running" && !(options.isLive?.(id) ?? false)) {
    const alive = options.pidAlive ?? defaultPidAlive;
    if (meta.pid === undefined || !alive(meta.pid)) {
      meta = {
        ...meta,
        status: "interrupted",
        error:
          meta.error ??
          "MemLens stopped before this run ended (window closed, crash or reboot); the events up to that moment are kept.",
      };
      try {
        writeMetaSync(dir, meta);
      } catch {
        // A read-only runs folder still loads; the status is corrected in memory.
      }
    }
  }
  return meta;
}

/** A run folder's meta.json as listRuns reads it (a dead "running" run is "interrupted"). */
export function readRunMeta(dir: string, options: LoadOptions = {}): Promise<RunMeta> {
  return readMeta(dir, path.basename(dir), options);
}

/** Runs in a folder, newest first. Folders that are not run folders are skipped. */
export async function listRuns(runsDir: string, options: LoadOptions = {}): Promise<RunSummary[]> {
  let names: string[];
  try {
    names = await fs.readdir(runsDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const ids = names.filter(isRunId).sort().reverse();
  return Promise.all(
    ids.map(async (id) => {
      const dir = path.join(runsDir, id);
      return { id, dir, meta: await readMeta(dir, id, options) };
    }),
  );
}

export interface LoadRunOptions extends LoadOptions {
  /** Each event as it is read; when given, `events` of the result stays empty (a large run is not held twice). */
  onEvent?: (event: ProbeEvent) => void;
}

/** One run with its plan and events (a torn last line from a crash counts as malformed, nothing more). */
export async function loadRun(dir: string, options: LoadRunOptions = {}): Promise<StoredRun> {
  const id = path.basename(dir);
  const meta = await readMeta(dir, id, options);
  let plan: Plan | undefined;
  try {
    const parsed = parseJson(await readSmallTextFile(path.join(dir, PLAN_FILE), MAX_PLAN_BYTES));
    const value = parsed.ok ? (parsed.value as { targets?: unknown } | null) : null;
    plan =
      typeof value === "object" && value !== null && Array.isArray(value.targets)
        ? (value as Plan)
        : undefined;
  } catch {
    plan = undefined;
  }
  const events: ProbeEvent[] = [];
  let report: ReadReport = { malformed: [], malformedCount: 0, duplicates: 0 };
  try {
    report = await readEventsFile(eventsFileOf(dir), options.onEvent ?? ((event) => events.push(event)));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") throw new FileReadError(path.join(dir, EVENTS_FILE), readErrorText(error), code);
  }
  return {
    id,
    dir,
    meta,
    plan,
    events,
    malformed: report.malformed,
    malformedCount: report.malformedCount,
    duplicates: report.duplicates,
    versionError: report.versionError,
  };
}

/** Deletes a run folder; refuses anything that is not a run folder directly inside runsDir. */
export async function deleteRun(runsDir: string, id: string, options: LoadOptions = {}): Promise<void> {
  if (!isRunId(id))
    throw new Error(`"${id}" is not a run id (expected like 20251126-193301-123-a1b2c3); nothing deleted.`);
  const dir = path.join(runsDir, id);
  if (!existsSync(dir)) throw new Error(`There is no run ${id} in ${runsDir}; nothing deleted.`);
  const meta = await readMeta(dir, id, options);
  if (meta.status === "running") {
    throw new Error(`Run ${id} is still running; stop it before deleting it.`);
  }
  await fs.rm(dir, { recursive: true, force: true });
}
