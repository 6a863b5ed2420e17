// The probe's recorded example streams (python-probe/examples, also checked on the Python side
// by tests/test_examples.py) must read cleanly here: the two sides share one contract.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseEventsText } from "../../../src/protocol/reader";
import { callDelta, RunModel } from "../../../src/model/runModel";

const EXAMPLES = path.resolve(__dirname, "../../../python-probe/examples");
const files = readdirSync(EXAMPLES).filter((f) => f.endsWith(".jsonl"));

function load(name: string): RunModel {
  const { events, malformed, versionError } = parseEventsText(
    readFileSync(path.join(EXAMPLES, name), "utf8"),
  );
  assert.equal(versionError, undefined);
  assert.deepEqual(malformed, [], `${name}: every line is a protocol v1 event`);
  return RunModel.fromEvents(events);
}

test("the probe ships example streams", () => {
  assert.ok(files.length >= 5, `found ${files.join(", ")}`);
});

for (const name of files) {
  test(`${name}: parses without malformed lines, ends with an end event, closes its scopes`, () => {
    const model = load(name);
    assert.ok(model.end, "a run ends with an end event");
    assert.ok(model.processes.size >= 1);
    for (const call of model.calls.filter((c) => !c.open)) {
      const d = callDelta(call);
      assert.notEqual(d.retained, undefined, `${call.target} call ${call.call} has a retained delta`);
    }
  });
}

test("gpu-nested.jsonl: exact allocator deltas and peaks, nested under their parents", () => {
  const model = load("gpu-nested.jsonl");
  const MiB = 1024 * 1024;
  // The figures VALIDATION.md gives for this run: each inner call keeps 2 MiB (peak +6 MiB), the
  // middle scope +4 MiB (peak +24 MiB), the outer +12 MiB (peak +64 MiB).
  const expected: Record<string, [number, number, number]> = {
    nested_inner: [2, 4 * MiB, 6 * MiB],
    nested_middle: [1, 4 * MiB, 24 * MiB],
    nested_outer: [1, 12 * MiB, 64 * MiB],
  };
  for (const [target, [calls, retained, peak]] of Object.entries(expected)) {
    const s = model.summary(target)!;
    assert.equal(s.source, "allocated");
    assert.deepEqual([s.calls, s.retained, s.peakAboveBeforeMax], [calls, retained, peak], target);
  }
  for (const call of model.calls) {
    if (call.parent === null) continue;
    const parent = model.scope(call.pid, call.parent);
    assert.ok(parent, `parent ${call.parent} of ${call.scopeId} is in the run`);
    assert.equal(call.depth, parent.depth + 1);
  }
});

test("multiprocess.jsonl: spawn and fork children are separate processes of one run", () => {
  const model = load("multiprocess.jsonl");
  const origins = new Set([...model.processes.values()].map((p) => p.origin));
  for (const origin of ["main", "spawn", "fork"] as const)
    assert.ok(origins.has(origin), `has a ${origin} process`);
});

test("crash-oom.jsonl: the oom event lands on its scope and the exits carry the exception", () => {
  const model = load("crash-oom.jsonl");
  assert.equal(model.ooms.length, 1);
  const withOom = model.calls.filter((c) => c.oom);
  assert.equal(withOom.length, 1);
  assert.ok(model.calls.filter((c) => c.raised).length >= 3);
  assert.ok(model.factsOf("cuda_oom").length >= 1);
});
