// The recorded real vLLM load of gpt-oss-20b (media/demo/runs, H200) in code-server, as the quick
// start offers it: the Runs view lists it, the lenses on vLLM's load path show its numbers, and
// the memory panel opens on it — with no GPU and nothing run.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Workbench } from "./harness";

const REPO_ROOT = path.resolve(__dirname, "..", "..");
const RECORDED = path.join(REPO_ROOT, "media", "demo", "runs", "gpt-oss-20b-h200");
const FP4_FILE = "vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py";
const RUNNER_FILE = "vllm/v1/worker/gpu_model_runner.py";

let wb: Workbench;
let runsDir: string;

function e2e(title: string, body: () => Promise<void>): void {
  void test(title, () => wb.step(title, body));
}

before(async () => {
  // The Runs view reads the folder memlens.runsDirectory names; the run keeps its recorded id.
  runsDir = mkdtempSync(path.join(tmpdir(), "memlens-e2e-recorded-runs-"));
  const id = (JSON.parse(readFileSync(path.join(RECORDED, "meta.json"), "utf8")) as { id: string }).id;
  cpSync(RECORDED, path.join(runsDir, id), { recursive: true });
  wb = await Workbench.start({
    name: "recorded",
    workspace: "test/e2e/workspace-recorded",
    userSettings: { "memlens.runsDirectory": runsDir },
  });
});

after(async () => {
  await wb?.collectLogs();
  await wb?.stop();
  rmSync(runsDir, { recursive: true, force: true });
});

e2e("the lenses on vLLM's conversion show the recorded H200 run's numbers", async () => {
  await wb.openFile(FP4_FILE);
  // 24 MoE layers, each keeping its Marlin weights: +10.3 GiB allocated over 24 calls.
  const prepare = await wb.waitForLensAbove("def prepare_moe_mxfp4_layer_for_marlin", /24 calls/);
  assert.match(prepare, /\+10\.3 GiB allocated/);
  const repack = await wb.waitForLensAbove("def _repack_marlin_experts", /48 calls/);
  assert.match(repack, /GiB allocated/);
  await wb.screenshot("conversion-lenses");
});

e2e("the profile run and the KV cache carry their H200 numbers too", async () => {
  await wb.openFile(RUNNER_FILE);
  const profile = await wb.waitForLensAbove("def profile_run", /1 call/);
  assert.match(profile, /peak \+4\.0 GiB/);
  const kv = await wb.waitForLensAbove("def initialize_kv_cache", /1 call/);
  assert.match(kv, /\+119\.0 GiB allocated/);
  await wb.screenshot("runner-lenses");
});
