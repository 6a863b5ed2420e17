// The oom event's forensics fields (python-probe/PROTOCOL.md, "oom") as the reader types them, and
// the `sites` flag of plan targets as the catalog and the plan builder carry it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { loadBundledCatalog } from "../../../src/catalog/catalog";
import { buildPlan, hotspotTargets } from "../../../src/model/plan";
import type { OomEvent } from "../../../src/protocol/events";
import { parseEventLine, parseEventsText } from "../../../src/protocol/reader";

const GiB = 2 ** 30;
// What the probe writes at an OOM inside a sites scope on a GPU (fields in events.py's order).
const oomLine = {
  v: 1,
  type: "oom",
  ts: 1796043971231847000,
  pid: 4242,
  rank: null,
  device: 0,
  target: "vllm.marlin.repack_experts",
  scope_id: "4242:9",
  stack: [
    { target: "vllm.marlin.prepare_moe_fp4", scope_id: "4242:8", call: 3, file: "/srv/vllm/a.py", line: 280 },
    { target: "vllm.marlin.repack_experts", scope_id: "4242:9", call: 5, file: "/srv/vllm/a.py", line: 300 },
  ],
  readings: { allocated: 14 * GiB, reserved: 15 * GiB, device_used: 16 * GiB, device_total: 140 * GiB },
  message: "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 139.81 GiB ...",
  snapshot_file: "oom-4242-1.pickle",
  request_bytes: 2 * GiB,
  allocator: {
    free_bytes: 0,
    total_bytes: 16 * GiB,
    reserved_bytes: 15 * GiB,
    allocated_bytes: 14 * GiB,
    inactive_split_bytes: 512 * 2 ** 20,
  },
  largest_blocks: [
    {
      bytes: 4 * GiB,
      file: "/srv/vllm/a.py",
      line: 305,
      function: "_repack_marlin_experts",
      stack: "_repack_marlin_experts (a.py:305) <- prepare_moe_mxfp4_layer_for_marlin (a.py:281)",
    },
  ],
  scope_stack: ["vllm.marlin.prepare_moe_fp4", "vllm.marlin.repack_experts"],
};

test("an oom event with every forensics field reads with its types", () => {
  const parsed = parseEventLine(JSON.stringify(oomLine));
  assert.equal(parsed.ok, true);
  const event = (parsed as { ok: true; event: OomEvent }).event;
  assert.equal(event.snapshot_file, "oom-4242-1.pickle");
  assert.equal(event.request_bytes, 2 * GiB);
  assert.equal(event.allocator?.inactive_split_bytes, 512 * 2 ** 20);
  assert.equal(event.largest_blocks?.[0]?.line, 305);
  assert.deepEqual(event.scope_stack, ["vllm.marlin.prepare_moe_fp4", "vllm.marlin.repack_experts"]);
});

test("forensics fields are optional, and a mistyped one makes the line malformed", () => {
  const { snapshot_file, request_bytes, allocator, largest_blocks, scope_stack, ...plain } = oomLine;
  void [snapshot_file, request_bytes, allocator, largest_blocks, scope_stack];
  assert.equal(parseEventLine(JSON.stringify(plain)).ok, true);
  const partial = { ...oomLine, allocator: { free_bytes: 1 } };
  const blocks = { ...oomLine, largest_blocks: [{ bytes: "big", file: "a", line: 1, function: "f" }] };
  const { malformed } = parseEventsText([partial, blocks].map((e) => JSON.stringify(e)).join("\n"));
  assert.deepEqual(
    malformed.map((m) => m.reason),
    [
      'oom event: field "allocator.total_bytes" missing',
      'oom event: field "largest_blocks.0.bytes" not a number',
    ],
  );
});

test("crash-oom.jsonl: the recorded oom carries the request and the scope stack, and a note says why no snapshot", () => {
  const text = readFileSync(
    path.resolve(__dirname, "../../../python-probe/examples/crash-oom.jsonl"),
    "utf8",
  );
  const { events } = parseEventsText(text);
  const oom = events.find((e): e is OomEvent => e.type === "oom")!;
  assert.equal(oom.request_bytes, 2 * 2 ** 20);
  assert.deepEqual(oom.scope_stack, ["model", "layer", "alloc"]);
  assert.equal(oom.snapshot_file, undefined);
  assert.ok(events.some((e) => e.type === "note" && e.kind === "oom_snapshot"));
});

test("the weight-conversion hotspots record sites by default, and the plan carries it", () => {
  const catalog = loadBundledCatalog();
  const withSites = catalog.hotspots.filter((h) => h.sites).map((h) => h.id);
  assert.deepEqual(withSites.sort(), [
    "vllm.marlin.prepare_moe_fp4",
    "vllm.marlin.repack_experts",
    "vllm.mxfp4.convert_to_kernel_format",
  ]);
  const { plan } = buildPlan(hotspotTargets(catalog.hotspots));
  const sitesTargets = plan.targets
    .filter((t) => t.sites)
    .map((t) => ("function" in t ? t.function : t.line));
  for (const name of [
    "prepare_moe_mxfp4_layer_for_marlin",
    "prepare_moe_fp4_layer_for_marlin",
    "convert_gpt_oss_weight_to_mxfp4_moe_kernel_format",
    "_repack_marlin_experts",
  ]) {
    assert.ok(
      sitesTargets.some((spec) => spec.endsWith(`:${name}`)),
      `${name} (or its alias) records sites`,
    );
  }
  const others = plan.targets.filter((t) => !t.sites);
  assert.ok(others.length > 20, "the other hotspots do not");
  assert.ok(
    others.every((t) => !("sites" in t)),
    "a target without sites has no sites field",
  );
});

test("a spec named twice records sites if either asked", () => {
  const spec = "pkg.mod:f";
  const { plan } = buildPlan([{ spec }, { spec, sites: true }]);
  assert.deepEqual(plan.targets, [{ id: "t1", function: spec, sites: true }]);
});
