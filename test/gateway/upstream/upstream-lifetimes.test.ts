/**
 * An upstream leaves with the last route that names it: once its deployment is deleted, the
 * gateway's idle connections to its model (REST keep-alive connections, gRPC HTTP/2 sessions) close
 * at once, not after their idle timeouts (60 s, 5 min), while the live deployment's stay; a request
 * or call already at the model when its deployment goes is answered whole; and a session that
 * closed is not held in memory. Real gateway, real models behind relays that count the gateway's
 * connections.
 */
import { rmSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import v8 from 'node:v8';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { md, predict } from '../../helpers/grpc.js';
import { connectionCounter } from '../../helpers/net.js';

type Counter = Awaited<ReturnType<typeof connectionCounter>>;
const NAMES = ['live', 'gone'] as const;

describe('upstream lifetimes', () => {
  let rest: HttpBackend;
  let grpcBackend: GrpcBackend;
  const counters: Record<string, { rest: Counter; grpc: Counter }> = {};
  let gw: TestGateway;
  let clients: GrpcClients;

  beforeAll(async () => {
    rest = await startHttpBackend({ name: 'model' });
    grpcBackend = await startGrpcBackend({ name: 'model' });
    for (const n of NAMES) counters[n] = { rest: await connectionCounter(rest.port), grpc: await connectionCounter(grpcBackend.port) };
    gw = await startTestGateway({
      manifests: Object.fromEntries(NAMES.map((n) => [`${n}.yaml`, sdep(n, 'm', { predictors: [{ name: 'main' }] })])),
      resolve: Object.fromEntries(
        NAMES.flatMap((n) => [
          [`${n}-main.m:8000`, counters[n]!.rest.port],
          [`${n}-main.m:5001`, counters[n]!.grpc.port],
        ]),
      ),
    });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });
  afterAll(async () => {
    clients.seldon.close();
    await gw.stop();
    for (const c of Object.values(counters)) await Promise.all([c.rest.close(), c.grpc.close()]);
    await Promise.all([rest.close(), grpcBackend.close()]);
  });

  const post = async (name: string, path = '/api/v1.0/predictions', body = '{"data":{"ndarray":[[1]]}}'): Promise<{ status: number; body: string }> => {
    const r = await request(`${gw.url}/seldon/m/${name}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    return { status: r.statusCode, body: await r.body.text() };
  };

  it("closes a deleted deployment's idle connections and sessions at once, finishes what is at its model, keeps the live one's", async () => {
    for (const n of NAMES) {
      expect((await post(n)).status).toBe(200);
      expect((await predict(clients, { strData: 'x' }, md({ seldon: n, namespace: 'm' }))).ok).toBe(true);
    }
    expect(NAMES.map((n) => [counters[n]!.rest.open(), counters[n]!.grpc.open()])).toEqual([
      [1, 1],
      [1, 1],
    ]);
    // In flight when the deployment goes: a REST request and a gRPC call the models answer in 1.5 s.
    rest.setHandler(async (req, res) => {
      await new Promise((r) => setTimeout(r, 1500));
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ answered: req.url }));
    });
    const slowRest = post('gone');
    const slowGrpc = predict(clients, { strData: 'sleep:1500' }, md({ seldon: 'gone', namespace: 'm' }));
    await waitFor(() => rest.requests.length >= 3 && grpcBackend.calls.length >= 3);

    const before = gw.state.current.generation;
    rmSync(join(gw.dir, 'gone.yaml'));
    await waitFor(() => gw.state.current.generation > before);

    const [r, g] = await Promise.all([slowRest, slowGrpc]);
    expect(r).toEqual({ status: 200, body: JSON.stringify({ answered: '/api/v1.0/predictions' }) });
    expect(g.ok).toBe(true);
    // Once answered, nothing of the deleted deployment stays open: within seconds, not the 60 s
    // keep-alive or the 5 min session idle timeout.
    await waitFor(() => counters['gone']!.rest.open() === 0 && counters['gone']!.grpc.open() === 0, 10_000);
    // The live deployment keeps its connection and session, and still answers on them.
    rest.setHandler(undefined);
    expect((await post('live')).status).toBe(200);
    expect((await predict(clients, { strData: 'x' }, md({ seldon: 'live', namespace: 'm' }))).ok).toBe(true);
    expect([counters['live']!.rest.open(), counters['live']!.grpc.open()]).toEqual([1, 1]);
    expect([counters['live']!.rest.accepted(), counters['live']!.grpc.accepted()]).toEqual([1, 1]);
  });
});

describe('an upstream session that closed', () => {
  it('is not held in memory (Node keeps an HTTP/2 session alive until a timer set with session.setTimeout fires, even once destroyed)', async () => {
    const N = 20;
    const backend = await startGrpcBackend({ name: 'model' });
    const names = Array.from({ length: N }, (_x, i) => `d${i}`);
    const gw = await startTestGateway({
      manifests: Object.fromEntries(names.map((n) => [`${n}.yaml`, sdep(n, 'm', { predictors: [{ name: 'main' }] })])),
      resolve: Object.fromEntries(names.map((n) => [`${n}-main.m:5001`, backend.port])),
    });
    const clients = grpcClients(`127.0.0.1:${gw.port}`);
    // The class of the gateway's upstream sessions (and the client's own one, which stays).
    const probe = http2.connect('http://127.0.0.1:1').on('error', () => undefined);
    const ClientSession = probe.constructor as new () => unknown;
    probe.destroy();
    const sessions = (): number => v8.queryObjects(ClientSession, { format: 'count' }) as number;
    try {
      // One upstream, so one session, per deployment.
      for (const n of names) expect((await predict(clients, { strData: 'x' }, md({ seldon: n, namespace: 'm' }))).ok).toBe(true);
      const held = sessions();
      expect(held).toBeGreaterThanOrEqual(N);
      for (const n of names) rmSync(join(gw.dir, `${n}.yaml`));
      await waitFor(() => gw.state.current.deployments.size === 0);
      // Their sessions were retired (closed at once: idle), and once closed nothing holds them: not
      // their idle timers (5 min) either. queryObjects counts after a full collection.
      await waitFor(() => sessions() <= held - N, 10_000);
    } finally {
      clients.close();
      await gw.stop();
      await backend.close();
    }
  });
});
