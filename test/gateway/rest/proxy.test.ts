/**
 * The REST data plane end to end: real gateway, real upstream servers, real sockets on 127.0.0.1.
 */
import http from 'node:http';
import { Readable } from 'node:stream';
import { Pool, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { startRecordingUpstream, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { raw } from '../../helpers/net.js';
import { sleep } from '../../helpers/wait.js';

const predict = '/api/v1.0/predictions';
const json = { 'content-type': 'application/json' };
const body = '{"data":{"ndarray":[[1,2]]}}';

async function post(url: string, headers: Record<string, string> = {}, payload: string | Buffer = body) {
  const r = await request(url, { method: 'POST', headers: { ...json, ...headers }, body: payload });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text, json: () => JSON.parse(text) as { status: { code: number; reason: string; info: string; status: string } } };
}

describe('REST proxy: forwarding', () => {
  let main: HttpBackend;
  let canary: HttpBackend;
  let gw: TestGateway;
  beforeAll(async () => {
    main = await startHttpBackend({ name: 'main' });
    canary = await startHttpBackend({ name: 'canary' });
    gw = await startTestGateway({
      manifests: {
        'iris.yaml': sdep('iris', 'models', { predictors: [{ name: 'main' }] }),
        'split.yaml': sdep('split', 'models', {
          predictors: [
            { name: 'main', traffic: 75 },
            { name: 'canary', traffic: 25 },
          ],
        }),
        'zero.yaml': sdep('zero', 'models', {
          predictors: [
            { name: 'main', traffic: 100 },
            { name: 'canary', traffic: 0 },
          ],
        }),
      },
      resolve: {
        'iris-main.models:8000': main.port,
        'split-main.models:8000': main.port,
        'split-canary.models:8000': canary.port,
        'zero-main.models:8000': main.port,
        'zero-canary.models:8000': canary.port,
      },
    });
  });
  afterAll(async () => {
    await gw.stop();
    await main.close();
    await canary.close();
  });

  it('rewrites the prefix to /, keeps the query and Host, adds forwarding headers and drops hop-by-hop ones', async () => {
    main.requests.length = 0;
    // node:http, not undici: undici refuses to send hop-by-hop headers at all.
    const r = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request(`${gw.url}/seldon/models/iris${predict}?x=1&y=%2F`, {
        method: 'POST',
        headers: {
          ...json,
          host: 'api.example.com:8080',
          'seldon-puid': 'p1',
          'x-forwarded-for': '10.9.9.9',
          'keep-alive': 'timeout=5',
          connection: 'keep-alive, x-hop',
          'x-hop': '1',
          'x-custom': 'v',
        },
      });
      req.on('response', resolve).on('error', reject);
      req.end(body);
    });
    r.resume();
    expect(r.statusCode).toBe(200);
    expect(r.headers['x-backend']).toBe('main');
    const seen = main.requests[0]!;
    expect(seen.url).toBe(`${predict}?x=1&y=%2F`);
    expect(seen.method).toBe('POST');
    expect(seen.body.toString()).toBe(body);
    expect(seen.headers.host).toBe('api.example.com:8080');
    expect(seen.headers['seldon-puid']).toBe('p1');
    expect(seen.headers['x-custom']).toBe('v');
    // The peer is not a trusted proxy: its x-forwarded-for is replaced (test/gateway/edge/hardened-edge.test.ts: trusted peers).
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-envoy-original-path']).toBe(`/seldon/models/iris${predict}?x=1&y=%2F`);
    expect(seen.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen.headers['keep-alive']).toBeUndefined();
    expect(seen.headers['x-hop']).toBeUndefined();
  });

  it('keeps a client x-request-id and passes any method and sub-path', async () => {
    main.requests.length = 0;
    const r = await request(`${gw.url}/seldon/models/iris/v2/models/iris/ready`, { method: 'GET', headers: { 'x-request-id': 'abc' } });
    await r.body.text();
    expect(r.statusCode).toBe(200);
    expect(main.requests[0]!.url).toBe('/v2/models/iris/ready');
    expect(main.requests[0]!.headers['x-request-id']).toBe('abc');
    const d = await request(`${gw.url}/seldon/models/iris/api/v1.0/feedback`, { method: 'DELETE' });
    await d.body.text();
    expect(main.requests[1]!.method).toBe('DELETE');
  });

  it('answers 404 NO_ROUTE with a Seldon-style JSON body, and no body to HEAD', async () => {
    const r = await post(`${gw.url}/seldon/models/nope${predict}`);
    expect(r.status).toBe(404);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.json()).toEqual({ status: { code: 404, info: `no route for /seldon/models/nope${predict}`, reason: 'NO_ROUTE', status: 'FAILURE' } });
    const h = await request(`${gw.url}/seldon/models/nope/x`, { method: 'HEAD' });
    expect(h.statusCode).toBe(404);
    expect(await h.body.text()).toBe('');
    // No slash after the name: not the iris route.
    expect((await post(`${gw.url}/seldon/models/iris`)).status).toBe(404);
  });

  it('resolves dot segments, raw or %2e, before routing (Envoy normalize_path); 400 where only encoded separators delimit one', async () => {
    for (const p of ['/seldon/models/iris/../split/x', '/seldon/models/iris/%2e%2e/split/x']) {
      const out = (await raw(gw.port, `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).text;
      expect(out).toMatch(/^HTTP\/1\.1 200 /);
      expect(out).toMatch(/x-backend: (main|canary)/i);
    }
    const out = (await raw(gw.port, `GET /seldon/models/iris/..%2fsplit/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).text;
    expect(out).toMatch(/^HTTP\/1\.1 400 /);
    expect(out).toContain('"reason":"BAD_REQUEST"');
  });

  it('splits 75/25 within 1.5 points over 10,000 requests, and sends nothing to a 0% member', async () => {
    const pool = new Pool(gw.url, { connections: 16 });
    const count = async (path: string): Promise<Record<string, number>> => {
      const counts: Record<string, number> = {};
      let next = 0;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < 10_000) {
            next++;
            const r = await pool.request({ path, method: 'POST', headers: json, body });
            await r.body.text();
            expect(r.statusCode).toBe(200);
            const who = String(r.headers['x-backend']);
            counts[who] = (counts[who] ?? 0) + 1;
          }
        }),
      );
      return counts;
    };
    const split = await count(`/seldon/models/split${predict}`);
    expect(Math.abs(split.main! / 100 - 75)).toBeLessThanOrEqual(1.5);
    expect(Math.abs(split.canary! / 100 - 25)).toBeLessThanOrEqual(1.5);
    const zero = await count(`/seldon/models/zero${predict}`);
    expect(zero.main).toBe(10_000);
    expect(zero.canary).toBeUndefined();
    await pool.close();
    // 20,000 requests: seconds alone, minutes on a busy machine.
  }, 240_000);
});

describe('REST proxy: header routes, ambassador-id', () => {
  let plain: HttpBackend;
  let eu: HttpBackend;
  let lond: HttpBackend;
  let gw: TestGateway;
  let blue: TestGateway;
  beforeAll(async () => {
    plain = await startHttpBackend({ name: 'plain' });
    eu = await startHttpBackend({ name: 'eu' });
    lond = await startHttpBackend({ name: 'lond' });
    const manifests = {
      'fraud.yaml': sdep('fraud', 'm', { predictors: [{ name: 'main' }] }),
      'eu.yaml': sdep('fraud-eu', 'm', { annotations: { 'seldon.io/ambassador-service-name': 'fraud', 'seldon.io/ambassador-header': 'x-region: eu' }, predictors: [{ name: 'main' }] }),
      'lond.yaml': sdep('fraud-lond', 'm', { annotations: { 'seldon.io/ambassador-service-name': 'fraud', 'seldon.io/ambassador-regex-header': 'location: lond.*' }, predictors: [{ name: 'main' }] }),
      'blue.yaml': sdep('bluemodel', 'm', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-id': 'blue' }),
    };
    const resolve = {
      'fraud-main.m:8000': plain.port,
      'fraud-eu-main.m:8000': eu.port,
      'fraud-lond-main.m:8000': lond.port,
      'bluemodel-main.m:8000': plain.port,
    };
    gw = await startTestGateway({ manifests, resolve });
    blue = await startTestGateway({ manifests, resolve, args: ['--ambassador-id', 'blue'] });
  });
  afterAll(async () => {
    await gw.stop();
    await blue.stop();
    await Promise.all([plain.close(), eu.close(), lond.close()]);
  });

  it('routes by exact and regex headers, the plain group otherwise', async () => {
    const who = async (h: Record<string, string>) => (await post(`${gw.url}/seldon/m/fraud${predict}`, h)).headers['x-backend'];
    expect(await who({})).toBe('plain');
    expect(await who({ 'x-region': 'eu' })).toBe('eu');
    expect(await who({ 'x-region': 'us' })).toBe('plain');
    expect(await who({ location: 'londinium' })).toBe('lond');
    expect(await who({ location: 'xlondon' })).toBe('plain');
  });

  it('serves disjoint sets to gateways with different ambassador ids, and lists what each skips', async () => {
    expect((await post(`${gw.url}/seldon/m/bluemodel${predict}`)).status).toBe(404);
    expect((await post(`${gw.url}/seldon/m/fraud${predict}`)).status).toBe(200);
    expect((await post(`${blue.url}/seldon/m/bluemodel${predict}`)).status).toBe(200);
    expect((await post(`${blue.url}/seldon/m/fraud${predict}`)).status).toBe(404);
    const routes = (await (await request(`${gw.adminUrl}/routes`)).body.json()) as { deployments: { name: string; state: string; reasons: string[] }[] };
    const skipped = routes.deployments.find((d) => d.name === 'bluemodel')!;
    expect(skipped.state).toBe('skipped');
    expect(skipped.reasons[0]).toContain('"blue"');
  });

  it('never exposes routes or metrics on the public port', async () => {
    for (const p of ['/routes', '/metrics', '/readyz']) {
      const r = await request(`${gw.url}${p}`);
      expect(r.statusCode).toBe(404);
      expect(await r.body.text()).not.toContain('seldon_gateway');
    }
  });
});

describe('REST proxy: shadows', () => {
  let main: HttpBackend;
  let shadow: HttpBackend;
  let gw: TestGateway;
  beforeAll(async () => {
    main = await startHttpBackend({ name: 'main' });
    shadow = await startHttpBackend({ name: 'shadow' });
    gw = await startTestGateway({
      manifests: {
        'churn.yaml': sdep('churn', 'm', { predictors: [{ name: 'main' }, { name: 'shadow', shadow: true }] }),
        'dead.yaml': sdep('dead', 'm', { predictors: [{ name: 'main' }, { name: 'shadow', shadow: true }] }),
      },
      resolve: { 'churn-main.m:8000': main.port, 'churn-shadow.m:8000': shadow.port, 'dead-main.m:8000': main.port, 'dead-shadow.m:8000': 1 },
      args: ['--shadow-max-in-flight', '4'],
    });
  });
  afterAll(async () => {
    await gw.stop();
    await main.close();
    await shadow.close();
  });

  it('mirrors method, rewritten path, headers and body with Host <host>-shadow; the primary carries no marker', async () => {
    shadow.requests.length = 0;
    const r = await post(`${gw.url}/seldon/m/churn${predict}?q=1`, { host: 'api.example.com:8080', 'x-custom': 'c' });
    expect(r.status).toBe(200);
    expect(r.headers['x-backend']).toBe('main');
    await expect.poll(() => shadow.requests.length).toBe(1);
    const m = shadow.requests[0]!;
    expect(m.method).toBe('POST');
    expect(m.url).toBe(`${predict}?q=1`);
    expect(m.headers.host).toBe('api.example.com-shadow:8080');
    expect(m.headers['x-custom']).toBe('c');
    expect(m.body.toString()).toBe(body);
  });

  it('a shadow that sleeps 30 s or returns 500 or is down never delays or fails the primary; excess mirrors are dropped', async () => {
    shadow.setHandler((_req, res) => {
      // Sleeps far beyond the test; the gateway's mirror timeout (3 s) ends it.
      setTimeout(() => {
        res.writeHead(500);
        res.end();
      }, 30_000);
    });
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 20 }, () => post(`${gw.url}/seldon/m/churn${predict}`)));
    expect(results.every((r) => r.status === 200 && r.headers['x-backend'] === 'main')).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
    const dead = await Promise.all(Array.from({ length: 5 }, () => post(`${gw.url}/seldon/m/dead${predict}`)));
    expect(dead.every((r) => r.status === 200)).toBe(true);
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    expect(metrics).toMatch(/seldon_gateway_shadow_requests_total\{[^}]*deployment="churn"[^}]*result="dropped_in_flight"\} ([0-9]+)/);
    const dropped = Number(/seldon_gateway_shadow_requests_total\{[^}]*deployment="churn"[^}]*result="dropped_in_flight"\} ([0-9]+)/.exec(metrics)![1]);
    expect(dropped).toBeGreaterThanOrEqual(16);
    shadow.setHandler(undefined);
  });
});

describe('REST proxy: upstream failures, timeouts, retries, breakers', () => {
  let slow: HttpBackend;
  let flaky: HttpBackend;
  let gw: TestGateway;
  let attempts = 0;
  beforeAll(async () => {
    slow = await startHttpBackend({ name: 'slow' });
    flaky = await startHttpBackend({
      name: 'flaky',
      handler: (_req, res) => {
        attempts++;
        res.writeHead(503, { 'content-type': 'application/json', 'x-attempt': String(attempts) });
        res.end('{"status":{"code":503,"info":"busy","status":"FAILURE"}}');
      },
    });
    gw = await startTestGateway({
      manifests: {
        'down.yaml': sdep('down', 'm', { predictors: [{ name: 'main' }] }),
        'slow.yaml': sdep('slow', 'm', { annotations: { 'seldon.io/rest-timeout': '200' }, predictors: [{ name: 'main' }] }),
        'long.yaml': sdep('long', 'm', { annotations: { 'seldon.io/rest-timeout': '0' }, predictors: [{ name: 'main' }] }),
        'flaky.yaml': sdep('flaky', 'm', { annotations: { 'seldon.io/ambassador-retries': '2' }, predictors: [{ name: 'main' }] }),
        'tight.yaml': sdep('tight', 'm', {
          annotations: {
            'seldon.io/ambassador-circuit-breakers-max-connections': '1',
            'seldon.io/ambassador-circuit-breakers-max-pending-requests': '1',
          },
          predictors: [{ name: 'main' }],
        }),
      },
      resolve: { 'down-main.m:8000': 1, 'slow-main.m:8000': slow.port, 'long-main.m:8000': slow.port, 'flaky-main.m:8000': flaky.port, 'tight-main.m:8000': slow.port },
      args: ['--retry-buffer', '1KiB'],
    });
  });
  afterAll(async () => {
    await gw.stop();
    await slow.close();
    await flaky.close();
  });

  it('connect failure → 503 UPSTREAM_CONNECT_FAILURE naming the deployment, not its address', async () => {
    const r = await post(`${gw.url}/seldon/m/down${predict}`);
    expect(r.status).toBe(503);
    expect(r.json().status.reason).toBe('UPSTREAM_CONNECT_FAILURE');
    // Named as gRPC names it (edge/errors.ts upstreamNamed).
    expect(r.json().status.info).toBe('could not connect to the upstream of m/down/main');
    expect(r.text).not.toMatch(/down-main|8000|ECONNREFUSED|127\.0\.0\.1/);
  });

  it('--error-detail internal: the same failure names the Service address and the cause', async () => {
    const dbg = await startTestGateway({
      manifests: { 'down.yaml': sdep('down', 'm', { predictors: [{ name: 'main' }] }) },
      resolve: { 'down-main.m:8000': 1 },
      args: ['--error-detail', 'internal'],
    });
    try {
      const r = await post(`${dbg.url}/seldon/m/down${predict}`);
      expect(r.status).toBe(503);
      expect(r.json().status.info).toBe('could not connect to upstream down-main.m:8000 (m/down/main): ECONNREFUSED');
    } finally {
      await dbg.stop();
    }
  });

  it('route timeout → 504 UPSTREAM_TIMEOUT; rest-timeout 0 waits', async () => {
    const r = await post(`${gw.url}/seldon/m/slow/sleep/1000`);
    expect(r.status).toBe(504);
    expect(r.json().status).toMatchObject({ code: 504, reason: 'UPSTREAM_TIMEOUT', status: 'FAILURE' });
    const ok = await post(`${gw.url}/seldon/m/long/sleep/400`);
    expect(ok.status).toBe(200);
  });

  it('reset before headers → 503 UPSTREAM_RESET', async () => {
    const r = await post(`${gw.url}/seldon/m/slow/x?reset=1`);
    expect(r.status).toBe(503);
    expect(r.json().status.reason).toBe('UPSTREAM_RESET');
  });

  it('ambassador-retries 2 makes 3 attempts and returns the last upstream answer unchanged; a body over the retry buffer is not retried', async () => {
    attempts = 0;
    const r = await post(`${gw.url}/seldon/m/flaky${predict}`);
    expect(attempts).toBe(3);
    expect(r.status).toBe(503);
    expect(r.headers['x-attempt']).toBe('3');
    expect(r.text).toBe('{"status":{"code":503,"info":"busy","status":"FAILURE"}}');
    attempts = 0;
    const big = await post(`${gw.url}/seldon/m/flaky${predict}`, {}, Buffer.alloc(4096, 97));
    expect(big.status).toBe(503);
    expect(attempts).toBe(1);
  });

  it('breaker trips: 503 UPSTREAM_OVERFLOW with x-envoy-overloaded for most of 10 concurrent requests', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => post(`${gw.url}/seldon/m/tight/sleep/500`)));
    const overflow = results.filter((r) => r.status === 503);
    expect(overflow.length).toBeGreaterThanOrEqual(7);
    for (const r of overflow) {
      expect(r.headers['x-envoy-overloaded']).toBe('true');
      expect(r.json().status.reason).toBe('UPSTREAM_OVERFLOW');
    }
    expect(results.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(1);
  });
});

describe('REST proxy: bodies and malformed requests', () => {
  let echo: HttpBackend;
  let gw: TestGateway;
  beforeAll(async () => {
    echo = await startHttpBackend({
      name: 'echo',
      bufferBody: false,
      handler: async (req, res) => {
        let n = 0;
        for await (const c of req) n += (c as Buffer).length;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ received: n, chunked: req.headers['transfer-encoding'] === 'chunked' }));
      },
    });
    gw = await startTestGateway({ manifests: { 'e.yaml': sdep('e', 'm', { predictors: [{ name: 'main' }] }) }, resolve: { 'e-main.m:8000': echo.port } });
  });
  afterAll(async () => {
    await gw.stop();
    await echo.close();
  });

  it('streams a 50 MB upload (content-length and chunked)', async () => {
    const big = Buffer.alloc(50 * 1024 * 1024, 1);
    const r = await post(`${gw.url}/seldon/m/e${predict}`, {}, big);
    expect(JSON.parse(r.text)).toEqual({ received: big.length, chunked: false });
    async function* chunks() {
      for (let i = 0; i < 50; i++) yield Buffer.alloc(1024 * 1024, 2);
    }
    const c = await request(`${gw.url}/seldon/m/e${predict}`, { method: 'POST', body: Readable.from(chunks()) });
    expect(JSON.parse(await c.body.text())).toEqual({ received: 50 * 1024 * 1024, chunked: true });
  }, 30_000);

  it('streams a 50 MB download', async () => {
    echo.setHandler(undefined);
    const r = await request(`${gw.url}/seldon/m/e/x?bytes=${50 * 1024 * 1024}`);
    let n = 0;
    for await (const c of r.body) n += (c as Buffer).length;
    expect(n).toBe(50 * 1024 * 1024);
  }, 30_000);

  it('answers Expect: 100-continue', async () => {
    const out = (await raw(gw.port, `POST /seldon/m/e${predict} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n`, { quietMs: 200 })).text;
    expect(out).toMatch(/^HTTP\/1\.1 100 Continue/);
  });

  it('rejects malformed requests with 4xx and keeps serving', async () => {
    const badLength = (await raw(gw.port, `POST /seldon/m/e${predict} HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n`)).text;
    expect(badLength).toMatch(/^HTTP\/1\.1 400/);
    const hugeHeader = (await raw(gw.port, `GET /seldon/m/e/x HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`)).text;
    expect(hugeHeader).toMatch(/^HTTP\/1\.1 431/);
    const ok = await post(`${gw.url}/seldon/m/e${predict}`);
    expect(ok.status).toBe(200);
  });
});

describe('REST proxy: a model server that closes idle keep-alive connections unannounced', () => {
  /**
   * The way gunicorn (Seldon's Python server) does it: no Keep-Alive header, and idle connections
   * are checked only when its loop wakes, so a request arriving on a connection idle longer than
   * the keep-alive finds it closed with the request unread (a reset). Here the idle limit is 300 ms.
   */
  let model: RecordingUpstream;
  let gw: TestGateway;
  const read: string[] = [];
  beforeAll(async () => {
    const answeredAt = new Map<number, number>();
    model = await startRecordingUpstream({
      name: 'gunicorn',
      responder: (r) => {
        const last = answeredAt.get(r.connection);
        if (last !== undefined && r.receivedAt - last > 300) return { reset: true };
        read.push(r.body.toString());
        answeredAt.set(r.connection, Date.now());
        return {
          headers: [
            ['Server', 'gunicorn'],
            ['Connection', 'keep-alive'],
            ['Content-Type', 'application/json'],
          ],
          body: '{"data":{"ndarray":[[0.5]]}}',
        };
      },
    });
    gw = await startTestGateway({
      manifests: { 'g.yaml': sdep('g', 'm', { predictors: [{ name: 'main' }] }) },
      resolve: { 'g-main.m:8000': model.port },
    });
  });
  afterAll(async () => {
    await gw.stop();
    await model.close();
  });

  it('requests after a pause longer than its keep-alive all succeed, each read once; the second sends are counted', async () => {
    // Without the second send, each request that found a stale connection was a 503 UPSTREAM_RESET.
    const send = (i: number) => post(`${gw.url}/seldon/m/g${predict}`, {}, `{"data":{"ndarray":[[${i}]]}}`);
    // Four connections to the model, idle, then four requests on them after its keep-alive.
    expect((await Promise.all([0, 1, 2, 3].map(send))).map((r) => r.status)).toEqual([200, 200, 200, 200]);
    // The case: a pause longer than the model's keep-alive, so the gateway meets connections the model is closing.
    await sleep(400);
    expect((await Promise.all([4, 5, 6, 7].map(send))).map((r) => r.status)).toEqual([200, 200, 200, 200]);
    await sleep(400); // and again
    expect((await send(8)).status).toBe(200);
    expect(read.map((b) => JSON.parse(b).data.ndarray[0][0]).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    // One second send per request that found a stale connection: at least one after each pause.
    const replays = await metric(gw.adminUrl, 'seldon_gateway_upstream_replays_total');
    expect(replays).toBeGreaterThanOrEqual(2);
    expect(replays).toBeLessThanOrEqual(5);
  });
});
