// Breakpoints in Python files as pause targets: def lines pause at the function's entry, other
// lines at that line; what cannot resolve is unverified with the probe's reason.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { DebugProtocol } from "@vscode/debugprotocol";
import {
  bytesIn,
  fixture,
  launchArgs,
  launchWithBreakpoints,
  lineOf,
  stackOf,
  startAdapter,
  suiteRunsFolder,
  variablesOf,
  type Session,
  type StoppedEvent,
} from "./support";

const MiB = 1024 * 1024;
const BUFFER_BYTES = 64 * MiB;
const WORK = fixture("steps", "work.py");
const UNUSED = fixture("steps", "unused.py");
const DEF_LINE = lineOf(WORK, "def fill_buffer");
const BODY_LINE = lineOf(WORK, "size = len(buffer)");

const runs = suiteRunsFolder("breakpoints");

type BreakpointEvent = DebugProtocol.BreakpointEvent;

/** The next stop, with its innermost frame. */
async function nextStop(session: Session) {
  return stopDetails(session, await session.events.next<StoppedEvent>("stopped"));
}

async function stopDetails(session: Session, stopped: StoppedEvent) {
  const frames = await stackOf(session, stopped.body.threadId!);
  return { stopped, frames, top: frames[0]! };
}

void test("a def-line breakpoint stops at the function's entry, a body-line one at that line, with readings", async () => {
  const session = await startAdapter();
  try {
    const set = await launchWithBreakpoints(session, launchArgs("run_steps.py", runs.dir), {
      [WORK]: [DEF_LINE, BODY_LINE],
    });
    const [defBp, lineBp] = set.get(WORK)!;
    assert.deepEqual([defBp?.line, lineBp?.line], [DEF_LINE, BODY_LINE]);
    assert.equal(defBp?.verified, false, "not verified before the target has imported the module");
    assert.match(defBp?.message ?? "", /^Pending/);

    const entry = await nextStop(session);
    assert.equal(entry.stopped.body.reason, "breakpoint");
    assert.deepEqual(entry.stopped.body.hitBreakpointIds, [defBp.id]);
    assert.equal(entry.top.source?.path, WORK);
    assert.equal(entry.top.line, DEF_LINE);
    assert.equal(entry.top.name, "fill_buffer · entry");
    const verified = session.events.all("breakpoint").map((e) => (e as BreakpointEvent).body.breakpoint);
    assert.ok(
      verified.some((bp) => bp.id === defBp.id && bp.verified && bp.line === DEF_LINE),
      "the def breakpoint was verified once the probe resolved it",
    );

    await session.client.continueRequest({ threadId: entry.stopped.body.threadId! });
    const line = await nextStop(session);
    assert.equal(line.stopped.body.reason, "breakpoint");
    assert.deepEqual(line.stopped.body.hitBreakpointIds, [lineBp!.id]);
    assert.deepEqual(
      line.frames.map((f) => [f.name, f.line]),
      [
        [`work.py:${BODY_LINE} · entry`, BODY_LINE],
        ["fill_buffer", DEF_LINE],
      ],
    );
    // The line runs after the buffer was filled: the enclosing function's scope holds it.
    const outer = await variablesOf(session, line.frames[1]!.id);
    const grown = bytesIn(outer.get("Since scope entry")!.get("host_rss")!.value);
    assert.ok(grown >= BUFFER_BYTES, `fill_buffer grew host_rss by ${grown} >= ${BUFFER_BYTES}`);
    assert.equal(outer.has("Peak in scope"), false, "the probe tracks the peak of the innermost scope only");

    // Run to the end: the line's exit and the function's exit pause too.
    const stops: string[] = [];
    let threadId = line.stopped.body.threadId!;
    for (;;) {
      await session.client.continueRequest({ threadId });
      const event = await session.events.next(["stopped", "terminated"]);
      if (event.event === "terminated") break;
      const next = await stopDetails(session, event as StoppedEvent);
      stops.push(next.top.name);
      threadId = next.stopped.body.threadId!;
      if (next.top.name === "fill_buffer · exit") {
        // The buffer died with the frame; the sampled peak of the scope still shows it.
        const atExit = await variablesOf(session, next.top.id);
        const now = bytesIn(atExit.get("Now")!.get("host_rss")!.value);
        const atEntry = now - bytesIn(atExit.get("Since scope entry")!.get("host_rss")!.value);
        const peak = bytesIn(atExit.get("Peak in scope")!.get("host_rss")!.value);
        assert.ok(peak - atEntry >= BUFFER_BYTES, `peak ${peak} - entry ${atEntry} >= ${BUFFER_BYTES}`);
      }
    }
    assert.deepEqual(stops, [`work.py:${BODY_LINE} · exit`, "fill_buffer · exit"]);
    assert.match(session.events.output(), new RegExp(`filled ${BUFFER_BYTES} bytes`));
  } finally {
    await session.client.stop();
  }
});

void test("breakpoints that cannot resolve are unverified with the reason", async () => {
  const session = await startAdapter();
  try {
    const blankLine = lineOf(WORK, "BUFFER_BYTES = ") + 1;
    const set = await launchWithBreakpoints(
      session,
      launchArgs("run_steps.py", runs.dir),
      { [UNUSED]: [lineOf(UNUSED, "def never_called")], [WORK]: [blankLine] },
      ["steps.work:no_such_function", "not a name"],
    );
    const blank = set.get(WORK)![0]!;
    assert.equal(blank.verified, false);
    assert.match(blank.message ?? "", new RegExp(`Line ${blankLine} has no code`));

    const neverImported = set.get(UNUSED)![0]!;
    const reported = await session.events.next<BreakpointEvent>(
      "breakpoint",
      (e) => e.body.breakpoint.id === neverImported.id,
    );
    assert.equal(reported.body.breakpoint.verified, false);
    assert.match(reported.body.breakpoint.message ?? "", /steps\.unused.*never imported/);

    const missingFunction = await session.events.next<BreakpointEvent>("breakpoint", (e) =>
      /no attribute/.test(e.body.breakpoint.message ?? ""),
    );
    assert.equal(missingFunction.body.breakpoint.verified, false);
    assert.match(missingFunction.body.breakpoint.message ?? "", /no_such_function/);

    await session.events.next("terminated");
    assert.equal(session.events.all("stopped").length, 0, "nothing resolvable, nothing paused");
  } finally {
    await session.client.stop();
  }
});

void test("breakpoints set while paused: targets in the plan pause at once, new ones wait for the next run", async () => {
  const session = await startAdapter();
  try {
    await launchWithBreakpoints(
      session,
      launchArgs("run_steps.py", runs.dir, { probes: [`${WORK}:${BODY_LINE}`] }),
      { [WORK]: [DEF_LINE] },
    );
    const entry = await nextStop(session);
    assert.equal(entry.top.name, "fill_buffer · entry");

    // The body line is measured already (probes): it becomes a pause target; the def line is removed.
    const moved = await session.client.setBreakpointsRequest({
      source: { path: WORK },
      breakpoints: [{ line: BODY_LINE }],
    });
    const bodyBp = moved.body.breakpoints[0]!;
    // A line resolves when its code starts running, which fill_buffer's body has not yet.
    assert.equal(bodyBp.verified, false);
    assert.match(bodyBp.message ?? "", /^Pending/);
    const later = await session.client.setBreakpointsRequest({
      source: { path: UNUSED },
      breakpoints: [{ line: lineOf(UNUSED, "def never_called") }],
    });
    assert.equal(later.body.breakpoints[0]?.verified, false);
    assert.match(later.body.breakpoints[0]?.message ?? "", /takes effect next run/);

    await session.client.continueRequest({ threadId: entry.stopped.body.threadId! });
    const line = await nextStop(session);
    assert.equal(line.top.name, `work.py:${BODY_LINE} · entry`);
    assert.deepEqual(line.stopped.body.hitBreakpointIds, [bodyBp.id]);
    const verified = await session.events.next<BreakpointEvent>(
      "breakpoint",
      (e) => e.body.breakpoint.id === bodyBp.id,
    );
    assert.equal(verified.body.breakpoint.verified, true);
    await session.client.continueRequest({ threadId: line.stopped.body.threadId! });
    const lineExit = await nextStop(session);
    assert.equal(lineExit.top.name, `work.py:${BODY_LINE} · exit`);
    // The def breakpoint is gone, so fill_buffer's exit no longer pauses.
    await session.client.continueRequest({ threadId: lineExit.stopped.body.threadId! });
    await session.events.next("terminated");
    assert.equal(session.events.all("stopped").length, 3);
  } finally {
    await session.client.stop();
  }
});
