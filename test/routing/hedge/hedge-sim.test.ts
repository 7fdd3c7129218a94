/**
 * Hedging against the figures load/README.md#hedging-simulation-hedge-simts gives for the defaults, on the
 * seeded simulation of four replicas behind two workers at 150/s (load/lib/hedge-sim.ts; the
 * tables come from load/hedge-sim.ts). Deterministic: the same seeds every run.
 */
import { describe, expect, it } from 'vitest';
import { SHAPES, policyOf, simulateHedging, type HedgeResult, type HedgeScenario } from '../../../load/lib/hedge-sim.js';
import { quantile } from '../../../load/lib/report.js';

const SEEDS = 4;

function runs(s: HedgeScenario): HedgeResult[] {
  return Array.from({ length: SEEDS }, (_x, i) => simulateHedging(s, i + 1));
}
const worst = (rs: HedgeResult[], f: (r: HedgeResult) => number): number => Math.max(...rs.map(f));
const best = (rs: HedgeResult[], f: (r: HedgeResult) => number): number => Math.min(...rs.map(f));

describe('hedging, simulated: four replicas, two workers, 150/s', () => {
  it('a 2% tail at 50x: the defaults cut p99 to under three times the median and p99.9 to under five, for about 2% more attempts (without: 400 ms)', () => {
    const shape = SHAPES['2% at 50x']!;
    const hedged = runs({ shape, policy: policyOf({}) });
    expect(worst(hedged, (r) => quantile(r.latencies, 0.99))).toBeLessThanOrEqual(25);
    expect(worst(hedged, (r) => quantile(r.latencies, 0.999))).toBeLessThanOrEqual(45);
    expect(worst(hedged, (r) => r.arrivalsPerRequest)).toBeLessThanOrEqual(1.03);
    expect(worst(hedged, (r) => r.held.budget)).toBeLessThanOrEqual(2);
    const plain = runs({ shape, policy: null });
    expect(best(plain, (r) => quantile(r.latencies, 0.99))).toBeGreaterThan(400);
    expect(worst(plain, (r) => r.arrivalsPerRequest)).toBe(1);
  });

  it('without the lower bound at 1.5x the median, half the budget goes on requests that were not slow', () => {
    const shape = SHAPES['no tail']!;
    expect(best(runs({ shape, policy: policyOf({ minMedians: 0 }) }), (r) => r.hedges / r.requests)).toBeGreaterThan(0.02);
    expect(worst(runs({ shape, policy: policyOf({}) }), (r) => r.hedges / r.requests)).toBeLessThanOrEqual(0.005);
  });

  it('a replica that pauses 2 s every 30 s: no request waits longer than the delay and one answer (without: the whole pause)', () => {
    const shape = SHAPES['one pauses 2 s every 30 s']!;
    const hedged = runs({ shape, policy: policyOf({}) });
    expect(worst(hedged, (r) => r.latencies[r.latencies.length - 1]!)).toBeLessThanOrEqual(40);
    expect(worst(hedged, (r) => r.hedges / r.requests)).toBeLessThanOrEqual(0.01);
    const plain = runs({ shape, policy: null });
    expect(best(plain, (r) => r.latencies[r.latencies.length - 1]!)).toBeGreaterThan(1500);
  });

  it('no tail: next to nothing is hedged', () => {
    const hedged = runs({ shape: SHAPES['no tail']!, policy: policyOf({}) });
    expect(worst(hedged, (r) => r.hedges / r.requests)).toBeLessThanOrEqual(0.005);
  });

  it('a budget too small for the tail is what limits: extra attempts stay within it', () => {
    // A fixed delay under the 10% tail: a tenth of the requests want a hedge, 2% may have one.
    const hedged = runs({ shape: SHAPES['10% at 5x']!, policy: policyOf({ quantile: null, afterMs: 20, budget: 0.02 }) });
    expect(worst(hedged, (r) => r.hedges / r.requests)).toBeLessThanOrEqual(0.02);
    expect(best(hedged, (r) => r.held.budget / r.requests)).toBeGreaterThan(0.05);
    // A percentile asks for no more than half the budget can pay for: nothing is held.
    const p90 = runs({ shape: SHAPES['10% at 5x']!, policy: policyOf({ quantile: 0.9, budget: 0.02 }) });
    expect(worst(p90, (r) => r.hedges / r.requests)).toBeLessThanOrEqual(0.015);
  });
});
