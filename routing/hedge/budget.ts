/**
 * The budget of extra attempts of one upstream (docs/routing.md#hedged-requests), Finagle's
 * RetryBudget in tokens: every request deposits the policy's `budget` (0.05 for 5%), every hedge
 * and every retry on a hedged route takes one whole token, and neither goes without one. So
 * hedges and retries together stay within that share of the requests: when a model is
 * overloaded and its requests fail or slow down, extra attempts cannot multiply its load.
 *
 * Deposits and withdrawals count for `windowMs` (kept in SLOTS slices of it), as Finagle's do for
 * their TTL: over any such window the extra attempts are at most the share of that window's
 * requests. The balance starts empty (a new or restarted gateway earns its first extra attempt
 * with its first 1/budget requests: the share holds from the start, exactly). What it holds is
 * what the last ten seconds of requests earned and did not spend: a burst of tail events (a
 * replica's pause catches several requests at once) finds tokens in proportion to the traffic,
 * and a quiet spell cannot buy a storm later (load/hedge-sim.ts chose the window). Pure: the time
 * (`now`, ms) is the caller's.
 */

/** What a deposit or a withdrawal counts for (ms). */
export const BUDGET_WINDOW_MS = 10_000;
/** The window's slices. */
const SLOTS = 10;

export class HedgeBudget {
  /** Net tokens per slice (deposits less withdrawals), a ring; `slot` is the one `at` falls in. */
  private readonly net = new Float64Array(SLOTS);
  private slot = 0;
  private at: number;
  private readonly sliceMs: number;

  constructor(
    now: number,
    readonly windowMs = BUDGET_WINDOW_MS,
  ) {
    this.sliceMs = windowMs / SLOTS;
    this.at = Math.floor(now / this.sliceMs);
  }

  /** Tokens at `now`. */
  balance(now: number): number {
    this.advance(now);
    let sum = 0;
    for (let i = 0; i < SLOTS; i++) sum += this.net[i]!;
    return sum > 0 ? sum : 0;
  }

  /** A request came: `share` of a token (the policy's budget). */
  deposit(share: number, now: number): void {
    this.advance(now);
    this.net[this.slot]! += share;
  }

  /** Take a token for one extra attempt; false (nothing taken) when there is none. */
  withdraw(now: number): boolean {
    // A whole token, less what sums of fractions lose in binary (twenty 0.05s are 0.9999…).
    if (this.balance(now) < 1 - 1e-9) return false;
    this.net[this.slot]! -= 1;
    return true;
  }

  /** Slices older than the window are forgotten. */
  private advance(now: number): void {
    const t = Math.floor(now / this.sliceMs);
    let steps = t - this.at;
    if (steps <= 0) return;
    this.at = t;
    if (steps > SLOTS) steps = SLOTS;
    for (let i = 0; i < steps; i++) {
      this.slot = (this.slot + 1) % SLOTS;
      this.net[this.slot] = 0;
    }
  }
}
