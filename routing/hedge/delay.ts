/**
 * When a request's next attempt goes (docs/routing.md#hedged-requests), and the state one
 * upstream keeps for it. Pure: the time (`now`, ms) is the caller's.
 *
 * - A percentile `after` is read from the upstream's latency estimate (routing/hedge/estimate.ts)
 *   once it holds WARMUP_SAMPLES first attempts; before that nothing is hedged (a delay read from
 *   a handful of samples would be anywhere). A fixed `after` needs no estimate.
 * - The percentile is at least 1 − budget/2 (p97.5 for a 5% budget): at the delay of a quantile q,
 *   1 − q of the requests want a hedge, and a budget they use up has no token left when slow
 *   requests come together (a pause, a burst of scheduling noise). Demand at half the budget
 *   keeps it for them; a larger budget allows an earlier percentile (load/hedge-sim.ts).
 * - The delay is at least `min` (a duration, and a multiple of the median: by default 1.5×, so
 *   that the delay stays clear of the scheduling jitter around a model's typical answer and the
 *   budget is left for the slow ones: load/hedge-sim.ts), at most `max`, and never under
 *   MIN_DELAY_MS.
 * - The delay is computed at most every REFRESH_MS and cached (`HedgeTrack.delayMs`): a request
 *   reads a number.
 */
import type { HedgePolicy } from './config.js';
import { BUDGET_WINDOW_MS, HedgeBudget } from './budget.js';
import { HALF_LIFE_MS, LatencyEstimate, MIN_WEIGHT } from './estimate.js';

/** First attempts measured before a percentile delay is used. */
export const WARMUP_SAMPLES = 50;
/** No delay is shorter (Finagle's floor): a hedge at once is a second request, not a hedge. */
export const MIN_DELAY_MS = 1;
/** How often the delay in force is computed again. */
export const REFRESH_MS = 100;

/** Why a hedge that was due did not go (the `result` of seldon_gateway_hedges_total beside `won` and `lost`). */
export type HedgeHeld = 'body' | 'no_endpoint' | 'flow' | 'budget';

/** The delay under `policy` at `now` (ms), or null while a percentile has too few samples to be read. */
export function hedgeDelayMs(policy: HedgePolicy, estimate: LatencyEstimate, now: number): number | null {
  const warm = estimate.samples >= WARMUP_SAMPLES;
  let delay: number;
  if (policy.quantile === null) delay = policy.afterMs;
  else {
    const q = warm ? estimate.quantile(Math.max(policy.quantile, 1 - policy.budget / 2), now) : null;
    if (q === null) return null;
    delay = q;
  }
  let floor = Math.max(MIN_DELAY_MS, policy.minMs);
  if (policy.minMedians > 0 && warm) {
    const median = estimate.quantile(0.5, now);
    if (median !== null) floor = Math.max(floor, median * policy.minMedians);
  }
  return Math.min(policy.maxMs, Math.max(floor, delay));
}

/**
 * What one upstream keeps for hedging: its first attempts' latency, its budget, and the delay in
 * force. Owned by the upstream's entry (gateway/upstream/registry.ts), so it goes with it.
 */
export class HedgeTrack {
  readonly estimate: LatencyEstimate;
  readonly budget: HedgeBudget;
  /** Told each delay computed (a metric); null while there is none yet. */
  onDelay: ((ms: number | null) => void) | undefined;
  private policy: HedgePolicy | undefined;
  private delay: number | null = null;
  private computedAt = -Infinity;

  /** The budget's window and the estimate's half-life and least weight: the defaults, unless a simulation compares others. */
  constructor(now: number, budgetWindowMs = BUDGET_WINDOW_MS, halfLifeMs = HALF_LIFE_MS, minWeight = MIN_WEIGHT) {
    this.estimate = new LatencyEstimate(now, halfLifeMs, minWeight);
    this.budget = new HedgeBudget(now, budgetWindowMs);
  }

  /** Its upstream left the table: the delay is told gone (its metric series goes), and no more. */
  retired(): void {
    const told = this.onDelay;
    this.onDelay = undefined;
    told?.(null);
  }

  /** The delay in force for `policy` at `now` (ms), or null: no hedge yet. */
  delayMs(policy: HedgePolicy, now: number): number | null {
    if (policy === this.policy && now - this.computedAt < REFRESH_MS) return this.delay;
    this.policy = policy;
    this.computedAt = now;
    this.delay = hedgeDelayMs(policy, this.estimate, now);
    this.onDelay?.(this.delay);
    return this.delay;
  }
}
