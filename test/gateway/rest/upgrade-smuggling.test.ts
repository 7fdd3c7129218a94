/**
 * The WebSocket smuggling door, tried as an attacker would, over real sockets on both HTTP/1.1
 * servers: a raw client sends an upgrade request on a `allow_upgrade: [websocket]` Mapping and,
 * in the same write or right after it, a second request for `/internal/…`; a model stand-in
 * answers the upgrade with 426, 200, or a 101 for a protocol it was not offered. Whatever the
 * answer, the model receives the upgrade request's head and nothing else, byte for byte; the
 * client reads the model's answer with `connection: close` (or the gateway's 502), then the
 * connection closes (as Envoy drains a connection whose upgrade was refused). A correct 101 gets
 * the client's early bytes only after it. The Upgrade token list is Envoy's: exactly one allowed
 * protocol, else 403; any upgrade on a route that allows none (a Mapping without allow_upgrade,
 * Seldon's generated route, a redirect) is 403 too and its connection closed; `h2c` alone is served
 * as a request. Every upgrade has its access log line.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { LogCapture } from '../../helpers/observability.js';
import { readUntilEnd } from '../../helpers/net.js';
import { FRAME, RawH2 } from '../../helpers/raw-h2.js';

const NS = 'models';
const P = `/seldon/${NS}/ws/smuggle`;
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const SMUGGLED = 'GET /internal/secret HTTP/1.1\r\nHost: internal\r\n\r\n';

const CONFIG = [
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: smuggle\nprefix: ${P}/\nservice: standin.${NS}:8000\nallow_upgrade: [websocket]`,
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: plain\nprefix: /seldon/${NS}/ws/plain/\nservice: standin.${NS}:8000`,
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: moved\nprefix: /seldon/${NS}/ws/moved/\nservice: elsewhere.example\nhost_redirect: true\nallow_upgrade: [websocket]`,
].join('\n---\n');

/** What the model stand-in answers, by the path it receives (the Mapping rewrites its prefix to `/`). */
const ANSWERS: Record<string, string> = {
  '/426': 'HTTP/1.1 426 Upgrade Required\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nnope!',
  '/200': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  '/h2c': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n',
  '/none': 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n',
  '/ws': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
  '/plain': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  // Closed after, as `/slow`: the plain Mapping's pool keeps no connection the stand-in will not answer again.
  '/once': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok',
  // Closed after: the gateway does not pool this connection (the stand-in answers one request per connection).
  '/slow': 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow',
};

/** One connection the model stand-in accepted: every byte it read, and what it had read when it answered. */
interface ModelConnection {
  bytes: Buffer;
  beforeAnswer: Buffer | undefined;
  closed: boolean;
}

/** A model that answers each connection's first request head by its path (ANSWERS), once, and keeps the connection open. */
async function startStandIn(): Promise<{ port: number; connections: ModelConnection[]; release(): void; close(): Promise<void> }> {
  const connections: ModelConnection[] = [];
  /** `/slow` is answered only once the test releases it. */
  let released = false;
  const held: (() => void)[] = [];
  const server = net.createServer((s) => {
    const c: ModelConnection = { bytes: Buffer.alloc(0), beforeAnswer: undefined, closed: false };
    connections.push(c);
    s.on('error', () => undefined);
    s.on('close', () => (c.closed = true));
    s.on('data', (d: Buffer) => {
      c.bytes = Buffer.concat([c.bytes, d]);
      if (c.beforeAnswer !== undefined || c.bytes.indexOf('\r\n\r\n') < 0) return;
      c.beforeAnswer = c.bytes;
      const path = c.bytes.toString('latin1').split(' ')[1]!;
      const answer = (): boolean => s.write(ANSWERS[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      if (path === '/slow' && !released) held.push(answer);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    release: () => {
      released = true;
      for (const a of held.splice(0)) a();
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** The upgrade request's head as the client sends it. */
const upgradeHead = (target: string, id: string, upgrade = 'websocket', extra = ''): string =>
  `GET ${target} HTTP/1.1\r\nHost: gw.example\r\nConnection: Upgrade\r\nUpgrade: ${upgrade}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\nX-Request-Id: ${id}\r\n${extra}\r\n`;

/** The same head as the model must receive it: the route's path, the forwarding fields, the one protocol offered. */
const forwardedHead = (path: string, target: string, id: string): string =>
  `GET ${path} HTTP/1.1\r\nHost: gw.example\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\nX-Request-Id: ${id}\r\n` +
  `x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\nx-envoy-original-path: ${target}\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n`;

/** Read from `socket` until `text` is among what it sent (the whole read returned). */
async function readUntil(socket: net.Socket, text: string): Promise<string> {
  let read = '';
  while (!read.includes(text)) {
    read += await new Promise<string>((r, j) => {
      socket.once('data', (d: Buffer) => r(d.toString('latin1')));
      socket.once('close', () => j(new Error(`closed after ${JSON.stringify(read)}`)));
    });
  }
  return read;
}

describe.each(['gateway', 'node'] as const)('upgrade smuggling (--http1-server %s)', (server) => {
  let model: Awaited<ReturnType<typeof startStandIn>>;
  let gw: TestGateway;
  const logs = new LogCapture();
  let n = 0;
  const nextId = (what: string): string => `${server}-${what}-${++n}`;

  beforeAll(async () => {
    model = await startStandIn();
    gw = await startTestGateway({
      manifests: {
        'ws.yaml': sdep('ws', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CONFIG }),
        'gen.yaml': sdep('gen', NS, { predictors: [{ name: 'main' }] }),
      },
      // Seldon's generated route dials the stand-in too: a relay there would show.
      resolve: { [`standin.${NS}:8000`]: model.port, [`gen-main.${NS}:8000`]: model.port },
      args: ['--http1-server', server],
      accessSink: logs,
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
  });

  /** The access log line of the request with this id (written when its connection closed). */
  async function logged(id: string): Promise<Record<string, unknown>> {
    await waitFor(() => logs.text.includes(`"${id}"`));
    return logs.lines().find((l) => l.request_id === id)!;
  }

  /** The model connection opened by this probe, once the gateway has closed it. */
  async function onlyConnection(before: number): Promise<ModelConnection> {
    await waitFor(() => model.connections.length > before && model.connections[before]!.closed);
    expect(model.connections.length - before).toBe(1);
    return model.connections[before]!;
  }

  it.each([
    ['426', 'HTTP/1.1 426 Upgrade Required\r\nContent-Length: 5\r\nconnection: close\r\n\r\nnope!'],
    ['200', 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nconnection: close\r\n\r\nhello'],
  ])('a %s answer ends the upgrade: the second request in the same write never reaches the model; the client reads the answer, then the close', async (status, answer) => {
    const id = nextId(status);
    const target = `${P}/${status}`;
    const before = model.connections.length;
    const read = await readUntilEnd(gw.port, [upgradeHead(target, id) + SMUGGLED]);
    expect(read).toBe(answer);
    const c = await onlyConnection(before);
    expect(c.bytes.toString('latin1')).toBe(forwardedHead(`/${status}`, target, id));
    expect(await logged(id)).toMatchObject({ method: 'GET', path: target, response_code: Number(status) });
  });

  it('pipelined (the second request in a write of its own, right after): the model still receives the upgrade head alone', async () => {
    const id = nextId('pipelined');
    const target = `${P}/426`;
    const before = model.connections.length;
    const read = await readUntilEnd(gw.port, [upgradeHead(target, id), SMUGGLED, SMUGGLED]);
    expect(read).toBe('HTTP/1.1 426 Upgrade Required\r\nContent-Length: 5\r\nconnection: close\r\n\r\nnope!');
    const c = await onlyConnection(before);
    expect(c.bytes.toString('latin1')).toBe(forwardedHead('/426', target, id));
  });

  it.each([
    ['h2c', 'Upgrade: h2c'],
    ['none', 'no Upgrade'],
  ])('a 101 for another protocol (%s) than the one offered: 502, no tunnel, the model’s connection closed, the bytes after the head never sent', async (path, what) => {
    const id = nextId(path);
    const target = `${P}/${path}`;
    const before = model.connections.length;
    const read = await readUntilEnd(gw.port, [upgradeHead(target, id) + SMUGGLED]);
    const [head, body] = read.split('\r\n\r\n');
    expect(head!.split('\r\n')[0]).toBe('HTTP/1.1 502 Bad Gateway');
    expect(head).toContain('connection: close');
    expect(JSON.parse(body!)).toMatchObject({ status: { code: 502, reason: 'UPSTREAM_BAD_RESPONSE', status: 'FAILURE' } });
    expect(JSON.parse(body!).status.info).toContain(what === 'no Upgrade' ? '(no upgrade)' : 'h2c');
    const c = await onlyConnection(before);
    expect(c.bytes.toString('latin1')).toBe(forwardedHead(`/${path}`, target, id));
    expect(await logged(id)).toMatchObject({ response_code: 502 });
  });

  it('a 101 for the protocol offered: the model gets the head alone before it answers, the client’s early bytes only after; logged as 101 when it closes', async () => {
    const id = nextId('ws');
    const target = `${P}/ws`;
    const before = model.connections.length;
    const socket = net.connect(gw.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((r) => socket.once('connect', r));
    const early = 'early bytes of the new protocol';
    socket.write(upgradeHead(target, id) + early, 'latin1');
    expect(await readUntil(socket, '\r\n\r\n')).toBe('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    await waitFor(() => model.connections[before]?.bytes.toString('latin1').endsWith(early) === true);
    const c = model.connections[before]!;
    expect(c.beforeAnswer!.toString('latin1')).toBe(forwardedHead('/ws', target, id));
    expect(c.bytes.toString('latin1')).toBe(forwardedHead('/ws', target, id) + early);
    socket.destroy();
    expect(await logged(id)).toMatchObject({ response_code: 101, bytes_received: early.length });
  });

  it('dot segments resolved: the model gets the routed path and, as a plain request would, x-envoy-original-path as routed (Envoy normalize_path)', async () => {
    const id = nextId('dots');
    const before = model.connections.length;
    const socket = net.connect(gw.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((r) => socket.once('connect', r));
    socket.write(upgradeHead(`/seldon/${NS}/ws/plain/../smuggle/x/./../ws`, id), 'latin1');
    expect((await readUntil(socket, '\r\n\r\n')).split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
    await waitFor(() => model.connections[before]?.beforeAnswer !== undefined);
    expect(model.connections[before]!.beforeAnswer!.toString('latin1')).toBe(forwardedHead('/ws', `${P}/ws`, id));
    socket.destroy();
  });

  it.each([
    ['websocket, h2c', 'websocket, h2c'],
    ['two Upgrade fields', 'websocket\r\nUpgrade: h2c'],
    ['a protocol the route does not allow', 'foo'],
  ])('%s: 403 (Envoy matches the whole Upgrade value), the connection closed, the model never called', async (_what, upgrade) => {
    const id = nextId('list');
    const before = model.connections.length;
    const read = await readUntilEnd(gw.port, [upgradeHead(`${P}/ws`, id, upgrade) + SMUGGLED]);
    const [head, body] = read.split('\r\n\r\n');
    expect(head!.split('\r\n')[0]).toBe('HTTP/1.1 403 Forbidden');
    expect(head).toContain('connection: close');
    expect(JSON.parse(body!)).toMatchObject({ status: { code: 403, reason: 'FORBIDDEN', status: 'FAILURE' } });
    expect(model.connections.length).toBe(before);
    expect(await logged(id)).toMatchObject({ response_code: 403 });
  });

  it.each([
    ['a Mapping without allow_upgrade', `/seldon/${NS}/ws/plain/ws`, 'models/ws/plain'],
    ['Seldon’s generated route', `/seldon/${NS}/gen/api/v1.0/predictions`, 'models/gen/main'],
    ['a redirect Mapping (even with allow_upgrade)', `/seldon/${NS}/ws/moved/ws`, 'models/ws/moved'],
  ])('an upgrade on %s: 403 (Envoy’s upgrade_failed), the connection closed, nothing behind it read, the model never called', async (_what, target, id) => {
    const rid = nextId('no-upgrade');
    const before = model.connections.length;
    const read = await readUntilEnd(gw.port, [upgradeHead(target, rid) + SMUGGLED, SMUGGLED]);
    const [head, body] = read.split('\r\n\r\n');
    expect(head!.split('\r\n')).toEqual(['HTTP/1.1 403 Forbidden', 'content-type: application/json', `content-length: ${Buffer.byteLength(body!)}`, 'connection: close']);
    expect(JSON.parse(body!)).toEqual({ status: { code: 403, info: `${id} takes no upgrade (allow_upgrade); asked: websocket`, reason: 'FORBIDDEN', status: 'FAILURE' } });
    expect(model.connections.length).toBe(before);
    expect(await logged(rid)).toMatchObject({ path: target, response_code: 403 });
  });

  it('an upgrade on no route: 404 and the connection closed, what follows its head never read as a request', async () => {
    const rid = nextId('unrouted');
    const before = model.connections.length;
    const read = await readUntilEnd(gw.port, [upgradeHead(`/seldon/${NS}/nothing/here`, rid) + SMUGGLED, SMUGGLED]);
    const [head, body] = read.split('\r\n\r\n');
    expect(head!.split('\r\n')).toEqual(['HTTP/1.1 404 Not Found', 'content-type: application/json', `content-length: ${Buffer.byteLength(body!)}`, 'connection: close']);
    expect(JSON.parse(body!)).toMatchObject({ status: { code: 404, reason: 'NO_ROUTE', status: 'FAILURE' } });
    expect(model.connections.length).toBe(before);
    expect(await logged(rid)).toMatchObject({ response_code: 404 });
  });

  it('`Upgrade: websocket` without `Connection: upgrade` on a route without allow_upgrade asks for no upgrade: served as a request, the model gets no Upgrade', async () => {
    const before = model.connections.length;
    const socket = net.connect(gw.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((r) => socket.once('connect', r));
    socket.write(`GET /seldon/${NS}/ws/plain/once HTTP/1.1\r\nHost: gw.example\r\nUpgrade: websocket\r\n\r\n`, 'latin1');
    const read = await readUntil(socket, '\r\n\r\nok');
    socket.destroy();
    expect(read.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    const received = model.connections[before]!.beforeAnswer!.toString('latin1').toLowerCase();
    expect(received.startsWith('get /once http/1.1\r\n')).toBe(true);
    expect(received).not.toContain('upgrade');
  });

  it('an upgrade request with a body: 400, the model never called', async () => {
    const id = nextId('body');
    const before = model.connections.length;
    const read = await readUntilEnd(gw.port, [upgradeHead(`${P}/ws`, id, 'websocket', 'Content-Length: 5\r\n') + 'hello']);
    expect(read.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(model.connections.length).toBe(before);
  });

  it('an upgrade pipelined behind a request still being answered starts after that answer: the answers come in order, the smuggled request nowhere', async () => {
    const id = nextId('behind');
    const target = `${P}/426`;
    const before = model.connections.length;
    const plain = `GET /seldon/${NS}/ws/plain/slow HTTP/1.1\r\nHost: gw.example\r\n\r\n`;
    const done = readUntilEnd(gw.port, [plain + upgradeHead(target, id) + SMUGGLED]);
    await waitFor(() => model.connections.slice(before).some((c) => c.bytes.toString('latin1').startsWith('GET /slow ')));
    model.release();
    const read = await done;
    expect(read.replace(/\r\nx-envoy-upstream-service-time: \d+\r\nDate: [^\r]+\r\nConnection: keep-alive\r\nKeep-Alive: timeout=\d+/, '')).toBe(
      'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslowHTTP/1.1 426 Upgrade Required\r\nContent-Length: 5\r\nconnection: close\r\n\r\nnope!',
    );
    const upgraded = model.connections.slice(before).filter((c) => c.bytes.toString('latin1').startsWith('GET /426 '));
    expect(upgraded.map((c) => c.bytes.toString('latin1'))).toEqual([forwardedHead('/426', target, id)]);
  });

  it('`Upgrade: WebSocket` (any case) is the protocol allowed: offered as `websocket`', async () => {
    const id = nextId('case');
    const target = `${P}/ws`;
    const before = model.connections.length;
    const socket = net.connect(gw.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((r) => socket.once('connect', r));
    socket.write(upgradeHead(target, id, 'WebSocket'), 'latin1');
    expect((await readUntil(socket, '\r\n\r\n')).split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
    socket.destroy();
    expect(model.connections[before]!.beforeAnswer!.toString('latin1')).toBe(forwardedHead('/ws', target, id));
  });

  it.each([
    ['a Mapping that allows upgrades', `${P}/once`],
    ['a Mapping that allows none', `/seldon/${NS}/ws/plain/once`],
  ])('`Upgrade: h2c` alone on %s is dropped and the request served as a request (Envoy takes no h2c upgrade): the model gets no Upgrade', async (_what, target) => {
    const id = nextId('h2c-only');
    const before = model.connections.length;
    const socket = net.connect(gw.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((r) => socket.once('connect', r));
    socket.write(upgradeHead(target, id, 'h2c'), 'latin1');
    const read = await readUntil(socket, '\r\n\r\nok');
    socket.destroy();
    expect(read.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    const received = model.connections[before]!.beforeAnswer!.toString('latin1').toLowerCase();
    expect(received.startsWith(`get /${target.split('/').pop()} http/1.1\r\n`)).toBe(true);
    expect(received).not.toContain('upgrade');
  });
});

/**
 * HTTP/2's extended CONNECT (RFC 8441, WebSocket over HTTP/2): the gateway does not offer it (no
 * SETTINGS_ENABLE_CONNECT_PROTOCOL), so a stream that sends `:protocol` anyway is malformed (RFC
 * 8441 §3) and reset before it reaches the REST path: the model is never called, on any route.
 */
describe('HTTP/2 extended CONNECT', () => {
  let model: Awaited<ReturnType<typeof startStandIn>>;
  let gw: TestGateway;

  beforeAll(async () => {
    model = await startStandIn();
    gw = await startTestGateway({
      manifests: { 'ws.yaml': sdep('ws', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CONFIG }) },
      resolve: { [`standin.${NS}:8000`]: model.port },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
  });

  it('not offered in SETTINGS; a `:protocol` stream (with its DATA) is reset and nothing reaches the model; a plain stream after it is served', async () => {
    const h2 = await RawH2.connect(gw.port);
    try {
      await waitFor(() => h2.frames.some((f) => f.type === FRAME.SETTINGS && (f.flags & 1) === 0));
      const settings = h2.frames.find((f) => f.type === FRAME.SETTINGS && (f.flags & 1) === 0)!.payload;
      const ids: number[] = [];
      for (let i = 0; i + 6 <= settings.length; i += 6) ids.push(settings.readUInt16BE(i));
      expect(ids).not.toContain(0x8);
      const before = model.connections.length;
      h2.headers(
        1,
        [
          [':method', 'CONNECT'],
          [':protocol', 'websocket'],
          [':scheme', 'http'],
          [':path', `${P}/ws`],
          [':authority', 'gw.example'],
          ['sec-websocket-version', '13'],
        ],
        false,
      );
      h2.data(1, Buffer.from(SMUGGLED, 'latin1'), false);
      expect(await h2.rstOf(1)).toBe(1 /* PROTOCOL_ERROR */);
      h2.headers(
        3,
        [
          [':method', 'GET'],
          [':scheme', 'http'],
          [':path', `/seldon/${NS}/ws/plain/plain`],
          [':authority', 'gw.example'],
        ],
        true,
      );
      expect((await h2.bodyOf(3)).toString()).toBe('ok');
      expect(model.connections.length - before).toBe(1);
      expect(model.connections[before]!.beforeAnswer!.toString('latin1').startsWith('GET /plain HTTP/1.1\r\n')).toBe(true);
    } finally {
      h2.close();
    }
  });
});

/** The Module's ip_deny holds for upgrades as for every request (Envoy's RBAC filter runs before the router): 403, the model never called. */
describe('ip_deny and upgrades', () => {
  let model: Awaited<ReturnType<typeof startStandIn>>;
  let gw: TestGateway;
  let dir: string;

  beforeAll(async () => {
    model = await startStandIn();
    dir = mkdtempSync(join(tmpdir(), 'sgw-ipdeny-'));
    const file = join(dir, 'module.yaml');
    writeFileSync(file, 'apiVersion: getambassador.io/v3alpha1\nkind: Module\nname: ambassador\nconfig:\n  ip_deny:\n    - remote: 99.98.0.0/16\n');
    gw = await startTestGateway({
      manifests: { 'ws.yaml': sdep('ws', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CONFIG }) },
      resolve: { [`standin.${NS}:8000`]: model.port },
      args: ['--ambassador-module', file, '--trusted-proxies', '127.0.0.0/8'],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a denied client’s upgrade: 403, the connection closed, the model never called; an allowed one is relayed', async () => {
    const before = model.connections.length;
    const read = await readUntilEnd(gw.port, [upgradeHead(`${P}/ws`, 'denied', 'websocket', 'X-Forwarded-For: 99.98.1.2\r\n') + SMUGGLED]);
    const [head, body] = read.split('\r\n\r\n');
    expect(head!.split('\r\n')[0]).toBe('HTTP/1.1 403 Forbidden');
    expect(JSON.parse(body!)).toMatchObject({ status: { code: 403, reason: 'FORBIDDEN' } });
    expect(model.connections.length).toBe(before);
    const socket = net.connect(gw.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((r) => socket.once('connect', r));
    socket.write(upgradeHead(`${P}/ws`, 'allowed', 'websocket', 'X-Forwarded-For: 10.1.2.3\r\n'), 'latin1');
    expect((await readUntil(socket, '\r\n\r\n')).split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
    socket.destroy();
  });
});
