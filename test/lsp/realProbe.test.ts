// The real probe (python-probe, a real Python process) measures a small CPU workload; its run
// folder goes to the real server, whose lenses, inlay hint, hover and diagnostics must show what
// the run model computes from the same events.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { summaryLine } from "../../src/model/format";
import { RunModel } from "../../src/model/runModel";
import { FIXTURE_ROOT, LspTestClient, fileUri } from "./lspTestClient";
import { runUnderProbe } from "./probeLauncher";

const WORKLOAD_DIR = path.join(FIXTURE_ROOT, "workload");
const LOADER = path.join(WORKLOAD_DIR, "host_loader.py");
const lines = readFileSync(LOADER, "utf8").split("\n");
const lineOf = (needle: string) => lines.findIndex((l) => l.includes(needle));
const SCRATCH_LINE = lineOf("scratch = bytearray(");

let dir: string;
let runDir: string;
let model: RunModel;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "memlens-real-probe-"));
  const plan = {
    version: 1,
    targets: [
      { id: "f1", function: "host_loader:WeightStore.load_layer" },
      { id: "f2", function: "host_loader:WeightStore.layer_count" },
      { id: "l1", line: `${LOADER}:${SCRATCH_LINE + 1}` },
      { id: "nf", function: "host_loader:Nope.nothing" },
    ],
    sample_interval_ms: 5,
  };
  const launched = await runUnderProbe({
    plan,
    dir,
    command: ["python3", "run_host_loader.py"],
    cwd: WORKLOAD_DIR,
    timeoutMs: 60_000,
  });
  runDir = launched.runDir;
  model = RunModel.fromEvents(launched.events);
});

after(() => rmSync(dir, { recursive: true, force: true }));

void test("a real probe run shows up on the workload's source", async () => {
  const client = await LspTestClient.start({ initializationOptions: { sourceRoots: [WORKLOAD_DIR] } });
  try {
    const result = await client.setRun({ run: { id: "real", dir: runDir } });
    assert.equal(result.error, undefined);
    assert.equal(result.malformed, 0);
    assert.equal(result.targets, 4);

    const uri = fileUri(LOADER);
    await client.open(uri, readFileSync(LOADER, "utf8"));
    const lenses = await client.codeLenses(uri);
    const titleAt = (line: number) =>
      lenses.filter((l) => l.range.start.line === line).map((l) => l.command?.title);

    const loadLayer = model.summary("f1")!;
    assert.equal(loadLayer.calls, 3);
    assert.equal(loadLayer.source, "host_rss");
    assert.ok(loadLayer.retained > 0, "the workload keeps 4 MiB per layer");
    assert.deepEqual(titleAt(lineOf("def load_layer(")), [summaryLine(loadLayer)]);
    assert.match(summaryLine(loadLayer), /host RSS · peak \+[\d.]+ [KMG]iB \(sampled\) · 3 calls$/);

    // Decorated: the probe reports the decorator's line, the lens still sits on the def.
    assert.deepEqual(titleAt(lineOf("def layer_count(")), [summaryLine(model.summary("f2")!)]);

    const scratch = model.summary("l1")!;
    assert.equal(scratch.calls, 3);
    assert.deepEqual(titleAt(SCRATCH_LINE), [summaryLine(scratch)]);
    const hints = await client.inlayHints(uri);
    assert.equal(hints.length, 1);
    assert.equal(hints[0]!.position.line, SCRATCH_LINE);
    assert.match(hints[0]!.label as string, /^← [+−±][\d.]+ (B|[KMG]iB) host RSS ×3$/);

    const hover = await client.hover(uri, lineOf("def load_layer("));
    const text = (hover?.contents as { value: string }).value;
    assert.match(text, /\| process \| call \| host_rss \| host_hwm \| time \|/);
    assert.equal(text.split("\n").filter((l) => /^\| pid \d+ · [^|]+ \| [123] \| .* → /.test(l)).length, 3);

    const diagnostics = await client.waitForDiagnostics(uri, (d) => d.some((x) => x.code === "not_found"));
    const notFound = diagnostics.find((d) => d.code === "not_found")!;
    assert.equal(notFound.message, "not found in any process: module host_loader has no attribute Nope");
    assert.equal(notFound.range.start.line, 0);
  } finally {
    await client.stop();
  }
});
