/**
 * The latency a hedge's delay is read from (docs/routing.md#hedged-requests): a predictor's
 * recent first-attempt latencies, as the gateway measures them (send to answer head), in a
 * decaying histogram over routing/stats/latency-buckets.ts's buckets (5% apart). Pure: the time (`now`,
 * ms) is the caller's.
 *
 * - Every sample weighs 1 when it comes; all weights halve every HALF_LIFE_MS (applied in steps of
 *   DECAY_STEP_MS), so the estimate follows a model that gets slower within seconds; but never
 *   below MIN_WEIGHT in all, so that at a few requests a second a percentile still stands on a
 *   few hundred samples (the window is then as long as they take to come).
 * - A first attempt that lost to a hedge counts as long as it ran (`censored`): a lower bound. On
 *   winners only, the tail would shrink and the delay fall into the fast mass.
 * - Quantiles are read from the buckets, interpolated inside one (`quantileOf`), and cached by the
 *   caller (routing/hedge/delay.ts), never per request.
 */
import { LATENCY_BUCKET_COUNT, latencyBucket, quantileOf } from '../stats/latency-buckets.js';

/** Weights halve in this time (load/hedge-sim.ts chose it: a model twice as slow is followed within seconds). */
export const HALF_LIFE_MS = 2000;
/** The decay never takes the total weight below this: at a few requests a second the window stretches to hold enough samples for a p95. */
export const MIN_WEIGHT = 200;
/** The decay is applied in steps this long. */
const DECAY_STEP_MS = 250;

export class LatencyEstimate {
  /** Decayed weight per bucket. */
  private readonly weights: number[] = new Array<number>(LATENCY_BUCKET_COUNT).fill(0);
  /** Their sum. */
  private total = 0;
  /** Samples ever added (the warm-up is counted in them, not in decayed weight). */
  samples = 0;
  private decayedAt: number;

  constructor(
    now: number,
    private readonly halfLifeMs = HALF_LIFE_MS,
    private readonly minWeight = MIN_WEIGHT,
  ) {
    this.decayedAt = now;
  }

  /** A first attempt answered its head after `ms`, or (also) lost to a hedge after running `ms`. */
  add(ms: number, now: number): void {
    if (now - this.decayedAt >= DECAY_STEP_MS) this.decay(now);
    this.weights[latencyBucket(ms)]! += 1;
    this.total += 1;
    this.samples++;
  }

  /** The `q` quantile (0..1) in ms at `now`; null with nothing to read. */
  quantile(q: number, now: number): number | null {
    if (now - this.decayedAt >= DECAY_STEP_MS) this.decay(now);
    return quantileOf(this.weights, q);
  }

  private decay(now: number): void {
    const dt = now - this.decayedAt;
    this.decayedAt = now;
    if (this.total <= this.minWeight) return;
    const f = Math.max(2 ** (-dt / this.halfLifeMs), this.minWeight / this.total);
    const w = this.weights;
    let total = 0;
    for (let i = 0; i < w.length; i++) {
      const v = w[i]!;
      if (v === 0) continue;
      // Below this a bucket is noise: zero it, so quantileOf's sum stays what the buckets say.
      const d = v * f < 1e-6 ? 0 : v * f;
      w[i] = d;
      total += d;
    }
    this.total = total;
  }
}
