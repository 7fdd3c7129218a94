/**
 * JWT at the edge, end to end (docs/security.md#jwt): a gateway with --jwt-providers in front of a
 * recording REST model and a grpc-js model, tokens signed by a real JWKS endpoint's keys
 * (test/fixtures/identity-provider.ts). What the client reads, byte for byte, for every way a token
 * fails; what the model receives when one passes (the claim headers, never the token unless
 * forwarded, never a client's own claim header); gRPC's statuses; and annotations that try to name
 * a URL or an unknown provider.
 */
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { SignJWT, UnsecuredJWT } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerValue, rawRequest, startRecordingUpstream, type RawResponse, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { signingKey, startIdentityProvider, type IdentityProvider, type SigningKey } from '../../fixtures/identity-provider.js';
import { md, predict } from '../../helpers/grpc.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { TestClock } from '../../helpers/clock.js';
import { startLimitedModel, type LimitedModel } from '../../fixtures/limited-model.js';
import { waitUntil } from '../../helpers/wait.js';

const PREDICT = '/api/v1.0/predictions';
const BODY = Buffer.from('{"data":{"ndarray":[[1]]}}');
const BEARER = 'Bearer realm="seldon-gateway"';

const iris = JSON.stringify({ providers: ['corp'], audiences: ['iris'], scopes: ['predict'], claims: { tenant: 'team-a' }, claimsToHeaders: { sub: 'x-jwt-sub', tenant: 'x-tenant' } });
const open = JSON.stringify({ providers: ['corp'], allowMissing: true, claimsToHeaders: { sub: 'x-jwt-sub' } });
const fwd = JSON.stringify({ providers: ['corp'], from: ['query:access_token', 'cookie:session'], forward: false });
const kept = JSON.stringify({ providers: ['corp'], forward: true });

describe('JWT at the edge', () => {
  let idp: IdentityProvider;
  let key: SigningKey;
  let model: RecordingUpstream;
  let grpcModel: GrpcBackend;
  let limited: LimitedModel;
  let gw: TestGateway;
  let clients: GrpcClients;
  const clock = new TestClock();

  const good = (extra: Record<string, unknown> = {}): Promise<string> => idp.token({ sub: 'alice', aud: ['seldon', 'iris'], scope: 'read predict', tenant: 'team-a', ...extra }, key, clock.now());

  async function post(name: string, caseId: string, headers: [string, string][] = [], query = ''): Promise<RawResponse> {
    const { res, x } = await rawRequest(
      gw.port,
      { target: `/seldon/models/${name}${PREDICT}${query}`, headers: [['Host', 'gw.example'], ['x-case', caseId], ['Content-Type', 'application/json'], ...headers], body: BODY },
      10_000,
    );
    x.socket.destroy();
    if (!res) throw new Error('no answer');
    return res;
  }

  beforeAll(async () => {
    idp = await startIdentityProvider();
    key = await signingKey('k1', 'RS256');
    idp.published = [key, await signingKey('k2', 'ES256')];
    model = await startRecordingUpstream({ name: 'model' });
    grpcModel = await startGrpcBackend({ name: 'grpc-model' });
    limited = await startLimitedModel({ concurrency: 1, serviceMs: null });
    const dir = mkdtempSync(join(tmpdir(), 'sgw-jwt-'));
    const providers = join(dir, 'providers.yaml');
    writeFileSync(providers, `- name: corp\n  issuer: ${idp.issuer}\n  jwksUri: ${idp.jwksUri}\n  audiences: [seldon]\n  clockSkew: 30s\n`);
    const resolve: Record<string, number> = {};
    for (const n of ['iris', 'open', 'fwd', 'kept']) {
      resolve[`${n}-main.models:8000`] = model.port;
      resolve[`${n}-main.models:5001`] = grpcModel.port;
    }
    resolve['fair-main.models:8000'] = limited.restPort;
    gw = await startTestGateway({
      manifests: {
        'iris.yaml': sdep('iris', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-jwt': iris }),
        'open.yaml': sdep('open', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-jwt': open }),
        'fwd.yaml': sdep('fwd', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-jwt': fwd }),
        'kept.yaml': sdep('kept', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-jwt': kept }),
        'ssrf.yaml': sdep(
          'ssrf',
          'models',
          { predictors: [{ name: 'main' }] },
          { 'seldon.io/gateway-jwt': JSON.stringify({ providers: ['corp'], jwksUri: `http://127.0.0.1:${idp.port}/tenant-keys` }) },
        ),
        'fair.yaml': sdep(
          'fair',
          'models',
          { predictors: [{ name: 'main' }] },
          {
            'seldon.io/gateway-jwt': JSON.stringify({ providers: ['corp'], claimsToHeaders: { tenant: 'x-tenant' } }),
            'seldon.io/gateway-flow': '{"concurrency": 1, "queue": 20, "queueTimeout": "30s", "tenant": "header:x-tenant"}',
          },
        ),
        'stranger.yaml': sdep('stranger', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-jwt': JSON.stringify({ providers: [`http://127.0.0.1:${idp.port}/evil`] }) }),
      },
      resolve,
      args: ['--jwt-providers', providers],
      now: clock.now,
    });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });
  afterAll(async () => {
    clients?.close();
    await gw?.stop();
    await model?.close();
    await grpcModel?.close();
    await limited?.close();
    await idp?.close();
  });

  it('a valid token: 200; the model gets the claim headers (a client-sent one replaced) and no token', async () => {
    const token = await good();
    const r = await post('iris', 'valid', [
      ['Authorization', `Bearer ${token}`],
      ['X-Jwt-Sub', 'mallory'],
    ]);
    expect(r.status).toBe(200);
    const seen = model.byCase('valid');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.body.equals(BODY)).toBe(true);
    const lines = seen[0]!.headers.map(([k, v]) => `${k.toLowerCase()}: ${v}`);
    expect(lines.filter((l) => /^(authorization|x-jwt-sub|x-tenant):/.test(l))).toEqual(['x-jwt-sub: alice', 'x-tenant: team-a']);
    // The same token again: from the cache, counted as such.
    expect((await post('iris', 'valid-again', [['Authorization', `Bearer ${token}`]])).status).toBe(200);
    expect(await metric(gw.adminUrl, 'seldon_gateway_jwt_verifications_total{provider="corp",result="cached"}')).toBeGreaterThanOrEqual(1);
  });

  it('one token reused on routes with different policies: each route sends its own claim headers, every time (the cached edits are per route)', async () => {
    const token = await good({ sub: 'reuser' });
    const sent: string[][] = [];
    for (const [i, name] of ['iris', 'open', 'iris', 'open', 'kept'].entries()) {
      const r = await post(name, `reuse-${i}`, [
        ['Authorization', `Bearer ${token}`],
        ['X-Tenant', 'spoofed'],
      ]);
      expect(r.status, name).toBe(200);
      sent.push(
        model
          .byCase(`reuse-${i}`)[0]!
          .headers.map(([k, v]) => `${k.toLowerCase()}: ${v}`)
          .filter((l) => /^(authorization|x-jwt-sub|x-tenant):/.test(l)),
      );
    }
    expect(sent).toEqual([
      ['x-jwt-sub: reuser', 'x-tenant: team-a'],
      ['x-tenant: spoofed', 'x-jwt-sub: reuser'],
      ['x-jwt-sub: reuser', 'x-tenant: team-a'],
      ['x-tenant: spoofed', 'x-jwt-sub: reuser'],
      [`authorization: Bearer ${token}`, 'x-tenant: spoofed'],
    ]);
  });

  const refusals: [string, () => Promise<[string, string][]>, number, string, string][] = [
    ['missing', async () => [], 401, 'JWT: no token', BEARER],
    [
      'expired',
      async () => [['Authorization', `Bearer ${await good({ exp: Math.floor(clock.now() / 1000) - 120 })}`]],
      401,
      'JWT: the token has expired',
      `${BEARER}, error="invalid_token", error_description="the token has expired"`,
    ],
    [
      'not-yet-valid',
      async () => [['Authorization', `Bearer ${await good({ nbf: Math.floor(clock.now() / 1000) + 600 })}`]],
      401,
      'JWT: the token is not valid yet',
      `${BEARER}, error="invalid_token", error_description="the token is not valid yet"`,
    ],
    [
      'wrong-issuer',
      async () => [['Authorization', `Bearer ${await good({ iss: 'https://other.example' })}`]],
      401,
      "JWT: the token's issuer is not one this route accepts",
      `${BEARER}, error="invalid_token", error_description="the token's issuer is not one this route accepts"`,
    ],
    [
      'provider-audience',
      async () => [['Authorization', `Bearer ${await good({ aud: 'iris' })}`]],
      401,
      "JWT: the token's audience is not the provider's",
      `${BEARER}, error="invalid_token", error_description="the token's audience is not the provider's"`,
    ],
    [
      'route-audience',
      async () => [['Authorization', `Bearer ${await good({ aud: 'seldon' })}`]],
      401,
      "JWT: the token's audience is not iris",
      `${BEARER}, error="invalid_token", error_description="the token's audience is not iris"`,
    ],
    [
      'missing-scope',
      async () => [['Authorization', `Bearer ${await good({ scope: 'read' })}`]],
      403,
      'JWT: the token lacks the scope predict',
      `${BEARER}, error="insufficient_scope", scope="predict"`,
    ],
    ['wrong-claim', async () => [['Authorization', `Bearer ${await good({ tenant: 'team-b' })}`]], 403, 'JWT: the token\'s tenant claim is not "team-a"', `${BEARER}, error="insufficient_scope"`],
    [
      'alg-none',
      async () => [
        [
          'Authorization',
          `Bearer ${new UnsecuredJWT({ sub: 'alice', iss: idp.issuer, aud: ['seldon', 'iris'], scope: 'predict', tenant: 'team-a', exp: Math.floor(clock.now() / 1000) + 60 }).encode()}`,
        ],
      ],
      401,
      'JWT: the token\'s algorithm "none" is not accepted',
      `${BEARER}, error="invalid_token", error_description="the token's algorithm 'none' is not accepted"`,
    ],
    [
      'hs256-with-public-key',
      async () => {
        // The RS256/HS256 confusion: an HMAC "signed" with the provider's public key (its JWK's n, as a naive verifier would take it).
        const secret = new TextEncoder().encode(JSON.stringify(key.jwk));
        const t = await new SignJWT({ sub: 'alice', iss: idp.issuer, aud: ['seldon', 'iris'], scope: 'predict', tenant: 'team-a', exp: Math.floor(clock.now() / 1000) + 60 })
          .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
          .sign(secret);
        return [['Authorization', `Bearer ${t}`]];
      },
      401,
      'JWT: the token\'s algorithm "HS256" is not accepted',
      `${BEARER}, error="invalid_token", error_description="the token's algorithm 'HS256' is not accepted"`,
    ],
    [
      'bad-signature',
      async () => {
        const t = await good();
        return [['Authorization', `Bearer ${t.slice(0, -4)}${t.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`]];
      },
      401,
      "JWT: the token's signature does not verify",
      `${BEARER}, error="invalid_token", error_description="the token's signature does not verify"`,
    ],
    [
      'too-large',
      async () => [['Authorization', `Bearer ${'a'.repeat(9000)}`]],
      401,
      'JWT: the token is over 8192 bytes',
      `${BEARER}, error="invalid_token", error_description="the token is over 8192 bytes"`,
    ],
    [
      'malformed',
      async () => [['Authorization', 'Bearer not.a.jwt']],
      401,
      'JWT: the token is not a well-formed signed JWT',
      `${BEARER}, error="invalid_token", error_description="the token is not a well-formed signed JWT"`,
    ],
  ];

  it.each(refusals)('%s: answered as RFC 6750 says, with a Seldon-style body that never holds the token; the model sees nothing', async (id, headers, status, info, challenge) => {
    const sent = await headers();
    const r = await post('iris', id, sent);
    expect(r.status).toBe(status);
    expect(headerValue(r.headers, 'www-authenticate')).toBe(challenge);
    expect(r.body.toString()).toBe(JSON.stringify({ status: { code: status, info, reason: status === 401 ? 'UNAUTHENTICATED' : 'FORBIDDEN', status: 'FAILURE' } }));
    for (const [, v] of sent) expect(r.body.toString()).not.toContain(v.slice(7, 40));
    expect(model.byCase(id)).toHaveLength(0);
  });

  it('allowMissing: no token passes (claim headers cleared), a bad one is still refused', async () => {
    expect((await post('open', 'open-none', [['X-Jwt-Sub', 'mallory']])).status).toBe(200);
    const lines = model.byCase('open-none')[0]!.headers.map(([k, v]) => `${k.toLowerCase()}: ${v}`);
    expect(lines.filter((l) => l.startsWith('x-jwt-sub'))).toEqual([]);
    expect((await post('open', 'open-bad', [['Authorization', 'Bearer not.a.jwt']])).status).toBe(401);
    expect(model.byCase('open-bad')).toHaveLength(0);
  });

  it('a token in the query or a cookie: read there, and taken out before the model (forward: false); forward: true passes it on', async () => {
    const t = await good();
    expect((await post('fwd', 'query', [], `?access_token=${t}&x=1`)).status).toBe(200);
    expect(model.byCase('query')[0]!.target).toBe(`/api/v1.0/predictions?x=1`);
    expect((await post('fwd', 'cookie', [['Cookie', `a=1; session=${t}; b=2`]])).status).toBe(200);
    expect(model.byCase('cookie')[0]!.headers.filter(([k]) => k.toLowerCase() === 'cookie')).toEqual([['cookie', 'a=1; b=2']]);
    expect((await post('kept', 'kept', [['Authorization', `Bearer ${t}`]])).status).toBe(200);
    expect(model.byCase('kept')[0]!.headers.filter(([k]) => k.toLowerCase() === 'authorization')).toEqual([['Authorization', `Bearer ${t}`]]);
  });

  it('gRPC: a valid token passes with the claim metadata and without the token; UNAUTHENTICATED and PERMISSION_DENIED otherwise, the model reached only once', async () => {
    const before = grpcModel.calls.length;
    const ok = await predict(clients, { strData: 'x' }, md({ seldon: 'iris', namespace: 'models', authorization: `Bearer ${await good()}`, 'x-tenant': 'mallory' }));
    expect(ok.ok).toBe(true);
    const call = grpcModel.calls[grpcModel.calls.length - 1]!;
    expect(call.metadata['x-jwt-sub']).toBe('alice');
    expect(call.metadata['x-tenant']).toBe('team-a');
    expect(call.metadata['authorization']).toBeUndefined();
    const missing = await predict(clients, { strData: 'x' }, md({ seldon: 'iris', namespace: 'models' }));
    expect(missing.ok === false && missing.error.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(missing.ok === false && missing.error.details).toBe('JWT: no token');
    const scope = await predict(clients, { strData: 'x' }, md({ seldon: 'iris', namespace: 'models', authorization: `Bearer ${await good({ scope: 'read' })}` }));
    expect(scope.ok === false && scope.error.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(grpcModel.calls.length).toBe(before + 1);
  });

  it("flow control's tenant from a claim: a caller's own x-tenant header is not what flow control reads", async () => {
    const tokenOf = (tenant: string): Promise<string> => good({ tenant });
    const send = async (id: string, token: string, extra: Record<string, string> = {}): Promise<number> => {
      const r = await request(`${gw.url}/seldon/models/fair${PREDICT}`, {
        method: 'POST',
        body: BODY,
        headers: { 'content-type': 'application/json', 'x-test-id': id, authorization: `Bearer ${token}`, ...extra },
      });
      await r.body.text();
      return r.statusCode;
    };
    const queued = (): Promise<number> => metric(gw.adminUrl, 'seldon_gateway_flow_queued{namespace="models",deployment="fair",predictor="main"}');
    const [a, b] = [await tokenOf('A'), await tokenOf('B')];
    const all = [send('a0', a)];
    await limited.servedCount(1);
    all.push(send('a1', a), send('a2', a));
    await waitUntil(async () => (await queued()) === 2, 10_000);
    // Tenant A's token, claiming to be B by header: queued as A.
    all.push(send('spoof', a, { 'x-tenant': 'B' }));
    await waitUntil(async () => (await queued()) === 3, 10_000);
    all.push(send('b1', b));
    await waitUntil(async () => (await queued()) === 4, 10_000);
    for (let served = 2; served <= 5; served++) {
      limited.finish();
      await limited.servedCount(served);
    }
    limited.finish();
    expect(await Promise.all(all)).toEqual([200, 200, 200, 200, 200]);
    // Round robin between tenants: B's one request took A's second turn; the spoof waited with A's.
    expect(limited.served).toEqual(['a0', 'a1', 'b1', 'a2', 'spoof']);
  });

  it("the admin page shows each provider's keys: how many, how old, and no failure", async () => {
    const html = await (await request(`${gw.adminUrl}/`)).body.text();
    expect(html).toMatch(/<span class="jwt-provider" data-provider="corp">JWT <b>corp<\/b>: 2 keys, fetched \d+ (s|min)[^<]* ago<\/span>/);
  });

  it("/readyz shows each provider's keys: held, when fetched, no failure", async () => {
    const r = (await (await request(`${gw.adminUrl}/readyz`)).body.json()) as {
      status: string;
      jwtProviders: { provider: string; keys: number; fetchedAt: number | null; lastError: string | null }[];
    };
    expect(r.status).toBe('ready');
    expect(r.jwtProviders).toEqual([{ provider: 'corp', keys: 2, fetchedAt: expect.any(Number) as number, lastError: null, fetches: expect.any(Number) as number }]);
  });

  it('an annotation naming a URL, or a provider the operator did not name, rejects that deployment alone, with the reason in /routes; nothing is fetched for it', async () => {
    const routes = (await (await request(`${gw.adminUrl}/routes`)).body.json()) as { deployments: { name: string; state: string; reasons: string[] }[] };
    const ssrf = routes.deployments.find((d) => d.name === 'ssrf')!;
    expect(ssrf.state).toBe('rejected');
    expect(ssrf.reasons[0]).toBe("seldon.io/gateway-jwt: jwksUri: where keys come from is the operator's to say (--jwt-providers); an annotation names providers only");
    const stranger = routes.deployments.find((d) => d.name === 'stranger')!;
    expect(stranger.state).toBe('rejected');
    expect(stranger.reasons[0]).toContain('is not a provider of this gateway (configured: corp)');
    expect((await post('ssrf', 'ssrf')).status).not.toBe(200);
    expect(model.byCase('ssrf')).toHaveLength(0);
    expect([...idp.fetches.keys()].filter((p) => p !== '/certs')).toEqual([]);
  });
});
