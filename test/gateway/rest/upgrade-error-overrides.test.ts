/**
 * The gateway's own refusals of an upgrade get the error overrides a plain request's get (Envoy's
 * local_reply_config, Emissary's ir/irerrorresponse.py, over every local reply): the ambassador
 * Module's `error_response_overrides` on a route that allows no upgrade (403), on no route (404), on a
 * model silent past the route's timeout (504) and on a breaker over `max_requests` (503); a Mapping's
 * own list replaces the Module's (with its answer edits), `bypass_error_response_overrides` leaves the
 * gateway's JSON. Each answer is read byte for byte, and the connection closes after it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { readUntilEnd } from '../../helpers/net.js';
import { startWebSocketEcho, type WebSocketEcho } from '../../helpers/websocket-echo.js';

const NS = 'models';
const P = `/seldon/${NS}/wso`;

const MODULE = [
  'apiVersion: getambassador.io/v3alpha1',
  'kind: Module',
  'name: ambassador',
  'config:',
  '  error_response_overrides:',
  ...[403, 404, 503, 504].flatMap((s) => [`  - on_status_code: ${s}`, '    body:', '      text_format: "module says %RESPONSE_CODE%"']),
].join('\n');

const mapping = (name: string, service: string, extra: string): string => `apiVersion: getambassador.io/v2\nkind: Mapping\nname: ${name}\nprefix: ${P}/${name}/\nservice: ${service}\n${extra}`;
const CONFIG = [
  mapping('plain', `echo.${NS}:8000`, 'timeout_ms: 3000'),
  mapping('silent', `silent.${NS}:8000`, 'allow_upgrade: [websocket]\ntimeout_ms: 300'),
  mapping('tight', `echo.${NS}:8000`, 'allow_upgrade: [websocket]\ncircuit_breakers:\n  - max_requests: 1'),
  mapping('own', `echo.${NS}:8000`, 'add_response_headers:\n  x-route: own\nerror_response_overrides:\n- on_status_code: 403\n  body:\n    text_format: "own 403"'),
  mapping('bypass', `echo.${NS}:8000`, 'bypass_error_response_overrides: true'),
].join('\n---\n');

const upgradeHead = (target: string): string =>
  `GET ${target} HTTP/1.1\r\nHost: gw.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;

/** An override's answer as the client reads it, then the close. */
const overridden = (status: string, body: string, extra: string[] = []): string =>
  [`HTTP/1.1 ${status}`, 'content-type: text/plain', `content-length: ${body.length}`, ...extra, 'connection: close', '', body].join('\r\n');

describe.each(['gateway', 'node'] as const)('the gateway’s refusals of an upgrade, overridden (--http1-server %s)', (server) => {
  let echo: WebSocketEcho;
  let silent: net.Server;
  const silentSockets = new Set<net.Socket>();
  let silentHeads = 0;
  let gw: TestGateway;
  let dir: string;

  beforeAll(async () => {
    echo = await startWebSocketEcho();
    // A model that reads the upgrade head and never answers.
    silent = net.createServer((s) => {
      silentSockets.add(s);
      s.on('error', () => undefined);
      s.on('data', () => silentHeads++);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    dir = mkdtempSync(join(tmpdir(), 'sgw-upgrade-overrides-'));
    const file = join(dir, 'module.yaml');
    writeFileSync(file, MODULE);
    gw = await startTestGateway({
      manifests: { 'wso.yaml': sdep('wso', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CONFIG }) },
      resolve: { [`echo.${NS}:8000`]: echo.port, [`silent.${NS}:8000`]: (silent.address() as AddressInfo).port },
      args: ['--ambassador-module', file, '--http1-server', server],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await echo?.close();
    for (const s of silentSockets) s.destroy();
    await new Promise((r) => silent?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('403, a route that allows no upgrade: the Module’s override, the model never called', async () => {
    const heads = echo.heads.length;
    expect(await readUntilEnd(gw.port, [upgradeHead(`${P}/plain/`)])).toBe(overridden('403 Forbidden', 'module says 403'));
    expect(echo.heads.length).toBe(heads);
  });

  it('404, no route: the Module’s override, as a plain request’s', async () => {
    expect(await readUntilEnd(gw.port, [upgradeHead('/nowhere/')])).toBe(overridden('404 Not Found', 'module says 404'));
    const plain = await fetch(`${gw.url}/nowhere/`);
    expect([plain.status, await plain.text()]).toEqual([404, 'module says 404']);
  });

  it('504, a model silent past the route’s timeout: the Module’s override', async () => {
    const before = silentHeads;
    expect(await readUntilEnd(gw.port, [upgradeHead(`${P}/silent/`)])).toBe(overridden('504 Gateway Timeout', 'module says 504'));
    expect(silentHeads).toBeGreaterThan(before);
  });

  it('503, the breaker over max_requests: the Module’s override with x-envoy-overloaded, the model not called again', async () => {
    const held = net.connect(gw.port, '127.0.0.1');
    held.on('error', () => undefined);
    let read = '';
    held.on('data', (d: Buffer) => (read += d.toString('latin1')));
    held.write(upgradeHead(`${P}/tight/`));
    await waitFor(() => read.includes('\r\n\r\n'));
    expect(read.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
    const heads = echo.heads.length;
    expect(await readUntilEnd(gw.port, [upgradeHead(`${P}/tight/`)])).toBe(overridden('503 Service Unavailable', 'module says 503', ['x-envoy-overloaded: true']));
    expect(echo.heads.length).toBe(heads);
    held.destroy();
  });

  it('a Mapping’s own list replaces the Module’s, with its answer edits; a bypass leaves the gateway’s JSON', async () => {
    expect(await readUntilEnd(gw.port, [upgradeHead(`${P}/own/`)])).toBe(overridden('403 Forbidden', 'own 403', ['x-route: own']));
    const bypass = await readUntilEnd(gw.port, [upgradeHead(`${P}/bypass/`)]);
    const [head, body] = bypass.split('\r\n\r\n');
    expect(head!.split('\r\n')).toEqual(['HTTP/1.1 403 Forbidden', 'content-type: application/json', `content-length: ${body!.length}`, 'connection: close']);
    expect(JSON.parse(body!).status).toMatchObject({ code: 403, reason: 'FORBIDDEN', status: 'FAILURE' });
  });
});
