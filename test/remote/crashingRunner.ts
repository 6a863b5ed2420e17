// A stand-in for an extension host that dies mid-run (ssh.test.ts kills it with SIGKILL): starts
// the run described by argv[2] (JSON: request and probe path), prints "RUN_DIR <dir>" when the
// target says HOLD_PIDS, then waits to be killed.
import { startRun } from "../../src/runner/launch";
import type { RunRequest } from "../../src/runner/types";

const { request, probePath } = JSON.parse(process.argv[2] ?? "{}") as {
  request: RunRequest;
  probePath: string;
};

void startRun(request, { probePath }).then((handle) => {
  handle.onEvent((event) => {
    if (event.type === "log" && event.line.startsWith("HOLD_PIDS "))
      console.log(`RUN_DIR ${handle.dir} ${event.line}`);
  });
});
