/**
 * Hedging's pure parts on an injected clock and seeded randomness: the latency estimate
 * (routing/hedge/estimate.ts), the budget (routing/hedge/budget.ts), the delay in force
 * (routing/hedge/delay.ts), and what a hedge's loser tells endpoint health (routing/health/endpoints.ts).
 */
import { describe, expect, it } from 'vitest';
import { HedgeBudget } from '../../../routing/hedge/budget.js';
import { hedgePolicy } from '../../../routing/hedge/config.js';
import { HedgeTrack, MIN_DELAY_MS, REFRESH_MS, WARMUP_SAMPLES, hedgeDelayMs } from '../../../routing/hedge/delay.js';
import { LatencyEstimate } from '../../../routing/hedge/estimate.js';
import { DEFAULT_OUTLIER_POLICY, EndpointHealth, judge, pickEndpoint } from '../../../routing/health/endpoints.js';
import { seededRandom } from '../../../routing/table/pick.js';

/** `n` samples drawn from `ms()`, one each `everyMs` from `from`, into `e`; the time after the last. */
function feed(e: LatencyEstimate, n: number, ms: () => number, from = 0, everyMs = 10): number {
  let t = from;
  for (let i = 0; i < n; i++, t += everyMs) e.add(ms(), t);
  return t;
}

describe('the latency estimate', () => {
  it('reads percentiles within a bucket (5%) of the samples’', () => {
    const random = seededRandom(7);
    const e = new LatencyEstimate(0);
    // 98% around 8 ms, 2% at 400 ms.
    const t = feed(e, 2000, () => (random() < 0.02 ? 400 : 8 + 2 * random()));
    expect(e.quantile(0.5, t)).toBeGreaterThan(8.5);
    expect(e.quantile(0.5, t)).toBeLessThan(9.5 * 1.05);
    expect(e.quantile(0.95, t)).toBeLessThan(10 * 1.05);
    expect(e.quantile(0.99, t)).toBeGreaterThan(380);
  });

  it('follows a model that gets slower within a few seconds', () => {
    const e = new LatencyEstimate(0);
    let t = feed(e, 1000, () => 10);
    expect(e.quantile(0.5, t)).toBeLessThan(10.5);
    // Twice as slow from now, at 100 answers a second: the median is there within 3 s.
    t = feed(e, 300, () => 20, t);
    expect(e.quantile(0.5, t)).toBeGreaterThan(19);
  });

  it('keeps at least its floor of weight: at a request a second a percentile stands on the last few hundred samples, not the last few', () => {
    const e = new LatencyEstimate(0);
    let t = feed(e, 300, () => 10, 0, 1000);
    // 20 s later (ten half-lives) the 10 ms samples still make the median: the half-life alone would have left 20 samples of 30 ms.
    t = feed(e, 20, () => 30, t, 1000);
    expect(e.quantile(0.5, t)).toBeLessThan(10.5);
    // A thousand samples later they are gone.
    t = feed(e, 1000, () => 30, t, 1000);
    expect(e.quantile(0.05, t)).toBeGreaterThan(28);
    expect(e.samples).toBe(1320);
  });

  it('is empty until the first sample', () => {
    expect(new LatencyEstimate(0).quantile(0.95, 1000)).toBeNull();
  });
});

describe('the budget', () => {
  it('starts empty, earns a token per 1/budget requests, spends one per extra attempt', () => {
    const b = new HedgeBudget(0);
    expect(b.withdraw(0)).toBe(false);
    for (let i = 0; i < 19; i++) b.deposit(0.05, 0);
    expect(b.withdraw(0)).toBe(false);
    b.deposit(0.05, 0);
    expect(b.withdraw(0)).toBe(true);
    expect(b.withdraw(0)).toBe(false);
  });

  it('with every request wanting an extra attempt, extra attempts are the budget’s share of requests, never more', () => {
    const b = new HedgeBudget(0);
    let extra = 0;
    for (let i = 0; i < 10_000; i++) {
      b.deposit(0.1, i * 10);
      if (b.withdraw(i * 10)) extra++;
    }
    expect(extra).toBe(1000);
  });

  it('holds what the last window earned and did not spend: a quiet hour buys nothing', () => {
    const b = new HedgeBudget(0, 10_000);
    for (let i = 0; i < 1000; i++) b.deposit(0.05, i * 10); // 100/s for 10 s: 50 tokens earned
    expect(b.balance(9_999)).toBeCloseTo(50, 6);
    // The first second's deposits leave the window as the eleventh begins.
    expect(b.balance(10_500)).toBeCloseTo(45, 6);
    expect(b.balance(3_600_000)).toBe(0);
    // Over any window, at most its share: a burst spends what was saved, then only what comes.
    let extra = 0;
    for (let i = 0; i < 1000; i++) {
      b.deposit(0.05, 3_600_000 + i * 10);
      if (b.withdraw(3_600_000 + i * 10)) extra++;
    }
    expect(extra).toBe(50);
  });
});

describe('the delay in force', () => {
  const estimate = (n: number, ms: () => number): { e: LatencyEstimate; t: number } => {
    const e = new LatencyEstimate(0);
    return { e, t: feed(e, n, ms) };
  };

  it('no delay from a percentile before the warm-up; a fixed delay at once', () => {
    const { e, t } = estimate(WARMUP_SAMPLES - 1, () => 8);
    expect(hedgeDelayMs(hedgePolicy({}), e, t)).toBeNull();
    expect(hedgeDelayMs(hedgePolicy({ quantile: null, afterMs: 20 }), e, t)).toBe(20);
    e.add(8, t);
    expect(hedgeDelayMs(hedgePolicy({}), e, t)).not.toBeNull();
  });

  it('a percentile, at least the one half the budget pays for and 1.5x the median by default, within min and max', () => {
    const random = seededRandom(3);
    // A wide fast mass: p95 (about 95 ms) is above 1.5x the median (about 80 ms); with a 5% budget
    // the delay is p97.5 (a delay at p95 would spend the whole budget), with 10% p95.
    const wide = estimate(2000, () => 10 + 90 * random());
    expect(hedgeDelayMs(hedgePolicy({}), wide.e, wide.t)).toBeCloseTo(wide.e.quantile(0.975, wide.t)!, 6);
    expect(hedgeDelayMs(hedgePolicy({ budget: 0.1 }), wide.e, wide.t)).toBeCloseTo(wide.e.quantile(0.95, wide.t)!, 6);
    expect(hedgeDelayMs(hedgePolicy({ quantile: 0.99, budget: 0.1 }), wide.e, wide.t)).toBeCloseTo(wide.e.quantile(0.99, wide.t)!, 6);
    // A narrow one: 1.5x the median (about 12.6 ms) is above p95 (under 10 ms).
    const narrow = estimate(2000, () => 8 + 2 * random());
    const median = narrow.e.quantile(0.5, narrow.t)!;
    expect(hedgeDelayMs(hedgePolicy({}), narrow.e, narrow.t)).toBeCloseTo(1.5 * median, 6);
    expect(hedgeDelayMs(hedgePolicy({ minMedians: 0 }), narrow.e, narrow.t)).toBeCloseTo(narrow.e.quantile(0.975, narrow.t)!, 6);
    expect(hedgeDelayMs(hedgePolicy({ minMedians: 0, minMs: 30 }), narrow.e, narrow.t)).toBe(30);
    expect(hedgeDelayMs(hedgePolicy({ maxMs: 5 }), narrow.e, narrow.t)).toBe(5);
    // Never under a millisecond.
    const instant = estimate(200, () => 0.05);
    expect(hedgeDelayMs(hedgePolicy({ minMedians: 0 }), instant.e, instant.t)).toBe(MIN_DELAY_MS);
  });

  it('an upstream computes it at most every REFRESH_MS, and says each one it computed', () => {
    const track = new HedgeTrack(0);
    const told: (number | null)[] = [];
    track.onDelay = (ms) => told.push(ms);
    const policy = hedgePolicy({ quantile: null, afterMs: 20 });
    expect(track.delayMs(policy, 0)).toBe(20);
    expect(track.delayMs(policy, REFRESH_MS - 1)).toBe(20);
    expect(told).toEqual([20]);
    expect(track.delayMs(hedgePolicy({ quantile: null, afterMs: 30 }), REFRESH_MS - 1)).toBe(30);
    expect(told).toEqual([20, 30]);
  });
});

describe("a hedge's loser, as endpoint health reads it", () => {
  it('raises the latency estimate to the time it ran, keeps it out of the pick as long again (doubling in a row), and is neither a success nor a failure', () => {
    const policy = DEFAULT_OUTLIER_POLICY;
    const a = { health: new EndpointHealth('a:1', 0, false), outstanding: 0 };
    const b = { health: new EndpointHealth('b:1', 0, false), outstanding: 0 };
    for (let t = 0; t < 100; t += 10) {
      judge(a.health, [a, b], 'success', 8, t, policy);
      judge(b.health, [a, b], 'success', 8, t, policy);
    }
    // Lost after 25 ms: a lower bound above its estimate, which rises to it.
    expect(judge(a.health, [a, b], 'lost', 25, 100, policy)).toBeUndefined();
    expect(a.health.latency(100)).toBeCloseTo(25, 6);
    // Lost after 3 ms: below its estimate, which says nothing new.
    judge(b.health, [a, b], 'lost', 3, 100, policy);
    expect(b.health.latency(100)).toBeCloseTo(8, 0);
    // Not counted in its outcomes: no window entry, no failure in a row.
    expect(a.health.counts(100, policy)).toEqual({ errors: 0, total: 10 });
    expect(a.health.localFailuresInARow).toBe(0);
    // The next pick, between the two, avoids it, even when its peer is the busier: it sits out as long as it ran (25 ms)…
    const random = seededRandom(1);
    b.outstanding = 3;
    for (let i = 0; i < 20; i++) expect(pickEndpoint([a, b], undefined, 124, policy, random)).toBe(b);
    expect(a.health.isStalled(124)).toBe(true);
    expect(a.health.isStalled(125)).toBe(false);
    // …twice as long after a second loss in a row…
    judge(a.health, [a, b], 'lost', 25, 200, policy);
    expect(a.health.isStalled(249)).toBe(true);
    expect(a.health.isStalled(250)).toBe(false);
    // …and is back once it answers.
    judge(a.health, [a, b], 'lost', 25, 300, policy);
    judge(a.health, [a, b], 'success', 9, 301, policy);
    expect(a.health.isStalled(302)).toBe(false);
  });
});
