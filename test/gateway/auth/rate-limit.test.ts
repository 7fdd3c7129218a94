/**
 * Rate limits (`seldon.io/gateway-rate-limit`): the GCRA itself, two gateways sharing one real
 * redis-server (the limit holds across both), 429 bodies and Retry-After, gRPC
 * RESOURCE_EXHAUSTED, per-predictor buckets, the local-share fallback when Redis is down or
 * slow, the in-memory limiter, and a cluster of workers sharing the primary's limiter.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Pool, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { md, predict } from '../../helpers/grpc.js';
import { startCli } from '../../helpers/cli.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { sleep, waitUntil } from '../../helpers/wait.js';
import { Gcra } from '../../../gateway/auth/rate-limit.js';
import { parseRateLimit } from '../../../routing/seldon/annotations.js';
import type { RateLimit } from '../../../routing/types.js';

const PREDICT = '/api/v1.0/predictions';

const limit = (text: string, key = 'ns/x'): RateLimit => parseRateLimit(text, key) as RateLimit;

/**
 * Closed-loop load on every url at once for `ms`: `loops` clients per url, each pausing `pauseMs`
 * between requests. Returns when each 200 came (ms since start), the other statuses, and how long
 * the load really lasted (to its last answer).
 */
async function hammer(urls: string[], ms: number, loops = 4, pauseMs = 4): Promise<{ ok: number[]; statuses: Record<number, number>; elapsedMs: number }> {
  const ok: number[] = [];
  const statuses: Record<number, number> = {};
  const t0 = performance.now();
  await Promise.all(
    urls.map(async (url) => {
      const origin = new URL(url).origin;
      const pool = new Pool(origin, { connections: loops });
      await Promise.all(
        Array.from({ length: loops }, async () => {
          while (performance.now() - t0 < ms) {
            const r = await pool.request({ path: new URL(url).pathname, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
            await r.body.text();
            statuses[r.statusCode] = (statuses[r.statusCode] ?? 0) + 1;
            if (r.statusCode === 200) ok.push(performance.now() - t0);
            await sleep(pauseMs);
          }
        }),
      );
      await pool.close();
    }),
  );
  return { ok, statuses, elapsedMs: performance.now() - t0 };
}

/**
 * How many requests `n`/s admits under constant pressure for `ms`: its burst (n at once), then n
 * a second. Never more, whatever the machine does (that is the limit holding); less only when the
 * pressure stops: the gateways share this process with their clients, so a busy machine stalls
 * both, and the bucket refills past its burst meanwhile. Hence a bound above and a loose one below.
 */
function expectAdmitted(admitted: number, n: number, ms: number, what: string): void {
  const ideal = n + (n * ms) / 1000;
  console.log(`${what}: ${admitted} admitted in ${ms.toFixed(0)} ms (at most ${ideal.toFixed(0)})`);
  expect(admitted, what).toBeLessThanOrEqual(Math.ceil(ideal * 1.05));
  expect(admitted, what).toBeGreaterThanOrEqual(Math.floor(ideal * 0.6));
}

describe('GCRA', () => {
  it('allows a burst of n, then exactly n per period', () => {
    const g = new Gcra();
    const l = [limit('10/s')];
    let allowed = 0;
    for (let i = 0; i < 50; i++) if (g.take(l, 1000).allowed) allowed++;
    expect(allowed).toBe(10);
    const refused = g.take(l, 1000);
    expect(refused).toMatchObject({ allowed: false, limit: l[0] });
    expect(refused.retryAfterMs).toBeCloseTo(100, 5);
    // Over the next 10 s, one every 100 ms, whatever the pressure.
    allowed = 0;
    for (let t = 1000; t <= 11_000; t += 5) if (g.take(l, t).allowed) allowed++;
    expect(allowed).toBe(100);
  });

  it('consumes from every bucket or from none, and reports the longest wait', () => {
    const g = new Gcra();
    const dep = limit('100/s', 'ns/x');
    const pred = limit('2/m', 'ns/x/canary');
    expect(g.take([dep, pred], 0).allowed).toBe(true);
    expect(g.take([dep, pred], 0).allowed).toBe(true);
    const r = g.take([dep, pred], 0);
    expect([r.allowed, r.limit?.key]).toEqual([false, 'ns/x/canary']);
    expect(r.retryAfterMs).toBeCloseTo(30_000, 5);
    // The refused request took nothing from the deployment's bucket: 98 more fit at once.
    let n = 0;
    while (g.take([dep], 0).allowed) n++;
    expect(n).toBe(98);
  });

  it('a share gives a fraction of the limit (the fallback), and a changed limit is a new bucket', () => {
    const g = new Gcra();
    let n = 0;
    for (let t = 0; t <= 10_000; t += 1) if (g.take([limit('20/s')], t, 0.5).allowed) n++;
    expect(n).toBe(10 + 100);
    expect(g.take([limit('21/s')], 10_000).allowed).toBe(true);
  });

  it('forgets the buckets of deployments that took nothing for a minute, however few decisions were made', () => {
    const g = new Gcra();
    // 100 deployments come and go, each taking once: far fewer than the 10,000 decisions of the count sweep.
    for (let i = 0; i < 100; i++) g.take([limit('10/s', `ns/churn${i}`)], i * 1000);
    expect(g.size).toBeLessThanOrEqual(61);
    // The live one's bucket stays while it holds something.
    g.take([limit('1/h', 'ns/live')], 200_000);
    g.take([limit('10/s', 'ns/other')], 300_000);
    expect(g.size).toBe(2);
    g.take([limit('10/s', 'ns/other')], 400_000);
    expect(g.size).toBe(2);
  });

  it('parses <n>/<s|m|h> and refuses anything else', () => {
    expect(limit('100/s')).toEqual({ key: 'ns/x', count: 100, periodMs: 1000, text: '100/s' });
    expect(limit(' 5 / m ')).toMatchObject({ count: 5, periodMs: 60_000, text: '5/m' });
    expect(limit('7/h')).toMatchObject({ periodMs: 3_600_000 });
    for (const bad of ['0/s', '10', '10/d', '-1/s', '1.5/s', '10/sec', '99999999999/s']) expect(typeof parseRateLimit(bad, 'k'), bad).toBe('string');
  });
});

describe('rate limits shared by two gateways through Redis', () => {
  let redis: TestRedis;
  let http: HttpBackend;
  let rpc: GrpcBackend;
  let a: TestGateway;
  let b: TestGateway;
  let clients: GrpcClients;
  // Low enough that the clients here exceed it even on a busy machine (they share its CPU with both gateways).
  const RATE = 10;

  beforeAll(async () => {
    redis = await startRedis();
    http = await startHttpBackend({ name: 'up' });
    rpc = await startGrpcBackend({ name: 'up' });
    const manifests = {
      'limited.yaml': sdep('limited', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-rate-limit': `${RATE}/s` }),
      'fallback.yaml': sdep('fallback', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-rate-limit': `${RATE}/s` }),
      'slow.yaml': sdep('slow', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-rate-limit': '1/m' }),
      'perpred.yaml': sdep('perpred', 'models', {
        predictors: [{ name: 'main' }, { name: 'canary', traffic: 50, annotations: { 'seldon.io/gateway-rate-limit': '2/m' } }],
      }),
      'free.yaml': sdep('free', 'models', { predictors: [{ name: 'main' }] }),
    };
    const resolve: Record<string, number> = {};
    for (const n of ['limited', 'fallback', 'slow', 'free']) {
      resolve[`${n}-main.models:8000`] = http.port;
      resolve[`${n}-main.models:5001`] = rpc.port;
    }
    resolve['perpred-main.models:8000'] = http.port;
    resolve['perpred-canary.models:8000'] = http.port;
    // A timeout a busy machine's Redis round trips stay well within: past it, decisions fall back
    // to local shares, and the shared-bucket counts below would not hold.
    const args = ['--redis-url', redis.url, '--redis-timeout', '1s'];
    a = await startTestGateway({ manifests, resolve, args });
    b = await startTestGateway({ manifests, resolve, args });
    clients = grpcClients(`127.0.0.1:${b.port}`);
    for (const gw of [a, b]) await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_redis_connected')) === 1);
  });
  afterAll(async () => {
    clients?.close();
    await a?.stop();
    await b?.stop();
    await http?.close();
    await rpc?.close();
    await redis?.stop();
  });

  it(`${RATE}/s holds across both gateways: one bucket, never more than its burst and ${RATE}/s after`, async () => {
    const T = 3000;
    const { ok, statuses, elapsedMs } = await hammer([`${a.url}/seldon/models/limited${PREDICT}`, `${b.url}/seldon/models/limited${PREDICT}`], T);
    expect(Object.keys(statuses).sort()).toEqual(['200', '429']);
    // One bucket for both: two would admit twice as many.
    expectAdmitted(ok.length, RATE, elapsedMs, `rate limit ${RATE}/s over 2 gateways (${statuses[429]} refused)`);
    // Both gateways admitted some: the bucket is shared, not split.
    expect(await metric(a.adminUrl, 'seldon_gateway_rate_limited_total{namespace="models",deployment="limited",protocol="rest",bucket="models/limited"}')).toBeGreaterThan(0);
    expect(await metric(b.adminUrl, 'seldon_gateway_rate_limited_total{namespace="models",deployment="limited",protocol="rest",bucket="models/limited"}')).toBeGreaterThan(0);
  }, 90_000);

  it('over the limit: 429 with Retry-After and a JSON body, on either gateway; gRPC gets RESOURCE_EXHAUSTED', async () => {
    const url = (gw: TestGateway): string => `${gw.url}/seldon/models/slow${PREDICT}`;
    expect((await request(url(a), { method: 'POST', body: '{}' })).statusCode).toBe(200);
    for (const gw of [a, b]) {
      const r = await request(url(gw), { method: 'POST', body: '{}' });
      const body = (await r.body.json()) as { status: { code: number; reason: string; info: string; status: string } };
      expect(r.statusCode).toBe(429);
      expect(r.headers['content-type']).toBe('application/json');
      const retry = Number(r.headers['retry-after']);
      expect(retry).toBeGreaterThanOrEqual(59);
      expect(retry).toBeLessThanOrEqual(60);
      expect(body).toEqual({ status: { code: 429, info: expect.stringContaining('rate limit 1/m of models/slow exceeded') as string, reason: 'RATE_LIMITED', status: 'FAILURE' } });
    }
    const g = await predict(clients, { strData: 'x' }, md({ seldon: 'slow', namespace: 'models' }));
    expect(!g.ok && g.error.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(!g.ok && g.error.details).toContain('rate limit 1/m of models/slow exceeded');
    expect(!g.ok && g.error.metadata.get('retry-after')[0]).toMatch(/^(59|60)$/);
    // Unlimited deployments never touch the limiter.
    for (let i = 0; i < 20; i++) expect((await request(`${a.url}/seldon/models/free${PREDICT}`, { method: 'POST', body: '{}' })).statusCode).toBe(200);
  });

  it('a predictor annotation limits that predictor alone', async () => {
    const seen: Record<string, number> = {};
    for (let i = 0; i < 60; i++) {
      const r = await request(`${(i % 2 ? a : b).url}/seldon/models/perpred${PREDICT}`, { method: 'POST', body: '{}' });
      await r.body.text();
      seen[r.statusCode] = (seen[r.statusCode] ?? 0) + 1;
    }
    // canary (about half the picks) admits 2 in the minute; main admits all of its picks.
    expect(seen[429]).toBeGreaterThan(10);
    expect(
      (await metric(a.adminUrl, 'seldon_gateway_requests_total{namespace="models",deployment="perpred",predictor="canary",protocol="rest",kind="primary",code="200"}')) +
        (await metric(b.adminUrl, 'seldon_gateway_requests_total{namespace="models",deployment="perpred",predictor="canary",protocol="rest",kind="primary",code="200"}')),
    ).toBe(2);
  });

  it('Redis slow: decisions fall back to the local share after --redis-timeout instead of waiting', async () => {
    // Both gateways must know there are 2 of them (counted every second).
    for (const gw of [a, b]) {
      await request(`${gw.url}/seldon/models/fallback${PREDICT}`, { method: 'POST', body: '{}' });
      await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_rate_limit_replicas')) === 2, 12_000);
    }
    await redis.command('CLIENT', 'PAUSE', '5000', 'ALL');
    const t0 = performance.now();
    const r = await request(`${a.url}/seldon/models/free${PREDICT}`, { method: 'POST', body: '{}' });
    expect(r.statusCode).toBe(200);
    const limited = await request(`${a.url}/seldon/models/fallback${PREDICT}`, { method: 'POST', body: '{}' });
    expect(limited.statusCode).toBe(200);
    // About the 1 s timeout, far from the 5 s pause.
    expect(performance.now() - t0).toBeLessThan(3500);
    expect(await metric(a.adminUrl, 'seldon_gateway_rate_limit_fallback_total{reason="slow"}')).toBeGreaterThan(0);
    // Redis answers again once its pause is over.
    await waitUntil(async () => (await redis.command('PING').catch(() => '')).startsWith('+PONG'), 10_000);
  }, 90_000);

  it(`Redis down: each gateway limits to its share (${RATE}/2 s), together still about ${RATE}/s, nothing blocked; back to shared when Redis returns`, async () => {
    // Both have counted each other since the pause above (the replica count is 1 while Redis is away): that pause
    // outlasted the records' 3 s, so a first count after it may have found the other's record expired.
    for (const gw of [a, b]) await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_flow_replicas')) === 2, 12_000);
    for (const gw of [a, b]) expect(await metric(gw.adminUrl, 'seldon_gateway_rate_limit_replicas')).toBe(2);
    await redis.kill();
    for (const gw of [a, b]) await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_redis_connected')) === 0);
    const T = 3000;
    const { ok, statuses, elapsedMs } = await hammer([`${a.url}/seldon/models/fallback${PREDICT}`, `${b.url}/seldon/models/fallback${PREDICT}`], T);
    expect(Object.keys(statuses).sort()).toEqual(['200', '429']);
    // Each its half (burst and rate): together the whole limit, not twice it.
    expectAdmitted(ok.length, RATE, elapsedMs, `rate limit ${RATE}/s with Redis down (local shares)`);
    for (const gw of [a, b]) {
      expect(await metric(gw.adminUrl, 'seldon_gateway_rate_limit_fallback_total{reason="down"}')).toBeGreaterThan(0);
      expect(await metric(gw.adminUrl, 'seldon_gateway_rate_limit_fallback_active')).toBe(1);
    }
    await redis.restart();
    for (const gw of [a, b]) {
      await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_redis_connected')) === 1);
      await request(`${gw.url}/seldon/models/fallback${PREDICT}`, { method: 'POST', body: '{}' });
      await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_rate_limit_fallback_active')) === 0);
    }
  }, 90_000);
});

describe('rate limits without Redis', () => {
  it('one process: in memory', async () => {
    const http = await startHttpBackend({ name: 'up' });
    const gw = await startTestGateway({
      manifests: { 'x.yaml': sdep('x', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-rate-limit': '3/m' }) },
      resolve: { 'x-main.models:8000': http.port },
    });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 10; i++) codes.push((await request(`${gw.url}/seldon/models/x${PREDICT}`, { method: 'POST', body: '{}' })).statusCode);
      expect(codes).toEqual([200, 200, 200, 429, 429, 429, 429, 429, 429, 429]);
    } finally {
      await gw.stop();
      await http.close();
    }
  });

  it("two workers share the primary's limiter and token store over IPC", async () => {
    const http = await startHttpBackend({ name: 'up' });
    const dir = mkdtempSync(join(tmpdir(), 'sgw-rl-'));
    writeFileSync(join(dir, 'x.yaml'), sdep('x', 'models', { oauth_key: 'k', oauth_secret: 's', predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-rate-limit': '10/m' }));
    const gw = await startCli(['--manifests', dir, '--workers', '2', '--resolve', `x-main.models:8000=127.0.0.1:${http.port}`, '--log-level', 'warn']);
    const port = gw.port;
    try {
      // A fresh connection per request, so both workers serve some.
      const tok = await request(`http://127.0.0.1:${port}/oauth/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from('kmodels:s').toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded', connection: 'close' },
        body: 'grant_type=client_credentials',
      });
      const token = ((await tok.body.json()) as { access_token: string }).access_token;
      const codes: Record<number, number> = {};
      for (let i = 0; i < 30; i++) {
        const r = await request(`http://127.0.0.1:${port}/api/v0.1/predictions`, { method: 'POST', headers: { authorization: `Bearer ${token}`, connection: 'close' }, body: '{}' });
        await r.body.text();
        codes[r.statusCode] = (codes[r.statusCode] ?? 0) + 1;
      }
      // Every worker accepted the token; the 10/m limit held across both.
      expect(codes).toEqual({ 200: 10, 429: 20 });
      // Failed /oauth/token attempts are counted in the primary too: 10 from this address, then 429 on any worker.
      const guesses: number[] = [];
      for (let i = 0; i < 12; i++) {
        const r = await request(`http://127.0.0.1:${port}/oauth/token`, {
          method: 'POST',
          headers: { authorization: `Basic ${Buffer.from(`kmodels:guess${i}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded', connection: 'close' },
          body: 'grant_type=client_credentials',
        });
        await r.body.text();
        guesses.push(r.statusCode);
      }
      expect(guesses).toEqual([...Array<number>(10).fill(401), 429, 429]);
    } finally {
      await gw.stop();
      await http.close();
    }
  }, 90_000);
});
