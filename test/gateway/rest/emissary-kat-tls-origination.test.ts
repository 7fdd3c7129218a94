/**
 * Emissary's t_mappingtests_plain.py TLSOrigination, ported: a Mapping whose `service` is written
 * `https://…` is dialled over TLS. The class's IMPLICIT and EXPLICIT Mappings (the same text) and the
 * gateway's other spelling of it (`tls: true` beside a bare service) each reach a real TLS server on
 * loopback; the KAT checks that kat-server saw `request.tls.enabled`, here the model's socket is a TLS
 * one, its SNI is the Service host (docs/routing.md, `tls: true`), the gateway verified the model's
 * certificate (--upstream-ca: a model the CA did not sign gets no request, 503), and the client got the
 * model’s answer.
 * The class's GRPC target variant is not ported: its query is the same plain GET, to kat-server's gRPC mode.
 */
import { rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routesReport } from '../../helpers/observability.js';
import { katAnswer, katGateway, katGet, katMapping, type KatGateway } from '../../helpers/kat.js';
import { certDir, makeCa } from '../../helpers/tls-certs.js';

describe('TLSOrigination', () => {
  let dir: string;
  let model: https.Server;
  /** A TLS model whose certificate the gateway's CA did not sign: the verification the port relies on is real. */
  let stranger: https.Server;
  let strangerCalls = 0;
  let kat: KatGateway;
  /** Each request the model got: its TLS socket's SNI and protocol, its target. */
  const seen: { sni: string | false | null; encrypted: boolean; url: string | undefined; tag: string | string[] | undefined }[] = [];
  const NAMES = ['tlsorigination-http-implicit', 'tlsorigination-http-explicit', 'tlsorigination-http-tls-true'];

  beforeAll(async () => {
    dir = certDir();
    const ca = makeCa(dir, 'KAT CA');
    const cert = ca.issue({ cn: 'kat-server', san: NAMES.map((n) => `${n}.default`), serial: 5 });
    const answer = katAnswer('kat-server-tls');
    model = https.createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
      const s = req.socket as TLSSocket;
      seen.push({ sni: s.servername, encrypted: s.encrypted, url: req.url, tag: req.headers['x-case'] });
      answer(req, res);
    });
    await new Promise<void>((r) => model.listen(0, '127.0.0.1', r));
    const other = makeCa(dir, 'Stranger CA').issue({ cn: 'kat-server', san: ['tlsorigination-stranger.default'], serial: 6 });
    stranger = https.createServer({ cert: other.cert, key: other.key }, (_req, res) => {
      strangerCalls++;
      res.end('{}');
    });
    stranger.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => stranger.listen(0, '127.0.0.1', r));
    const port = (model.address() as AddressInfo).port;
    const caFile = join(dir, 'kat-ca.pem');
    writeFileSync(caFile, ca.cert);
    const [implicit, explicit, tlsTrue] = NAMES as [string, string, string];
    kat = await katGateway({
      module: null,
      mappings: [
        katMapping(implicit, ['hostname: "*"', `prefix: /${implicit}/`, `service: https://${implicit}`]),
        katMapping(explicit, ['hostname: "*"', `prefix: /${explicit}/`, `service: https://${explicit}`]),
        katMapping(tlsTrue, ['hostname: "*"', `prefix: /${tlsTrue}/`, `service: ${tlsTrue}:443`, 'tls: true']),
        katMapping('tlsorigination-stranger', ['hostname: "*"', 'prefix: /tlsorigination-stranger/', 'service: https://tlsorigination-stranger']),
      ],
      // https:// with no port is 443, as Emissary reads it; each Service's 443 is the one TLS model on loopback.
      resolve: { ...Object.fromEntries(NAMES.map((n) => [`${n}.default:443`, port])), 'tlsorigination-stranger.default:443': (stranger.address() as AddressInfo).port },
      args: ['--upstream-ca', caFile],
    });
  });
  afterAll(async () => {
    await kat?.stop();
    model?.closeAllConnections();
    await new Promise((r) => model?.close(r));
    await new Promise((r) => stranger?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(NAMES)('%s: the model gets the request over TLS, its SNI the Service host, and the client its answer', async (name) => {
    const before = seen.length;
    const r = await katGet(kat.gw.port, `/${name}/`, { 'x-case': name });
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body.toString('utf8')) as { backend: string; request: { method: string; url: string } };
    expect([body.backend, body.request.method, body.request.url]).toEqual(['kat-server-tls', 'GET', '/']);
    expect(seen.slice(before)).toEqual([{ sni: `${name}.default`, encrypted: true, url: '/', tag: name }]);
  });

  it('a model whose certificate the CA did not sign: 503, no request reaches it', async () => {
    const r = await katGet(kat.gw.port, '/tlsorigination-stranger/');
    expect(r.status).toBe(503);
    expect(strangerCalls).toBe(0);
  });

  it('/routes: the deployment serves every Mapping, none dropped', async () => {
    expect(await routesReport(kat.gw.adminUrl, 'kat')).toMatchObject({ state: 'accepted', reasons: [] });
  });
});
