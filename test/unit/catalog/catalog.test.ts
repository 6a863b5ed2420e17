import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import {
  CatalogError,
  HotspotCatalog,
  loadBundledCatalog,
  parseCatalog,
  splitFunctionSpec,
  splitLineSpec,
} from "../../../src/catalog/catalog";

const JSON_FILE = path.resolve(__dirname, "../../../src/catalog/hotspots.json");
const raw = (): { phases: unknown[]; hotspots: Record<string, unknown>[] } =>
  JSON.parse(readFileSync(JSON_FILE, "utf8")) as { phases: unknown[]; hotspots: Record<string, unknown>[] };

void describe("the shipped catalog", () => {
  const catalog = loadBundledCatalog();

  void test("is valid: phases known, ids and functions unique", () => {
    const phases = new Set(catalog.phases.map((p) => p.id));
    for (const h of catalog.hotspots) assert.ok(phases.has(h.phase), `${h.id}: ${h.phase}`);
    assert.equal(new Set(catalog.hotspots.map((h) => h.id)).size, catalog.hotspots.length);
    const specs = catalog.hotspots.flatMap((h) => [h.function, ...h.aliases]);
    assert.equal(new Set(specs).size, specs.length);
    assert.deepEqual(
      catalog.phases.map((p) => p.order),
      [...catalog.phases.map((p) => p.order)].sort((a, b) => a - b),
    );
  });

  void test("has every name the issue lists, current or as an alias", () => {
    const q = "vllm.model_executor.layers.quantization";
    const required = [
      `${q}.utils.marlin_utils_fp4:prepare_moe_fp4_layer_for_marlin`,
      `${q}.utils.marlin_utils_fp4:prepare_moe_mxfp4_layer_for_marlin`,
      `${q}.utils.marlin_utils:marlin_make_workspace_new`,
      `${q}.utils.marlin_utils:marlin_make_workspace`,
      `${q}.mxfp4:Mxfp4MoEMethod.create_weights`,
      `${q}.mxfp4:Mxfp4MoEMethod.process_weights_after_loading`,
      `${q}.gpt_oss_mxfp4:GptOssMxfp4MoEMethod.create_weights`,
      `${q}.gpt_oss_mxfp4:GptOssMxfp4MoEMethod.process_weights_after_loading`,
      `${q}.utils.layer_utils:replace_parameter`,
      "vllm.model_executor.layers.fused_moe.layer:FusedMoE.weight_loader",
      "vllm.model_executor.models.gpt_oss:GptOssModel.load_weights",
      "vllm.model_executor.models.gpt_oss:GptOssModel._load_weights_mxfp4",
      "vllm.v1.worker.gpu_model_runner:GPUModelRunner.load_model",
      "vllm.v1.worker.gpu_model_runner:GPUModelRunner.profile_run",
      "vllm.v1.worker.gpu_model_runner:GPUModelRunner.capture_model",
      "vllm.v1.worker.gpu_model_runner:GPUModelRunner.initialize_kv_cache",
      "vllm.v1.worker.gpu_worker:Worker.init_device",
      "vllm.v1.worker.gpu_worker:Worker.determine_available_memory",
      "vllm.v1.worker.gpu_worker:Worker.compile_or_warm_up_model",
      "vllm.worker.worker:Worker._init_cache_engine",
      "vllm.core.block_manager:BlockAllocator.__init__",
      "transformers.modeling_utils:PreTrainedModel.from_pretrained",
      "transformers.modeling_utils:PreTrainedModel._load_pretrained_model",
      "transformers.integrations.mxfp4:convert_moe_packed_tensors",
      "transformers.integrations.mxfp4:dequantize",
    ];
    const missing = required.filter((spec) => catalog.lookup(spec) === undefined);
    assert.deepEqual(missing, []);
    assert.equal(
      catalog.lookup(`${q}.utils.marlin_utils_fp4:prepare_moe_mxfp4_layer_for_marlin`)?.isAlias,
      true,
    );
    assert.equal(
      catalog.lookup(`${q}.gpt_oss_mxfp4:GptOssMxfp4MoEMethod.process_weights_after_loading`)?.hotspot.id,
      "vllm.mxfp4.process_weights_after_loading",
    );
  });

  void test("every entry asks one question and names its framework", () => {
    for (const h of catalog.hotspots) {
      assert.match(h.question, /\?|\.$/, h.id);
      assert.ok(h.function.startsWith(`${h.framework}.`), `${h.id} is ${h.framework}`);
    }
  });

  void test("lookups by id, by module:qualname and by module", () => {
    const h = catalog.byId("vllm.runner.profile_run");
    assert.equal(h?.function, "vllm.v1.worker.gpu_model_runner:GPUModelRunner.profile_run");
    assert.equal(
      catalog.lookupParts("vllm.worker.model_runner", "GPUModelRunnerBase.profile_run")?.hotspot,
      h,
    );
    const inRunner = catalog.inModule("vllm.v1.worker.gpu_model_runner").map((m) => m.spec.split(":")[1]);
    assert.deepEqual(inRunner.sort(), [
      "GPUModelRunner._allocate_kv_cache_tensors",
      "GPUModelRunner.capture_model",
      "GPUModelRunner.initialize_kv_cache",
      "GPUModelRunner.load_model",
      "GPUModelRunner.profile_run",
    ]);
    assert.equal(catalog.lookup("vllm.nothing:here"), undefined);
    assert.equal(catalog.phase("kv_cache")?.title, "KV cache");
  });
});

void describe("validation", () => {
  function invalid(mutate: (c: ReturnType<typeof raw>) => void): string[] {
    const c = raw();
    mutate(c);
    try {
      parseCatalog(c);
    } catch (error) {
      assert.ok(error instanceof CatalogError);
      return error.issues;
    }
    assert.fail("accepted an invalid catalog");
  }

  void test("a phase that is not listed, a duplicate id, a duplicate function, a bad spec", () => {
    assert.match(
      invalid((c) => (c.phases = (c.phases as { id: string }[]).filter((p) => p.id !== "workspace"))).join(
        "\n",
      ),
      /hotspots\.\d+\.phase: phase "workspace" is not in phases/,
    );
    assert.match(
      invalid((c) => (c.hotspots[1]!.id = c.hotspots[0]!.id)).join("\n"),
      /duplicate id "vllm\.worker\.init_device"/,
    );
    assert.match(
      invalid((c) => (c.hotspots[1]!.aliases = [c.hotspots[0]!.function as string])).join("\n"),
      /already listed by "vllm\.worker\.init_device"/,
    );
    assert.match(
      invalid((c) => (c.hotspots[0]!.function = "vllm/worker.py")).join("\n"),
      /hotspots\.0\.function: must look like package\.module:Qual\.name/,
    );
    assert.match(invalid((c) => delete c.hotspots[0]!.question).join("\n"), /hotspots\.0\.question/);
  });

  void test("a catalog built from other data works the same way", () => {
    const small = new HotspotCatalog(
      parseCatalog({
        version: 1,
        phases: [{ id: "other", title: "Other", order: 1 }],
        hotspots: [
          {
            id: "x",
            function: "pkg.mod:f.<locals>.g",
            aliases: [],
            phase: "other",
            framework: "vllm",
            question: "Why?",
          },
        ],
      }),
    );
    assert.equal(small.lookup("pkg.mod:f.<locals>.g")?.hotspot.id, "x");
  });
});

void test("spec helpers", () => {
  assert.deepEqual(splitFunctionSpec("a.b:C.d"), { module: "a.b", qualname: "C.d" });
  assert.equal(splitFunctionSpec("nocolon"), undefined);
  assert.deepEqual(splitLineSpec("/x/y.py:12"), { file: "/x/y.py", line: 12 });
  assert.deepEqual(splitLineSpec("C:\\x\\y.py:3"), { file: "C:\\x\\y.py", line: 3 });
  assert.equal(splitLineSpec("vllm.x:Foo"), undefined);
});
