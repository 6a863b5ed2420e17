// The panel's host side without VS Code: the view model and its live increments, the compare
// rows, the checks on webview messages and PNGs, the HTML and its CSP, the budget's error path.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { RunModel } from "../../src/model/runModel";
import { budgetForRun } from "../../src/panel/budgetSource";
import { contentSecurityPolicy, panelHtml } from "../../src/panel/html";
import { parsePanelState, parseWebviewMessage } from "../../src/panel/messages";
import { decodePngDataUrl, pngSize, writePngDataUrl } from "../../src/panel/png";
import { processLabel } from "../../src/model/processes";
import { buildCompare, buildSnapshot, RunViewTracker, type RunSource } from "../../src/panel/viewModel";
import type { ProbeEvent } from "../../src/protocol/events";
import type { RunMeta } from "../../src/runner/types";
import { TIMELINE_READINGS, type ScopeBand } from "../../webview/protocol";
import { decimate } from "../../webview/lttb";
import { expectedSeries, expectedTargets } from "./expected";
import { fixtureEvents } from "./fixtureRun";

const meta = (id: string): RunMeta => ({
  id,
  label: id,
  started: "2026-11-26T10:00:00Z",
  host: null,
  command: ["python", "x.py"],
  status: "finished",
});
const runOf = (events: ProbeEvent[], id = "r"): RunSource => ({
  id,
  meta: meta(id),
  model: RunModel.fromEvents(events),
});

// A 1×1 PNG (black pixel), as canvas.toDataURL would give.
const PNG_1x1 =
  "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

void describe("view model", () => {
  const events = fixtureEvents();

  void test("the snapshot holds every sample of every process, in seconds since the start", () => {
    const snapshot = buildSnapshot(runOf(events));
    const expected = expectedSeries(events);
    assert.equal(snapshot.timeline.length, expected.size);
    for (const series of snapshot.timeline) {
      const want = expected.get(series.pid)!;
      assert.deepEqual([...series.t], want.t);
      for (const key of TIMELINE_READINGS) {
        assert.deepEqual(series.readings[key] ? [...series.readings[key]] : undefined, want.readings[key]);
      }
    }
    assert.equal(snapshot.sampleCount, events.filter((e) => e.type === "sample").length);
    assert.equal(snapshot.bands.length, events.filter((e) => e.type === "enter").length);
    assert.equal(snapshot.markers.length, events.filter((e) => e.type === "fact" || e.type === "oom").length);
    for (const row of snapshot.hotspots) {
      const want = expectedTargets(events).get(row.target)!;
      assert.equal(row.retained, want.retained);
      assert.equal(row.transientMax, want.transientMax);
      assert.equal(row.peakAboveBeforeMax, want.peakAboveBeforeMax);
    }
  });

  void test("increments of a live run add up to the snapshot of the whole run", () => {
    const live = runOf([], "live");
    const tracker = new RunViewTracker(live);
    const parts = [tracker.snapshot()];
    for (let i = 0; i < events.length; i += 997) {
      for (const e of events.slice(i, i + 997)) live.model.add(e);
      parts.push({ ...tracker.increment(), label: "", host: null, command: [], t0Ns: 0 });
    }
    const whole = buildSnapshot(runOf(events, "live"));
    // Samples: concatenated per pid.
    for (const series of whole.timeline) {
      const t = parts.flatMap((p) => p.timeline.filter((s) => s.pid === series.pid).flatMap((s) => [...s.t]));
      assert.deepEqual(t, [...series.t]);
    }
    // Bands: the last version of each key (an open band is sent again when it closes).
    const bands = new Map<string, ScopeBand>();
    for (const p of parts) for (const b of p.bands) bands.set(b.key, b);
    assert.deepEqual(
      [...bands.values()].sort((a, b) => a.key.localeCompare(b.key)),
      [...whole.bands].sort((a, b) => a.key.localeCompare(b.key)),
    );
    assert.deepEqual(
      parts.flatMap((p) => p.markers),
      whole.markers,
    );
    assert.deepEqual(parts[parts.length - 1]!.hotspots, whole.hotspots);
    // Nothing is sent twice once the run is complete.
    const idle = tracker.increment();
    assert.equal(idle.timeline.length + idle.bands.length + idle.markers.length, 0);
  });

  void test("compare matches hotspots by spec, b − a, larger byte changes first", () => {
    const a = runOf(events, "a");
    // The same plan with other target ids: rows still line up by module:qualname.
    const renamed = fixtureEvents({ sharedWorkspace: true }).map((e) =>
      "target" in e && typeof e.target === "string" ? ({ ...e, target: `x-${e.target}` } as ProbeEvent) : e,
    );
    const b = runOf(renamed, "b");
    const view = buildCompare(a, b);
    assert.equal(view.rows.length, new Set(a.model.summaries().map((s) => s.spec)).size);
    const workspace = view.rows[0]!;
    assert.equal(
      workspace.key,
      "vllm.model_executor.layers.quantization.utils.marlin_utils:marlin_make_workspace_new",
    );
    assert.equal(workspace.callsDelta, 1 - 24);
    assert.equal(workspace.retainedDelta, -23 * 48 * 1024 ** 2);
    const weights = view.rows.map((r) => Math.max(Math.abs(r.retainedDelta), Math.abs(r.peakDelta ?? 0)));
    assert.deepEqual(
      weights,
      [...weights].sort((x, y) => y - x),
    );
  });
});

void describe("messages from the webview", () => {
  void test("well-formed messages pass", () => {
    const open = parseWebviewMessage({ method: "memlens/openSource", params: { file: "/a/b.py", line: 12 } });
    assert.deepEqual(open, {
      ok: true,
      message: { method: "memlens/openSource", params: { file: "/a/b.py", line: 12 } },
    });
    assert.equal(parseWebviewMessage({ method: "memlens/ready", params: {} }).ok, true);
  });

  void test("bad ones are refused with the reason", () => {
    const cases: [unknown, RegExp][] = [
      [null, /not an object/],
      [{ method: "memlens/deleteEverything", params: {} }, /unknown method "memlens\/deleteEverything"/],
      [{ method: "toString", params: {} }, /unknown method/],
      [{ method: "memlens/openSource", params: { file: "", line: 3 } }, /file/],
      [{ method: "memlens/openSource", params: { file: "/a.py", line: 0 } }, /line/],
      [{ method: "memlens/savePng", params: { chart: "pie", dataUrl: "x" } }, /chart/],
    ];
    for (const [raw, reason] of cases) {
      const parsed = parseWebviewMessage(raw);
      assert.equal(parsed.ok, false);
      if (!parsed.ok) assert.match(parsed.reason, reason);
    }
  });

  void test("saved panel state is read back, or dropped when it is not ours", () => {
    const state = {
      version: 1,
      runId: "r1",
      pinned: true,
      hiddenPids: [4],
      hiddenReadings: ["reserved"],
      sort: { column: "calls", descending: false },
      expanded: ["t1"],
      zoom: { min: 1, max: 2 },
    };
    assert.deepEqual(parsePanelState(state), state);
    assert.equal(parsePanelState({ ...state, version: 2 }), undefined);
    assert.equal(parsePanelState({ ...state, sort: { column: "bogus", descending: true } }), undefined);
    assert.equal(parsePanelState(undefined), undefined);
  });
});

void describe("PNG", () => {
  void test("a canvas data URL is written as a PNG file", async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), "memlens-png-")), "chart.png");
    const bytes = await writePngDataUrl(PNG_1x1, file);
    const written = readFileSync(file);
    assert.equal(written.length, bytes);
    assert.deepEqual(pngSize(written), { width: 1, height: 1 });
  });

  void test("anything else is refused before writing", () => {
    assert.throws(
      () => decodePngDataUrl("data:image/svg+xml;base64,PHN2Zz4="),
      /expected a data:image\/png;base64 URL/,
    );
    assert.throws(
      () =>
        decodePngDataUrl(
          `data:image/png;base64,${Buffer.from("GIF89a-not-a-png-at-all!").toString("base64")}`,
        ),
      /not a PNG/,
    );
  });
});

void describe("HTML", () => {
  void test("CSP: nothing by default, scripts by nonce, styles/images/fonts from the webview's source", () => {
    assert.equal(
      contentSecurityPolicy("https://x.vscode-cdn.net", "abc"),
      "default-src 'none'; script-src 'nonce-abc'; style-src https://x.vscode-cdn.net; img-src https://x.vscode-cdn.net data:; font-src https://x.vscode-cdn.net",
    );
    const html = panelHtml({
      cspSource: "https://x",
      nonce: "n0nce",
      scriptUri: 'https://x/p.js"><b>',
      styleUri: "https://x/p.css",
    });
    assert.match(
      html,
      /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'nonce-n0nce';/,
    );
    assert.match(html, /<script nonce="n0nce" src="https:\/\/x\/p\.js&quot;&gt;&lt;b&gt;"><\/script>/);
    assert.doesNotMatch(html, /style=/, "no inline style attributes");
    assert.equal((html.match(/<script/g) ?? []).length, 1, "one script, the bundle");
  });
});

void describe("budget", () => {
  void test("a budget that cannot be computed says why instead of drawing", () => {
    const result = budgetForRun(runOf(fixtureEvents()), {
      targetBytes: 16 * 1024 ** 3,
      gpuMemoryUtilization: 0,
    });
    assert.equal(result.budget, null);
    assert.match(result.unavailable!, /gpu_memory_utilization/);
  });
});

void describe("LTTB", () => {
  void test("keeps the ends, picks real points, and breaks lines at missing readings", () => {
    const n = 10_000;
    const x = Float64Array.from({ length: n }, (_, i) => i);
    const y = Float64Array.from({ length: n }, (_, i) =>
      i >= 4000 && i < 5000 ? NaN : Math.sin(i / 50) * 100 + (i === 7777 ? 1e4 : 0),
    );
    const out = decimate(x, y, 0, n, 500);
    assert.ok(out.length <= 510, `${out.length} points`);
    assert.deepEqual(out[0], { x: 0, y: y[0] });
    assert.deepEqual(out[out.length - 1], { x: n - 1, y: y[n - 1] });
    for (const p of out) if (!Number.isNaN(p.y)) assert.equal(p.y, y[p.x]);
    assert.ok(
      out.some((p) => p.x === 7777),
      "the spike survives",
    );
    const gap = out.findIndex((p) => Number.isNaN(p.y));
    assert.ok(gap > 0 && out[gap - 1]!.x < 4000 && out[gap + 1]!.x >= 5000, "a NaN point separates the runs");
  });
});

void test("a process is labelled by multiprocessing's name, else by how it started (as the debugger names threads)", () => {
  assert.equal(
    processLabel({ pid: 7, rank: 0, device: 0, origin: "spawn", name: "EngineCore_0" }),
    "pid 7 · rank 0 · cuda:0 · EngineCore_0",
  );
  assert.equal(processLabel({ pid: 8, rank: null, device: null, origin: "spawn" }), "pid 8 · spawn child");
  assert.equal(
    processLabel({ pid: 9, rank: null, device: null, origin: "main", argv: ["/srv/load_gpt_oss.py", "-x"] }),
    "pid 9 · main (load_gpt_oss.py)",
  );
  assert.equal(
    processLabel({ pid: 10, rank: null, device: null, origin: "main", argv: ["-c"] }),
    "pid 10 · main",
  );
});
