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
      vscode.l10n.t(
        "MemLens starts no program in an untrusted workspace, ssh included: the host and Python come from this workspace's settings.",
      ),
    );
    return;
  }
  const description = host.settings().description;
  const { output } = host;
  let where = vscode.l10n.t("this machine");
  try {
    const place = placeOf(description);
    where = describePlace(place);
    const report = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: vscode.l10n.t("MemLens: checking {0}", where),
      },
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
      report.gpus.length === 0
        ? vscode.l10n.t("no GPU")
        : report.gpus.map((g) => `GPU ${g.index} ${g.name}`).join(", ");
    const summary = vscode.l10n.t(
      "MemLens: {0} is ready — Python {1}, torch {2}, {3}.",
      where,
      report.python.version.join("."),
      report.torch ?? vscode.l10n.t("missing"),
      gpus,
    );
    const openOutput = vscode.l10n.t("Open Output");
    if (report.problems.length === 0) {
      void vscode.window
        .showInformationMessage(summary, openOutput)
        .then((choice) => choice && output.show(true));
    } else {
      const problems = report.problems.map((p) => p.message).join(" ");
      void vscode.window
        .showWarningMessage(`${summary} ${problems}`, openOutput)
        .then((choice) => choice && output.show(true));
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    output.appendLine(`[preflight] ${message}`);
    const tail = (error as { stderrTail?: string[] }).stderrTail ?? [];
    for (const line of tail) output.appendLine(`[preflight]     ${line}`);
    void vscode.window
      .showErrorMessage(
        vscode.l10n.t("MemLens: the check of {0} failed: {1}", where, message),
        vscode.l10n.t("Open Output"),
      )
      .then((choice) => choice && output.show(true));
  }
}
