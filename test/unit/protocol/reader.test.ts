import { test } from "node:test";
import assert from "node:assert/strict";
import {
  EventStreamReader,
  MAX_LINE_CHARS,
  parseEventLine,
  parseEventsText,
  ProtocolVersionError,
} from "../../../src/protocol/reader";
import type { ProbeEvent } from "../../../src/protocol/events";
import { measureRun } from "../../../src/budget/measured";
import { RunModel } from "../../../src/model/runModel";

const sample = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    v: 1,
    type: "sample",
    ts: 1,
    pid: 10,
    rank: null,
    device: null,
    readings: { host_rss: 5 },
    ...extra,
  });

test("a well-formed line parses into its event", () => {
  const parsed = parseEventLine(sample());
  assert.equal(parsed.ok, true);
  if (parsed.ok === true) {
    assert.equal(parsed.event.type, "sample");
    assert.equal(parsed.event.pid, 10);
  }
});

test("missing rank/device default to null rather than undefined", () => {
  const parsed = parseEventLine(JSON.stringify({ v: 1, type: "bye", ts: 3, pid: 4 }));
  assert.equal(parsed.ok, true);
  if (parsed.ok === true) {
    assert.equal(parsed.event.rank, null);
    assert.equal(parsed.event.device, null);
  }
});

test("malformed lines are counted with their reason and line number, and do not stop the stream", () => {
  const text = [
    sample(),
    "{not json",
    "[1,2]",
    JSON.stringify({ v: 1, ts: 1, pid: 1 }),
    sample({ ts: 2 }),
  ].join("\n");
  const { events, malformed } = parseEventsText(text);
  assert.equal(events.length, 2);
  assert.deepEqual(
    malformed.map((m) => [m.lineNumber, m.reason]),
    [
      [2, "not JSON"],
      [3, "not a JSON object"],
      [4, 'field "type" missing or not a string'],
    ],
  );
});

test("an unknown protocol version is refused with both versions named", () => {
  const { events, versionError } = parseEventsText([sample(), sample({ v: 2 }), sample()].join("\n"));
  assert.equal(events.length, 1, "nothing after the foreign version is read");
  assert.ok(versionError instanceof ProtocolVersionError);
  assert.match(versionError.message, /protocol v2 from the probe; this MemLens reads v1/);
});

test("the stream reader joins lines split across chunks and handles CRLF and a final line without newline", () => {
  const seen: ProbeEvent[] = [];
  const reader = new EventStreamReader((e) => seen.push(e));
  const whole = sample({ ts: 1 }) + "\r\n" + sample({ ts: 2 }) + "\n" + sample({ ts: 3 });
  for (let i = 0; i < whole.length; i += 7) reader.push(whole.slice(i, i + 7));
  assert.equal(seen.length, 2);
  reader.finish();
  assert.deepEqual(
    seen.map((e) => e.ts),
    [1, 2, 3],
  );
  assert.equal(reader.malformed.length, 0);
});

const scope = (type: "enter" | "exit", extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    v: 1,
    type,
    ts: type === "enter" ? 10 : 20,
    pid: 10,
    rank: 0,
    device: 0,
    target: "t",
    scope_id: "10:1",
    parent: null,
    call: 1,
    depth: 0,
    before: { allocated: 100 },
    ...(type === "exit" ? { after: { allocated: 300 }, peak: {}, duration_ns: 10, raised: null } : {}),
    ...extra,
  });

test("every field a reader uses is checked: a bad event is counted and skipped, never thrown later", () => {
  const fact = { v: 1, type: "fact", ts: 5, pid: 10, kind: "model_loading", line: "Model loading took" };
  const oom = {
    v: 1,
    type: "oom",
    ts: 6,
    pid: 10,
    target: "t",
    scope_id: "10:1",
    readings: {},
    message: "m",
  };
  const bad: [string, string][] = [
    [scope("enter", { before: undefined }), 'enter event: field "before" missing'],
    [scope("enter", { target: 12 }), 'enter event: field "target" not a string'],
    [
      scope("enter", { before: { allocated: "1 GiB" } }),
      'enter event: field "before.allocated" not a number',
    ],
    [scope("exit", { after: null }), 'exit event: field "after" not an object'],
    [JSON.stringify(fact), 'fact event: field "values" missing'],
    [JSON.stringify({ ...fact, values: { bytes: "12" } }), 'fact event: field "values.bytes" not a number'],
    [JSON.stringify(oom), 'oom event: field "stack" missing'],
    [JSON.stringify({ ...oom, stack: [], rank: "0" }), 'oom event: field "rank" not a number'],
    [sample({ readings: null }), 'sample event: field "readings" not an object'],
    [
      JSON.stringify({ v: 1, type: "log", ts: 1, pid: 1, stream: "tty", line: "x" }),
      'log event: field "stream" not a value the protocol allows',
    ],
  ];
  const text = [sample(), ...bad.map(([line]) => line), scope("enter"), scope("exit")].join("\n");
  const { events, malformed, malformedCount } = parseEventsText(text);
  assert.deepEqual(
    malformed.map((m) => m.reason),
    bad.map(([, reason]) => reason),
  );
  assert.equal(malformedCount, bad.length);
  assert.deepEqual(
    events.map((e) => e.type),
    ["sample", "enter", "exit"],
    "the good events around them are all read",
  );
  const model = RunModel.fromEvents(events);
  assert.equal(model.summary("t")?.retained, 200);
  assert.doesNotThrow(() => measureRun(model));
  for (const m of malformed) assert.doesNotMatch(m.reason, /1 GiB|tty/, "reasons never quote the line");
});

test("the protocol's nulls for callables without code read as absent; unknown types and extra fields pass", () => {
  const resolved = JSON.stringify({
    v: 1,
    type: "target_resolved",
    ts: 1,
    pid: 1,
    target: "t",
    kind: "function",
    spec: "builtins:len",
    module: "builtins",
    qualname: "len",
    file: null,
    line: null,
    end_line: null,
    new_field: [1, 2],
  });
  const future = JSON.stringify({ v: 1, type: "gpu_clock", ts: 2, pid: 1, mhz: 1980 });
  const { events, malformedCount } = parseEventsText([resolved, future].join("\n"));
  assert.equal(malformedCount, 0);
  const event = events[0] as ProbeEvent & { file?: string; new_field?: unknown };
  assert.equal(event.type, "target_resolved");
  assert.equal(event.file, undefined);
  assert.deepEqual(event.new_field, [1, 2], "fields a newer probe adds are kept");
  assert.equal(events[1]?.type, "gpu_clock" as ProbeEvent["type"]);
});

test("a UTF-8 byte order mark does not cost the start event", () => {
  const start = JSON.stringify({
    v: 1,
    type: "start",
    ts: 1,
    pid: 1,
    run_id: "r",
    argv: [],
    cwd: "/",
    plan: {},
    probe_version: "1",
  });
  const { events, malformedCount } = parseEventsText(`\ufeff${start}\n${sample()}\n`);
  assert.equal(malformedCount, 0);
  assert.deepEqual(
    events.map((e) => e.type),
    ["start", "sample"],
  );
  // Also when the mark arrives in a chunk of its own (a stream read in pieces).
  const seen: ProbeEvent[] = [];
  const reader = new EventStreamReader((e) => seen.push(e));
  reader.push("\ufeff");
  reader.push(`${start}\n`);
  reader.finish();
  assert.equal(seen[0]?.type, "start");
});

test("a repeated line is read once (no call counted twice); a repeated sample is kept", () => {
  const lines = [scope("enter"), scope("enter"), sample(), sample(), scope("exit"), scope("exit")];
  const { events, duplicates } = parseEventsText([...lines, ...lines].join("\n"));
  assert.deepEqual(
    events.map((e) => e.type),
    ["enter", "sample", "sample", "exit", "sample", "sample"],
  );
  assert.equal(duplicates, 6);
  const model = RunModel.fromEvents(events);
  assert.equal(model.summary("t")?.calls, 1);
  assert.equal(model.summary("t")?.retained, 200);
  // Two facts from one log line share pid and ts but are different lines: both are kept.
  const fact = (kind: string) =>
    JSON.stringify({ v: 1, type: "fact", ts: 5, pid: 10, kind, values: { bytes: 1 }, line: "l" });
  assert.equal(parseEventsText([fact("a"), fact("b")].join("\n")).events.length, 2);
});

test("lines longer than a chunk are joined; a line past MAX_LINE_CHARS is dropped, not thrown", () => {
  const seen: ProbeEvent[] = [];
  const reader = new EventStreamReader((e) => seen.push(e));
  const long = JSON.stringify({
    v: 1,
    type: "log",
    ts: 1,
    pid: 1,
    stream: "stdout",
    line: "x".repeat(3_000_000),
  });
  for (let i = 0; i < long.length; i += 1 << 20) reader.push(long.slice(i, i + (1 << 20)));
  reader.push("\n");
  assert.equal((seen[0] as { line?: string } | undefined)?.line?.length, 3_000_000);

  // A file without newlines (not an events file, or garbage): the buffer stops growing at the bound.
  const chunk = "y".repeat(8 * 1024 * 1024);
  for (let pushed = 0; pushed <= MAX_LINE_CHARS; pushed += chunk.length) reader.push(chunk);
  assert.equal(reader.malformedCount, 1);
  assert.match(reader.malformed[0]?.reason ?? "", /longer than \d+ characters without a newline/);
  reader.push(`more of the same line\n${sample()}\n`);
  reader.finish();
  assert.deepEqual(
    seen.map((e) => e.type),
    ["log", "sample"],
    "reading goes on after the next newline",
  );
  assert.equal(reader.malformedCount, 1);
});

test("only the first malformed lines are kept with their text; all are counted", () => {
  const { malformed, malformedCount } = parseEventsText(Array.from({ length: 5000 }, () => "{").join("\n"));
  assert.equal(malformedCount, 5000);
  assert.equal(malformed.length, 1000);
});
