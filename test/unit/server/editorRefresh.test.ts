// When the language server asks the editor to fetch lenses again: only for a change it has not
// fetched, never twice before it fetched (each request restarts VS Code's wait before fetching),
// and again later if a request went unanswered (VS Code drops a pending fetch on blur).
import assert from "node:assert/strict";
import { test } from "node:test";
import { EditorRefresh, FETCH_WAIT_MAX_MS, FETCH_WAIT_MS } from "../../../src/server/editorRefresh";

function counted(): { refresh: EditorRefresh; sent: () => number } {
  let sent = 0;
  return { refresh: new EditorRefresh(() => sent++), sent: () => sent };
}

void test("a change is asked for once; the same state again (samples of a paused run) is not", () => {
  const { refresh, sent } = counted();
  assert.equal(refresh.offer("unfinished", 0), FETCH_WAIT_MS, "sent; check back after the wait");
  assert.equal(sent(), 1);
  refresh.fetched("unfinished");
  for (let t = 1; t < 100; t++) assert.equal(refresh.offer("unfinished", t * 20), undefined);
  assert.equal(sent(), 1);
  refresh.offer("finished", 2500);
  assert.equal(sent(), 2);
});

void test("changes before the editor fetched wait for the fetch, which carries them", () => {
  const { refresh, sent } = counted();
  refresh.offer("call 1", 1000);
  assert.equal(refresh.offer("call 2", 1100), FETCH_WAIT_MS - 100, "held back until the wait ends");
  assert.equal(refresh.offer("call 3", 1300), FETCH_WAIT_MS - 300);
  assert.equal(sent(), 1);
  // The editor fetches the newest state: nothing more to ask for.
  refresh.fetched("call 3");
  assert.equal(refresh.offer("call 3", 1400), undefined);
  assert.equal(sent(), 1);
  // After a fetch the next change goes out at once.
  refresh.offer("call 4", 1500);
  assert.equal(sent(), 2);
});

void test("an unanswered request is repeated, each time after twice the wait, up to the longest", () => {
  const { refresh, sent } = counted();
  let now = 0;
  let wait = refresh.offer("finished", now);
  const waits: number[] = [];
  while (wait !== undefined && waits.length < 8) {
    waits.push(wait);
    assert.equal(refresh.offer("finished", now + wait - 1), 1, "not before the wait is over");
    now += wait;
    wait = refresh.offer("finished", now);
  }
  assert.deepEqual(waits, [2000, 4000, 8000, 16000, FETCH_WAIT_MAX_MS, 30000, 30000, 30000]);
  assert.equal(sent(), 9);
  // Once the editor fetched it, nothing more.
  refresh.fetched("finished");
  assert.equal(refresh.offer("finished", now + 60_000), undefined);
  assert.equal(sent(), 9);
});

void test("force (another run, trust, settings) does not wait, and starts the waits over", () => {
  const { refresh, sent } = counted();
  refresh.offer("run A", 0);
  refresh.offer("run A", FETCH_WAIT_MS);
  assert.equal(refresh.offer("run B", FETCH_WAIT_MS + 10, true), FETCH_WAIT_MS);
  assert.equal(sent(), 3);
  refresh.fetched("run B");
  assert.equal(refresh.offer("run B", FETCH_WAIT_MS + 20, true), undefined, "fetched: nothing to ask for");
  assert.equal(sent(), 3);
});
