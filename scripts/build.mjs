// One esbuild bundle per entry point; tsc only type-checks (npm run typecheck).
/* global process */
import * as esbuild from "esbuild";
import { existsSync } from "node:fs";
import { execFileSync } from "node:child_process";

const production = process.argv.includes("--production");
const watch = process.argv.includes("--watch");

const nodeEntries = [
  { in: "src/extension.ts", out: "extension" },
  { in: "src/server/main.ts", out: "server" },
  { in: "src/debug/adapterMain.ts", out: "debugAdapter" },
  { in: "src/cli/main.ts", out: "cli" },
].filter((e) => existsSync(e.in));

const common = {
  bundle: true,
  sourcemap: !production,
  minify: production,
  logLevel: "warning",
  // Catalog and checklist JSON are bundled so the shipped .vsix needs no src/.
  loader: { ".json": "json" },
};

const contexts = [
  await esbuild.context({
    ...common,
    entryPoints: nodeEntries,
    outdir: "dist",
    platform: "node",
    format: "cjs",
    target: "node20",
    external: ["vscode"],
  }),
];
if (existsSync("webview/main.ts")) {
  contexts.push(
    await esbuild.context({
      ...common,
      entryPoints: [{ in: "webview/main.ts", out: "panel" }],
      outdir: "dist/webview",
      platform: "browser",
      format: "iife",
      target: "es2022",
    }),
  );
}

// The probe ships as one zipapp built from python-probe/ (see scripts/build_probe.py).
function buildProbe() {
  execFileSync("python3", ["python-probe/build_zipapp.py", "dist/memlens_probe.pyz"], { stdio: "inherit" });
}

if (watch) {
  await Promise.all(contexts.map((c) => c.watch()));
} else {
  await Promise.all(contexts.map((c) => c.rebuild()));
  await Promise.all(contexts.map((c) => c.dispose()));
  if (existsSync("python-probe/build_zipapp.py")) buildProbe();
}
