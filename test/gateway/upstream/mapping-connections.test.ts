/**
 * A Mapping's connection settings over real sockets
 * (docs/routing.md#a-mappings-upstream-balancing-connections-and-tls): `cluster_idle_timeout_ms`
 * closes an idle upstream connection (REST) or session (gRPC) while the gateway's default keeps
 * others open; `cluster_max_connection_lifetime_ms` keeps an older connection from being reused and
 * closes it when idle at that age; `connect_timeout_ms` fails a connect that never completes (a TLS
 * upstream that accepts and never answers the handshake, as the client's own tests do) with 503 /
 * UNAVAILABLE, long before the gateway's --connect-timeout.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { answerOk, md, predict } from '../../helpers/grpc.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { grpcMapping, restMapping } from '../../helpers/mappings.js';

const NS = 'models';
let gw: TestGateway;
let url: string;
let clients: GrpcClients;

/** A REST model that records each connection: when it opened and closed (performance.now() ms). */
interface Model {
  readonly port: number;
  readonly conns: { opened: number; closed?: number; socket: Socket }[];
  close(): Promise<void>;
}

async function restModel(answerAfterMs = 0): Promise<Model> {
  const conns: Model['conns'] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{"ndarray":[1]}}'), answerAfterMs));
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (socket: Socket) => {
    const c: Model['conns'][number] = { opened: performance.now(), socket };
    conns.push(c);
    socket.once('close', () => (c.closed = performance.now()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    conns,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

let idle: Model;
let life: Model;
let plain: Model;
let h2: { port: number; sessions: { opened: number; closed?: number }[]; server: http2.Http2Server };
/** Accepts TCP and never answers a TLS handshake. */
let silent: net.Server;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  idle = await restModel();
  life = await restModel(30);
  plain = await restModel();
  const sessions: { opened: number; closed?: number }[] = [];
  const server = http2.createServer();
  const h2Sockets = new Set<Socket>();
  server.on('connection', (sk: Socket) => h2Sockets.add(sk));
  server.on('session', (s) => {
    const rec: { opened: number; closed?: number } = { opened: performance.now() };
    sessions.push(rec);
    s.on('error', () => undefined);
    s.once('close', () => (rec.closed = performance.now()));
  });
  server.on('stream', (s) => {
    s.on('error', () => undefined);
    s.resume();
    s.on('end', () => answerOk(s, 'h2'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  h2 = { port: (server.address() as AddressInfo).port, sessions, server };
  const held = new Set<Socket>();
  silent = net.createServer((sk) => {
    held.add(sk);
    sk.on('error', () => undefined);
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const silentPort = (silent.address() as AddressInfo).port;
  closers.push(
    () => idle.close(),
    () => life.close(),
    () => plain.close(),
    () => {
      for (const sk of held) sk.destroy();
      return new Promise((r) => silent.close(r));
    },
    () => {
      for (const sk of h2Sockets) sk.destroy();
      return new Promise((r) => server.close(r));
    },
  );
  const mappings = [
    restMapping('idle', NS, `idle-model:${idle.port}`, ['cluster_idle_timeout_ms: 300']),
    restMapping('plain', NS, `plain-model:${plain.port}`, []),
    restMapping('life', NS, `life-model:${life.port}`, ['cluster_max_connection_lifetime_ms: 10']),
    restMapping('life-idle', NS, `plain-model:${plain.port}`, ['cluster_max_connection_lifetime_ms: 400']),
    restMapping('connect', NS, `https://silent-model:${silentPort}`, ['connect_timeout_ms: 200']),
    grpcMapping('grpc-idle', NS, `h2-model:${h2.port}`, ['cluster_idle_timeout_ms: 300']),
    grpcMapping('grpc-connect', NS, `https://silent-model:${silentPort}`, ['connect_timeout_ms: 200']),
  ].join('\n---\n');
  gw = await startTestGateway({
    manifests: { 'conns.json': sdep('conns', NS, { predictors: [{ name: 'default', graph: { name: 'model', type: 'MODEL' } }] }, { 'seldon.io/ambassador-config': mappings }) },
    resolve: Object.fromEntries(
      (
        [
          ['idle-model', idle.port],
          ['plain-model', plain.port],
          ['life-model', life.port],
          ['h2-model', h2.port],
          ['silent-model', silentPort],
        ] as const
      ).map(([svc, port]) => [`${svc}.${NS}:${port}`, port]),
    ),
    args: ['--error-detail', 'internal'],
  });
  url = gw.url;
  clients = grpcClients(`127.0.0.1:${gw.port}`);
  for (let i = 0; i < 100 && (await post('plain')).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
});

afterAll(async () => {
  clients?.close();
  await gw?.stop();
  for (const c of closers) await c();
});

async function post(name: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`${url}/seldon/${NS}/${name}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":{"ndarray":[1]}}' });
  return { status: r.status, body: await r.text() };
}

/** Resolves when `c` has closed (event-driven: polled on the loop, no fixed wait). */
const closedOf = async (c: { closed?: number }, ms = 5000): Promise<number> => {
  const end = performance.now() + ms;
  while (c.closed === undefined) {
    if (performance.now() > end) throw new Error(`not closed within ${ms} ms`);
    await new Promise((r) => setImmediate(r));
  }
  return c.closed;
};

describe('cluster_idle_timeout_ms', () => {
  it('REST: the connection closes once idle for 300 ms; the default route keeps its own open', async () => {
    expect((await post('plain')).status).toBe(200);
    const before = idle.conns.length;
    const sent = performance.now();
    expect((await post('idle')).status).toBe(200);
    expect(idle.conns.length).toBe(before + 1);
    const c = idle.conns.at(-1)!;
    const closed = await closedOf(c);
    expect(closed - sent).toBeGreaterThanOrEqual(290);
    expect(closed - sent).toBeLessThan(3000);
    // The gateway closed it (the model keeps connections 60 s); the plain route's is still open.
    expect(plain.conns.some((p) => p.closed === undefined)).toBe(true);
  });

  it('gRPC: the session closes once idle for 300 ms', async () => {
    const sent = performance.now();
    const o = await predict(clients, { strData: 'x' }, md({ seldon: 'grpc-idle', namespace: NS }));
    expect(o.ok).toBe(true);
    const s = h2.sessions.at(-1)!;
    const closed = await closedOf(s);
    expect(closed - sent).toBeGreaterThanOrEqual(290);
    expect(closed - sent).toBeLessThan(3000);
  });
});

describe('cluster_max_connection_lifetime_ms', () => {
  it('a connection older than the lifetime is not reused: two requests in a row, two connections (the default reuses one)', async () => {
    const before = life.conns.length;
    expect((await post('life')).status).toBe(200);
    expect((await post('life')).status).toBe(200);
    expect(life.conns.length).toBe(before + 2);
    const plainBefore = plain.conns.filter((c) => c.closed === undefined).length;
    expect((await post('plain')).status).toBe(200);
    expect((await post('plain')).status).toBe(200);
    expect(plain.conns.filter((c) => c.closed === undefined).length).toBe(Math.max(plainBefore, 1));
  });

  it('an idle connection closes when it reaches the lifetime', async () => {
    const before = plain.conns.length;
    expect((await post('life-idle')).status).toBe(200);
    // Its own upstream (the key differs): a new connection to the same model.
    expect(plain.conns.length).toBe(before + 1);
    const c = plain.conns.at(-1)!;
    const closed = await closedOf(c);
    expect(closed - c.opened).toBeGreaterThanOrEqual(390);
    expect(closed - c.opened).toBeLessThan(3000);
  });
});

describe('connect_timeout_ms', () => {
  it('REST: a connect that never completes fails after 200 ms with 503, not the gateway’s 3 s', async () => {
    const sent = performance.now();
    const r = await post('connect');
    const took = performance.now() - sent;
    expect(r.status).toBe(503);
    expect(r.body).toContain('UPSTREAM_CONNECT_TIMEOUT');
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(2500);
  });

  it('gRPC: the same connect fails with UNAVAILABLE after 200 ms', async () => {
    const sent = performance.now();
    const o = await predict(clients, { strData: 'x' }, md({ seldon: 'grpc-connect', namespace: NS }));
    const took = performance.now() - sent;
    expect(o.ok).toBe(false);
    if (!o.ok) {
      expect(o.error.code).toBe(grpc.status.UNAVAILABLE);
      expect(o.error.details).toContain('ETIMEDOUT');
    }
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(2500);
  });
});
