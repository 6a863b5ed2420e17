/* global process, console, setTimeout */
// Steps through a real vLLM load with MemLens' debug adapter (the shipped bundle), as VS Code
// would: launch with stopAtPhases, read threads and Variables at each stop, Continue, Pause,
// Continue to the KV-cache phase, then Stop, and check that nothing is left on the GPU.
//   node scripts/vllm/dap-step.mjs OUT_DIR [ADAPTER_JS] -- COMMAND...
// Writes OUT_DIR/dap-step.json (every stop with its threads and readings) and prints a summary.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { DebugClient } from "@vscode/debugadapter-testsupport";

const args = process.argv.slice(2);
const dash = args.indexOf("--");
const [outDir, adapter = ".devdist/debugAdapter.js"] = args.slice(0, dash);
const command = args.slice(dash + 1);
const STOP_TIMEOUT_MS = 300_000;
mkdirSync(outDir, { recursive: true });

const report = { command, stops: [], threads: [], pause: null, stopped: null, gpuAfterStop: null };
const client = new DebugClient("node", path.resolve(adapter), "memlens");
client.defaultTimeout = STOP_TIMEOUT_MS;

// Compute processes on this run's GPUs (CUDA_VISIBLE_DEVICES, else all of them): on a host where
// another job uses the other GPU, its processes are not this run's leftovers.
function gpuProcesses() {
  try {
    const smi = (query) =>
      execFileSync("nvidia-smi", [query, "--format=csv,noheader"], { encoding: "utf8" }).trim().split("\n");
    const visible = process.env.CUDA_VISIBLE_DEVICES?.split(",").map((s) => s.trim());
    const uuids = smi("--query-gpu=index,uuid")
      .map((line) => line.split(", "))
      .filter(([index]) => !visible || visible.includes(index))
      .map(([, uuid]) => uuid);
    return smi("--query-compute-apps=pid,used_memory,gpu_uuid")
      .filter((line) => line && uuids.some((uuid) => line.endsWith(uuid)))
      .map((line) => line.split(", ").slice(0, 2).join(", "))
      .join("\n");
  } catch (error) {
    return `nvidia-smi failed: ${error.message}`;
  }
}

async function describeStop(event) {
  const threads = (await client.threadsRequest()).body.threads;
  const frames = (await client.stackTraceRequest({ threadId: event.body.threadId })).body.stackFrames;
  const variables = {};
  if (frames.length > 0) {
    const scopes = (await client.scopesRequest({ frameId: frames[0].id })).body.scopes;
    for (const scope of scopes) {
      const vars = (await client.variablesRequest({ variablesReference: scope.variablesReference })).body
        .variables;
      variables[scope.name] = Object.fromEntries(vars.map((v) => [v.name, v.value]));
    }
  }
  const stop = {
    reason: event.body.reason,
    description: event.body.description,
    threadId: event.body.threadId,
    thread: threads.find((t) => t.id === event.body.threadId)?.name,
    frame: frames[0] ? { name: frames[0].name, source: frames[0].source?.path, line: frames[0].line } : null,
    variables,
  };
  report.threads = threads.map((t) => t.name);
  report.stops.push(stop);
  console.log(
    `stop ${report.stops.length}: ${stop.reason} in "${stop.thread}" at ${stop.frame?.name} — ${stop.description ?? ""}`,
  );
  return stop;
}

const isKvStop = (stop) => /kv/i.test(`${stop.description} ${stop.frame?.name}`);

try {
  await client.start();
  await client.initializeRequest({
    adapterID: "memlens",
    linesStartAt1: true,
    columnsStartAt1: true,
    pathFormat: "path",
  });
  const launch = {
    name: "gpt-oss-20b real load",
    python: "python3",
    command,
    cwd: process.cwd(),
    runsDirectory: path.resolve(outDir, "runs"),
    stopAtPhases: ["convert_weights", "kv_cache"],
    sampleIntervalMs: 100,
  };
  const firstStop = client.waitForEvent("stopped", STOP_TIMEOUT_MS);
  await Promise.all([client.configurationSequence(), client.launch(launch)]);
  await describeStop(await firstStop);
  // Continue once, then Pause right away: the adapter stops at the next probe point.
  let next = client.waitForEvent("stopped", STOP_TIMEOUT_MS);
  await client.continueRequest({ threadId: report.stops[0].threadId });
  await client.pauseRequest({ threadId: report.stops[0].threadId });
  report.pause = await describeStop(await next);
  // Continue until the KV-cache phase (every conversion hotspot of the 24 layers stops on the way).
  for (let i = 0; i < 400 && !isKvStop(report.stops.at(-1)); i++) {
    next = client.waitForEvent("stopped", STOP_TIMEOUT_MS);
    await client.continueRequest({ threadId: report.stops.at(-1).threadId });
    const event = await next;
    if (report.stops.length < 6 || /kv/i.test(event.body.description ?? "")) await describeStop(event);
    else report.stops.push({ reason: event.body.reason, description: event.body.description });
  }
  report.stopped = report.stops.at(-1);
  // Stop: the whole process tree must end and leave nothing on the GPU.
  const terminated = client.waitForEvent("terminated", 60_000).catch(() => null);
  await client.disconnectRequest({ terminateDebuggee: true });
  await terminated;
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  report.gpuAfterStop = gpuProcesses();
  console.log(`after Stop, nvidia-smi compute apps: ${report.gpuAfterStop || "none"}`);
} catch (error) {
  report.error = String(error?.stack ?? error);
  console.error(report.error);
  process.exitCode = 1;
} finally {
  writeFileSync(path.join(outDir, "dap-step.json"), `${JSON.stringify(report, null, 1)}\n`);
  await client.stop().catch(() => undefined);
}
