/**
 * The gRPC edge against what a client may send or learn: forwarding headers treated
 * as REST's (item 8), public statuses without internal addresses or library text unless
 * --error-detail internal (item 9), and HTTP/2 rapid reset (CVE-2023-44487) closing the
 * connection after a bounded number of premature resets (item 10), and a client connection that
 * closed leaving nothing in memory. Real gateway, real
 * @grpc/grpc-js client and backend, a raw node:http2 client for the resets.
 */
import http2 from 'node:http2';
import v8 from 'node:v8';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { md, predict, startRawUpstream, type Outcome, type RawUpstream } from '../../helpers/grpc.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/net.js';
import { PREMATURE_RESET_STREAMS } from '../../../gateway/edge/h2-server.js';

function details(o: Outcome): { code: number; details: string } {
  if (o.ok) throw new Error('expected a failure, got OK');
  return { code: o.error.code, details: o.error.details };
}

const meta = (seldon: string, extra: Record<string, string> = {}): grpc.Metadata => md({ seldon, namespace: 'models', ...extra });

describe('gRPC edge', () => {
  let backend: GrpcBackend;
  let resetting: RawUpstream;
  let slow: RawUpstream;
  let dead: number;
  const manifests = (): Record<string, string> => ({
    'ok.yaml': sdep('ok', 'models', { predictors: [{ name: 'default' }] }),
    'dead.yaml': sdep('dead', 'models', { predictors: [{ name: 'default' }] }),
    'resetting.yaml': sdep('resetting', 'models', { predictors: [{ name: 'default' }] }),
    'slow.yaml': sdep('slow', 'models', { predictors: [{ name: 'default' }] }, { 'seldon.io/grpc-timeout': '200' }),
    'tight.yaml': sdep('tight', 'models', { predictors: [{ name: 'default' }] }, { 'seldon.io/ambassador-circuit-breakers-max-requests': '1' }),
    'iris-a.yaml': sdep('iris', 'team-a', { predictors: [{ name: 'default' }] }),
    'iris-b.yaml': sdep('iris', 'team-b', { predictors: [{ name: 'default' }] }),
  });
  const resolve = (): Record<string, number> => ({
    'ok-default.models:5001': backend.port,
    'dead-default.models:5001': dead,
    'resetting-default.models:5001': resetting.port,
    'slow-default.models:5001': slow.port,
    'tight-default.models:5001': slow.port,
    'iris-default.team-a:5001': backend.port,
    'iris-default.team-b:5001': backend.port,
  });

  beforeAll(async () => {
    backend = await startGrpcBackend({ name: 'ok' });
    resetting = await startRawUpstream((s) => s.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    slow = await startRawUpstream((s) => s.resume()); // never answers
    dead = await freePort();
  });
  afterAll(async () => {
    await backend.close();
    await resetting.close();
    await slow.close();
  });

  describe('x-forwarded-for / x-forwarded-proto (as REST)', () => {
    it('an untrusted client cannot set them: the model sees the peer address and http', async () => {
      const gw = await startTestGateway({ manifests: manifests(), resolve: resolve() });
      const clients = grpcClients(`127.0.0.1:${gw.port}`);
      try {
        const before = backend.calls.length;
        expect((await predict(clients, { strData: 'x' }, meta('ok', { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https' }))).ok).toBe(true);
        expect((await predict(clients, { strData: 'x' }, meta('ok'))).ok).toBe(true);
        const [spoofed, plain] = backend.calls.slice(before).map((c) => c.metadata);
        expect(spoofed!['x-forwarded-for']).toBe('127.0.0.1');
        expect(spoofed!['x-forwarded-proto']).toBe('http');
        // A client that sends none gets them too (gRPC calls had no x-forwarded-for at all).
        expect(plain!['x-forwarded-for']).toBe('127.0.0.1');
        expect(plain!['x-forwarded-proto']).toBe('http');
      } finally {
        clients.close();
        await gw.stop();
      }
    });

    for (const trust of [['--trusted-proxies', '127.0.0.1/32'], ['--trust-forwarded-headers']]) {
      it(`a trusted proxy's are kept, the peer appended (${trust.join(' ')})`, async () => {
        const gw = await startTestGateway({ manifests: manifests(), resolve: resolve(), args: trust });
        const clients = grpcClients(`127.0.0.1:${gw.port}`);
        try {
          const before = backend.calls.length;
          expect((await predict(clients, { strData: 'x' }, meta('ok', { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https' }))).ok).toBe(true);
          const m = backend.calls[before]!.metadata;
          expect(m['x-forwarded-for']).toBe('6.6.6.6, 127.0.0.1');
          expect(m['x-forwarded-proto']).toBe('https');
        } finally {
          clients.close();
          await gw.stop();
        }
      });
    }
  });

  describe('public statuses: the deployment and the reason, no addresses or library text', () => {
    let pub: TestGateway;
    let internal: TestGateway;
    let pubClients: GrpcClients;
    let internalClients: GrpcClients;
    beforeAll(async () => {
      pub = await startTestGateway({ manifests: manifests(), resolve: resolve() });
      internal = await startTestGateway({ manifests: manifests(), resolve: resolve(), args: ['--error-detail', 'internal'] });
      pubClients = grpcClients(`127.0.0.1:${pub.port}`);
      internalClients = grpcClients(`127.0.0.1:${internal.port}`);
    });
    afterAll(async () => {
      pubClients.close();
      internalClients.close();
      await pub.stop();
      await internal.stop();
    });

    /** Internal addresses: Service DNS names, ports, IPs, errno codes. */
    const INTERNAL = /\.models\b|:\d{2,5}\b|127\.0\.0\.1|\bE[A-Z]{4,}\b|team-a|team-b/;

    it('a refused connection', async () => {
      const p = details(await predict(pubClients, { strData: 'x' }, meta('dead')));
      expect(p.code).toBe(grpc.status.UNAVAILABLE);
      expect(p.details).toBe('could not connect to the upstream of models/dead/default: connection refused');
      expect(p.details).not.toMatch(INTERNAL);
      const i = details(await predict(internalClients, { strData: 'x' }, meta('dead')));
      expect(i.details).toBe('could not connect to upstream dead-default.models:5001 (models/dead/default): ECONNREFUSED');
    });

    it('a reset, a route timeout, an open breaker', async () => {
      const reset = details(await predict(pubClients, { strData: 'x' }, meta('resetting')));
      expect(reset.details).toBe('the upstream of models/resetting/default reset the stream before answering: RST_STREAM INTERNAL_ERROR (2)');
      const timeout = details(await predict(pubClients, { strData: 'x' }, meta('slow')));
      expect(timeout.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(timeout.details).toBe('the upstream of models/slow/default did not answer within the route timeout of 200 ms');
      const internalTimeout = details(await predict(internalClients, { strData: 'x' }, meta('slow')));
      expect(internalTimeout.details).toBe(`upstream slow-default.models:5001 (models/slow/default) did not answer within the route timeout of 200 ms`);
      // Breaker: one call holds the only slot (it is at the upstream, which never answers); the next is refused.
      const streams = slow.streams.length;
      const held = predict(pubClients, { strData: 'x' }, meta('tight'), { deadline: Date.now() + 1500 });
      await waitFor(() => slow.streams.length > streams);
      const open = details(await predict(pubClients, { strData: 'x' }, meta('tight')));
      expect(open.code).toBe(grpc.status.UNAVAILABLE);
      expect(open.details).toBe('circuit breaker open for models/tight/default: max_requests (1) reached');
      await held;
      for (const d of [reset, timeout, open]) expect(d.details).not.toMatch(INTERNAL);
    });

    it('no namespace metadata for a name served in two namespaces: no namespace is named', async () => {
      const p = details(await predict(pubClients, { strData: 'x' }, md({ seldon: 'iris' })));
      expect(p.code).toBe(grpc.status.UNIMPLEMENTED);
      expect(p.details).toContain('"namespace" metadata');
      expect(p.details).not.toMatch(INTERNAL);
      // A name that does not exist, in a namespace: the client's own metadata comes back, nothing else.
      const none = details(await predict(pubClients, { strData: 'x' }, md({ seldon: 'nope', namespace: 'x' })));
      expect(none.details).toBe('no route for gRPC /seldon.protos.Seldon/Predict with seldon="nope" namespace="x"');
    });
  });

  describe('client connections that come and go', () => {
    it('leave no session in memory once closed (Node keeps an HTTP/2 session alive until a timer set with session.setTimeout fires, even once destroyed)', async () => {
      const gw = await startTestGateway({ manifests: manifests(), resolve: resolve() });
      // The class of the gateway's sessions with its clients.
      const server = http2.createServer();
      const ServerSession = await new Promise<new () => unknown>((resolve) => {
        server.once('session', (s) => {
          resolve(s.constructor as new () => unknown);
          s.destroy();
        });
        server.listen(0, '127.0.0.1', () => {
          const c = http2.connect(`http://127.0.0.1:${(server.address() as { port: number }).port}`).on('error', () => undefined);
          c.once('close', () => server.close());
        });
      });
      const sessions = (): number => v8.queryObjects(ServerSession, { format: 'count' }) as number;
      try {
        // The gateway's own session to the model opens with the first call, and stays.
        const first = grpcClients(`127.0.0.1:${gw.port}`);
        expect((await predict(first, { strData: 'x' }, meta('ok'))).ok).toBe(true);
        first.close();
        const before = sessions();
        // 30 clients each make a call and leave: half close, half drop the connection.
        for (let i = 0; i < 30; i++) {
          const c = http2.connect(`http://127.0.0.1:${gw.port}`).on('error', () => undefined);
          const s = c.request({ ':method': 'POST', ':path': '/seldon.protos.Seldon/Predict', 'content-type': 'application/grpc', te: 'trailers', seldon: 'ok', namespace: 'models' });
          s.on('error', () => undefined);
          s.resume();
          s.end(Buffer.from([0, 0, 0, 0, 0]));
          await new Promise((r) => s.once('close', r));
          if (i % 2) c.close();
          else c.destroy();
        }
        // Once the gateway has seen them close, nothing holds their sessions: not their idle timers (5 min) either.
        // (The first client's session may go too: at most what was there before.)
        await waitFor(() => sessions() <= before, 10_000);
      } finally {
        await gw.stop();
      }
    });
  });

  describe('HTTP/2 rapid reset (CVE-2023-44487)', () => {
    it('a connection that opens and resets streams is closed after a bounded number; other connections are unaffected', async () => {
      const gw = await startTestGateway({ manifests: manifests(), resolve: resolve() });
      const clients = grpcClients(`127.0.0.1:${gw.port}`);
      const attacker = http2.connect(`http://127.0.0.1:${gw.port}`);
      attacker.on('error', () => undefined);
      let goawayCode: number | undefined;
      attacker.on('goaway', (code: number) => (goawayCode ??= code));
      const closed = new Promise<void>((r) => attacker.once('close', () => r()));
      try {
        await new Promise<void>((r, j) => {
          attacker.once('connect', () => r());
          attacker.once('error', j);
        });
        const before = backend.calls.length;
        const body = Buffer.from([0, 0, 0, 0, 0]);
        let opened = 0;
        const normal: Promise<Outcome>[] = [];
        // Bounded: at most 5,000 streams in 100-stream bursts, or 10 s.
        const deadline = Date.now() + 10_000;
        while (!attacker.closed && !attacker.destroyed && opened < 5000 && Date.now() < deadline) {
          for (let i = 0; i < 100 && !attacker.closed && !attacker.destroyed; i++) {
            try {
              const s = attacker.request({ ':method': 'POST', ':path': '/seldon.protos.Seldon/Predict', 'content-type': 'application/grpc', te: 'trailers', seldon: 'ok', namespace: 'models' });
              s.on('error', () => undefined);
              s.end(body);
              s.close(http2.constants.NGHTTP2_CANCEL);
              opened++;
            } catch {
              break; // the session went away under us
            }
          }
          normal.push(predict(clients, { strData: 'y' }, meta('ok')));
          await new Promise((r) => setImmediate(r));
          await new Promise((r) => setTimeout(r, 5));
        }
        await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
        expect(attacker.closed || attacker.destroyed).toBe(true);
        expect(goawayCode).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
        // Envoy's bound: half of PREMATURE_RESET_STREAMS premature resets, plus the bursts in flight
        // when the GOAWAY came (Node 20's nghttp2 alone let ~1,000 through, then GOAWAY INTERNAL_ERROR).
        expect(opened).toBeLessThanOrEqual(PREMATURE_RESET_STREAMS + 100);
        expect(backend.calls.length - before).toBeLessThan(PREMATURE_RESET_STREAMS);
        const counted = await gw.metrics.registry.getSingleMetricAsString('seldon_gateway_client_errors_total');
        expect(counted).toMatch(/reason="too_many_premature_resets"} 1\b/);
        // The grpc-js client on its own connection: every call answered.
        const outcomes = await Promise.all(normal);
        expect(outcomes.filter((o) => !o.ok).map((o) => details(o).details)).toEqual([]);
        expect((await predict(clients, { strData: 'after' }, meta('ok'))).ok).toBe(true);
      } finally {
        attacker.destroy();
        clients.close();
        await gw.stop();
      }
    }, 30_000);

    it('a client that cancels calls now and then (deadlines) keeps its connection', async () => {
      const gw = await startTestGateway({ manifests: manifests(), resolve: resolve() });
      const clients = grpcClients(`127.0.0.1:${gw.port}`);
      try {
        // 600 calls on one connection, every third cancelled at once: a third premature, not half.
        const all: Promise<Outcome>[] = [];
        for (let i = 0; i < 600; i++) {
          if (i % 3 === 0) {
            const call = clients.seldon.Predict({ strData: 'sleep:50' }, meta('ok'), () => undefined);
            call.on('error', () => undefined);
            setImmediate(() => call.cancel());
          } else all.push(predict(clients, { strData: 'x' }, meta('ok')));
          if (i % 50 === 49) await Promise.all(all.slice(-30));
        }
        const outcomes = await Promise.all(all);
        expect(outcomes.filter((o) => !o.ok).length).toBe(0);
        const counted = await gw.metrics.registry.getSingleMetricAsString('seldon_gateway_client_errors_total');
        expect(counted).not.toContain('reason="too_many_premature_resets"');
      } finally {
        clients.close();
        await gw.stop();
      }
    }, 30_000);
  });
});
