/**
 * Endpoint health's pure parts (routing/health/endpoints.ts) on a clock the test sets: what ejects an
 * endpoint and what does not, how long it stays out, how many may be out, and the pick.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_OUTLIER_POLICY as P, EndpointHealth, binomialTail, judge, pickEndpoint, type HealthTracked } from '../../../routing/health/endpoints.js';
import { seededRandom } from '../../../routing/table/pick.js';
import type { OutcomeKind } from '../../../routing/types.js';

class Ep implements HealthTracked {
  outstanding = 0;
  readonly health: EndpointHealth;
  constructor(name: string, now = 0, slowStart = false) {
    this.health = new EndpointHealth(name, now, slowStart);
  }
}

const group = (n: number): Ep[] => Array.from({ length: n }, (_x, i) => new Ep(`10.0.0.${i + 1}:9000`));

/** Tell `e` an outcome at `now`; the ejection it caused. */
const tell = (e: Ep, g: Ep[], kind: OutcomeKind, now: number, ms = 20) => judge(e.health, g, kind, ms, now, P);

describe('ejection', () => {
  it('five failures without an answer in a row eject; an answer in between starts the count again', () => {
    const g = group(4);
    const [a] = g;
    let t = 0;
    for (let i = 0; i < 4; i++) expect(tell(a!, g, 'local', (t += 10))).toBeUndefined();
    expect(tell(a!, g, 'success', (t += 10))).toBeUndefined();
    for (let i = 0; i < 4; i++) expect(tell(a!, g, 'local', (t += 10))).toBeUndefined();
    const e = tell(a!, g, 'local', (t += 10));
    expect(e).toMatchObject({ reason: 'local_origin', until: t + 30_000 });
    expect(a!.health.isEjected(t + 29_999)).toBe(true);
    expect(a!.health.isEjected(t + 30_000)).toBe(false);
  });

  it('server errors on one endpoint while its peers answer: ejected within a handful, with the rates', () => {
    const g = group(4);
    let t = 0;
    let ejection;
    let errors = 0;
    for (let round = 0; round < 20 && ejection === undefined; round++) {
      for (const p of g.slice(1)) tell(p, g, 'success', (t += 5));
      errors++;
      ejection = tell(g[0]!, g, 'error', (t += 5), 1);
    }
    expect(ejection).toMatchObject({ reason: 'error_rate', rate: 1, peerRate: 0 });
    expect(errors).toBeLessThanOrEqual(8);
  });

  it("server errors on every endpoint alike (a client's bad input): nobody ejected, however many", () => {
    const g = group(4);
    const r = seededRandom(7);
    let t = 0;
    for (let i = 0; i < 20_000; i++) {
      const e = g[i % 4]!;
      expect(tell(e, g, r() < 0.3 ? 'error' : 'success', (t += 2))).toBeUndefined();
    }
    // Every request failing, everywhere: still nobody.
    for (let i = 0; i < 2_000; i++) expect(tell(g[i % 4]!, g, 'error', (t += 2))).toBeUndefined();
  });

  it('one answering 500 to everything beside peers failing 30% (bad input too): still the one ejected', () => {
    const g = group(3);
    const r = seededRandom(3);
    let t = 0;
    let ejection;
    for (let i = 0; i < 300 && ejection === undefined; i++) {
      const e = g[i % 3]!;
      const kind: OutcomeKind = e === g[0] || r() < 0.3 ? 'error' : 'success';
      const j = tell(e, g, kind, (t += 5));
      if (j !== undefined) {
        expect(e).toBe(g[0]);
        ejection = j;
      }
    }
    expect(ejection?.reason).toBe('error_rate');
  });

  it('each ejection lasts 30 s more than the one before, at most 300 s; a long quiet spell forgives', () => {
    const g = group(2);
    const a = g[0]!;
    let t = 0;
    const lengths: number[] = [];
    for (let k = 0; k < 12; k++) {
      for (let i = 0; i < 5; i++) tell(a, g, 'local', (t += 1));
      expect(a.health.isEjected(t)).toBe(true);
      lengths.push(a.health.ejectedUntil - t);
      t = a.health.ejectedUntil;
    }
    expect(lengths.slice(0, 4)).toEqual([30_000, 60_000, 90_000, 120_000]);
    expect(Math.max(...lengths)).toBe(300_000);
    // An hour without an ejection: back to the base.
    t += 3_600_000;
    for (let i = 0; i < 5; i++) tell(a, g, 'local', (t += 1));
    expect(a.health.ejectedUntil - t).toBe(30_000);
  });

  it('at most half of the endpoints (rounded down) are out at once; one endpoint of one never', () => {
    let t = 0;
    const eject = (e: Ep, g: Ep[]): boolean => {
      let j;
      for (let i = 0; i < 5; i++) j = tell(e, g, 'local', (t += 1));
      return j !== undefined;
    };
    const four = group(4);
    expect(four.map((e) => eject(e, four))).toEqual([true, true, false, false]);
    const three = group(3);
    expect(three.map((e) => eject(e, three))).toEqual([true, false, false]);
    const one = group(1);
    expect(eject(one[0]!, one)).toBe(false);
  });

  it('an ejected endpoint comes back on probation: an empty window, slow start', () => {
    const g = group(2);
    const a = g[0]!;
    let t = 0;
    for (let i = 0; i < 5; i++) tell(a, g, 'local', (t += 1));
    const back = a.health.ejectedUntil;
    expect(a.health.weight(back, P)).toBeCloseTo(0.1);
    expect(a.health.weight(back + P.slowStartMs / 2, P)).toBeCloseTo(0.5);
    expect(a.health.weight(back + P.slowStartMs, P)).toBe(1);
    expect(a.health.counts(back, P)).toEqual({ errors: 0, total: 0 });
  });
});

describe('the pick', () => {
  const share = (g: Ep[], target: Ep, now: number, n = 10_000, avoid?: Ep[]): number => {
    const r = seededRandom(11);
    let hits = 0;
    for (let i = 0; i < n; i++)
      if (
        pickEndpoint(
          g,
          avoid?.map((e) => e.health),
          now,
          P,
          r,
        ) === target
      )
        hits++;
    return hits / n;
  };

  it('never an ejected endpoint; nor one that failed this request while another is left', () => {
    const g = group(3);
    let t = 0;
    for (let i = 0; i < 5; i++) tell(g[0]!, g, 'local', (t += 1));
    expect(share(g, g[0]!, t)).toBe(0);
    expect(share(g, g[1]!, t, 1000, [g[2]!])).toBe(1);
    // Every one left failed this request: any endpoint not ejected rather than none.
    expect(share(g, g[0]!, t, 1000, [g[1]!, g[2]!])).toBe(0);
    expect(pickEndpoint(g, [g[1]!.health, g[2]!.health], t, P, Math.random)).toBeDefined();
  });

  it('a replica ten times slower gets a small share; equal ones share evenly', () => {
    const g = group(4);
    let t = 0;
    for (let i = 0; i < 40; i++) for (const e of g) tell(e, g, 'success', (t += 1), e === g[0] ? 200 : 20);
    expect(share(g, g[0]!, t)).toBeLessThan(0.02);
    expect(share(g, g[1]!, t)).toBeGreaterThan(0.3);
    const even = group(4);
    expect(Math.abs(share(even, even[2]!, 0) - 0.25)).toBeLessThan(0.02);
  });

  it('fewer requests in flight win between equals', () => {
    const g = group(2);
    g[0]!.outstanding = 3;
    expect(share(g, g[1]!, 0)).toBe(1);
  });

  it('slow start: a new endpoint starts at a tenth of the others and reaches its full share', () => {
    const g = group(3);
    let t = 0;
    for (let i = 0; i < 20; i++) for (const e of g) tell(e, g, 'success', (t += 1), 20);
    const fresh = new Ep('10.0.0.9:9000', t, true);
    const all = [...g, fresh];
    for (const e of g) e.outstanding = 1;
    // In a draw with probability 0.1 at first (then cheaper: nothing in flight), its full share at the end.
    const first = share(all, fresh, t);
    expect(first).toBeGreaterThan(0.02);
    expect(first).toBeLessThan(0.1);
    expect(share(all, fresh, t + P.slowStartMs / 2)).toBeGreaterThan(2 * first);
    expect(share(all, fresh, t + P.slowStartMs)).toBeGreaterThan(0.4);
  });

  it('a slow answer counts at once, a fast one over seconds, and no answers decay the estimate', () => {
    const e = new Ep('10.0.0.1:9000');
    const g = [e];
    tell(e, g, 'success', 0, 20);
    tell(e, g, 'success', 10, 200);
    expect(e.health.latency(10)).toBe(200);
    tell(e, g, 'success', 20, 20);
    expect(e.health.latency(20)).toBeGreaterThan(190);
    expect(e.health.latency(20_020)).toBeLessThan(30);
    // A server error's time says nothing of its speed.
    tell(e, g, 'error', 20_030, 1);
    expect(e.health.latency(20_030)).toBeCloseTo(e.health.latency(20_029), 0);
  });
});

describe('binomialTail', () => {
  it('agrees with the sum of the exact terms', () => {
    const exact = (k: number, n: number, p: number): number => {
      let s = 0;
      for (let j = k; j <= n; j++) {
        let c = 1;
        for (let i = 1; i <= j; i++) c = (c * (n - j + i)) / i;
        s += c * p ** j * (1 - p) ** (n - j);
      }
      return s;
    };
    for (const [k, n, p] of [
      [0, 10, 0.3],
      [5, 5, 0.1],
      [12, 30, 0.3],
      [21, 30, 0.3],
      [1, 1, 0.5],
      [3, 20, 0.01],
    ] as const) {
      expect(binomialTail(k, n, p)).toBeCloseTo(exact(k, n, p), 12);
    }
  });
});
