/**
 * Emissary's t_hosts.py, the part of each class a Mapping alone expresses here: which Mapping serves which Host
 * (`host`, `hostname` globs, `*`), Mappings on `/` and a regex on the root beside none. The `Host` resources
 * themselves (their TLS Secrets, insecure actions, ACME, mapping selectors) are not read (`migrate-check` names
 * them: NOT READ Host); TLS is the gateway's one certificate pair here, so the TLS queries run over it with the
 * test CA untrusted (the KAT's `insecure=True`), and the cleartext queries whose answer is a Host's insecure
 * action (301, Reject's 404) are not ported. Every test asserts what the model received and what the client got.
 */
import https from 'node:https';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpBackend } from '../../fixtures/http-backend.js';
import { certDir, makeCa } from '../../helpers/tls-certs.js';
import { katGateway, katGet, katMapping, startKatBackend, type KatGateway } from '../../helpers/kat.js';

/** One GET over TLS (SNI `servername`, the test CA untrusted) with this Host. */
function httpsGet(port: number, path: string, host: string, servername: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path, servername, headers: { host }, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
}

/** The certificate pair of `--tls-cert`/`--tls-key`, named `cn`; cleartext served beside TLS, as the KAT's Hosts whose insecure action is Route. */
function tlsArgs(cn: string): string[] {
  const dir = certDir();
  const leaf = makeCa(dir).issue({ cn, san: [cn], serial: 1 });
  writeFileSync(join(dir, 'tls.crt'), leaf.cert);
  writeFileSync(join(dir, 'tls.key'), leaf.key);
  return ['--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key'), '--tls-allow-cleartext'];
}

/** What the kat backends received, as `backend host url`. */
const received = (...models: HttpBackend[]): string[] => models.flatMap((m) => m.requests.map((r) => `${m.name} ${r.headers.host} ${r.url}`));

describe('HostCRDRootRedirectCongratulations (t_hosts.py): no Mapping on the root', () => {
  const SERVICE = 'congratulations.default:80';
  let model: HttpBackend;
  let kat: KatGateway;
  beforeAll(async () => {
    model = await startKatBackend('congratulations');
    kat = await katGateway({ module: null, mappings: [katMapping('elsewhere', ['prefix: /elsewhere/', `service: ${SERVICE}`])], resolve: { [SERVICE]: model.port } });
  });
  afterAll(async () => {
    await kat?.stop();
    await model?.close();
  });

  it.each(['/', '/other'])('%s: 404 (no route, no page of the gateway on the root); nothing reaches a model', async (path) => {
    const r = await katGet(kat.gw.port, path, { host: 'tls-context-host-1' });
    expect(r.status).toBe(404);
    expect(model.requests).toHaveLength(0);
  });
});

describe('HostCRDRootRedirectSlashMapping (t_hosts.py): a Mapping on /', () => {
  const SERVICE = 'slash.default:80';
  let model: HttpBackend;
  let kat: KatGateway;
  beforeAll(async () => {
    model = await startKatBackend('slash');
    kat = await katGateway({
      module: null,
      mappings: [katMapping('target-mapping', ['prefix: /', `service: ${SERVICE}`]), katMapping('elsewhere', ['prefix: /elsewhere/', `service: other.default:80`])],
      resolve: { [SERVICE]: model.port, 'other.default:80': model.port },
      args: tlsArgs('tls-context-host-1'),
    });
  });
  afterAll(async () => {
    await kat?.stop();
    await model?.close();
  });

  it('[2..3] / and /other over TLS: 200, the model receives each path as sent, with the Host', async () => {
    const a = await httpsGet(kat.gw.port, '/', 'tls-context-host-1', 'tls-context-host-1');
    const b = await httpsGet(kat.gw.port, '/other', 'tls-context-host-1', 'tls-context-host-1');
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(received(model)).toEqual(['slash tls-context-host-1 /', 'slash tls-context-host-1 /other']);
    expect(JSON.parse(b.body)).toMatchObject({ backend: 'slash', request: { url: '/other' } });
  });
});

describe('HostCRDRootRedirectRE2Mapping (t_hosts.py): a regex Mapping on the root, in RE2 syntax', () => {
  const SERVICE = 're2.default:80';
  let model: HttpBackend;
  let kat: KatGateway;
  beforeAll(async () => {
    model = await startKatBackend('re2');
    kat = await katGateway({
      module: null,
      // [[:word:]] is RE2's, not ECMAScript's: the class checks that the pattern is read as RE2.
      mappings: [katMapping('target-mapping', ['prefix: "/[[:word:]]*"', 'prefix_regex: true', `service: ${SERVICE}`])],
      resolve: { [SERVICE]: model.port },
      args: tlsArgs('tls-context-host-1'),
    });
  });
  afterAll(async () => {
    await kat?.stop();
    await model?.close();
  });

  it("[3..4] / and /other match the whole-path pattern: 200; the model receives Emissary's default rewrite, /", async () => {
    const a = await httpsGet(kat.gw.port, '/', 'tls-context-host-1', 'tls-context-host-1');
    const b = await httpsGet(kat.gw.port, '/other', 'tls-context-host-1', 'tls-context-host-1');
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(received(model)).toEqual(['re2 tls-context-host-1 /', 're2 tls-context-host-1 /']);
  });

  it('[5] /-other does not match ("-" is no word character): 404, nothing reaches the model', async () => {
    const before = model.requests.length;
    const r = await httpsGet(kat.gw.port, '/-other', 'tls-context-host-1', 'tls-context-host-1');
    expect(r.status).toBe(404);
    expect(model.requests).toHaveLength(before);
  });
});

describe('HostCRDWildcards (t_hosts.py): hostname "*" and the Host globs as Mapping hostnames', () => {
  const STAR = 'star.default:80';
  const SUFFIX = 'suffix.default:80';
  const EXACT = 'exact.default:80';
  const PREFIX = 'prefix.default:80';
  let star: HttpBackend;
  let suffix: HttpBackend;
  let exact: HttpBackend;
  let prefix: HttpBackend;
  let kat: KatGateway;
  beforeAll(async () => {
    [star, suffix, exact, prefix] = (await Promise.all(['star', 'suffix', 'exact', 'prefix'].map((n) => startKatBackend(n)))) as [HttpBackend, HttpBackend, HttpBackend, HttpBackend];
    kat = await katGateway({
      module: null,
      mappings: [
        // The class's Mapping.
        katMapping('foo', ['hostname: "*"', 'prefix: /foo/', `service: ${STAR}`]),
        // Its three Hosts (`*`, `*.domain.com`, `a.domain.com`) as Mappings of one prefix: the longest :authority wins.
        katMapping('wc-star', ['hostname: "*"', 'prefix: /wc/', `service: ${STAR}`]),
        katMapping('wc-suffix', ['hostname: "*.domain.com"', 'prefix: /wc/', `service: ${SUFFIX}`]),
        katMapping('wc-exact', ['host: a.domain.com', 'prefix: /wc/', `service: ${EXACT}`]),
        katMapping('wc-prefix', ['hostname: "api.*"', 'prefix: /wc/', `service: ${PREFIX}`]),
      ],
      resolve: { [STAR]: star.port, [SUFFIX]: suffix.port, [EXACT]: exact.port, [PREFIX]: prefix.port },
      args: tlsArgs('a.domain.com'),
    });
  });
  afterAll(async () => {
    await kat?.stop();
    await Promise.all([star, suffix, exact, prefix].map((m) => m?.close()));
  });

  it("[0..2] /foo/ over TLS with Host a.domain.com, wc.domain.com, 127.0.0.1: 200, each Host reaches the model as sent, the prefix rewritten to / (Emissary's default)", async () => {
    const statuses = [];
    for (const [i, host] of ['a.domain.com', 'wc.domain.com', '127.0.0.1'].entries()) statuses.push((await httpsGet(kat.gw.port, `/foo/${i}-200`, host, 'a.domain.com')).status);
    expect(statuses).toEqual([200, 200, 200]);
    expect(received(star)).toEqual(['star a.domain.com /0-200', 'star wc.domain.com /1-200', 'star 127.0.0.1 /2-200']);
  });

  it('[4] /foo/ in cleartext with Host wc.domain.com (its Host routes cleartext): 200', async () => {
    const before = star.requests.length;
    const r = await katGet(kat.gw.port, '/foo/4-200', { host: 'wc.domain.com' });
    expect(r.status).toBe(200);
    expect(received(star).slice(before)).toEqual(['star wc.domain.com /4-200']);
  });

  it('the globs as Envoy matches :authority: exact beats *.domain.com beats *, a prefix glob, case and port as sent', async () => {
    const cases: [string, string][] = [
      ['a.domain.com', 'exact'],
      ['wc.domain.com', 'suffix'],
      ['x.y.domain.com', 'suffix'],
      ['domain.com', 'star'],
      ['api.example.org', 'prefix'],
      ['127.0.0.1', 'star'],
      // Envoy's suffix_match compares case, and :authority keeps its port (no strip_matching_host_port).
      ['WC.DOMAIN.COM', 'star'],
      ['wc.domain.com:8443', 'star'],
      ['a.domain.com:8443', 'star'],
    ];
    const models = { star, suffix, exact, prefix };
    const before = Object.fromEntries(Object.entries(models).map(([k, m]) => [k, m.requests.length]));
    const got: string[] = [];
    for (const [host] of cases) got.push(`${host} ${(await katGet(kat.gw.port, '/wc/x', { host })).status}`);
    expect(got).toEqual(cases.map(([h]) => `${h} 200`));
    const servedBy = Object.entries(models).flatMap(([k, m]) => m.requests.slice(before[k]).map((r) => `${String(r.headers.host)} ${k}`));
    expect(servedBy.sort()).toEqual(cases.map(([h, k]) => `${h} ${k}`).sort());
  });
});

describe('HostCRDForcedStar (t_hosts.py): hostname "*" serves a Host nobody named, in cleartext and over TLS', () => {
  const SERVICE = 'forcedstar.default:80';
  let model: HttpBackend;
  let kat: KatGateway;
  beforeAll(async () => {
    model = await startKatBackend('forcedstar');
    kat = await katGateway({
      module: null,
      mappings: [katMapping('target-mapping', ['hostname: "*"', 'prefix: /foo/', `service: ${SERVICE}`])],
      resolve: { [SERVICE]: model.port },
      // Cleartext is served beside TLS (the KAT's tls-context-host-1 routes it), as without --tls-redirect-cleartext.
      args: tlsArgs('tls-context-host-1'),
    });
  });
  afterAll(async () => {
    await kat?.stop();
    await model?.close();
  });

  it('[0] /foo/ in cleartext with its Host: 200; [2..3] /bar/: 404 whatever the Host, nothing upstream', async () => {
    const ok = await katGet(kat.gw.port, '/foo/0-200', { host: 'tls-context-host-1' });
    const bar = await katGet(kat.gw.port, '/bar/2-404', { host: 'tls-context-host-1' });
    const barOther = await katGet(kat.gw.port, '/bar/3-404', { host: 'nonmatching-hostname' });
    expect([ok.status, bar.status, barOther.status]).toEqual([200, 404, 404]);
    expect(received(model).filter((l) => / \/[0-3]-/.test(l))).toEqual(['forcedstar tls-context-host-1 /0-200']);
  });

  it("[4..7] over TLS: /foo/ 200 with the certificate's Host and with one it does not name; /bar/ 404 for both", async () => {
    const got = [];
    for (const [path, host] of [
      ['/foo/4-200', 'tls-context-host-1'],
      ['/foo/5-200', 'nonmatching-hostname'],
      ['/bar/6-404', 'tls-context-host-1'],
      ['/bar/7-404', 'nonmatching-hostname'],
    ] as const)
      got.push((await httpsGet(kat.gw.port, path, host, 'tls-context-host-1')).status);
    expect(got).toEqual([200, 200, 404, 404]);
    expect(received(model).filter((l) => / \/[4-7]-/.test(l))).toEqual(['forcedstar tls-context-host-1 /4-200', 'forcedstar nonmatching-hostname /5-200']);
  });
});

describe('HostCRDDouble (t_hosts.py): Mappings with their own host beside one for every host', () => {
  const SERVICE = 'double.default:80';
  const HOSTS = ['tls-context-host-1', 'tls-context-host-2', 'ambassador.example.com'];
  let model: HttpBackend;
  let kat: KatGateway;
  beforeAll(async () => {
    model = await startKatBackend('double');
    kat = await katGateway({
      module: null,
      mappings: [
        katMapping('host-1', ['host: "tls-context-host-1"', 'prefix: /target-1/', `service: ${SERVICE}`]),
        katMapping('host-2', ['host: "tls-context-host-2"', 'prefix: /target-2/', `service: ${SERVICE}`]),
        katMapping('host-3', ['host: "ambassador.example.com"', 'prefix: /target-3/', `service: ${SERVICE}`]),
        katMapping('host-3-acme', ['host: "ambassador.example.com"', 'prefix: /.well-known/acme-challenge/', `service: ${SERVICE}`]),
        katMapping('host-shared', ['hostname: "*"', 'prefix: /target-shared/', `service: ${SERVICE}`]),
      ],
      resolve: { [SERVICE]: model.port },
      args: tlsArgs('tls-context-host-1'),
    });
  });
  afterAll(async () => {
    await kat?.stop();
    await model?.close();
  });

  // The TLS queries of each Host ([1..5], [11..15], [21..25]) and Host 1's cleartext ones ([6..10], its action Route).
  const PATHS = ['/target-1/', '/target-2/', '/target-3/', '/target-shared/', '/.well-known/acme-challenge/foo'];
  /** What the model receives: each prefix rewritten to / (the Mappings set no rewrite: Emissary's default). */
  const UPSTREAM: Record<string, string> = { '/target-1/': '/', '/target-2/': '/', '/target-3/': '/', '/target-shared/': '/', '/.well-known/acme-challenge/foo': '/foo' };
  const EXPECTED: Record<string, number[]> = {
    'tls-context-host-1': [200, 404, 404, 200, 404],
    'tls-context-host-2': [404, 200, 404, 200, 404],
    'ambassador.example.com': [404, 404, 200, 200, 200],
  };

  it.each(HOSTS)('over TLS, Host %s: its own target and the shared one, nothing else; the model receives exactly those', async (host) => {
    const before = model.requests.length;
    const got = [];
    for (const p of PATHS) got.push((await httpsGet(kat.gw.port, p, host, 'tls-context-host-1')).status);
    expect(got).toEqual(EXPECTED[host]);
    expect(model.requests.slice(before).map((r) => `${r.headers.host} ${r.url}`)).toEqual(PATHS.filter((_, i) => EXPECTED[host]![i] === 200).map((p) => `${host} ${UPSTREAM[p]}`));
  });

  it('[6..10] in cleartext, Host tls-context-host-1: the same as over TLS', async () => {
    const before = model.requests.length;
    const got = [];
    for (const p of PATHS) got.push((await katGet(kat.gw.port, p, { host: 'tls-context-host-1' })).status);
    expect(got).toEqual(EXPECTED['tls-context-host-1']);
    expect(model.requests.slice(before).map((r) => r.url)).toEqual(['/', '/']);
  });
});
