/**
 * Emissary's AuthenticationGRPCVerTest (t_extauth.py), ported: an AuthService with `proto: grpc` and
 * `protocol_version: "v3"` (here --ext-auth-service grpc://…, the one version the gateway speaks) in front of the
 * class's one Mapping; the auth service a real gRPC envoy.service.auth.v3.Authorization/Check server behaving as
 * kat-server's (test/fixtures/kat-auth.ts), the target one that answers the headers
 * `kat-req-http-requested-header` names, as kat-server does. Each query asserts the CheckRequest the auth
 * service received, what the model received and what the client got.
 * Its v2 and default variants are not ported: they configure an AuthService resource with another protocol_version,
 * which Emissary refuses (500 on every request); the gateway reads no AuthService and has no protocol_version.
 */
import { describe, expect, it } from 'vitest';
import { headerValue, headerValues, type RecordedRequest } from '../../fixtures/recording-upstream.js';
import { get, katGateway, startGrpcAuth, TARGET } from '../../fixtures/kat-auth.js';
import { DESIGN_DIFFERENCES } from '../../../routing/emissary/design-differences.js';

/** kat-server's HTTP answer: 200, with each header `kat-req-http-requested-header` names copied back. */
function echoRequested(req: RecordedRequest) {
  const names = (headerValue(req.headers, 'kat-req-http-requested-header') ?? '').split(',').map((n) => n.trim().toLowerCase());
  const copied = req.headers.filter(([k]) => names.includes(k.toLowerCase()));
  return { headers: [['Content-Type', 'application/json'], ...copied] as [string, string][], body: '{"backend":"target"}' };
}

describe('AuthenticationGRPCVerTest (t_extauth.py), protocol_version v3', () => {
  const kat = katGateway({
    auth: startGrpcAuth,
    mappings: TARGET,
    args: (auth) => ['--ext-auth-service', `grpc://127.0.0.1:${auth.port}`, '--ext-auth-timeout', '5000ms'],
  });

  it("[0]: the CheckRequest carries the request and every header; the 401 reaches the client with the auth service's headers, nothing upstream", async () => {
    kat.target.setResponder(echoRequested);
    const before = kat.auth.checks.length;
    const r = await get(kat.gw, '/seldon/kat/target/', [
      ['kat-req-extauth-requested-status', '401'],
      ['baz', 'baz'],
      ['kat-req-extauth-request-header', 'baz'],
      ['x-case', 'v0'],
    ]);
    expect(kat.auth.checks).toHaveLength(before + 1);
    const http = kat.auth.checks[before]!.attributes.request.http;
    expect([http.method, http.path, http.host, http.scheme]).toEqual(['GET', '/seldon/kat/target/', 'kat.example', 'http']);
    expect(http.headers['x-forwarded-proto']).toBe('http');
    expect(http.headers['user-agent']).toBe('kat/1');
    expect(http.headers['baz']).toBe('baz');
    expect(http.headers['kat-req-extauth-request-header']).toBe('baz');
    expect(r.status).toBe(401);
    expect(JSON.parse(r.body.toString())).toEqual({ backend: 'auth', status: 401 });
    expect(headerValues(r.headers, 'kat-resp-extauth-protocol-version')).toEqual(['v3']);
    // Emissary's `Server: envoy`: the gateway writes none without the Module's server_name, by design.
    expect(headerValues(r.headers, 'server')).toEqual([]);
    expect(DESIGN_DIFFERENCES.some((d) => d.topic === 'server header')).toBe(true);
    expect(kat.target.byCase('v0')).toHaveLength(0);
  });

  it('[1]: the check carries the status and Location asked for; the 302 and its Location reach the client', async () => {
    const before = kat.auth.checks.length;
    const r = await get(kat.gw, '/seldon/kat/target/', [
      ['kat-req-extauth-requested-status', '302'],
      ['kat-req-extauth-requested-location', 'foo'],
      ['x-case', 'v1'],
    ]);
    const h = kat.auth.checks[before]!.attributes.request.http.headers;
    expect([h['kat-req-extauth-requested-status'], h['kat-req-extauth-requested-location']]).toEqual(['302', 'foo']);
    expect(r.status).toBe(302);
    expect(headerValues(r.headers, 'location')).toEqual(['foo']);
    expect(headerValues(r.headers, 'kat-resp-extauth-protocol-version')).toEqual(['v3']);
    expect(kat.target.byCase('v1')).toHaveLength(0);
  });

  it('[2]: the header the denial names (X-Foo) comes back to the client with the 401', async () => {
    const before = kat.auth.checks.length;
    const r = await get(kat.gw, '/seldon/kat/target/', [
      ['kat-req-extauth-requested-status', '401'],
      ['x-foo', 'foo'],
      ['kat-req-extauth-requested-header', 'x-foo'],
      ['x-case', 'v2'],
    ]);
    const h = kat.auth.checks[before]!.attributes.request.http.headers;
    expect([h['kat-req-extauth-requested-status'], h['kat-req-extauth-requested-header'], h['x-foo']]).toEqual(['401', 'x-foo', 'foo']);
    expect(r.status).toBe(401);
    expect(headerValues(r.headers, 'x-foo')).toEqual(['foo']);
    expect(headerValues(r.headers, 'kat-resp-extauth-protocol-version')).toEqual(['v3']);
    expect(kat.target.byCase('v2')).toHaveLength(0);
  });

  it('[3]: allowed: the model gets foo: foo,bar and baz: bar (appended), Authorization as sent, the protocol version; the client its Authorization back', async () => {
    kat.target.setResponder(echoRequested);
    const r = await get(kat.gw, '/seldon/kat/target/', [
      ['kat-req-extauth-requested-status', '200'],
      ['authorization', 'foo-11111'],
      ['foo', 'foo'],
      ['kat-req-extauth-append', 'foo=bar;baz=bar'],
      ['kat-req-http-requested-header', 'Authorization'],
      ['x-case', 'v3'],
    ]);
    expect(r.status).toBe(200);
    expect(headerValues(r.headers, 'authorization')).toEqual(['foo-11111']);
    const seen = kat.target.byCase('v3');
    expect(seen).toHaveLength(1);
    const h = seen[0]!.headers;
    expect(seen[0]!.target).toBe('/');
    expect(headerValues(h, 'kat-req-extauth-requested-status')).toEqual(['200']);
    expect(headerValues(h, 'kat-req-http-requested-header')).toEqual(['Authorization']);
    expect(headerValues(h, 'authorization')).toEqual(['foo-11111']);
    expect(headerValues(h, 'foo')).toEqual(['foo,bar']);
    expect(headerValues(h, 'baz')).toEqual(['bar']);
    expect(headerValues(h, 'kat-resp-extauth-protocol-version')).toEqual(['v3']);
  });
});
