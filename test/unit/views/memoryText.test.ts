import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { latestReadings } from "../../../src/model/readings";
import { latestMemory, memoryText } from "../../../src/views/memoryText";
import { formatBytes } from "../../../src/model/format";
import { RunModel } from "../../../src/model/runModel";
import { parseEventsText } from "../../../src/protocol/reader";

const EXAMPLES = path.resolve(__dirname, "../../../python-probe/examples");

function example(name: string): RunModel {
  return RunModel.fromEvents(parseEventsText(readFileSync(path.join(EXAMPLES, name), "utf8")).events);
}

test("device memory is shown when the target uses CUDA, named as cudaMemGetInfo's", () => {
  const text = memoryText({
    device_used: 12.5 * 1024 ** 3,
    device_total: 79.2 * 1024 ** 3,
    host_rss: 1024 ** 3,
  });
  assert.equal(text?.short, "device 12.5 GiB / 79.2 GiB");
  assert.match(text?.source ?? "", /cudaMemGetInfo/);
});

test("without CUDA the reading is host RSS, and says so", () => {
  const text = memoryText({ host_rss: 512 * 1024 ** 2 });
  assert.equal(text?.short, "host RSS 512.0 MiB");
  assert.match(text?.source ?? "", /VmRSS/);
  assert.equal(memoryText({}), undefined);
  assert.equal(memoryText(undefined), undefined);
});

test("the latest reading of a recorded GPU run is its last sample's device figure", () => {
  const model = example("gpu-nested.jsonl");
  const readings = latestReadings(model);
  const lastSample = [...model.samples.values()]
    .flat()
    .sort((a, b) => a.ts - b.ts)
    .pop();
  assert.deepEqual(readings, lastSample?.readings);
  assert.match(memoryText(readings)?.short ?? "", /^device /);
});

test("with sampling off, the last scope event stands in", () => {
  const model = example("killed.jsonl");
  assert.equal(model.samples.size, 0);
  const last = model.calls[model.calls.length - 1]!;
  assert.deepEqual(latestReadings(model), last.after ?? last.before);
});

test("device memory from scope events when samples carry only host readings", () => {
  // Samples of host RSS only, while the probed scopes read device memory.
  const events = parseEventsText(readFileSync(path.join(EXAMPLES, "gpu-nested.jsonl"), "utf8")).events.map(
    (e) => (e.type === "sample" ? { ...e, readings: { host_rss: e.readings.host_rss ?? 1 } } : e),
  );
  const model = RunModel.fromEvents(events);
  const lastDevice = [...model.calls].reverse().find((c) => c.after?.device_used !== undefined)!.after!
    .device_used!;
  const memory = latestMemory(model);
  assert.match(memory?.short ?? "", /^device /);
  assert.ok(memory?.short.startsWith(`device ${formatBytes(lastDevice)}`), memory?.short);
  assert.match(memory?.source ?? "", /last probed scope boundary/);
  // With device figures in the samples, the sample is the source.
  assert.doesNotMatch(latestMemory(example("gpu-nested.jsonl"))?.source ?? "", /scope boundary/);
});

test("a CPU-only run shows host RSS", () => {
  assert.match(latestMemory(example("basic.jsonl"))?.short ?? "", /^host RSS /);
});

test("host RSS of a run with several processes is their sum, over the processes still running", () => {
  // The recorded multiprocess run (no samples of its own) with two processes sampled, before they end.
  const recorded = parseEventsText(readFileSync(path.join(EXAMPLES, "multiprocess.jsonl"), "utf8")).events;
  assert.equal(recorded.filter((e) => e.type === "sample").length, 0);
  const [first, second] = [...RunModel.fromEvents(recorded).processes.keys()];
  const sample = (pid: number, ts: number, mib: number) =>
    ({
      v: 1,
      type: "sample",
      ts,
      pid,
      rank: null,
      device: null,
      readings: { host_rss: mib * 1024 ** 2 },
    }) as const;
  const running = recorded.filter((e) => e.type !== "bye" && e.type !== "end");
  const both = RunModel.fromEvents([...running, sample(first!, 1, 1), sample(second!, 2, 2)]);
  assert.equal(latestMemory(both)?.short, "host RSS 3.0 MiB (2 processes)");
  assert.match(latestMemory(both)?.source ?? "", /summed/);
  const bye = { v: 1, type: "bye", ts: 3, pid: second!, rank: null, device: null, exitcode: 0 } as const;
  assert.equal(
    latestMemory(RunModel.fromEvents([...running, sample(first!, 1, 1), sample(second!, 2, 2), bye]))?.short,
    "host RSS 1.0 MiB",
  );
});
