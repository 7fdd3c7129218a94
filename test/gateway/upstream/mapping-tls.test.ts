/**
 * A Mapping's `tls: <name>` over real TLS (docs/routing.md#a-mappings-upstream-balancing-connections-and-tls):
 * models that require a client certificate, the gateway with --upstream-tls-context. The context's
 * CA verifies the model, its client certificate is presented (the model sees its serial), its SNI is
 * sent, on REST and gRPC; a context whose CA did not sign the model's certificate fails with 503;
 * `tls: true` keeps the gateway's own TLS (no client certificate: the model refuses it).
 */
import { writeFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { answerOk, md, predict } from '../../helpers/grpc.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { grpcMapping, restMapping } from '../../helpers/mappings.js';
import { certDir, makeCa, type Pem } from '../../helpers/tls-certs.js';

const NS = 'models';
let dir: string;
let gw: TestGateway;
let url: string;
let clients: GrpcClients;
let rest: https.Server;
let h2: http2.Http2SecureServer;
/** What each model saw of each TLS handshake that reached a request: the SNI and the client certificate's serial. */
const seen: { sni: string | false | null; serial: string | undefined }[] = [];
const seenH2: { sni: string | false | null; serial: string | undefined }[] = [];
let clientCert: Pem;

const record = (s: TLSSocket): { sni: string | false | null; serial: string | undefined } => ({ sni: s.servername, serial: s.getPeerCertificate().serialNumber });

beforeAll(async () => {
  dir = certDir();
  const modelCa = makeCa(dir, 'Model CA');
  const clientCa = makeCa(dir, 'Client CA');
  const strangerCa = makeCa(dir, 'Stranger CA');
  const server = modelCa.issue({ cn: 'model.internal', san: ['model.internal'], serial: 21 });
  clientCert = clientCa.issue({ cn: 'seldon-gateway', serial: 77, usage: 'client' });
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const tlsServer = { cert: server.cert, key: server.key, ca: clientCa.cert, requestCert: true, rejectUnauthorized: true };
  rest = https.createServer(tlsServer, (req, res) => {
    seen.push(record(req.socket as TLSSocket));
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{"ndarray":["mtls"]}}'));
  });
  rest.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => rest.listen(0, '127.0.0.1', r));
  h2 = http2.createSecureServer(tlsServer);
  h2.on('stream', (s) => {
    seenH2.push(record(s.session!.socket as TLSSocket));
    s.on('error', () => undefined);
    s.resume();
    s.on('end', () => answerOk(s, 'mtls'));
  });
  h2.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
  const restPort = (rest.address() as AddressInfo).port;
  const h2Port = (h2.address() as AddressInfo).port;

  const mappings = [
    restMapping('mtls', NS, `https://model:${restPort}`, ['tls: mtls']),
    restMapping('stranger', NS, `https://model:${restPort}`, ['tls: stranger']),
    restMapping('plain-tls', NS, `https://model:${restPort}`, ['tls: true']),
    grpcMapping('grpc-mtls', NS, `https://model-h2:${h2Port}`, ['tls: mtls']),
  ].join('\n---\n');
  gw = await startTestGateway({
    manifests: { 'secure.json': sdep('secure', NS, { predictors: [{ name: 'default', graph: { name: 'model', type: 'MODEL' } }] }, { 'seldon.io/ambassador-config': mappings }) },
    resolve: { [`model.${NS}:${restPort}`]: restPort, [`model-h2.${NS}:${h2Port}`]: h2Port },
    args: [
      '--error-detail',
      'internal',
      '--upstream-tls-context',
      `mtls=ca=${file('model-ca.pem', modelCa.cert)},cert=${file('client.pem', clientCert.cert)},key=${file('client.key', clientCert.key)},sni=model.internal`,
      '--upstream-tls-context',
      `stranger=ca=${file('stranger-ca.pem', strangerCa.cert)},cert=${file('client2.pem', clientCert.cert)},key=${file('client2.key', clientCert.key)},sni=model.internal`,
    ],
  });
  url = gw.url;
  clients = grpcClients(`127.0.0.1:${gw.port}`);
  for (let i = 0; i < 100 && (await post('mtls')).status === 404; i++) await new Promise((r) => setTimeout(r, 50));
});

afterAll(async () => {
  clients?.close();
  await gw?.stop();
  rest?.closeAllConnections();
  await new Promise((r) => rest?.close(r));
  await new Promise((r) => h2?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

async function post(name: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`${url}/seldon/${NS}/${name}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":{"ndarray":[1]}}' });
  return { status: r.status, body: await r.text() };
}

describe('tls: <context>', () => {
  it('REST: the model is verified against the context’s CA, gets its client certificate and SNI', async () => {
    const before = seen.length;
    const r = await post('mtls');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ data: { ndarray: ['mtls'] } });
    expect(seen.slice(before)).toEqual([{ sni: 'model.internal', serial: clientCert.serial }]);
  });

  it('gRPC: the same context on an h2 session', async () => {
    const before = seenH2.length;
    const o = await predict(clients, { strData: 'x' }, md({ seldon: 'grpc-mtls', namespace: NS }));
    expect(o.ok).toBe(true);
    if (o.ok) expect(o.result.response.strData).toBe('mtls');
    expect(seenH2.slice(before)).toEqual([{ sni: 'model.internal', serial: clientCert.serial }]);
  });

  it('a context whose CA did not sign the model’s certificate: 503, and no request reaches the model', async () => {
    const before = seen.length;
    const r = await post('stranger');
    expect(r.status).toBe(503);
    expect(r.body).toContain('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(seen.length).toBe(before);
  });

  it('tls: true keeps the gateway’s own TLS: no client certificate, so this model refuses it', async () => {
    const before = seen.length;
    const r = await post('plain-tls');
    expect(r.status).toBe(503);
    expect(seen.length).toBe(before);
  });
});
