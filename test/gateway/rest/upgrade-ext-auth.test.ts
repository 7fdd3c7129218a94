/**
 * WebSocket upgrades behind the external auth service, as Emissary's AuthenticationWebsocketTest
 * (t_extauth.py) has them: an AuthService with `path_prefix: /extauth` and an allowed request
 * header, a `use_websocket: true` Mapping; a plain request reaches the model as a request, the
 * WebSocket conversation ("one", "two", "three") is relayed after the check. Beyond the KAT test:
 * the check is asked for the upgrade request (its path under the prefix), the auth service's
 * identity header reaches the model in the handshake, and a denial is the client's answer (as the
 * auth service gave it), the model never called, the connection closed.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { listenLocal, readUntilEnd } from '../../helpers/net.js';
import { converse, startWebSocketEcho, type WebSocketEcho } from '../../helpers/websocket-echo.js';

const NS = 'models';
const P = `/seldon/${NS}/authws`;

/** kat-server's auth service, as the KAT test uses it: allowed unless the request asks for another status. */
async function startAuthService(): Promise<{ port: number; checks: { method: string; url: string }[]; close(): Promise<void> }> {
  const checks: { method: string; url: string }[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      checks.push({ method: req.method!, url: req.url! });
      const asked = req.headers['kat-req-http-requested-status'];
      if (asked !== undefined) {
        res.writeHead(Number(asked), { 'content-type': 'text/plain', 'x-auth-user': 'nobody' });
        res.end('denied by the auth service');
        return;
      }
      res.writeHead(200, { 'x-auth-user': 'alice' });
      res.end();
    });
  });
  return { ...(await listenLocal(server)), checks };
}

describe.each(['gateway', 'node'] as const)('WebSocket upgrades behind the external auth service (--http1-server %s)', (server) => {
  let auth: Awaited<ReturnType<typeof startAuthService>>;
  let echo: WebSocketEcho;
  let gw: TestGateway;

  beforeAll(async () => {
    auth = await startAuthService();
    echo = await startWebSocketEcho();
    const mapping = `apiVersion: getambassador.io/v2\nkind: Mapping\nname: authws\nprefix: ${P}/\nservice: echo.${NS}:8000\nuse_websocket: true`;
    gw = await startTestGateway({
      manifests: { 'authws.yaml': sdep('authws', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': mapping }) },
      resolve: { [`echo.${NS}:8000`]: echo.port },
      args: [
        '--http1-server',
        server,
        '--ext-auth-service',
        `http://127.0.0.1:${auth.port}`,
        '--ext-auth-path-prefix',
        '/extauth',
        '--ext-auth-allowed-request-headers',
        'Kat-Req-Http-Requested-Status',
        '--ext-auth-allowed-authorization-headers',
        'x-auth-user',
      ],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await echo?.close();
    await auth?.close();
  });

  it('a plain request is checked and reaches the model as a request', async () => {
    const checked = auth.checks.length;
    const res = await fetch(`${gw.url}${P}/`);
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(auth.checks.slice(checked)).toEqual([{ method: 'GET', url: `/extauth${P}/` }]);
  });

  it('the WebSocket conversation is checked, then relayed: "one", "two", "three" come back; the model’s handshake carries the auth service’s header', async () => {
    const checked = auth.checks.length;
    const heads = echo.heads.length;
    expect(await converse(`ws://127.0.0.1:${gw.port}${P}/`, ['one', 'two', 'three'])).toEqual(['one', 'two', 'three']);
    expect(auth.checks.slice(checked)).toEqual([{ method: 'GET', url: `/extauth${P}/` }]);
    const head = echo.heads[heads]!;
    expect(head.requestLine).toBe('GET / HTTP/1.1');
    const fields = head.headers.map(([k, v]) => `${k.toLowerCase()}: ${v}`);
    expect(fields).toContain('x-auth-user: alice');
    expect(fields).toContain('upgrade: websocket');
  });

  it('a denied upgrade: the auth service’s answer, the connection closed, the model never called', async () => {
    const heads = echo.heads.length;
    const read = await readUntilEnd(gw.port, [
      `GET ${P}/ HTTP/1.1\r\nHost: gw.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nKat-Req-Http-Requested-Status: 403\r\n\r\nGET /internal HTTP/1.1\r\nHost: internal\r\n\r\n`,
    ]);
    const [head, body] = read.split('\r\n\r\n');
    const lines = head!.split('\r\n');
    expect(lines[0]).toBe('HTTP/1.1 403 Forbidden');
    expect(lines).toContain('x-auth-user: nobody');
    expect(lines).toContain('connection: close');
    expect(body).toBe('denied by the auth service');
    expect(echo.heads.length).toBe(heads);
  });
});
