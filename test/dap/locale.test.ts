// The debug adapter in the editor's language: VS Code sends its UI language as the initialize
// request's `locale`. With "zh-cn" the stop descriptions (phase titles from the catalog's
// translation), frame names, variable scopes and reading sources are Chinese; the reading names
// (host_rss, allocated) and the numbers are the probe's own.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  bytesIn,
  fixture,
  launchArgs,
  launchWithBreakpoints,
  lineOf,
  perSourceGroups,
  stackOf,
  startAdapter,
  suiteRunsFolder,
  variablesOf,
  type StoppedEvent,
} from "./support";

const MiB = 1024 * 1024;
const RUNNER_FILE = fixture("vllm", "v1", "worker", "gpu_model_runner.py");

const runs = suiteRunsFolder("locale");

void test("locale zh-cn: phase stops, frames, scopes and sources in Chinese, the same readings", async () => {
  const session = await startAdapter("zh-cn");
  try {
    await launchWithBreakpoints(
      session,
      launchArgs("load_phases.py", runs.dir, { stopAtPhases: ["load_weights"] }),
    );
    const entry = await session.events.next<StoppedEvent>("stopped");
    assert.equal(entry.body.reason, "phase");
    assert.equal(entry.body.description, "加载权重：GPUModelRunner.load_model 的入口");
    const [top] = await stackOf(session, entry.body.threadId!);
    assert.equal(top?.source?.path, RUNNER_FILE);
    assert.equal(top?.name, "GPUModelRunner.load_model · 入口");
    const atEntry = await variablesOf(session, top.id);
    assert.deepEqual([...atEntry.keys()], ["当前", "自进入作用域以来", "按来源"]);
    const rss = atEntry.get("当前")!.get("host_rss")!;
    assert.equal(rss.type, "主机");
    assert.match(rss.value, /^\d+\.\d\d MiB \([\d,]+ B\)$/, "units stay as they are");

    await session.client.continueRequest({ threadId: entry.body.threadId! });
    const exit = await session.events.next<StoppedEvent>("stopped");
    assert.equal(exit.body.description, "加载权重：GPUModelRunner.load_model 的出口");
    const [exitTop] = await stackOf(session, exit.body.threadId!);
    const atExit = await variablesOf(session, exitTop!.id);
    assert.deepEqual([...atExit.keys()], ["当前", "自进入作用域以来", "作用域内峰值", "按来源"]);
    assert.equal(atExit.get("作用域内峰值")!.get("host_rss")!.type, "主机（采样值：下界）");
    assert.ok(bytesIn(atExit.get("自进入作用域以来")!.get("host_rss")!.value) >= 96 * MiB);
    const groups = await perSourceGroups(session, exitTop!.id, "按来源");
    assert.deepEqual(
      groups.map((g) => g.name),
      ["主机"],
    );
    const names = groups[0]!.readings;
    assert.ok(names.includes("host_rss 自进入以来") && names.includes("host_rss 峰值"), names.join());
    assert.match(
      session.events.output(),
      /MemLens 运行 .*：\d+ 个探测作用域，\d+ 个暂停目标；在这些阶段停下：加载权重。/,
    );
    await session.client.continueRequest({ threadId: exit.body.threadId! });
    await session.events.next("terminated");
  } finally {
    await session.client.stop();
  }
});

void test("locale zh-cn: a breakpoint that cannot be placed says why in Chinese", async () => {
  const work = fixture("steps", "work.py");
  const session = await startAdapter("zh-cn");
  try {
    const blankLine = lineOf(work, "BUFFER_BYTES = ") + 1;
    const set = await launchWithBreakpoints(session, launchArgs("run_steps.py", runs.dir), {
      [work]: [blankLine],
    });
    const blank = set.get(work)![0]!;
    assert.equal(blank.verified, false);
    assert.equal(blank.message, `第 ${blankLine} 行没有代码（空行或注释）：请把断点设在一条语句上。`);
    await session.client.terminateRequest();
  } finally {
    await session.client.stop();
  }
});
