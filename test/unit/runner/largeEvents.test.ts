// An events.jsonl past V8's longest string (~512 MB), as a long vLLM load writes: every reader
// streams it. Writing and reading 564 MB takes a while, so this runs only when asked:
//   MEMLENS_LARGE_TESTS=1 node --import tsx --test test/unit/runner/largeEvents.test.ts
// (scripts/bench-events.ts prints the time and peak memory of the same read.)
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { writeLargeRun } from "../../../scripts/bench-events";
import { readEventsModel } from "../../../src/host/runEntries";
import { loadRun } from "../../../src/runner/store";
import { EventsFollower } from "../../../src/runner/eventsFile";
import { tempDir } from "../../remote/helpers";

const MAX_STRING = 0x1fffffe8; // V8's String::kMaxLength on 64-bit hosts

void test(
  "a 564 MB events.jsonl loads (loadRun, the runs view's model, the follower of the language server and debug runs)",
  { skip: !process.env.MEMLENS_LARGE_TESTS && "set MEMLENS_LARGE_TESTS=1 to run" },
  async () => {
    const dir = writeLargeRun(tempDir("large-events"), 564);
    const file = path.join(dir, "events.jsonl");
    assert.ok(statSync(file).size > MAX_STRING, "more than one string can hold");
    let events = 0;
    const stored = await loadRun(dir, { onEvent: () => events++ });
    assert.equal(stored.malformedCount, 0);
    assert.ok(events > 2_000_000, String(events));
    const { model } = await readEventsModel(file);
    assert.equal(model.eventCount, events);
    assert.ok(model.end, "read to its last line");
    let tailed = 0;
    await new EventsFollower(file).read(() => tailed++);
    assert.equal(tailed, events);
  },
);
