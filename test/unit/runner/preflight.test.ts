// buildReport on what the real probe printed: on an H200 host with another process holding
// memory (captured there), and on this machine (no GPU, no torch).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { buildReport, probePreflightSchema } from "../../../src/runner/preflight";
import { probeZipapp } from "../../remote/helpers";

const PYTHON = {
  version: [3, 12, 3] as [number, number, number],
  executable: "/opt/torch/.venv/bin/python3",
};

void test("a GPU host: torch, the GPU with free memory now, and the other process on it", () => {
  const raw = probePreflightSchema.parse(
    JSON.parse(
      readFileSync(path.join(__dirname, "fixtures", "preflight-h200-with-other-process.json"), "utf8"),
    ),
  );
  const report = buildReport("host gpu1", PYTHON, raw);
  assert.equal(report.torch, "2.11.0");
  assert.deepEqual(
    report.gpus.map((g) => [g.index, g.name, g.totalBytes, g.freeBytes]),
    [[0, "NVIDIA H200", 150754820096, 146336251904]],
  );
  assert.deepEqual(report.lines, [
    "host gpu1: Python 3.12.3 (/opt/torch/.venv/bin/python3), needs 3.9+: ok",
    "host gpu1: torch 2.11.0",
    "host gpu1: 1 GPU (driver 580.159.04): 0: NVIDIA H200, 136.29 GiB free of 140.40 GiB now",
    "host gpu1: GPU 0 already has 1 other process (pid 417 python3: 3.51 GiB); they take memory the run cannot use and move device-level readings. Stop them for clean numbers.",
  ]);
  assert.deepEqual(
    report.problems.map((p) => p.problem),
    ["other-processes"],
  );
});

void test("this machine: the real probe's preflight finds no GPU and says what to check", (t) => {
  const raw = probePreflightSchema.parse(
    JSON.parse(execFileSync("python3", [probeZipapp(), "preflight", "--json"], { encoding: "utf8" })),
  );
  const report = buildReport("this machine", PYTHON, raw);
  if (report.gpus.length > 0) {
    t.skip("this machine has a GPU; the H200 case covers that");
    return;
  }
  const noGpu = report.problems.find((p) => p.problem === "no-gpu");
  assert.ok(noGpu);
  assert.match(
    noGpu.message,
    /^this machine: no GPU visible \(NVML: .+\)\. Runs there measure host memory only; check the driver \(nvidia-smi\)/,
  );
});

void test("a malformed preflight answer is refused by the schema", () => {
  assert.throws(() => probePreflightSchema.parse({ gpus: [{ name: "x" }] }), /index/);
});

void test("the probe's fast path: its library where built, else how to build it on the host", () => {
  const base = { torch: { installed: true, version: "2.11.0" }, gpus: [] };
  const built = buildReport(
    "host gpu1",
    PYTHON,
    probePreflightSchema.parse({
      ...base,
      fast_path: { available: true, library: "/root/.cache/memlens/memlens_fast_path-ab.so", why: "x" },
    }),
    "/opt/torch/.venv/bin/python3 /root/.cache/memlens/memlens_probe.pyz",
  );
  assert.ok(
    built.lines.includes(
      "host gpu1: the probe's fast path (host readings and event lines in C): /root/.cache/memlens/memlens_fast_path-ab.so",
    ),
  );
  const missing = buildReport(
    "host gpu1",
    PYTHON,
    probePreflightSchema.parse({
      ...base,
      fast_path: { available: false, library: null, why: "no fast path at /x.so" },
    }),
    "/opt/torch/.venv/bin/python3 /root/.cache/memlens/memlens_probe.pyz",
  );
  const line = missing.lines.at(-1) ?? "";
  assert.match(
    line,
    /^host gpu1: the probe's fast path is not built for this Python \(no fast path at \/x\.so\)/,
  );
  assert.ok(
    line.endsWith("/opt/torch/.venv/bin/python3 /root/.cache/memlens/memlens_probe.pyz build-fast-stats"),
  );
  assert.deepEqual(
    missing.problems.map((p) => p.problem),
    ["no-gpu"],
    "the fast path is information, not a problem: the readings are the same",
  );
  const noTorch = buildReport(
    "this machine",
    PYTHON,
    probePreflightSchema.parse({ gpus: [], fast_path: { available: false, why: "off" } }),
  );
  assert.ok((noTorch.lines.at(-1) ?? "").endsWith("memlens_probe.pyz build-fast-path"));
});

void test("the real probe's preflight says whether its fast path is there", () => {
  const raw = probePreflightSchema.parse(
    JSON.parse(
      execFileSync("python3", [probeZipapp(), "preflight", "--json"], {
        encoding: "utf8",
        env: { ...process.env, MEMLENS_FAST_PATH: "off" },
      }),
    ),
  );
  assert.deepEqual(raw.fast_path, { available: false, library: null, why: "MEMLENS_FAST_PATH turns it off" });
});
