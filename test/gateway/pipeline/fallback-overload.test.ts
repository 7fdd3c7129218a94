/**
 * Fallback on overload (docs/routing.md#fallback-models), over real sockets: a predictor under flow
 * control at its limit (a model stand-in of concurrency 1 that finishes a request only when the test
 * says so, test/fixtures/limited-model.ts) with `seldon.io/gateway-fallback: to: {predictor: small}`.
 * A burst twice what it can take (in service and queued) is answered whole, REST and gRPC: what it
 * can take by the model, the rest by `small` at once, with `x-seldon-fallback: overload` and
 * `x-seldon-model` naming who answered; the primary never gets more than its limit and queue. A
 * predictor whose breaker is full is unavailable: its fallback answers. A request the rate limit
 * refuses never reaches the fallback; a deployment without the annotation still refuses as before.
 */
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { startLimitedModel, type LimitedModel } from '../../fixtures/limited-model.js';
import { answeredBy, md, predict } from '../../helpers/grpc.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { waitUntil } from '../../helpers/wait.js';

const FLOW = 'seldon.io/gateway-flow';
const FALLBACK = 'seldon.io/gateway-fallback';
const LIMIT = 'concurrency: 1\nqueue: 1\nqueueTimeout: 30s';
const BODY = '{"data":{"ndarray":[[1,2,3]]}}';

describe('a predictor at its flow-control limit falls back to a smaller predictor', () => {
  const main = {} as Record<'big' | 'limited' | 'plain' | 'brk', LimitedModel>;
  let small: HttpBackend;
  let smallGrpc: GrpcBackend;
  let gw: TestGateway;
  let clients: GrpcClients;

  beforeAll(async () => {
    for (const n of ['big', 'limited', 'plain', 'brk'] as const) main[n] = await startLimitedModel({ concurrency: 1, serviceMs: null });
    small = await startHttpBackend({ name: 'small' });
    smallGrpc = await startGrpcBackend({ name: 'small-grpc' });
    const predictors = [{ name: 'main', annotations: { [FLOW]: LIMIT } }, { name: 'small' }];
    const resolve: Record<string, number> = {};
    for (const n of ['big', 'limited', 'plain', 'brk'] as const) {
      resolve[`${n}-main.m:8000`] = main[n].restPort;
      resolve[`${n}-main.m:5001`] = main[n].grpcPort;
      resolve[`${n}-small.m:8000`] = small.port;
      resolve[`${n}-small.m:5001`] = smallGrpc.port;
    }
    gw = await startTestGateway({
      manifests: {
        'big.yaml': sdep('big', 'm', { predictors }, { [FALLBACK]: 'to: {predictor: small}\non: overload' }),
        'limited.yaml': sdep('limited', 'm', { predictors }, { [FALLBACK]: 'to: {predictor: small}', 'seldon.io/gateway-rate-limit': '2/m' }),
        'plain.yaml': sdep('plain', 'm', { predictors }),
        'brk.yaml': sdep('brk', 'm', { predictors: [{ name: 'main' }, { name: 'small' }] }, { [FALLBACK]: 'to: {predictor: small}', 'seldon.io/ambassador-circuit-breakers-max-requests': '1' }),
      },
      resolve,
    });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });
  afterAll(async () => {
    clients?.seldon.close();
    await gw?.stop();
    for (const m of Object.values(main)) await m.close();
    await small?.close();
    await smallGrpc?.close();
  });

  const post = async (n: string, id: string) => {
    const r = await request(`${gw.url}/seldon/m/${n}/api/v1.0/predictions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-test-id': id }, body: BODY });
    return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
  };
  const queued = (n: string): Promise<number> => metric(gw.adminUrl, `seldon_gateway_flow_queued{namespace="m",deployment="${n}",predictor="main"}`);
  const fallbacks = (protocol: string, result: string): Promise<number> =>
    metric(gw.adminUrl, `seldon_gateway_fallbacks_total{namespace="m",deployment="big",predictor="main",protocol="${protocol}",reason="overload",to="predictor/small",result="${result}"}`);

  const fallbacksOf = (deployment: string, protocol: string): Promise<number> =>
    metric(gw.adminUrl, `seldon_gateway_fallbacks_total{namespace="m",deployment="${deployment}",predictor="main",protocol="${protocol}",reason="unavailable",to="predictor/small",result="answered"}`);

  it('REST: a 2x burst is answered whole; the excess by the fallback at once, marked, with the body the model would have had', async () => {
    const model = main.big;
    const first = post('big', 'r1');
    await model.servedCount(1);
    const second = post('big', 'r2');
    await waitUntil(async () => (await queued('big')) === 1, 10_000);
    const before = small.requests.length;
    // Twice what it can take (one in service, one queued): every one of these is over its limit.
    const burst = await Promise.all([0, 1, 2, 3].map((i) => post('big', `b${i}`)));
    for (const a of burst) {
      expect(a.status).toBe(200);
      expect(a.headers['x-seldon-fallback']).toBe('overload');
      expect(a.headers['x-seldon-model']).toBe('m/big/small');
      expect(JSON.parse(a.text)).toEqual({ data: { ndarray: [[1]] }, meta: { tags: { backend: 'small' } } });
    }
    const got = small.requests.slice(before);
    expect(got.map((r) => r.headers['x-test-id']).sort()).toEqual(['b0', 'b1', 'b2', 'b3']);
    for (const r of got) {
      expect(r.url).toBe('/api/v1.0/predictions');
      expect(r.body.toString()).toBe(BODY);
    }
    // The primary got what it could take and no more.
    expect(model.arrived).toEqual(['r1']);
    model.finish();
    await model.servedCount(2);
    model.finish();
    for (const a of [await first, await second]) {
      expect(a.status).toBe(200);
      expect(a.headers['x-seldon-fallback']).toBeUndefined();
      expect(a.headers['x-seldon-model']).toBeUndefined();
    }
    expect(model.arrived).toEqual(['r1', 'r2']);
    expect(model.peak).toBe(1);
    expect(await fallbacks('rest', 'answered')).toBe(4);
    // Flow control still counts what its predictor could not take (its overload is seen), though no client was refused.
    expect(await metric(gw.adminUrl, 'seldon_gateway_flow_refused_total{namespace="m",deployment="big",predictor="main",priority="standard"}')).toBe(4);
    expect(await metric(gw.adminUrl, 'seldon_gateway_requests_total{namespace="m",deployment="big",predictor="main",protocol="rest",kind="primary",code="503"}')).toBe(0);
    expect(await metric(gw.adminUrl, 'seldon_gateway_requests_total{namespace="m",deployment="big",predictor="small",protocol="rest",kind="primary",code="200"}')).toBe(4);
  });

  it('gRPC: the same, with the marks in the initial metadata', async () => {
    const model = main.big;
    const meta = (id: string): grpc.Metadata => md({ seldon: 'big', namespace: 'm', 'x-test-id': id });
    const first = predict(clients, { strData: 'g1' }, meta('g1'));
    await model.servedCount(3);
    const second = predict(clients, { strData: 'g2' }, meta('g2'));
    await waitUntil(async () => (await queued('big')) === 1, 10_000);
    const burst = await Promise.all([0, 1, 2, 3].map((i) => predict(clients, { strData: `x${i}` }, meta(`x${i}`))));
    for (const o of burst) {
      expect(o.ok).toBe(true);
      if (!o.ok) continue;
      expect(answeredBy(o)).toBe('small-grpc');
      expect(o.result.headers.get('x-seldon-fallback')).toEqual(['overload']);
      expect(o.result.headers.get('x-seldon-model')).toEqual(['m/big/small']);
    }
    expect(smallGrpc.calls.map((c) => c.metadata['x-test-id']).sort()).toEqual(['x0', 'x1', 'x2', 'x3']);
    expect(model.arrived.slice(2)).toEqual(['g1']);
    model.finish();
    await model.servedCount(4);
    model.finish();
    for (const o of [await first, await second]) {
      expect(o.ok).toBe(true);
      if (o.ok) expect(o.result.headers.get('x-seldon-fallback')).toEqual([]);
    }
    expect(await fallbacks('grpc', 'answered')).toBe(4);
  });

  it('its breaker open (max requests in flight), the predictor is unavailable: the fallback answers, REST and gRPC', async () => {
    const model = main.brk;
    const first = post('brk', 'k1');
    await model.servedCount(1);
    const before = small.requests.length;
    const r = await post('brk', 'k2');
    expect(r.status).toBe(200);
    expect(r.headers['x-seldon-fallback']).toBe('unavailable');
    expect(r.headers['x-seldon-model']).toBe('m/brk/small');
    expect(small.requests.slice(before).map((q) => [q.url, q.body.toString()])).toEqual([['/api/v1.0/predictions', BODY]]);
    // gRPC has its own upstream and breaker: one call takes its one slot (the model keeps it waiting behind k1), the next falls back.
    const g = predict(clients, { strData: 'k3' }, md({ seldon: 'brk', namespace: 'm', 'x-test-id': 'k3' }));
    await waitUntil(async () => model.arrived.includes('k3'), 10_000);
    const o = await predict(clients, { strData: 'k4' }, md({ seldon: 'brk', namespace: 'm', 'x-test-id': 'k4' }));
    expect(o.ok).toBe(true);
    if (o.ok) expect(o.result.headers.get('x-seldon-fallback')).toEqual(['unavailable']);
    expect(model.arrived).toEqual(['k1', 'k3']);
    model.finish();
    await model.servedCount(2);
    model.finish();
    expect((await first).status).toBe(200);
    expect((await g).ok).toBe(true);
    // The breaker's refusals are counted; none was the client's answer.
    expect(await fallbacksOf('brk', 'rest')).toBe(1);
    expect(await fallbacksOf('brk', 'grpc')).toBe(1);
    expect(await metric(gw.adminUrl, 'seldon_gateway_requests_total{namespace="m",deployment="brk",predictor="main",protocol="rest",kind="primary",code="503"}')).toBe(0);
  });

  it('a request the rate limit refuses never reaches the fallback; without the annotation the excess is refused as before', async () => {
    const model = main.limited;
    const before = small.requests.length;
    const first = post('limited', 'l1');
    await model.servedCount(1);
    const second = post('limited', 'l2');
    await waitUntil(async () => (await queued('limited')) === 1, 10_000);
    // Over the rate limit (2/m): refused by the gate, though flow control would have sent it to the fallback.
    const third = await post('limited', 'l3');
    expect(third.status).toBe(429);
    expect(third.headers['x-seldon-fallback']).toBeUndefined();
    expect(small.requests.length).toBe(before);

    const plain = main.plain;
    const p1 = post('plain', 'p1');
    await plain.servedCount(1);
    const p2 = post('plain', 'p2');
    await waitUntil(async () => (await queued('plain')) === 1, 10_000);
    const p3 = await post('plain', 'p3');
    expect(p3.status).toBe(503);
    expect(JSON.parse(p3.text).status.reason).toBe('OVERLOADED');
    expect(small.requests.length).toBe(before);
    for (const m of [model, plain]) {
      m.finish();
      await m.servedCount(2);
      m.finish();
    }
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    expect((await p1).status).toBe(200);
    expect((await p2).status).toBe(200);
  });
});
