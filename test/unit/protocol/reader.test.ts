import { test } from "node:test";
import assert from "node:assert/strict";
import {
  EventStreamReader,
  parseEventLine,
  parseEventsText,
  ProtocolVersionError,
} from "../../../src/protocol/reader";
import type { ProbeEvent } from "../../../src/protocol/events";

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
