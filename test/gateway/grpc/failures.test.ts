/**
 * What the gateway answers when things go wrong, and how trouble on one side reaches the other:
 * deadlines, cancellation, dead and resetting upstreams, GOAWAY, retries, breakers, drain.
 */
import http2 from 'node:http2';
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { answerOk, md, pool, predict, startRawUpstream, type Outcome, type RawUpstream } from '../../helpers/grpc.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/net.js';

function failure(o: Outcome): { code: number; details: string; metadata: grpc.Metadata } {
  if (o.ok) throw new Error(`expected a failure, got OK (${o.result.response.strData})`);
  return { code: o.error.code, details: o.error.details, metadata: o.error.metadata };
}

const meta = (seldon: string): grpc.Metadata => md({ seldon, namespace: 'models' });

describe('gRPC failures, timeouts and cancellation', () => {
  let backend: GrpcBackend;
  let victim: GrpcBackend;
  let resetting: RawUpstream;
  let flaky: RawUpstream;
  let midway: RawUpstream;
  let nostatus: RawUpstream;
  let goaway: RawUpstream;
  let slowRaw: RawUpstream;
  let gw: TestGateway;
  let clients: GrpcClients;

  beforeAll(async () => {
    backend = await startGrpcBackend({ name: 'ok' });
    victim = await startGrpcBackend({ name: 'victim' });
    resetting = await startRawUpstream((s) => s.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    // Resets every stream whose strData says "reset"; answers the others.
    flaky = await startRawUpstream((s) => {
      let body = '';
      s.setEncoding('latin1');
      s.on('data', (d: string) => (body += d));
      s.on('end', () => (body.includes('reset') && flaky.streams.length % 3 !== 0 ? s.close(http2.constants.NGHTTP2_INTERNAL_ERROR) : answerOk(s, `attempt ${flaky.streams.length}`)));
    });
    // Sends response headers and half a message, then its connection drops: a failure after the
    // answer began. ("nostatus" ends a 200 answer without any grpc-status.)
    midway = await startRawUpstream((s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' });
      s.write(Buffer.from([0, 0, 0, 0, 10, 0x2a, 8]));
      setTimeout(() => s.session?.destroy(), 20);
    });
    nostatus = await startRawUpstream((s) => {
      s.resume();
      s.respond({ ':status': 200, 'content-type': 'application/grpc' });
      s.end();
    });
    // Stream 0 waits; when stream 1 arrives on the same session the upstream sends GOAWAY naming
    // stream 0 as the last it processes (so stream 1 is refused), then answers stream 0.
    let held: http2.ServerHttp2Stream | undefined;
    goaway = await startRawUpstream((s, n) => {
      s.resume();
      if (n === 0) held = s;
      else if (n === 1) {
        s.session!.goaway(http2.constants.NGHTTP2_NO_ERROR, held!.id!);
        setTimeout(() => answerOk(held!, 'stream 0'), 30);
      } else answerOk(s, `stream ${n}`);
    });
    slowRaw = await startRawUpstream((s) => {
      s.resume();
      setTimeout(() => answerOk(s, 'slow raw'), 60);
    });
    const dead = await freePort();
    gw = await startTestGateway({
      manifests: {
        'ok.yaml': sdep('ok', 'models', { predictors: [{ name: 'default' }] }),
        'route.yaml': sdep('route', 'models', { predictors: [{ name: 'default' }] }, { 'seldon.io/grpc-timeout': '300' }),
        'victim.yaml': sdep('victim', 'models', { predictors: [{ name: 'default' }] }, { 'seldon.io/grpc-timeout': '0' }),
        'dead.yaml': sdep('dead', 'models', { predictors: [{ name: 'default' }] }),
        'resetting.yaml': sdep('resetting', 'models', { predictors: [{ name: 'default' }] }),
        'flaky2.yaml': sdep('flaky2', 'models', { predictors: [{ name: 'default' }] }, { 'seldon.io/ambassador-retries': '2' }),
        'midway.yaml': sdep('midway', 'models', { predictors: [{ name: 'default' }] }, { 'seldon.io/ambassador-retries': '3' }),
        'nostatus.yaml': sdep('nostatus', 'models', { predictors: [{ name: 'default' }] }),
        'goaway.yaml': sdep('goaway', 'models', { predictors: [{ name: 'default' }] }),
        // 200 calls at once below: a route timeout a busy machine cannot hit.
        'slowraw.yaml': sdep('slowraw', 'models', { predictors: [{ name: 'default' }] }, { 'seldon.io/grpc-timeout': '60000' }),
        'tight.yaml': sdep('tight', 'models', { predictors: [{ name: 'default' }] }, { 'seldon.io/ambassador-circuit-breakers-max-requests': '1' }),
      },
      resolve: {
        'ok-default.models:5001': backend.port,
        'route-default.models:5001': backend.port,
        'victim-default.models:5001': victim.port,
        'dead-default.models:5001': dead,
        'resetting-default.models:5001': resetting.port,
        'flaky2-default.models:5001': flaky.port,
        'midway-default.models:5001': midway.port,
        'goaway-default.models:5001': goaway.port,
        'nostatus-default.models:5001': nostatus.port,
        'slowraw-default.models:5001': slowRaw.port,
        'tight-default.models:5001': backend.port,
      },
      // The messages asserted here name upstream addresses and errors: --error-detail internal.
      // (The public messages, without them, are in test/gateway/grpc/edge.test.ts.)
      args: ['--default-idle-timeout', '400ms', '--error-detail', 'internal'],
    });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });
  afterAll(async () => {
    clients?.close();
    await gw?.stop();
    for (const u of [backend, victim, resetting, flaky, midway, nostatus, goaway, slowRaw]) await u?.close();
  });

  it("honours the client's deadline and forwards it unchanged when the route's is larger", async () => {
    const before = backend.calls.length;
    const sent = Date.now();
    const o = await predict(clients, { strData: 'sleep:2000' }, meta('ok'), { deadline: sent + 300 });
    expect(failure(o).code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(Date.now() - sent).toBeLessThan(1000);
    const call = backend.calls[before]!;
    // The client's own 300 ms (not the route's 3 s, not none), give or take the trip there.
    expect(Math.abs(call.deadline! - (sent + 300))).toBeLessThan(150);
    await waitFor(() => call.cancelled, 1000);
  });

  it('the route timeout answers DEADLINE_EXCEEDED naming the upstream, and cancels the upstream call', async () => {
    const before = backend.calls.length;
    const sent = Date.now();
    const f = failure(await predict(clients, { strData: 'sleep:2000' }, meta('route')));
    expect(Date.now() - sent).toBeGreaterThanOrEqual(290);
    expect(Date.now() - sent).toBeLessThan(1000);
    expect(f.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(f.details).toBe('upstream route-default.models:5001 (models/route/default) did not answer within the route timeout of 300 ms');
    const call = backend.calls[before]!;
    expect(call.deadline).toBeUndefined(); // the client sent none: none is invented
    await waitFor(() => call.cancelled, 1000);
  });

  it('when the route timeout is smaller than the client deadline, the gateway answers DEADLINE_EXCEEDED at the route timeout and the upstream keeps the client deadline', async () => {
    const before = backend.calls.length;
    const f = failure(await predict(clients, { strData: 'sleep:2000' }, meta('route'), { deadline: Date.now() + 10_000 }));
    expect(f.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(f.details).toContain('route timeout of 300 ms');
    const call = backend.calls[before]!;
    // The route timeout bounds the wait for headers only (docs/routing.md#timeouts-retries-and-circuit-breakers); grpc-timeout passes unchanged (docs/routing.md#grpc-metadata-matching).
    expect(Math.abs(call.deadline! - (call.receivedAt + 10_000))).toBeLessThan(500);
  });

  it('ends a stream idle after its headers with trailers grpc-status 4', async () => {
    const call = clients.streams.ServerStream({ count: 3, payloadBytes: 8, intervalMs: 1500 }, meta('ok'));
    let n = 0;
    call.on('data', () => n++);
    call.on('error', () => undefined);
    const status = await new Promise<grpc.StatusObject>((r) => call.on('status', r));
    expect(n).toBe(1);
    expect(status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(status.details).toBe('no bytes in either direction for 400 ms on the call to upstream ok-default.models:5001 (models/ok/default)');
  });

  it('a client cancellation reaches the backend within 100 ms', async () => {
    for (let round = 0; round < 3; round++) {
      const before = backend.calls.length;
      const call = clients.seldon.Predict({ strData: 'sleep:5000' }, meta('ok'), () => undefined);
      await waitFor(() => backend.calls.length > before, 2000);
      const rec = backend.calls[before]!;
      const t0 = performance.now();
      call.cancel();
      await waitFor(() => rec.cancelled, 1000);
      expect(performance.now() - t0).toBeLessThan(100);
    }
  });

  it('a refused connection is UNAVAILABLE naming the upstream and the error', async () => {
    const f = failure(await predict(clients, { strData: 'x' }, meta('dead')));
    expect(f.code).toBe(grpc.status.UNAVAILABLE);
    expect(f.details).toBe('could not connect to upstream dead-default.models:5001 (models/dead/default): ECONNREFUSED');
  });

  it('a reset before the answer is UNAVAILABLE with the reset code', async () => {
    const f = failure(await predict(clients, { strData: 'x' }, meta('resetting')));
    expect(f.code).toBe(grpc.status.UNAVAILABLE);
    expect(f.details).toBe('upstream resetting-default.models:5001 (models/resetting/default) reset the stream before answering: RST_STREAM INTERNAL_ERROR (2)');
  });

  it('retries (ambassador-retries) replay a reset call, and only before any response byte', async () => {
    // flaky resets "reset" calls unless the stream count is a multiple of 3: 2 resets, then OK.
    const start = flaky.streams.length;
    expect(start % 3).toBe(0);
    const o = await predict(clients, { strData: 'reset' }, meta('flaky2'));
    expect(o.ok).toBe(true);
    expect(flaky.streams.length - start).toBe(3);
    const retried = await gw.metrics.registry.getSingleMetricAsString('seldon_gateway_retries_total');
    expect(retried).toMatch(/deployment="flaky2",protocol="grpc"} 2/);

    // A body over the retry buffer (1 MiB) cannot be replayed: one attempt, its failure returned.
    const big = flaky.streams.length;
    const f1 = failure(await predict(clients, { strData: `reset${'x'.repeat(1536 * 1024)}` }, meta('flaky2')));
    expect(flaky.streams.length - big).toBe(1);
    expect(f1.code).toBe(grpc.status.UNAVAILABLE);
    expect(f1.details).toContain('reset the stream before answering: RST_STREAM INTERNAL_ERROR (2)');

    // Headers reached the client, then a reset: no retry, the client learns what happened.
    const before = midway.streams.length;
    const f = failure(await predict(clients, { strData: 'x' }, meta('midway')));
    expect(midway.streams.length - before).toBe(1);
    expect(f.code).toBe(grpc.status.UNAVAILABLE);
    expect(f.details).toMatch(/^upstream midway-default\.models:5001 \(models\/midway\/default\) reset the stream after answering: /);
  });

  it('an upstream that ends a 200 answer without grpc-status is INTERNAL, saying so', async () => {
    const f = failure(await predict(clients, { strData: 'x' }, meta('nostatus')));
    expect(f.code).toBe(grpc.status.INTERNAL);
    expect(f.details).toBe('upstream nostatus-default.models:5001 (models/nostatus/default) ended the stream without a grpc-status');
  });

  it('a backend killed mid-call is UNAVAILABLE, and the gateway reconnects when it is back', async () => {
    const port = victim.port;
    const pending = predict(clients, { strData: 'sleep:3000' }, meta('victim'));
    await waitFor(() => victim.calls.length > 0, 2000);
    victim.kill();
    const f = failure(await pending);
    expect(f.code).toBe(grpc.status.UNAVAILABLE);
    expect(f.details).toMatch(/^upstream victim-default\.models:5001 \(models\/victim\/default\) reset the stream before answering: (the connection closed|RST_STREAM)/);
    victim = await startGrpcBackend({ name: 'victim', port });
    const o = await predict(clients, { strData: 'again' }, meta('victim'));
    expect(o.ok).toBe(true);
  });

  it('a session that goes away (GOAWAY) is replaced without failing calls that had not started on it', async () => {
    const a = predict(clients, { strData: 'a' }, meta('goaway'));
    await waitFor(() => goaway.streams.length === 1, 2000);
    const b = predict(clients, { strData: 'b' }, meta('goaway'));
    const [oa, ob] = await Promise.all([a, b]);
    // a was accepted before the GOAWAY and finishes on the old session; b was refused there and
    // replayed on a new session.
    expect(oa.ok && oa.result.response.strData).toBe('stream 0');
    expect(ob.ok && ob.result.response.strData).toBe('stream 2');
    expect(goaway.streams).toHaveLength(3);
    const c = await predict(clients, { strData: 'c' }, meta('goaway'));
    expect(c.ok && c.result.response.strData).toBe('stream 3');
  });

  it('pools upstream sessions: sequential calls share one, concurrent load spreads over a few', async () => {
    for (let i = 0; i < 20; i++) expect((await predict(clients, { strData: 'x' }, meta('slowraw'))).ok).toBe(true);
    expect(slowRaw.sessions.size).toBe(1);
    const results = await Promise.all(Array.from({ length: 200 }, () => predict(clients, { strData: 'x' }, meta('slowraw'))));
    expect(results.every((o) => o.ok)).toBe(true);
    expect(slowRaw.sessions.size).toBeGreaterThan(1);
    expect(slowRaw.sessions.size).toBeLessThanOrEqual(4);
  });

  it('a tripped breaker is UNAVAILABLE with x-envoy-overloaded: true', async () => {
    const results = await Promise.all(Array.from({ length: 5 }, () => predict(clients, { strData: 'sleep:300' }, meta('tight'))));
    const ok = results.filter((o) => o.ok);
    const overflow = results.filter((o) => !o.ok).map(failure);
    const seen = JSON.stringify(results.map((o) => (o.ok ? 'OK' : `${o.error.code} ${o.error.details}`)));
    expect(ok, seen).toHaveLength(1);
    expect(overflow).toHaveLength(4);
    for (const f of overflow) {
      expect(f.code).toBe(grpc.status.UNAVAILABLE);
      expect(f.metadata.get('x-envoy-overloaded')).toEqual(['true']);
      expect(f.details).toBe('circuit breaker open for tight-default.models:5001 (models/tight/default): max_requests (1) reached');
    }
    // The slot is given back.
    expect((await predict(clients, { strData: 'x' }, meta('tight'))).ok).toBe(true);
  });

  it('keeps serving after all of the above (nothing leaked into other calls)', async () => {
    const results = await pool(100, 20, () => predict(clients, { strData: 'x' }, meta('ok')));
    expect(results.every((o) => o.ok)).toBe(true);
  });
});

describe('gRPC graceful drain', () => {
  it('GOAWAY on shutdown: in-flight calls finish, the client is told to go elsewhere', async () => {
    const backend = await startGrpcBackend({ name: 'drain' });
    const gw = await startTestGateway({
      manifests: { 'd.yaml': sdep('d', 'models', { predictors: [{ name: 'default' }] }) },
      resolve: { 'd-default.models:5001': backend.port },
    });
    const clients = grpcClients(`127.0.0.1:${gw.port}`);
    const raw = http2.connect(gw.url);
    raw.on('error', () => undefined);
    await once(raw, 'connect');
    const goaways: number[] = [];
    raw.on('goaway', (code: number, last: number) => goaways.push(last));
    try {
      expect((await predict(clients, {}, meta('d'))).ok).toBe(true);
      const inFlight = predict(clients, { strData: 'sleep:500' }, meta('d'));
      await waitFor(() => backend.calls.length === 2, 2000);
      const stopped = gw.shutdown();
      const o = await inFlight;
      expect(o.ok).toBe(true);
      await waitFor(() => goaways.length > 0, 2000);
      expect(goaways[0]).toBe(2 ** 31 - 1); // first GOAWAY: "stop opening streams"
      await stopped;
    } finally {
      raw.destroy();
      clients.close();
      await gw.stop();
      await backend.close();
    }
  });
});
