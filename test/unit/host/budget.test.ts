// The budget the panel, the checklist and the log export share: memlens.model resolved once per
// settings and trust, by the resolver the CLI uses too.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { BudgetResolver } from "../../../src/host/budget";
import { readSettings, type SettingsReader } from "../../../src/settings/settings";

function settingsOf(values: Record<string, unknown>) {
  const reader: SettingsReader = { get: <T>(key: string) => values[key] as T | undefined };
  return readSettings(reader, { folder: "/ws", folders: ["/ws"], storage: "/storage" });
}

test("a known model resolves to its bundled inventory with the settings' card, once per settings", async () => {
  const logged: string[] = [];
  const resolver = new BudgetResolver((line) => logged.push(line));
  const settings = settingsOf({ targetGpuGiB: 15.5 });
  const first = await resolver.resolve(settings, true, "/ws");
  assert.match(first.checkpoint?.origin ?? "", /bundled tensor inventory of openai\/gpt-oss-20b/);
  assert.equal(first.targetBytes, 15.5 * 1024 ** 3);
  assert.equal(first.gpuMemoryUtilization, 0.98);
  const again = await resolver.resolve(settingsOf({ targetGpuGiB: 16 }), true, "/ws");
  assert.equal(again.checkpoint, first.checkpoint, "the card changed, not the model: not read again");
  assert.equal(again.targetBytes, 16 * 1024 ** 3);
  assert.deepEqual(logged, []);
});

test("without a checkpoint the budget says why: a file for a folder, a host path in an untrusted workspace", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "memlens-budget-"));
  try {
    const file = path.join(dir, "config.json");
    writeFileSync(file, "{}");
    const logged: string[] = [];
    const resolver = new BudgetResolver((line) => logged.push(line));
    const notFolder = await resolver.resolve(settingsOf({ model: file }), true, dir);
    assert.equal(notFolder.checkpoint, undefined);
    assert.match(notFolder.why ?? "", /config\.json is a file; give the model folder/);
    const remote = await resolver.resolve(
      settingsOf({ model: "/models/gpt-oss-20b", host: "gpu1" }),
      false,
      dir,
    );
    assert.match(remote.why ?? "", /is on the host and was not read: the workspace is not trusted/);
    assert.equal(logged.length, 2, "each reason goes to the output once");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
