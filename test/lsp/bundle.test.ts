// The server as it ships: bundled by esbuild (catalog JSON inside) and spoken to over Node IPC,
// the transport vscode-languageclient uses. Set MEMLENS_SERVER_BUNDLE to test an existing
// dist/server.js instead of a fresh bundle.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import * as esbuild from "esbuild";
import { FIXTURE_ROOT, LspTestClient, REPO_ROOT, fileUri } from "./lspTestClient";

let dir: string;
let bundle: string;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "memlens-bundle-"));
  bundle = process.env.MEMLENS_SERVER_BUNDLE ?? path.join(dir, "server.js");
  if (process.env.MEMLENS_SERVER_BUNDLE) return;
  await esbuild.build({
    entryPoints: [path.join(REPO_ROOT, "src/server/main.ts")],
    outfile: bundle,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    loader: { ".json": "json" },
    logLevel: "error",
  });
});

after(() => rmSync(dir, { recursive: true, force: true }));

for (const transport of ["ipc", "stdio"] as const) {
  void test(`the bundled server over ${transport}: lenses from the bundled catalog, clean shutdown`, async () => {
    const client = await LspTestClient.start({ transport, serverModule: bundle });
    try {
      const file = path.join(FIXTURE_ROOT, "vllm/model_executor/layers/quantization/utils/marlin_utils.py");
      const uri = fileUri(file);
      await client.open(uri, readFileSync(file, "utf8"));
      const lenses = await client.codeLenses(uri);
      assert.deepEqual(
        lenses.map((l) => l.command?.arguments?.[0] as { qualname: string }).map((a) => a.qualname),
        ["marlin_make_workspace", "marlin_make_workspace_new"],
      );
    } finally {
      assert.equal(await client.stop(), 0, "exit code after shutdown + exit");
    }
  });
}
