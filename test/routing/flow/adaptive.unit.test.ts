/**
 * The adaptive limit (routing/flow/limit.ts) with the queue and early refusal (routing/flow/core.ts)
 * against a seeded simulated model of fixed concurrency: it serves 4 requests at once and the rest
 * wait inside it, unseen (gunicorn's backlog). The clock is the simulation's; nothing sleeps.
 */
import { describe, expect, it } from 'vitest';
import { flowPolicy } from '../../../routing/flow/config.js';
import { between, medianOf, p99, simulateFlow, type Model } from '../../helpers/flow-sim.js';

interface Run {
  answered: { at: number; latency: number }[];
  refused: number;
  timedOut: number;
  limits: { at: number; limit: number }[];
}

/** Offer Poisson arrivals at `rate(t)`/s from 0 to `endMs` through an adaptive FlowCore (queue 4, queueTimeout 100ms) in front of the model. */
function simulate(seed: number, endMs: number, rate: (t: number) => number, onTick?: (t: number, model: Model) => void): { run: Run } {
  const policy = flowPolicy({ concurrency: 'adaptive', queue: 4, queueTimeoutMs: 100 });
  const sim = simulateFlow({ seed, endMs, policy, streams: [{ label: 'all', rate }], onTick });
  const out = sim.streams.all!;
  return { run: { answered: out.answered, refused: out.refusedAtOnce, timedOut: out.refusedAfter.length, limits: sim.limits } };
}

describe('the adaptive limit against a model of fixed concurrency 4 (50 ms, capacity 80/s)', () => {
  const unloaded = (slowdown: number): number => {
    const { run } = simulate(
      7,
      30_000,
      () => 8 / slowdown,
      (_t, m) => (m.slowdown = slowdown),
    );
    return p99(run.answered.map((a) => a.latency));
  };

  it('answers at least 85% of capacity at 2x overload, with p99 at most 4x the unloaded p99 (queue 4, queueTimeout 100ms)', () => {
    const base = unloaded(1);
    for (const seed of [1, 2, 3]) {
      const { run } = simulate(seed, 20_000, () => 160);
      const steady = between(run, 2000, 20_000);
      const rate = steady.length / 18;
      expect(rate, `seed ${seed}: ${rate.toFixed(1)}/s`).toBeGreaterThanOrEqual(0.85 * 80);
      expect(p99(steady.map((a) => a.latency)), `seed ${seed}: p99 vs unloaded ${base.toFixed(1)} ms`).toBeLessThanOrEqual(4 * base);
    }
  });

  it('refuses nothing at half capacity, from the first request on (probes included)', () => {
    for (let seed = 1; seed <= 12; seed++) {
      const { run } = simulate(seed, 30_000, () => 40);
      expect({ refused: run.refused, timedOut: run.timedOut }, `seed ${seed}`).toEqual({ refused: 0, timedOut: 0 });
      expect(run.answered.length / 30, `seed ${seed}`).toBeGreaterThan(36);
    }
  });

  it('brings the limit down within 5 s of the model slowing 3x, and keeps at least 80% of the new capacity', () => {
    const slowBase = unloaded(3);
    for (const seed of [4, 5, 6]) {
      const { run } = simulate(
        seed,
        30_000,
        () => 160,
        (t, m) => (m.slowdown = t >= 15_000 ? 3 : 1),
      );
      const before = run.limits.filter((l) => l.at >= 10_000 && l.at < 15_000);
      const typical = medianOf(before.map((l) => l.limit));
      const after = run.limits.filter((l) => l.at >= 15_000 && l.at < 20_000);
      if (process.env.FLOW_SIM_DEBUG)
        console.log(
          seed,
          typical,
          run.limits
            .filter((l) => l.at >= 14_000 && l.at < 22_000)
            .map((l) => l.limit)
            .join(' '),
          between(run, 15_000, 30_000).length / 15,
        );
      // Down within 5 s: below its usual level before (probes aside), and under the model's concurrency plus what fills its queue.
      expect(Math.min(...after.map((l) => l.limit)), `seed ${seed}`).toBeLessThan(typical);
      expect(typical).toBeGreaterThanOrEqual(4);
      const slowCapacity = 80 / 3;
      const rate = between(run, 15_000, 30_000).length / 15;
      expect(rate, `seed ${seed}: ${rate.toFixed(1)}/s of ${slowCapacity.toFixed(1)}/s`).toBeGreaterThanOrEqual(0.8 * slowCapacity);
      const settled = between(run, 20_000, 30_000).map((a) => a.latency);
      expect(p99(settled), `seed ${seed}: p99 vs slow unloaded ${slowBase.toFixed(1)} ms`).toBeLessThanOrEqual(4 * slowBase);
    }
  });
});
