import assert from "node:assert/strict";
import { test } from "node:test";
import { loadBundledCatalog } from "../../../src/catalog/catalog";
import { buildPlan, hotspotTargets, withRunSettings } from "../../../src/model/plan";

const prepare = {
  spec: "vllm.model_executor.layers.quantization.utils.marlin_utils_fp4:prepare_moe_fp4_layer_for_marlin",
  hotspot: "vllm.marlin.prepare_moe_fp4",
  file: "/src/vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py",
  line: 15,
};
const stagingLine = {
  spec: "/src/vllm/x/marlin_utils_fp4.py:17",
  file: "/src/vllm/x/marlin_utils_fp4.py",
  line: 17,
};

test("the plan has one target per probe with ids t1, t2, … and the meta records where each came from", () => {
  const { plan, targets } = buildPlan([prepare, stagingLine]);
  assert.deepEqual(plan, {
    version: 1,
    targets: [
      { id: "t1", function: prepare.spec },
      { id: "t2", line: stagingLine.spec },
    ],
    pause: [],
  });
  assert.deepEqual(targets, [
    { id: "t1", spec: prepare.spec, hotspot: prepare.hotspot, file: prepare.file, line: 15 },
    { id: "t2", spec: stagingLine.spec, hotspot: undefined, file: stagingLine.file, line: 17 },
  ]);
});

test("a spec named twice is one target: the first keeps its id and hotspot, and it pauses if either asked", () => {
  const { plan, targets } = buildPlan([
    { id: "a", spec: prepare.spec, hotspot: prepare.hotspot },
    { id: "probe1", spec: stagingLine.spec },
    { id: "bp3", spec: prepare.spec, pause: true },
  ]);
  assert.deepEqual(
    targets.map((t) => [t.id, t.hotspot]),
    [
      ["a", prepare.hotspot],
      ["probe1", undefined],
    ],
  );
  assert.deepEqual(plan.pause, ["a"]);
});

test("hotspots are planned under their ids, aliases as <id>-alias<n>, as the debugger and `memlens run` probe them", () => {
  const catalog = loadBundledCatalog();
  const planned = hotspotTargets(catalog.hotspots, (h) => h.phase === "kv_cache");
  const withAliases = catalog.hotspots.find((h) => h.aliases.length > 0)!;
  assert.deepEqual(
    planned.filter((t) => t.hotspot === withAliases.id).map((t) => [t.id, t.spec]),
    [withAliases.function, ...withAliases.aliases].map((spec, i) => [
      i === 0 ? withAliases.id : `${withAliases.id}-alias${i}`,
      spec,
    ]),
  );
  const { plan } = buildPlan(planned);
  const kvIds = planned.filter((t) => catalog.byId(t.hotspot!)?.phase === "kv_cache").map((t) => t.id);
  assert.deepEqual(plan.pause, [...kvIds].sort());
  assert.equal(
    plan.targets.length,
    catalog.hotspots.reduce((n, h) => n + 1 + h.aliases.length, 0),
  );
});

test("the run's sampling and emulation go into the plan; absent, the plan's own stay", () => {
  const { plan } = buildPlan([prepare]);
  assert.deepEqual(withRunSettings(plan, { sampleIntervalMs: 20, emulateDeviceBytes: 16 * 1024 ** 3 }), {
    ...plan,
    sample_interval_ms: 20,
    emulate_device_bytes: 16 * 1024 ** 3,
  });
  const plain = withRunSettings({ ...plan, sample_interval_ms: 50 }, {});
  assert.equal(plain.sample_interval_ms, 50);
  assert.equal(plain.emulate_device_bytes, null);
});

test("sitesCalls limits the sites calls in the plan; 0 leaves no limit (every call); absent keeps the plan's", () => {
  const { plan } = buildPlan([{ spec: "vllm.model_executor.layers.linear:LinearBase.forward", sites: true }]);
  const two = withRunSettings(plan, { sitesCalls: 2 });
  assert.equal(two.sites_calls, 2);
  assert.deepEqual(two.targets, plan.targets);
  assert.equal(withRunSettings({ ...plan, sites_calls: 5 }, { sitesCalls: 1 }).sites_calls, 1);
  const every = withRunSettings({ ...plan, sites_calls: 5 }, { sitesCalls: 0 });
  assert.ok(!("sites_calls" in every), "0: the key is left out, which the probe reads as every call");
  assert.ok(!JSON.stringify(withRunSettings(plan, { sitesCalls: 0 })).includes("sites_calls"));
  assert.equal(withRunSettings({ ...plan, sites_calls: 3 }, {}).sites_calls, 3);
  assert.equal(withRunSettings({ ...plan, sites_calls: null }, {}).sites_calls, null);
  assert.ok(!("sites_calls" in withRunSettings(plan, {})), "nothing set, nothing added");
});
