// The reader's fast path for sample lines (src/protocol/fastLine.ts) against the full path
// (JSON.parse, then the schema): the same real files read both ways give the same run model —
// every scope, delta, peak, fact and sample — and the same report of bad lines, line by line.
import assert from "node:assert/strict";
import { readdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { callDelta, RunModel } from "../../../src/model/runModel";
import { newSampleScan, scanSampleLine } from "../../../src/protocol/fastLine";
import { EventStreamReader, parseEventLine } from "../../../src/protocol/reader";
import type { ProbeEvent } from "../../../src/protocol/events";
import { readEventsFile } from "../../../src/runner/eventsFile";
import { tempDir } from "../../remote/helpers";

const REPO = path.resolve(__dirname, "../../..");

/** Every events file the project ships: the demo runs (plain and gzip), the probe's examples, the fixtures. */
function shippedEventFiles(): string[] {
  const out: string[] = [];
  const demo = path.join(REPO, "media/demo/runs");
  for (const run of readdirSync(demo, { withFileTypes: true })) {
    if (!run.isDirectory()) continue;
    for (const name of ["events.jsonl", "events.jsonl.gz"]) {
      if (readdirSync(path.join(demo, run.name)).includes(name)) out.push(path.join(demo, run.name, name));
    }
  }
  for (const dir of ["python-probe/examples", "test/fixtures/events"]) {
    for (const name of readdirSync(path.join(REPO, dir))) {
      if (name.endsWith(".jsonl")) out.push(path.join(REPO, dir, name));
    }
  }
  return out;
}

/** Everything the views derive from a model, as plain data (undefined fields dropped, as JSON does). */
function derived(model: RunModel): unknown {
  const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value ?? null)) as unknown;
  return plain({
    eventCount: model.eventCount,
    firstTs: model.firstTs,
    lastTs: model.lastTs,
    start: model.start,
    end: model.end,
    processes: [...model.processes.values()],
    targets: [...model.targets.values()].map((t) => ({
      ...t,
      resolved: [...t.resolved.entries()],
      notFound: [...t.notFound.entries()],
    })),
    calls: model.calls.map((c) => ({ ...c, delta: callDelta(c) })),
    summaries: model.summaries(),
    facts: model.facts,
    logs: model.logs,
    ooms: model.ooms,
    errors: model.errors,
    samples: [...model.samples.entries()],
    latest: model.latestReadings(),
  });
}

async function readModel(file: string, fastPath: boolean, asObjects = false) {
  const model = new RunModel();
  let scanned = 0;
  const report = await readEventsFile(file, (e) => model.add(e), {
    fastPath,
    onSample: asObjects
      ? undefined
      : (s) => {
          scanned++;
          model.addSample(s);
        },
  });
  return { model, report, scanned };
}

async function assertSameBothWays(file: string): Promise<{ model: RunModel; scanned: number }> {
  const full = await readModel(file, false);
  const fast = await readModel(file, true);
  const objects = await readModel(file, true, true);
  const name = path.relative(REPO, file);
  assert.deepEqual(derived(fast.model), derived(full.model), `${name}: the fast path's model`);
  assert.deepEqual(derived(objects.model), derived(full.model), `${name}: the fast path's sample objects`);
  assert.deepEqual(fast.report, full.report, `${name}: the report of bad and repeated lines`);
  assert.equal(full.scanned, 0, `${name}: the full path scans nothing`);
  return fast;
}

void test("every shipped events file (demo runs, probe examples, fixtures) reads the same with and without the fast path", async () => {
  const files = shippedEventFiles();
  assert.ok(files.some((f) => f.endsWith(".jsonl.gz")) && files.length >= 10, files.join(", "));
  let scopes = 0;
  let samples = 0;
  let scanned = 0;
  for (const file of files) {
    const fast = await assertSameBothWays(file);
    scopes += fast.model.calls.length;
    for (const columns of fast.model.sampleColumns.values()) samples += columns.length;
    scanned += fast.scanned;
  }
  // The comparison covered real scopes and samples, not empty models, and the probe's sample
  // lines took the fast path.
  assert.ok(scopes > 10_000, `${scopes} scopes`);
  assert.ok(samples > 1_000, `${samples} samples`);
  // (A line cut by the edge of a read goes the text path, to join its start.)
  assert.ok(scanned > samples * 0.99, `${scanned} of ${samples} samples read by the scan`);
});

const sampleLine = (fields: Record<string, unknown>): string =>
  JSON.stringify({
    v: 1,
    type: "sample",
    ts: 1_796_037_110_443_612_000,
    pid: 7,
    rank: 0,
    device: 0,
    ...fields,
  });

/** Sample lines the fast scan must read as JSON.parse does, or leave to the full path. */
const VALID_SAMPLES = [
  sampleLine({ readings: { allocated: 1, reserved: 2, device_used: 3, host_rss: 4 } }),
  sampleLine({ readings: {} }),
  sampleLine({ rank: null, device: null, readings: { host_rss: 1, host_hwm: 2 } }),
  `{"v":1,"type":"sample","ts":5,"pid":7,"readings":{"allocated":0}}`,
  `{"readings":{"requested":9,"non_torch":8,"process_used":7,"device_total":6},"pid":7,"type":"sample","v":1,"ts":6}`,
  `{ "v" : 1 , "type" : "sample" , "ts" : 7 , "pid" : 7 , "readings" : { "allocated" : 12 , "reserved" : 13 } }`,
  `{"v":1,"type":"sample","ts":8,"pid":7,"readings":{"allocated":-0,"reserved":1.5,"host_rss":2e3,"host_hwm":-4.25E-2}}`,
  `{"v":1,"type":"sample","ts":12345678901234567890123,"pid":7,"readings":{"allocated":9007199254740993}}`,
  `{"v":1,"type":"sample","ts":9999999999999999999,"pid":7,"readings":{"allocated":18014398509481987}}`,
  `{"v":1,"type":"sample","ts":10,"pid":7,"readings":{"allocated":1,"gpu_util":0.5}}`,
  `{"v":1,"type":"sample","ts":11,"pid":7,"readings":{"allocated":1},"host_file":"x"}`,
  `{"v":1,"type":"sample","ts":12,"ts":13,"pid":7,"readings":{"allocated":1}}`,
  `{"v":1,"type":"sample","t\\u0073":14,"pid":7,"readings":{"allocated":1}}`,
  `{"v":1.0,"type":"sample","ts":15,"pid":7,"readings":{"allocated":1}}`,
  `{"v":1,"type":"sample","ts":16,"pid":7,"readings":{"allocated":1}}\r`,
  `\ufeff{"v":1,"type":"sample","ts":17,"pid":7,"readings":{"allocated":1}}`,
];

/** Lines either path must count as malformed, with the same reason. */
const BAD_LINES = [
  sampleLine({ readings: { allocated: null } }),
  sampleLine({ readings: { allocated: "1" } }),
  sampleLine({ readings: [1] }),
  sampleLine({ pid: "7", readings: {} }),
  `{"v":1,"type":"sample","pid":7,"readings":{}}`,
  `{"v":1,"type":"sample","ts":1e400,"pid":7,"readings":{}}`,
  `{"v":1,"type":"sample","ts":01,"pid":7,"readings":{}}`,
  `{"v":1,"type":"sample","ts":1.,"pid":7,"readings":{}}`,
  `{"v":1,"type":"sample","ts":1,"pid":7,"readings":{"allocated":1}`,
  `{"v":1,"type":"sample","ts":1,"pid":7,"readings":{"allocated":1}}}`,
  `{"v":1,"type":"sample","ts":1,"pid":7,"rank":nul,"readings":{}}`,
  `{"v":1,"type":"sample","ts":1,"pid":7,"readings":{"allocated":1,"allocated":2}} x`,
  `{"v":1,"type":"samp`,
];

const scopeLines = [
  `{"v":1,"type":"enter","ts":20,"pid":7,"rank":0,"device":0,"target":"t1","scope_id":"7:1","parent":null,"call":1,"depth":0,"before":{"allocated":100}}`,
  `{"v":1,"type":"log","ts":21,"pid":7,"rank":null,"device":null,"stream":"stdout","line":"héllo — 中文 ✓"}`,
  `{"v":1,"type":"exit","ts":30,"pid":7,"rank":0,"device":0,"target":"t1","scope_id":"7:1","parent":null,"call":1,"depth":0,"before":{"allocated":100},"after":{"allocated":250},"peak":{"allocated":900},"duration_ns":10,"raised":null}`,
];

void test("odd but valid sample lines, and bad ones, read the same both ways: values, bad-line reasons and line numbers", async () => {
  const dir = tempDir("fastpath");
  const lines = [
    scopeLines[0]!,
    ...VALID_SAMPLES,
    scopeLines[1]!,
    ...BAD_LINES,
    scopeLines[1]!,
    scopeLines[2]!,
  ];
  const text = `${lines.join("\n")}\n${VALID_SAMPLES[0]}`;
  const plain = path.join(dir, "events.jsonl");
  writeFileSync(plain, text);
  const gz = path.join(dir, "events.jsonl.gz");
  writeFileSync(gz, gzipSync(text));
  for (const file of [plain, gz]) {
    const { model } = await assertSameBothWays(file);
    const { report } = await readModel(file, true);
    assert.equal(report.malformedCount, BAD_LINES.length, "every bad line counted");
    assert.equal(report.duplicates, 1, "the log line given twice is skipped once");
    assert.equal(model.sampleColumns.get(7)?.length, VALID_SAMPLES.length + 1);
    assert.equal(model.summary("t1")?.retained, 150);
  }
});

void test("the scan reads numbers exactly as JSON.parse does (19-digit clocks, beyond 2^53, fractions)", () => {
  const scan = newSampleScan();
  let seed = 12345;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648;
  const digits = (n: number) => {
    let out = String(1 + Math.floor(random() * 9));
    for (let i = 1; i < n; i++) out += String(Math.floor(random() * 10));
    return out;
  };
  for (let i = 0; i < 20_000; i++) {
    const ts = digits(1 + (i % 22));
    const allocated = `${random() < 0.2 ? "-" : ""}${digits(1 + Math.floor(random() * 19))}${random() < 0.1 ? `.${digits(3)}` : ""}`;
    const line = `{"v":1,"type":"sample","ts":${ts},"pid":3,"readings":{"allocated":${allocated}}}`;
    const bytes = Buffer.from(`${line}\n`);
    assert.equal(scanSampleLine(bytes, 0, bytes.length, scan), line.length, line);
    const parsed = JSON.parse(line) as { ts: number; readings: { allocated: number } };
    assert.ok(Object.is(scan.ts, parsed.ts), `${line}: ts ${scan.ts} vs ${parsed.ts}`);
    assert.ok(Object.is(scan.values[0], parsed.readings.allocated), `${line}: allocated`);
  }
});

void test("the scan accepts a line only when the full path reads it as that sample", () => {
  const scan = newSampleScan();
  for (const line of [...VALID_SAMPLES, ...BAD_LINES, ...scopeLines]) {
    const bytes = Buffer.from(`${line}\n`);
    const lineEnd = scanSampleLine(bytes, 0, bytes.length, scan);
    if (lineEnd < 0) continue;
    assert.equal(lineEnd, bytes.length - 1, line);
    const parsed = parseEventLine(line);
    assert.equal(parsed.ok, true, line);
    const event = (parsed as { event: ProbeEvent }).event;
    assert.equal(event.type, "sample", line);
    assert.deepEqual(
      { ts: scan.ts, pid: scan.pid, rank: scan.rank, device: scan.device },
      { ts: event.ts, pid: event.pid, rank: event.rank, device: event.device },
      line,
    );
  }
  const taken = VALID_SAMPLES.filter((line) => {
    const bytes = Buffer.from(`${line}\n`);
    return scanSampleLine(bytes, 0, bytes.length, scan) >= 0;
  });
  assert.ok(taken.length >= 8, `the usual shapes take the fast path (${taken.length})`);
});

void test("bytes cut anywhere (inside a line, a number, a multi-byte character) read as the whole text does", () => {
  const text = `${[...scopeLines, ...VALID_SAMPLES, ...BAD_LINES, ...scopeLines].join("\n")}\n`;
  const bytes = Buffer.from(text);
  const whole: ProbeEvent[] = [];
  const wholeReader = new EventStreamReader((e) => whole.push(e));
  wholeReader.push(text);
  wholeReader.finish();
  for (let cut = 1; cut < 400; cut += 7) {
    const events: ProbeEvent[] = [];
    const reader = new EventStreamReader((e) => events.push(e));
    for (let at = 0; at < bytes.length; at += cut) reader.pushBytes(bytes.subarray(at, at + cut));
    reader.finishBytes();
    assert.deepEqual(
      JSON.parse(JSON.stringify(events)),
      JSON.parse(JSON.stringify(whole)),
      `cut every ${cut}`,
    );
    assert.deepEqual(reader.malformed, wholeReader.malformed, `cut every ${cut}: bad lines`);
    assert.equal(reader.duplicates, wholeReader.duplicates);
  }
});

void test("a newer protocol version on a sample line stops the reader there, as on the full path", async () => {
  const dir = tempDir("fastpath-version");
  const file = path.join(dir, "events.jsonl");
  writeFileSync(
    file,
    `${VALID_SAMPLES[0]}\n{"v":2,"type":"sample","ts":1,"pid":7,"readings":{}}\n${VALID_SAMPLES[1]}\n`,
  );
  const full = await readModel(file, false);
  const fast = await readModel(file, true);
  assert.equal(fast.report.versionError?.seen, 2);
  assert.deepEqual(derived(fast.model), derived(full.model));
  assert.equal(fast.model.sampleColumns.get(7)?.length, 1);
});

void test("a model that keeps no samples (the language server's) counts them and derives the same scopes", async () => {
  const file = path.join(REPO, "media/demo/runs/gpt-oss-20b-h200/events.jsonl.gz");
  const kept = (await readModel(file, true)).model;
  const lean = new RunModel({ keepSamples: false });
  await readEventsFile(file, (e) => lean.add(e), { onSample: (s) => lean.addSample(s) });
  assert.equal(lean.sampleColumns.size, 0);
  assert.equal(lean.eventCount, kept.eventCount);
  assert.deepEqual(
    JSON.parse(JSON.stringify(lean.summaries())),
    JSON.parse(JSON.stringify(kept.summaries())),
  );
  assert.deepEqual([...lean.processes.values()], [...kept.processes.values()]);
});

void test("the shape kept from the last line is a copy: a reader that reuses its buffer cannot change it", () => {
  const scan = newSampleScan();
  const line = (first: string, second: string) =>
    `{"v":1,"type":"sample","ts":1,"pid":7,"readings":{"${first}":11,"${second}":22}}\n`;
  const reused = Buffer.from(line("allocated", "requested"));
  assert.equal(scanSampleLine(reused, 0, reused.length, scan), reused.length - 1);
  // The reader's next read lands in the same buffer: the same bytes but for two keys swapped.
  reused.write(line("requested", "allocated"));
  const next = Buffer.from(line("requested", "allocated"));
  assert.equal(scanSampleLine(next, 0, next.length, scan), next.length - 1);
  const parsed = JSON.parse(next.toString()) as { readings: Record<string, number> };
  assert.equal(scan.values[0], parsed.readings.allocated, "allocated");
  assert.equal(scan.values[2], parsed.readings.requested, "requested");
});
