/**
 * An upgrade's upstream side over real sockets, as a model stand-in that misbehaves sees it: a model
 * that accepts the upgrade head and never answers holds neither socket past the route's timeout
 * (`timeout_ms`: 504 with the gateway's JSON, both connections closed, nothing after the head sent);
 * the upstream's circuit breaker admits a tunnel for its whole life (a second upgrade over
 * `max_requests` gets 503 with `x-envoy-overloaded`, the model never called) and gets its slot back
 * when the model closes mid-tunnel (the client reads the model's last bytes, then the close; the next
 * upgrade is admitted, the open connection gauge is back where it was); and a tunnel quiet for the
 * route's `idle_timeout_ms` is closed on both sides.
 */
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { readUntilEnd } from '../../helpers/net.js';
import { waitUntil } from '../../helpers/wait.js';

const NS = 'models';
const P = `/seldon/${NS}/wsu`;
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

const mapping = (name: string, extra: string): string =>
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: ${name}\nprefix: ${P}/${name}/\nservice: ${name}.${NS}:8000\nallow_upgrade: [websocket]\n${extra}`;
const CONFIG = [mapping('silent', 'timeout_ms: 300'), mapping('tight', 'circuit_breakers:\n  - max_requests: 1'), mapping('idle', 'idle_timeout_ms: 1000')].join('\n---\n');

/** One connection the stand-in accepted: every byte it read, and whether it has closed. */
interface ModelConnection {
  bytes: string;
  closed: boolean;
}

/**
 * A model by the path it receives: `/silent` reads and never answers; `/ws` answers 101, then on
 * `bye` writes `last words` and closes its connection (other bytes are echoed).
 */
async function startStandIn(): Promise<{ port: number; connections: ModelConnection[]; close(): Promise<void> }> {
  const connections: ModelConnection[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    const c: ModelConnection = { bytes: '', closed: false };
    connections.push(c);
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => {
      c.closed = true;
      sockets.delete(s);
    });
    let open = false;
    s.on('data', (d: Buffer) => {
      c.bytes += d.toString('latin1');
      if (!open) {
        if (!c.bytes.includes('\r\n\r\n') || c.bytes.startsWith('GET /silent ')) return;
        open = true;
        s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
        return;
      }
      if (d.toString('latin1') === 'bye') s.end('last words');
      else s.write(d);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

const upgradeHead = (target: string): string =>
  `GET ${target} HTTP/1.1\r\nHost: gw.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\nX-Request-Id: probe\r\n\r\n`;

/** What the model must receive of `upgradeHead(target)` on this test's Mappings (their prefix rewritten to `/`). */
const forwardedHead = (path: string, target: string): string =>
  `GET ${path} HTTP/1.1\r\nHost: gw.example\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\nX-Request-Id: probe\r\n` +
  `x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\nx-envoy-original-path: ${target}\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n`;

/** A client connection with everything it has read so far. */
interface Client {
  readonly socket: net.Socket;
  read: string;
  closed: boolean;
}

async function connect(port: number, bytes: string): Promise<Client> {
  const socket = net.connect(port, '127.0.0.1');
  const c: Client = { socket, read: '', closed: false };
  socket.on('error', () => undefined);
  socket.on('data', (d: Buffer) => (c.read += d.toString('latin1')));
  socket.on('close', () => (c.closed = true));
  await new Promise<void>((r) => socket.once('connect', r));
  socket.write(bytes, 'latin1');
  return c;
}

describe.each(['gateway', 'node'] as const)("an upgrade's upstream (--http1-server %s)", (server) => {
  let model: Awaited<ReturnType<typeof startStandIn>>;
  let gw: TestGateway;

  beforeAll(async () => {
    model = await startStandIn();
    gw = await startTestGateway({
      manifests: { 'wsu.yaml': sdep('wsu', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CONFIG }) },
      resolve: { [`silent.${NS}:8000`]: model.port, [`tight.${NS}:8000`]: model.port, [`idle.${NS}:8000`]: model.port },
      args: ['--http1-server', server],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
  });

  it('a model that never answers the upgrade: 504 at the route timeout, both connections closed, nothing after the head sent', async () => {
    const series = `seldon_gateway_timeouts_total{namespace="${NS}",deployment="wsu",protocol="rest"}`;
    const timeouts = await metric(gw.adminUrl, series);
    const before = model.connections.length;
    const target = `${P}/silent/silent`;
    const read = await readUntilEnd(gw.port, [`${upgradeHead(target)}early bytes`]);
    const [head, body] = read.split('\r\n\r\n');
    expect(head!.split('\r\n')).toEqual(['HTTP/1.1 504 Gateway Timeout', 'content-type: application/json', `content-length: ${Buffer.byteLength(body!)}`, 'connection: close']);
    expect(JSON.parse(body!)).toEqual({ status: { code: 504, info: 'models/wsu/silent did not answer within 300 ms', reason: 'UPSTREAM_TIMEOUT', status: 'FAILURE' } });
    await waitFor(() => model.connections[before]?.closed === true);
    expect(model.connections.length - before).toBe(1);
    expect(model.connections[before]!.bytes).toBe(forwardedHead('/silent', target));
    expect((await metric(gw.adminUrl, series)) - timeouts).toBe(1);
  });

  it('the breaker holds a tunnel’s slot: over max_requests 503 with x-envoy-overloaded and the model never called; the model closing mid-tunnel gives it back', async () => {
    const open = `seldon_gateway_open_connections{listener="public",protocol="http1"}`;
    const baseline = await metric(gw.adminUrl, open);
    const before = model.connections.length;
    const first = await connect(gw.port, upgradeHead(`${P}/tight/ws`));
    await waitFor(() => first.read.includes('\r\n\r\n'));
    expect(first.read).toBe('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');

    const refused = await readUntilEnd(gw.port, [`${upgradeHead(`${P}/tight/ws`)}early bytes`]);
    const [head, body] = refused.split('\r\n\r\n');
    expect(head!.split('\r\n')).toEqual([
      'HTTP/1.1 503 Service Unavailable',
      'content-type: application/json',
      `content-length: ${Buffer.byteLength(body!)}`,
      'x-envoy-overloaded: true',
      'connection: close',
    ]);
    expect(JSON.parse(body!)).toEqual({ status: { code: 503, info: 'circuit breaker open for models/wsu/tight: max_requests (1) reached', reason: 'UPSTREAM_OVERFLOW', status: 'FAILURE' } });
    expect(model.connections.length - before).toBe(1);

    // Mid-tunnel the model says its last words and closes: the client reads them, then the close.
    first.socket.write('bye');
    await waitFor(() => first.closed);
    expect(first.read).toBe('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nlast words');
    expect(model.connections[before]!.bytes).toBe(forwardedHead('/ws', `${P}/tight/ws`) + 'bye');

    // Its slot is back: the next upgrade is admitted and relayed.
    const next = await connect(gw.port, upgradeHead(`${P}/tight/ws`));
    await waitFor(() => next.read.includes('\r\n\r\n'));
    expect(next.read.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
    next.socket.write('echo');
    await waitFor(() => next.read.endsWith('echo'));
    next.socket.destroy();
    await waitFor(() => model.connections.slice(before).every((c) => c.closed));
    expect(model.connections.length - before).toBe(2);
    await waitUntil(async () => (await metric(gw.adminUrl, open)) === baseline);
  });

  it('a tunnel quiet for the route’s idle_timeout_ms: both connections closed', async () => {
    const before = model.connections.length;
    const client = await connect(gw.port, upgradeHead(`${P}/idle/ws`));
    await waitFor(() => client.read.includes('\r\n\r\n'));
    client.socket.write('ping');
    await waitFor(() => client.read.endsWith('ping'));
    await waitFor(() => client.closed && model.connections[before]?.closed === true);
    expect(client.read).toBe('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nping');
    expect(model.connections[before]!.bytes).toBe(forwardedHead('/ws', `${P}/idle/ws`) + 'ping');
  });
});
