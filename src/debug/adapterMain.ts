// The shipped debug adapter (dist/debugAdapter.js): VS Code and the DAP tests both start this
// file and speak DAP over its stdin/stdout. The probe zipapp sits beside it in dist/.
import path from "node:path";
import { loadBundledCatalog } from "../catalog/catalog";
import { startRun } from "../runner/launch";
import { MemlensDebugSession } from "./session";

const probePath = path.join(__dirname, "memlens_probe.pyz");

const session = new MemlensDebugSession({
  catalog: loadBundledCatalog().data,
  startRun: (request, { sourceRoots }) => startRun(request, { probePath, sourceRoots }),
});

// VS Code ends adapters with SIGTERM: end the target's process tree before going.
process.on("SIGTERM", () => {
  void session.stopRun().finally(() => process.exit(0));
});

session.start(process.stdin, process.stdout);
