// Probe events for the tensor-parallel tests of the model, the budget and the server: one clock,
// and a finished call of a target in a process of some rank (its enter and exit).
import type { ProbeEvent, Readings } from "../../src/protocol/events";

export interface FinishedCall {
  pid: number;
  rank: number | null;
  target: string;
  /** The target's call number in the process (its scope id is `pid:target:call`). */
  call?: number;
  before: Readings;
  after: Readings;
  peak: Readings;
  durationNs?: number;
  raised?: string | null;
}

/** Events stamped by one clock that starts at `startTs` and steps `step` ns an event. */
export function eventClock(startTs: number, step: number) {
  let clock = startTs;
  const ev = (
    type: string,
    pid: number,
    rank: number | null,
    fields: Record<string, unknown>,
  ): ProbeEvent => {
    clock += step;
    return { v: 1, type, ts: clock, pid, rank, device: rank, ...fields } as unknown as ProbeEvent;
  };
  const finishedCall = (c: FinishedCall): ProbeEvent[] => {
    const n = c.call ?? 1;
    const common = {
      target: c.target,
      scope_id: `${c.pid}:${c.target}:${n}`,
      parent: null,
      call: n,
      depth: 0,
    };
    return [
      ev("enter", c.pid, c.rank, { ...common, before: c.before }),
      ev("exit", c.pid, c.rank, {
        ...common,
        before: c.before,
        after: c.after,
        peak: c.peak,
        duration_ns: c.durationNs ?? 1_000_000,
        raised: c.raised ?? null,
      }),
    ];
  };
  return { ev, finishedCall };
}
