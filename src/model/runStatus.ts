// How a run ended, decided in one place: the runner records it in meta.json, and a view that has
// the run's end event before its meta.json says so (a run followed from its folder) shows the same.
import type { EndEvent } from "../protocol/events";

/** "interrupted": meta said running but its process is gone (MemLens or the machine stopped first). */
export type RunStatus = "running" | "finished" | "failed" | "stopped" | "interrupted";

export interface RunEnding {
  /** The launcher's end event, when it sent one. */
  end?: EndEvent;
  /** The user (or MemLens) asked the run to stop. */
  stopRequested?: boolean;
  /** Why the run failed besides its end event: it could not be set up, the launcher died. */
  failure?: string;
  /** The event stream was refused (an unknown protocol version): failed, though MemLens stopped it then. */
  streamRefused?: boolean;
}

/** Whether the target itself failed: killed by a signal, or a non-zero exit code. */
export function endFailed(end: EndEvent): boolean {
  return end.signal !== null || (end.exit_code !== null && end.exit_code !== 0);
}

export function endedStatus(ending: RunEnding): Exclude<RunStatus, "running" | "interrupted"> {
  if (ending.streamRefused) return "failed";
  if (ending.stopRequested || ending.end?.stopped) return "stopped";
  const failed = ending.failure !== undefined || (ending.end !== undefined && endFailed(ending.end));
  return failed ? "failed" : "finished";
}

/** The status to show: the recorded one, unless the run's end event came before its meta.json said so. */
export function shownStatus(recorded: RunStatus, end: EndEvent | undefined): RunStatus {
  return recorded === "running" && end ? endedStatus({ end }) : recorded;
}
