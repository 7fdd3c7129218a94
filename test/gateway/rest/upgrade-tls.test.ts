/**
 * An `allow_upgrade` Mapping whose upstream is TLS (`service: https://…`, `tls: <context>`) over real
 * TLS on loopback: the relay dials the model as the route's requests are dialled (the gateway's CA and
 * SNI, or the Mapping's context), and a WebSocket conversation goes both ways through the tunnel. The
 * attacker's cases first: a model whose certificate the gateway's trust does not verify gets no byte
 * of the upgrade (503), as a plain request to it gets 503.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { readUntilEnd } from '../../helpers/net.js';
import { certDir, makeCa } from '../../helpers/tls-certs.js';
import { converse, startWebSocketEcho, type WebSocketEcho } from '../../helpers/websocket-echo.js';

const NS = 'models';
const P = `/seldon/${NS}/wss`;
let dir: string;
let gw: TestGateway;
/** Its certificate is signed by the CA the gateway trusts (--upstream-ca), for the name the route dials. */
let trusted: WebSocketEcho;
/** Its certificate is signed by a CA the gateway does not trust. */
let stranger: WebSocketEcho;

const mapping = (name: string, service: string, extra = ''): string =>
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: ${name}\nprefix: ${P}/${name}/\nservice: ${service}\nallow_upgrade: [websocket]${extra}`;

const upgrade = (name: string): string =>
  `GET ${P}/${name}/ HTTP/1.1\r\nHost: gw.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;

beforeAll(async () => {
  dir = certDir();
  const modelCa = makeCa(dir, 'Model CA');
  const strangerCa = makeCa(dir, 'Stranger CA');
  trusted = await startWebSocketEcho(modelCa.issue({ cn: 'wsmodel', san: [`wsmodel.${NS}`, 'ws.internal'], serial: 31 }));
  stranger = await startWebSocketEcho(strangerCa.issue({ cn: 'stranger', san: [`stranger.${NS}`, 'ws.internal'], serial: 32 }));
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const config = [
    mapping('secure', `https://wsmodel:${trusted.port}`),
    mapping('context', `wsmodel:${trusted.port}`, '\ntls: ws'),
    mapping('stranger', `https://stranger:${stranger.port}`),
    mapping('stranger-context', `stranger:${stranger.port}`, '\ntls: ws'),
  ].join('\n---\n');
  gw = await startTestGateway({
    manifests: { 'wss.yaml': sdep('wss', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': config }) },
    resolve: { [`wsmodel.${NS}:${trusted.port}`]: trusted.port, [`stranger.${NS}:${stranger.port}`]: stranger.port },
    args: ['--error-detail', 'internal', '--upstream-ca', file('model-ca.pem', modelCa.cert), '--upstream-tls-context', `ws=ca=${file('ws-ca.pem', modelCa.cert)},sni=ws.internal`],
  });
});

afterAll(async () => {
  await gw?.stop();
  await trusted?.close();
  await stranger?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('an upgrade to a TLS upstream', () => {
  it.each(['stranger', 'stranger-context'])('%s: a certificate the route’s trust does not verify gets 503 and no byte of the upgrade, as a plain request', async (name) => {
    const heads = stranger.heads.length;
    const read = await readUntilEnd(gw.port, [`${upgrade(name)}GET /internal HTTP/1.1\r\nHost: internal\r\n\r\n`]);
    expect(read.split('\r\n')[0]).toBe('HTTP/1.1 503 Service Unavailable');
    expect(read).toContain('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    // Nothing after the upgrade head was read as a request.
    expect(read.match(/HTTP\/1.1 /g)).toHaveLength(1);
    const plain = await fetch(`${gw.url}${P}/${name}/`);
    expect(plain.status).toBe(503);
    expect(await plain.text()).toContain('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(stranger.heads.length).toBe(heads);
  });

  it('service https://: verified by the gateway’s CA, SNI the route’s host; the conversation goes both ways, the model got the head over TLS', async () => {
    const heads = trusted.heads.length;
    const snis = trusted.snis.length;
    expect(await converse(`ws://127.0.0.1:${gw.port}${P}/secure/`, ['one', 'two', 'x'.repeat(70_000)])).toEqual(['one', 'two', 'x'.repeat(70_000)]);
    expect(trusted.snis.slice(snis)).toEqual([`wsmodel.${NS}`]);
    const head = trusted.heads[heads]!;
    // Emissary’s default rewrite, `/`.
    expect(head.requestLine).toBe('GET / HTTP/1.1');
    const fields = head.headers.map(([k, v]) => `${k.toLowerCase()}: ${v}`);
    expect(fields).toContain('upgrade: websocket');
    expect(fields).toContain('connection: upgrade');
  });

  it('tls: <context>: the context’s CA and SNI, as the route’s requests', async () => {
    const snis = trusted.snis.length;
    expect(await converse(`ws://127.0.0.1:${gw.port}${P}/context/`, ['three'])).toEqual(['three']);
    expect(trusted.snis.slice(snis)).toEqual(['ws.internal']);
  });
});
