/**
 * The budget of extra attempts of one upstream (docs/routing.md#hedged-requests), Finagle's
 * RetryBudget in tokens: every request deposits the policy's `budget` (0.05 for 5%), every hedge
 * and every retry on a hedged route takes one whole token, and neither goes without one. So
 * hedges and retries together stay within that share of the requests: when a model is
 * overloaded and its requests fail or slow down, extra attempts cannot multiply its load.
 *
 * The balance starts empty (a new or restarted gateway earns its first extra attempt with its
 * first 1/budget requests: the share holds from the start, exactly) and fades with a time
 * constant of `windowMs`, as Finagle's deposits expire after their TTL: what it holds is what the
 * last ten seconds or so of requests earned and did not spend. So a burst of tail events (a
 * replica's pause catches several requests at once) finds tokens in proportion to the traffic,
 * and a quiet spell cannot buy a storm later (load/hedge-sim.ts chose the window). Pure: the time
 * (`now`, ms) is the caller's.
 */

/** The balance fades by e in this time (ms). */
export const BUDGET_WINDOW_MS = 10_000;

export class HedgeBudget {
  /** Tokens as of `at`; one is spent per extra attempt. */
  private tokens = 0;
  private at: number;

  constructor(
    now: number,
    readonly windowMs = BUDGET_WINDOW_MS,
  ) {
    this.at = now;
  }

  /** Tokens at `now`. */
  balance(now: number): number {
    this.fade(now);
    return this.tokens;
  }

  /** A request came: `share` of a token (the policy's budget). */
  deposit(share: number, now: number): void {
    this.fade(now);
    this.tokens += share;
  }

  /** Take a token for one extra attempt; false (nothing taken) when there is none. */
  withdraw(now: number): boolean {
    this.fade(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private fade(now: number): void {
    const dt = now - this.at;
    if (dt <= 0) return;
    this.tokens *= Math.exp(-dt / this.windowMs);
    this.at = now;
  }
}
