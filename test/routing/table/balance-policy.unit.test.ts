/**
 * A Mapping's load balancer over endpoints with health (routing/table/balance-policy.ts): round robin in
 * turn, a hashed key to one endpoint, an ejected endpoint or one the request failed on walked past.
 */
import { describe, expect, it } from 'vitest';
import { PolicyBalancer } from '../../../routing/table/balance-policy.js';
import { DEFAULT_OUTLIER_POLICY as P, EndpointHealth, judge, type HealthTracked } from '../../../routing/health/endpoints.js';
import { hash53 } from '../../../routing/table/hash-balance.js';
import { seededRandom } from '../../../routing/table/pick.js';

class Ep implements HealthTracked {
  outstanding = 0;
  readonly health: EndpointHealth;
  constructor(readonly name: string) {
    this.health = new EndpointHealth(name, 0, false);
  }
}

const group = (): Ep[] => Array.from({ length: 4 }, (_x, i) => new Ep(`10.0.0.${i + 1}:9000`));

/** Eject `e` (five failures without an answer in a row) at time 10–50. */
function eject(e: Ep, g: Ep[]): void {
  let ejected = false;
  for (let t = 10; t <= 50; t += 10) ejected = judge(e.health, g, 'local', 20, t, P) !== undefined || ejected;
  expect(ejected).toBe(true);
}

describe('round_robin', () => {
  it('takes the endpoints in turn, and skips an ejected one', () => {
    const g = group();
    const b = new PolicyBalancer<Ep>({ policy: 'round_robin' }, P);
    b.rebuild(g);
    const r = seededRandom(1);
    expect(Array.from({ length: 8 }, () => b.pick(g, undefined, undefined, 100, r)!.name)).toEqual([...g, ...g].map((e) => e.name));
    eject(g[1]!, g);
    expect(Array.from({ length: 6 }, () => b.pick(g, undefined, undefined, 100, r)!.name)).toEqual([0, 2, 3, 0, 2, 3].map((i) => g[i]!.name));
  });

  it('skips an endpoint this request failed on', () => {
    const g = group();
    const b = new PolicyBalancer<Ep>({ policy: 'round_robin' }, P);
    const r = seededRandom(1);
    expect(b.pick(g, [g[0]!.health], undefined, 0, r)).toBe(g[1]);
  });
});

describe.each(['ring_hash', 'maglev'] as const)('%s', (policy) => {
  const lb = { policy, hashOn: { kind: 'header', name: 'x-user' } } as const;

  it('sends a key to one endpoint every time; another try of the request goes elsewhere; an ejected one is walked past', () => {
    const g = group();
    const b = new PolicyBalancer<Ep>(lb, P);
    b.rebuild(g);
    const r = seededRandom(2);
    const h = hash53('user-42');
    const first = b.pick(g, undefined, h, 0, r)!;
    for (let i = 0; i < 20; i++) expect(b.pick(g, undefined, h, 0, r)).toBe(first);
    const retry = b.pick(g, [first.health], h, 0, r)!;
    expect(retry).not.toBe(first);
    // The retry's endpoint is the key's next one, every time.
    expect(b.pick(g, [first.health], h, 0, r)).toBe(retry);
    eject(first, g);
    expect(b.pick(g, undefined, h, 100, r)).toBe(retry);
  });

  it('spreads requests without a key over the endpoints (the default pick)', () => {
    const g = group();
    const b = new PolicyBalancer<Ep>(lb, P);
    const r = seededRandom(3);
    const seen = new Set(Array.from({ length: 200 }, () => b.pick(g, undefined, undefined, 0, r)!.name));
    expect(seen.size).toBe(4);
  });

  it("a request without a key is looked up at a random point (Envoy's): a slow endpoint keeps its share, as the latency-weighed pick would not give it", () => {
    const g = group();
    // g[0] answered slowly, the others fast: the gateway's own pick (power of two by latency) never takes it.
    for (const [i, e] of g.entries()) e.health.observe('success', i === 0 ? 500 : 5, 0, P);
    const b = new PolicyBalancer<Ep>(lb, P);
    const r = seededRandom(4);
    const counts = new Map<string, number>();
    for (let k = 0; k < 4000; k++) {
      const name = b.pick(g, undefined, undefined, 0, r)!.name;
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    for (const e of g) expect(counts.get(e.name) ?? 0, e.name).toBeGreaterThan(700);
  });
});
