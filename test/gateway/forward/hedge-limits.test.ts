/**
 * What a hedge never does (docs/routing.md#hedged-requests), over real sockets: four pods at
 * 100 ms on 127.0.0.2–127.0.0.5, the CLI gateway on the Kubernetes API stand-in, and a predictor
 * whose requests all want a hedge (`after: 20ms`). The budget holds them to its share; under flow
 * control at its limit none goes; a feedback reaches the model once; a body larger than the
 * gateway keeps, a predictor with one ready endpoint and a request the gate refused are never
 * hedged. Each case beside requests that are hedged in the same run, so that none can pass for
 * want of hedging (most of them: on a busy machine a first answer is sometimes read before the
 * delay's timer runs).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { REPLICA_IPS } from '../../fixtures/loopback-replicas.js';
import { FEEDBACK, HedgingWorld, PREDICT, type Got } from '../../helpers/hedging.js';
import { pool } from '../../helpers/grpc.js';

const SLOW_MS = 100;
const HEDGE = (extra = ''): Record<string, string> => ({ 'seldon.io/gateway-hedge': `after: 20ms\nbudget: 100%${extra}` });

let world: HedgingWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const start = async (deployments: Parameters<typeof HedgingWorld.start>[0], args: string[] = []): Promise<HedgingWorld> => (world = await HedgingWorld.start(deployments, () => SLOW_MS, args));

/** Requests the pods saw for ids with `prefix`. */
const arrivals = (w: HedgingWorld, prefix: string): number => w.arrivalsOf((id) => id.startsWith(prefix)).length;
/** `n` requests with `prefix` were hedged, most of them at least. */
const hedged = (w: HedgingWorld, prefix: string, n: number): void => expect(arrivals(w, prefix)).toBeGreaterThanOrEqual(n + Math.ceil(n / 2));
const ok = (gs: Got[], status: number): void => {
  for (const g of gs) expect(g.status, `${g.id}: ${g.body}`).toBe(status);
};

describe('the budget', () => {
  for (const protocol of ['rest', 'grpc'] as const) {
    it(`${protocol === 'rest' ? 'REST' : 'gRPC'}: every request wanting a hedge, budget 10%: at most 10% more arrivals, the rest held and counted`, async () => {
      const w = await start({ capped: { annotations: { 'seldon.io/gateway-hedge': 'after: 20ms\nbudget: 10%' } } });
      const n = 300;
      const got = await pool(n, 30, (i) => (protocol === 'rest' ? w.rest('capped', `b-${i}`) : w.grpcPredict('capped', `b-${i}`)));
      ok(got, protocol === 'rest' ? 200 : 0);
      const extra = arrivals(w, 'b-') - n;
      await w.counted('capped', n);
      const held = await w.hedges('capped', 'budget', protocol);
      console.log(`${protocol}: ${extra} extra arrivals for ${n} requests, ${held} hedges held by the budget`);
      // Each request earns a tenth of a token; the balance starts empty and only fades: never more.
      expect(extra).toBeLessThanOrEqual(0.1 * n);
      // The budget is what held them: nearly the whole share went, the rest were counted (but for the few
      // whose answer a busy machine read before their delay's timer ran: they want no hedge. Quiet: 270 of 270 held on
      // every build tried; inside the full suite, 255; beside stress-ng --cpu 2, 240).
      expect(extra).toBeGreaterThanOrEqual(0.08 * n);
      expect(held).toBeGreaterThanOrEqual(0.5 * n);
      expect((await w.hedges('capped', 'won', protocol)) + (await w.hedges('capped', 'lost', protocol))).toBe(extra);
    });
  }
});

describe('what is never hedged', () => {
  it('under flow control at its limit: no hedge (counted flow), never queued; without flow control the same requests are', async () => {
    // Four slots (one per pod), 40 requests at once: ten waves. While requests wait, every delay
    // that runs out finds the slots taken; only in the last wave, as slots free with nobody
    // waiting, may one go.
    const w = await start({
      limited: { annotations: { ...HEDGE(), 'seldon.io/gateway-flow': 'concurrency: 1\nqueue: 100\nqueueTimeout: 10s' } },
      free: { annotations: HEDGE() },
    });
    const [limited, free] = await Promise.all([pool(40, 40, (i) => (i % 2 === 0 ? w.rest('limited', `f-${i}`) : w.grpcPredict('limited', `f-${i}`))), pool(8, 8, (i) => w.rest('free', `u-${i}`))]);
    for (const g of limited) expect(g.status === 200 || g.status === 0, `${g.id}: ${g.body}`).toBe(true);
    ok(free, 200);
    await w.counted('limited', 40);
    const sent = (await w.hedges('limited', 'won')) + (await w.hedges('limited', 'lost'));
    expect(await w.hedges('limited', 'flow')).toBeGreaterThanOrEqual(36);
    expect(sent).toBeLessThanOrEqual(4);
    expect(arrivals(w, 'f-')).toBe(40 + sent);
    hedged(w, 'u-', 8);
  });

  it('a feedback reaches the model exactly once, REST and gRPC; predictions beside it are hedged', async () => {
    const w = await start({ fb: { annotations: HEDGE() } });
    const feedback = await pool(10, 10, (i) => (i % 2 === 0 ? w.rest('fb', `fb-${i}`, '{"reward":1}', FEEDBACK) : w.grpcFeedback('fb', `fb-${i}`)));
    for (const g of feedback) expect(g.status === 200 || g.status === 0, `${g.id}: ${g.body}`).toBe(true);
    for (let i = 0; i < 10; i++) expect(w.arrivalsOf((id) => id === `fb-${i}`)).toHaveLength(1);
    const predictions = await pool(6, 6, (i) => (i % 2 === 0 ? w.rest('fb', `p-${i}`) : w.grpcPredict('fb', `p-${i}`)));
    for (const g of predictions) expect(w.fromWinner(g), `${g.id}: ${g.body}`).toBe(true);
    hedged(w, 'p-', 6);
  });

  it('a body larger than the retry buffer: not hedged (counted body), REST and gRPC; a small one beside it is', async () => {
    const w = await start({ big: { annotations: HEDGE() } }, ['--retry-buffer', '2KiB']);
    const large = 'x'.repeat(8 * 1024);
    const got = await pool(6, 6, (i) => (i % 2 === 0 ? w.rest('big', `l-${i}`, `{"data":{"ndarray":["${large}"]}}`) : w.grpcPredict('big', `l-${i}`, large)));
    for (const g of got) expect(w.fromWinner(g), `${g.id}: ${g.body}`).toBe(true);
    expect(arrivals(w, 'l-')).toBe(6);
    await w.counted('big', 6);
    expect(await w.hedges('big', 'body')).toBe(6);
    const small = await pool(4, 4, (i) => (i % 2 === 0 ? w.rest('big', `s-${i}`) : w.grpcPredict('big', `s-${i}`)));
    for (const g of small) expect(w.fromWinner(g), `${g.id}: ${g.body}`).toBe(true);
    hedged(w, 's-', 4);
  });

  it('a predictor with one ready endpoint: not hedged (counted no_endpoint); its neighbour with four is', async () => {
    const w = await start({ lone: { annotations: HEDGE(), ips: [REPLICA_IPS[0]!] }, many: { annotations: HEDGE() } });
    const lone = await pool(6, 6, (i) => (i % 2 === 0 ? w.rest('lone', `o-${i}`) : w.grpcPredict('lone', `o-${i}`)));
    for (const g of lone) expect(w.fromWinner(g), `${g.id}: ${g.body}`).toBe(true);
    expect(arrivals(w, 'o-')).toBe(6);
    await w.counted('lone', 6);
    expect(await w.hedges('lone', 'no_endpoint')).toBe(6);
    await pool(4, 4, (i) => w.rest('many', `m-${i}`));
    hedged(w, 'm-', 4);
  });

  it('a request the gate refused: nothing reaches a model, nothing is counted for it', async () => {
    const w = await start({ gated: { annotations: { ...HEDGE(), 'seldon.io/gateway-rate-limit': '2/m' } } });
    const got: Got[] = [];
    for (let i = 0; i < 6; i++) got.push(await w.rest('gated', `g-${i}`, undefined, PREDICT));
    // Two a minute (a few more when the store is slow to answer and a local share decides: the limiter's fallback).
    const allowed = got.filter((g) => g.status === 200);
    const refused = got.filter((g) => g.status === 429);
    expect(allowed.length + refused.length).toBe(6);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    // The refused reached nothing and are in no hedge count; the allowed were hedged.
    for (const g of refused) expect(w.arrivalsOf((id) => id === g.id)).toHaveLength(0);
    const arrived = w.arrivalsOf((id) => allowed.some((g) => g.id === id)).length;
    expect(arrived).toBeGreaterThanOrEqual(allowed.length + Math.ceil(allowed.length / 2));
    await w.counted('gated', 6);
    expect((await w.hedges('gated', 'won')) + (await w.hedges('gated', 'lost'))).toBe(arrived - allowed.length);
    expect(await w.metric('seldon_gateway_requests_total', { deployment: 'gated', code: '200' })).toBe(allowed.length);
  });
});
