// `memlens sites`: the probe's own reduction of a memory history (python-probe's sites.py, run
// here on a per-expert repack loop at gpt-oss-20b's padded sizes) read back through the CLI.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { main } from "../../../src/cli/main";
import { COPY_BYTES, sitesCallsRunText } from "../model/sitesCallsRun";

const PROBE = path.resolve(__dirname, "..", "..", "..", "python-probe");

function probeSitesEvent(): string {
  // Two calls of the same scope, as the probe sends them after each exit.
  const script = `
import json, sys
sys.path[:0] = [${JSON.stringify(PROBE)}, ${JSON.stringify(path.join(PROBE, "tests"))}]
from memlens_probe.sites import reduce_trace
from test_sites import FP4, repack_loop_trace
for call in (1, 2):
    r = reduce_trace(repack_loop_trace(), FP4, ["/srv/vllm"])
    print(json.dumps({"v": 1, "type": "sites", "ts": call, "pid": 7, "rank": None, "device": 0,
                      "target": "t1", "scope_id": "7:%d" % call, "call": call, **r}))
`;
  return execFileSync("python3", ["-c", script], { encoding: "utf8" });
}

void test("memlens sites adds up the probe's per-call sites per line, with the fields the issue names", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "memlens-sites-"));
  try {
    writeFileSync(path.join(dir, "events.jsonl"), probeSitesEvent());
    let out = "";
    let err = "";
    const code = await main(
      ["sites", dir, "--json"],
      (t) => (out += t),
      (t) => (err += t),
    );
    assert.equal(code, 0, err);
    const sites = JSON.parse(out) as Record<string, number | string>[];
    const copy = sites.find((s) => s.line === 310)!;
    for (const field of [
      "file",
      "line",
      "function",
      "allocated_bytes",
      "freed_bytes",
      "live_at_exit_bytes",
      "at_peak_bytes",
      "count",
    ]) {
      assert.ok(field in copy, field);
    }
    // 4 experts × 9,043,968 B per call, 2 calls; each copy freed; one copy live at each call's peak.
    assert.equal(copy.allocated_bytes, 2 * 4 * 9_043_968);
    assert.equal(copy.freed_bytes, copy.allocated_bytes);
    assert.equal(copy.live_at_exit_bytes, 0);
    assert.equal(copy.at_peak_bytes, 9_043_968);
    assert.equal(copy.count, 8);
    assert.equal(copy.calls, 2);
    const repack = sites.find((s) => s.line === 311) as unknown as { root: { function: string } };
    assert.equal(repack.root.function, "gptq_marlin_repack");

    out = "";
    assert.equal(
      await main(
        ["sites", dir],
        (t) => (out += t),
        () => undefined,
      ),
      0,
    );
    assert.match(out, /marlin_utils_fp4\.py:310 _repack_marlin_experts \| 69\.0 MiB ×8/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test("memlens sites names the targets whose sites cover only their first calls; JSON keeps its array", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "memlens-sites-calls-"));
  const run = async (args: string[]) => {
    let out = "";
    let err = "";
    const code = await main(
      ["sites", dir, ...args],
      (t) => (out += t),
      (t) => (err += t),
    );
    assert.equal(code, 0, err);
    return out;
  };
  try {
    // gpt-oss-20b's 24 layer conversions under the default sites_calls 2; another target whose
    // every call was recorded.
    writeFileSync(
      path.join(dir, "events.jsonl"),
      sitesCallsRunText([
        { target: "vllm.marlin.prepare_moe_fp4", pid: 300, calls: 24, sitesCalls: 2 },
        { target: "vllm.marlin.repack", pid: 300, calls: 3 },
      ]),
    );
    const text = await run([]);
    const lines = text.split("\n");
    const table = lines.findIndex((l) => l.startsWith("|---"));
    assert.ok(table > 0, text);
    // After the table and a blank line: one line for the partial target, none for the other.
    const after = lines.slice(table + 1).filter((l) => !l.startsWith("| "));
    assert.deepEqual(after, [
      "",
      "vllm.marlin.prepare_moe_fp4: sites of the first 2 of 24 calls (memlens run --sites-calls 0 records every call)",
      "",
    ]);
    assert.match(
      text,
      /\| vllm\.marlin\.prepare_moe_fp4 \| marlin_utils_fp4\.py:310 _repack_marlin_experts \| 138\.0 MiB ×16 \|/,
    );
    // --target of the fully recorded one: its rows, no coverage line.
    const repack = await run(["--target", "vllm.marlin.repack"]);
    assert.doesNotMatch(repack, /sites of/);
    assert.match(repack, /\| vllm\.marlin\.repack \|/);

    const json = JSON.parse(await run(["--json"])) as Record<string, unknown>[];
    assert.ok(Array.isArray(json));
    const fp4 = json.find((r) => r.target === "vllm.marlin.prepare_moe_fp4")!;
    // The fields consumers read are unchanged: sums over the recorded calls.
    assert.equal(fp4.allocated_bytes, 2 * 8 * COPY_BYTES);
    assert.equal(fp4.count, 16);
    assert.equal(fp4.calls, 2);
    // Added beside them: the target's coverage.
    assert.equal(fp4.target_calls_with_sites, 2);
    assert.equal(fp4.target_calls, 24);
    assert.equal(fp4.target_sites_limited, true);
    const full = json.find((r) => r.target === "vllm.marlin.repack")!;
    assert.deepEqual(
      [full.calls, full.target_calls_with_sites, full.target_calls, full.target_sites_limited],
      [3, 3, 3, false],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
