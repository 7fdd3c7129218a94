/**
 * Emissary's t_redirect.py, ported. Emissary asks for the redirect to HTTPS with resources this gateway does
 * not read: a `tls` Module (`server.secret`, `redirect_cleartext_from`) and, in XFPRedirect, a Listener with
 * `securityModel: XFP` and a Host whose `requestPolicy.insecure.action` is Redirect. The same behaviours are
 * the operator's here: TLS on the public port from a certificate pair (--tls-cert/--tls-key, or --tls-dir laid
 * out as a mounted kubernetes.io/tls Secret) with --tls-redirect-cleartext; and the `ambassador` Module's
 * `x_forwarded_proto_redirect` (Emissary's own key for the XFP redirect) with `use_remote_address: false`
 * (XFPRedirect's Module). Each `describe` ports a class; the KAT's `/ambassador/v0/diag` "no errors" query
 * is the deployment's /routes report with no reasons.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpBackend } from '../../fixtures/http-backend.js';
import { routesReport } from '../../helpers/observability.js';
import { certDir, makeCa } from '../../helpers/tls-certs.js';
import { katGateway, katGet, katMapping, startKatBackend, type KatGateway } from '../../helpers/kat.js';
import { parseAmbassadorModule } from '../../../routing/emissary/module.js';

const SERVICE = 'redirecttests-http.default:80';
const TLS_TARGET = katMapping('tls_target_mapping', ['hostname: "*"', 'prefix: /tls-target/', `service: ${SERVICE}`]);

/** One GET over TLS to the gateway's public port (the KAT's `insecure=True`: the test CA is not trusted). */
function httpsGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path, servername: 'localhost', rejectUnauthorized: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
}

describe('RedirectTests (t_redirect.py): TLS from the redirect-cert pair, cleartext redirected', () => {
  let model: HttpBackend;
  let kat: KatGateway;
  beforeAll(async () => {
    model = await startKatBackend('redirecttests-http');
    const dir = certDir();
    const leaf = makeCa(dir).issue({ cn: 'localhost', san: ['localhost'], serial: 1 });
    writeFileSync(join(dir, 'tls.crt'), leaf.cert);
    writeFileSync(join(dir, 'tls.key'), leaf.key);
    kat = await katGateway({
      module: null,
      mappings: [TLS_TARGET],
      resolve: { [SERVICE]: model.port },
      args: ['--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key'), '--tls-redirect-cleartext'],
    });
  });
  afterAll(async () => {
    await kat?.stop();
    await model?.close();
  });

  it('[0] http://…/tls-target/: 301, its Location names /tls-target/; the model is not asked', async () => {
    const r = await katGet(kat.gw.port, '/tls-target/');
    expect(r.status).toBe(301);
    expect(String(r.headers.location).indexOf('/tls-target/')).toBeGreaterThan(0);
    expect(r.headers.location).toBe(`https://127.0.0.1:${kat.gw.port}/tls-target/`);
    expect(model.requests).toHaveLength(0);
  });

  it('[1] over https the Mapping is served (the KAT readiness query), and there are no errors', async () => {
    const r = await httpsGet(kat.gw.port, '/tls-target/');
    expect(r.status).toBe(200);
    expect((JSON.parse(r.body) as { backend: string }).backend).toBe('redirecttests-http');
    expect(model.requests.map((q) => q.url)).toEqual(['/']);
    expect(await routesReport(kat.gw.adminUrl, 'kat')).toMatchObject({ state: 'accepted', reasons: [] });
  });
});

describe('RedirectTestsInvalidSecret (t_redirect.py)', () => {
  // Emissary keeps redirecting cleartext when the Secret does not exist (and serves no TLS). The gateway
  // refuses to start on a TLS directory with no pair in it, naming the directory: the operator's TLS is
  // never half taken. A refusal, not another meaning: nothing is served until the pair is mounted.
  it('[0] the Secret is not mounted (an empty --tls-dir) with --tls-redirect-cleartext: refused at start, naming the directory; the model is not asked', async () => {
    const model = await startKatBackend('redirecttests-http');
    try {
      const dir = join(certDir(), 'does-not-exist-secret');
      mkdirSync(dir);
      await expect(katGateway({ module: null, mappings: [TLS_TARGET], resolve: { [SERVICE]: model.port }, args: ['--tls-dir', dir, '--tls-redirect-cleartext'] })).rejects.toThrow(
        `--tls-dir ${dir}: no tls.crt and tls.key in it or in any subdirectory`,
      );
      expect(model.requests).toHaveLength(0);
    } finally {
      await model.close();
    }
  });
});

describe('RedirectTestsWithProxyProto (t_redirect.py)', () => {
  it("use_proxy_proto: true refuses the Module with the reason: the gateway does not read the PROXY protocol (Emissary resets a request sent without one; here the operator's Module is not taken)", () => {
    expect(() => parseAmbassadorModule('apiVersion: getambassador.io/v3alpha1\nkind: Module\nname: ambassador\nconfig:\n  use_proxy_proto: true\n  enable_ipv6: true\n')).toThrow(
      /use_proxy_proto.*PROXY protocol/,
    );
  });
});

describe('XFPRedirect (t_redirect.py)', () => {
  let model: HttpBackend;
  let kat: KatGateway;
  const HOST = 'xfpredirect.default.svc.cluster.local';
  beforeAll(async () => {
    model = await startKatBackend('xfpredirect-http');
    kat = await katGateway({
      module: ['use_remote_address: false', 'x_forwarded_proto_redirect: true'],
      mappings: [katMapping('xfpredirect', ['hostname: "*"', 'prefix: /xfpredirect/', `service: ${SERVICE}`])],
      resolve: { [SERVICE]: model.port },
    });
  });
  afterAll(async () => {
    await kat?.stop();
    await model?.close();
  });

  it('[0] X-Forwarded-Proto: http: 301 to https://<host>/xfpredirect/target/; the model is not asked', async () => {
    const r = await katGet(kat.gw.port, '/xfpredirect/target/', { host: HOST, 'x-forwarded-proto': 'http' });
    expect(r.status).toBe(301);
    expect(r.headers.location).toBe(`https://${HOST}/xfpredirect/target/`);
    expect(model.requests).toHaveLength(0);
  });

  it('[1] X-Forwarded-Proto: https: 200 from the model, which got the path and X-Forwarded-Proto: https', async () => {
    const r = await katGet(kat.gw.port, '/xfpredirect/target/', { host: HOST, 'x-forwarded-proto': 'https' });
    expect(r.status).toBe(200);
    expect(model.requests.map((q) => [q.url, q.headers['x-forwarded-proto']])).toEqual([['/target/', 'https']]);
  });

  it('[2] no errors', async () => {
    expect(await routesReport(kat.gw.adminUrl, 'kat')).toMatchObject({ state: 'accepted', reasons: [] });
  });
});
