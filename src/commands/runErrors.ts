// Turns a run that could not start or ended badly into one message that says what was wrong and
// what to do. No `vscode` import, so the wording is unit-tested.
import type { RunModel } from "../model/runModel";
import type { RunDescription, RunMeta } from "../runner/types";
import { translator, type Lang, type Translate } from "../l10n/lang";
import { RUN_ERRORS_TEXT, type RunErrorKey } from "../l10n/runErrors";

export interface RunFailure {
  /** One line for the notification. */
  message: string;
  /** The lines behind it (stderr tail), for the output channel. */
  details: string[];
}

const STDERR_LINES_IN_MESSAGE = 3;

/** Last stderr lines of the target (log events) and of the launcher, oldest first. */
export function lastStderrLines(
  model: RunModel | undefined,
  launcherStderr: readonly string[],
  count: number,
): string[] {
  const targetLines = (model?.logs ?? []).filter((l) => l.stream === "stderr").map((l) => l.line);
  const errors = (model?.errors ?? []).map((e) => `probe error: ${e.message}`);
  return [...targetLines, ...errors, ...launcherStderr].filter((line) => line.trim() !== "").slice(-count);
}

function isSpawnNotFound(text: string | undefined): boolean {
  return text !== undefined && /\bENOENT\b|No such file or directory|not found/i.test(text);
}

function where(description: RunDescription, t: Translate<RunErrorKey>): string {
  return description.host ? t("where", { host: description.host }) : "";
}

function pythonNotFound(description: RunDescription, t: Translate<RunErrorKey>): string {
  return t("pythonNotFound", { python: description.python, where: where(description, t) });
}

/** An error thrown while starting the run (before any event). `lang`: the editor's language. */
export function describeStartError(
  error: unknown,
  description: RunDescription,
  lang: Lang = "en",
): RunFailure {
  const t = translator(RUN_ERRORS_TEXT, lang);
  const err = error as (NodeJS.ErrnoException & { stderrTail?: string[] }) | undefined;
  const text = err instanceof Error ? err.message : String(error);
  // The runner's own errors already name the place, the step and what to do.
  if (err instanceof Error && err.name === "RunnerError") {
    return {
      message: t("couldNotStartRun", { error: text }),
      details: [text, ...(err.stderrTail ?? [])],
    };
  }
  if (err?.code === "ENOENT" || isSpawnNotFound(text)) {
    return { message: pythonNotFound(description, t), details: [text] };
  }
  return { message: t("couldNotStartRun", { error: text }), details: [text] };
}

/** A run that ended; undefined when it finished cleanly or the user stopped it. */
export function describeRunFailure(
  meta: RunMeta,
  model: RunModel | undefined,
  description: RunDescription,
  launcherStderr: readonly string[],
  lang: Lang = "en",
): RunFailure | undefined {
  if (meta.status === "stopped") return undefined;
  const t = translator(RUN_ERRORS_TEXT, lang);
  const exitCode = meta.exitCode ?? model?.end?.exit_code ?? null;
  const signal = meta.signal ?? model?.end?.signal ?? null;
  if (meta.status === "finished" && (exitCode === 0 || exitCode === null) && !signal && !meta.error)
    return undefined;

  const details = lastStderrLines(model, launcherStderr, 20);
  const tail = details.slice(-STDERR_LINES_IN_MESSAGE);
  const tailText = tail.length > 0 ? t("lastStderr", { lines: tail.map((l) => l.trim()).join(" ⏎ ") }) : "";
  const started = (model?.processes.size ?? 0) > 0;

  if (
    !started &&
    (isSpawnNotFound(meta.error) || (exitCode === null && isSpawnNotFound(details.join("\n"))))
  ) {
    return {
      message: pythonNotFound(description, t),
      details: [meta.error ?? "", ...details].filter((l) => l !== ""),
    };
  }
  const command = meta.command.length > 0 ? meta.command.join(" ") : t("bundledLoader");
  if (exitCode === 127 || (!started && isSpawnNotFound(details.join("\n")))) {
    return {
      message: t("targetNotFound", {
        command: meta.command[0] ?? command,
        where: where(description, t),
        tail: tailText,
      }),
      details,
    };
  }
  if (signal) {
    return { message: t("killed", { command, signal, tail: tailText }), details };
  }
  if (exitCode !== null && exitCode !== 0) {
    return { message: t("exited", { command, code: exitCode, tail: tailText }), details };
  }
  const reason = meta.error ?? t("runFailedReason");
  return { message: t("runFailed", { reason, tail: tailText }), details };
}

/**
 * Probes that resolved in no process of a finished run: the run "worked" but measured nothing
 * there, which users otherwise only learn from a missing lens. One sentence per probe, with the
 * probe's own reason (module never imported, no such attribute, line never executed).
 */
export function describeUnresolvedProbes(model: RunModel | undefined, lang: Lang = "en"): string | undefined {
  if (!model) return undefined;
  const lines: string[] = [];
  for (const target of model.targets.values()) {
    if (target.resolved.size > 0 || target.notFound.size === 0) continue;
    const reason = [...target.notFound.values()][0]!.reason;
    lines.push(`${target.spec ?? target.id}: ${reason}`);
  }
  if (lines.length === 0) return undefined;
  const t = translator(RUN_ERRORS_TEXT, lang);
  const probes = lines.join("; ");
  return lines.length === 1
    ? t("unresolved.one", { probes })
    : t("unresolved.other", { n: lines.length, probes });
}
