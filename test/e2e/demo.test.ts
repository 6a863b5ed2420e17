// The quick start's demo workspace (media/demo) in code-server: "Measure Here" from the command
// palette and from the editor's context menu, with the cursor inside a function that has no
// catalog lens, runs the demo workload with the real probe and shows the known allocations.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Workbench } from "./harness";

const LOADER = "memlens_demo/loader.py";
const MiB_PATTERN = /([+−-])(\d+(?:\.\d+)?) MiB host RSS/;
/** RSS moves by more than the allocation (allocator, page tables, the sampler): allow this much. */
const RSS_TOLERANCE_MIB = 12;

let wb: Workbench;

function e2e(title: string, body: () => Promise<void>): void {
  void test(title, () => wb.step(title, body));
}

function mib(text: string): number {
  const match = MiB_PATTERN.exec(text);
  assert.ok(match, `no MiB host-RSS delta in "${text}"`);
  return (match[1] === "+" ? 1 : -1) * Number(match[2]);
}

async function lineOf(text: string): Promise<number> {
  const index = (await wb.readFile(LOADER)).split("\n").findIndex((line) => line.includes(text));
  assert.ok(index >= 0, `"${text}" is not in ${LOADER}`);
  return index + 1;
}

before(async () => {
  wb = await Workbench.start({ name: "demo", workspace: "media/demo" });
});

after(async () => {
  await wb?.stop();
});

e2e("Measure Here from the command palette measures the function around the cursor", async () => {
  await wb.openFile(LOADER);
  await wb.goToLine(await lineOf("model.weights.append(allocate("));
  await wb.runCommand("MemLens: Measure Here");
  const lens = await wb.waitForLensAbove("def load_weights", MiB_PATTERN);
  // load_weights keeps LAYERS x 64 MiB = 256 MiB.
  assert.ok(
    Math.abs(mib(lens) - 256) <= RSS_TOLERANCE_MIB,
    `expected about +256 MiB, the lens says "${lens}"`,
  );
  assert.match(lens, /1 call/);
  await wb.screenshot("load-weights");
});

e2e("Measure Here from the editor's context menu counts every call", async () => {
  // The first test's lens shows when load_weights returns; its run goes on a while after that.
  const before = (await wb.waitForRunsToEnd()).length;
  const line = "return allocate(WORKSPACE_MIB * MiB)";
  await wb.goToLine(await lineOf(line));
  await wb.pickFromEditorContextMenu(line, "Measure Here", async () =>
    (await wb.runMetas()).slice(before).some((meta) => meta.label.includes("make_workspace")),
  );
  // One 8 MiB workspace per layer, 4 layers: the answer to "per layer or shared?".
  const lens = await wb.waitForLensAbove("def make_workspace()", /4 calls/);
  assert.ok(Math.abs(mib(lens) - 32) <= RSS_TOLERANCE_MIB, `expected about +32 MiB over 4 calls: "${lens}"`);
  // The earlier probe rode along in this run.
  assert.ok(Math.abs(mib((await wb.lensTextAbove("def load_weights")) ?? "") - 256) <= RSS_TOLERANCE_MIB);
  await wb.screenshot("make-workspace");
});
