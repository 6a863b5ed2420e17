// The recorded real vLLM 0.26.0 loads of gpt-oss-20b on an H200 (media/demo/runs, recorded with
// scripts/vllm/gpu-run.sh): the catalog's expected call counts, the processes, vLLM's own figures
// and the 16 GiB answer, checked on what vLLM really did rather than on a hand-made stand-in.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { loadBundledCatalog } from "../../../src/catalog/catalog";
import { RunModel } from "../../../src/model/runModel";
import type { ProbeEvent } from "../../../src/protocol/events";
import { loadRun } from "../../../src/runner/store";
import { main } from "../../../src/cli/main";

const RUNS = path.resolve(__dirname, "..", "..", "..", "media", "demo", "runs");
const EAGER = path.join(RUNS, "gpt-oss-20b-h200");
const EMULATED = path.join(RUNS, "gpt-oss-20b-h200-emulated-16gib");
const SCENARIO = "vllm-0.26.0-gpt-oss-20b-eager";
const MARLIN = 'moe_backend="marlin"';

async function recorded(dir: string) {
  const stored = await loadRun(dir);
  assert.equal(stored.malformed.length, 0, `${dir}: every line is an event`);
  return { stored, run: RunModel.fromEvents(stored.events) };
}

function engineCorePid(run: RunModel): number {
  const engine = [...run.processes.values()].filter((p) => p.name === "EngineCore");
  assert.equal(engine.length, 1, "one EngineCore process (tensor_parallel_size=1)");
  return engine[0]!.pid;
}

void test("every catalog hotspot on the eager Marlin load fires in the EngineCore as often as the catalog says", async () => {
  const { stored, run } = await recorded(EAGER);
  const enginePid = engineCorePid(run);
  const targetsByHotspot = new Map<string, string[]>();
  for (const t of stored.meta.targets ?? []) {
    if (t.hotspot) targetsByHotspot.set(t.hotspot, [...(targetsByHotspot.get(t.hotspot) ?? []), t.id]);
  }
  const expectations = loadBundledCatalog().expectationsFor(SCENARIO, MARLIN);
  assert.ok(expectations.length >= 20, "the catalog records counts for this start-up");
  const checked: string[] = [];
  for (const { hotspot, expected } of expectations) {
    const calls = (targetsByHotspot.get(hotspot.id) ?? [])
      .flatMap((id) => run.callsOf(id))
      .filter((c) => !c.open);
    const elsewhere = calls.filter((c) => c.pid !== enginePid);
    assert.deepEqual(elsewhere, [], `${hotspot.id} runs only in the EngineCore`);
    if (expected.calls !== undefined) {
      assert.equal(calls.length, expected.calls, `${hotspot.id}: ${expected.why}`);
    } else if (expected.perForward !== undefined && expected.perForward > 0) {
      assert.ok(calls.length > 0, `${hotspot.id} ran in the forward passes`);
      assert.equal(calls.length % expected.perForward, 0, `${hotspot.id}: ${expected.why}`);
    }
    checked.push(hotspot.id);
  }
  // The ones the issue named: the 24 MoE layers and what they call.
  for (const id of ["vllm.marlin.prepare_moe_fp4", "vllm.marlin.repack", "vllm.runner.profile_run"]) {
    assert.ok(checked.includes(id), `${id} has an expected count`);
  }
});

void test("resolved but never called stays apart from not found", async () => {
  const { stored, run } = await recorded(EAGER);
  const enginePid = engineCorePid(run);
  const neverCalled: string[] = [];
  const notFound: string[] = [];
  for (const t of stored.meta.targets ?? []) {
    const info = run.targets.get(t.id);
    if (info?.resolved.has(enginePid) && run.callsOf(t.id).length === 0) neverCalled.push(t.spec);
    // A forked EngineCore inherits its parent's hooks and resolves nothing again: "not found" is
    // said by the processes that looked.
    if (info && info.resolved.size === 0 && info.notFound.size > 0) notFound.push(t.spec);
  }
  // Dummy weights never go through the checkpoint loaders; V0 names do not exist in 0.26.0.
  assert.ok(
    neverCalled.some((s) => s.endsWith(":GptOssModel._load_weights_mxfp4")),
    neverCalled.join("\n"),
  );
  assert.ok(
    notFound.some((s) => s.startsWith("vllm.worker.worker:")),
    notFound.join("\n"),
  );
  assert.equal(
    neverCalled.filter((s) => notFound.includes(s)).length,
    0,
    "a target is never both resolved-and-idle and missing",
  );
});

void test("the EngineCore runs torch 2.11 / vLLM 0.26.0 and vLLM's own figures agree with the probe", async () => {
  const { stored, run } = await recorded(EAGER);
  const enginePid = engineCorePid(run);
  const hello = stored.events.find(
    (e): e is Extract<ProbeEvent, { type: "hello" }> => e.type === "hello" && e.pid === enginePid,
  );
  assert.equal(hello?.torch, "2.11.0+cu130");
  assert.ok(
    stored.events.some((e) => e.type === "log" && e.line.includes("Initializing a V1 LLM engine (v0.26.0)")),
    "vLLM names its version in the log",
  );
  const loading = run.factsOf("model_loading")[0]!;
  const load = run.summaries().find((s) => s.spec?.endsWith(":GPUModelRunner.load_model"))!;
  // vLLM prints "13.8 GiB": one decimal.
  assert.ok(Math.abs(loading.values.bytes! - load.retained) <= 0.05 * 1024 ** 3);
  assert.equal(run.factsOf("kv_cache_size")[0]!.values.tokens, 2_079_270);
  const kv = run.summaries().find((s) => s.spec?.endsWith(":GPUModelRunner.initialize_kv_cache_tensors"))!;
  const available = run.factsOf("available_kv_cache")[0]!.values.bytes!;
  assert.ok(kv.retained <= available && available - kv.retained < 0.01 * 1024 ** 3);
});

void test("the emulated 16 GiB card: weights load, the KV cache does not fit, and the run says where", async () => {
  const { stored, run } = await recorded(EMULATED);
  engineCorePid(run);
  assert.equal(stored.meta.emulation?.gpuGiB, 16);
  const emulated = run.factsOf("emulated_device")[0]!;
  assert.equal(emulated.values.bytes, 16 * 1024 ** 3);
  const load = run.summaries().find((s) => s.spec?.endsWith(":GPUModelRunner.load_model"))!;
  assert.ok(
    load.retained > 13.7 * 1024 ** 3 && load.retained < 13.9 * 1024 ** 3,
    "13.8 GiB of weights loaded",
  );
  assert.ok(run.factsOf("available_kv_cache")[0]!.values.bytes! < 0, "vLLM computed a negative KV budget");
  assert.ok(run.factsOf("no_kv_memory").length > 0, "vLLM's 'No available memory for the cache blocks'");
  assert.equal(stored.meta.status, "failed");
});

void test("memlens report works on the recorded run", async () => {
  let out = "";
  let err = "";
  const code = await main(
    ["report", EAGER, "--json"],
    (t) => (out += t),
    (t) => (err += t),
  );
  assert.equal(code, 0, err);
  const report = JSON.parse(out) as Record<string, unknown>;
  assert.ok(JSON.stringify(report).includes("2,079,270") || JSON.stringify(report).includes("2079270"));
});

void test("the compiled run, kept as events.jsonl.gz, reads like any run: capture and compile notes, same vLLM figures", async () => {
  const { stored, run } = await recorded(path.join(RUNS, "gpt-oss-20b-h200-compiled"));
  engineCorePid(run);
  assert.equal(stored.meta.status, "finished");
  const notes = stored.events.filter((e) => e.type === ("note" as string)) as unknown as { kind: string }[];
  assert.ok(
    notes.some((n) => n.kind === "compiled"),
    "the probe said the forward probe is traced into compiled code",
  );
  assert.ok(
    notes.some((n) => n.kind === "cuda_graph_capture"),
    "and that scopes ran during a CUDA graph capture",
  );
  assert.ok(
    (run.factsOf("graph_capture")[0]?.values.bytes ?? 0) > 1024 ** 3,
    "graph capture took over 1 GiB",
  );
  assert.equal(run.factsOf("kv_cache_size")[0]!.values.tokens, 2_067_526);
  const generated = stored.events.find(
    (e) => e.type === "log" && e.line.startsWith("memlens-target: generated_token_ids"),
  );
  assert.ok(generated, "one generate call was served under the probe");
});

void test("the checklist on the real run: Marlin workspaces are made in the forward passes, not kept by the load", async () => {
  let out = "";
  const code = await main(
    ["report", EAGER, "--json"],
    (t) => (out += t),
    () => undefined,
  );
  assert.equal(code, 0);
  const items = (
    JSON.parse(out) as { checklist: { id: string; answer: string; saving?: { bytes: number } }[] }
  ).checklist;
  const perLayer = items.find((i) => i.id === "workspace.per_layer")!;
  assert.match(perLayer.answer, /inside every forward pass \(72 calls/);
  assert.equal(items.find((i) => i.id === "opt.shared_workspace")!.saving?.bytes, 0);
  // vLLM 0.26's own budget line: total × utilization − weights − non-torch − activation = KV.
  assert.match(
    items.find((i) => i.id === "kv.gpu_memory_utilization")!.answer,
    /139\.80 GiB × 0\.98 = 137\.00 GiB.*118\.98 GiB for the KV cache/,
  );
});

void test("the checklist answers the copy and the originals from the real load's allocation sites", async () => {
  const output: string[] = [];
  const code = await main(
    ["report", EAGER, "--model", "openai/gpt-oss-20b", "--json"],
    (s: string) => output.push(s),
    () => undefined,
  );
  assert.equal(code, 0);
  const report = JSON.parse(output.join("")) as {
    checklist: { id: string; verdict?: string; answer: string }[];
  };
  const byId = new Map(report.checklist.map((a) => [a.id, a]));
  const copy = byId.get("load.contiguous_copy")!;
  // 768 w13 copies of 9,043,968 B and 768 w2 copies of 4,521,984 B, all freed: 6,782,976 B on average.
  assert.equal(copy.verdict, "yes", copy.answer);
  assert.match(copy.answer, /marlin_utils_fp4\.py:320 allocated 1,536 tensors.*6,782,976 B/);
  const freed = byId.get("load.original_freed")!;
  assert.equal(freed.verdict, "yes", freed.answer);
  assert.match(freed.answer, /192\.0 KiB/);
});
