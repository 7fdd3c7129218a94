/**
 * Priority classes and tenants under a steady overload, through flow control's decisions
 * (routing/flow/core.ts) in front of a seeded simulated model of concurrency 4 and 50 ms (capacity
 * 80/s), with `concurrency: 4, queue: 100, queueTimeout: 1s`: who is served, how long they wait,
 * and whether a refusal comes at once or only after waiting.
 */
import { describe, expect, it } from 'vitest';
import { flowPolicy } from '../../../routing/flow/config.js';
import { between, p99, simulateFlow, type SimStream, type StreamOutcome } from '../../helpers/flow-sim.js';

const CAPACITY = 80;
const fixed = (extra: { tenantHeader?: string } = {}) => flowPolicy({ concurrency: 4, queue: 100, queueTimeoutMs: 1000, ...extra });
const steady = (out: StreamOutcome, endMs: number) => between(out, 5000, endMs);
/** Refusals after waiting, of all refusals. */
const lateShare = (out: StreamOutcome) => out.refusedAfter.length / Math.max(1, out.refusedAtOnce + out.refusedAfter.length);
const constant = (perS: number) => () => perS;

describe('priority classes at 2x overload (20% critical, 50% standard, 30% sheddable)', () => {
  const classes: SimStream[] = [
    { label: 'critical', rate: constant(0.2 * 2 * CAPACITY), priority: 0 },
    { label: 'standard', rate: constant(0.5 * 2 * CAPACITY), priority: 1 },
    { label: 'sheddable', rate: constant(0.3 * 2 * CAPACITY), priority: 2 },
  ];
  const END = 60_000;

  it('refuses no critical request, keeps its p99 within 2x of critical alone, and keeps the model busy', () => {
    const alone = simulateFlow({ seed: 11, endMs: 30_000, policy: fixed(), streams: [{ label: 'critical', rate: constant(CAPACITY / 4), priority: 0 }] });
    const base = p99(alone.streams.critical!.answered.map((a) => a.latency));
    for (const seed of [1, 2, 3]) {
      const { streams } = simulateFlow({ seed, endMs: END, policy: fixed(), streams: classes });
      const critical = streams.critical!;
      expect(critical.refusedAtOnce + critical.refusedAfter.length, `seed ${seed}`).toBe(0);
      expect(p99(critical.answered.map((a) => a.latency)), `seed ${seed}: vs ${base.toFixed(1)} ms alone`).toBeLessThanOrEqual(2 * base);
      const served = Object.values(streams).reduce((n, s) => n + steady(s, END).length, 0) / ((END - 5000) / 1000);
      expect(served, `seed ${seed}`).toBeGreaterThanOrEqual(0.95 * CAPACITY);
    }
  });

  it('refuses standard and sheddable requests at once, not after they waited, when critical ones keep arriving', () => {
    for (const seed of [1, 2, 3]) {
      const { streams } = simulateFlow({ seed, endMs: END, policy: fixed(), streams: classes });
      for (const label of ['standard', 'sheddable']) {
        const out = streams[label]!;
        if (process.env.FLOW_SIM_DEBUG) console.log(seed, label, out.refusedAtOnce, out.refusedAfter.length, steady(out, END).length / 55);
        expect(lateShare(out), `seed ${seed} ${label}: ${out.refusedAfter.length} of ${out.refusedAtOnce + out.refusedAfter.length} refused after waiting`).toBeLessThanOrEqual(0.03);
      }
      // Sheddable gets what the two others leave (nearly nothing); standard the rest of the model.
      expect(steady(streams.standard!, END).length / 55, `seed ${seed}`).toBeGreaterThanOrEqual(0.9 * (CAPACITY - 0.2 * 2 * CAPACITY));
    }
  });
});

describe('tenants of one class: A at 3x capacity, B at a quarter (tenant: header:x-tenant)', () => {
  it('gives B at least 95% of what it asks for, and refuses A at once', () => {
    const END = 60_000;
    for (const seed of [1, 2, 3]) {
      const { streams } = simulateFlow({
        seed,
        endMs: END,
        policy: fixed({ tenantHeader: 'x-tenant' }),
        streams: [
          { label: 'A', rate: constant(3 * CAPACITY), tenant: 'A' },
          { label: 'B', rate: constant(CAPACITY / 4), tenant: 'B' },
        ],
      });
      const a = streams.A!;
      const b = streams.B!;
      if (process.env.FLOW_SIM_DEBUG) console.log(seed, b.answered.length / b.arrived, a.refusedAtOnce, a.refusedAfter.length, b.refusedAtOnce, b.refusedAfter.length);
      expect(b.answered.length / b.arrived, `seed ${seed}`).toBeGreaterThanOrEqual(0.95);
      expect(lateShare(a), `seed ${seed}: ${a.refusedAfter.length} of A's refusals after waiting`).toBeLessThanOrEqual(0.03);
    }
  });
});
