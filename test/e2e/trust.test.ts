// Restricted Mode: in a workspace the user does not trust, lenses still show (and say why they
// will not run) but MemLens starts no program. The workspace here is hostile: its
// .vscode/settings.json names a host with an ssh ProxyCommand, a Python, a wrapper and a command
// that each leave a marker file when they run, and a model path on the host (reading it would
// start ssh at activation, before the user did anything).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, readdirSync } from "node:fs";
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { REPO_ROOT, Workbench } from "./harness";

const FP4_FILE = "vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py";
const PREPARE_DEF = "def prepare_moe_fp4_layer_for_marlin";
const STAGING_LINE = "staging = bytearray";
const HOST_MODEL = "/srv/models/gpt-oss-20b";
const UNTRUSTED = /untrusted workspace/;

let wb: Workbench;
/** Outside the workspace: the markers and the programs that write them. */
let scratch: string;

function e2e(title: string, body: () => Promise<void>): void {
  void test(title, () => wb.step(title, body));
}

function marker(name: string): string {
  return path.join(scratch, `${name}.marker`);
}

/** A program that leaves `name`.marker when it runs. */
async function markingProgram(name: string): Promise<string> {
  const program = path.join(scratch, `${name}.sh`);
  await writeFile(program, `#!/bin/sh\ntouch '${marker(name)}'\n`);
  chmodSync(program, 0o755);
  return program;
}

function markersLeft(): string[] {
  return readdirSync(scratch).filter((name) => name.endsWith(".marker"));
}

/** Settings that run a marking program wherever MemLens would start one. */
async function hostileSettings(remote: boolean): Promise<Record<string, unknown>> {
  return {
    ...(remote
      ? {
          "memlens.host": "nobody@127.0.0.1",
          "memlens.sshArgs": [`-oProxyCommand=sh -c 'touch ${marker("ssh")}'`],
          "memlens.model": HOST_MODEL,
        }
      : {}),
    "memlens.python": await markingProgram("python"),
    "memlens.wrapper": [await markingProgram("wrapper")],
    "memlens.command": [await markingProgram("command")],
    "memlens.env": { PYTHONSTARTUP: await markingProgram("env") },
  };
}

/** Measure Here measures the function around the cursor. */
async function cursorInsidePrepare(): Promise<void> {
  await wb.openFile(FP4_FILE);
  const lines = (await wb.readFile(FP4_FILE)).split("\n");
  await wb.goToLine(lines.findIndex((line) => line.includes(STAGING_LINE)) + 1);
}

before(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), "memlens-e2e-hostile-"));
  const workspace = path.join(scratch, "workspace");
  await cp(path.join(REPO_ROOT, "test/e2e/workspace"), workspace, { recursive: true });
  await writeFile(
    path.join(workspace, ".vscode", "settings.json"),
    JSON.stringify(await hostileSettings(true), null, 2),
  );
  wb = await Workbench.start({ name: "trust", workspace, askForTrust: true });
  await wb.answerTrustDialog(false);
});

after(async () => {
  await wb?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

e2e("an untrusted workspace shows lenses but runs nothing, and says why", async () => {
  await wb.openFile(FP4_FILE);
  // The lens is the sign that the extension is active: the checklist has read its budget by now.
  const lens = await wb.waitForLensAbove(PREPARE_DEF, /Measure here/i);
  assert.match(lens, /not trusted/i);
  await wb.runCommand("MemLens: Run with Current Probes");
  const toast = await wb.waitForNotification(UNTRUSTED);
  assert.ok((await toast.locator(".monaco-button", { hasText: "Manage Workspace Trust" }).count()) > 0);
  assert.equal(existsSync(wb.workspacePath(".memlens/runs")), false, "no run folder: nothing was started");
  assert.deepEqual(markersLeft(), []);
  await wb.screenshot("untrusted");
});

e2e("hostile host, ssh arguments and model: the budget and Measure Here start no program", async () => {
  await wb.clearNotifications();
  // The budget reads memlens.model the way activation does: the workspace's host path would go
  // through ssh. Restricted Mode keeps the user's own (default) model instead.
  await wb.runCommand("MemLens: Show Memory Budget");
  const heading = wb
    .webview()
    .getByText(/Memory budget: /)
    .first();
  await heading.waitFor();
  const title = (await heading.textContent()) ?? "";
  assert.ok(!title.includes(HOST_MODEL), `the workspace's model was used: "${title}"`);
  assert.deepEqual(markersLeft(), [], "the budget started a program");

  await cursorInsidePrepare();
  await wb.runCommand("MemLens: Measure Here");
  const toast = await wb.waitForNotification(UNTRUSTED);
  assert.match((await toast.textContent()) ?? "", /Trust the workspace/);
  assert.deepEqual(markersLeft(), [], "Measure Here started a program");
  assert.equal(existsSync(wb.workspacePath(".memlens/runs")), false);
  await wb.screenshot("hostile-remote-refused");
});

e2e("hostile local Python, wrapper, command and env: Measure Here starts no program", async () => {
  await wb.clearNotifications();
  await wb.setWorkspaceSettings(await hostileSettings(false));
  await cursorInsidePrepare();
  await wb.runCommand("MemLens: Measure Here");
  await wb.waitForNotification(UNTRUSTED);
  await wb.runCommand("MemLens: Check Remote GPU Host");
  await wb.waitForNotification(/untrusted workspace, ssh included/);
  assert.deepEqual(markersLeft(), [], "a program was started");
  assert.equal(existsSync(wb.workspacePath(".memlens/runs")), false);
  await wb.screenshot("hostile-local-refused");
});
