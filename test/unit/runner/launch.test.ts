// Local runs with the real probe and real Python processes.
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import type { LogEvent, ProbeEvent } from "../../../src/protocol/events";
import { RunnerError } from "../../../src/runner/errors";
import { GiB, planForRun, startRun, targetCommand } from "../../../src/runner/launch";
import { placeOf } from "../../../src/runner/place";
import { preflightPlace } from "../../../src/runner/preflight";
import { RunnerSession } from "../../../src/runner/remote";
import { loadRun } from "../../../src/runner/store";
import type { RunDescription, RunMeta, RunRequest } from "../../../src/runner/types";
import {
  collectEvents,
  LOADER,
  nextEvent,
  pidAlive,
  probeZipapp,
  tempDir,
  waitUntil,
  WORKLOAD,
} from "../../remote/helpers";

function request(
  description: RunDescription,
  plan: RunRequest["plan"] = { version: 1, targets: [] },
): RunRequest {
  return { description, plan, label: "local test", runsDir: path.join(tempDir("launch"), "runs") };
}

function logLine(prefix: string) {
  return (event: ProbeEvent): event is LogEvent => event.type === "log" && event.line.startsWith(prefix);
}

void test("a local run: probe events, the launcher's events.jsonl, meta finished with exit code 0", async () => {
  const handle = await startRun(
    request(
      { python: "python3", command: ["python3", WORKLOAD, "steps"] },
      {
        version: 1,
        targets: [{ id: "alloc", function: "rtwork.steps:allocate_buffers" }],
        sample_interval_ms: 50,
      },
    ),
    { probePath: probeZipapp() },
  );
  const events = collectEvents(handle);
  const outcome = await handle.done;
  assert.equal(outcome.meta.status, "finished", outcome.meta.error);
  assert.equal(outcome.meta.exitCode, 0);
  const exits = events.filter((e) => e.type === "exit");
  assert.equal(exits.length, 2);
  const stored = await loadRun(handle.dir);
  assert.equal(stored.meta.status, "finished");
  assert.deepEqual(
    stored.events.filter((e) => e.type !== "sample").map((e) => e.type),
    events.filter((e) => e.type !== "sample").map((e) => e.type),
  );
  const start = stored.events[0];
  assert.ok(start?.type === "start" && start.run_id === handle.id, "the launcher got the run id");
  assert.equal(stored.plan?.sample_interval_ms, 50);
});

void test("a bad python path gives a clear ENOENT message naming the path, and a failed run record", async () => {
  const req = request({ python: "/nonexistent/python3", command: ["python3", WORKLOAD] });
  await assert.rejects(startRun(req, { probePath: probeZipapp() }), (error: unknown) => {
    assert.ok(error instanceof RunnerError, String(error));
    assert.equal(error.problem, "spawn-failed");
    assert.match(error.message, /cannot start "\/nonexistent\/python3": no such file .*\[ENOENT\]/);
    assert.match(error.message, /memlens\.python/);
    return true;
  });
  const [id] = (await import("node:fs")).readdirSync(req.runsDir);
  const meta = JSON.parse(readFileSync(path.join(req.runsDir, id!, "meta.json"), "utf8")) as RunMeta;
  assert.equal(meta.status, "failed");
  assert.match(meta.error ?? "", /nonexistent/);
});

void test("a failing command (exit 3) is reported with its exit code and stderr tail", async () => {
  const handle = await startRun(request({ python: "python3", command: ["python3", WORKLOAD, "fail"] }), {
    probePath: probeZipapp(),
  });
  const outcome = await handle.done;
  assert.equal(outcome.meta.status, "failed");
  assert.equal(outcome.meta.exitCode, 3);
  assert.match(
    outcome.meta.error ?? "",
    /^this machine, run: the target exited with code 3\. Last stderr lines:\n.*the thing went wrong on purpose/s,
  );
  assert.ok(outcome.stderrTail.includes("workload error: the thing went wrong on purpose"));
  assert.deepEqual((await loadRun(handle.dir)).meta.stderrTail, outcome.stderrTail);
});

void test("stop() ends the local tree (target and its child) and records a stopped run", async () => {
  const handle = await startRun(request({ python: "python3", command: ["python3", WORKLOAD, "hold"] }), {
    probePath: probeZipapp(),
  });
  const hold = await nextEvent(handle, logLine("HOLD_PIDS "));
  const [target, child] = hold.line.split(" ").slice(1).map(Number) as [number, number];
  assert.ok(pidAlive(target) && pidAlive(child));
  const started = Date.now();
  const outcome = await handle.stop();
  console.log(`local stop() took ${Date.now() - started} ms`);
  assert.equal(outcome.meta.status, "stopped");
  assert.equal(outcome.meta.error, undefined);
  await waitUntil(
    "target and child to end",
    () => (!pidAlive(target) && !pidAlive(child) ? true : undefined),
    10_000,
  );
  assert.equal(await handle.stop(), outcome, "stop() after the end returns the same outcome");
});

void test("the default command is the bundled loader; without vLLM it says so and runs its workload", async () => {
  const handle = await startRun(
    request({ python: "python3", model: "some/model", gpuMemoryUtilization: 0.9, emulateGpuGiB: 16 }),
    { probePath: probeZipapp(), loaderPath: LOADER },
  );
  const lines: string[] = [];
  handle.onEvent((e) => {
    if (e.type === "log") lines.push(e.line);
  });
  const outcome = await handle.done;
  assert.equal(outcome.meta.status, "finished", outcome.meta.error);
  assert.deepEqual(outcome.meta.command, ["python3", LOADER]);
  assert.deepEqual(outcome.meta.emulation, { gpuGiB: 16, deviceBytes: 16 * GiB, gpuMemoryUtilization: 0.9 });
  assert.ok(
    lines.includes(
      "memlens loader: model some/model, gpu_memory_utilization 0.9, max_model_len 32, emulating a 16.00 GiB card",
    ),
    lines.join("\n"),
  );
  assert.ok(lines.some((l) => l.startsWith("memlens loader: vLLM cannot be imported")));
  assert.ok(lines.some((l) => l.startsWith("memlens loader: bundled workload done")));
  const plan = JSON.parse(readFileSync(path.join(handle.dir, "plan.json"), "utf8")) as {
    emulate_device_bytes: number;
  };
  assert.equal(plan.emulate_device_bytes, 16 * GiB);
});

void test("emulation and loader settings: plan bytes, loader env, memlens.env overrides", () => {
  const description: RunDescription = {
    python: "py",
    model: "m",
    gpuMemoryUtilization: 0.98,
    emulateGpuGiB: 15.5,
    env: { MEMLENS_GPU_MEMORY_UTILIZATION: "0.5", PYTORCH_CUDA_ALLOC_CONF: "expandable_segments:False" },
  };
  assert.deepEqual(targetCommand(description, "/l.py"), {
    command: ["py", "/l.py"],
    env: {
      MEMLENS_MODEL: "m",
      MEMLENS_GPU_MEMORY_UTILIZATION: "0.5",
      MEMLENS_EMULATE_GPU_BYTES: String(15.5 * GiB),
      PYTORCH_CUDA_ALLOC_CONF: "expandable_segments:False",
    },
  });
  assert.deepEqual(targetCommand({ python: "py", command: ["vllm", "serve"], env: { A: "1" } }, "/l.py"), {
    command: ["vllm", "serve"],
    env: { A: "1" },
  });
  assert.equal(planForRun({ version: 1, targets: [] }, description).emulate_device_bytes, 15.5 * GiB);
  assert.equal(planForRun({ version: 1, targets: [] }, { python: "py" }).emulate_device_bytes, null);
  assert.throws(
    () => planForRun({ version: 1, targets: [] }, { python: "py", emulateGpuGiB: -1 }),
    /memlens\.emulateGpuGiB is -1/,
  );
  assert.equal(planForRun({ version: 1, targets: [] }, { python: "py", sitesCalls: 2 }).sites_calls, 2);
  assert.ok(!("sites_calls" in planForRun({ version: 1, targets: [] }, { python: "py", sitesCalls: 0 })));
  for (const bad of [-1, 1.5]) {
    assert.throws(
      () => planForRun({ version: 1, targets: [] }, { python: "py", sitesCalls: bad }),
      new RegExp(`memlens\\.sitesCalls is ${bad}`),
    );
  }
});

void test("bad configuration is refused before anything starts, each with what to fix", async () => {
  const probePath = probeZipapp();
  await assert.rejects(startRun(request({ python: "" }), { probePath }), /memlens\.python is empty/);
  await assert.rejects(
    startRun(request({ python: "python3", host: "-oProxyCommand=x" }), { probePath }),
    /not a valid ssh destination/,
  );
  await assert.rejects(
    startRun(request({ python: "python3" }), { probePath: "/nonexistent/memlens_probe.pyz" }),
    /the probe is missing at/,
  );
  await assert.rejects(
    startRun(request({ python: "python3", command: ["python3", WORKLOAD], cwd: "/nonexistent/dir" }), {
      probePath,
    }),
    /working directory "\/nonexistent\/dir" \(memlens\.cwd\) does not exist/,
  );
});

void test("a probe speaking another protocol version is refused with both versions named", async () => {
  const fakeProbe = path.join(tempDir("fake-probe"), "probe_v2.py");
  writeFileSync(
    fakeProbe,
    'import json, sys\nprint(json.dumps({"v": 2, "type": "start", "ts": 1, "pid": 1}), flush=True)\nsys.stdin.read()\n',
  );
  const handle = await startRun(request({ python: "python3", command: ["true"] }), { probePath: fakeProbe });
  const outcome = await handle.done;
  assert.equal(outcome.meta.status, "failed");
  assert.match(outcome.meta.error ?? "", /protocol v2 from the probe; this MemLens reads v1/);
});

void test("local preflight: the interpreter's version, torch and GPUs, each finding with its message", async () => {
  const session = new RunnerSession();
  const report = await preflightPlace(placeOf({}), "python3", "", { session, probePath: probeZipapp() });
  assert.ok(report.python.version[0] === 3 && report.python.version[1] >= 9);
  assert.match(report.lines[0] ?? "", /^this machine: Python 3\.\d+\.\d+ \(.+\), needs 3\.9\+: ok$/);
  assert.equal(report.files.get(probeZipapp()), probeZipapp(), "local files stay where they are");
  if (report.gpus.length === 0) assert.ok(report.problems.some((p) => p.problem === "no-gpu"));
  await assert.rejects(
    preflightPlace(placeOf({}), "/nonexistent/python3", "", { session, probePath: probeZipapp() }),
    /this machine, python: no Python at "\/nonexistent\/python3"/,
  );
  const old = path.join(tempDir("old-python"), "python2.7");
  writeFileSync(old, '#!/bin/sh\necho "memlens-python 2 7 18 /usr/bin/python2.7"\n', { mode: 0o755 });
  await assert.rejects(
    preflightPlace(placeOf({}), old, "", { session, probePath: probeZipapp() }),
    /is Python 2\.7\.18 \(\/usr\/bin\/python2\.7\); the probe needs Python 3\.9 or newer/,
  );
  assert.equal(existsSync(old), true);
});

void test("the launcher reads control messages from stdin: stop() ends the run by its stop message", async () => {
  // The probe reads stdin only when asked (--control stdin); without it a stop would wait for the
  // SIGTERM fallback, and the run's end would name that signal instead.
  const handle = await startRun(request({ python: "python3", command: ["python3", WORKLOAD, "hold"] }), {
    probePath: probeZipapp(),
    stopGraceMs: 60_000,
  });
  await nextEvent(handle, logLine("HOLD_PIDS "));
  const outcome = await handle.stop();
  assert.equal(outcome.meta.status, "stopped");
  const stored = await loadRun(handle.dir);
  const end = stored.events.at(-1) as { type: string; stop_reason?: string } | undefined;
  assert.equal(end?.type, "end");
  assert.equal(end?.stop_reason, "a stop control message on stdin");
});

void test("the plan carries the absolute source roots, for allocation sites and OOM blocks", () => {
  const plan = planForRun({ version: 1, targets: [] }, { python: "py" }, ["/srv/vllm", "relative/dir"]);
  assert.deepEqual(plan.source_roots, ["/srv/vllm"]);
  assert.equal(planForRun({ version: 1, targets: [] }, { python: "py" }, []).source_roots, undefined);
  const own = { version: 1 as const, targets: [], source_roots: ["/mine"] };
  assert.deepEqual(
    planForRun(own, { python: "py" }, ["/srv/vllm"]).source_roots,
    ["/mine"],
    "a plan's own roots win",
  );
});
