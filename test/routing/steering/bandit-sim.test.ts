/**
 * The bandit's acceptance figures on a small sweep of the seeded simulator (load/lib/bandit-sim.ts),
 * which runs the gateway's own share computation and store update; the full sweep is
 * `npx vite-node load/bandit-sim.ts --seeds 1000` (load/README.md#bandit-simulation-bandit-simts).
 * Deterministic: the same seeds give the same figures on every run.
 */
import { describe, expect, it } from 'vitest';
import { BASE, drift, fractionTo, recoveryOf, REPLICAS, regretOf, RECOVERED_SHARE, simulate, UNIFORM, type Scenario, type SimResult } from '../../../load/lib/bandit-sim.js';
import { quantile } from '../../../load/lib/report.js';

/**
 * `measure` of runs with seeds 1..n, yielding to the event loop between runs: a sweep is long
 * synchronous work, and vitest's worker must still answer its runner.
 */
async function sweep<T>(s: Scenario, n: number, measure: (r: SimResult) => T): Promise<T[]> {
  const out: T[] = [];
  for (let seed = 1; seed <= n; seed++) {
    out.push(measure(simulate(s, seed)));
    await new Promise((resolve) => setImmediate(resolve));
  }
  return out;
}
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const regret10k = (r: SimResult): number => regretOf(r, 0, 10_000);
const BEST = 2;
// Pure CPU work (about 40 s in all on a quiet core), longer than the suite's default on a busy host.
const SLOW = 180_000;

describe('bandit simulation: arms 0.30/0.35/0.45, 100 predictions/s, rewards after U(0, 5 s), refresh 1 s, floor 2%', () => {
  it(
    '10,000 predictions: regret ≤ 140 and the best arm ≥ 94% of the last 1,000 in 99 of 100 seeds',
    async () => {
      const runs = await sweep(BASE, 100, (r) => ({ regret: regret10k(r), best: fractionTo(r, BEST, 9_000, 10_000) }));
      const regret = runs.map((r) => r.regret);
      const best = runs.map((r) => r.best);
      expect(regret.filter((x) => x <= 140).length).toBeGreaterThanOrEqual(99);
      expect(best.filter((x) => x >= 0.94).length).toBeGreaterThanOrEqual(99);
      // Far from the uniform reference (below), so the learning is what passes.
      expect(quantile(regret, 0.5)).toBeLessThan(100);
    },
    SLOW,
  );

  it('uniform random, the reference: regret ≈ 10,000 × (0.15 + 0.10) / 3 ≈ 833', async () => {
    const regret = await sweep(UNIFORM, 50, regret10k);
    expect(mean(regret)).toBeGreaterThan(820);
    expect(mean(regret)).toBeLessThan(846);
  });

  it(
    '4 replicas × 4 workers on one store: regret within 10% of one process; stored counts equal the attributed feedback, replays refused',
    async () => {
      const n = 8;
      const runs = await sweep(REPLICAS, n, (r) => ({ regret: regret10k(r), stored: r.storedCounts, attributed: r.attributedCounts, made: r.made, duplicates: r.duplicates }));
      const one = await sweep(BASE, n, regret10k);
      expect(Math.abs(mean(runs.map((r) => r.regret)) / mean(one) - 1)).toBeLessThanOrEqual(0.1);
      for (const r of runs) {
        expect(r.stored).toEqual(r.attributed);
        expect(r.stored.reduce((a, b) => a + b, 0)).toBe(r.made);
        expect(r.duplicates).toBeGreaterThan(0);
      }
    },
    SLOW,
  );

  it(
    `the best arm changes after 30,000: the new best reaches ${RECOVERED_SHARE}% within 12,500 predictions (p95) with halfLife 2m; without decay it is slower`,
    async () => {
      const recovery = (r: SimResult): number => recoveryOf(r, 0, 30_000, RECOVERED_SHARE);
      const withDecay = await sweep(drift(120_000), 20, recovery);
      expect(quantile(withDecay, 0.95)).toBeLessThanOrEqual(12_500);
      const withoutDecay = await sweep(drift(null), 10, recovery);
      expect(quantile(withoutDecay, 0.5)).toBeGreaterThan(2 * quantile(withDecay, 0.5));
    },
    SLOW,
  );

  it('the same seed gives the same run', () => {
    const short: Scenario = { ...BASE, predictions: 2_000 };
    const a = simulate(short, 42);
    const b = simulate(short, 42);
    expect(a.picks).toEqual(b.picks);
    expect(a.history).toEqual(b.history);
    expect(simulate(short, 43).picks).not.toEqual(a.picks);
  });
});
