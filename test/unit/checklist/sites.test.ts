// Checklist 2.1 answered from the conversion's allocation sites (test/fixtures/events/sites_oom.jsonl,
// its host paths mapped onto the fixture checkout as the editor maps them): the `.contiguous()`
// copy without a line probe, whether the repack is in place, whether the originals are freed; and
// the answers without sites stay what they were.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { evaluateChecklist } from "../../../src/checklist/rules";
import type { ChecklistResult } from "../../../src/checklist/items";
import { RunModel } from "../../../src/model/runModel";
import type { ProbeEvent } from "../../../src/protocol/events";
import { parseEventsText } from "../../../src/protocol/reader";
import { createHostPathMapper, mapEventPaths } from "../../../src/runner/pathMap";

const REPO = path.resolve(__dirname, "..", "..", "..");
const FIXTURE_ROOT = path.join(REPO, "test/fixtures/python");
const FP4 = path.join(FIXTURE_ROOT, "vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py");

function events(): ProbeEvent[] {
  const parsed = parseEventsText(
    readFileSync(path.join(REPO, "test/fixtures/events/sites_oom.jsonl"), "utf8"),
  );
  assert.equal(parsed.malformed.length, 0);
  const mapper = createHostPathMapper({
    sourceRoots: [FIXTURE_ROOT],
    pathMappings: [],
    fileExists: existsSync,
  });
  return parsed.events.map((e) => mapEventPaths(e, mapper));
}

/** The source of a local line, as the extension gives the checklist. */
function lineText(file: string, line: number): string | undefined {
  try {
    return readFileSync(file, "utf8").split("\n")[line - 1];
  } catch {
    return undefined;
  }
}

function answers(list: ProbeEvent[], withSource = true): Map<string, ChecklistResult> {
  const run = RunModel.fromEvents(list);
  return new Map(
    evaluateChecklist({ run, ...(withSource ? { lineText } : {}) }).map((r) => [r.item.id, r] as const),
  );
}

void test("the .contiguous() copy from sites, without a line probe: bytes per tensor and count", () => {
  for (const withSource of [true, false]) {
    const r = answers(events(), withSource).get("load.contiguous_copy")!;
    assert.equal(r.state, "answered", r.answer);
    assert.equal(r.verdict, "yes");
    assert.equal(
      r.answer,
      "Yes (from the allocation sites, no line probe): marlin_utils_fp4.py:29 allocated 256 tensors, 4.0 MiB each on average (4,194,304 B; 64 per call over 4 calls); 1.00 GiB of them were freed before the conversion returned.",
    );
    assert.deepEqual(r.codeLink, { file: FP4, line: 29 });
    assert.equal(r.evidence[0]!.bytes, 4 * 1024 * 1024);
  }
});

void test("the source's text decides which site is the copy: a line without it is not taken for it", () => {
  const moved = events().map((e) =>
    e.type === "sites" ? { ...e, sites: e.sites.map((s) => (s.line === 29 ? { ...s, line: 27 } : s)) } : e,
  );
  const r = answers(moved).get("load.contiguous_copy")!;
  assert.equal(r.state, "needs_probe", r.answer);
});

void test("is the repack in place / are the originals freed: from live at exit vs freed", () => {
  const a = answers(events());
  const repack = a.get("load.repack_inplace")!;
  assert.equal(repack.verdict, "no", repack.answer);
  assert.equal(
    repack.answer,
    "No: gptq_marlin_repack allocated 256 new tensors of 4.0 MiB each on average over 4 calls; 0 B of them are live when the conversion returns (the repacked layout) and 1.00 GiB were freed.",
  );
  const freed = a.get("load.original_freed")!;
  assert.equal(freed.verdict, "yes", freed.answer);
  assert.equal(
    freed.answer,
    "Yes: each conversion freed up to 256.0 MiB that existed before it (the originals), keeps 256.0 MiB it allocated itself, and freed 512.0 MiB of temporaries (max over 3 calls).",
  );
  // Rank 1's second call ran out of memory halfway: it is left out.
  assert.deepEqual(
    freed.evidence.map((e) => e.bytes),
    [256 * 1024 * 1024, 256 * 1024 * 1024 + 2560],
  );

  // A conversion that frees nothing it found says nothing of its caller, which may free the
  // originals after it returns (vLLM 0.26 does, when process_weights_after_loading replaces the
  // parameters): the answer falls back to the enclosing conversion's scope, which needs the config.
  const kept = events().map((e) => (e.type === "sites" ? { ...e, freed_earlier_bytes: 0 } : e));
  const fallback = answers(kept).get("load.original_freed")!;
  assert.equal(fallback.verdict, undefined, fallback.answer);
  assert.equal(fallback.state, "needs_run");
  assert.match(fallback.answer, /config\.json/);
});

void test("without sites the answers are the ones the run's scopes give", () => {
  const a = answers(events().filter((e) => e.type !== "sites"));
  assert.equal(a.get("load.contiguous_copy")!.state, "needs_probe");
  assert.doesNotMatch(a.get("load.original_freed")!.answer, /existed before it/);
  assert.notEqual(a.get("load.repack_inplace")!.answer.includes("new tensors of"), true);
});

void test("zh-CN: the site answers in Chinese", () => {
  const run = RunModel.fromEvents(events());
  const list = evaluateChecklist({ run, lineText, lang: "zh-CN" });
  const copy = list.find((r) => r.item.id === "load.contiguous_copy")!;
  assert.match(copy.answer, /^是（来自分配位置，无需行探针）：marlin_utils_fp4\.py:29 共分配了 256 个张量/);
});
