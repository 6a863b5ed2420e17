// Custom DAP events between the adapter and the extension (one place, as LSP methods are typed).
import type { ProbeEvent } from "../protocol/events";

/** Body: one probe event, as the adapter received it (host paths mapped to local ones). */
export const PROBE_EVENT = "memlens/event";
export type ProbeEventBody = ProbeEvent;

/** Body: the run's id and folder, sent once the run has started. */
export const RUN_EVENT = "memlens/run";
export interface RunEventBody {
  id: string;
  dir: string;
}
