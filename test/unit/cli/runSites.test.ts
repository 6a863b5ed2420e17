// `memlens run` with the real probe (the zipapp built from python-probe/) on a real Python target:
// the plan it writes carries `sites` (the catalog's weight-conversion hotspots by default, --sites
// SPEC, --no-sites), and an out-of-memory error in the target comes back with its forensics fields.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { runMain } from "../../../src/cli/run";
import type { OomEvent, Plan, ProbeEvent } from "../../../src/protocol/events";
import { parseEventsText } from "../../../src/protocol/reader";

const PROBE = path.resolve(__dirname, "..", "..", "..", "python-probe");
const TARGETS = path.join(PROBE, "tests", "targets");
let work = "";
let probePath = "";

before(() => {
  work = mkdtempSync(path.join(tmpdir(), "memlens-run-sites-"));
  probePath = path.join(work, "memlens_probe.pyz");
  execFileSync("python3", [path.join(PROBE, "build_zipapp.py"), probePath]);
});
after(() => rmSync(work, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ code: number; plan: Plan; events: ProbeEvent[]; err: string }> {
  const runsDir = mkdtempSync(path.join(work, "runs-"));
  let err = "";
  const code = await runMain(
    ["--runs-dir", runsDir, "--python", "python3", "--cwd", TARGETS, "--sample-ms", "0", "--quiet", ...args],
    () => undefined,
    (text) => (err += text),
    probePath,
  );
  const [id] = readdirSync(runsDir);
  const dir = path.join(runsDir, id!);
  const plan = JSON.parse(readFileSync(path.join(dir, "plan.json"), "utf8")) as Plan;
  const { events } = parseEventsText(readFileSync(path.join(dir, "events.jsonl"), "utf8"));
  return { code, plan, events, err };
}

test("--sites SPEC probes it with sites, and an OOM through it carries the request and the scope stack", async () => {
  const { code, plan, events } = await run([
    "--no-catalog",
    "--probe",
    "oomish:load_model",
    "--sites",
    "oomish:allocate",
    "--",
    "python3",
    "-c",
    "import oomish; oomish.load_model()",
  ]);
  assert.equal(code, 1, "the target's exit code");
  assert.deepEqual(plan.targets, [
    { id: "probe1", function: "oomish:load_model" },
    { id: "probe2", function: "oomish:allocate", sites: true },
  ]);
  const oom = events.find((e): e is OomEvent => e.type === "oom")!;
  assert.equal(oom.target, "probe2");
  assert.deepEqual(oom.scope_stack, ["probe1", "probe2"]);
  assert.equal(oom.request_bytes, 2 * 2 ** 20);
  assert.equal(oom.snapshot_file, undefined, "no CUDA in this process: no allocator to snapshot");
  assert.ok(events.some((e) => e.type === "note" && e.kind === "oom_snapshot"));
});

test("the catalog's conversion hotspots record sites by default; --no-sites turns every one off", async () => {
  const command = ["--", "python3", "-c", "pass"];
  const withDefaults = await run(command);
  assert.equal(withDefaults.code, 0, withDefaults.err);
  const sitesSpecs = withDefaults.plan.targets
    .filter((t) => t.sites)
    .map((t) => ("function" in t ? t.function.split(":")[1] : ""));
  assert.deepEqual(sitesSpecs.sort(), [
    "_repack_marlin_experts",
    "convert_gpt_oss_weight_to_mxfp4_moe_kernel_format",
    "convert_to_mxfp4_moe_kernel_format",
    "convert_weight_to_mxfp4_moe_kernel_format",
    "prepare_moe_fp4_layer_for_marlin",
    "prepare_moe_mxfp4_layer_for_marlin",
  ]);
  const none = await run(["--no-sites", ...command]);
  assert.equal(none.code, 0, none.err);
  assert.equal(none.plan.targets.length, withDefaults.plan.targets.length);
  assert.ok(none.plan.targets.every((t) => !t.sites));
});

test("the plan limits sites to the first 2 calls of each target by default; --sites-calls N sets it, 0 lifts it", async () => {
  const command = ["--no-catalog", "--sites", "oomish:allocate", "--", "python3", "-c", "pass"];
  const byDefault = await run(command);
  assert.equal(byDefault.code, 0, byDefault.err);
  assert.equal(byDefault.plan.sites_calls, 2);
  const five = await run(["--sites-calls", "5", ...command]);
  assert.equal(five.code, 0, five.err);
  assert.equal(five.plan.sites_calls, 5);
  const every = await run(["--sites-calls", "0", ...command]);
  assert.equal(every.code, 0, every.err);
  assert.ok(!("sites_calls" in every.plan), "0: no sites_calls in plan.json, the probe records every call");
});

test("--sites-calls refuses what is not a whole number from 0, with exit 2 and the usage", async () => {
  const runsDir = mkdtempSync(path.join(work, "runs-"));
  const refused = async (args: string[]) => {
    let err = "";
    const code = await runMain(
      ["--runs-dir", runsDir, "--no-catalog", ...args, "--", "python3", "-c", "pass"],
      () => undefined,
      (text) => (err += text),
      probePath,
    );
    assert.equal(code, 2, args.join(" "));
    assert.match(err, /Usage:/, args.join(" "));
    return err;
  };
  for (const value of ["-1", "x", "1.5", ""]) {
    assert.match(
      await refused([`--sites-calls=${value}`]),
      /--sites-calls .*: expected a whole number of calls from 0 \(0: every call\)/,
      value,
    );
  }
  // A value after a space that starts with a dash is refused by the option parser, naming the option.
  assert.match(await refused(["--sites-calls", "-1"]), /--sites-calls/);
  assert.match(await refused(["--sites-calls", "abc"]), /--sites-calls abc: expected a whole number/);
  assert.deepEqual(readdirSync(runsDir), [], "nothing was started");
});
