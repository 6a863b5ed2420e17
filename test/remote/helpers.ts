// Shared by the runner tests (test/remote, test/unit/runner): the real probe built from
// python-probe/, the workload fixture, temporary folders, and waiting on conditions without sleeps
// of fixed length.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { ProbeEvent } from "../../src/protocol/events";
import type { RunHandle } from "../../src/runner/types";

export const REPO = path.resolve(__dirname, "..", "..");
export const FIXTURES = path.join(__dirname, "fixtures");
export const WORKLOAD = path.join(FIXTURES, "run_workload.py");
export const FAKE_DOCKER = path.join(__dirname, "fake-docker-exec.sh");
export const LOADER = path.join(REPO, "media", "loader", "load_model.py");

const createdDirs: string[] = [];
// Removed when the test process ends; MEMLENS_KEEP_TEST_DIRS=1 keeps them for a look.
process.once("exit", () => {
  if (process.env.MEMLENS_KEEP_TEST_DIRS) return;
  for (const dir of createdDirs) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `memlens-${prefix}-`));
  createdDirs.push(dir);
  return dir;
}

let builtProbe: string | undefined;

/** Builds the real probe zipapp from python-probe/ once per test process. */
export function probeZipapp(): string {
  if (!builtProbe) {
    const out = path.join(tempDir("probe"), "memlens_probe.pyz");
    execFileSync("python3", [path.join(REPO, "python-probe", "build_zipapp.py"), out], { stdio: "pipe" });
    builtProbe = out;
  }
  return builtProbe;
}

/** Resolves when `check` returns a value other than undefined, polling; rejects after timeoutMs. */
export async function waitUntil<T>(what: string, check: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** waitUntil for checks that are themselves asynchronous. */
export async function waitUntilAsync<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Resolves with the first event of the run that matches, rejects if the run ends first. */
export function nextEvent<T extends ProbeEvent>(
  handle: RunHandle,
  match: (event: ProbeEvent) => event is T,
  timeoutMs = 60_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = handle.onEvent((event) => {
      if (match(event)) {
        clearTimeout(timer);
        off();
        resolve(event);
      }
    });
    void handle.done.then((outcome) => {
      clearTimeout(timer);
      off();
      reject(
        new Error(
          `the run ended (${outcome.meta.status}: ${outcome.meta.error ?? ""}) before the event came`,
        ),
      );
    });
  });
}

export function collectEvents(handle: RunHandle): ProbeEvent[] {
  const events: ProbeEvent[] = [];
  handle.onEvent((event) => events.push(event));
  return events;
}

/** Whether a process still runs here (a zombie, dead but not yet reaped, counts as gone). */
export function pidAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state !== "Z" && state !== "X";
}
