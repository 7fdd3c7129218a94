/**
 * Endpoint health against the figures docs/routing.md#endpoint-health promises, on the seeded
 * simulation of four replicas behind two workers (load/lib/health-sim.ts; the table in
 * load/README.md comes from load/health-sim.ts). Deterministic: the same seeds every run.
 */
import { describe, expect, it } from 'vitest';
import { SCENARIOS, simulate, type Scenario, type SimResult } from '../../../load/lib/health-sim.js';

const SEEDS = 20;

function runs(s: Scenario, eject = true): SimResult[] {
  return Array.from({ length: SEEDS }, (_x, i) => simulate({ ...s, eject }, i + 1));
}

const worst = (rs: SimResult[], f: (r: SimResult) => number): number => Math.max(...rs.map(f));

describe('endpoint health, simulated: four replicas, two workers', () => {
  it('one replica answering 500 at once, 150/s for 20 s: at most 1% fail, it gets at most 3% after 2 s (off: a third fails)', () => {
    const s = SCENARIOS['one answers 500 at once']!;
    const on = runs(s);
    expect(worst(on, (r) => r.failed / r.sent)).toBeLessThanOrEqual(0.01);
    expect(worst(on, (r) => r.shares[0]!)).toBeLessThanOrEqual(0.03);
    expect(worst(on, (r) => r.unpicked)).toBe(0);
    // Each worker ejects it within a handful of its own failures.
    for (const r of on) expect(r.failuresBeforeEjection[0]).toBeLessThanOrEqual(20);
    const off = runs(s, false);
    expect(Math.min(...off.map((r) => r.failed / r.sent))).toBeGreaterThan(0.25);
  });

  it('the same with two replicas: the sick one of two is out too (its one peer gives less evidence: a few more failures)', () => {
    const on = runs(SCENARIOS['one of two answers 500']!);
    expect(worst(on, (r) => r.failed / r.sent)).toBeLessThanOrEqual(0.015);
    expect(worst(on, (r) => r.shares[0]!)).toBeLessThanOrEqual(0.03);
  });

  it('30% bad input that every replica answers 500: nobody ejected, even shares, the other 70% all answered', () => {
    const on = Array.from({ length: 200 }, (_x, i) => simulate(SCENARIOS['30% bad input, all answer it 500']!, i + 1));
    expect(worst(on, (r) => r.ejections)).toBe(0);
    expect(worst(on, (r) => r.failed)).toBe(0);
    for (const r of on) for (const share of r.shares) expect(Math.abs(share - 0.25)).toBeLessThanOrEqual(0.04);
  });

  it('a replica that never answers, route timeout 1 s, 100/s: at most 2% fail', () => {
    const on = runs(SCENARIOS['one never answers (timeout 1 s)']!);
    expect(worst(on, (r) => r.failed / r.sent)).toBeLessThanOrEqual(0.02);
  });

  it('a replica 10x slower: at most 8% of the traffic, mean latency at most 1.5x an all-healthy run', () => {
    const healthy = runs(SCENARIOS.healthy!);
    const slow = runs(SCENARIOS['one 10x slower']!);
    expect(worst(slow, (r) => r.shares[0]!)).toBeLessThanOrEqual(0.08);
    const mean = (rs: SimResult[]): number => rs.reduce((a, r) => a + r.meanLatencyMs, 0) / rs.length;
    expect(mean(slow)).toBeLessThanOrEqual(1.5 * mean(healthy));
  });

  it('all four answering 500: at most half ejected at any time, every request still reaches a model (its own answer)', () => {
    const on = runs(SCENARIOS['all four answer 500']!);
    expect(worst(on, (r) => r.unpicked)).toBe(0);
    // No endpoint is worse than its peers: nothing to eject.
    expect(worst(on, (r) => r.ejections)).toBe(0);
  });

  it('a replica that heals is back to its share (slow start after the ejection), with at most 1% failed meanwhile', () => {
    const on = runs(SCENARIOS['one answers 500, heals at 10 s']!);
    expect(worst(on, (r) => r.failed / r.sent)).toBeLessThanOrEqual(0.01);
    // Shares from 50 s: its ejection (30 s at most from ~0 s, then 60 s if ejected again before healing) is over.
    for (const r of on) expect(r.shares[0]!).toBeGreaterThanOrEqual(0.2);
  });
});
