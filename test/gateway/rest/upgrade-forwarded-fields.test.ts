/**
 * An upgrade request reaches its model with what a plain request of the same route gets from the
 * ambassador Module's edge keys and its Mapping, byte for byte: X-Forwarded-For as the Module says
 * (`use_remote_address: false`: a trusted peer's list as sent), the gateway's own x-request-id
 * (`preserve_external_request_id: false`), the Host as matched (`strip_matching_host_port`) or the
 * Mapping's `host_rewrite`, the Mapping's header edits, `x-envoy-original-path`; then its
 * `connection: upgrade` and `upgrade: websocket`. The Module's refusals hold for it as for any request:
 * `reject_requests_with_escaped_slashes` (400) and `x_forwarded_proto_redirect` (plain HTTP: 403, as
 * Envoy's redirect route takes no upgrade), the connection closed and the model never called.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { readUntilEnd } from '../../helpers/net.js';
import { startWebSocketEcho, type ReceivedHead, type WebSocketEcho } from '../../helpers/websocket-echo.js';

const NS = 'models';
const P = `/seldon/${NS}/wsf`;
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

const CONFIG = [
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: edited\nprefix: ${P}/edited/\nservice: echo.${NS}:8000\nallow_upgrade: [websocket]\nhost_rewrite: model.internal\nadd_request_headers:\n  x-added: yes\nremove_request_headers: [x-drop]`,
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: kept\nprefix: ${P}/kept/\nservice: echo.${NS}:8000\nallow_upgrade: [websocket]`,
].join('\n---\n');

const MODULE = [
  'apiVersion: getambassador.io/v3alpha1',
  'kind: Module',
  'name: ambassador',
  'config:',
  '  use_remote_address: false',
  '  preserve_external_request_id: false',
  '  strip_matching_host_port: true',
  '  reject_requests_with_escaped_slashes: true',
  '  x_forwarded_proto_redirect: true',
].join('\n');

/** A head's fields as `name: value` lines, names lower case, the request id as `<id>` (it is the gateway's own, random). */
const fieldsOf = (h: ReceivedHead): string[] => h.headers.map(([k, v]) => `${k.toLowerCase()}: ${k.toLowerCase() === 'x-request-id' ? '<id>' : v}`);

describe.each(['gateway', 'node'] as const)('an upgrade’s head as a plain request’s (--http1-server %s)', (server) => {
  let echo: WebSocketEcho;
  let gw: TestGateway;
  let dir: string;

  beforeAll(async () => {
    echo = await startWebSocketEcho();
    dir = mkdtempSync(join(tmpdir(), 'sgw-upgrade-fields-'));
    const file = join(dir, 'module.yaml');
    writeFileSync(file, MODULE);
    gw = await startTestGateway({
      manifests: { 'wsf.yaml': sdep('wsf', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CONFIG }) },
      resolve: { [`echo.${NS}:8000`]: echo.port },
      args: ['--ambassador-module', file, '--http1-server', server],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await echo?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The head the model received for one request of `fields` (after the request line and Host), the connection then closed. */
  async function received(target: string, fields: string): Promise<{ answer: string; head: ReceivedHead }> {
    const before = echo.heads.length;
    const socket = net.connect(gw.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((r) => socket.once('connect', r));
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    socket.write(`GET ${target} HTTP/1.1\r\nHost: gw.example:${gw.port}\r\n${fields}\r\n`, 'latin1');
    await waitFor(() => echo.heads.length > before && answer.includes('\r\n\r\n'));
    socket.destroy();
    return { answer, head: echo.heads[before]! };
  }

  const CLIENT = `X-Forwarded-For: 10.9.8.7\r\nX-Forwarded-Proto: https\r\nX-Request-Id: chosen-by-client\r\nX-Drop: secret\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n`;

  it.each([
    ['edited', 'model.internal', ['x-drop'], ['x-added: yes']],
    ['kept', 'gw.example', [], []],
  ])('Mapping %s: the model gets the plain request’s fields, then connection and upgrade', async (name, host, dropped, added) => {
    const target = `${P}/${name}/chat?room=1`;
    const plain = await received(target, CLIENT);
    const upgrade = await received(target, `${CLIENT}Connection: Upgrade\r\nUpgrade: websocket\r\n`);
    expect(plain.answer.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    expect(upgrade.answer.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
    expect(upgrade.head.requestLine).toBe(plain.head.requestLine);
    expect(upgrade.head.requestLine).toBe('GET /chat?room=1 HTTP/1.1');
    // The gateway's id where the client's stood; the forwarding fields after the client's own.
    const expected = [
      `host: ${host}`,
      'x-request-id: <id>',
      ...(dropped.length === 0 ? ['x-drop: secret'] : []),
      'sec-websocket-version: 13',
      `sec-websocket-key: ${KEY}`,
      'x-forwarded-for: 10.9.8.7',
      'x-forwarded-proto: https',
      `x-envoy-original-path: ${target}`,
      ...added,
    ];
    // The plain request's connection is the pool's (kept alive); the upgrade's is its own.
    expect(fieldsOf(plain.head)).toEqual([...expected, 'connection: keep-alive']);
    expect(fieldsOf(upgrade.head)).toEqual([...expected, 'connection: upgrade', 'upgrade: websocket']);
    for (const h of [plain.head, upgrade.head])
      expect(h.headers.find(([k]) => k.toLowerCase() === 'x-request-id')![1]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it.each([
    ['an escaped slash (reject_requests_with_escaped_slashes)', `${P}/kept/a%2Fb`, 'X-Forwarded-Proto: https\r\n', 400, 'BAD_REQUEST'],
    ['plain HTTP under x_forwarded_proto_redirect', `${P}/kept/chat`, '', 403, 'FORBIDDEN'],
  ])('%s: the upgrade is refused, the connection closed, the model never called', async (_what, target, proto, status, reason) => {
    const before = echo.heads.length;
    const read = await readUntilEnd(gw.port, [
      `GET ${target} HTTP/1.1\r\nHost: gw.example\r\n${proto}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n\r\nGET /internal HTTP/1.1\r\nHost: internal\r\n\r\n`,
    ]);
    const [head, body] = read.split('\r\n\r\n');
    expect(head!.split('\r\n')[0]).toBe(`HTTP/1.1 ${status} ${status === 400 ? 'Bad Request' : 'Forbidden'}`);
    expect(head).toContain('connection: close');
    expect(JSON.parse(body!)).toMatchObject({ status: { code: status, reason, status: 'FAILURE' } });
    expect(echo.heads.length).toBe(before);
  });
});
