// The run store: one folder per run under a runs folder, holding meta.json, plan.json and
// events.jsonl (plus stderr.log and any payload files). Folder names are run ids, which sort by time.
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { Plan } from "../protocol/events";
import { parseEventsText, type MalformedLine, type ProtocolVersionError } from "../protocol/reader";
import type { ProbeEvent } from "../protocol/events";
import type { RunMeta } from "./types";

export const META_FILE = "meta.json";
export const PLAN_FILE = "plan.json";
export const EVENTS_FILE = "events.jsonl";
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

/** Writes a file whole or not at all (temporary name, fsync, rename), so readers never see half. */
export function writeFileAtomicSync(file: string, text: string): void {
  const temporary = `${file}.tmp-${process.pid}-${randomBytes(3).toString("hex")}`;
  const fd = openSync(temporary, "w");
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, file);
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
  malformed: MalformedLine[];
  versionError?: ProtocolVersionError;
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

/** Reads meta.json; a run whose process is gone while its meta says "running" becomes "interrupted". */
async function readMeta(dir: string, id: string, options: LoadOptions): Promise<RunMeta> {
  const file = path.join(dir, META_FILE);
  let meta: RunMeta;
  try {
    meta = JSON.parse(await fs.readFile(file, "utf8")) as RunMeta;
  } catch (error) {
    return {
      id,
      label: id,
      started: "",
      host: null,
      command: [],
      status: "failed",
      error: `${file} is missing or not valid JSON (${(error as Error).message}); the run's events, if any, are still shown.`,
    };
  }
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

/** One run with its plan and events (a torn last line from a crash counts as malformed, nothing more). */
export async function loadRun(dir: string, options: LoadOptions = {}): Promise<StoredRun> {
  const id = path.basename(dir);
  const meta = await readMeta(dir, id, options);
  let plan: Plan | undefined;
  try {
    plan = JSON.parse(await fs.readFile(path.join(dir, PLAN_FILE), "utf8")) as Plan;
  } catch {
    plan = undefined;
  }
  let text = "";
  try {
    text = await fs.readFile(path.join(dir, EVENTS_FILE), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const parsed = parseEventsText(text);
  return {
    id,
    dir,
    meta,
    plan,
    events: parsed.events,
    malformed: parsed.malformed,
    versionError: parsed.versionError,
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
