/**
 * An upgrade is routed again after the external auth service edits its headers, by the rule a plain
 * request is (pipeline/reroute.ts; Envoy's ext_authz clears the route cache, and the router takes the
 * route found again): the auth service adds `x-route-to: canary`, which a header-routed Mapping with
 * `allow_upgrade` matches; the WebSocket conversation reaches that Mapping's model, never the first
 * route's, and the auth service is asked once. Routed again to a Mapping that allows no upgrade, it is
 * refused as the first match would refuse it (403), no model called; a plain request goes there.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { listenLocal, readUntilEnd } from '../../helpers/net.js';
import { converse, startWebSocketEcho, type WebSocketEcho } from '../../helpers/websocket-echo.js';

const NS = 'models';
const P = `/seldon/${NS}/rr`;

const mapping = (name: string, prefix: string, service: string, extra: string): string =>
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: ${name}\nprefix: ${prefix}\nservice: ${service}.${NS}:8000\n${extra}`;
const CONFIG = [
  mapping('first', `${P}/`, 'first', 'use_websocket: true'),
  mapping('canary', `${P}/`, 'canary', 'headers:\n  x-route-to: canary\nallow_upgrade: [websocket]'),
  mapping('closed-first', `${P}/closed/`, 'first', 'use_websocket: true'),
  mapping('closed-canary', `${P}/closed/`, 'canary', 'headers:\n  x-route-to: canary'),
].join('\n---\n');

/** An auth service that allows every request and adds `x-route-to: canary`. */
async function startAuthService(): Promise<{ port: number; checks: string[]; close(): Promise<void> }> {
  const checks: string[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      checks.push(req.url!);
      res.writeHead(200, { 'x-route-to': 'canary' });
      res.end();
    });
  });
  return { ...(await listenLocal(server)), checks };
}

describe.each(['gateway', 'node'] as const)('an upgrade routed again after the auth service’s edits (--http1-server %s)', (server) => {
  let auth: Awaited<ReturnType<typeof startAuthService>>;
  let first: WebSocketEcho;
  let canary: WebSocketEcho;
  let gw: TestGateway;

  beforeAll(async () => {
    auth = await startAuthService();
    first = await startWebSocketEcho();
    canary = await startWebSocketEcho();
    gw = await startTestGateway({
      manifests: { 'rr.yaml': sdep('rr', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CONFIG }) },
      resolve: { [`first.${NS}:8000`]: first.port, [`canary.${NS}:8000`]: canary.port },
      args: ['--http1-server', server, '--ext-auth-service', `http://127.0.0.1:${auth.port}`, '--ext-auth-allowed-authorization-headers', 'x-route-to'],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await first?.close();
    await canary?.close();
    await auth?.close();
  });

  it('the WebSocket reaches the header-routed Mapping’s model with the auth service’s header; the auth service asked once', async () => {
    const checks = auth.checks.length;
    const heads = canary.heads.length;
    const firstHeads = first.heads.length;
    expect(await converse(`ws://127.0.0.1:${gw.port}${P}/`, ['one', 'two'])).toEqual(['one', 'two']);
    expect(auth.checks.length - checks).toBe(1);
    expect(first.heads.length).toBe(firstHeads);
    const head = canary.heads[heads]!;
    const fields = head.headers.map(([k, v]) => `${k.toLowerCase()}: ${v}`);
    expect(fields).toContain('x-route-to: canary');
    expect(fields).toContain('upgrade: websocket');
  });

  it('a plain request goes to the same Mapping, by the same rule', async () => {
    const heads = canary.heads.length;
    const res = await fetch(`${gw.url}${P}/`);
    expect([res.status, await res.text()]).toEqual([200, 'plain']);
    expect(canary.heads.length - heads).toBe(1);
  });

  it('routed again to a Mapping that allows no upgrade: 403 and the connection closed, no model called; a plain request goes there', async () => {
    const heads = [first.heads.length, canary.heads.length];
    const read = await readUntilEnd(gw.port, [
      `GET ${P}/closed/ HTTP/1.1\r\nHost: gw.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nGET /internal HTTP/1.1\r\nHost: internal\r\n\r\n`,
    ]);
    const [head, body] = read.split('\r\n\r\n');
    expect(head!.split('\r\n')).toEqual(['HTTP/1.1 403 Forbidden', 'content-type: application/json', `content-length: ${body!.length}`, 'connection: close']);
    expect(JSON.parse(body!).status.info).toBe(`the external auth service's headers route this upgrade to ${NS}/rr/closed-canary, which takes no upgrade to websocket (allow_upgrade)`);
    expect([first.heads.length, canary.heads.length]).toEqual(heads);
    const res = await fetch(`${gw.url}${P}/closed/`);
    expect([res.status, await res.text()]).toEqual([200, 'plain']);
    expect(canary.heads.length - heads[1]!).toBe(1);
  });
});
