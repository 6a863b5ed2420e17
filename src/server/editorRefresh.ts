// When to ask the editor to fetch lenses (or inlay hints) again. VS Code waits a moment after each
// refresh request before it fetches, and a new request restarts that wait: a live run that asked
// on every batch of events (samples arrive all the time, also while a debug session is paused)
// kept the editor waiting forever, and the lens went on saying "1 unfinished" long after the
// function had returned. VS Code also drops a pending fetch when the editor loses focus (a click
// in the Variables view), so a request can go unanswered.
//
// So: ask only when what the editor would show differs from what it last fetched; never ask
// again before it fetched, unless the request went unanswered for a while, then ask again,
// waiting twice as long each time (no editor may show the file at all).

/** How long a refresh may go unanswered before it is sent again. */
export const FETCH_WAIT_MS = 2000;
/** The longest wait between unanswered refreshes. */
export const FETCH_WAIT_MAX_MS = 30_000;

export class EditorRefresh {
  /** What the editor got at its last fetch (undefined: none yet). */
  private fetchedState: string | undefined;
  /** The last refresh request, while no fetch has followed it. */
  private unanswered: { at: number; waitMs: number } | undefined;

  constructor(
    private readonly sendRefresh: () => void,
    private readonly waitMs = FETCH_WAIT_MS,
    private readonly maxWaitMs = FETCH_WAIT_MAX_MS,
  ) {}

  /**
   * `shown` describes what the editor would get now. Asks for a refresh when that differs from
   * what it last fetched and no request is waiting for its fetch; `force` (another run, trust,
   * settings) does not wait. Returns after how many ms to offer again (undefined: no need).
   */
  offer(shown: string, now: number, force = false): number | undefined {
    if (shown === this.fetchedState) {
      this.unanswered = undefined;
      return undefined;
    }
    const last = this.unanswered;
    if (last && !force && now - last.at < last.waitMs) return last.at + last.waitMs - now;
    const waitMs = last && !force ? Math.min(last.waitMs * 2, this.maxWaitMs) : this.waitMs;
    this.unanswered = { at: now, waitMs };
    this.sendRefresh();
    return waitMs;
  }

  /** The editor fetched; `shown` describes the state it was answered from. */
  fetched(shown: string): void {
    this.fetchedState = shown;
    this.unanswered = undefined;
  }
}
