/**
 * The OAuth front end end to end (docs/routing.md#oauth-front-end): two gateway processes' worth of gateways
 * (in-process) sharing one real redis-server, real upstreams (HTTP and gRPC), real clients.
 * Token flow over REST and gRPC, reuse, expiry, wrong secret and namespace, the opt-in
 * `seldon.io/gateway-auth: oauth`, revocation on delete, and Redis killed and restarted.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http2 from 'node:http2';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { answeredBy, md, predict } from '../../helpers/grpc.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { raw } from '../../helpers/net.js';
import { TestClock } from '../../helpers/clock.js';
import { basic, bearer, fetchToken } from '../../helpers/oauth.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { waitUntil } from '../../helpers/wait.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const body = '{"data":{"ndarray":[[1,2]]}}';

interface TokenBody {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope: string;
  error?: string;
  error_description?: string;
}

async function tokenRequest(gw: TestGateway, authorization?: string, form = 'grant_type=client_credentials') {
  const r = await request(`${gw.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization ? { authorization } : {}) },
    body: form,
  });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text, json: JSON.parse(text) as TokenBody };
}

async function post(url: string, headers: Record<string, string> = {}) {
  const r = await request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await r.body.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return { status: r.statusCode, headers: r.headers, text, json };
}

describe('OAuth front end with two gateways sharing Redis', () => {
  // The gateways' clock: a token's remaining time moves without sleeping.
  const clock = new TestClock();
  let redis: TestRedis;
  const rest: Record<string, HttpBackend> = {};
  const rpc: Record<string, GrpcBackend> = {};
  let a: TestGateway;
  let b: TestGateway;
  let clientsA: GrpcClients;
  let clientsB: GrpcClients;
  const manifests: Record<string, string> = {
    'iris.yaml': sdep('iris', 'models', { oauth_key: 'iriskey', oauth_secret: 'irissecret', predictors: [{ name: 'main' }] }),
    // Shares iris's external name: never used by the front end for iris's tokens.
    'iris-eu.yaml': sdep('iris-eu', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-service-name': 'iris', 'seldon.io/ambassador-weight': '50' }),
    'iris-other.yaml': sdep('iris', 'other', { oauth_key: 'iriskey', oauth_secret: 'othersecret', predictors: [{ name: 'main' }] }),
    'fraud.yaml': sdep('fraud', 'models', { oauth_key: 'fraudkey', oauth_secret: 'fraudsecret', predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-auth': 'oauth' }),
    'open.yaml': sdep('open', 'models', { predictors: [{ name: 'main' }] }),
    'temp.yaml': sdep('temp', 'models', { oauth_key: 'tempkey', oauth_secret: 'tempsecret', predictors: [{ name: 'main' }] }),
    // client_id "abx" twice: key "ab" in namespace "x", key "a" in namespace "bx".
    'clash-1.yaml': sdep('clash', 'x', { oauth_key: 'ab', oauth_secret: 's1', predictors: [{ name: 'main' }] }),
    'clash-2.yaml': sdep('clash', 'bx', { oauth_key: 'a', oauth_secret: 's2', predictors: [{ name: 'main' }] }),
  };
  const resolve = (): Record<string, number> => ({
    'iris-main.models:8000': rest['iris']!.port,
    'iris-main.models:5001': rpc['iris']!.port,
    'iris-eu-main.models:8000': rest['iris-eu']!.port,
    'iris-eu-main.models:5001': rpc['iris-eu']!.port,
    'iris-main.other:8000': rest['other']!.port,
    'iris-main.other:5001': rpc['other']!.port,
    'fraud-main.models:8000': rest['fraud']!.port,
    'fraud-main.models:5001': rpc['fraud']!.port,
    'open-main.models:8000': rest['open']!.port,
    'temp-main.models:8000': rest['temp']!.port,
  });

  beforeAll(async () => {
    redis = await startRedis();
    for (const n of ['iris', 'iris-eu', 'other', 'fraud', 'open', 'temp']) rest[n] = await startHttpBackend({ name: n });
    for (const n of ['iris', 'iris-eu', 'other', 'fraud']) rpc[n] = await startGrpcBackend({ name: n });
    a = await startTestGateway({ manifests, resolve: resolve(), args: ['--redis-url', redis.url, '--redis-timeout', '300ms'], now: clock.now });
    b = await startTestGateway({ manifests, resolve: resolve(), args: ['--redis-url', redis.url, '--redis-timeout', '300ms', '--oauth-port', '0'], now: clock.now });
    clientsA = grpcClients(`127.0.0.1:${a.port}`);
    clientsB = grpcClients(`127.0.0.1:${b.port}`);
    for (const gw of [a, b]) await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_redis_connected')) === 1);
  });
  afterAll(async () => {
    clientsA?.close();
    clientsB?.close();
    await a?.stop();
    await b?.stop();
    await Promise.all([...Object.values(rest).map((x) => x.close()), ...Object.values(rpc).map((x) => x.close())]);
    await redis?.stop();
  });

  it('issues a bearer token for HTTP Basic client_credentials, and the same unexpired token again', async () => {
    const first = await tokenRequest(a, basic('iriskeymodels', 'irissecret'));
    expect(first.status).toBe(200);
    expect(first.headers['cache-control']).toBe('no-store');
    expect(first.json).toEqual({ access_token: expect.stringMatching(UUID_V4), token_type: 'bearer', expires_in: 43200, scope: 'read write' });
    clock.advance(1100);
    // The other gateway hands back the same token (the store is shared), with less time left.
    const again = await tokenRequest(b, basic('iriskeymodels', 'irissecret'));
    expect(again.json.access_token).toBe(first.json.access_token);
    expect(again.json.expires_in).toBeLessThan(43200);
    expect(again.json.expires_in).toBeGreaterThan(43190);
    // Stored hashed: the token itself is nowhere in Redis.
    const keys = await redis.command('KEYS', 'seldon-gateway:oauth:*');
    expect(keys).toContain('seldon-gateway:oauth:client:iriskeymodels');
    const stored = await redis.command('GET', 'seldon-gateway:oauth:client:iriskeymodels');
    expect(stored).not.toContain(first.json.access_token);
    expect(keys).not.toContain(first.json.access_token);
  });

  it('a token from one gateway works on the other: /api/v0.1/predictions and feedback reach the owner, credential stripped', async () => {
    const t = await fetchToken(a.url, 'iriskeymodels', 'irissecret');
    for (const gw of [a, b]) {
      for (const path of ['/api/v0.1/predictions', '/api/v0.1/feedback', '/api/v1.0/predictions']) {
        const before = rest['iris']!.requests.length;
        const r = await post(`${gw.url}${path}?x=1`, bearer(t));
        expect(r.status, r.text).toBe(200);
        expect(r.headers['x-backend']).toBe('iris');
        const seen = rest['iris']!.requests[before]!;
        expect(seen.url).toBe(`${path}?x=1`);
        expect(seen.headers.authorization).toBeUndefined();
      }
    }
    // Its own predictors only: iris-eu shares the name (50 %) but never gets iris's front-end calls.
    const before = rest['iris-eu']!.requests.length;
    for (let i = 0; i < 20; i++) expect((await post(`${b.url}/api/v0.1/predictions`, bearer(t))).headers['x-backend']).toBe('iris');
    expect(rest['iris-eu']!.requests.length).toBe(before);
    // The access_token query parameter works too, and is not forwarded.
    const n = rest['iris']!.requests.length;
    expect((await post(`${a.url}/api/v0.1/predictions?access_token=${t}&y=2`)).status).toBe(200);
    expect(rest['iris']!.requests[n]!.url).toBe('/api/v0.1/predictions?y=2');
  });

  it('--oauth-port serves the front end on its own listener too (REST and gRPC on one port)', async () => {
    expect(b.oauthPort).toBeGreaterThan(0);
    expect(b.oauthPort).not.toBe(b.port);
    const oauthUrl = `http://127.0.0.1:${b.oauthPort}`;
    const r = await request(`${oauthUrl}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('iriskeymodels', 'irissecret') },
      body: 'grant_type=client_credentials',
    });
    const t = ((await r.body.json()) as { access_token: string }).access_token;
    expect(r.statusCode).toBe(200);
    const p = await post(`${oauthUrl}/api/v0.1/predictions`, bearer(t));
    expect(p.status, p.text).toBe(200);
    expect(p.headers['x-backend']).toBe('iris');
    const clients = grpcClients(`127.0.0.1:${b.oauthPort}`);
    const o = await predict(clients, { strData: 'hi' }, md({ oauth_token: t }));
    clients.close();
    expect(o.ok).toBe(true);
    expect(answeredBy(o)).toBe('iris');
  });

  it('missing, unknown and malformed tokens get 401 with a JSON error and WWW-Authenticate; the token is never echoed', async () => {
    const missing = await post(`${a.url}/api/v0.1/predictions`);
    expect(missing.status).toBe(401);
    expect(missing.json).toEqual({ error: 'unauthorized', error_description: 'Full authentication is required to access this resource' });
    expect(missing.headers['www-authenticate']).toMatch(/^Bearer/);
    const bogus = 'not-a-token-0123456789';
    const unknown = await post(`${b.url}/api/v0.1/predictions`, bearer(bogus));
    expect(unknown.status).toBe(401);
    expect(unknown.json).toEqual({ error: 'invalid_token', error_description: 'Invalid access token' });
    expect(unknown.text + JSON.stringify(unknown.headers)).not.toContain(bogus);
    expect((await post(`${b.url}/api/v0.1/predictions`, { authorization: 'Bearer' })).status).toBe(401);
    expect((await post(`${b.url}/api/v0.1/predictions`, { authorization: 'Basic abc' })).status).toBe(401);
  });

  it('wrong secret, wrong namespace, unknown client and no credentials: 401; another grant type: 400', async () => {
    for (const auth of [basic('iriskeymodels', 'wrong'), basic('iriskeyother', 'irissecret'), basic('nobody', 'x'), basic('iriskey', 'irissecret'), 'Bearer xyz', undefined]) {
      const r = await tokenRequest(a, auth);
      expect(r.status, String(auth)).toBe(401);
      expect(r.json.error).toBe('unauthorized');
      expect(r.headers['www-authenticate']).toMatch(/^Basic/);
    }
    const grant = await tokenRequest(a, basic('iriskeymodels', 'irissecret'), 'grant_type=password&username=u&password=p');
    expect([grant.status, grant.json.error]).toEqual([400, 'unsupported_grant_type']);
    expect((await tokenRequest(a, basic('iriskeymodels', 'irissecret'), '')).status).toBe(400);
    // The same key in another namespace is another client, with its own secret and deployment.
    const other = await fetchToken(b.url, 'iriskeyother', 'othersecret');
    expect((await post(`${a.url}/api/v0.1/predictions`, bearer(other))).headers['x-backend']).toBe('other');
  });

  it('a client_id two deployments claim is given to neither; both are degraded with the reason', async () => {
    for (const id of ['abx']) for (const secret of ['s1', 's2']) expect((await tokenRequest(a, basic(id, secret))).status).toBe(401);
    const routes = (await (await request(`${a.adminUrl}/routes`)).body.json()) as { deployments: { namespace: string; name: string; state: string; reasons: string[] }[] };
    for (const ns of ['x', 'bx']) {
      const d = routes.deployments.find((x) => x.namespace === ns && x.name === 'clash')!;
      expect(d.state).toBe('degraded');
      expect(d.reasons.join()).toMatch(/client_id "abx" is also claimed by .*neither gets it/);
    }
  });

  it('gRPC: oauth_token metadata (no seldon) reaches the owner with the token stripped; missing or bad: UNAUTHENTICATED', async () => {
    const t = await fetchToken(b.url, 'iriskeymodels', 'irissecret');
    for (const clients of [clientsA, clientsB]) {
      const before = rpc['iris']!.calls.length;
      const ok = await predict(clients, { strData: 'hi' }, md({ oauth_token: t }));
      expect(answeredBy(ok)).toBe('iris');
      expect(rpc['iris']!.calls[before]!.metadata['oauth_token']).toBeUndefined();
    }
    const missing = await predict(clientsA, { strData: 'hi' }, md({ seldon: 'nope' }));
    expect(!missing.ok && missing.error.code).toBe(grpc.status.UNIMPLEMENTED);
    const bad = await predict(clientsA, { strData: 'hi' }, md({ oauth_token: 'bogus' }));
    expect(!bad.ok && bad.error.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(!bad.ok && bad.error.details).toBe('Invalid access token');
  });

  it("seldon.io/gateway-auth: oauth guards the deployment's own REST and gRPC routes; others stay open", async () => {
    const url = `${a.url}/seldon/models/fraud/api/v1.0/predictions`;
    const none = await post(url);
    expect(none.status).toBe(401);
    expect(none.json).toEqual({ status: { code: 401, info: 'Full authentication is required to access this resource', reason: 'UNAUTHENTICATED', status: 'FAILURE' } });
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expect((await post(url, bearer('bogus'))).status).toBe(401);
    const iris = await fetchToken(a.url, 'iriskeymodels', 'irissecret');
    const wrong = await post(url, bearer(iris));
    expect([wrong.status, (wrong.json.status as { reason: string }).reason]).toEqual([403, 'FORBIDDEN']);
    const t = await fetchToken(b.url, 'fraudkeymodels', 'fraudsecret');
    const before = rest['fraud']!.requests.length;
    const ok = await post(url, bearer(t));
    expect([ok.status, ok.headers['x-backend']]).toEqual([200, 'fraud']);
    expect(rest['fraud']!.requests[before]!.headers.authorization).toBeUndefined();
    expect((await post(`${b.url}/seldon/models/fraud/api/v1.0/predictions?access_token=${t}`)).status).toBe(200);
    // gRPC on the same deployment.
    const g0 = await predict(clientsB, { strData: 'x' }, md({ seldon: 'fraud', namespace: 'models' }));
    expect(!g0.ok && g0.error.code).toBe(grpc.status.UNAUTHENTICATED);
    const g1 = await predict(clientsB, { strData: 'x' }, md({ seldon: 'fraud', namespace: 'models', oauth_token: iris }));
    expect(!g1.ok && g1.error.code).toBe(grpc.status.PERMISSION_DENIED);
    const g2 = await predict(clientsA, { strData: 'x' }, md({ seldon: 'fraud', namespace: 'models', oauth_token: t }));
    expect(answeredBy(g2)).toBe('fraud');
    // Deployments without the annotation need nothing.
    expect((await post(`${a.url}/seldon/models/open/api/v1.0/predictions`)).status).toBe(200);
    expect((await post(`${a.url}/seldon/models/iris/api/v1.0/predictions`)).status).toBe(200);
  });

  it('deleting a deployment revokes its token: 404 (its deployment is gone), recreated: 401', async () => {
    const t = await fetchToken(a.url, 'tempkeymodels', 'tempsecret');
    expect((await post(`${b.url}/api/v0.1/predictions`, bearer(t))).headers['x-backend']).toBe('temp');
    for (const gw of [a, b]) {
      const before = gw.state.current.generation;
      rmSync(join(gw.dir, 'temp.yaml'));
      await waitFor(() => gw.state.current.generation > before);
    }
    const gone = await post(`${a.url}/api/v0.1/predictions`, bearer(t));
    expect(gone.status).toBe(404);
    expect((gone.json.status as { reason: string }).reason).toBe('NO_ROUTE');
    expect((gone.json.status as { info: string }).info).toContain('models/temp');
    // Revoked in the store: the client forgotten, the token's record marked (kept until it expires).
    await waitUntil(async () => (await redis.command('EXISTS', 'seldon-gateway:oauth:client:tempkeymodels')) === ':0\r\n');
    const record = await redis.command('GET', `seldon-gateway:oauth:token:${createHash('sha256').update(t).digest('base64url')}`);
    expect(record).toContain('"revoked":true');
    expect(record).not.toContain(t);
    // Back with the same credentials: the old token stays revoked, a new one is issued.
    await a.write('temp.yaml', manifests['temp.yaml']!);
    await b.write('temp.yaml', manifests['temp.yaml']!);
    const old = await post(`${a.url}/api/v0.1/predictions`, bearer(t));
    expect([old.status, old.json.error]).toEqual([401, 'invalid_token']);
    const fresh = await fetchToken(b.url, 'tempkeymodels', 'tempsecret');
    expect(fresh).not.toBe(t);
    expect((await post(`${a.url}/api/v0.1/predictions`, bearer(fresh))).status).toBe(200);
  });

  it('a changed secret invalidates the old token at once on every gateway', async () => {
    const t = await fetchToken(a.url, 'tempkeymodels', 'tempsecret');
    const rotated = sdep('temp', 'models', { oauth_key: 'tempkey', oauth_secret: 'rotated', predictors: [{ name: 'main' }] });
    await a.write('temp.yaml', rotated);
    await b.write('temp.yaml', rotated);
    for (const gw of [a, b]) expect((await post(`${gw.url}/api/v0.1/predictions`, bearer(t))).status).toBe(401);
    expect((await tokenRequest(a, basic('tempkeymodels', 'tempsecret'))).status).toBe(401);
    expect((await post(`${b.url}/api/v0.1/predictions`, bearer(await fetchToken(a.url, 'tempkeymodels', 'rotated')))).status).toBe(200);
  });

  it('Redis killed: token requests and token checks fail closed with 503, other routes keep routing; it recovers by itself', async () => {
    const t = await fetchToken(a.url, 'fraudkeymodels', 'fraudsecret');
    await redis.kill();
    for (const gw of [a, b]) await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_redis_connected')) === 0);
    const tok = await tokenRequest(a, basic('iriskeymodels', 'irissecret'));
    expect([tok.status, tok.json.error]).toEqual([503, 'temporarily_unavailable']);
    const api = await post(`${b.url}/api/v0.1/predictions`, bearer(t));
    expect([api.status, (api.json.status as { reason: string }).reason]).toEqual([503, 'AUTH_BACKEND_UNAVAILABLE']);
    expect((await post(`${a.url}/seldon/models/fraud/api/v1.0/predictions`, bearer(t))).status).toBe(503);
    const g = await predict(clientsA, { strData: 'x' }, md({ seldon: 'fraud', namespace: 'models', oauth_token: t }));
    expect(!g.ok && g.error.code).toBe(grpc.status.UNAVAILABLE);
    // Everything that needs no token keeps routing.
    expect((await post(`${a.url}/seldon/models/open/api/v1.0/predictions`)).status).toBe(200);
    expect((await post(`${b.url}/seldon/models/iris/api/v1.0/predictions`)).status).toBe(200);
    expect(answeredBy(await predict(clientsB, { strData: 'x' }, md({ seldon: 'iris', namespace: 'models' })))).toMatch(/^iris/);

    await redis.restart();
    // The clients reconnect by themselves; the restarted Redis is empty, so a new token is needed.
    for (const gw of [a, b]) await waitUntil(async () => (await tokenRequest(gw, basic('fraudkeymodels', 'fraudsecret'))).status === 200);
    const fresh = await fetchToken(b.url, 'fraudkeymodels', 'fraudsecret');
    expect((await post(`${a.url}/seldon/models/fraud/api/v1.0/predictions`, bearer(fresh))).status).toBe(200);
    expect((await post(`${a.url}/seldon/models/fraud/api/v1.0/predictions`, bearer(t))).status).toBe(401);
    expect(await metric(b.adminUrl, 'seldon_gateway_redis_connected')).toBe(1);
    expect(await metric(a.adminUrl, 'seldon_gateway_auth_failures_total{protocol="rest",reason="unavailable"}')).toBeGreaterThan(0);
  });
});

describe('OAuth token expiry and the in-memory store', () => {
  // The gateway's clock: the token expires without sleeping.
  const clock = new TestClock();
  let backend: HttpBackend;
  let gw: TestGateway;
  beforeAll(async () => {
    backend = await startHttpBackend({ name: 'iris' });
    gw = await startTestGateway({
      manifests: { 'iris.yaml': sdep('iris', 'models', { oauth_key: 'k', oauth_secret: 's', predictors: [{ name: 'main' }] }) },
      resolve: { 'iris-main.models:8000': backend.port },
      args: ['--oauth-token-ttl', '1s'],
      now: clock.now,
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await backend?.close();
  });

  it('a token expires after --oauth-token-ttl (1 s): 401, and the next request issues a new one', async () => {
    const r = await tokenRequest(gw, basic('kmodels', 's'));
    expect(r.json.expires_in).toBe(1);
    const t = r.json.access_token;
    expect((await post(`${gw.url}/api/v0.1/predictions`, bearer(t))).status).toBe(200);
    clock.advance(1200);
    const expired = await post(`${gw.url}/api/v0.1/predictions`, bearer(t));
    expect([expired.status, expired.json.error]).toEqual([401, 'invalid_token']);
    const next = await fetchToken(gw.url, 'kmodels', 's');
    expect(next).not.toBe(t);
    expect((await post(`${gw.url}/api/v0.1/predictions`, bearer(next))).status).toBe(200);
  });

  it('GET /ping and /ready need no token', async () => {
    const ping = await request(`${gw.url}/ping`);
    expect([ping.statusCode, await ping.body.text()]).toEqual([200, 'pong']);
    expect((await request(`${gw.url}/ready`)).statusCode).toBe(200);
  });

  it("nothing on the public port answers in fastify's words: bad URLs, other methods and paths, content types, bodies, over HTTP/1.1 and HTTP/2", async () => {
    const form = 'application/x-www-form-urlencoded';
    const probes: [string, string, Record<string, string>, string][] = [
      ['GET', '/oauth/%zz', {}, ''],
      ['POST', '/oauth/%zz', { 'content-type': form }, 'a=b'],
      ['GET', '/oauth/token%zz', {}, ''],
      ['GET', '/oauth/x', {}, ''],
      ['GET', '/oauth/token', {}, ''],
      ['PROPFIND', '/oauth/token', {}, ''],
      ['SEARCH', '/ping', {}, ''],
      ['DELETE', '/ready', {}, ''],
      ['POST', '/ping', { 'content-type': 'application/xml' }, '<a/>'],
      ['POST', '/ping', { 'content-type': 'application/json' }, '{bad'],
      ['POST', '/oauth/token', { 'content-type': 'application/json' }, '{bad'],
      ['POST', '/oauth/token', { 'content-type': 'application/xml' }, '<a/>'],
      ['POST', '/oauth/token', { 'content-type': ';;;' }, 'a=b'],
      ['POST', '/oauth/token', {}, 'a=b'],
      ['POST', '/oauth/token', { 'content-type': form }, `a=${'b'.repeat(70_000)}`],
      ['POST', '/oauth/token?x=%zz', { 'content-type': form }, 'grant_type=client_credentials'],
    ];
    const kinds = new Set<string>();
    const check = (what: string, status: number, body: string): void => {
      expect(body, what).not.toMatch(/FST_|"statusCode"|"message"|Route [A-Z]+:/);
      const json = JSON.parse(body) as { status?: { code: number; reason: string }; error?: string };
      // The gateway's JSON, or the token endpoint's OAuth error.
      if (json.status !== undefined) expect(json.status.code, what).toBe(status);
      else expect(json.error, what).toMatch(/^(invalid_request|unauthorized)$/);
      kinds.add(json.status !== undefined ? 'seldon' : 'oauth');
    };
    for (const [method, path, headers, body] of probes) {
      const lines = [`${method} ${path} HTTP/1.1`, 'Host: gw', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), ...(body ? [`Content-Length: ${body.length}`] : []), 'Connection: close'];
      const a = await raw(gw.port, `${lines.join('\r\n')}\r\n\r\n${body}`);
      const what = `HTTP/1.1 ${method} ${path} ${JSON.stringify(headers)}`;
      expect(a.status, what).toBeGreaterThanOrEqual(400);
      check(what, a.status, a.text.slice(a.text.indexOf('\r\n\r\n') + 4));
    }
    const session = http2.connect(gw.url);
    try {
      for (const [method, path, headers, body] of probes) {
        const what = `h2 ${method} ${path} ${JSON.stringify(headers)}`;
        const stream = session.request({ ':method': method, ':path': path, ...headers }, { endStream: body === '' });
        if (body !== '') stream.end(body);
        const [h] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
        let text = '';
        for await (const chunk of stream) text += String(chunk);
        const status = Number(h[':status']);
        expect(status, what).toBeGreaterThanOrEqual(400);
        check(what, status, text);
      }
    } finally {
      session.close();
    }
    expect([...kinds].sort()).toEqual(['oauth', 'seldon']);
  });

  it('without a registered client the front end is off: its paths are ordinary (unrouted) paths', async () => {
    const before = gw.state.current.generation;
    writeFileSync(join(gw.dir, 'iris.yaml'), sdep('iris', 'models', { predictors: [{ name: 'main' }] }));
    await waitFor(() => gw.state.current.generation > before);
    const r = await post(`${gw.url}/api/v0.1/predictions`);
    expect([r.status, (r.json.status as { reason: string }).reason]).toEqual([404, 'NO_ROUTE']);
    expect((await tokenRequest(gw, basic('kmodels', 's'))).status).toBe(404);
  });
});
