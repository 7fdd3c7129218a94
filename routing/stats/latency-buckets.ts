/**
 * Latency buckets shared by the rollout's counting side and its judge (docs/rollouts.md#latency):
 * log-spaced, each bound 5% above the previous one, from 0.1 ms to just over 60 s. A count array
 * has one slot per bound plus an overflow slot. Bucket `i` holds latencies in
 * (`LATENCY_BOUNDS_MS[i-1]`, `LATENCY_BOUNDS_MS[i]`] (bucket 0 everything up to 0.1 ms); the last
 * index holds everything over the last bound.
 *
 * Why 5%: the latency test compares the two samples' ranks after scaling the primary's by the
 * allowed margin (10% by default). Same-bucket samples count as ties, so a bucket must be well
 * under the margin for ties not to eat the test's power; at 5% a 10% margin is two buckets, and a
 * count array is 275 numbers (one per backend per second on the counting side).
 */
import { sumOf } from './inference.js';

/** Ratio between consecutive bounds. */
export const LATENCY_BUCKET_RATIO = 1.05;
/** The first bound: everything at or under it shares bucket 0. */
export const LATENCY_MIN_MS = 0.1;
const LOG_RATIO = Math.log(LATENCY_BUCKET_RATIO);
const BOUND_COUNT = Math.ceil(Math.log(60_000 / LATENCY_MIN_MS) / LOG_RATIO) + 1;

/** Upper bounds of the buckets, in ms, increasing; the overflow bucket has none. */
export const LATENCY_BOUNDS_MS: readonly number[] = Object.freeze(Array.from({ length: BOUND_COUNT }, (_, i) => LATENCY_MIN_MS * LATENCY_BUCKET_RATIO ** i));

/** Length of a count array: one slot per bound, plus overflow. */
export const LATENCY_BUCKET_COUNT = BOUND_COUNT + 1;
/** Index of the overflow bucket. */
export const LATENCY_OVERFLOW = BOUND_COUNT;

/**
 * The bucket of a latency in ms, in O(1): the logarithm gives the index, and one comparison on
 * each side corrects its rounding at a bound. Negative, zero and NaN land in bucket 0.
 */
export function latencyBucket(ms: number): number {
  if (!(ms > LATENCY_MIN_MS)) return 0;
  let i = Math.ceil(Math.log(ms / LATENCY_MIN_MS) / LOG_RATIO);
  if (i >= BOUND_COUNT) return ms > LATENCY_BOUNDS_MS[BOUND_COUNT - 1]! ? LATENCY_OVERFLOW : BOUND_COUNT - 1;
  if (ms <= LATENCY_BOUNDS_MS[i - 1]!) i--;
  else if (ms > LATENCY_BOUNDS_MS[i]!) i++;
  return i;
}

/** A fresh count array. */
export function emptyLatencyCounts(): number[] {
  return new Array<number>(LATENCY_BUCKET_COUNT).fill(0);
}

/**
 * The `q` quantile (0..1) of a count array, in ms, or null when it is empty: the rank's bucket,
 * interpolated geometrically inside it (bucket 0 and the overflow bucket give their one bound).
 */
export function quantileOf(counts: readonly number[], q: number): number | null {
  const total = sumOf(counts);
  if (total <= 0) return null;
  const rank = Math.min(Math.max(q, 0), 1) * total;
  let below = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c > 0 && below + c >= rank) {
      if (i === 0) return LATENCY_MIN_MS;
      if (i >= BOUND_COUNT) return LATENCY_BOUNDS_MS[BOUND_COUNT - 1]!;
      const within = (rank - below) / c;
      return LATENCY_BOUNDS_MS[i - 1]! * LATENCY_BUCKET_RATIO ** within;
    }
    below += c;
  }
  return LATENCY_BOUNDS_MS[BOUND_COUNT - 1]!;
}

/** How many buckets up a latency moves when multiplied by `factor` (fractional). */
export function bucketShiftOf(factor: number): number {
  return Math.log(factor) / LOG_RATIO;
}
