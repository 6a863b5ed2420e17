// Allocator snapshots through the real probe zipapp (built from python-probe/ here), as the
// "Export / Open Allocator Snapshot" commands run it: a protocol-5 pickle of a per-expert repack
// loop at gpt-oss-20b's padded sizes is rewritten with protocol 4, and read back as a timeline and
// allocation sites; a pickle that would run code is refused, runs nothing, and the trust gate
// stops every process.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import {
  exportForMemoryViz,
  readAllocatorSnapshot,
  SnapshotToolError,
  type SnapshotTool,
} from "../../../src/runner/allocatorSnapshot";
import { ProcessRefusedError, setProcessGate } from "../../../src/runner/exec";

const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");
const PROBE = path.join(REPO_ROOT, "python-probe");
let dir = "";
let tool: SnapshotTool;
let snapshotFile = "";

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), "memlens-snapshot-"));
  const probePath = path.join(dir, "memlens_probe.pyz");
  execFileSync("python3", [path.join(PROBE, "build_zipapp.py"), probePath], { stdio: "pipe" });
  tool = { python: "python3", probePath };
  snapshotFile = path.join(dir, "snapshot.pickle");
  // The probe's own test trace (python-probe/tests/test_sites.py), timed, pickled as torch 2.11 does.
  execFileSync("python3", [
    path.join(REPO_ROOT, "test/fixtures/events/make_repack_snapshot.py"),
    snapshotFile,
  ]);
});

after(() => {
  setProcessGate(undefined);
  rmSync(dir, { recursive: true, force: true });
});

void test("export writes a protocol-4 pickle with the same data", async () => {
  const out = path.join(dir, "viz.pickle");
  await exportForMemoryViz(tool, snapshotFile, out);
  const bytes = readFileSync(out);
  assert.equal(bytes[0], 0x80);
  assert.equal(bytes[1], 4, "pickle protocol 4: memory_viz rejects 5");
  assert.equal(readFileSync(snapshotFile)[1], 5);
  const same = execFileSync("python3", [
    "-c",
    `import pickle; print(pickle.load(open(${JSON.stringify(out)}, "rb")) == pickle.load(open(${JSON.stringify(snapshotFile)}, "rb")))`,
  ]).toString();
  assert.equal(same.trim(), "True");
});

void test("open reads the timeline and the sites; the peak is the timeline's highest point", async () => {
  const data = await readAllocatorSnapshot(tool, snapshotFile, ["/srv/vllm"]);
  assert.ok(data.timeline.length > 0);
  assert.equal(Math.max(...data.timeline.map(([, bytes]) => bytes)), data.peakBytes);
  // Times come from the pickle (1000 µs + 10 per entry), in order.
  assert.equal(data.timeline[0]![0], 1000);
  assert.ok(data.timeline.every((p, i) => i === 0 || p[0] >= data.timeline[i - 1]![0]));
  // The `.contiguous()` copy of each expert: 9,043,968 B, four of them, all freed.
  const copy = data.sites.find((s) => s.line === 310);
  assert.ok(copy, JSON.stringify(data.sites.map((s) => s.line)));
  assert.equal(copy.count, 4);
  assert.equal(copy.allocated_bytes, 4 * 9_043_968);
  assert.equal(copy.freed_bytes, copy.allocated_bytes);
  assert.equal(copy.function, "_repack_marlin_experts");

  // Roots that hold none of its frames: each allocation's innermost frame, wherever it is.
  const elsewhere = await readAllocatorSnapshot(tool, snapshotFile, ["/home/me/src"]);
  assert.deepEqual(
    elsewhere.sites.map((s) => s.file).filter((f) => f === "?"),
    [],
  );
  assert.ok(elsewhere.sites.some((s) => s.line === 310 && s.count === 4));
});

void test("a pickle that would run code is refused, with the probe's reason, and runs nothing", async () => {
  const marker = path.join(dir, "pwned");
  const evil = path.join(dir, "evil.pickle");
  execFileSync("python3", [
    "-c",
    `
import os, pickle
class Boom:
    def __reduce__(self):
        return (os.system, ("touch ${marker}",))
open(${JSON.stringify(evil)}, "wb").write(pickle.dumps({"segments": [], "device_traces": [[Boom()]]}))
`,
  ]);
  await assert.rejects(readAllocatorSnapshot(tool, evil, []), (error: Error) => {
    assert.ok(error instanceof SnapshotToolError);
    assert.match(error.message, /asks for (posix|os)\.system/);
    return true;
  });
  assert.equal(existsSync(marker), false);
});

void test("the workspace-trust gate stops it before any process starts", async () => {
  setProcessGate(() => "the workspace is not trusted");
  try {
    const out = path.join(dir, "gated.pickle");
    await assert.rejects(exportForMemoryViz(tool, snapshotFile, out), ProcessRefusedError);
    assert.equal(existsSync(out), false);
  } finally {
    setProcessGate(undefined);
  }
});
