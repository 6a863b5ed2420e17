// "Check Remote GPU Host": the runner's preflight on demand, for the configured place (memlens.host
// and memlens.wrapper, or this machine), with progress, findings in the output channel and a
// summary the user can act on.
import * as vscode from "vscode";
import type { MemlensHostImpl } from "../host/extensionHost";
import { describePlace, placeOf } from "../runner/place";
import { preflightPlace } from "../runner/preflight";
import { defaultSession, DEFAULT_REMOTE_CACHE_DIR } from "../runner/remote";

export function registerPreflightCommand(host: MemlensHostImpl): vscode.Disposable {
  return vscode.commands.registerCommand("memlens.preflight", () => checkHost(host));
}

async function checkHost(host: MemlensHostImpl): Promise<void> {
  if (!vscode.workspace.isTrusted) {
    void vscode.window.showWarningMessage(
      "MemLens starts no program in an untrusted workspace, ssh included: the host and Python come from this workspace's settings.",
    );
    return;
  }
  const description = host.settings().description;
  const { output } = host;
  let where = "this machine";
  try {
    const place = placeOf(description);
    where = describePlace(place);
    const report = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `MemLens: checking ${where}` },
      (progress) =>
        preflightPlace(
          place,
          description.python,
          description.remoteCacheDir?.trim() || DEFAULT_REMOTE_CACHE_DIR,
          {
            session: defaultSession,
            probePath: host.probePath,
            force: true,
            onProgress: (message) => {
              progress.report({ message });
              output.appendLine(`[preflight] ${message}`);
            },
          },
        ),
    );
    for (const line of report.lines) output.appendLine(`[preflight] ${line}`);
    const gpus =
      report.gpus.length === 0 ? "no GPU" : report.gpus.map((g) => `GPU ${g.index} ${g.name}`).join(", ");
    const summary = `MemLens: ${where} is ready — Python ${report.python.version.join(".")}, torch ${report.torch ?? "missing"}, ${gpus}.`;
    if (report.problems.length === 0) {
      void vscode.window
        .showInformationMessage(summary, "Open Output")
        .then((choice) => choice && output.show(true));
    } else {
      const problems = report.problems.map((p) => p.message).join(" ");
      void vscode.window
        .showWarningMessage(`${summary} ${problems}`, "Open Output")
        .then((choice) => choice && output.show(true));
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    output.appendLine(`[preflight] ${message}`);
    const tail = (error as { stderrTail?: string[] }).stderrTail ?? [];
    for (const line of tail) output.appendLine(`[preflight]     ${line}`);
    void vscode.window
      .showErrorMessage(`MemLens: the check of ${where} failed: ${message}`, "Open Output")
      .then((choice) => choice && output.show(true));
  }
}
