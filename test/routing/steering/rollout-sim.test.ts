/**
 * The rollout's acceptance figures (docs/rollouts.md#simulated-figures) on a small, fixed sweep of
 * seeds: the seeded simulator drives `decide` once per one-second window, as the runtime does.
 * With a few dozen seeds a p99 is a maximum, so the detection figures are asserted at the 90th
 * percentile here; the full sweep (`npx vite-node load/rollout-sim.ts --seeds 200`, numbers in
 * load/README.md) holds them at the 99th.
 */
import { describe, expect, it } from 'vitest';
import { errorJump, goodCanary, goodCanaryLong, latencyRegression, lognormalBuckets, mirrorDisagreement, noCanaryTraffic, sharedOutage } from '../../../load/lib/rollout-sim.js';
import { quantile } from '../../../load/lib/report.js';
import { seededRandom } from '../../../routing/table/pick.js';
import { emptyLatencyCounts, quantileOf } from '../../../routing/stats/latency-buckets.js';

const withMisses = (caught: number[], missed: number) => [...caught, ...Array<number>(missed).fill(Infinity)];

describe('rollout simulation', () => {
  it('draws latencies as the lognormal it is given', () => {
    const draw = lognormalBuckets(20, 0.5);
    const r = seededRandom(1);
    const c = emptyLatencyCounts();
    for (let i = 0; i < 100_000; i++) c[draw(r)]!++;
    expect(quantileOf(c, 0.5)! / 20).toBeCloseTo(1, 1);
    expect(quantileOf(c, 0.99)! / (20 * Math.exp(0.5 * 2.326))).toBeCloseTo(1, 1);
  });

  it('a good canary is promoted, and fails almost no latency interval', () => {
    const g = goodCanary(1, 20);
    expect(g.promoted).toBe(20);
    expect(g.rolledBack).toBe(0);
    expect(g.intervalsFailed).toBeLessThanOrEqual(0.01 * g.intervalsJudged);
  });

  it('a good canary is not rolled back over 20,000 canary requests', () => {
    expect(goodCanaryLong(1, 5).rolledBack).toBe(0);
  });

  it.each([
    [0.05, 450],
    [0.1, 170],
    [0.5, 25],
  ])('canary errors jumping to %d are rolled back within %d canary requests (90th percentile of 40 seeds)', (rate, limit) => {
    const e = errorJump(1, 40, rate, 150);
    expect(e.missed).toBe(0);
    expect(quantile(e.caught, 0.9)).toBeLessThanOrEqual(limit);
  });

  it('latency ×1.5 is rolled back within 3 judged intervals in each of 40 runs', () => {
    const l = latencyRegression(1, 40);
    const all = withMisses(l.intervals, l.missed);
    expect(all.filter((n) => n <= 3).length).toBe(40);
  });

  it.each([10, 100])('agreement 95%% while mirroring %d%% fails within 250 comparisons, with no live request to the canary', (percent) => {
    const m = mirrorDisagreement(1, 40, 0.95, percent);
    expect(quantile(withMisses(m.comparisons, m.missed), 0.9)).toBeLessThanOrEqual(250);
    expect(m.liveRequests).toBe(0);
  });

  it('with no canary traffic the run never advances, and says what it waits for', () => {
    const n = noCanaryTraffic(1, 2);
    expect(n.advanced).toBe(0);
    expect(n.needs).toEqual(['needs 300 more canary requests (0 of 300 at step 1 of 6 (1%))', 'needs 50 more canary latency samples in this interval (0 of 50)']);
  });

  it.each([0, 400])('primary and canary both at 20%% errors from second %d: no rollback, a warning, no advance', (from) => {
    const s = sharedOutage(1, 8, 0.2, from);
    expect(s.rolledBack).toBe(0);
    expect(s.advancedDuring).toBe(0);
    expect(s.warned).toBe(8);
    expect(s.warning).toMatch(/^the primary itself is unhealthy: it fails \d+\.\d% of its requests/);
  });
});
