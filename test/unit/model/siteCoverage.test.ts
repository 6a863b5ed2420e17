// How many of a target's calls its allocation sites add up: the probe records sites for the first
// `sites_calls` calls of each target per process, so a run of gpt-oss-20b's 24 layer conversions
// has sites for 2 of them. The events are read through the protocol's reader, as a run's are.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { RunModel } from "../../../src/model/runModel";
import { isPartialCoverage, siteCoverage, siteTotals } from "../../../src/model/sites";
import type { ProbeEvent } from "../../../src/protocol/events";
import { parseEventsText } from "../../../src/protocol/reader";
import { COPY_BYTES, sitesCallsRunText, type TargetCalls } from "./sitesCallsRun";

const REPO = path.resolve(__dirname, "..", "..", "..");

function read(text: string): ProbeEvent[] {
  const parsed = parseEventsText(text);
  assert.deepEqual(parsed.malformed, []);
  assert.equal(parsed.duplicates, 0);
  return parsed.events;
}

function modelOf(targets: TargetCalls[]): RunModel {
  return RunModel.fromEvents(read(sitesCallsRunText(targets)));
}

void test("24 calls, sites for the first 2 (the plan's sites_calls): 2 of 24, limited", () => {
  const events = read(
    sitesCallsRunText([{ target: "vllm.marlin.prepare_moe_fp4", pid: 300, calls: 24, sitesCalls: 2 }]),
  );
  // What the run holds: 24 exits, 2 sites events, one note.
  assert.equal(events.filter((e) => e.type === "exit").length, 24);
  assert.equal(events.filter((e) => e.type === "sites").length, 2);
  assert.equal(events.filter((e) => e.type === "note" && e.kind === "sites_limited").length, 1);
  const model = RunModel.fromEvents(events);
  const [coverage, ...rest] = siteCoverage(model);
  assert.deepEqual(rest, []);
  assert.deepEqual(coverage, {
    target: "vllm.marlin.prepare_moe_fp4",
    recordedCalls: 2,
    calls: 24,
    limited: true,
  });
  assert.equal(isPartialCoverage(coverage), true);
  // The call count is the run model's own.
  assert.equal(model.summary("vllm.marlin.prepare_moe_fp4")!.calls, 24);
  // The site totals add up the 2 recorded calls only, and say so in `calls`.
  const [site] = siteTotals(model.sites);
  assert.equal(site!.calls, 2);
  assert.equal(site!.allocatedBytes, 2 * 8 * COPY_BYTES);
});

void test("every call recorded: as many calls with sites as calls, not limited, not partial", () => {
  const coverage = siteCoverage(modelOf([{ target: "vllm.marlin.prepare_moe_fp4", pid: 300, calls: 3 }]));
  assert.deepEqual(coverage, [
    { target: "vllm.marlin.prepare_moe_fp4", recordedCalls: 3, calls: 3, limited: false },
  ]);
  assert.equal(isPartialCoverage(coverage[0]!), false);
  // A limit the target never reached sends no note and covers every call.
  const under = siteCoverage(modelOf([{ target: "t1", pid: 300, calls: 2, sitesCalls: 2 }]));
  assert.deepEqual(under, [{ target: "t1", recordedCalls: 2, calls: 2, limited: false }]);
});

void test("calls are told apart by process and scope: two ranks reusing scope ids count twice", () => {
  const coverage = siteCoverage(
    modelOf([
      { target: "t1", pid: 300, calls: 24, sitesCalls: 2 },
      { target: "t1", pid: 301, calls: 24, sitesCalls: 2 },
      { target: "t2", pid: 300, calls: 4 },
    ]),
  );
  assert.deepEqual(coverage, [
    { target: "t1", recordedCalls: 4, calls: 48, limited: true },
    { target: "t2", recordedCalls: 4, calls: 4, limited: false },
  ]);
});

void test("a call still running has no sites yet: it is not counted against them", () => {
  const coverage = siteCoverage(modelOf([{ target: "t1", pid: 300, calls: 2, open: 1 }]));
  assert.deepEqual(coverage, [{ target: "t1", recordedCalls: 2, calls: 2, limited: false }]);
  assert.equal(isPartialCoverage(coverage[0]!), false);
});

void test("the sites fixture (two ranks, nested targets, an OOM): every call recorded", () => {
  const model = RunModel.fromEvents(
    read(readFileSync(path.join(REPO, "test/fixtures/events/sites_oom.jsonl"), "utf8")),
  );
  assert.deepEqual(siteCoverage(model), [
    { target: "t5", recordedCalls: 8, calls: 8, limited: false },
    { target: "t1", recordedCalls: 4, calls: 4, limited: false },
  ]);
});

void test("a run without sites events has no coverage; the notes are kept by the run model", () => {
  const events = read(sitesCallsRunText([{ target: "t1", pid: 300, calls: 5, sitesCalls: 1 }])).filter(
    (e) => e.type !== "sites",
  );
  const model = RunModel.fromEvents(events);
  assert.deepEqual(siteCoverage(model), []);
  assert.deepEqual(
    model.notes.map((n) => [n.kind, n.target]),
    [["sites_limited", "t1"]],
  );
});
