// Restricted Mode: which settings a workspace may not set, and the one gate every child process
// passes. The attack these tests replay: a workspace's .vscode/settings.json names a host and an
// ssh ProxyCommand, and opening a .py file runs it (the checklist reads the model's budget at
// activation, over ssh).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { ProcessRefusedError, runToEnd, setProcessGate } from "../../src/runner/exec";
import { placeOf } from "../../src/runner/place";
import { resolveModelBudget } from "../../src/budget/resolve";

const REPO_ROOT = path.resolve(__dirname, "../..");

interface Manifest {
  capabilities: { untrustedWorkspaces: { supported: string; restrictedConfigurations?: string[] } };
  contributes: { configuration: { properties: Record<string, unknown> } };
}

const manifest = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as Manifest;

/**
 * Each setting and why a workspace may or may not set it in Restricted Mode. A new setting fails
 * the test below until it is added here, so nobody adds one without deciding.
 */
const DECISIONS: Record<string, { restricted: boolean; why: string }> = {
  "memlens.python": { restricted: true, why: "the program that runs (locally or on the host)" },
  "memlens.command": { restricted: true, why: "the target program and its arguments" },
  "memlens.wrapper": { restricted: true, why: "a program prefix (docker, kubectl, srun, anything)" },
  "memlens.env": { restricted: true, why: "LD_PRELOAD, PYTHONPATH, PYTHONSTARTUP run code" },
  "memlens.cwd": { restricted: true, why: "Python imports from the working directory" },
  "memlens.host": { restricted: true, why: "ssh runs the host's ssh_config, ProxyCommand included" },
  "memlens.sshArgs": { restricted: true, why: "-oProxyCommand / -oLocalCommand run commands" },
  "memlens.remoteCacheDir": { restricted: true, why: "where the probe is written and run from" },
  "memlens.model": { restricted: true, why: "a path read here, or on the host over ssh" },
  "memlens.runsDirectory": { restricted: true, why: "a folder read, written and deleted from" },
  "memlens.sourceRoots": { restricted: true, why: "folders outside the workspace read and opened" },
  "memlens.pathMappings": { restricted: true, why: "local paths outside the workspace opened" },
  "memlens.sampleIntervalMs": { restricted: false, why: "a number, used only when a run starts" },
  "memlens.sitesCalls": { restricted: false, why: "a number, used only when a run starts" },
  "memlens.gpuMemoryUtilization": { restricted: false, why: "a number for the loader and the budget" },
  "memlens.targetGpuGiB": { restricted: false, why: "a number for the budget" },
  "memlens.logLanguage": { restricted: false, why: "the language findings are written in" },
  "memlens.emulateGpuGiB": { restricted: false, why: "a number, used only when a run starts" },
  "memlens.allocationSites": { restricted: false, why: "a flag in the plan, used only when a run starts" },
};

test("every setting is decided on, and the manifest restricts exactly the ones that run or name paths", () => {
  const trust = manifest.capabilities.untrustedWorkspaces;
  assert.equal(trust.supported, "limited");
  const declared = Object.keys(manifest.contributes.configuration.properties).sort();
  assert.deepEqual(declared, Object.keys(DECISIONS).sort(), "a setting without a Restricted Mode decision");
  const expected = Object.entries(DECISIONS)
    .filter(([, d]) => d.restricted)
    .map(([key]) => key)
    .sort();
  assert.deepEqual([...(trust.restrictedConfigurations ?? [])].sort(), expected);
});

const scratch = mkdtempSync(path.join(tmpdir(), "memlens-trust-"));
after(() => {
  setProcessGate(undefined);
  rmSync(scratch, { recursive: true, force: true });
});

/** A marker file a hostile setting would create, and the sshArgs / program that create it. */
function hostile(name: string): { marker: string; sshArgs: string[]; program: string } {
  const marker = path.join(scratch, `${name}.marker`);
  const program = path.join(scratch, `${name}.sh`);
  writeFileSync(program, `#!/bin/sh\ntouch '${marker}'\n`);
  chmodSync(program, 0o755);
  return {
    marker,
    program,
    sshArgs: [`-oProxyCommand=sh -c 'touch ${marker}'`, "-oConnectTimeout=5", "-oStrictHostKeyChecking=no"],
  };
}

test("control: without the gate, the hostile ssh arguments do run their command", async () => {
  setProcessGate(undefined);
  const { marker, sshArgs } = hostile("control");
  const found = await resolveModelBudget("/srv/models/gpt-oss-20b", {
    place: placeOf({ host: "nobody@memlens.invalid", sshArgs }),
    python: "python3",
  }).catch((error: unknown) => ({ error }));
  assert.ok("error" in found, "ssh through a ProxyCommand that exits cannot succeed");
  assert.ok(existsSync(marker), "the ProxyCommand ran: this is what Restricted Mode must prevent");
});

test("a refused workspace reads no host checkpoint and says why, with no process started", async () => {
  setProcessGate(undefined);
  const { marker, sshArgs } = hostile("refused");
  const found = await resolveModelBudget("/srv/models/gpt-oss-20b", {
    place: placeOf({ host: "nobody@memlens.invalid", sshArgs }),
    python: "python3",
    processesRefused: "the workspace is not trusted.",
  });
  assert.equal(found.budget, undefined);
  assert.match(
    found.why ?? "",
    /\/srv\/models\/gpt-oss-20b is on the host and was not read: the workspace is not trusted/,
  );
  assert.equal(existsSync(marker), false, "ssh was started");
});

test("the gate stops every process: a host read that forgot its own check, and a plain command", async () => {
  setProcessGate(() => "the workspace is not trusted.");
  const ssh = hostile("gated-ssh");
  await assert.rejects(
    resolveModelBudget("/srv/models/gpt-oss-20b", {
      place: placeOf({ host: "nobody@memlens.invalid", sshArgs: ssh.sshArgs }),
      python: "python3",
    }),
    // The budget reader wraps the refusal in its own error; the reason stays in the message.
    (error: unknown) => error instanceof Error && /not trusted/.test(error.message),
  );
  assert.equal(existsSync(ssh.marker), false, "ssh was started");

  const local = hostile("gated-python");
  await assert.rejects(runToEnd({ file: local.program, args: [] }), ProcessRefusedError);
  assert.equal(existsSync(local.marker), false, "the program was started");

  // The gate is asked each time: trusting the workspace lets the next process start.
  setProcessGate(() => undefined);
  const ended = await runToEnd({ file: local.program, args: [] });
  assert.equal(ended.exitCode, 0);
  assert.ok(existsSync(local.marker));
});
