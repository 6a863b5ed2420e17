import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { CatalogError, HotspotCatalog, loadBundledCatalog, parseCatalog } from "../../../src/catalog/catalog";

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
    // vLLM 0.26.0's gpt-oss path calls the pure-function form; the older name stays as an alias.
    assert.equal(
      catalog.lookup(`${q}.utils.marlin_utils_fp4:prepare_moe_mxfp4_layer_for_marlin`)?.isAlias,
      false,
    );
    assert.equal(
      catalog.lookup(`${q}.utils.marlin_utils_fp4:prepare_moe_fp4_layer_for_marlin`)?.hotspot.id,
      "vllm.marlin.prepare_moe_fp4",
    );
    assert.equal(
      catalog.lookup(`${q}.gpt_oss_mxfp4:GptOssMxfp4MoEMethod.process_weights_after_loading`)?.hotspot.id,
      "vllm.mxfp4.process_weights_after_loading",
    );
  });

  void test("names what vLLM 0.26.0 calls on gpt-oss's load path, older names as aliases", () => {
    const q = "vllm.model_executor.layers.quantization";
    const oracle = "vllm.model_executor.layers.fused_moe.oracle.mxfp4";
    const current = [
      `${q}.mxfp4:GptOssMxfp4MoEMethod.create_weights`,
      `${q}.mxfp4:GptOssMxfp4MoEMethod.process_weights_after_loading`,
      `${oracle}:convert_gpt_oss_weight_to_mxfp4_moe_kernel_format`,
      `${q}.utils.marlin_utils_fp4:prepare_moe_mxfp4_layer_for_marlin`,
      `${q}.utils.marlin_utils_fp4:_repack_marlin_experts`,
      "vllm._custom_ops:gptq_marlin_repack",
      "vllm.model_executor.utils:replace_parameter",
      "vllm.model_executor.layers.fused_moe.routed_experts:RoutedExperts.weight_loader",
      "vllm.model_executor.model_loader.utils:initialize_model",
      "vllm.model_executor.model_loader.dummy_loader:DummyModelLoader.load_weights",
      "vllm.v1.worker.workspace:WorkspaceManager._ensure_workspace_size",
      "vllm.v1.core.kv_cache_utils:get_kv_cache_configs",
      "vllm.v1.worker.gpu_model_runner:GPUModelRunner.initialize_kv_cache_tensors",
      "vllm.v1.worker.gpu_model_runner:GPUModelRunner._allocate_kv_cache_tensors",
      "vllm.v1.worker.gpu_model_runner:GPUModelRunner._dummy_sampler_run",
      "vllm.v1.worker.gpu_model_runner:GPUModelRunner.profile_cudagraph_memory",
      "vllm.model_executor.warmup.kernel_warmup:kernel_warmup",
    ];
    assert.deepEqual(
      current.filter((spec) => catalog.lookup(spec)?.isAlias !== false),
      [],
      "each is a hotspot's own function",
    );
    const older = {
      [`${q}.utils.marlin_utils_fp4:prepare_moe_fp4_layer_for_marlin`]: "vllm.marlin.prepare_moe_fp4",
      [`${q}.utils.layer_utils:replace_parameter`]: "vllm.layer_utils.replace_parameter",
      [`${q}.mxfp4:Mxfp4MoEMethod.process_weights_after_loading`]: "vllm.mxfp4.process_weights_after_loading",
      [`${oracle}:convert_to_mxfp4_moe_kernel_format`]: "vllm.mxfp4.convert_to_kernel_format",
      [`${oracle}:convert_weight_to_mxfp4_moe_kernel_format`]: "vllm.mxfp4.convert_to_kernel_format",
      "vllm.model_executor.layers.fused_moe.layer:FusedMoE.weight_loader": "vllm.fused_moe.weight_loader",
      "vllm.v1.worker.gpu.attn_utils:_allocate_kv_cache": "vllm.runner.allocate_kv_cache_tensors",
      "vllm.v1.worker.gpu.attn_utils:init_kv_cache": "vllm.runner.initialize_kv_cache_tensors",
    };
    for (const [spec, id] of Object.entries(older)) {
      const match = catalog.lookup(spec);
      assert.equal(match?.hotspot.id, id, spec);
      assert.equal(match?.isAlias, true, spec);
    }
  });

  void test("records gpt-oss-20b call counts for vLLM 0.26.0, in the EngineCore process", () => {
    const eager = "vllm-0.26.0-gpt-oss-20b-eager";
    const compiled = "vllm-0.26.0-gpt-oss-20b-compiled";
    const marlin = 'moe_backend="marlin"';
    const auto = 'moe_backend="auto" (TRITON on an H200)';
    for (const id of [eager, compiled]) {
      const scenario = catalog.scenario(id);
      assert.equal(scenario?.model, "openai/gpt-oss-20b");
      assert.equal(scenario?.version, "0.26.0");
      assert.equal(scenario?.process, "EngineCore");
      assert.match(scenario?.call ?? "", /load_format="dummy"/);
    }
    assert.match(catalog.scenario(eager)!.call, /enforce_eager=True/);
    assert.doesNotMatch(catalog.scenario(compiled)!.call, /enforce_eager/);

    const counts = (scenario: string, when: string) =>
      Object.fromEntries(
        catalog
          .expectationsFor(scenario, when)
          .map(({ hotspot, expected }) => [hotspot.id, expected.calls ?? `${expected.perForward}/forward`]),
      );
    const marlinEager = counts(eager, marlin);
    // One per MoE layer: 24 layers, 32 experts each.
    for (const id of [
      "vllm.mxfp4.create_weights",
      "vllm.mxfp4.process_weights_after_loading",
      "vllm.mxfp4.convert_to_kernel_format",
      "vllm.marlin.prepare_moe_fp4",
    ]) {
      assert.equal(marlinEager[id], 24, id);
    }
    assert.equal(marlinEager["vllm.marlin.repack_experts"], 48);
    assert.equal(marlinEager["vllm.marlin.repack"], 24 * 2 * 32);
    assert.equal(marlinEager["vllm.marlin.workspace_new"], "24/forward");
    assert.equal(marlinEager["vllm.runner.capture_model"], 0);
    assert.equal(marlinEager["vllm.runner.allocate_kv_cache_tensors"], 1);
    assert.equal(marlinEager["vllm.gpt_oss.load_weights_mxfp4"], 0, "load_format=dummy never loads weights");
    const autoEager = counts(eager, auto);
    assert.equal(autoEager["vllm.marlin.prepare_moe_fp4"], 0);
    assert.equal(autoEager["vllm.mxfp4.convert_to_kernel_format"], 24);
    assert.equal(autoEager["vllm.layer_utils.replace_parameter"], 48);
    const marlinCompiled = counts(compiled, marlin);
    assert.equal(marlinCompiled["vllm.runner.capture_model"], 1);
    assert.equal(marlinCompiled["vllm.runner.initialize_kv_cache"], 2);
  });

  void test("a vLLM hotspot with counts has exactly one per scenario and backend; the rest are other versions'", () => {
    const whens = ['moe_backend="marlin"', 'moe_backend="auto" (TRITON on an H200)'];
    const without: string[] = [];
    for (const hotspot of catalog.hotspots.filter((h) => h.framework === "vllm")) {
      if (!hotspot.expectedCalls) {
        without.push(hotspot.id);
        continue;
      }
      for (const scenario of catalog.scenarios) {
        for (const when of whens) {
          const found = catalog.expectationsFor(scenario.id, when).filter((e) => e.hotspot.id === hotspot.id);
          assert.equal(found.length, 1, `${hotspot.id} in ${scenario.id} with ${when}`);
        }
      }
    }
    assert.deepEqual(without.sort(), [
      "vllm.marlin.workspace",
      "vllm.v0.block_allocator",
      "vllm.v0.cache_engine.allocate",
      "vllm.v0.init_cache_engine",
    ]);
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
      "GPUModelRunner._dummy_sampler_run",
      "GPUModelRunner.capture_model",
      "GPUModelRunner.initialize_kv_cache",
      "GPUModelRunner.initialize_kv_cache_tensors",
      "GPUModelRunner.load_model",
      "GPUModelRunner.profile_cudagraph_memory",
      "GPUModelRunner.profile_run",
    ]);
    // The V2 runner's spellings (vllm.v1.worker.gpu.model_runner) are aliases of the same hotspots.
    assert.equal(
      catalog.lookupParts("vllm.v1.worker.gpu.model_runner", "GPUModelRunner.profile_run")?.hotspot,
      h,
    );
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

  void test("expected calls: a known scenario of the same framework, exactly one count, a whole number", () => {
    const first = (c: ReturnType<typeof raw>) =>
      c.hotspots[0] as { expectedCalls: Record<string, unknown>[] };
    assert.match(
      invalid((c) => (first(c).expectedCalls[0]!.scenarios = ["nope"])).join("\n"),
      /hotspots\.0\.expectedCalls\.0\.scenarios\.0: scenario "nope" is not in scenarios/,
    );
    assert.match(
      invalid((c) => (first(c).expectedCalls[0]!.perForward = 3)).join("\n"),
      /hotspots\.0\.expectedCalls\.0: give exactly one of calls and perForward/,
    );
    assert.match(
      invalid((c) => delete first(c).expectedCalls[0]!.calls).join("\n"),
      /give exactly one of calls and perForward/,
    );
    assert.match(invalid((c) => (first(c).expectedCalls[0]!.calls = -1)).join("\n"), /calls/);
    assert.match(invalid((c) => (first(c).expectedCalls[0]!.calls = 1.5)).join("\n"), /calls/);
    assert.match(invalid((c) => delete first(c).expectedCalls[0]!.why).join("\n"), /why/);
    assert.match(
      invalid((c) => {
        const s = (c as unknown as { scenarios: Record<string, unknown>[] }).scenarios;
        s[0]!.framework = "transformers";
      }).join("\n"),
      /scenario "vllm-0\.26\.0-gpt-oss-20b-eager" is transformers, the hotspot vllm/,
    );
    assert.match(
      invalid((c) => {
        const s = (c as unknown as { scenarios: Record<string, unknown>[] }).scenarios;
        s[1]!.id = s[0]!.id;
      }).join("\n"),
      /scenarios\.1\.id: duplicate scenario/,
    );
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
    assert.deepEqual(small.scenarios, []);
    assert.deepEqual(small.expectationsFor("any"), []);
  });

  void test("expectationsFor: unconditional counts always, conditional ones only for their condition", () => {
    const small = new HotspotCatalog(
      parseCatalog({
        version: 1,
        phases: [{ id: "other", title: "Other", order: 1 }],
        scenarios: [
          { id: "s", framework: "vllm", version: "1", model: "m", call: "LLM(m)", process: "EngineCore" },
        ],
        hotspots: [
          {
            id: "a",
            function: "pkg.mod:a",
            aliases: [],
            phase: "other",
            framework: "vllm",
            question: "A?",
            expectedCalls: [
              { scenarios: ["s"], when: "x", calls: 1, why: "one" },
              { scenarios: ["s"], when: "y", perForward: 2, why: "two" },
            ],
          },
          {
            id: "b",
            function: "pkg.mod:b",
            aliases: [],
            phase: "other",
            framework: "vllm",
            question: "B?",
            expectedCalls: [{ scenarios: ["s"], calls: 3, why: "three" }],
          },
        ],
      }),
    );
    const ids = (when?: string) =>
      small.expectationsFor("s", when).map((e) => `${e.hotspot.id}:${e.expected.why}`);
    assert.deepEqual(ids(), ["a:one", "a:two", "b:three"]);
    assert.deepEqual(ids("x"), ["a:one", "b:three"]);
    assert.deepEqual(ids("y"), ["a:two", "b:three"]);
    assert.deepEqual(small.expectationsFor("other"), []);
    assert.equal(small.scenario("s")?.process, "EngineCore");
  });
});
