/**
 * The OAuth front end under attack: revocation that holds across a Redis outage, a
 * throttle on failed `/oauth/token` attempts, and error bodies without internals. Real gateways on 127.0.0.1, a real redis-server killed and restarted mid-test (with
 * its data kept, so Redis "refuses" the gateway and comes back as it was), real clients.
 */
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { md, predict } from '../../helpers/grpc.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { basic, bearer, fetchToken } from '../../helpers/oauth.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { waitUntil } from '../../helpers/wait.js';
import { addressBucket } from '../../../gateway/auth/rate-limit.js';

const LEAKS = /ECONNREFUSED|Connection is closed|127\.0\.0\.1:\d|ioredis|Stream isn't writeable|FST_ERR|no answer within/;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Record<string, unknown>;
}

async function send(url: string, init: { method?: string; headers?: Record<string, string>; body?: string }): Promise<Answer> {
  const r = await request(url, { method: init.method ?? 'POST', headers: init.headers ?? {}, body: init.body ?? null });
  const text = await r.body.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return { status: r.statusCode, headers: r.headers, text, json };
}

const tokenRequest = (gw: TestGateway, authorization?: string, headers: Record<string, string> = {}): Promise<Answer> =>
  send(`${gw.url}/oauth/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization ? { authorization } : {}), ...headers }, body: 'grant_type=client_credentials' });

const predictRest = (url: string, headers: Record<string, string> = {}): Promise<Answer> =>
  send(url, { headers: { 'content-type': 'application/json', ...headers }, body: '{"data":{"ndarray":[[1]]}}' });

const tokenKey = (t: string): string => `seldon-gateway:oauth:token:${createHash('sha256').update(t).digest('base64url')}`;

describe('revocation across a Redis outage (two gateways, one Redis that comes back with its data)', () => {
  let redis: TestRedis;
  let backend: HttpBackend;
  let a: TestGateway;
  let b: TestGateway;
  const temp = sdep('temp', 'models', { oauth_key: 'tempkey', oauth_secret: 'tempsecret', predictors: [{ name: 'main' }] });
  const manifests = { 'temp.yaml': temp, 'keep.yaml': sdep('keep', 'models', { oauth_key: 'keepkey', oauth_secret: 'keepsecret', predictors: [{ name: 'main' }] }) };

  beforeAll(async () => {
    redis = await startRedis({ persist: true });
    backend = await startHttpBackend({ name: 'temp' });
    const resolve = { 'temp-main.models:8000': backend.port, 'keep-main.models:8000': backend.port, 'uidd-main.models:8000': backend.port };
    a = await startTestGateway({ manifests, resolve, args: ['--redis-url', redis.url, '--redis-timeout', '300ms'] });
    b = await startTestGateway({ manifests, resolve, args: ['--redis-url', redis.url, '--redis-timeout', '300ms'] });
    for (const gw of [a, b]) await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_redis_connected')) === 1);
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await backend?.close();
    await redis?.stop();
  });

  const remove = async (file: string): Promise<void> => {
    for (const gw of [a, b]) {
      const before = gw.state.current.generation;
      rmSync(join(gw.dir, file));
      await waitFor(() => gw.state.current.generation > before);
    }
  };
  const down = async (): Promise<void> => {
    await redis.kill();
    for (const gw of [a, b]) await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_redis_connected')) === 0);
  };
  const up = async (): Promise<void> => {
    await redis.restart();
    for (const gw of [a, b]) await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_redis_connected')) === 1);
  };

  it('deleted while Redis refuses, Redis back, re-created with the same key and secret: the old token is dead and never handed back', async () => {
    const t = await fetchToken(a.url, 'tempkeymodels', 'tempsecret');
    expect((await predictRest(`${b.url}/api/v0.1/predictions`, bearer(t))).status).toBe(200);
    await down();
    await remove('temp.yaml');
    // The revocation could not be written: it waits, and is retried.
    expect(await metric(a.adminUrl, 'seldon_gateway_oauth_revocations_pending')).toBeGreaterThan(0);
    await up();
    // Retried until Redis confirmed it: the client's entry is gone, the record marked revoked.
    for (const gw of [a, b]) await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_oauth_revocations_pending')) === 0);
    expect(await metric(a.adminUrl, 'seldon_gateway_oauth_revocation_retries_total')).toBeGreaterThan(0);
    expect(await redis.command('EXISTS', 'seldon-gateway:oauth:client:tempkeymodels')).toBe(':0\r\n');
    expect(await redis.command('GET', tokenKey(t))).toContain('"revoked":true');
    await a.write('temp.yaml', temp);
    await b.write('temp.yaml', temp);
    for (const gw of [a, b]) {
      const old = await predictRest(`${gw.url}/api/v0.1/predictions`, bearer(t));
      expect([old.status, old.json['error']], old.text).toEqual([401, 'invalid_token']);
    }
    const fresh = await fetchToken(b.url, 'tempkeymodels', 'tempsecret');
    expect(fresh).not.toBe(t);
    expect(await fetchToken(a.url, 'tempkeymodels', 'tempsecret')).toBe(fresh);
    for (const gw of [a, b]) expect((await predictRest(`${gw.url}/api/v0.1/predictions`, bearer(fresh))).status).toBe(200);
  });

  it('deleted and re-created while Redis refuses: once Redis is back the old token is refused, a new one issued', async () => {
    const t = await fetchToken(a.url, 'tempkeymodels', 'tempsecret');
    await down();
    await remove('temp.yaml');
    await a.write('temp.yaml', temp);
    await b.write('temp.yaml', temp);
    await up();
    for (const gw of [a, b]) {
      // Never 200 for the old token, from the moment Redis answers (before or after the retries land).
      const old = await predictRest(`${gw.url}/api/v0.1/predictions`, bearer(t));
      expect(old.status, old.text).not.toBe(200);
    }
    await waitUntil(async () => (await tokenRequest(a, basic('tempkeymodels', 'tempsecret'))).status === 200);
    const fresh = await fetchToken(a.url, 'tempkeymodels', 'tempsecret');
    expect(fresh).not.toBe(t);
    expect(await fetchToken(b.url, 'tempkeymodels', 'tempsecret')).toBe(fresh);
    for (const gw of [a, b]) {
      expect((await predictRest(`${gw.url}/api/v0.1/predictions`, bearer(t))).status).toBe(401);
      expect((await predictRest(`${gw.url}/api/v0.1/predictions`, bearer(fresh))).status).toBe(200);
    }
    // A deployment that was never touched keeps its token through all of this.
    const k = await fetchToken(a.url, 'keepkeymodels', 'keepsecret');
    expect((await predictRest(`${b.url}/api/v0.1/predictions`, bearer(k))).status).toBe(200);
  });

  it('a token of a deleted deployment is refused for its re-created namesake even if its revocation never reached Redis', async () => {
    const t = await fetchToken(a.url, 'tempkeymodels', 'tempsecret');
    // What the revocation would have removed, as it is now.
    const entry = (await redis.command('GET', 'seldon-gateway:oauth:client:tempkeymodels')).split('\r\n')[1]!;
    const record = (await redis.command('GET', tokenKey(t))).split('\r\n')[1]!;
    expect(record).not.toContain('revoked');
    await remove('temp.yaml');
    await a.write('temp.yaml', temp);
    await b.write('temp.yaml', temp);
    for (const gw of [a, b]) await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_oauth_revocations_pending')) === 0);
    // Put the old client entry and token record back, unrevoked: as if the revocation had been lost.
    expect(await redis.command('SET', 'seldon-gateway:oauth:client:tempkeymodels', entry, 'PX', '600000')).toBe('+OK\r\n');
    expect(await redis.command('SET', tokenKey(t), record, 'PX', '600000')).toBe('+OK\r\n');
    for (const gw of [a, b]) {
      const old = await predictRest(`${gw.url}/api/v0.1/predictions`, bearer(t));
      expect([old.status, old.json['error']], old.text).toEqual([401, 'invalid_token']);
    }
    const fresh = await fetchToken(b.url, 'tempkeymodels', 'tempsecret');
    expect(fresh).not.toBe(t);
    expect(await fetchToken(a.url, 'tempkeymodels', 'tempsecret')).toBe(fresh);
  });

  it('edits keep the identity: a token survives a change of predictors on both gateways', async () => {
    const t = await fetchToken(a.url, 'keepkeymodels', 'keepsecret');
    const edited = sdep('keep', 'models', { oauth_key: 'keepkey', oauth_secret: 'keepsecret', predictors: [{ name: 'main', traffic: 100 }] }, { 'x-edit': '1' });
    await a.write('keep.yaml', edited);
    await b.write('keep.yaml', edited);
    for (const gw of [a, b]) expect((await predictRest(`${gw.url}/api/v0.1/predictions`, bearer(t))).status).toBe(200);
    expect(await fetchToken(b.url, 'keepkeymodels', 'keepsecret')).toBe(t);
  });

  it('a new metadata.uid is a new client: a delete and re-create seen as one update (a relist) voids the old token', async () => {
    const withUid = (uid: string): string => {
      const d = JSON.parse(sdep('uidd', 'models', { oauth_key: 'uidkey', oauth_secret: 'uidsecret', predictors: [{ name: 'main' }] })) as { metadata: Record<string, unknown> };
      d.metadata['uid'] = uid;
      return JSON.stringify(d);
    };
    await a.write('uidd.yaml', withUid('6f1c7e2a-0001'));
    await b.write('uidd.yaml', withUid('6f1c7e2a-0001'));
    const t = await fetchToken(a.url, 'uidkeymodels', 'uidsecret');
    expect((await predictRest(`${b.url}/api/v0.1/predictions`, bearer(t))).status).toBe(200);
    // The same name, key and secret, another object: no delete event in between.
    await a.write('uidd.yaml', withUid('9d3b5c4e-0002'));
    await b.write('uidd.yaml', withUid('9d3b5c4e-0002'));
    for (const gw of [a, b]) {
      const old = await predictRest(`${gw.url}/api/v0.1/predictions`, bearer(t));
      expect([old.status, old.json['error']], old.text).toEqual([401, 'invalid_token']);
    }
    const fresh = await fetchToken(b.url, 'uidkeymodels', 'uidsecret');
    expect(fresh).not.toBe(t);
    expect((await predictRest(`${a.url}/api/v0.1/predictions`, bearer(fresh))).status).toBe(200);
  });
});

describe('failed /oauth/token attempts are throttled per address and per client_id', () => {
  let redis: TestRedis;
  let backend: HttpBackend;
  let a: TestGateway;
  let b: TestGateway;
  beforeAll(async () => {
    redis = await startRedis();
    backend = await startHttpBackend({ name: 'm' });
    const manifests = {
      'm.yaml': sdep('m', 'models', { oauth_key: 'mkey', oauth_secret: 'msecret', predictors: [{ name: 'main' }] }),
      'n.yaml': sdep('n', 'models', { oauth_key: 'nkey', oauth_secret: 'nsecret', predictors: [{ name: 'main' }] }),
    };
    const args = ['--redis-url', redis.url, '--redis-timeout', '300ms', '--trust-forwarded-headers'];
    a = await startTestGateway({ manifests, resolve: { 'm-main.models:8000': backend.port }, args });
    b = await startTestGateway({ manifests, resolve: { 'm-main.models:8000': backend.port }, args });
    for (const gw of [a, b]) await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_redis_connected')) === 1);
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await backend?.close();
    await redis?.stop();
  });

  it('successful logins are never counted or slowed', async () => {
    for (let i = 0; i < 40; i++) expect((await tokenRequest(i % 2 ? a : b, basic('mkeymodels', 'msecret'), { 'x-forwarded-for': '192.0.2.1' })).status).toBe(200);
  });

  it('one address: 10 failures across both gateways, then 429 with Retry-After and an OAuth-style body, even for the right secret', async () => {
    const from = { 'x-forwarded-for': '192.0.2.7' };
    const codes: number[] = [];
    for (let i = 0; i < 14; i++) codes.push((await tokenRequest(i % 2 ? a : b, basic('nobody', `guess${i}`), from)).status);
    expect(codes).toEqual([...Array<number>(10).fill(401), 429, 429, 429, 429]);
    const r = await tokenRequest(a, basic('mkeymodels', 'msecret'), from);
    expect(r.status).toBe(429);
    expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(r.json).toEqual({ error: 'too_many_requests', error_description: expect.stringMatching(/^Too many failed attempts from this address: retry in \d+ s$/) });
    expect(r.text).not.toContain('msecret');
    // Another address is not affected.
    expect((await tokenRequest(b, basic('mkeymodels', 'msecret'), { 'x-forwarded-for': '192.0.2.8' })).status).toBe(200);
    expect((await metric(a.adminUrl, 'seldon_gateway_oauth_token_throttled_total{by="address"}')) + (await metric(b.adminUrl, 'seldon_gateway_oauth_token_throttled_total{by="address"}'))).toBe(5);
  });

  it('one client_id guessed from many addresses: 30 failures, then 429 for that client only', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 32; i++) codes.push((await tokenRequest(i % 2 ? a : b, basic('nkeymodels', `guess${i}`), { 'x-forwarded-for': `198.51.100.${i + 1}` })).status);
    expect(codes).toEqual([...Array<number>(30).fill(401), 429, 429]);
    const r = await tokenRequest(a, basic('nkeymodels', 'nsecret'), { 'x-forwarded-for': '198.51.100.200' });
    expect([r.status, r.json['error']]).toEqual([429, 'too_many_requests']);
    expect(r.json['error_description']).toMatch(/for this client/);
    expect((await tokenRequest(a, basic('mkeymodels', 'msecret'), { 'x-forwarded-for': '198.51.100.201' })).status).toBe(200);
    expect(await metric(a.adminUrl, 'seldon_gateway_oauth_token_throttled_total{by="client"}')).toBeGreaterThan(0);
  });

  it('IPv6 addresses share a budget per /64', () => {
    expect(addressBucket('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressBucket('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(addressBucket('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(addressBucket('10.1.2.3')).toBe('10.1.2.3');
    expect(addressBucket('::1')).toBe('0:0:0:0::/64');
  });
});

describe('error bodies of the OAuth front end, the gate and the token endpoint carry no internals', () => {
  let redis: TestRedis;
  let backend: HttpBackend;
  let rpc: GrpcBackend;
  let pub: TestGateway;
  let internal: TestGateway;
  let clients: GrpcClients;
  const manifests = { 'g.yaml': sdep('g', 'models', { oauth_key: 'gkey', oauth_secret: 'gsecret', predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-auth': 'oauth' }) };
  beforeAll(async () => {
    redis = await startRedis();
    backend = await startHttpBackend({ name: 'g' });
    rpc = await startGrpcBackend({ name: 'g' });
    const resolve = { 'g-main.models:8000': backend.port, 'g-main.models:5001': rpc.port };
    pub = await startTestGateway({ manifests, resolve, args: ['--redis-url', redis.url, '--redis-timeout', '300ms'], logger: pino({ level: 'silent' }) });
    internal = await startTestGateway({ manifests, resolve, args: ['--redis-url', redis.url, '--redis-timeout', '300ms', '--error-detail', 'internal'] });
    clients = grpcClients(`127.0.0.1:${pub.port}`);
    for (const gw of [pub, internal]) await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_redis_connected')) === 1);
  });
  afterAll(async () => {
    clients?.close();
    await pub?.stop();
    await internal?.stop();
    await backend?.close();
    await rpc?.close();
    await redis?.stop();
  });

  it('/oauth/token: unsupported content type 415, malformed body 400, oversized body 413, all OAuth-style JSON without FST_ codes', async () => {
    const auth = { authorization: basic('gkeymodels', 'gsecret') };
    const xml = await send(`${pub.url}/oauth/token`, { headers: { ...auth, 'content-type': 'application/xml' }, body: '<grant/>' });
    expect([xml.status, xml.json['error']], xml.text).toEqual([415, 'invalid_request']);
    const json = await send(`${pub.url}/oauth/token`, { headers: { ...auth, 'content-type': 'application/json' }, body: '{"grant_type":' });
    expect([json.status, json.json['error']], json.text).toEqual([400, 'invalid_request']);
    const big = await send(`${pub.url}/oauth/token`, { headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=client_credentials&x=${'a'.repeat(70_000)}` });
    expect([big.status, big.json['error']], big.text).toEqual([413, 'invalid_request']);
    for (const r of [xml, json, big]) {
      expect(r.text).not.toMatch(LEAKS);
      expect(Object.keys(r.json).sort()).toEqual(['error', 'error_description']);
    }
    // --error-detail internal: the framework's code comes back, for debugging.
    const dbg = await send(`${internal.url}/oauth/token`, { headers: { ...auth, 'content-type': 'application/xml' }, body: '<grant/>' });
    expect(dbg.status).toBe(415);
    expect(dbg.json['error_description']).toMatch(/FST_ERR_CTP_INVALID_MEDIA_TYPE/);
  });

  it('Redis down: token endpoint, front end, gate (REST and gRPC) answer 503 naming the deployment, with no Redis or library text', async () => {
    const t = await fetchToken(pub.url, 'gkeymodels', 'gsecret');
    await redis.kill();
    for (const gw of [pub, internal]) await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_redis_connected')) === 0);
    const tok = await tokenRequest(pub, basic('gkeymodels', 'gsecret'));
    expect([tok.status, tok.json['error']]).toEqual([503, 'temporarily_unavailable']);
    const api = await predictRest(`${pub.url}/api/v0.1/predictions`, bearer(t));
    expect([api.status, (api.json['status'] as { reason: string }).reason]).toEqual([503, 'AUTH_BACKEND_UNAVAILABLE']);
    const gated = await predictRest(`${pub.url}/seldon/models/g/api/v1.0/predictions`, bearer(t));
    expect([gated.status, (gated.json['status'] as { reason: string }).reason]).toEqual([503, 'AUTH_BACKEND_UNAVAILABLE']);
    const g = await predict(clients, { strData: 'x' }, md({ seldon: 'g', namespace: 'models', oauth_token: t }));
    expect(!g.ok && g.error.code).toBe(grpc.status.UNAVAILABLE);
    for (const text of [tok.text, api.text, gated.text, g.ok ? '' : g.error.details]) expect(text).not.toMatch(LEAKS);
    expect(gated.text).toContain('models/g');
    expect(g.ok ? '' : g.error.details).toContain('token store');
    // --error-detail internal: the store's own words come back.
    const dbg = await predictRest(`${internal.url}/seldon/models/g/api/v1.0/predictions`, bearer(t));
    expect(dbg.status).toBe(503);
    expect(dbg.text).toMatch(/\(token store: /);
    await redis.restart();
  });
});
