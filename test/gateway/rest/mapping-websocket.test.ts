/**
 * WebSocket upgrades on a Mapping with `allow_upgrade: [websocket]` or `use_websocket: true`, over
 * real sockets on both HTTP/1.1 servers: the model receives the handshake with its upgrade fields,
 * the forwarding fields and the Mapping's edits; the client gets the model's 101 (with the Mapping's
 * answer edits); messages are relayed both ways (Node's own WebSocket client against a minimal RFC
 * 6455 echo model, as Emissary's WebSocketMapping test sends "one", "two", "three"), and a close
 * on either side closes the other. On a route without it the upgrade is refused (403, Envoy's
 * "upgrade_failed") and the model never called.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { freePort } from '../../helpers/net.js';
import { converse, frame, readFrames, startWebSocketEcho, type WebSocketEcho } from '../../helpers/websocket-echo.js';

const NS = 'models';
const P = `/seldon/${NS}/ws`;

const CONFIG = [
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: allowed\nprefix: ${P}/allowed/\nservice: echo.${NS}:8000\nallow_upgrade: [websocket]\nadd_request_headers:\n  x-added: yes\nadd_response_headers:\n  x-route: allowed`,
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: legacy\nprefix: ${P}/legacy/\nservice: echo.${NS}:8000\nuse_websocket: true`,
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: down\nprefix: ${P}/down/\nservice: down.${NS}:8000\nallow_upgrade: [websocket]`,
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: closing\nprefix: ${P}/closing/\nservice: closing.${NS}:8000\nallow_upgrade: [websocket]`,
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: plain\nprefix: ${P}/plain/\nservice: echo.${NS}:8000`,
].join('\n---\n');

/** A raw handshake: the answer head's lines, and the socket with any bytes after the head. */
async function handshake(port: number, target: string, key: string): Promise<{ lines: string[]; socket: net.Socket; rest: Buffer }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise<void>((r) => socket.once('connect', r));
  socket.write(`GET ${target} HTTP/1.1\r\nHost: gw.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`);
  let buf: Buffer = Buffer.alloc(0);
  for (;;) {
    const chunk = await new Promise<Buffer | null>((r) => {
      socket.once('data', r);
      socket.once('close', () => r(null));
    });
    if (chunk === null) throw new Error(`closed before an answer head: ${buf.toString('latin1')}`);
    buf = Buffer.concat([buf, chunk]);
    const end = buf.indexOf('\r\n\r\n');
    if (end >= 0) return { lines: buf.toString('latin1', 0, end).split('\r\n'), socket, rest: buf.subarray(end + 4) };
  }
}

describe.each(['gateway', 'node'] as const)('Mapping WebSocket upgrades (--http1-server %s)', (server) => {
  let echo: WebSocketEcho;
  let gw: TestGateway;
  /** A model that closes every connection as soon as it has read a request head. */
  let closing: net.Server;

  beforeAll(async () => {
    echo = await startWebSocketEcho();
    closing = net.createServer((s) => s.once('data', () => s.end()));
    await new Promise<void>((r) => closing.listen(0, '127.0.0.1', r));
    gw = await startTestGateway({
      manifests: { 'ws.yaml': sdep('ws', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CONFIG }) },
      resolve: { [`echo.${NS}:8000`]: echo.port, [`down.${NS}:8000`]: await freePort(), [`closing.${NS}:8000`]: (closing.address() as net.AddressInfo).port },
      args: ['--http1-server', server],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await echo?.close();
    await new Promise((r) => closing?.close(r));
  });

  it('the model gets the handshake with its upgrade fields and the Mapping’s edits; the client the model’s 101 with the answer edits; frames relayed both ways', async () => {
    const key = randomBytes(16).toString('base64');
    const before = echo.heads.length;
    const series = `seldon_gateway_requests_total{namespace="${NS}",deployment="ws",predictor="allowed",protocol="rest",kind="primary",code="101"}`;
    const counted = await metric(gw.adminUrl, series);
    const { lines, socket, rest } = await handshake(gw.port, `${P}/allowed/chat?room=1`, key);
    try {
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      expect((await metric(gw.adminUrl, series)) - counted).toBe(1);
      expect(lines).toEqual(['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept}`, 'X-Model: echo', 'x-route: allowed']);
      const head = echo.heads[before]!;
      expect(head.requestLine).toBe('GET /chat?room=1 HTTP/1.1');
      const seen = head.headers.map(([k, v]) => `${k.toLowerCase()}: ${k.toLowerCase() === 'x-request-id' ? '<id>' : v}`);
      expect(seen).toEqual([
        'host: gw.example',
        'sec-websocket-version: 13',
        `sec-websocket-key: ${key}`,
        'x-forwarded-for: 127.0.0.1',
        'x-forwarded-proto: http',
        `x-envoy-original-path: ${P}/allowed/chat?room=1`,
        'x-request-id: <id>',
        'x-added: yes',
        'connection: upgrade',
        'upgrade: websocket',
      ]);
      // A masked text frame out, the echo back (unmasked, as a server sends it).
      expect(rest.length).toBe(0);
      socket.write(frame(1, Buffer.from('hello'), randomBytes(4)));
      let buf: Buffer = Buffer.alloc(0);
      while (readFrames(buf).frames.length === 0) buf = Buffer.concat([buf, await new Promise<Buffer>((r) => socket.once('data', r))]);
      expect(readFrames(buf).frames).toEqual([{ opcode: 1, payload: Buffer.from('hello') }]);
    } finally {
      socket.destroy();
    }
  });

  it('Node’s WebSocket client: "one", "two", "three" come back in order (allow_upgrade and use_websocket)', async () => {
    expect(await converse(`ws://127.0.0.1:${gw.port}${P}/allowed/`, ['one', 'two', 'three'])).toEqual(['one', 'two', 'three']);
    expect(await converse(`ws://127.0.0.1:${gw.port}${P}/legacy/`, ['one', 'two', 'three'])).toEqual(['one', 'two', 'three']);
  });

  it('the client closing its connection closes the model’s', async () => {
    const closedBefore = echo.closed();
    const { socket } = await handshake(gw.port, `${P}/allowed/`, randomBytes(16).toString('base64'));
    socket.destroy();
    await waitFor(() => echo.closed() > closedBefore);
  });

  it('a model that cannot be reached, or closes before answering: the client gets the gateway’s 503', async () => {
    const refused = await handshake(gw.port, `${P}/down/`, randomBytes(16).toString('base64'));
    refused.socket.destroy();
    expect(refused.lines[0]).toBe('HTTP/1.1 503 Service Unavailable');
    const closing = await handshake(gw.port, `${P}/closing/`, randomBytes(16).toString('base64'));
    closing.socket.destroy();
    expect(closing.lines[0]).toBe('HTTP/1.1 503 Service Unavailable');
    expect(closing.lines).toContain('connection: close');
  });

  it('a route without allow_upgrade: 403 and the connection closed (Envoy’s upgrade_failed), the model never called', async () => {
    const before = echo.heads.length;
    const { lines, socket, rest } = await handshake(gw.port, `${P}/plain/x`, randomBytes(16).toString('base64'));
    await new Promise<void>((r) => (socket.destroyed ? r() : socket.once('close', () => r())));
    expect(lines[0]).toBe('HTTP/1.1 403 Forbidden');
    expect(lines).toContain('connection: close');
    expect(JSON.parse(rest.toString())).toEqual({
      status: { code: 403, info: 'models/ws/plain takes no upgrade (allow_upgrade); asked: websocket', reason: 'FORBIDDEN', status: 'FAILURE' },
    });
    expect(echo.heads.length).toBe(before);
  });
});
