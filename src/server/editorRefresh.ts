// When to ask the editor to fetch lenses (or inlay hints) again. VS Code waits a moment after each
// refresh request before it fetches, and a new request restarts that wait: a live run that asked
// on every batch of events (samples arrive all the time, also while a debug session is paused)
// kept the editor waiting forever, and the lens went on saying "1 unfinished" long after the
// function had returned. So a refresh is asked for only when what the editor would show changed,
// and not again until the editor has fetched (or FETCH_WAIT_MS passed without a fetch, as when
// no editor shows a Python file).

/** How long a refresh may go unanswered before another one is sent anyway. */
export const FETCH_WAIT_MS = 2000;

export class EditorRefresh {
  /** What the editor was last asked to show, or fetched (undefined: neither yet). */
  private askedFor: string | undefined;
  /** When the last refresh request went out, while the editor has not fetched since. */
  private unansweredSince: number | undefined;

  constructor(
    private readonly sendRefresh: () => void,
    private readonly waitMs = FETCH_WAIT_MS,
  ) {}

  /**
   * `shown` describes what the editor would get now. Sends a refresh when it differs from what
   * was last asked for; `force` (a different run, trust, settings) skips waiting for the fetch.
   * Returns after how many ms to offer again, when the refresh was held back.
   */
  offer(shown: string, now: number, force = false): number | undefined {
    if (shown === this.askedFor) {
      return undefined;
    }
    if (!force && this.unansweredSince !== undefined && now - this.unansweredSince < this.waitMs) {
      return this.unansweredSince + this.waitMs - now;
    }
    this.askedFor = shown;
    this.unansweredSince = now;
    this.sendRefresh();
    return undefined;
  }

  /**
   * The editor fetched: what it got is `shown` now (the caller describes the state it answers
   * from), so a change held back for this fetch went out with it.
   */
  fetched(shown: string): void {
    this.askedFor = shown;
    this.unansweredSince = undefined;
  }
}
