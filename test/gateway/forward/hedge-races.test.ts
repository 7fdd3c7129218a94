/**
 * How the attempts of a hedged request race (docs/routing.md#hedged-requests), REST and gRPC, over
 * real sockets: the pods decide by the order a request reaches them (its first arrival, its hedge,
 * a retry), and `after: 10ms` sends the hedge while the first is in flight: each first attempt takes
 * 300 ms, so that a gateway starved of CPU (a busy machine's late timers) still hedges before it ends.
 *
 * - A failure while the other is in flight is that attempt's alone: the other's answer is the client's.
 * - When every attempt in flight has failed, the retry rule applies as without hedging, and a retry
 *   takes a token of the same budget: none left, none made.
 * - An answer the policy does not retry (a model's 500, a gRPC INTERNAL) is final: it wins, and the
 *   hedge is cut at the model.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HedgingWorld, type Got } from '../../helpers/hedging.js';
import type { PodFailure } from '../../fixtures/loopback-replicas.js';

let world: HedgingWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

/** The pods' plan by arrival: how long the n-th arrival of a request takes, and how it fails (undefined: it answers). The pods ask the latency first, then the failure, of each arrival. */
type Plan = (n: number, id: string) => { ms: number; fail?: PodFailure };

async function start(deployments: Parameters<typeof HedgingWorld.start>[0], plan: Plan): Promise<HedgingWorld> {
  const arrivals = new Map<string, number>();
  const nth = new Map<string, number>();
  world = await HedgingWorld.start(deployments, (ip, id) => {
    const n = arrivals.get(id) ?? 0;
    arrivals.set(id, n + 1);
    nth.set(`${ip} ${id}`, n);
    return plan(n, id).ms;
  });
  world.pods.failWith = (ip, id) => plan(nth.get(`${ip} ${id}`) ?? 0, id).fail;
  return world;
}

const HEDGE = 'after: 10ms\nbudget: 100%';
const send = (w: HedgingWorld, protocol: 'rest' | 'grpc', deployment: string, id: string): Promise<Got> => (protocol === 'rest' ? w.rest(deployment, id) : w.grpcPredict(deployment, id));
const OK = { rest: 200, grpc: 0 } as const;

describe('hedged attempts racing', () => {
  for (const protocol of ['rest', 'grpc'] as const) {
    const label = protocol === 'rest' ? 'REST' : 'gRPC';

    it(`${label}: the first attempt fails while its hedge is in flight: the hedge's answer is the client's`, async () => {
      const w = await start({ race: { annotations: { 'seldon.io/gateway-hedge': HEDGE } } }, (n, id) => (id.includes('-warm-') ? { ms: 1 } : n === 0 ? { ms: 300, fail: 'reset' } : { ms: 400 }));
      // Connections (gRPC sessions) to the pods first, so that a first attempt does not wait for one.
      for (let i = 0; i < 8; i++) expect((await send(w, protocol, 'race', `${protocol}-warm-${i}`)).status).toBe(OK[protocol]);
      await w.counted('race', 8);
      // A warm-up request slower than the 10 ms (a busy machine) was hedged too: the race's hedges are what is added to them.
      const hedged = async (): Promise<number> => (await w.hedges('race', 'won', protocol)) + (await w.hedges('race', 'lost', protocol));
      const before = await hedged();
      const got = await Promise.all([0, 1, 2].map((i) => send(w, protocol, 'race', `${protocol}-a-${i}`)));
      for (const g of got) {
        expect(g.status, `${g.id}: ${g.body}`).toBe(OK[protocol]);
        expect(w.fromWinner(g), `${g.id}: ${g.body}`).toBe(true);
        expect(w.arrivalsOf((id) => id === g.id)).toHaveLength(2);
      }
      await w.counted('race', 11);
      // One hedge each, counted once. Which attempt reaches its pod first (and so fails) is the machine's: the hedge
      // (won) unless the first attempt's stream waited longer than the 10 ms for its session (then the hedge lost).
      const said = got.map((g) => `${g.id}: ${g.ms.toFixed(0)} ms`).join(', ');
      expect((await hedged()) - before, said).toBe(3);
    });

    it(`${label}: both fail: the retry rule takes over, its retry paid from the same budget (none left: the failure is the client's)`, async () => {
      const w = await start(
        {
          saved: { annotations: { 'seldon.io/gateway-hedge': HEDGE, 'seldon.io/ambassador-retries': '1' } },
          spent: { annotations: { 'seldon.io/gateway-hedge': HEDGE, 'seldon.io/ambassador-retries': '1' } },
        },
        (n, id) => (id.includes('-warm-') ? { ms: 1 } : n < 2 ? { ms: 300 + 10 * n, fail: 'reset' } : { ms: 5 }),
      );
      // Quick requests first: each earns a token and spends none.
      for (let i = 0; i < 4; i++) expect((await send(w, protocol, 'saved', `${protocol}-warm-${i}`)).status).toBe(OK[protocol]);
      const saved = await send(w, protocol, 'saved', `${protocol}-b-saved`);
      expect(saved.status, saved.body).toBe(OK[protocol]);
      expect(w.fromWinner(saved), saved.body).toBe(true);
      expect(w.arrivalsOf((id) => id === saved.id)).toHaveLength(3);
      // A request's own token went on its hedge: the retry after both failed has none and is not made.
      const spent = await send(w, protocol, 'spent', `${protocol}-b-spent`);
      expect(spent.status, spent.body).not.toBe(OK[protocol]);
      expect(w.arrivalsOf((id) => id === spent.id)).toHaveLength(2);
    });

    it(`${label}: an answer the policy does not retry is final: it wins, the hedge is cut at the model`, async () => {
      const w = await start({ final: { annotations: { 'seldon.io/gateway-hedge': HEDGE } } }, (n) => (n === 0 ? { ms: 300, fail: 500 } : { ms: 600 }));
      const g = await send(w, protocol, 'final', `${protocol}-c`);
      if (protocol === 'rest') {
        expect(g.status).toBe(500);
        expect(g.body).toMatch(/failed at 127\.0\.0\.[2-5]/);
      } else expect(g.status).toBe(13);
      const arrivals = w.arrivalsOf((id) => id === g.id);
      expect(arrivals).toHaveLength(2);
      await expect.poll(() => arrivals.filter((a) => a.cancelled).length, { timeout: 5000 }).toBe(1);
      await w.counted('final', 1);
      expect(await w.hedges('final', 'lost', protocol)).toBe(1);
    });
  }
});
