/**
 * A rate limit per caller (`seldon.io/gateway-rate-limit: "3/m per claim:sub"`) behind JWT: each
 * verified `sub` has its own bucket, shared by two gateways through a real redis-server; a refused
 * token spends nothing; the bucket's Redis key names the deployment's slot and a digest of the
 * claim, never the caller's words; metrics name the deployment's bucket, not the caller's.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bucketName, bucketTag, perClaimLimit } from '../../../gateway/auth/rate-limit.js';
import { parseRateLimit } from '../../../routing/seldon/annotations.js';
import type { RateLimit } from '../../../routing/types.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { signingKey, startIdentityProvider, type IdentityProvider } from '../../fixtures/identity-provider.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { waitUntil } from '../../helpers/wait.js';

const PREDICT = '/api/v1.0/predictions';

describe('a per-claim limit, unit', () => {
  it("keeps the deployment's Cluster slot; the caller's value reaches the key only as a digest; its name is the deployment's", () => {
    const l = parseRateLimit('3/m per claim:sub', 'models/x') as RateLimit;
    expect(l).toMatchObject({ key: 'models/x', count: 3, periodMs: 60_000, text: '3/m per claim:sub', perClaim: 'sub' });
    const alice = perClaimLimit(l, { sub: 'alice}{evil' });
    expect(alice.key).toMatch(/^models\/x\/#claim:sub=[A-Za-z0-9_-]{22}$/);
    expect(bucketTag(alice)).toBe('models/x');
    expect(bucketName(alice)).toBe('models/x');
    expect(perClaimLimit(l, { sub: 'bob' }).key).not.toBe(alice.key);
    expect(perClaimLimit(l, undefined).key).toBe(perClaimLimit(l, {}).key);
    expect(parseRateLimit('3/m per claim:', 'k')).toMatch(/is not a rate like/);
  });
});

describe('a per-claim limit across two gateways on Redis', () => {
  let redis: TestRedis;
  let http: HttpBackend;
  let idp: IdentityProvider;
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    redis = await startRedis();
    http = await startHttpBackend({ name: 'up' });
    idp = await startIdentityProvider();
    idp.published = [await signingKey('k1')];
    const providers = join(mkdtempSync(join(tmpdir(), 'sgw-rlc-')), 'providers.yaml');
    writeFileSync(providers, `- name: corp\n  issuer: ${idp.issuer}\n  jwksUri: ${idp.jwksUri}\n`);
    const manifests = {
      'percaller.yaml': sdep('percaller', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-jwt': 'providers: [corp]', 'seldon.io/gateway-rate-limit': '3/m per claim:sub' }),
    };
    const resolve = { 'percaller-main.models:8000': http.port };
    const args = ['--redis-url', redis.url, '--redis-timeout', '1s', '--jwt-providers', providers];
    a = await startTestGateway({ manifests, resolve, args });
    b = await startTestGateway({ manifests, resolve, args });
    for (const gw of [a, b]) await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_redis_connected')) === 1);
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await http?.close();
    await idp?.close();
    await redis?.stop();
  });

  const post = async (gw: TestGateway, token: string): Promise<number> => {
    const r = await request(`${gw.url}/seldon/models/percaller${PREDICT}`, { method: 'POST', body: '{}', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
    await r.body.text();
    return r.statusCode;
  };

  it('two callers each get their own 3/m, whichever gateway they reach; a refused token spends nothing', async () => {
    const alice = await idp.token({ sub: 'alice' });
    const bob = await idp.token({ sub: 'bob' });
    // Refused at the JWT check: nothing is taken from alice's bucket.
    for (let i = 0; i < 5; i++) expect(await post(a, `${alice.slice(0, -3)}xyz`)).toBe(401);
    const aliceSeen = [await post(a, alice), await post(b, alice), await post(a, alice), await post(b, alice)];
    expect(aliceSeen).toEqual([200, 200, 200, 429]);
    const bobSeen = [await post(b, bob), await post(a, bob), await post(b, bob), await post(a, bob)];
    expect(bobSeen).toEqual([200, 200, 200, 429]);
    const limited = async (gw: TestGateway): Promise<number> =>
      metric(gw.adminUrl, 'seldon_gateway_rate_limited_total{namespace="models",deployment="percaller",protocol="rest",bucket="models/percaller"}');
    expect((await limited(a)) + (await limited(b))).toBe(2);
    const reply = await redis.command('KEYS', '*claim*');
    const keys = reply.split('\r\n').filter((l) => l !== '' && !l.startsWith('*') && !l.startsWith('$'));
    expect(keys.length).toBe(2);
    for (const k of keys) expect(k).not.toMatch(/alice|bob/);
  });
});
