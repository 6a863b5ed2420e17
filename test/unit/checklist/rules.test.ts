import { test } from "node:test";
import assert from "node:assert/strict";
import { RunModel } from "../../../src/model/runModel";
import { CHECKLIST_ITEMS, type ChecklistContext, type ChecklistResult } from "../../../src/checklist/items";
import { evaluateChecklist, evaluateItem } from "../../../src/checklist/rules";
import { knownModelBudget } from "../../../src/budget/modelBudget";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { lineText, metaTargets, NO, vllmRun, YES, type Scenario } from "./vllmRun";

const model = knownModelBudget("openai/gpt-oss-20b")!;
const SEED = readFileSync(path.resolve(__dirname, "../../fixtures/export/seed.md"), "utf8");

function results(s: Scenario, extra: Partial<ChecklistContext> = {}): Map<string, ChecklistResult> {
  const run = RunModel.fromEvents(vllmRun(s));
  const list = evaluateChecklist({ run, meta: metaTargets(s), model, lineText, ...extra });
  return new Map(list.map((r) => [r.item.id, r]));
}

const yes = results(YES);
const no = results(NO);

function check(id: string, verdict: "yes" | "no", r: ChecklistResult | undefined, answer: RegExp): void {
  assert.ok(r, id);
  assert.equal(r.state, "answered", `${id}: ${r.answer}`);
  assert.equal(r.verdict, verdict, `${id}: ${r.answer}`);
  assert.match(r.answer, answer, id);
}

void test("every item quotes the seed exactly, and every open question of 1.2 / 2.x and row of 4.x is an item", () => {
  for (const item of CHECKLIST_ITEMS) assert.ok(SEED.includes(item.seed), item.seed);
  const openQuestions = [...SEED.matchAll(/^- \[ \] (.*)$/gm)].map((m) => m[1]);
  const tableRows = [...SEED.matchAll(/^\| ([^|]+?) \| ~/gm)].map((m) => m[1]);
  assert.equal(openQuestions.length, 14);
  assert.equal(tableRows.length, 6);
  for (const q of [...openQuestions, ...tableRows]) {
    assert.ok(
      CHECKLIST_ITEMS.some((i) => i.seed === q),
      `seed line "${q}" has no checklist item`,
    );
  }
  assert.equal(new Set(CHECKLIST_ITEMS.map((i) => i.id)).size, CHECKLIST_ITEMS.length);
});

void test("1.2 overheads: yes and no", () => {
  check(
    "overhead.kv_cache",
    "yes",
    yes.get("overhead.kv_cache"),
    /^Yes: 56\.02 GiB preallocated for the KV cache for 1,223,776 tokens/,
  );
  check("overhead.kv_cache", "no", no.get("overhead.kv_cache"), /no memory left/);
  check(
    "overhead.marlin_workspace",
    "yes",
    yes.get("overhead.marlin_workspace"),
    /Per layer: 24 workspaces of 2\.5 KiB/,
  );
  check(
    "overhead.marlin_workspace",
    "no",
    no.get("overhead.marlin_workspace"),
    /Shared: one workspace of 2\.5 KiB/,
  );
  check(
    "overhead.conversion_copy",
    "yes",
    yes.get("overhead.conversion_copy"),
    /up to 233\.5 MiB above what it keeps \(max over 24 calls\)/,
  );
  check("overhead.conversion_copy", "no", no.get("overhead.conversion_copy"), /needed nothing above/);
  check("overhead.cuda_context", "yes", yes.get("overhead.cuda_context"), /134\.0 MiB outside torch/);
  check("overhead.cuda_context", "no", no.get("overhead.cuda_context"), /^No: 0 B outside torch/);
  check("overhead.activation", "yes", yes.get("overhead.activation"), /activation peak 1\.40 GiB/);
});

void test("activation overhead is 'no' when the profile run allocated nothing", () => {
  // NO logs no memory_profiling (no KV memory), so the profile_run probe answers.
  const r = no.get("overhead.activation")!;
  check("overhead.activation", "no", r, /activation peak 0 B/);
  assert.match(r.evidence[0]!.text, /peak − before of .*profile_run/);
});

void test("2.1: contiguous copy from the line probe, repack in place, originals freed", () => {
  const copy = yes.get("load.contiguous_copy")!;
  check("load.contiguous_copy", "yes", copy, /new 7\.9 MiB tensor \(8,294,400 B, .*\), 1536× in all/);
  assert.deepEqual(copy.codeLink, {
    file: "/opt/vllm/vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py",
    line: 298,
  });
  assert.equal(copy.evidence[0]!.pid, 4202);
  check("load.contiguous_copy", "no", no.get("load.contiguous_copy"), /allocated nothing in 1536 executions/);

  check(
    "load.repack_inplace",
    "no",
    yes.get("load.repack_inplace"),
    /each call allocates a new 7\.9 MiB output tensor \(1,536 calls\)/,
  );
  check(
    "load.repack_inplace",
    "yes",
    no.get("load.repack_inplace"),
    /allocated nothing in 1,536 calls \(in place\)/,
  );

  const freed = yes.get("load.original_freed")!;
  check(
    "load.original_freed",
    "yes",
    freed,
    /keeps only \+36\.5 MiB .* 403\.9 MiB of original expert weights were freed/,
  );
  assert.equal(freed.evidence[1]!.bytes, 423_567_360);
  check(
    "load.original_freed",
    "no",
    no.get("load.original_freed"),
    /keeps \+440\.4 MiB, about a whole new copy/,
  );
});

void test("the line probe is found by the checklist's own target id when its source is not readable", () => {
  const run = RunModel.fromEvents(vllmRun({ ...YES, checklistLineId: true }));
  const item = CHECKLIST_ITEMS.find((i) => i.id === "load.contiguous_copy")!;
  const r = evaluateItem(item, { run, model });
  check("load.contiguous_copy", "yes", r, /8,294,400 B/);
  // Without either, the run cannot say which line it measured.
  const plain = evaluateItem(item, { run: RunModel.fromEvents(vllmRun(YES)), model });
  assert.equal(plain.state, "needs_probe");
  assert.match(
    plain.answer,
    /add a probe on the line of marlin_utils_fp4\.py with \.view\(torch\.int32\)\.T\.contiguous\(\)/,
  );
  assert.equal(plain.nextProbes[0]?.line?.insideFunction, "prepare_moe_fp4_layer_for_marlin");
});

void test("2.2 workspace: per layer, size, can share", () => {
  check(
    "workspace.per_layer",
    "yes",
    yes.get("workspace.per_layer"),
    /24 calls of marlin_make_workspace_new in pid 4202 for 24 MoE layers, each keeps 2\.5 KiB/,
  );
  check(
    "workspace.per_layer",
    "no",
    no.get("workspace.per_layer"),
    /Shared: one workspace is kept in pid 4202 \(1 call for 24 MoE layers\)/,
  );
  check("workspace.size", "yes", yes.get("workspace.size"), /2\.5 KiB each \(2\.6e-3 MB/);
  const freedInside = results({ ...YES, workspaceBytes: 0 });
  check(
    "workspace.size",
    "no",
    freedInside.get("workspace.size"),
    /0 B: the workspace is freed again inside the call \(24 calls\)/,
  );
  const share = yes.get("workspace.can_share")!;
  check(
    "workspace.can_share",
    "yes",
    share,
    /24 identical 2\.5 KiB workspaces on device 0; one shared would save 57\.5 KiB/,
  );
  assert.equal(share.saving?.bytes, 23 * 2560);
  check("workspace.can_share", "no", no.get("workspace.can_share"), /a single workspace is kept already/);
});

void test("2.3 KV cache: blocks, block size, gpu_memory_utilization", () => {
  check("kv.blocks", "yes", yes.get("kv.blocks"), /1,223,776 tokens = 76,486 blocks of 16 tokens/);
  check("kv.blocks", "no", no.get("kv.blocks"), /None: vLLM found no memory/);
  const bytes = yes.get("kv.block_bytes")!;
  check(
    "kv.block_bytes",
    "yes",
    bytes,
    /32\.0 KiB per layer per 16-token block, 768\.0 KiB across 24 layers \(theory\); .* per block across all layers \(measured/,
  );
  const none = evaluateItem(CHECKLIST_ITEMS.find((i) => i.id === "kv.block_bytes")!, {
    run: RunModel.fromEvents(vllmRun(NO)),
  });
  assert.equal(none.state, "needs_run", "no config and no KV facts: the KV probe never ran");
  assert.match(none.answer, /never called/);
  check(
    "kv.gpu_memory_utilization",
    "yes",
    yes.get("kv.gpu_memory_utilization"),
    /79\.19 GiB × 0\.9 = 71\.27 GiB; minus weights 13\.72 GiB/,
  );
  const unlogged = no.get("kv.gpu_memory_utilization")!;
  assert.equal(unlogged.state, "needs_run");
  assert.match(unlogged.answer, /the run ended before vLLM logs its memory profiling/);
});

void test("2.4 MoE temporary buffers", () => {
  check(
    "activation.moe_buffers",
    "yes",
    yes.get("activation.moe_buffers"),
    /up to 91\.0 MiB of temporary buffers/,
  );
  check("activation.moe_buffers", "no", no.get("activation.moe_buffers"), /allocated no temporary buffers/);
});

void test("section 4 rows: measured savings, yes and no", () => {
  const ws = yes.get("opt.shared_workspace")!;
  check("opt.shared_workspace", "yes", ws, /Measured saving 57\.5 KiB \(23 × 2\.5 KiB\), not ~1 GB/);
  check("opt.shared_workspace", "no", no.get("opt.shared_workspace"), /No saving/);
  const inplace = yes.get("opt.inplace_conversion")!;
  check(
    "opt.inplace_conversion",
    "yes",
    inplace,
    /transient peak 233\.5 MiB \(the originals are freed already\)/,
  );
  assert.equal(inplace.saving?.bytes, 283_115_520 - (461_815_808 - 423_567_360));
  const keptOriginals = no.get("opt.inplace_conversion")!;
  check("opt.inplace_conversion", "yes", keptOriginals, /plus 9\.47 GiB of originals kept alive/);
  const none = results({ ...YES, conversionTransient: 0 });
  check("opt.inplace_conversion", "no", none.get("opt.inplace_conversion"), /No saving/);

  check("opt.lazy_kv", "no", yes.get("opt.lazy_kv"), /allocates the KV cache last/);
  check("opt.lazy_kv", "no", no.get("opt.lazy_kv"), /no memory left for the KV cache/);
  const oom = results({ ...YES, oomAfterKv: true });
  check("opt.lazy_kv", "yes", oom.get("opt.lazy_kv"), /out-of-memory came after the KV cache took/);

  check(
    "opt.fewer_blocks",
    "yes",
    yes.get("opt.fewer_blocks"),
    /holds 38243× what one 32-token request needs/,
  );
  const single = results({ ...YES, concurrency: 1 });
  check("opt.fewer_blocks", "no", single.get("opt.fewer_blocks"), /holds just one request/);

  check(
    "opt.disable_buffers",
    "yes",
    yes.get("opt.disable_buffers"),
    /MoE temporary buffers 91\.0 MiB \+ allocator cache held by no tensor 48\.0 MiB/,
  );
  check("opt.disable_buffers", "no", no.get("opt.disable_buffers"), /Nothing to save/);

  check("opt.cuda_graph", "yes", yes.get("opt.cuda_graph"), /Up to 481\.3 MiB taken by CUDA graph capture/);
  const eager = results({ ...YES, graphBytes: null });
  assert.equal(eager.get("opt.cuda_graph")!.state, "needs_run");
  const zero = results({ ...YES, graphBytes: 0 });
  check("opt.cuda_graph", "no", zero.get("opt.cuda_graph"), /No saving: 0 B/);
});

void test("without a run every item needs one; without probes, items say which probe to add", () => {
  for (const r of evaluateChecklist({})) {
    assert.equal(r.state, "needs_run");
    assert.match(r.answer, /No run yet/);
  }
  // A run that only logged facts: probe-based items ask for their probe by function name.
  const factsOnly = RunModel.fromEvents(
    vllmRun(YES).filter((e) => e.type !== "enter" && e.type !== "exit" && e.type !== "target_resolved"),
  );
  const list = new Map(evaluateChecklist({ run: factsOnly, model }).map((r) => [r.item.id, r]));
  const ws = list.get("workspace.per_layer")!;
  assert.equal(ws.state, "needs_probe");
  assert.match(ws.answer, /marlin_utils:marlin_make_workspace_new/);
  assert.equal(ws.nextProbes[0]?.hotspot, "vllm.marlin.workspace_new");
  assert.equal(list.get("overhead.kv_cache")!.state, "answered", "facts still answer the KV items");
  assert.equal(list.get("overhead.activation")!.state, "answered");
});

void test("a probe in the plan that was never called asks for a longer run, with the probe's reason", () => {
  const events = vllmRun(YES).filter(
    (e) => !("target" in e && e.target === "t3" && (e.type === "enter" || e.type === "exit")),
  );
  events.push({
    v: 1,
    type: "target_not_found",
    ts: 1,
    pid: 4202,
    rank: 0,
    device: 0,
    target: "t3",
    spec: "vllm.model_executor.layers.quantization.utils.marlin_utils:marlin_make_workspace_new",
    reason: "module vllm.model_executor.layers.quantization.utils.marlin_utils was never imported",
  });
  const r = evaluateItem(CHECKLIST_ITEMS.find((i) => i.id === "workspace.size")!, {
    run: RunModel.fromEvents(events),
    meta: metaTargets(YES),
  });
  assert.equal(r.state, "needs_run");
  assert.match(r.answer, /never called \(module .* was never imported\)/);
});
