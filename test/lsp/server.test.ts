// The MemLens language server over its real transport: catalog lenses on a fixture vLLM tree,
// unsaved buffers, a recorded event stream turned into lenses, hovers, inlay hints and
// diagnostics, resolveQualname, untrusted mode, run folders and live updates.
import assert from "node:assert/strict";
import {
  appendFileSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import type { CodeLens, Diagnostic } from "vscode-languageserver-protocol";
import { loadBundledCatalog } from "../../src/catalog/catalog";
import type { ProbeEvent } from "../../src/protocol/events";
import { parseEventsText } from "../../src/protocol/reader";
import type { MeasureHereArgs, RunPayload } from "../../src/server/protocol";
import { FIXTURE_ROOT, LspTestClient, REPO_ROOT, fileUri, appendToRun, runFolder } from "./lspTestClient";

const QUANT_UTILS = path.join(FIXTURE_ROOT, "vllm/model_executor/layers/quantization/utils");
const FP4_FILE = path.join(QUANT_UTILS, "marlin_utils_fp4.py");
const MARLIN_FILE = path.join(QUANT_UTILS, "marlin_utils.py");
const RUNNER_FILE = path.join(FIXTURE_ROOT, "vllm/v1/worker/gpu_model_runner.py");
const WORKER_FILE = path.join(FIXTURE_ROOT, "vllm/v1/worker/gpu_worker.py");
const MXFP4_FILE = path.join(FIXTURE_ROOT, "vllm/model_executor/layers/quantization/mxfp4.py");
const FUSED_MOE_FILE = path.join(FIXTURE_ROOT, "vllm/model_executor/layers/fused_moe/layer.py");
const TRANSFORMERS_MXFP4 = path.join(FIXTURE_ROOT, "transformers/integrations/mxfp4.py");
const EVENTS_FILE = path.join(REPO_ROOT, "test/fixtures/events/gpt_oss_load.jsonl");
const REMOTE = "/opt/venv/lib/python3.12/site-packages";

const catalog = loadBundledCatalog();

function lineOf(file: string, needle: string): number {
  const index = readFileSync(file, "utf8")
    .split("\n")
    .findIndex((l) => l.includes(needle));
  assert.ok(index >= 0, `${needle} not in ${file}`);
  return index;
}

function fixtureEvents(): ProbeEvent[] {
  const parsed = parseEventsText(readFileSync(EVENTS_FILE, "utf8"));
  assert.equal(parsed.malformed.length, 0);
  return parsed.events;
}

function titles(lenses: CodeLens[]): string[] {
  return lenses.map((l) => l.command?.title ?? "");
}

function lensAt(lenses: CodeLens[], line: number): CodeLens[] {
  return lenses.filter((l) => l.range.start.line === line);
}

async function openFile(client: LspTestClient, file: string): Promise<string> {
  const uri = fileUri(file);
  await client.open(uri, readFileSync(file, "utf8"));
  return uri;
}

let client: LspTestClient | undefined;
afterEach(async () => {
  await client?.stop();
  client = undefined;
});

async function start(options?: Parameters<typeof LspTestClient.start>[0]): Promise<LspTestClient> {
  client = await LspTestClient.start(options);
  return client;
}

void describe("catalog lenses", () => {
  void test("server announces lenses, hovers and inlay hints", async () => {
    const c = await start();
    const caps = c.initializeResult.capabilities;
    assert.ok(caps.codeLensProvider);
    assert.equal(caps.hoverProvider, true);
    assert.ok(caps.inlayHintProvider);
  });

  void test("a Measure here lens on every hotspot def of the fixture vLLM tree, none on others", async () => {
    const c = await start();
    const uri = await openFile(c, FP4_FILE);
    const lenses = await c.codeLenses(uri);
    const hotspot = catalog.byId("vllm.marlin.prepare_moe_fp4")!;
    const moeLine = lineOf(FP4_FILE, "def prepare_moe_fp4_layer_for_marlin(");
    const mxfp4Line = lineOf(FP4_FILE, "def prepare_moe_mxfp4_layer_for_marlin(");
    assert.deepEqual(
      lenses.map((l) => l.range.start.line),
      [moeLine, mxfp4Line],
      "only the hotspot and its newer alias; not repack or prepare_fp4_layer_for_marlin",
    );
    for (const lens of lenses) {
      assert.equal(lens.command?.title, `$(pulse) Measure here · ${hotspot.question}`);
      assert.equal(lens.command?.command, "memlens.measureHere");
    }
    const args = lenses[0]!.command!.arguments![0] as MeasureHereArgs;
    assert.deepEqual(args, {
      uri,
      qualname: "prepare_moe_fp4_layer_for_marlin",
      module: "vllm.model_executor.layers.quantization.utils.marlin_utils_fp4",
      line: moeLine + 1,
      hotspot: "vllm.marlin.prepare_moe_fp4",
    });
    // The lens sits on the def line, on the name.
    assert.equal(lenses[0]!.range.start.character, "def ".length);
  });

  void test("methods by class qualname: GPUModelRunner's hotspots but not _dummy_run", async () => {
    const c = await start();
    const uri = await openFile(c, RUNNER_FILE);
    const lenses = await c.codeLenses(uri);
    const expected = [
      "load_model",
      "profile_run",
      "_allocate_kv_cache_tensors",
      "initialize_kv_cache",
      "capture_model",
    ].map((name) => lineOf(RUNNER_FILE, `def ${name}(`));
    assert.deepEqual(
      lenses.map((l) => l.range.start.line),
      expected.sort((a, b) => a - b),
    );
    assert.ok(titles(lenses).every((t) => t.startsWith("$(pulse) Measure here · ")));
  });

  void test("overloads: the lens goes on the implementation of FusedMoE.weight_loader", async () => {
    const c = await start();
    const uri = await openFile(c, FUSED_MOE_FILE);
    const lenses = await c.codeLenses(uri);
    const lines = readFileSync(FUSED_MOE_FILE, "utf8").split("\n");
    const defs = lines.flatMap((l, i) => (l.includes("def weight_loader(") ? [i] : []));
    assert.equal(defs.length, 3);
    assert.deepEqual(
      lenses.map((l) => l.range.start.line),
      [defs[2]],
    );
  });

  void test("transformers' MXFP4 dequantize functions are hotspots too", async () => {
    const c = await start();
    const uri = await openFile(c, TRANSFORMERS_MXFP4);
    const lenses = await c.codeLenses(uri);
    assert.deepEqual(
      lenses.map((l) => (l.command?.arguments?.[0] as MeasureHereArgs).qualname),
      ["convert_moe_packed_tensors", "dequantize"],
    );
  });

  void test("an unsaved buffer: lenses follow the text in the editor, not the file on disk", async () => {
    const c = await start();
    const uri = fileUri(WORKER_FILE);
    const disk = readFileSync(WORKER_FILE, "utf8");
    // Three lines more at the top, determine_available_memory renamed away.
    const edited = `# edited\n# not saved\n\n${disk.replace("def determine_available_memory(", "def free_bytes_left(")}`;
    await c.open(uri, edited);
    const lenses = await c.codeLenses(uri);
    const editedLines = edited.split("\n");
    const expected = ["init_device", "load_model", "initialize_from_config", "compile_or_warm_up_model"].map(
      (name) => editedLines.findIndex((l) => l.includes(`def ${name}(`)),
    );
    assert.deepEqual(
      lenses.map((l) => l.range.start.line),
      expected,
    );
    assert.equal(
      lensAt(lenses, lineOf(WORKER_FILE, "def init_device(")).length,
      0,
      "not at the on-disk line",
    );

    // Typing into the buffer moves the lenses again.
    const renamedBack = edited.replace("def free_bytes_left(", "def determine_available_memory(");
    await c.change(uri, renamedBack);
    const after = await c.codeLenses(uri);
    assert.equal(after.length, 5);
  });

  void test("an untitled buffer has no module: no catalog lenses, and Measure here asks to save", async () => {
    const c = await start();
    const uri = "untitled:Untitled-1";
    await c.open(uri, readFileSync(FP4_FILE, "utf8"));
    assert.deepEqual(await c.codeLenses(uri), []);
    const resolved = await c.resolveQualname({ uri, position: { line: 22, character: 4 } });
    assert.equal(resolved.ok, false);
    assert.match(resolved.ok ? "" : resolved.reason, /Save the file first/);
  });
});

void describe("a recorded run", () => {
  let events: ProbeEvent[];
  before(() => {
    events = fixtureEvents();
  });

  const copyLine = () => lineOf(FP4_FILE, "qweight = weight[i].view(torch.int32).T.contiguous()");

  async function withRun(payload?: Partial<RunPayload>): Promise<LspTestClient> {
    const c = await start();
    const result = await c.setRun({
      run: { id: "run-1", label: "gpt-oss fixture", dir: runFolder(events), ...payload },
    });
    assert.equal(result.error, undefined);
    assert.equal(result.runId, "run-1");
    assert.equal(result.events, events.length);
    assert.equal(result.targets, 7);
    return c;
  }

  void test("lens titles show the measured deltas per target", async () => {
    const c = await withRun();
    const uri = await openFile(c, FP4_FILE);
    const lenses = await c.codeLenses(uri);
    const moe = lensAt(lenses, lineOf(FP4_FILE, "def prepare_moe_fp4_layer_for_marlin("));
    // 2 workers × 24 layers × 200 MiB kept; 500 MiB above the start of the largest call.
    assert.deepEqual(titles(moe), [
      "+4.7 GiB allocated on rank 0 · 2 ranks · +4.7 GiB · peak +500.0 MiB · 48 calls · 2 processes",
    ]);
    assert.equal(moe[0]!.command?.command, "memlens.openPanel");
    assert.deepEqual(moe[0]!.command?.arguments, [{ runId: "run-1", target: "t1" }]);
    // The newer alias was not probed: it still offers Measure here.
    const alias = lensAt(lenses, lineOf(FP4_FILE, "def prepare_moe_mxfp4_layer_for_marlin("));
    assert.match(titles(alias)[0]!, /^\$\(pulse\) Measure here · /);
    // The ad-hoc target (not in the catalog) gets a lens too.
    assert.deepEqual(titles(lensAt(lenses, lineOf(FP4_FILE, "def repack("))), [
      "+32.0 MiB allocated · peak +24.0 MiB · 2 calls",
    ]);
    // And the probed line.
    assert.deepEqual(titles(lensAt(lenses, copyLine())), ["+8.3 MiB allocated · peak +8.2 MiB · 32 calls"]);

    const workspaceUri = await openFile(c, MARLIN_FILE);
    const workspace = await c.codeLenses(workspaceUri);
    assert.deepEqual(titles(lensAt(workspace, lineOf(MARLIN_FILE, "def marlin_make_workspace_new("))), [
      "+49.5 KiB allocated on rank 0 · 2 ranks · +49.5 KiB · peak +2.1 KiB · 48 calls · 2 processes",
    ]);
  });

  void test("hovers list every reading of every call and process", async () => {
    const c = await withRun();
    const uri = await openFile(c, FP4_FILE);
    const defLine = lineOf(FP4_FILE, "def prepare_moe_fp4_layer_for_marlin(");
    const hover = await c.hover(uri, defLine, 6);
    assert.ok(hover);
    const text = (hover.contents as { value: string }).value;
    assert.match(text, /prepare_moe_fp4_layer_for_marlin/);
    assert.match(text, /\| pid 300 · rank 0 · [^|]+ \| 24 \| \+4\.7 GiB \| \+500\.0 MiB \| 300\.0 MiB \|/);
    assert.match(text, /\| pid 301 · rank 1 · [^|]+ \| 24 \| \+4\.7 GiB \|/);
    assert.match(
      text,
      /\| process \| call \| allocated \| reserved \| device_used \| non_torch \| host_rss \| time \|/,
    );
    // First call of rank 0: 1 GiB before, +200 MiB after, 1.5 GiB peak; reserved grew 512 MiB.
    assert.match(
      text,
      /\| pid 300 · rank 0 · [^|]+ \| 1 \| 1\.0 GiB → 1\.2 GiB \(\+200\.0 MiB\) · peak 1\.5 GiB \| 2\.0 GiB → 2\.5 GiB \(\+512\.0 MiB\) · peak 2\.5 GiB \| .* \| 35\.0 ms \|/,
    );
    const callRows = text
      .split("\n")
      .filter((l) => /^\| pid 30[01] · rank [01] · [^|]+ \| \d+ \| \d/.test(l));
    assert.equal(callRows.length, 48);
    // The body is not the def: no hover there (beyond the catalog one on the header).
    assert.equal(await c.hover(uri, defLine + 3), null);
    // The probed line has its own hover.
    const lineHover = await c.hover(uri, copyLine(), 12);
    assert.match((lineHover?.contents as { value: string }).value, /32 calls/);
  });

  void test("inlay hint at the end of the probed line", async () => {
    const c = await withRun();
    const uri = await openFile(c, FP4_FILE);
    const hints = await c.inlayHints(uri);
    const line = copyLine();
    assert.equal(hints.length, 1);
    assert.deepEqual(hints[0]!.position, {
      line,
      character: readFileSync(FP4_FILE, "utf8").split("\n")[line]!.length,
    });
    assert.equal(hints[0]!.label, "← +8.3 MiB allocated ×32");
    assert.deepEqual(await c.inlayHints(uri, 0, line - 1), [], "outside the asked range: none");
  });

  void test("diagnostics: retained, transient, not found and OOM", async () => {
    const c = await withRun();
    const fp4 = await openFile(c, FP4_FILE);
    const fp4Diags = await c.waitForDiagnostics(fp4, (d) => d.length > 0);
    const at = (d: Diagnostic[], line: number) =>
      d.filter((x) => x.range.start.line === line).map((x) => `${x.severity}:${x.message}`);
    assert.deepEqual(at(fp4Diags, lineOf(FP4_FILE, "def prepare_moe_fp4_layer_for_marlin(")), [
      "2:retains 4.7 GiB after return (allocated, Σ over 24 calls, on rank 0, the most of 2 ranks)",
      "2:transient peak 300.0 MiB above what it keeps (allocated, largest call)",
    ]);
    assert.deepEqual(at(fp4Diags, lineOf(FP4_FILE, "def repack(")), [
      "3:retains 32.0 MiB after return (allocated, Σ over 2 calls)",
      "3:transient peak 8.0 MiB above what it keeps (allocated, largest call)",
    ]);
    assert.deepEqual(at(fp4Diags, copyLine()), [
      "3:retains 8.3 MiB after this line (allocated, Σ over 32 calls)",
      "3:transient peak 7.9 MiB above what it keeps (allocated, largest call)",
    ]);
    assert.ok(fp4Diags.every((d) => d.source === "MemLens"));

    const runner = await openFile(c, RUNNER_FILE);
    const runnerDiags = await c.waitForDiagnostics(runner, (d) => d.length > 0);
    assert.deepEqual(at(runnerDiags, lineOf(RUNNER_FILE, "def profile_run(")), [
      "2:transient peak 1.5 GiB above what it keeps (allocated, largest call)",
    ]);
    const kv = at(runnerDiags, lineOf(RUNNER_FILE, "def initialize_kv_cache("));
    assert.equal(kv[0], "2:retains 4.6 GiB after return (allocated, 1 call, on rank 1, the most of 2 ranks)");
    assert.match(kv[1]!, /^2:OOM here \(pid 300\): CUDA out of memory\. Tried to allocate 4\.60 GiB\./);

    // Never resolved: reported where its module is, at the top since the def is missing.
    const mxfp4 = await openFile(c, MXFP4_FILE);
    const mxfp4Diags = await c.waitForDiagnostics(mxfp4, (d) => d.length > 0);
    assert.deepEqual(at(mxfp4Diags, 0), [
      "2:not found in any process: module vllm.model_executor.layers.quantization.mxfp4 has no attribute Mxfp4MoEMethod.convert_in_place",
    ]);

    // Closing a document clears its diagnostics.
    await c.close(mxfp4);
    await c.waitForDiagnostics(mxfp4, (d) => d.length === 0);
  });

  void test("setRun null clears the run: lenses back to Measure here, diagnostics gone", async () => {
    const c = await withRun();
    const uri = await openFile(c, FP4_FILE);
    await c.waitForDiagnostics(uri, (d) => d.length > 0);
    const refreshes = c.codeLensRefreshes;
    assert.deepEqual(await c.setRun({ run: null }), {
      runId: null,
      events: 0,
      targets: 0,
      calls: 0,
      malformed: 0,
    });
    await c.waitForDiagnostics(uri, (d) => d.length === 0);
    await c.waitFor("a code lens refresh", () => c.codeLensRefreshes > refreshes);
    assert.ok(titles(await c.codeLenses(uri)).every((t) => t.startsWith("$(pulse) Measure here")));
  });

  void test("a live run: what the runner appends reaches the lenses, and the editor is asked to refresh", async () => {
    const c = await start();
    const cut = events.findIndex((e) => e.type === "enter" && e.target === "t1");
    const dir = runFolder(events.slice(0, cut));
    const result = await c.setRun({ run: { id: "live", dir } });
    assert.equal(result.calls, 0);
    const uri = await openFile(c, FP4_FILE);
    const moeLine = lineOf(FP4_FILE, "def prepare_moe_fp4_layer_for_marlin(");
    assert.deepEqual(titles(lensAt(await c.codeLenses(uri), moeLine)), [
      "$(loading~spin) probed · waiting for the first call",
    ]);
    const refreshes = c.codeLensRefreshes;
    appendToRun(dir, events.slice(cut));
    await c.setRun({ run: { id: "live", dir } });
    assert.deepEqual(titles(lensAt(await c.codeLenses(uri), moeLine)), [
      "+4.7 GiB allocated on rank 0 · 2 ranks · +4.7 GiB · peak +500.0 MiB · 48 calls · 2 processes",
    ]);
    await c.waitFor("a code lens refresh", () => c.codeLensRefreshes > refreshes);
    await c.waitFor("an inlay hint refresh", () => c.inlayHintRefreshes > 0);
  });

  void test("a run just started, with no events.jsonl yet, shows its probes waiting", async () => {
    const c = await start();
    const dir = runFolder([]);
    rmSync(path.join(dir, "events.jsonl"));
    const result = await c.setRun({
      run: {
        id: "starting",
        dir,
        targets: [
          {
            id: "t1",
            spec: "vllm.model_executor.layers.quantization.utils.marlin_utils_fp4:prepare_moe_fp4_layer_for_marlin",
            kind: "function",
          },
        ],
      },
    });
    assert.equal(result.error, undefined);
    const uri = await openFile(c, FP4_FILE);
    assert.deepEqual(
      titles(lensAt(await c.codeLenses(uri), lineOf(FP4_FILE, "def prepare_moe_fp4_layer_for_marlin("))),
      ["$(loading~spin) probed · waiting for the first call"],
    );
  });

  void test("a paused live run: samples do not make the editor refetch, the exit does once it fetched", async () => {
    // As in a debug session paused in t1: samples keep coming; VS Code restarts its wait for
    // every refresh request, so a request per batch kept the lens at "unfinished".
    const c = await start();
    const exitIndex = events.findIndex((e) => e.type === "exit" && e.target === "t1");
    const samples = events.filter((e) => e.type === "sample").slice(0, 3);
    assert.equal(samples.length, 3);
    const dir = runFolder(events.slice(0, exitIndex));
    await c.setRun({ run: { id: "paused", dir } });
    const uri = await openFile(c, FP4_FILE);
    const moeLine = lineOf(FP4_FILE, "def prepare_moe_fp4_layer_for_marlin(");
    assert.deepEqual(titles(lensAt(await c.codeLenses(uri), moeLine)), [
      "±0 B allocated · 1 call · 1 unfinished",
    ]);
    await c.inlayHints(uri);
    const lensRefreshes = c.codeLensRefreshes;
    const hintRefreshes = c.inlayHintRefreshes;
    for (const sample of samples) {
      appendToRun(dir, [sample]);
      await c.setRun({ run: { id: "paused", dir } });
    }
    // A request answered after the reads: any refresh they caused has arrived before it.
    assert.deepEqual(titles(lensAt(await c.codeLenses(uri), moeLine)), [
      "±0 B allocated · 1 call · 1 unfinished",
    ]);
    assert.equal(c.codeLensRefreshes, lensRefreshes, "samples change no lens: no refresh");
    assert.equal(c.inlayHintRefreshes, hintRefreshes, "samples change no hint: no refresh");

    appendToRun(dir, [events[exitIndex]!]);
    await c.setRun({ run: { id: "paused", dir } });
    await c.waitFor("a code lens refresh after the exit", () => c.codeLensRefreshes === lensRefreshes + 1);
    assert.deepEqual(titles(lensAt(await c.codeLenses(uri), moeLine)), [
      "+200.0 MiB allocated · peak +500.0 MiB · 1 call",
    ]);
  });

  void test("a live run folder: setRun again reads what the runner appended since", async () => {
    const c = await start();
    const dir = mkdtempSync(path.join(tmpdir(), "memlens-live-"));
    try {
      const cut = events.findIndex((e) => e.type === "enter" && e.target === "t1");
      const jsonl = (list: ProbeEvent[]) => list.map((e) => `${JSON.stringify(e)}\n`).join("");
      writeFileSync(path.join(dir, "events.jsonl"), jsonl(events.slice(0, cut)));
      const first = await c.setRun({ run: { id: "live-folder", dir } });
      assert.equal(first.events, cut);
      const uri = await openFile(c, FP4_FILE);
      const moeLine = lineOf(FP4_FILE, "def prepare_moe_fp4_layer_for_marlin(");
      assert.deepEqual(titles(lensAt(await c.codeLenses(uri), moeLine)), [
        "$(loading~spin) probed · waiting for the first call",
      ]);
      writeFileSync(path.join(dir, "events.jsonl"), jsonl(events));
      const second = await c.setRun({ run: { id: "live-folder", dir } });
      assert.equal(second.events, events.length);
      assert.deepEqual(titles(lensAt(await c.codeLenses(uri), moeLine)), [
        "+4.7 GiB allocated on rank 0 · 2 ranks · +4.7 GiB · peak +500.0 MiB · 48 calls · 2 processes",
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  void test("a run folder followed while written: half lines wait, reads queue up, a replaced file is read anew", async () => {
    const c = await start();
    const dir = mkdtempSync(path.join(tmpdir(), "memlens-follow-"));
    const file = path.join(dir, "events.jsonl");
    const folder = { id: "followed", dir };
    try {
      const lines = events.map((e) => `${JSON.stringify(e)}\n`);
      // The runner is in the middle of a line (it holds a multi-byte character, cut inside it).
      const half = Buffer.from(`${JSON.stringify({ ...events[10]!, note: "显存" }).slice(0, -1)},"x":1}\n`);
      const cutAt = half.indexOf(Buffer.from("显")) + 1;
      writeFileSync(file, lines.slice(0, 10).join(""));
      appendFileSync(file, half.subarray(0, cutAt));
      const first = await c.setRun({ run: folder });
      assert.equal(first.error, undefined);
      assert.equal(first.events, 10, "the unfinished line is not read yet");
      assert.equal(first.malformed, 0, "nor counted as malformed");
      appendFileSync(file, half.subarray(cutAt));
      appendFileSync(file, lines.slice(11).join(""));
      // Several setRuns of the same growing folder at once: none replaces another, the last has all.
      const results = await Promise.all([1, 2, 3, 4].map(() => c.setRun({ run: folder })));
      for (const result of results) assert.equal(result.error, undefined);
      assert.deepEqual(
        results.map((r) => r.events),
        [events.length, events.length, events.length, events.length],
      );
      assert.equal(results[3]!.malformed, 0);
      const uri = await openFile(c, FP4_FILE);
      assert.deepEqual(
        titles(lensAt(await c.codeLenses(uri), lineOf(FP4_FILE, "def prepare_moe_fp4_layer_for_marlin("))),
        ["+4.7 GiB allocated on rank 0 · 2 ranks · +4.7 GiB · peak +500.0 MiB · 48 calls · 2 processes"],
      );
      // Replaced by a shorter file (a run folder reused): read from the start, not from the old end.
      writeFileSync(file, lines.slice(0, 16).join(""));
      const replaced = await c.setRun({ run: folder });
      assert.equal(replaced.events, 16);
      assert.deepEqual(
        titles(lensAt(await c.codeLenses(uri), lineOf(FP4_FILE, "def prepare_moe_fp4_layer_for_marlin("))),
        ["$(loading~spin) probed · waiting for the first call"],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

void describe("run folders and path mapping", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "memlens-lsp-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  void test("a run folder read by the server, mapped onto a copy of the source elsewhere", async () => {
    const runDir = path.join(dir, "run");
    mkdirSync(runDir);
    const text = readFileSync(EVENTS_FILE, "utf8");
    writeFileSync(path.join(runDir, "events.jsonl"), `${text}this line is not JSON\n`);
    writeFileSync(
      path.join(runDir, "meta.json"),
      JSON.stringify({
        id: "folder-run",
        label: "from disk",
        targets: [
          {
            id: "t1",
            spec: `vllm.model_executor.layers.quantization.utils.marlin_utils_fp4:prepare_moe_fp4_layer_for_marlin`,
            hotspot: "vllm.marlin.prepare_moe_fp4",
          },
        ],
      }),
    );
    // A checkout that is not a package tree: only the path mapping can find it.
    const local = path.join(dir, "checkout");
    mkdirSync(local);
    const copy = path.join(local, "marlin_utils_fp4.py");
    copyFileSync(FP4_FILE, copy);

    const c = await start({ initializationOptions: { sourceRoots: [] } });
    const result = await c.setRun({
      run: {
        id: "folder-run",
        dir: runDir,
        pathMappings: [{ remote: `${REMOTE}/vllm/model_executor/layers/quantization/utils`, local }],
      },
    });
    assert.equal(result.error, undefined);
    assert.equal(result.malformed, 1);
    const uri = await openFile(c, copy);
    const lenses = await c.codeLenses(uri);
    assert.deepEqual(titles(lensAt(lenses, lineOf(copy, "def prepare_moe_fp4_layer_for_marlin("))), [
      "+4.7 GiB allocated on rank 0 · 2 ranks · +4.7 GiB · peak +500.0 MiB · 48 calls · 2 processes",
    ]);
    assert.deepEqual(titles(lensAt(lenses, lineOf(copy, "qweight = weight[i].view(torch.int32)"))), [
      "+8.3 MiB allocated · peak +8.2 MiB · 32 calls",
    ]);
  });

  void test("a folder that is not a run, and a newer protocol, give clear errors", async () => {
    const c = await start();
    const missing = await c.setRun({
      run: { id: "x", dir: path.join(dir, "nope") },
    });
    assert.equal(missing.runId, null);
    assert.match(missing.error ?? "", /Cannot read .*events\.jsonl.*Is .* a MemLens run folder\?/);

    const v2 = path.join(dir, "v2");
    mkdirSync(v2);
    writeFileSync(
      path.join(v2, "events.jsonl"),
      `${JSON.stringify({ v: 2, type: "start", ts: 1, pid: 1 })}\n`,
    );
    const newer = await c.setRun({ run: { id: "y", dir: v2 } });
    assert.match(newer.error ?? "", /protocol v2 from the probe; this MemLens reads v1/);
  });
});

void describe("resolveQualname", () => {
  void test("functions, nested functions, lines, and where there is nothing to measure", async () => {
    const c = await start();
    const uri = await openFile(c, RUNNER_FILE);
    const bodyLine = lineOf(RUNNER_FILE, "hidden_states = self._dummy_run(8192)");
    assert.deepEqual(await c.resolveQualname({ uri, position: { line: bodyLine, character: 8 } }), {
      ok: true,
      kind: "function",
      module: "vllm.v1.worker.gpu_model_runner",
      qualname: "GPUModelRunner.profile_run",
      line: lineOf(RUNNER_FILE, "def profile_run(") + 1,
      file: RUNNER_FILE,
      spec: "vllm.v1.worker.gpu_model_runner:GPUModelRunner.profile_run",
      hotspot: "vllm.runner.profile_run",
    });
    const asLine = await c.resolveQualname({ uri, position: { line: bodyLine, character: 8 }, want: "line" });
    assert.deepEqual(asLine, {
      ok: true,
      kind: "line",
      module: "vllm.v1.worker.gpu_model_runner",
      qualname: "GPUModelRunner.profile_run",
      line: bodyLine + 1,
      file: RUNNER_FILE,
      spec: `${RUNNER_FILE}:${bodyLine + 1}`,
    });
    const blank = await c.resolveQualname({
      uri,
      position: { line: bodyLine + 3, character: 0 },
      want: "line",
    });
    assert.equal(blank.ok, false);
    assert.match(blank.ok ? "" : blank.reason, /^Line \d+ has no code/);

    const classBody = await c.resolveQualname({
      uri,
      position: { line: lineOf(RUNNER_FILE, "class GPUModelRunner"), character: 0 },
      want: "function",
    });
    assert.match(
      classBody.ok ? "" : classBody.reason,
      /in the body of class GPUModelRunner, not in a function/,
    );

    const fp4 = await openFile(c, FP4_FILE);
    const nestedPosition = { line: lineOf(FP4_FILE, "def permute_scales(") + 2, character: 12 };
    const nested = await c.resolveQualname({ uri: fp4, position: nestedPosition });
    assert.deepEqual(nested, {
      ok: false,
      reason:
        "permute_scales is defined inside prepare_moe_mxfp4_layer_for_marlin, and the probe can only reach functions by name from their module. Measure prepare_moe_mxfp4_layer_for_marlin, or a line inside permute_scales.",
    });
    const nestedLine = await c.resolveQualname({ uri: fp4, position: nestedPosition, want: "line" });
    assert.equal(
      nestedLine.ok && nestedLine.qualname,
      "prepare_moe_mxfp4_layer_for_marlin.<locals>.permute_scales",
    );

    // A statement over several lines is measured from its first line.
    const multi = lineOf(FP4_FILE, "setattr(");
    const continuation = await c.resolveQualname({
      uri: fp4,
      position: { line: multi + 2, character: 12 },
      want: "line",
    });
    assert.equal(continuation.ok && continuation.line, multi + 1);
  });
});

void describe("untrusted workspace", () => {
  void test("lenses still show, say why they will not run, and open the trust editor", async () => {
    const c = await start({ initializationOptions: { trusted: false } });
    const uri = await openFile(c, FP4_FILE);
    const lenses = await c.codeLenses(uri);
    assert.equal(lenses.length, 2);
    for (const lens of lenses) {
      assert.match(lens.command!.title, /Measure here \(workspace not trusted\)/);
      assert.equal(lens.command!.command, "workbench.trust.manage");
      assert.equal(lens.command!.arguments, undefined);
    }
    const refreshes = c.codeLensRefreshes;
    await c.setTrust(true);
    await c.waitFor("a code lens refresh", () => c.codeLensRefreshes > refreshes);
    const trusted = await c.codeLenses(uri);
    assert.ok(trusted.every((l) => l.command!.command === "memlens.measureHere"));
  });
});

void describe("configuration", () => {
  void test("source roots decide module names of files outside packages", async () => {
    const c = await start({ initializationOptions: { sourceRoots: [] } });
    const dir = mkdtempSync(path.join(tmpdir(), "memlens-roots-"));
    try {
      // A namespace-style tree (no __init__.py): only a source root gives it a module name.
      const file = path.join(dir, "vllm/model_executor/layers/quantization/utils/marlin_utils.py");
      mkdirSync(path.dirname(file), { recursive: true });
      copyFileSync(MARLIN_FILE, file);
      const uri = await openFile(c, file);
      assert.deepEqual(await c.codeLenses(uri), []);
      await c.setConfig([dir]);
      const lenses = await c.codeLenses(uri);
      assert.equal(lenses.length, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
