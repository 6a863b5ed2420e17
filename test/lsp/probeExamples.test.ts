// The probe's own recorded examples (python-probe/examples/*.jsonl) through the server: each
// loads without error, and every measured function whose source is on this machine gets the
// lens the run model computes for it.
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, test } from "node:test";
import { summaryLine } from "../../src/model/format";
import { RunModel } from "../../src/model/runModel";
import type { TargetResolvedEvent } from "../../src/protocol/events";
import { parseEventsText } from "../../src/protocol/reader";
import { LspTestClient, REPO_ROOT, fileUri, runFolder } from "./lspTestClient";

const EXAMPLES = path.join(REPO_ROOT, "python-probe/examples");
const examples = existsSync(EXAMPLES)
  ? readdirSync(EXAMPLES)
      .filter((f) => f.endsWith(".jsonl"))
      .sort()
  : [];

let client: LspTestClient | undefined;
afterEach(async () => {
  await client?.stop();
  client = undefined;
});

if (examples.length === 0) {
  void test("probe examples", (t) => t.skip("python-probe/examples has no .jsonl files yet"));
}

for (const name of examples) {
  void test(`probe example ${name}: loads, and measured functions get their lens`, async () => {
    const parsed = parseEventsText(readFileSync(path.join(EXAMPLES, name), "utf8"));
    if (parsed.versionError) {
      // An example of a version this MemLens refuses: the server refuses it with the same message.
      const dir = mkdtempSync(path.join(tmpdir(), "memlens-example-"));
      try {
        copyFileSync(path.join(EXAMPLES, name), path.join(dir, "events.jsonl"));
        client = await LspTestClient.start();
        const result = await client.setRun({ run: { id: name, dir } });
        assert.equal(result.error, parsed.versionError.message);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      return;
    }
    client = await LspTestClient.start({ initializationOptions: { sourceRoots: [] } });
    const result = await client.setRun({
      run: { id: name, dir: runFolder(parsed.events) },
    });
    assert.equal(result.error, undefined);
    assert.equal(result.events, parsed.events.length);
    const model = RunModel.fromEvents(parsed.events);
    assert.equal(result.calls, model.calls.length);

    for (const summary of model.summaries()) {
      if (summary.kind !== "function") continue;
      const resolved = [...(model.targets.get(summary.target)?.resolved.values() ?? [])].find(
        (e): e is TargetResolvedEvent =>
          e.file !== undefined && existsSync(e.file) && e.qualname !== undefined,
      );
      if (!resolved) continue;
      const uri = fileUri(resolved.file!);
      await client.open(uri, readFileSync(resolved.file!, "utf8"));
      const lenses = await client.codeLenses(uri);
      const titles = lenses
        .filter((l) => l.range.start.line === resolved.line! - 1)
        .map((l) => l.command?.title);
      assert.ok(titles.includes(summaryLine(summary)), `${resolved.qualname}: ${JSON.stringify(titles)}`);
      await client.close(uri);
    }
  });
}
