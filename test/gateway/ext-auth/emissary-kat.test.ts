/**
 * Emissary's external auth acceptance tests (python/tests/src/tests/kat/t_extauth.py and
 * t_headerrouting.py), ported: each `describe` is named after the KAT class it ports, its
 * Mappings are the class's (under `/seldon/kat/`, the prefix a deployment may claim), its auth
 * service a stand-in that behaves as Emissary's kat-server does (the status, headers, cookies and
 * appends a request asks for), speaking HTTP or real gRPC envoy.service.auth.v3.Authorization/Check.
 * Each query asserts what the auth service, the model and the client received.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { headerValue, headerValues } from '../../fixtures/recording-upstream.js';
import { get, katGateway, mapping, rawValues, startGrpcAuth, startHttpAuth, TARGET } from '../../fixtures/kat-auth.js';
import { sdep } from '../../helpers/gateway.js';

/** The header-routing pair of AuthenticationHeaderRouting: target2 only with X-Auth-Route: Route. */
const HEADER_ROUTING = [
  mapping('target1', 'prefix: /seldon/kat/target/\nservice: target1.kat:8000'),
  mapping('target2', 'prefix: /seldon/kat/target/\nservice: target2.kat:8000\nheaders:\n  X-Auth-Route: Route'),
].join('\n---\n');

describe('AuthenticationHeaderRouting, its auth service HeaderRoutingAuth (t_headerrouting.py), over HTTP', () => {
  // prefix ENDS WITH /good/ → 200 with X-Auth-Route (target2); /nohdr/ → 200 without (target1); /strip/ → 200 removing X-Client; else 403.
  const kat = katGateway({
    auth: () =>
      startHttpAuth((url) =>
        url.endsWith('/good/')
          ? { status: 200, headers: [['X-Auth-Route', 'Route']] }
          : url.endsWith('/nohdr/')
            ? { status: 200, headers: [] }
            : url.endsWith('/strip/')
              ? { status: 200, headers: [['x-envoy-auth-headers-to-remove', 'x-client']] }
              : { status: 403, headers: [] },
      ),
    // Beside the pair: a route only a request with X-Client: yes matches.
    mappings: `${HEADER_ROUTING}\n---\n${mapping('needs-client', 'prefix: /seldon/kat/needs/\nservice: target1.kat:8000\nheaders:\n  X-Client: "yes"')}`,
    targets: { target1: ['target1.kat:8000'], target2: ['target2.kat:8000'] },
    args: (auth) => ['--ext-auth-service', `http://127.0.0.1:${auth.port}`, '--ext-auth-allowed-authorization-headers', 'X-Auth-Route', '--ext-auth-allowed-authorization-headers', 'Extauth'],
  });

  it('[0] and [3]: the auth service says 403, no target is reached', async () => {
    for (const [i, path] of [
      [0, '/seldon/kat/target/'],
      [3, '/seldon/kat/target/crap/'],
    ] as const) {
      const r = await get(kat.gw, path, [['x-case', `hr${i}`]]);
      expect(r.status).toBe(403);
      expect(kat.target1.byCase(`hr${i}`)).toHaveLength(0);
      expect(kat.target2.byCase(`hr${i}`)).toHaveLength(0);
    }
  });

  it('[1]: the X-Auth-Route the auth service adds routes the request again, to target2, which receives it; the auth service is asked once', async () => {
    const before = kat.auth.checks.length;
    const r = await get(kat.gw, '/seldon/kat/target/good/', [['x-case', 'hr1']]);
    expect(r.status).toBe(200);
    expect(headerValue(r.headers, 'x-upstream')).toBe('target2');
    expect(kat.target1.byCase('hr1')).toHaveLength(0);
    const seen = kat.target2.byCase('hr1');
    expect(seen).toHaveLength(1);
    // Emissary's default rewrite (`/`) replaces the matched prefix.
    expect(seen[0]!.target).toBe('/good/');
    expect(headerValues(seen[0]!.headers, 'x-auth-route')).toEqual(['Route']);
    expect(kat.auth.checks.length - before).toBe(1);
  });

  it('[2]: an allowance without the header leaves the request on target1', async () => {
    const r = await get(kat.gw, '/seldon/kat/target/nohdr/', [['x-case', 'hr2']]);
    expect(r.status).toBe(200);
    expect(headerValue(r.headers, 'x-upstream')).toBe('target1');
    expect(kat.target1.byCase('hr2')).toHaveLength(1);
    expect(kat.target2.byCase('hr2')).toHaveLength(0);
  });

  it('a client that sends X-Auth-Route itself is still checked, once, and routed by it as Envoy routes it', async () => {
    const before = kat.auth.checks.length;
    expect(
      (
        await get(kat.gw, '/seldon/kat/target/crap/', [
          ['x-case', 'forged'],
          ['X-Auth-Route', 'Route'],
        ])
      ).status,
    ).toBe(403);
    expect(kat.target2.byCase('forged')).toHaveLength(0);
    expect(kat.auth.checks.length - before).toBe(1);
  });

  it('an allowance that removes the header its route needs leaves the request without a route: 404, nothing upstream, the auth service asked once', async () => {
    const before = kat.auth.checks.length;
    const r = await get(kat.gw, '/seldon/kat/needs/strip/', [
      ['x-case', 'stripped'],
      ['X-Client', 'yes'],
    ]);
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body.toString())).toMatchObject({ status: { code: 404, status: 'FAILURE' } });
    expect(kat.target1.byCase('stripped')).toHaveLength(0);
    expect(kat.target2.byCase('stripped')).toHaveLength(0);
    expect(kat.auth.checks.length - before).toBe(1);
  });
});

describe('AuthenticationHeaderRouting, its auth service HeaderRoutingAuth (t_headerrouting.py), over gRPC, and a re-route that would skip its own checks', () => {
  const guarded = [
    mapping('open', 'prefix: /seldon/kat/guarded/\nservice: target1.kat:8000'),
    // Only the auth service's header routes here: a Service of another deployment, whose OAuth guards it.
    mapping('oauth-only', 'prefix: /seldon/kat/guarded/\nservice: vault-main.kat:8000\nheaders:\n  X-Auth-Route: Route'),
  ].join('\n---\n');
  const kat = katGateway({
    auth: startGrpcAuth,
    mappings: `${HEADER_ROUTING}\n---\n${guarded}`,
    manifests: { 'vault.yaml': sdep('vault', 'kat', { predictors: [{ name: 'main' }], oauth_key: 'k', oauth_secret: 's' }, { 'seldon.io/gateway-auth': 'oauth' }) },
    targets: { target1: ['target1.kat:8000'], target2: ['target2.kat:8000', 'vault-main.kat:8000'] },
    args: (auth) => ['--ext-auth-service', `grpc://127.0.0.1:${auth.port}`],
  });

  it('the header set in OkHttpResponse routes the request to target2; without it, target1', async () => {
    const good = await get(kat.gw, '/seldon/kat/target/good/', [['x-case', 'g1']]);
    expect(headerValue(good.headers, 'x-upstream')).toBe('target2');
    expect(headerValues(kat.target2.byCase('g1')[0]!.headers, 'x-auth-route')).toEqual(['Route']);
    expect(kat.target1.byCase('g1')).toHaveLength(0);
    const plain = await get(kat.gw, '/seldon/kat/target/other/', [['x-case', 'g2']]);
    expect(headerValue(plain.headers, 'x-upstream')).toBe('target1');
    expect(kat.target2.byCase('g2')).toHaveLength(0);
  });

  it('a re-route to a route whose own OAuth check was not made is refused (403), nothing upstream', async () => {
    const r = await get(kat.gw, '/seldon/kat/guarded/good/', [['x-case', 'g3']]);
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body.toString())).toMatchObject({ status: { code: 403, status: 'FAILURE' } });
    expect(r.body.toString()).toContain('kat/kat/oauth-only, whose own checks');
    expect(kat.target1.byCase('g3')).toHaveLength(0);
    expect(kat.target2.byCase('g3')).toHaveLength(0);
  });
});

describe('AuthenticationGRPCTest', () => {
  const kat = katGateway({
    auth: startGrpcAuth,
    mappings: [
      TARGET,
      mapping('context-extensions', 'prefix: /seldon/kat/context-extensions/\nservice: target.kat:8000\nauth_context_extensions:\n  first: "first element"\n  second: "second element"'),
      // The CRD form (metadata and spec), as the KAT's auth-context-mapping is written.
      'apiVersion: getambassador.io/v3alpha1\nkind: Mapping\nmetadata:\n  name: auth-context-mapping\nspec:\n  prefix: /seldon/kat/context-extensions-crd/\n  service: target.kat:8000\n  auth_context_extensions:\n    context: "auth-context-name"\n    data: "auth-data"',
      mapping('bad-extensions', 'prefix: /seldon/kat/bad-extensions/\nservice: target.kat:8000\nauth_context_extensions:\n  n: 1'),
    ].join('\n---\n'),
    args: (auth) => ['--ext-auth-service', `grpc://127.0.0.1:${auth.port}`],
  });

  it("[0]: the check carries every request header; the 401 comes back with the auth service's headers", async () => {
    const before = kat.auth.checks.length;
    const r = await get(kat.gw, '/seldon/kat/target/', [
      ['kat-req-extauth-requested-status', '401'],
      ['baz', 'baz'],
      ['request-header', 'baz'],
      ['x-case', 'k0'],
    ]);
    const http = kat.auth.checks[before]!.attributes.request.http;
    expect(http.path).toBe('/seldon/kat/target/');
    expect(http.headers['x-forwarded-proto']).toBe('http');
    expect(http.headers['user-agent']).toBe('kat/1');
    expect(http.headers['baz']).toBe('baz');
    expect(r.status).toBe(401);
    expect(headerValue(r.headers, 'kat-resp-extauth-protocol-version')).toBe('v3');
    expect(kat.target.byCase('k0')).toHaveLength(0);
  });

  it('[1]: the Location of a 302 denial reaches the client', async () => {
    const r = await get(kat.gw, '/seldon/kat/target/', [
      ['kat-req-extauth-requested-status', '302'],
      ['kat-req-extauth-requested-location', 'foo'],
      ['x-case', 'k1'],
    ]);
    expect(r.status).toBe(302);
    expect(headerValues(r.headers, 'location')).toEqual(['foo']);
    expect(headerValue(r.headers, 'kat-resp-extauth-protocol-version')).toBe('v3');
    expect(kat.target.byCase('k1')).toHaveLength(0);
  });

  it('[2]: a header the denial names comes back to the client', async () => {
    const r = await get(kat.gw, '/seldon/kat/target/', [
      ['kat-req-extauth-requested-status', '401'],
      ['x-foo', 'foo'],
      ['kat-req-extauth-requested-header', 'x-foo'],
    ]);
    expect(r.status).toBe(401);
    expect(headerValues(r.headers, 'x-foo')).toEqual(['foo']);
  });

  it('[3]: appended headers arrive joined (foo: foo,bar) or added (baz: bar), one line each; Authorization as sent', async () => {
    const r = await get(kat.gw, '/seldon/kat/target/', [
      ['kat-req-extauth-requested-status', '200'],
      ['authorization', 'foo-11111'],
      ['foo', 'foo'],
      ['kat-req-extauth-append', 'foo=bar;baz=bar'],
      ['x-case', 'k3'],
    ]);
    expect(r.status).toBe(200);
    const seen = kat.target.byCase('k3')[0]!.headers;
    expect(headerValues(seen, 'foo')).toEqual(['foo,bar']);
    expect(headerValues(seen, 'baz')).toEqual(['bar']);
    expect(headerValues(seen, 'authorization')).toEqual(['foo-11111']);
    expect(headerValues(seen, 'kat-resp-extauth-protocol-version')).toEqual(['v3']);
  });

  it("[4] and [5]: a Mapping's auth_context_extensions go in the CheckRequest (annotation and CRD forms); the plain route's carries none", async () => {
    for (const [i, path, want] of [
      [4, '/seldon/kat/context-extensions/', { first: 'first element', second: 'second element' }],
      [5, '/seldon/kat/context-extensions-crd/', { context: 'auth-context-name', data: 'auth-data' }],
    ] as const) {
      const before = kat.auth.checks.length;
      const r = await get(kat.gw, path, [
        ['authorization', `foo-${i}`],
        ['x-case', `k${i}`],
      ]);
      expect(r.status).toBe(200);
      expect(kat.auth.checks[before]!.attributes.context_extensions).toEqual(want);
      const seen = kat.target.byCase(`k${i}`);
      expect(seen).toHaveLength(1);
      expect(JSON.parse(headerValue(seen[0]!.headers, 'kat-resp-extauth-context-extensions')!)).toEqual(want);
      expect(headerValues(seen[0]!.headers, 'authorization')).toEqual([`foo-${i}`]);
    }
    const before = kat.auth.checks.length;
    await get(kat.gw, '/seldon/kat/target/', [['x-case', 'k6']]);
    expect(kat.auth.checks[before]!.attributes.context_extensions).toEqual({});
  });

  it('a Mapping whose auth_context_extensions is not a map of strings is dropped, with the reason; nothing is sent changed', async () => {
    const r = await get(kat.gw, '/seldon/kat/bad-extensions/', [['x-case', 'bad']]);
    expect(r.status).toBe(404);
    expect(kat.target.byCase('bad')).toHaveLength(0);
    const routes = (await (await fetch(`${kat.gw.adminUrl}/routes`)).json()) as unknown;
    expect(JSON.stringify(routes)).toContain('auth_context_extensions.n must be a string, not number');
  });
});

describe('AuthenticationHTTPBufferedTest', () => {
  const kat = katGateway({
    auth: startHttpAuth,
    mappings: [
      TARGET,
      // Context extensions on an HTTP auth service: honoured (the Mapping routes), and nothing of them is sent, as Envoy sends none.
      mapping('ctx', 'prefix: /seldon/kat/ctx/\nservice: target.kat:8000\nauth_context_extensions:\n  first: "first element"'),
    ].join('\n---\n'),
    args: (auth) => [
      '--ext-auth-service',
      `http://127.0.0.1:${auth.port}`,
      '--ext-auth-path-prefix',
      '/extauth',
      ...['X-Foo', 'X-Bar', 'Kat-Req-Http-Requested-Status', 'Kat-Req-Http-Requested-Header', 'Kat-Req-Http-Requested-Cookie', 'Location'].flatMap((h) => ['--ext-auth-allowed-request-headers', h]),
      ...['X-Foo', 'Set-Cookie'].flatMap((h) => ['--ext-auth-allowed-authorization-headers', h]),
      '--ext-auth-include-body',
      '4096',
      '--ext-auth-allow-partial',
    ],
  });

  it('[0]: a GET is checked at the prefixed path with Content-Length: 0, the forwarding headers and User-Agent, never a header not allowed', async () => {
    const before = kat.auth.checks.length;
    const r = await get(kat.gw, '/seldon/kat/target/', [
      ['kat-req-http-requested-status', '401'],
      ['Baz', 'baz'],
      ['Request-Header', 'Baz'],
      ['x-case', 'b0'],
    ]);
    expect(r.status).toBe(401);
    const c = kat.auth.checks[before]!;
    expect(c.method).toBe('GET');
    expect(c.url).toBe('/extauth/seldon/kat/target/');
    expect(rawValues(c.raw, 'content-length')).toEqual(['0']);
    expect(rawValues(c.raw, 'x-forwarded-proto')).toEqual(['http']);
    expect(rawValues(c.raw, 'x-forwarded-for')).toEqual(['127.0.0.1']);
    expect(rawValues(c.raw, 'user-agent')).toEqual(['kat/1']);
    expect(c.headers['baz']).toBeUndefined();
    expect(kat.target.byCase('b0')).toHaveLength(0);
  });

  it('[1]: a 302 denial returns its Location and every Set-Cookie', async () => {
    const r = await get(kat.gw, '/seldon/kat/target/', [
      ['kat-req-http-requested-status', '302'],
      ['location', 'foo'],
      ['kat-req-http-requested-cookie', 'foo, bar, baz'],
      ['kat-req-http-requested-header', 'location'],
    ]);
    expect(r.status).toBe(302);
    expect(headerValues(r.headers, 'location')).toEqual(['foo']);
    expect(headerValues(r.headers, 'set-cookie')).toEqual(['foo=foo', 'bar=bar', 'baz=baz']);
  });

  it('[2] and [3]: a denial returns an allowed authorization header (X-Foo), never another (X-Bar)', async () => {
    const foo = await get(kat.gw, '/seldon/kat/target/', [
      ['kat-req-http-requested-status', '401'],
      ['X-Foo', 'foo'],
      ['kat-req-http-requested-header', 'X-Foo'],
    ]);
    expect(foo.status).toBe(401);
    expect(headerValues(foo.headers, 'x-foo')).toEqual(['foo']);
    const bar = await get(kat.gw, '/seldon/kat/target/', [
      ['kat-req-http-requested-status', '401'],
      ['X-Bar', 'bar'],
      ['kat-req-http-requested-header', 'X-Bar'],
    ]);
    expect(bar.status).toBe(401);
    expect(headerValues(bar.headers, 'x-bar')).toEqual([]);
  });

  it('[4]: allowed, the model gets the Authorization the auth service answered with, one line', async () => {
    const r = await get(kat.gw, '/seldon/kat/target/', [
      ['kat-req-http-requested-status', '200'],
      ['Authorization', 'foo-11111'],
      ['kat-req-http-requested-header', 'Authorization'],
      ['x-case', 'b4'],
    ]);
    expect(r.status).toBe(200);
    expect(headerValues(kat.target.byCase('b4')[0]!.headers, 'authorization')).toEqual(['foo-11111']);
  });

  it("a Mapping's auth_context_extensions with an HTTP auth service: routed, and nothing of them in the check", async () => {
    const before = kat.auth.checks.length;
    const r = await get(kat.gw, '/seldon/kat/ctx/', [['x-case', 'ctx']]);
    expect(r.status).toBe(200);
    expect(kat.target.byCase('ctx')).toHaveLength(1);
    expect(kat.auth.checks[before]!.raw.join('\n')).not.toContain('first element');
  });
});

describe('AuthenticationHTTPFailureModeAllowTest', () => {
  const kat = katGateway({
    auth: startHttpAuth,
    mappings: TARGET,
    args: (auth) => [
      '--ext-auth-service',
      `http://127.0.0.1:${auth.port}`,
      '--ext-auth-path-prefix',
      '/extauth',
      ...['Kat-Req-Http-Requested-Status', 'Kat-Req-Http-Requested-Header'].flatMap((h) => ['--ext-auth-allowed-request-headers', h]),
      '--ext-auth-failure-mode-allow',
    ],
  });
  // kat-server's target answers the status the request asks for too.
  beforeAll(() =>
    kat.target.setResponder((req) => {
      const s = headerValue(req.headers, 'kat-req-http-requested-status') ?? '200';
      return { statusLine: `HTTP/1.1 ${s} X`, headers: [['X-Upstream', 'target']], body: '' };
    }),
  );

  it('[0]: allowed, the target answers', async () => {
    const r = await get(kat.gw, '/seldon/kat/target/', [
      ['kat-req-http-requested-status', '200'],
      ['x-case', 'f0'],
    ]);
    expect(r.status).toBe(200);
    expect(kat.target.byCase('f0')).toHaveLength(1);
  });

  it("[1]: the auth service's 503 is a failure, let through by failure_mode_allow: the target's own 503 reaches the client", async () => {
    const before = kat.auth.checks.length;
    const r = await get(kat.gw, '/seldon/kat/target/', [
      ['kat-req-http-requested-status', '503'],
      ['x-case', 'f1'],
    ]);
    expect(kat.auth.checks.length - before).toBe(1);
    expect(kat.target.byCase('f1')).toHaveLength(1);
    expect(r.status).toBe(503);
    expect(headerValue(r.headers, 'x-upstream')).toBe('target');
  });
});

describe('AuthenticationDisabledOnRedirectTest', () => {
  const kat = katGateway({
    auth: startHttpAuth,
    mappings: mapping('target', 'prefix: /seldon/kat/target/\nservice: target.kat\nhost_redirect: true'),
    targets: {},
    args: (auth) => ['--ext-auth-service', `http://127.0.0.1:${auth.port}`],
  });

  it('a host_redirect route answers its redirect without asking the auth service', async () => {
    const before = kat.auth.checks.length;
    const r = await get(kat.gw, '/seldon/kat/target/', []);
    expect(r.status).toBe(301);
    expect(headerValue(r.headers, 'location')).toBe('http://target.kat/seldon/kat/target/');
    expect(kat.auth.checks.length).toBe(before);
  });
});

describe('AuthenticationTest', () => {
  const kat = katGateway({
    auth: startHttpAuth,
    mappings: TARGET,
    args: (auth) => [
      '--ext-auth-service',
      `http://127.0.0.1:${auth.port}`,
      '--ext-auth-path-prefix',
      '/extauth',
      ...['X-Foo', 'X-Bar', 'Kat-Req-Http-Requested-Location', 'Kat-Req-Http-Requested-Status', 'Kat-Req-Http-Requested-Header'].flatMap((h) => ['--ext-auth-allowed-request-headers', h]),
      ...['X-Foo', 'X-Bar', 'Extauth'].flatMap((h) => ['--ext-auth-allowed-authorization-headers', h]),
    ],
  });

  it('[0]: the check: the prefixed path, Content-Length: 0, X-Forwarded-For and User-Agent, no header not allowed; 401', async () => {
    const before = kat.auth.checks.length;
    const r = await get(kat.gw, '/seldon/kat/target/', [
      ['kat-req-http-requested-status', '401'],
      ['Baz', 'baz'],
      ['Request-Header', 'Baz'],
    ]);
    expect(r.status).toBe(401);
    const c = kat.auth.checks[before]!;
    expect(c.url).toBe('/extauth/seldon/kat/target/');
    expect(rawValues(c.raw, 'content-length')).toEqual(['0']);
    expect(rawValues(c.raw, 'x-forwarded-for')).toHaveLength(1);
    expect(rawValues(c.raw, 'user-agent')).toEqual(['kat/1']);
    expect(c.headers['baz']).toBeUndefined();
  });

  it('[1]: the Location of a 302 reaches the client', async () => {
    const r = await get(kat.gw, '/seldon/kat/target/', [
      ['kat-req-http-requested-status', '302'],
      ['kat-req-http-requested-location', 'foo'],
      ['kat-req-http-requested-header', 'location'],
    ]);
    expect(r.status).toBe(302);
    expect(headerValues(r.headers, 'location')).toEqual(['foo']);
  });

  it('[2] and [3]: X-Foo and X-Bar, both allowed here, come back with the denial', async () => {
    for (const name of ['X-Foo', 'X-Bar']) {
      const r = await get(kat.gw, '/seldon/kat/target/', [
        ['kat-req-http-requested-status', '401'],
        [name, 'v'],
        ['kat-req-http-requested-header', name],
      ]);
      expect(r.status).toBe(401);
      expect(headerValues(r.headers, name.toLowerCase())).toEqual(['v']);
    }
  });

  it('[4]: allowed with the Authorization the auth service returns', async () => {
    const r = await get(kat.gw, '/seldon/kat/target/', [
      ['kat-req-http-requested-status', '200'],
      ['Authorization', 'foo-11111'],
      ['kat-req-http-requested-header', 'Authorization'],
      ['x-case', 'a4'],
    ]);
    expect(r.status).toBe(200);
    expect(headerValues(kat.target.byCase('a4')[0]!.headers, 'authorization')).toEqual(['foo-11111']);
  });

  it("[5]: a client's X-Forwarded-Proto: https is not what the auth service is told (http: the connection's), as the model's Extauth header shows", async () => {
    const r = await get(kat.gw, '/seldon/kat/target/', [
      ['X-Forwarded-Proto', 'https'],
      ['x-case', 'a5'],
    ]);
    expect(r.status).toBe(200);
    const extauth = headerValues(kat.target.byCase('a5')[0]!.headers, 'extauth');
    expect(extauth).toHaveLength(1);
    const told = JSON.parse(extauth[0]!) as { request: { headers: Record<string, string> } };
    expect(told.request.headers['x-forwarded-proto']).toBe('http');
  });
});

describe('AuthenticationHTTPPartialBufferTest', () => {
  const kat = katGateway({
    auth: startHttpAuth,
    mappings: TARGET,
    args: (auth) => [
      '--ext-auth-service',
      `http://127.0.0.1:${auth.port}`,
      '--ext-auth-path-prefix',
      '/extauth',
      ...['Kat-Req-Http-Requested-Status', 'Kat-Req-Http-Requested-Header'].flatMap((h) => ['--ext-auth-allowed-request-headers', h]),
      '--ext-auth-allowed-authorization-headers',
      'Kat-Resp-Http-Request-Body',
      '--ext-auth-add-header',
      'X-Added-Auth:auth-added',
      '--ext-auth-include-body',
      '7',
      '--ext-auth-allow-partial',
    ],
  });

  it('[0]: a body over max_bytes is checked by its first 7 bytes; the model gets it whole', async () => {
    const before = kat.auth.checks.length;
    const r = await get(
      kat.gw,
      '/seldon/kat/target/',
      [
        ['kat-req-http-requested-status', '200'],
        ['x-case', 'p0'],
      ],
      'message_body',
    );
    expect(r.status).toBe(200);
    expect(kat.auth.checks[before]!.body.toString()).toBe('message');
    expect(rawValues(kat.auth.checks[before]!.raw, 'x-envoy-auth-partial-body')).toEqual(['true']);
    const seen = kat.target.byCase('p0')[0]!;
    expect(headerValues(seen.headers, 'kat-resp-http-request-body')).toEqual(['message']);
    expect(seen.body.toString()).toBe('message_body');
  });

  it('[1]: a body within max_bytes is checked whole', async () => {
    const before = kat.auth.checks.length;
    const r = await get(
      kat.gw,
      '/seldon/kat/target/',
      [
        ['kat-req-http-requested-status', '200'],
        ['x-case', 'p1'],
      ],
      'body',
    );
    expect(r.status).toBe(200);
    expect(kat.auth.checks[before]!.body.toString()).toBe('body');
    expect(headerValues(kat.target.byCase('p1')[0]!.headers, 'kat-resp-http-request-body')).toEqual(['body']);
  });

  it('[2]: the check carries add_auth_headers (X-Added-Auth); a 401 reaches no model', async () => {
    const before = kat.auth.checks.length;
    const r = await get(
      kat.gw,
      '/seldon/kat/target/',
      [
        ['kat-req-http-requested-status', '401'],
        ['x-case', 'p2'],
      ],
      'body',
    );
    expect(r.status).toBe(401);
    expect(rawValues(kat.auth.checks[before]!.raw, 'x-added-auth')).toEqual(['auth-added']);
    expect(kat.target.byCase('p2')).toHaveLength(0);
  });
});

describe('AuthenticationTestV1 (one auth service: the gateway has one --ext-auth-service)', () => {
  const kat = katGateway({
    auth: startHttpAuth,
    mappings: [TARGET, mapping('target-unauthed', 'prefix: /seldon/kat/target/unauthed/\nservice: target.kat:8000\nbypass_auth: true')].join('\n---\n'),
    args: (auth) => [
      '--ext-auth-service',
      `http://127.0.0.1:${auth.port}`,
      '--ext-auth-path-prefix',
      '/extauth',
      ...['X-Foo', 'X-Bar', 'Kat-Req-Http-Requested-Status', 'Kat-Req-Http-Requested-Header', 'Location'].flatMap((h) => ['--ext-auth-allowed-request-headers', h]),
      ...['X-Foo', 'Extauth'].flatMap((h) => ['--ext-auth-allowed-authorization-headers', h]),
      '--ext-auth-status-on-error',
      '503',
    ],
  });

  it('[0]: the check is at /extauth and the path as received, Content-Length: 0; 401', async () => {
    const before = kat.auth.checks.length;
    const r = await get(kat.gw, '/seldon/kat/target/0', [
      ['kat-req-http-requested-status', '401'],
      ['Baz', 'baz'],
    ]);
    expect(r.status).toBe(401);
    expect(kat.auth.checks[before]!.url).toBe('/extauth/seldon/kat/target/0');
    expect(rawValues(kat.auth.checks[before]!.raw, 'content-length')).toEqual(['0']);
    expect(kat.auth.checks[before]!.headers['baz']).toBeUndefined();
  });

  it('[6]: a bypass_auth Mapping is not checked', async () => {
    const before = kat.auth.checks.length;
    const r = await get(kat.gw, '/seldon/kat/target/unauthed/6', [
      ['kat-req-http-requested-status', '200'],
      ['x-case', 'v6'],
    ]);
    expect(r.status).toBe(200);
    expect(kat.auth.checks.length).toBe(before);
    expect(kat.target.byCase('v6')).toHaveLength(1);
  });

  it("[7]: the auth service's 500 is a failure: status_on_error (503), in the gateway's words, nothing upstream", async () => {
    const r = await get(kat.gw, '/seldon/kat/target/7', [
      ['kat-req-http-requested-status', '500'],
      ['x-case', 'v7'],
    ]);
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body.toString())).toMatchObject({ status: { code: 503, status: 'FAILURE' } });
    expect(kat.target.byCase('v7')).toHaveLength(0);
  });

  it('[8..27]: twenty 403s, each the auth service asked once, none upstream', async () => {
    const before = kat.auth.checks.length;
    for (let i = 8; i < 28; i++) {
      const r = await get(kat.gw, `/seldon/kat/target/${i}`, [
        ['kat-req-http-requested-status', '403'],
        ['x-case', 'v403'],
      ]);
      expect(r.status).toBe(403);
    }
    expect(kat.auth.checks.length - before).toBe(20);
    expect(kat.target.byCase('v403')).toHaveLength(0);
  });
});

describe("a re-route after the auth service's edits spends nothing on a request the second match answers", () => {
  // Only a request with X-Client: yes matches; the auth service removes it on paths ending /strip/ (the request then matches nothing: 404).
  const clientOnly = mapping('lim-client', 'prefix: /seldon/kat/lim-client/\nservice: lim-main.kat:8000\nheaders:\n  X-Client: "yes"');
  const kat = katGateway({
    auth: () => startHttpAuth((url) => (url.endsWith('/strip/') ? { status: 200, headers: [['x-envoy-auth-headers-to-remove', 'x-client']] } : { status: 200, headers: [] })),
    mappings: TARGET,
    manifests: { 'lim.yaml': sdep('lim', 'kat', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': clientOnly, 'seldon.io/gateway-rate-limit': '1/h' }) },
    targets: { target: ['target.kat:8000', 'lim-main.kat:8000'] },
    args: (auth) => ['--ext-auth-service', `http://127.0.0.1:${auth.port}`],
  });

  it("three requests routed nowhere by the edits (404) take none of the route's 1/h: the next one is served, the one after is limited", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await get(kat.gw, '/seldon/kat/lim-client/strip/', [
        ['x-case', `spend${i}`],
        ['X-Client', 'yes'],
      ]);
      expect(r.status).toBe(404);
    }
    const served = await get(kat.gw, '/seldon/kat/lim-client/ok/', [
      ['x-case', 'spend-ok'],
      ['X-Client', 'yes'],
    ]);
    expect(served.status).toBe(200);
    expect(kat.target.byCase('spend-ok')).toHaveLength(1);
    const limited = await get(kat.gw, '/seldon/kat/lim-client/ok/', [
      ['x-case', 'spend-429'],
      ['X-Client', 'yes'],
    ]);
    expect(limited.status).toBe(429);
    expect(kat.target.byCase('spend-429')).toHaveLength(0);
    for (let i = 0; i < 3; i++) expect(kat.target.byCase(`spend${i}`)).toHaveLength(0);
  });
});
