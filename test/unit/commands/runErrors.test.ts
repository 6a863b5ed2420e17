import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import {
  describeRunFailure,
  describeStartError,
  describeUnresolvedProbes,
  lastStderrLines,
} from "../../../src/commands/runErrors";
import { RunModel } from "../../../src/model/runModel";
import { parseEventsText } from "../../../src/protocol/reader";
import { RunnerError } from "../../../src/runner/errors";
import type { RunDescription, RunMeta } from "../../../src/runner/types";

const EXAMPLES = path.resolve(__dirname, "../../../python-probe/examples");

/** A real recorded stream of the probe's launcher. */
function example(name: string): RunModel {
  const { events, malformed } = parseEventsText(readFileSync(path.join(EXAMPLES, name), "utf8"));
  assert.equal(malformed.length, 0);
  return RunModel.fromEvents(events);
}

function metaOf(model: RunModel, status: RunMeta["status"]): RunMeta {
  return {
    id: "20261126-120000-000-abcdef",
    label: "test",
    started: "2026-11-26T12:00:00.000Z",
    host: null,
    command: model.start?.argv ?? [],
    status,
    exitCode: model.end?.exit_code ?? null,
    signal: model.end?.signal ?? null,
  };
}

const local: RunDescription = { python: "python3" };

test("a target that exits non-zero: the exit code and the target's last stderr lines", () => {
  const model = example("crash-oom.jsonl");
  const failure = describeRunFailure(metaOf(model, "failed"), model, local, []);
  assert.ok(failure);
  assert.match(failure.message, /exited with code 1\./);
  // The traceback's last line is the error itself, and it is quoted.
  const lastStderr = model.logs.filter((l) => l.stream === "stderr").pop()!.line;
  assert.ok(failure.message.includes(lastStderr.trim()), failure.message);
  assert.ok(
    failure.details.length > 3,
    "the output channel gets more of the traceback than the notification",
  );
});

test("a target killed by a signal says which", () => {
  const model = example("killed.jsonl");
  const failure = describeRunFailure(metaOf(model, "failed"), model, local, []);
  assert.match(failure?.message ?? "", /killed by SIGKILL/);
});

test("clean runs and runs the user stopped are not failures", () => {
  const basic = example("basic.jsonl");
  assert.equal(describeRunFailure(metaOf(basic, "finished"), basic, local, []), undefined);
  const killed = example("killed.jsonl");
  assert.equal(describeRunFailure(metaOf(killed, "stopped"), killed, local, []), undefined);
});

test("a python that cannot be started names the path and the setting", () => {
  const enoent = Object.assign(new Error("spawn /nonexistent/python3 ENOENT"), { code: "ENOENT" });
  const failure = describeStartError(enoent, { python: "/nonexistent/python3", host: "gpu1" });
  assert.match(failure.message, /"\/nonexistent\/python3" on gpu1 was not found/);
  assert.match(failure.message, /memlens\.python/);
});

test("the runner's own errors keep their place, step and advice, with their stderr in the details", () => {
  const error = new RunnerError(
    "auth-refused",
    "authenticate",
    "host gpu1",
    "authentication refused by gpu1.",
    ["Permission denied (publickey)."],
  );
  const failure = describeStartError(error, { python: "python3", host: "gpu1" });
  assert.equal(
    failure.message,
    "MemLens could not start the run: host gpu1, authenticate: authentication refused by gpu1.",
  );
  assert.deepEqual(failure.details.slice(1), ["Permission denied (publickey)."]);
});

test("stderr lines: the target's, then probe errors, then the launcher's, newest last", () => {
  const model = example("crash-oom.jsonl");
  const lines = lastStderrLines(model, ["launcher: bye", ""], 2);
  assert.equal(lines.length, 2);
  assert.equal(lines[1], "launcher: bye");
});

test("probes that resolved nowhere are named with the probe's reason; resolved ones are not", () => {
  const common = { v: 1, rank: null, device: null } as const;
  const model = RunModel.fromEvents([
    { ...common, type: "target_resolved", ts: 1, pid: 5, target: "t1", kind: "function", spec: "a.b:f" },
    {
      ...common,
      type: "target_not_found",
      ts: 2,
      pid: 5,
      target: "t2",
      spec: "vllm.x:g",
      reason: "module vllm.x was never imported",
    },
    // Resolved in one process, not found in another: it measured something, so no warning.
    { ...common, type: "target_resolved", ts: 3, pid: 6, target: "t3", kind: "line", spec: "/s.py:3" },
    {
      ...common,
      type: "target_not_found",
      ts: 4,
      pid: 5,
      target: "t3",
      spec: "/s.py:3",
      reason: "never ran",
    },
  ]);
  assert.equal(
    describeUnresolvedProbes(model),
    "MemLens: 1 probe measured nothing in this run — vllm.x:g: module vllm.x was never imported",
  );
  assert.equal(describeUnresolvedProbes(RunModel.fromEvents([])), undefined);
  assert.equal(describeUnresolvedProbes(undefined), undefined);
});
