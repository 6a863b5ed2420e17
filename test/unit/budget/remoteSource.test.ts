// The checkpoint budget read over a real ssh connection (a throwaway sshd on loopback), the way
// the extension reads a model folder on the GPU host: headers only, through the runner's quoting.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, rmSync } from "node:fs";
import * as path from "node:path";
import { RemoteByteSource } from "../../../src/budget/remoteSource";
import { loadModelBudget } from "../../../src/budget/modelBudget";
import { CheckpointError, readCheckpoint } from "../../../src/budget/safetensors";
import { placeOf } from "../../../src/runner/place";
import { startSshdHost, type SshdHost } from "../../remote/sshdHost";
import { readGptOssInventory, tempDir, writeSparseCheckpoint } from "./sparseCheckpoint";

let sshd: SshdHost;
let dir: string;

before(async () => {
  sshd = await startSshdHost();
  const { config, inventory } = readGptOssInventory();
  // A path with a space and a quote: it crosses ssh as one quoted word.
  dir = path.join(tempDir("remote-budget"), "gpt oss '20b'");
  mkdirSync(dir);
  writeSparseCheckpoint(dir, config, inventory, 3);
});

after(async () => {
  await sshd?.stop();
  if (dir) rmSync(path.dirname(dir), { recursive: true, force: true });
});

void test("budget of a checkpoint on the host over ssh equals the local one", async () => {
  const source = new RemoteByteSource(placeOf({ host: sshd.host, sshArgs: sshd.sshArgs }), "python3");
  assert.match(source.where, /^host /);
  const budget = await loadModelBudget(source, dir);
  assert.equal(budget.summary.totalBytes, 13_761_264_768);
  assert.equal(budget.summary.parameters, 20_914_757_184);
  assert.equal(budget.inventory?.files.length, 3);
  assert.match(budget.origin, / on host .* \(3 files\)$/);
});

void test("a missing folder on the host is a clear error", async () => {
  const source = new RemoteByteSource(placeOf({ host: sshd.host, sshArgs: sshd.sshArgs }), "python3");
  await assert.rejects(readCheckpoint(source, `${dir}-missing`), (err: unknown) => {
    assert.ok(err instanceof CheckpointError);
    assert.match(err.message, /cannot be listed \(list failed on host .*: FileNotFoundError/);
    return true;
  });
});
