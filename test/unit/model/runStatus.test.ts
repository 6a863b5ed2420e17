import assert from "node:assert/strict";
import { test } from "node:test";
import { endedStatus, shownStatus } from "../../../src/model/runStatus";
import type { EndEvent } from "../../../src/protocol/events";

const end = (fields: Partial<EndEvent>): EndEvent => ({
  v: 1,
  type: "end",
  ts: 1,
  pid: 1,
  rank: null,
  device: null,
  exit_code: 0,
  signal: null,
  duration_ns: 1,
  stopped: false,
  counts: {},
  ...fields,
});

test("how a run ended: stopped, failed (a signal, an exit code, a failure the runner saw), else finished", () => {
  assert.equal(endedStatus({ end: end({}) }), "finished");
  assert.equal(endedStatus({ end: end({ stopped: true, signal: "SIGTERM" }) }), "stopped");
  assert.equal(endedStatus({ end: end({ exit_code: 1 }) }), "failed");
  assert.equal(endedStatus({ end: end({ exit_code: null, signal: "SIGKILL" }) }), "failed");
  assert.equal(endedStatus({ stopRequested: true }), "stopped");
  assert.equal(endedStatus({ failure: "the launcher died" }), "failed");
  assert.equal(endedStatus({}), "finished");
  assert.equal(
    endedStatus({ stopRequested: true, streamRefused: true }),
    "failed",
    "MemLens stopped a stream it cannot read: failed",
  );
});

test("a view shows the recorded status, or the end event's while meta.json still says running", () => {
  assert.equal(shownStatus("running", undefined), "running");
  assert.equal(shownStatus("running", end({ exit_code: 2 })), "failed");
  assert.equal(shownStatus("running", end({})), "finished");
  assert.equal(shownStatus("interrupted", end({})), "interrupted");
});
