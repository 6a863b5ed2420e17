// The cancellable progress notification of a live run: the load phase the target is in (the
// catalog phase of the innermost open probed scope) and its memory right now. Cancel stops the
// whole process tree.
import * as vscode from "vscode";
import type { LoadedRunEntry, RunEntry } from "../host/host";
import type { CallRecord, RunModel } from "../model/runModel";
import { latestMemory } from "./memoryText";
import { uiLang } from "../l10n/vscode";

const UPDATE_INTERVAL_MS = 250;

/** Names the phase a scope belongs to: its catalog phase title, else the probed target itself. */
export type PhaseNamer = (entry: RunEntry, call: CallRecord) => string;

function innermostOpenCall(model: RunModel): CallRecord | undefined {
  for (let i = model.calls.length - 1; i >= 0; i--) {
    const call = model.calls[i]!;
    if (call.open) return call;
  }
  return undefined;
}

export function progressMessage(entry: LoadedRunEntry, phaseOf: PhaseNamer): string {
  const model = entry.model;
  const parts: string[] = [];
  const open = innermostOpenCall(model);
  if (open) parts.push(phaseOf(entry, open));
  else if (model.processes.size === 0) parts.push(vscode.l10n.t("starting"));
  else parts.push(vscode.l10n.t("running"));
  const memory = latestMemory(model, uiLang());
  if (memory) parts.push(memory.short);
  return parts.join(" · ");
}

/** Shows the notification until the run ends; resolves then. */
export function showRunProgress(
  entry: LoadedRunEntry,
  outcome: Promise<unknown>,
  phaseOf: PhaseNamer,
): Thenable<void> {
  return vscode.window.withProgress(
    {
      location: vscode.ProgressLocation.Notification,
      title: `MemLens: ${entry.meta.label}`,
      cancellable: true,
    },
    async (progress, token) => {
      const handle = entry.handle;
      token.onCancellationRequested(() => {
        if (handle) void handle.stop();
      });
      let lastMessage = "";
      const update = () => {
        const message = progressMessage(entry, phaseOf);
        if (message !== lastMessage) {
          lastMessage = message;
          progress.report({ message });
        }
      };
      update();
      // Events come by the thousand during a load; the message changes at most every interval.
      let timer: NodeJS.Timeout | undefined;
      const unsubscribe = entry.model.onEvent(() => {
        timer ??= setTimeout(() => {
          timer = undefined;
          update();
        }, UPDATE_INTERVAL_MS);
      });
      try {
        await outcome.catch(() => undefined);
      } finally {
        unsubscribe();
        if (timer) clearTimeout(timer);
      }
    },
  );
}
