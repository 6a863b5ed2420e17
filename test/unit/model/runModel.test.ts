import { test } from "node:test";
import assert from "node:assert/strict";
import { callDelta, RunModel } from "../../../src/model/runModel";
import { formatBytes, formatDelta, summaryLine } from "../../../src/model/format";
import type { ProbeEvent, Readings } from "../../../src/protocol/events";

const MiB = 1024 * 1024;
let clock = 1_000;
function ev(type: string, pid: number, fields: Record<string, unknown>): ProbeEvent {
  clock += 10;
  return { v: 1, type, ts: clock, pid, rank: null, device: null, ...fields } as unknown as ProbeEvent;
}
function enter(
  pid: number,
  target: string,
  scope: string,
  parent: string | null,
  before: Readings,
  depth = 0,
  call = 1,
) {
  return ev("enter", pid, { target, scope_id: scope, parent, call, depth, before, file: "/x.py", line: 3 });
}
function exit(
  pid: number,
  target: string,
  scope: string,
  parent: string | null,
  before: Readings,
  after: Readings,
  peak: Record<string, number>,
  depth = 0,
  call = 1,
) {
  return ev("exit", pid, {
    target,
    scope_id: scope,
    parent,
    call,
    depth,
    before,
    after,
    peak,
    duration_ns: 5_000_000,
    raised: null,
  });
}

test("nested scopes give each call its own retained, transient and peak", () => {
  const m = RunModel.fromEvents([
    enter(1, "outer", "1:1", null, { allocated: 100 * MiB }),
    enter(1, "inner", "1:2", "1:1", { allocated: 100 * MiB }, 1),
    exit(
      1,
      "inner",
      "1:2",
      "1:1",
      { allocated: 100 * MiB },
      { allocated: 108 * MiB },
      { allocated: 116 * MiB },
      1,
    ),
    exit(
      1,
      "outer",
      "1:1",
      null,
      { allocated: 100 * MiB },
      { allocated: 108 * MiB },
      { allocated: 130 * MiB },
    ),
  ]);
  const inner = callDelta(m.callsOf("inner")[0]!);
  assert.deepEqual(inner, {
    source: "allocated",
    peakIsSampled: false,
    retained: 8 * MiB,
    peakAboveBefore: 16 * MiB,
    transient: 8 * MiB,
  });
  const outer = m.summary("outer")!;
  assert.equal(outer.retained, 8 * MiB);
  assert.equal(outer.peakAboveBeforeMax, 30 * MiB);
  assert.equal(outer.transientMax, 22 * MiB);
  assert.equal(m.callsOf("inner")[0]!.parent, "1:1");
});

test("calls in several processes sum per target and keep a per-process breakdown", () => {
  const events: ProbeEvent[] = [];
  for (const pid of [10, 20]) {
    for (let call = 1; call <= 3; call++) {
      const scope = `${pid}:${call}`;
      const before = { allocated: call * MiB };
      events.push(enter(pid, "ws", scope, null, before, 0, call));
      events.push(
        exit(
          pid,
          "ws",
          scope,
          null,
          before,
          { allocated: (call + 2) * MiB },
          { allocated: (call + 2) * MiB },
          0,
          call,
        ),
      );
    }
  }
  const s = RunModel.fromEvents(events).summary("ws")!;
  assert.equal(s.calls, 6);
  assert.equal(s.retained, 12 * MiB);
  assert.deepEqual(
    s.perProcess.map((p) => [p.pid, p.calls, p.retained]),
    [
      [10, 3, 6 * MiB],
      [20, 3, 6 * MiB],
    ],
  );
  assert.equal(summaryLine(s), "+12.0 MiB allocated · peak +2.0 MiB · 6 calls · 2 processes");
});

test("a process that died inside a scope leaves the call open and keeps what came before", () => {
  const m = RunModel.fromEvents([
    ev("hello", 7, { ppid: 1, argv: ["x"], origin: "spawn", torch: null }),
    enter(7, "load", "7:1", null, { host_rss: 50 * MiB }),
    ev("sample", 7, { readings: { host_rss: 90 * MiB } }),
    ev("end", 1, { exit_code: null, signal: "SIGKILL", duration_ns: 1, stopped: false, counts: {} }),
  ]);
  const s = m.summary("load")!;
  assert.equal(s.openCalls, 1);
  assert.equal(s.retained, 0);
  assert.equal(m.processes.get(7)!.origin, "spawn");
  assert.equal(m.latestReadings(7)!.host_rss, 90 * MiB);
  assert.equal(m.finished, true);
});

test("host RSS deltas use the sampled peak, floored at the after reading", () => {
  const m = RunModel.fromEvents([
    enter(1, "f", "1:1", null, { host_rss: 10 * MiB }),
    exit(1, "f", "1:1", null, { host_rss: 10 * MiB }, { host_rss: 210 * MiB }, { host_rss: 150 * MiB }),
  ]);
  const d = callDelta(m.calls[0]!);
  assert.equal(d.source, "host_rss");
  assert.equal(d.peakIsSampled, true);
  assert.equal(d.retained, 200 * MiB);
  assert.equal(d.peakAboveBefore, 200 * MiB);
  assert.equal(summaryLine(m.summary("f")!), "+200.0 MiB host RSS · peak +200.0 MiB (sampled) · 1 call");
});

test("paused and resumed events track which processes are paused", () => {
  const m = new RunModel();
  const seen: string[] = [];
  m.onEvent((e) => seen.push(e.type));
  m.add(
    ev("paused", 3, {
      target: "t",
      scope_id: "3:1",
      at: "entry",
      reason: "pause_target",
      stack: [],
      readings: {},
    }),
  );
  assert.equal(m.paused.size, 1);
  m.add(ev("resumed", 3, { scope_id: "3:1", mode: "run" }));
  assert.equal(m.paused.size, 0);
  assert.deepEqual(seen, ["paused", "resumed"]);
});

test("byte formatting uses binary units and a true minus sign", () => {
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(8_294_400), "7.9 MiB");
  assert.equal(formatDelta(-3 * 1024 ** 3), "−3.0 GiB");
  assert.equal(formatDelta(0), "±0 B");
});

test("a process takes multiprocessing's name from its scope events", () => {
  const m = RunModel.fromEvents([
    ev("hello", 9, { ppid: 1, argv: ["-c"], origin: "spawn", torch: null }),
    ev("enter", 9, {
      target: "t",
      scope_id: "9:1",
      parent: null,
      call: 1,
      depth: 0,
      before: {},
      process_name: "EngineCore_0",
    }),
  ]);
  assert.equal(m.processes.get(9)!.name, "EngineCore_0");
});
