/**
 * Redirect Mappings (`host_redirect` with `path_redirect`, `prefix_redirect`, `regex_redirect`,
 * `redirect_response_code`) over real sockets: the gateway answers with the status and Location
 * Envoy gives, the query kept, no model asked, the external auth service not asked either; the
 * answer counted once. Expectations ported from Emissary's acceptance tests (HostRedirectMapping).
 */
import http from 'node:http';
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest, startRecordingUpstream, type HeaderLine, type RawResponse, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { listenLocal } from '../../helpers/net.js';
import { metric } from '../../helpers/metrics.js';

const NS = 'models';
const P = `/seldon/${NS}/redir`;

const mapping = (name: string, prefix: string, extra: string): string =>
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: ${name}\nprefix: ${prefix}\nservice: foobar.com\nhost_redirect: true\n${extra}`;

const CONFIG = [
  mapping('r1', `${P}/r1/`, 'add_response_headers:\n  x-redirected: "yes"'),
  mapping('r2', `${P}/r2/`, 'case_sensitive: false'),
  mapping('r3', `${P}/r3/foo/`, 'path_redirect: /redirect/\nredirect_response_code: 302'),
  mapping('r4', `${P}/r4/foo/bar/baz`, 'prefix_redirect: /foobar/baz\nredirect_response_code: 307'),
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: r5\nprefix: "${P}/r5/assets/([a-f0-9]{12})/images"\nprefix_regex: true\nservice: foobar.com\nhost_redirect: true\nregex_redirect:\n  pattern: "${P}/r5/assets/([a-f0-9]{12})/images"\n  substitution: /images/\\1\nredirect_response_code: 308`,
  // Not a redirect: checked by the auth service as every route is.
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: proxied\nprefix: ${P}/proxied/\nservice: redir-main.${NS}:8000`,
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: r6\nprefix: ${P}/r6/\nservice: https://secure.example.com:8443\nhost_redirect: true`,
  // The attacker's Mappings: a substitution that does not start with `/` would end the Location's authority.
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: open\nprefix: ${P}/open/\nservice: good.example.com\nhost_redirect: true\nregex_redirect:\n  pattern: "${P}/open/(.*)"\n  substitution: '\\1'`,
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: kept\nprefix: ${P}/kept/\nservice: good.example.com\nhost_redirect: true\nregex_redirect:\n  pattern: "${P}/kept/(.*)"\n  substitution: '/\\1'`,
  mapping('pfx', `${P}/pfx/`, 'prefix_redirect: /').replace('foobar.com', 'good.example.com'),
  mapping('creds', `${P}/creds/`, '').replace('foobar.com', 'good.example.com@evil.com'),
].join('\n---\n');

describe('Mapping redirects', () => {
  let model: RecordingUpstream;
  let gw: TestGateway;
  let authAsked = 0;
  let auth: { port: number; close(): Promise<void> };

  async function send(target: string, headers: HeaderLine[] = [], method = 'GET'): Promise<RawResponse> {
    const { res, x } = await rawRequest(gw.port, { method, target, headers: [['Host', 'gw.example'], ...headers], framing: 'none' }, 10_000);
    x.socket.destroy();
    if (!res) throw new Error('no answer');
    return res;
  }
  const location = (r: RawResponse): string[] => r.headers.filter(([k]) => k.toLowerCase() === 'location').map(([, v]) => v);

  beforeAll(async () => {
    model = await startRecordingUpstream({ name: 'model' });
    auth = await listenLocal(
      http.createServer((_req, res) => {
        authAsked++;
        res.writeHead(403).end();
      }),
    );
    gw = await startTestGateway({
      manifests: { 'redir.yaml': sdep('redir', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CONFIG }) },
      resolve: { ['foobar.com:80']: model.port, ['secure.example.com:8443']: model.port, [`redir-main.${NS}:8000`]: model.port },
      // Every route is checked by an auth service that refuses: a redirect never asks it. The tenant scope is the default one.
      args: ['--ext-auth-service', `http://127.0.0.1:${auth.port}`],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
    await auth?.close();
  });

  it('301 to http://<service><path>?<query> by default; the route’s answer edits apply; no model, no auth service asked', async () => {
    const r = await send(`${P}/r1/anything?itworked=true`);
    expect(r.statusLine).toBe('HTTP/1.1 301 Moved Permanently');
    expect(r.headers.map(([k, v]) => `${k.toLowerCase()}: ${v}`).filter((l) => !l.startsWith('date:') && !l.startsWith('connection:') && !l.startsWith('keep-alive:'))).toEqual([
      `location: http://foobar.com${P}/r1/anything?itworked=true`,
      'content-length: 0',
      'x-redirected: yes',
    ]);
    expect(r.body.length).toBe(0);
    expect(model.requests).toHaveLength(0);
    expect(authAsked).toBe(0);
  });

  it('open redirect: a regex_redirect substitution that does not start with "/" refuses its Mapping, and so does a service with credentials', async () => {
    for (const target of [`${P}/open/@evil.com/x`, `${P}/creds/x`]) {
      const r = await send(target);
      expect(r.statusLine).toBe('HTTP/1.1 404 Not Found');
      expect(location(r)).toEqual([]);
    }
    expect(model.requests).toHaveLength(0);
    const routes = (await (await fetch(`${gw.adminUrl}/routes`)).json()) as { deployments: { name: string; reasons: string[] }[] };
    const reasons = routes.deployments.find((d) => d.name === 'redir')!.reasons.join('\n');
    expect(reasons).toContain('Mapping "open" dropped: regex_redirect.substitution "\\1" must start with "/"');
    expect(reasons).toMatch(/Mapping "creds" dropped: [^\n]*service "good\.example\.com@evil\.com"/);
  });

  it('open redirect: whatever the path, the Location keeps the configured scheme and authority', async () => {
    const cases: [string, string][] = [
      [`${P}/kept/@evil.com/x`, 'http://good.example.com/@evil.com/x'],
      [`${P}/kept/%40evil.com/x`, 'http://good.example.com/%40evil.com/x'],
      [`${P}/kept/evil.com:80@x/y?z=1`, 'http://good.example.com/evil.com:80@x/y?z=1'],
      [`${P}/pfx/@evil.com/x`, 'http://good.example.com/@evil.com/x'],
      [`${P}/pfx/%2F%2Fevil.com/x`, 'http://good.example.com/%2F%2Fevil.com/x'],
    ];
    for (const [target, want] of cases) {
      const r = await send(target);
      expect(r.statusLine).toBe('HTTP/1.1 301 Moved Permanently');
      expect(location(r)).toEqual([want]);
      // As a browser reads it.
      expect(new URL(location(r)[0]!).host).toBe('good.example.com');
    }
    expect(model.requests).toHaveLength(0);
  });

  it('a route without a redirect on the same deployment is checked by the auth service (which refuses)', async () => {
    const asked = authAsked;
    const r = await send(`${P}/proxied/x`);
    expect(r.status).toBe(403);
    expect(authAsked).toBe(asked + 1);
    expect(model.requests).toHaveLength(0);
  });

  it('a path the route does not match (case) is not redirected: 404', async () => {
    const r = await send(`${P.toUpperCase()}/R1/anything?itworked=true`);
    expect(r.status).toBe(404);
  });

  it('case_sensitive: false redirects any case, the path as the client wrote it', async () => {
    expect(location(await send(`${P}/r2/anything?itworked=true`))).toEqual([`http://foobar.com${P}/r2/anything?itworked=true`]);
    expect(location(await send(`${P}/R2/anything?itworked=true`))).toEqual([`http://foobar.com${P}/R2/anything?itworked=true`]);
  });

  it('path_redirect replaces the whole path, with redirect_response_code 302', async () => {
    const r = await send(`${P}/r3/foo/anything`);
    expect(r.status).toBe(302);
    expect(location(r)).toEqual(['http://foobar.com/redirect/']);
  });

  it('prefix_redirect replaces the matched prefix (307)', async () => {
    const r = await send(`${P}/r4/foo/bar/baz/anything`, [], 'POST');
    expect(r.status).toBe(307);
    expect(location(r)).toEqual(['http://foobar.com/foobar/baz/anything']);
  });

  it('regex_redirect substitutes its groups (308), the query kept', async () => {
    const a = await send(`${P}/r5/assets/abcd0000f123/images`);
    expect(a.status).toBe(308);
    expect(location(a)).toEqual(['http://foobar.com/images/abcd0000f123']);
    expect(location(await send(`${P}/r5/assets/abcd0000f123/images?itworked=true`))).toEqual(['http://foobar.com/images/abcd0000f123?itworked=true']);
  });

  it('an https:// service redirects to https with its port; dot segments resolved as the match resolved them', async () => {
    expect(location(await send(`${P}/r6/a/../b?x=1`))).toEqual([`https://secure.example.com:8443${P}/r6/b?x=1`]);
  });

  it('over HTTP/2 the same redirect: status, Location and the answer edits, no body', async () => {
    const session = http2.connect(`http://127.0.0.1:${gw.port}`);
    try {
      const head = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const s = session.request({ ':path': `${P}/r1/h2?q=1`, ':method': 'GET', ':authority': 'gw.example' });
        let h: http2.IncomingHttpHeaders = {};
        let bytes = 0;
        s.on('response', (x) => (h = x));
        s.on('data', (d: Buffer) => (bytes += d.length));
        s.on('end', () => (bytes === 0 ? resolve(h) : reject(new Error(`a body of ${bytes} bytes`))));
        s.on('error', reject);
      });
      expect(head[':status']).toBe(301);
      expect(head.location).toBe(`http://foobar.com${P}/r1/h2?q=1`);
      expect(head['x-redirected']).toBe('yes');
    } finally {
      session.close();
    }
    expect(model.requests).toHaveLength(0);
  });

  it('counted once per answer as the gateway’s own, on the route', async () => {
    const series = `seldon_gateway_requests_total{namespace="${NS}",deployment="redir",predictor="r3",protocol="rest",kind="primary",code="302"}`;
    const before = await metric(gw.adminUrl, series);
    await send(`${P}/r3/foo/x`);
    expect((await metric(gw.adminUrl, series)) - before).toBe(1);
    expect(model.requests).toHaveLength(0);
  });
});
