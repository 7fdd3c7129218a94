/**
 * Flow control end to end (docs/flow-control.md), over real sockets: a gateway in front of model
 * stand-ins of fixed concurrency (test/fixtures/limited-model.ts) that finish a request only when
 * the test says so, so every slot frees at a known moment and nothing depends on timing: the queue and route
 * timeouts run on a clock the test moves (test/helpers/fake-clock.ts AheadClock), never on waiting. REST
 * (HTTP/1.1) and gRPC (the real @grpc/grpc-js client): refusals byte for byte, priorities,
 * fairness between tenants, a client leaving while queued, the queue timeout, a malformed
 * annotation degrading its deployment alone, and a deployment without the annotation untouched.
 */
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { startLimitedModel, type LimitedModel } from '../../fixtures/limited-model.js';
import { AheadClock } from '../../helpers/fake-clock.js';
import { md, predict } from '../../helpers/grpc.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { waitUntil } from '../../helpers/wait.js';

const FLOW = 'seldon.io/gateway-flow';
const NAMES = ['refuse', 'prio', 'fair', 'leave', 'slow', 'early', 'budget', 'bad', 'plain'] as const;
type Name = (typeof NAMES)[number];
const ANNOTATIONS: Record<Name, string | undefined> = {
  refuse: 'concurrency: 1\nqueue: 1\nqueueTimeout: 30s',
  prio: 'concurrency: 1\nqueue: 2\nqueueTimeout: 30s',
  fair: '{"concurrency": 1, "queue": 20, "queueTimeout": "30s", "tenant": "header:x-tenant"}',
  leave: 'concurrency: 1\nqueue: 5\nqueueTimeout: 30s',
  slow: 'concurrency: 1\nqueue: 5\nqueueTimeout: 300ms',
  early: 'concurrency: 1\nqueue: 50\nqueueTimeout: 10s',
  budget: 'concurrency: 1\nqueue: 5\nqueueTimeout: 10s',
  bad: 'concurrency: 0\nqueue: 1',
  plain: undefined,
};

describe('flow control in front of a model of fixed concurrency', () => {
  const models = {} as Record<Name, LimitedModel>;
  let gw: TestGateway;
  let clients: GrpcClients;
  /**
   * The request path's clock: flow-control waits and route timeouts fire only as a test moves it. Moved only
   * by the REST tests after the gRPC deadline's (a call's deadline counts from its arrival, stamped on
   * performance.now()'s timeline: one arriving after a move would look older by it).
   */
  const clock = new AheadClock();

  beforeAll(async () => {
    // Each model finishes a request when its test says so; `early`'s takes 400 ms.
    for (const n of NAMES) models[n] = await startLimitedModel({ concurrency: 1, serviceMs: n === 'early' ? 400 : null });
    const manifests: Record<string, string> = {};
    const resolve: Record<string, number> = {};
    for (const n of NAMES) {
      const a = ANNOTATIONS[n];
      // `budget` has a route timeout of 600 ms.
      const annotations = { ...(a === undefined ? {} : { [FLOW]: a }), ...(n === 'budget' ? { 'seldon.io/rest-timeout': '600' } : {}) };
      manifests[`${n}.yaml`] = sdep(n, 'm', { predictors: [{ name: 'main' }] }, annotations);
      resolve[`${n}-main.m:8000`] = models[n].restPort;
      resolve[`${n}-main.m:5001`] = models[n].grpcPort;
    }
    gw = await startTestGateway({ manifests, resolve, clock });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });
  afterAll(async () => {
    clients?.seldon.close();
    await gw?.stop();
    for (const m of Object.values(models)) await m.close();
  });

  /** A REST prediction to deployment `n`, tagged `id` (and more headers). */
  const post = async (n: Name, id: string, headers: Record<string, string> = {}, signal?: AbortSignal) => {
    const r = await request(`${gw.url}/seldon/m/${n}/api/v1.0/predictions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-test-id': id, ...headers },
      body: '{"data":{"ndarray":[[1]]}}',
      ...(signal ? { signal } : {}),
    });
    return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
  };
  const queued = (n: Name): Promise<number> => metric(gw.adminUrl, `seldon_gateway_flow_queued{namespace="m",deployment="${n}",predictor="main"}`);
  const refused = (n: Name, priority: string): Promise<number> => metric(gw.adminUrl, `seldon_gateway_flow_refused_total{namespace="m",deployment="${n}",predictor="main",priority="${priority}"}`);
  const untilQueued = (n: Name, k: number): Promise<void> => waitUntil(async () => (await queued(n)) === k, 10_000);
  const inflight = (n: Name): Promise<number> => metric(gw.adminUrl, `seldon_gateway_flow_inflight{namespace="m",deployment="${n}",predictor="main"}`);

  it('refuses over the limit and the queue at once, REST byte for byte: 503, x-envoy-overloaded, Retry-After, the JSON body; nothing reaches the model', async () => {
    const model = models.refuse;
    const first = post('refuse', 'r1');
    await model.servedCount(1);
    const second = post('refuse', 'r2');
    await untilQueued('refuse', 1);

    // Byte for byte, over a raw socket (the Date header aside).
    const raw = await new Promise<string>((resolve, reject) => {
      const s = net.connect(gw.port, '127.0.0.1');
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      s.on('end', () => resolve(got));
      s.on('error', reject);
      s.write('POST /seldon/m/refuse/api/v1.0/predictions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\nx-test-id: r3\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}');
    });
    const body = '{"status":{"code":503,"info":"m/refuse/main is overloaded: the queue is full","reason":"OVERLOADED","status":"FAILURE"}}';
    expect(raw.replace(/\r\ndate: [^\r]*/i, '')).toBe(
      `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nx-envoy-overloaded: true\r\nretry-after: 1\r\nConnection: close\r\n\r\n${body}`,
    );
    expect(await refused('refuse', 'standard')).toBe(1);

    // gRPC: trailers-only UNAVAILABLE with the same words.
    const g = await predict(clients, { strData: 'x' }, md({ seldon: 'refuse', namespace: 'm', 'x-test-id': 'g3' }));
    expect(g.ok).toBe(false);
    if (!g.ok) {
      expect(g.error.code).toBe(grpc.status.UNAVAILABLE);
      expect(g.error.details).toBe('m/refuse/main is overloaded: the queue is full');
      expect(g.error.metadata.get('x-envoy-overloaded')).toEqual(['true']);
      expect(g.error.metadata.get('retry-after')).toEqual(['1']);
    }
    expect(model.arrived).toEqual(['r1']);
    // Each refusal is its request's answer in the request counts.
    expect(await metric(gw.adminUrl, 'seldon_gateway_requests_total{namespace="m",deployment="refuse",predictor="main",protocol="rest",kind="primary",code="503"}')).toBe(1);
    expect(await metric(gw.adminUrl, 'seldon_gateway_requests_total{namespace="m",deployment="refuse",predictor="main",protocol="grpc",kind="primary",code="14"}')).toBe(1);

    // The slot frees: the queued one goes, both answered by the model.
    model.finish();
    await model.servedCount(2);
    model.finish();
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    expect(model.arrived).toEqual(['r1', 'r2']);
    expect(model.peak).toBe(1);
  });

  it('serves critical first and sheds sheddable first: a critical arrival displaces a queued sheddable one, gRPC and REST together', async () => {
    const model = models.prio;
    const head = post('prio', 'p0');
    await model.servedCount(1);
    const s1 = post('prio', 's1', { 'x-seldon-priority': 'sheddable' });
    await untilQueued('prio', 1);
    const s2 = predict(clients, { strData: 's2' }, md({ seldon: 'prio', namespace: 'm', 'x-test-id': 's2', 'x-seldon-priority': 'sheddable' }));
    await untilQueued('prio', 2);
    const c1 = predict(clients, { strData: 'c1' }, md({ seldon: 'prio', namespace: 'm', 'x-test-id': 'c1', 'x-seldon-priority': 'critical' }));
    // The newest sheddable gives way.
    const shed = await s2;
    expect(shed.ok ? 'ok' : shed.error.code).toBe(grpc.status.UNAVAILABLE);
    if (!shed.ok) expect(shed.error.details).toBe('m/prio/main is overloaded: a request of higher priority took its place in the queue');
    const c2 = post('prio', 'c2', { 'x-seldon-priority': 'critical' });
    const shed2 = await s1;
    expect(shed2.status).toBe(503);
    expect(JSON.parse(shed2.text).status.reason).toBe('OVERLOADED');
    // A standard one now finds the queue full of critical requests: refused.
    expect((await post('prio', 'n1')).status).toBe(503);
    for (let served = 2; served <= 3; served++) {
      model.finish();
      await model.servedCount(served);
    }
    model.finish();
    expect((await head).status).toBe(200);
    expect((await c1).ok).toBe(true);
    expect((await c2).status).toBe(200);
    expect(model.arrived).toEqual(['p0', 'c1', 'c2']);
    expect(await refused('prio', 'sheddable')).toBe(2);
    expect(await refused('prio', 'standard')).toBe(1);
    expect(await refused('prio', 'critical')).toBe(0);
  });

  it('shares the model fairly between tenants: a light tenant is served between a heavy one’s requests', async () => {
    const model = models.fair;
    const all = [post('fair', 'a0', { 'x-tenant': 'A' })];
    await model.servedCount(1);
    for (let i = 1; i <= 5; i++) all.push(post('fair', `a${i}`, { 'x-tenant': 'A' }));
    await untilQueued('fair', 5);
    all.push(post('fair', 'b1', { 'x-tenant': 'B' }));
    all.push(post('fair', 'b2', { 'x-tenant': 'B' }));
    await untilQueued('fair', 7);
    for (let served = 2; served <= 8; served++) {
      model.finish();
      await model.servedCount(served);
    }
    model.finish();
    expect((await Promise.all(all)).map((r) => r.status)).toEqual(Array(8).fill(200));
    // A's queued requests were sent in order, but B's took every other turn.
    expect(model.served).toEqual(['a0', 'a1', 'b1', 'a2', 'b2', 'a3', 'a4', 'a5']);
  });

  it('frees the place of a client that leaves while queued: the model never receives its request (REST and gRPC)', async () => {
    const model = models.leave;
    const head = post('leave', 'h');
    await model.servedCount(1);
    const abort = new AbortController();
    const gone = post('leave', 'gone-rest', {}, abort.signal).catch((e: Error) => e);
    const call = clients.seldon.Predict({ strData: 'gone' }, md({ seldon: 'leave', namespace: 'm', 'x-test-id': 'gone-grpc' }), () => undefined);
    await untilQueued('leave', 2);
    abort.abort();
    call.cancel();
    await untilQueued('leave', 0);
    expect(await gone).toBeInstanceOf(Error);
    const after = post('leave', 'after');
    await untilQueued('leave', 1);
    model.finish();
    await model.servedCount(2);
    model.finish();
    expect((await head).status).toBe(200);
    expect((await after).status).toBe(200);
    expect(model.arrived).toEqual(['h', 'after']);
    expect(await refused('leave', 'standard')).toBe(0);
  });

  it('refuses at once a request that could not start within what is left of its timeout, from the observed service time (REST route timeout, gRPC deadline)', async () => {
    const model = models.early;
    // One answer teaches the service time (400 ms).
    expect((await post('early', 'e1')).status).toBe(200);
    const head = post('early', 'e2');
    await model.servedCount(2);
    // A gRPC call with 300 ms left: it would wait ~400 ms and be served in ~400 more. Refused at once
    // (its words say so: waiting, it would have met its deadline, DEADLINE_EXCEEDED).
    const g = await predict(clients, { strData: 'x' }, md({ seldon: 'early', namespace: 'm', 'x-test-id': 'g' }), { deadline: Date.now() + 300 });
    expect(g.ok ? 'ok' : [g.error.code, g.error.details]).toEqual([
      grpc.status.UNAVAILABLE,
      expect.stringMatching(/^m\/early\/main is overloaded: it could not be answered within the \d+ ms left of its timeout$/),
    ]);
    // REST within its 3 s route timeout: it waits its turn.
    const next = post('early', 'e3');
    expect((await head).status).toBe(200);
    expect((await next).status).toBe(200);
    expect(model.arrived).toEqual(['e1', 'e2', 'e3']);
  });

  it('counts the time a request waited for its slot against its route timeout', async () => {
    const model = models.budget;
    const head = post('budget', 'b1');
    await model.servedCount(1);
    const arrived = clock.now();
    const waiting = post('budget', 'b2');
    await untilQueued('budget', 1);
    // Whatever real time passed, b2 arrived by now: its route timeout ends it 600 ms after this at the latest.
    const queuedBy = clock.now();
    // The time b2 waits for its slot is the point here: 400 ms of its 600.
    clock.advance(400);
    model.finish();
    expect((await head).status).toBe(200);
    await model.servedCount(2);
    // The model never answers b2. A ms before 600 ms after it arrived it is still in flight (its slot held)...
    clock.advance(Math.max(0, arrived + 599 - clock.now()));
    expect(await inflight('budget')).toBe(1);
    // ...and 600 ms after it arrived, not 600 ms after it was sent (400 ms later), the route timeout ends it.
    clock.advance(Math.max(0, queuedBy + 600 - clock.now()));
    const late = await waiting;
    const elapsed = clock.now() - arrived;
    expect(late.status).toBe(504);
    expect(JSON.parse(late.text).status.reason).toBe('UPSTREAM_TIMEOUT');
    expect(elapsed).toBeGreaterThanOrEqual(590);
    expect(elapsed).toBeLessThan(950);
  });

  it('refuses a queued request at its queue timeout, with Retry-After, never sending it', async () => {
    const model = models.slow;
    const head = post('slow', 'h');
    await model.servedCount(1);
    const started = clock.now();
    const pending = post('slow', 'late');
    await untilQueued('slow', 1);
    // Whatever real time passed, it arrived by now: its 300 ms queue timeout falls due by 300 ms after this.
    const queuedBy = clock.now();
    // A ms before 300 ms after it could have arrived, it still waits (the timer fires only as the clock passes it)...
    clock.advance(Math.max(0, started + 299 - clock.now()));
    expect(await queued('slow')).toBe(1);
    // ...and at its queue timeout it is refused.
    clock.advance(Math.max(0, queuedBy + 300 - clock.now()));
    const late = await pending;
    const waited = Number(/it waited (\d+) ms/.exec(JSON.parse(late.text).status.info)?.[1]);
    expect(late.status).toBe(503);
    expect(late.headers['retry-after']).toBe('1');
    expect(late.headers['x-envoy-overloaded']).toBe('true');
    expect(JSON.parse(late.text).status.info).toMatch(/^m\/slow\/main is overloaded: it waited \d+ ms without a free slot \(queueTimeout 300 ms\)$/);
    expect(waited).toBeGreaterThanOrEqual(290);
    expect(clock.now() - started).toBeGreaterThanOrEqual(300);
    model.finish();
    expect((await head).status).toBe(200);
    expect(model.arrived).toEqual(['h']);
  });

  it('degrades a deployment with a malformed annotation alone: served without limits, the reason in /routes', async () => {
    const routes = (await (await request(`${gw.adminUrl}/routes`)).body.json()) as { deployments: { name: string; state: string; reasons: string[] }[] };
    const bad = routes.deployments.find((d) => d.name === 'bad')!;
    expect(bad.state).toBe('degraded');
    expect(bad.reasons).toEqual([expect.stringMatching(/^seldon.io\/gateway-flow: concurrency must be an integer from 1 .*: served without flow control$/)]);
    for (const n of NAMES.filter((x) => x !== 'bad' && x !== 'plain')) expect(routes.deployments.find((d) => d.name === n)!.state).toBe('accepted');
    for (const n of ['bad', 'plain'] as const) {
      const model = models[n];
      const all = [1, 2, 3].map((i) => post(n, `${n}${i}`));
      // No limit: all three reach the model (two wait inside it, as they would without the gateway).
      await waitUntil(async () => model.arrived.length === 3, 10_000);
      for (let served = 1; served <= 3; served++) {
        await model.servedCount(served);
        model.finish();
      }
      expect((await Promise.all(all)).map((r) => r.status)).toEqual([200, 200, 200]);
    }
    // Neither has flow series: only predictors under flow control do.
    const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    expect(text).not.toMatch(/seldon_gateway_flow_\w+\{[^}]*deployment="(bad|plain)"/);
    expect(text).toContain('seldon_gateway_flow_refused_total{namespace="m",deployment="fair",predictor="main",priority="critical"} 0');
    expect(text).toContain('seldon_gateway_flow_limit{namespace="m",deployment="refuse",predictor="main"} 1');
  });

  it("shows each protected predictor's limit, in flight, queue and refusals on the admin page", async () => {
    const diag = (await (await request(`${gw.adminUrl}/diagnostics`)).body.json()) as { deployments: { name: string; flow?: unknown[] }[] };
    const of = (n: string) => diag.deployments.find((d) => d.name === n)!;
    expect(of('refuse').flow).toEqual([
      { predictor: 'main', limit: 1, inflight: 0, queued: 0, refused: [0, 2, 0], settings: { concurrency: 1, queue: 1, queueTimeoutMs: 30_000, tenantHeader: null, scaleFromZeroMs: 0 } },
    ]);
    expect(of('plain').flow).toBeUndefined();
    expect(of('bad').flow).toBeUndefined();
    const html = await (await request(`${gw.adminUrl}/?deployment=m%2Ffair`)).body.text();
    expect(html).toContain('<table class="flow">');
    expect(html).toMatch(/<tr class="flow-predictor" data-predictor="main">\s*<td class="predictor">main<\/td>\s*<td class="limit num">1<\/td>/);
    expect(html).toContain('1 per endpoint, queue 20, queueTimeout 30 s, tenant x-tenant');
  });
});
