// Processes as threads (named as multiprocessing names them): a spawn child and its parent pause independently; a
// crash of one while the other is paused ends the session; Terminate ends the whole tree.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import type { DebugProtocol } from "@vscode/debugprotocol";
import {
  fixture,
  launchArgs,
  launchWithBreakpoints,
  lineOf,
  processGone,
  stackOf,
  startAdapter,
  suiteRunsFolder,
  type Session,
  type StoppedEvent,
} from "./support";

const WORK = fixture("steps", "work.py");

const runs = suiteRunsFolder("processes");

/** Waits for `count` stops, one per process, and names each by its innermost frame. */
async function stopsByFrame(session: Session, count: number): Promise<Map<string, StoppedEvent>> {
  const stops = new Map<string, StoppedEvent>();
  while (stops.size < count) {
    const stopped = await session.events.next<StoppedEvent>("stopped");
    const [top] = await stackOf(session, stopped.body.threadId!);
    stops.set(top!.name, stopped);
  }
  return stops;
}

/** The launcher's pid, from the run folder's meta.json (written by the runner). */
async function launcherPid(session: Session): Promise<number> {
  const run = await session.events.next<DebugProtocol.Event>("memlens/run");
  const meta = JSON.parse(
    readFileSync(path.join((run.body as { dir: string }).dir, "meta.json"), "utf8"),
  ) as { pid: number };
  return meta.pid;
}

void test("each process of the target is a thread that stops and continues on its own", async () => {
  const session = await startAdapter();
  try {
    await launchWithBreakpoints(session, launchArgs("spawn_child.py", runs.dir), {
      [WORK]: [lineOf(WORK, "def child_main"), lineOf(WORK, "def parent_work")],
    });
    const stops = await stopsByFrame(session, 2);
    const child = stops.get("child_main · entry")!;
    const parent = stops.get("parent_work · entry")!;
    assert.ok(child && parent, [...stops.keys()].join());
    assert.notEqual(child.body.threadId, parent.body.threadId);

    const threads = (await session.client.threadsRequest()).body.threads;
    const names = new Map(threads.map((t) => [t.id, t.name]));
    assert.equal(names.get(parent.body.threadId!), `pid ${parent.body.threadId} · main (spawn_child.py)`);
    assert.equal(names.get(child.body.threadId!), `pid ${child.body.threadId} · StepsChild`);
    const started = session.events.all("thread").map((e) => (e as DebugProtocol.ThreadEvent).body);
    assert.ok(started.some((t) => t.reason === "started" && t.threadId === child.body.threadId));

    // Continuing the parent leaves the child paused.
    const continued = await session.client.continueRequest({ threadId: parent.body.threadId! });
    assert.equal(continued.body.allThreadsContinued, false);
    const parentExit = await session.events.next<StoppedEvent>("stopped");
    assert.equal(parentExit.body.threadId, parent.body.threadId, "only the parent ran on");
    assert.equal((await stackOf(session, child.body.threadId!))[0]?.name, "child_main · entry");

    await session.client.continueRequest({ threadId: parentExit.body.threadId! });
    await session.client.continueRequest({ threadId: child.body.threadId! });
    const childExit = await session.events.next<StoppedEvent>("stopped");
    assert.equal(childExit.body.threadId, child.body.threadId);
    await session.client.continueRequest({ threadId: child.body.threadId! });

    const exited = await session.events.next<DebugProtocol.ExitedEvent>("exited");
    assert.equal(exited.body.exitCode, 0);
    await session.events.next("terminated");
    const gone = session.events
      .all("thread")
      .filter((e) => (e as DebugProtocol.ThreadEvent).body.reason === "exited");
    assert.ok(gone.length >= 2, "both processes reported their exit");
  } finally {
    await session.client.stop();
  }
});

void test("a process that crashes while another is paused ends the session without hanging", async () => {
  const session = await startAdapter();
  try {
    const launcher = launcherPid(session);
    await launchWithBreakpoints(session, launchArgs("crash_while_paused.py", runs.dir), {
      [WORK]: [lineOf(WORK, "def child_main"), lineOf(WORK, "def crash")],
    });
    const stops = await stopsByFrame(session, 2);
    const child = stops.get("child_main · entry")!;
    const main = stops.get("crash · entry")!;
    assert.ok(child && main, [...stops.keys()].join());

    // The main process aborts (SIGABRT) while the child sits paused at its breakpoint.
    await session.client.continueRequest({ threadId: main.body.threadId! });
    const exited = await session.events.next<DebugProtocol.ExitedEvent>("exited");
    assert.equal(exited.body.exitCode, 134, "128 + SIGABRT: the main process's own end");
    await session.events.next("terminated");
    assert.match(session.events.output(), /main process aborting/);
    const pids = { child: child.body.threadId!, main: main.body.threadId!, launcher: await launcher };
    for (const [role, pid] of Object.entries(pids)) {
      assert.ok(processGone(pid), `${role} (pid ${pid}) is gone`);
    }
  } finally {
    await session.client.stop();
  }
});

void test("Terminate ends the whole process tree", async () => {
  const session = await startAdapter();
  try {
    const launcher = launcherPid(session);
    await launchWithBreakpoints(session, launchArgs("spawn_child.py", runs.dir), {
      [WORK]: [lineOf(WORK, "def child_main"), lineOf(WORK, "def parent_work")],
    });
    const stops = await stopsByFrame(session, 2);
    const pids = [...stops.values()].map((s) => s.body.threadId!);
    pids.push(await launcher);
    assert.ok(
      pids.every((pid) => !processGone(pid)),
      "all alive while paused",
    );

    await session.client.terminateRequest();
    await session.events.next("terminated");
    for (const pid of pids) assert.ok(processGone(pid), `pid ${pid} is gone after Terminate`);
  } finally {
    await session.client.stop();
  }
});
