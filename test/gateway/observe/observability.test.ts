/**
 * Observability end to end (one process): metric values after known traffic, the predictor
 * header, shadow comparison against a shadow that answers differently, /routes for rejected and
 * skipped deployments (the `routes --json` shape), the diagnostics data, and logs free of secrets
 * with the access log on.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DiagnosticsJson } from '../../../gateway/admin/page-model.js';
import { encodeSeldonMessage, grpcClients, grpcFrame, startGrpcBackend, type GrpcBackend } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend, type HttpHandler } from '../../fixtures/http-backend.js';
import { answeredBy, md, predict as grpcPredict, startRawUpstream, type RawUpstream } from '../../helpers/grpc.js';
import { startCli } from '../../helpers/cli.js';
import { sdep } from '../../helpers/gateway.js';
import { expositionProblems, getJson, getText, metricSum, parseMetrics, post, predict, scrape, startObservedGateway, type ObservedGateway } from '../../helpers/observability.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

/** A shadow that answers like the primary unless `x-variant` asks otherwise. */
const variantShadow: HttpHandler = (req, res) => {
  const v = req.headers['x-variant'];
  if (v === 'status') {
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end('{"status":{"code":500,"info":"shadow broke","status":"FAILURE"}}');
    return;
  }
  const x = v === 'close' ? 1.0000000001 : v === 'far' ? 1.5 : 1;
  const extra = v === 'long' ? { pad: 'p'.repeat(3000) } : v === 'huge' ? { pad: 'q'.repeat(10_000) } : {};
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ data: { ndarray: [[x]] }, meta: { tags: { backend: 'shadow', differs: true } }, ...extra }));
};

describe('metrics after known traffic', () => {
  let main: HttpBackend;
  let canary: HttpBackend;
  let shadow: HttpBackend;
  let flaky: HttpBackend;
  let gw: ObservedGateway;
  beforeAll(async () => {
    main = await startHttpBackend({ name: 'main' });
    canary = await startHttpBackend({ name: 'canary' });
    shadow = await startHttpBackend({ name: 'shadow', handler: variantShadow });
    flaky = await startHttpBackend({
      name: 'flaky',
      handler: (_req, res) => {
        res.writeHead(503, { 'content-type': 'application/json', 'x-seldon-predictor': 'forged' });
        res.end('{"status":{"code":503,"info":"busy","status":"FAILURE"}}');
      },
    });
    gw = await startObservedGateway({
      manifests: {
        'split.yaml': sdep('split', 'm', {
          predictors: [
            { name: 'main', traffic: 75 },
            { name: 'canary', traffic: 25 },
          ],
        }),
        'churn.yaml': sdep('churn', 'm', { predictors: [{ name: 'main' }, { name: 'shadow', shadow: true }] }),
        'dead.yaml': sdep('dead', 'm', { predictors: [{ name: 'main' }, { name: 'shadow', shadow: true }] }),
        'slow.yaml': sdep('slow', 'm', { annotations: { 'seldon.io/rest-timeout': '200' }, predictors: [{ name: 'main' }] }),
        'tight.yaml': sdep('tight', 'm', {
          annotations: { 'seldon.io/ambassador-circuit-breakers-max-connections': '1', 'seldon.io/ambassador-circuit-breakers-max-pending-requests': '1' },
          predictors: [{ name: 'main' }],
        }),
        'flaky.yaml': sdep('flaky', 'm', { annotations: { 'seldon.io/ambassador-retries': '2' }, predictors: [{ name: 'main' }] }),
        'bad.yaml': sdep('bad', 'm', { annotations: { 'seldon.io/ambassador-header': 'a:b:c' }, predictors: [{ name: 'main' }] }),
        'meh.yaml': sdep('meh', 'm', { annotations: { 'seldon.io/ambassador-retries': 'lots' }, predictors: [{ name: 'main' }] }),
        'blue.yaml': sdep('bluemodel', 'm', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-id': 'blue' }),
      },
      resolve: {
        'split-main.m:8000': main.port,
        'split-canary.m:8000': canary.port,
        'churn-main.m:8000': main.port,
        'churn-shadow.m:8000': shadow.port,
        'dead-main.m:8000': main.port,
        'dead-shadow.m:8000': 1,
        'slow-main.m:8000': main.port,
        'tight-main.m:8000': main.port,
        'flaky-main.m:8000': flaky.port,
        'meh-main.m:8000': main.port,
      },
      args: ['--predictor-header', '--shadow-compare', '--shadow-compare-max-body', '8KiB', '--shadow-max-body', '1KiB', '--random-seed', '7'],
    });
  });
  afterAll(async () => {
    await gw.stop();
    await Promise.all([main.close(), canary.close(), shadow.close(), flaky.close()]);
  });

  it('counts primary requests by predictor and status code exactly as the client saw them', async () => {
    const seen: Record<string, number> = {};
    const tally = (predictor: string, code: number): void => {
      seen[`${predictor} ${code}`] = (seen[`${predictor} ${code}`] ?? 0) + 1;
    };
    for (let i = 0; i < 200; i++) {
      const r = await post(`${gw.url}/seldon/m/split${predict}`);
      expect(r.status).toBe(200);
      // The header names the predictor that answered (the fixture says which backend it is).
      expect(r.headers['x-seldon-predictor']).toBe(r.headers['x-backend']);
      tally(String(r.headers['x-seldon-predictor']), r.status);
    }
    for (let i = 0; i < 30; i++) {
      const r = await post(`${gw.url}/seldon/m/split/x?status=404`);
      expect(r.status).toBe(404);
      tally(String(r.headers['x-seldon-predictor']), r.status);
    }
    expect(Object.keys(seen).sort()).toEqual(['canary 200', 'canary 404', 'main 200', 'main 404']);
    const m = await scrape(gw.adminUrl);
    for (const [key, n] of Object.entries(seen)) {
      const [predictor, code] = key.split(' ');
      expect(metricSum(m, 'seldon_gateway_requests_total', { namespace: 'm', deployment: 'split', predictor: predictor!, protocol: 'rest', kind: 'primary', code: code! })).toBe(n);
    }
    expect(metricSum(m, 'seldon_gateway_upstream_latency_seconds_count', { deployment: 'split', kind: 'primary' })).toBe(230);
    // Buckets resolve 1 ms to 30 s.
    const les = m.filter((s) => s.name === 'seldon_gateway_upstream_latency_seconds_bucket' && s.labels.predictor === 'main' && s.labels.deployment === 'split').map((s) => s.labels.le);
    expect(les).toContain('0.001');
    expect(les).toContain('30');
    // Bounded labels: no paths, no request ids, in any sample.
    for (const s of m) {
      for (const v of Object.values(s.labels)) expect(v).not.toMatch(/\/|[0-9a-f]{8}-[0-9a-f]{4}-/);
    }
  });

  it('the gateway sets x-seldon-predictor itself, replacing what an upstream sent', async () => {
    const r = await post(`${gw.url}/seldon/m/flaky${predict}`);
    expect(r.status).toBe(503);
    expect(r.headers['x-seldon-predictor']).toBe('main');
  });

  it('counts retries, breaker rejections, timeouts and unrouted requests', async () => {
    // flaky: always 503, ambassador-retries 2 → 2 retries per request.
    for (let i = 0; i < 3; i++) expect((await post(`${gw.url}/seldon/m/flaky${predict}`)).status).toBe(503);
    // slow: rest-timeout 200 ms, the backend sleeps 1 s → 504.
    const slow = await Promise.all(Array.from({ length: 4 }, () => post(`${gw.url}/seldon/m/slow/sleep/1000`)));
    expect(slow.map((r) => r.status)).toEqual([504, 504, 504, 504]);
    // tight: one connection, one pending → most of 10 concurrent requests overflow.
    const tight = await Promise.all(Array.from({ length: 10 }, () => post(`${gw.url}/seldon/m/tight/sleep/300`)));
    const overflowed = tight.filter((r) => r.status === 503 && r.headers['x-envoy-overloaded'] === 'true').length;
    expect(overflowed).toBeGreaterThanOrEqual(5);
    for (let i = 0; i < 2; i++) expect((await post(`${gw.url}/seldon/m/nope${predict}`)).status).toBe(404);

    const m = await scrape(gw.adminUrl);
    // 4 flaky requests so far (one in the test before): 2 retries each.
    expect(metricSum(m, 'seldon_gateway_retries_total', { deployment: 'flaky', protocol: 'rest' })).toBe(8);
    expect(metricSum(m, 'seldon_gateway_requests_total', { deployment: 'flaky', code: '503' })).toBe(4);
    expect(metricSum(m, 'seldon_gateway_timeouts_total', { deployment: 'slow', protocol: 'rest' })).toBe(4);
    expect(metricSum(m, 'seldon_gateway_requests_total', { deployment: 'slow', code: '504' })).toBe(4);
    expect(metricSum(m, 'seldon_gateway_breaker_rejections_total', { deployment: 'tight', protocol: 'rest' })).toBe(overflowed);
    expect(metricSum(m, 'seldon_gateway_requests_total', { deployment: 'tight', code: '503' })).toBe(overflowed);
    expect(metricSum(m, 'seldon_gateway_requests_total', { deployment: 'tight', code: '200' })).toBe(10 - overflowed);
    expect(metricSum(m, 'seldon_gateway_unrouted_requests_total', { protocol: 'rest', reason: 'NO_ROUTE' })).toBe(2);
  });

  it('counts shadow outcomes: mirrored, failed, dropped for body size', async () => {
    for (let i = 0; i < 6; i++) expect((await post(`${gw.url}/seldon/m/churn${predict}`)).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await post(`${gw.url}/seldon/m/dead${predict}`)).status).toBe(200);
    expect((await post(`${gw.url}/seldon/m/churn${predict}`, {}, Buffer.alloc(2048, 32))).status).toBe(200);
    await expect
      .poll(async () => {
        const m = await scrape(gw.adminUrl);
        return [
          metricSum(m, 'seldon_gateway_shadow_requests_total', { deployment: 'churn', predictor: 'shadow', result: 'mirrored' }),
          metricSum(m, 'seldon_gateway_shadow_requests_total', { deployment: 'dead', predictor: 'shadow', result: 'failed' }),
          metricSum(m, 'seldon_gateway_shadow_requests_total', { deployment: 'churn', predictor: 'shadow', result: 'dropped_body_size' }),
          metricSum(m, 'seldon_gateway_requests_total', { deployment: 'churn', predictor: 'shadow', kind: 'shadow', code: '200' }),
          metricSum(m, 'seldon_gateway_upstream_latency_seconds_count', { deployment: 'churn', predictor: 'shadow', kind: 'shadow' }),
        ];
      })
      .toEqual([6, 3, 1, 6, 6]);
  });

  it('compares shadow answers with the primary: agreements, disagreements, skipped pairs, kept disagreements', async () => {
    const before = await scrape(gw.adminUrl);
    const count = (m: typeof before, result: string) => metricSum(m, 'seldon_gateway_shadow_comparisons_total', { deployment: 'churn', predictor: 'shadow', protocol: 'rest', result });
    const send = (variant: string, path = predict) => post(`${gw.url}/seldon/m/churn${path}`, { 'x-variant': variant });
    // Agree: same data (meta differs and is ignored), and numbers within the tolerance.
    for (let i = 0; i < 4; i++) await send('same');
    for (let i = 0; i < 2; i++) await send('close');
    // Disagree: a number, the status, an extra field (a long body, shown truncated).
    for (let i = 0; i < 3; i++) await send('far');
    await send('status');
    await send('long');
    // The primary answers after the shadow (it sleeps): still compared, once it has answered.
    const late = await send('far', '/sleep/300');
    expect(late.status).toBe(200);
    // A shadow answer over --shadow-compare-max-body (8 KiB): skipped.
    await send('huge');
    await expect
      .poll(async () => {
        const m = await scrape(gw.adminUrl);
        return { agree: count(m, 'agree') - count(before, 'agree'), disagree: count(m, 'disagree') - count(before, 'disagree'), skipped: count(m, 'skipped') - count(before, 'skipped') };
      })
      .toEqual({ agree: 6, disagree: 6, skipped: 1 });

    const d = await getJson<DiagnosticsJson>(`${gw.adminUrl}/diagnostics`);
    const why = d.disagreements.map((x) => x.why);
    expect(why[0]).toBe('$.data.ndarray[0][0]: 1 ≠ 1.5'); // newest first: the late one
    expect(why).toContain('status 200 ≠ 500');
    expect(why).toContain('$.pad: missing in the primary answer');
    const long = d.disagreements.find((x) => x.why.startsWith('$.pad'))!;
    expect(long).toMatchObject({ namespace: 'm', deployment: 'churn', protocol: 'rest', primary: { predictor: 'main', status: 200 }, shadow: { predictor: 'shadow', status: 200 } });
    expect(long.shadow.body.length).toBeLessThan(2200);
    expect(long.shadow.body).toMatch(/… \(\d+ bytes\)$/);
    expect(JSON.parse(long.primary.body)).toEqual({ data: { ndarray: [[1]] }, meta: { tags: { backend: 'main' } } });
    const churn = d.deployments.find((x) => x.name === 'churn')!.routes.find((r) => r.kind === 'rest')!;
    // Over the window: the 6 plain mirrors of the test before agreed too.
    expect(churn.mirrors[0]).toMatchObject({ predictor: 'shadow', mirrored: 19, comparisons: { agree: 12, disagree: 6, skipped: 1 }, agreement: 66.7 });
  });

  it('diagnostics: configured weight beside the observed split, from the counters', async () => {
    const m = await scrape(gw.adminUrl);
    const d = await getJson<DiagnosticsJson>(`${gw.adminUrl}/diagnostics`);
    const split = d.deployments.find((x) => x.name === 'split')!;
    const rest = split.routes.find((r) => r.kind === 'rest')!;
    const main = rest.members.find((x) => x.predictor === 'main')!;
    const canary = rest.members.find((x) => x.predictor === 'canary')!;
    const mainCount = metricSum(m, 'seldon_gateway_requests_total', { deployment: 'split', predictor: 'main', kind: 'primary' });
    expect(main.percent).toBe(75);
    expect(canary.percent).toBe(25);
    expect(main.observed.total).toBe(mainCount);
    expect(main.observed.total + canary.observed.total).toBe(230);
    expect(rest.observedTotal).toBe(230);
    expect(main.observedPercent).toBe(Math.round((mainCount / 230) * 1000) / 10);
    expect(main.observed.codes['404']! + canary.observed.codes['404']!).toBe(30);
    expect(d.window.seconds).toBeGreaterThanOrEqual(0);
    expect(d.settings).toEqual({ predictorHeader: true, shadowCompare: true, accessLogSample: 0, workers: 1 });
    expect(d.counts).toEqual({ accepted: 6, degraded: 1, rejected: 1, skipped: 1 });
  });

  it('/routes: the `routes --json` shape, with rejected, degraded and skipped deployments and why', async () => {
    const routes = await getJson<{
      generation: number;
      appliedAt: string;
      ambassadorId: string;
      deployments: { name: string; state: string; reasons: string[]; routes: unknown[] }[];
      sourceProblems: Record<string, string>;
    }>(`${gw.adminUrl}/routes`);
    const bad = routes.deployments.find((x) => x.name === 'bad')!;
    expect(bad.state).toBe('rejected');
    expect(bad.reasons.join(' ')).toContain('a:b:c');
    expect(bad.routes).toEqual([]);
    const meh = routes.deployments.find((x) => x.name === 'meh')!;
    expect(meh.state).toBe('degraded');
    expect(meh.reasons.join(' ')).toContain('seldon.io/ambassador-retries');
    expect(meh.routes.length).toBeGreaterThan(0);
    const blue = routes.deployments.find((x) => x.name === 'bluemodel')!;
    expect(blue.state).toBe('skipped');
    expect(blue.reasons.join(' ')).toMatch(/ambassador-id.*"blue"|"blue".*ambassador-id/);
    expect(routes.ambassadorId).toBe('default');
    expect(routes.sourceProblems).toEqual({});
    expect(Date.parse(routes.appliedAt)).toBeGreaterThan(0);

    // The same shape as `seldon-gateway routes -f <dir> --json`, deployment for deployment.
    const cli = spawnSync(process.execPath, [join(root, 'dist/gateway/main.js'), 'routes', '-f', gw.dir, '--json'], { encoding: 'utf8', timeout: 20_000 });
    expect(cli.status).toBe(1); // one rejected
    const offline = JSON.parse(cli.stdout) as typeof routes;
    expect(routes.deployments).toEqual(offline.deployments);
    expect(Object.keys(routes).sort()).toEqual(Object.keys(offline).sort());
  });

  it('reports configuration: generation, last applied, deployments by state, source connected', async () => {
    const m = await scrape(gw.adminUrl);
    expect(metricSum(m, 'seldon_gateway_config_generation')).toBe(gw.state.current.generation);
    expect(metricSum(m, 'seldon_gateway_last_applied_timestamp_seconds')).toBeCloseTo(gw.state.lastAppliedAt.getTime() / 1000, 0);
    for (const [state, n] of Object.entries({ accepted: 6, degraded: 1, rejected: 1, skipped: 1 })) {
      expect(metricSum(m, 'seldon_gateway_deployments', { state })).toBe(n);
    }
    expect(metricSum(m, 'seldon_gateway_source_connected', { source: 'manifests' })).toBe(1);
    expect(m.some((s) => s.name === 'process_cpu_user_seconds_total')).toBe(true);
    // One set of event-loop series: the gateway's histogram, not prom-client's gauges beside it.
    expect(m.some((s) => s.name === 'seldon_gateway_event_loop_delay_seconds_count')).toBe(true);
    expect(m.filter((s) => s.name.startsWith('nodejs_eventloop_lag')).map((s) => s.name)).toEqual([]);
    expect(m.some((s) => s.name === 'nodejs_heap_size_used_bytes')).toBe(true);
    expect(expositionProblems(await getText(`${gw.adminUrl}/metrics`))).toEqual([]);
  });

  it('serves the diagnostics page and its data on the admin port only', async () => {
    const page = await request(`${gw.adminUrl}/`);
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(await page.body.text()).toContain('data-deployment="m/split"');
    for (const p of ['/', '/diagnostics']) {
      const r = await request(`${gw.url}${p}`);
      expect(r.statusCode).toBe(404);
      expect(await r.body.text()).not.toContain('seldon-gateway diagnostics');
    }
  });
});

describe('gRPC with --predictor-header', () => {
  let main: GrpcBackend;
  let canary: GrpcBackend;
  let forger: RawUpstream;
  let gw: ObservedGateway;
  beforeAll(async () => {
    main = await startGrpcBackend({ name: 'main' });
    canary = await startGrpcBackend({ name: 'canary' });
    forger = await startRawUpstream((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-seldon-predictor': 'forged' }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(grpcFrame(encodeSeldonMessage({ strData: 'x' })));
    });
    gw = await startObservedGateway({
      manifests: {
        'split.yaml': sdep('split', 'm', {
          predictors: [
            { name: 'main', traffic: 75 },
            { name: 'canary', traffic: 25 },
          ],
        }),
        'forge.yaml': sdep('forge', 'm', { predictors: [{ name: 'main' }] }),
      },
      resolve: { 'split-main.m:5001': main.port, 'split-canary.m:5001': canary.port, 'forge-main.m:5001': forger.port },
      args: ['--predictor-header', '--random-seed', '3'],
    });
  });
  afterAll(async () => {
    await gw.stop();
    await Promise.all([main.close(), canary.close(), forger.close()]);
  });

  it('answers name their predictor in the initial metadata, counted by predictor and gRPC status', async () => {
    const clients = grpcClients(`127.0.0.1:${gw.port}`);
    try {
      const seen: Record<string, number> = {};
      for (let i = 0; i < 40; i++) {
        const o = await grpcPredict(clients, { strData: 'x' }, md({ seldon: 'split', namespace: 'm' }));
        expect(o.ok).toBe(true);
        const named = o.ok ? o.result.headers.get('x-seldon-predictor') : [];
        expect(named).toEqual([answeredBy(o)]);
        seen[String(named[0])] = (seen[String(named[0])] ?? 0) + 1;
      }
      expect(Object.keys(seen).sort()).toEqual(['canary', 'main']);
      const forged = await grpcPredict(clients, {}, md({ seldon: 'forge', namespace: 'm' }));
      expect(forged.ok && forged.result.headers.get('x-seldon-predictor')).toEqual(['main']);
      const m = await scrape(gw.adminUrl);
      for (const [predictor, n] of Object.entries(seen)) {
        expect(metricSum(m, 'seldon_gateway_requests_total', { deployment: 'split', predictor, protocol: 'grpc', kind: 'primary', code: '0' })).toBe(n);
      }
      const d = await getJson<DiagnosticsJson>(`${gw.adminUrl}/diagnostics`);
      const route = d.deployments.find((x) => x.name === 'split')!.routes.find((r) => r.kind === 'grpc')!;
      expect(Object.fromEntries(route.members.map((x) => [x.predictor, x.observed.total]))).toEqual(seen);
    } finally {
      clients.close();
    }
  });
});

describe('predictor header off (the default)', () => {
  it('adds nothing and leaves upstream headers alone', async () => {
    const b = await startHttpBackend({ name: 'b' });
    const gw = await startObservedGateway({ manifests: { 'a.yaml': sdep('a', 'm', { predictors: [{ name: 'main' }] }) }, resolve: { 'a-main.m:8000': b.port } });
    try {
      const r = await post(`${gw.url}/seldon/m/a${predict}`);
      expect(r.status).toBe(200);
      expect(r.headers['x-seldon-predictor']).toBeUndefined();
      const d = await getJson<DiagnosticsJson>(`${gw.adminUrl}/diagnostics`);
      expect(d.settings).toEqual({ predictorHeader: false, shadowCompare: false, accessLogSample: 0, workers: 1 });
      expect(d.deployments[0]!.routes.find((r) => r.kind === 'rest')!.members[0]!.observed.total).toBe(1);
    } finally {
      await gw.stop();
      await b.close();
    }
  });
});

describe('logs', () => {
  const SECRETS = ['SECRET-BEARER-TOKEN-1f2e', 'SECRET-QUERY-TOKEN-3c4d', 'SECRET-OAUTH-5a6b', 'SECRET-COOKIE-7e8f', 'SECRET-APIKEY-9a0b', 'SECRET-BASIC-dXNlcjpw'];
  let b: HttpBackend;
  let gw: ObservedGateway;
  beforeAll(async () => {
    b = await startHttpBackend({ name: 'b' });
    gw = await startObservedGateway({
      manifests: {
        'a.yaml': sdep('a', 'm', { predictors: [{ name: 'main' }, { name: 'shadow', shadow: true }] }),
        'o.yaml': sdep('o', 'm', { oauth_key: 'key-o', oauth_secret: SECRETS[2], predictors: [{ name: 'main' }] }),
      },
      resolve: { 'a-main.m:8000': b.port, 'a-shadow.m:8000': b.port, 'o-main.m:8000': b.port },
      args: ['--shadow-compare', '--predictor-header'],
      logs: true,
    });
  });
  afterAll(async () => {
    await gw.stop();
    await b.close();
  });

  it('an access line per request: request id, deployment, predictor, upstream, status, duration; no secret anywhere', async () => {
    const r = await post(`${gw.url}/seldon/m/a${predict}?access_token=${SECRETS[1]}&x=1`, {
      authorization: `Bearer ${SECRETS[0]}`,
      cookie: `session=${SECRETS[3]}`,
      'x-api-key': SECRETS[4]!,
      'x-request-id': 'req-observed-1',
    });
    expect(r.status).toBe(200);
    await post(`${gw.url}/seldon/m/o${predict}`, { authorization: `Basic ${SECRETS[5]}` });
    await post(`${gw.url}/seldon/m/a/x?status=500`, { authorization: `Bearer ${SECRETS[0]}` });
    // A config change and a rejected deployment while the access log runs.
    await gw.write('bad.yaml', sdep('bad', 'm', { annotations: { 'seldon.io/ambassador-header': 'a:b:c' }, oauth_secret: SECRETS[2], predictors: [{ name: 'main' }] }));
    await expect.poll(() => gw.logs!.lines().filter((l) => l.msg === 'access').length).toBe(3);

    const lines = gw.logs!.lines();
    const access = lines.filter((l) => l.msg === 'access');
    expect(access[0]).toMatchObject({
      request_id: 'req-observed-1',
      protocol: 'HTTP/1.1',
      method: 'POST',
      path: `/seldon/m/a${predict}`,
      namespace: 'm',
      deployment: 'a',
      predictor: 'main',
      upstream_cluster: 'a-main.m:8000',
      upstream_host: `127.0.0.1:${b.port}`,
      response_code: 200,
      shadows: 1,
    });
    expect(access[0]!.duration).toEqual(expect.any(Number));
    expect(access[0]!.upstream_service_time).toEqual(expect.any(Number));
    // A request without an id gets the one the gateway made (and sent upstream).
    expect(access[1]!.request_id).toBe(b.requests.find((x) => x.url === predict && x.headers.authorization?.startsWith('Basic'))!.headers['x-request-id']);
    expect(access[2]).toMatchObject({ deployment: 'a', response_code: 500, path: '/seldon/m/a/x' });

    const changed = lines.filter((l) => l.msg === 'route table updated');
    expect(changed.at(-1)).toMatchObject({ generation: gw.state.current.generation, upserted: ['m/bad'] });
    expect(lines.find((l) => l.msg === 'SeldonDeployment rejected')).toMatchObject({ deployment: 'm/bad', state: 'rejected' });
    expect(lines.find((l) => l.msg === 'source connected')).toMatchObject({ source: 'manifests', connected: true });

    for (const s of SECRETS) expect(gw.logs!.text).not.toContain(s);
    expect(gw.logs!.text.toLowerCase()).not.toContain('authorization');
    expect(gw.logs!.text.toLowerCase()).not.toContain('bearer');
  });
});

describe('several workers (the CLI)', () => {
  let main: HttpBackend;
  let canary: HttpBackend;
  let shadow: HttpBackend;
  beforeAll(async () => {
    main = await startHttpBackend({ name: 'main' });
    canary = await startHttpBackend({ name: 'canary' });
    shadow = await startHttpBackend({ name: 'shadow', handler: variantShadow });
  });
  afterAll(async () => {
    await Promise.all([main.close(), canary.close(), shadow.close()]);
  });

  it('the primary sums every worker: /metrics is one well-formed exposition, the observed split and disagreements cover all workers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sgw-obs-cluster-'));
    writeFileSync(
      join(dir, 'a.yaml'),
      sdep('a', 'm', {
        predictors: [
          { name: 'main', traffic: 75 },
          { name: 'canary', traffic: 25 },
          { name: 'shadow', shadow: true },
        ],
      }),
    );
    const gw = await startCli([
      '--manifests',
      dir,
      '--workers',
      '2',
      '--predictor-header',
      '--shadow-compare',
      '--log-level',
      'warn',
      '--resolve',
      `a-main.m:8000=127.0.0.1:${main.port}`,
      '--resolve',
      `a-canary.m:8000=127.0.0.1:${canary.port}`,
      '--resolve',
      `a-shadow.m:8000=127.0.0.1:${shadow.port}`,
    ]);
    const { port, admin } = gw;
    try {
      const adminUrl = `http://127.0.0.1:${admin}`;
      await expect.poll(async () => (await request(`${adminUrl}/readyz`).catch(() => undefined))?.statusCode, { timeout: 15_000, interval: 100 }).toBe(200);
      // Many connections: the cluster hands them to the workers round-robin, so both take traffic.
      const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 16 });
      const seen: Record<string, number> = {};
      let sent = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (sent < 400) {
            const variant = sent % 10 === 0 ? 'far' : 'same';
            sent++;
            const r = await pool.request({ path: `/seldon/m/a${predict}`, method: 'POST', headers: { 'content-type': 'application/json', 'x-variant': variant }, body: '{}' });
            await r.body.text();
            const who = String(r.headers['x-seldon-predictor']);
            seen[who] = (seen[who] ?? 0) + 1;
          }
        }),
      );
      await pool.close();
      expect(seen.main! + seen.canary!).toBe(400);

      await expect
        .poll(async () => {
          const d = await getJson<DiagnosticsJson>(`${adminUrl}/diagnostics`);
          const rest = d.deployments[0]!.routes.find((r) => r.kind === 'rest')!;
          return {
            main: rest.members.find((x) => x.predictor === 'main')!.observed.total,
            canary: rest.members.find((x) => x.predictor === 'canary')!.observed.total,
            mirrored: rest.mirrors[0]!.mirrored,
            disagree: rest.mirrors[0]!.comparisons.disagree,
            agree: rest.mirrors[0]!.comparisons.agree,
            kept: d.disagreements.length,
            workers: d.settings.workers,
          };
        })
        .toEqual({ main: seen.main, canary: seen.canary, mirrored: 400, disagree: 40, agree: 360, kept: 20, workers: 2 });

      const text = await getText(`${adminUrl}/metrics`);
      expect(expositionProblems(text)).toEqual([]);
      const m = parseMetrics(text);
      expect(metricSum(m, 'seldon_gateway_requests_total', { deployment: 'a', predictor: 'main', kind: 'primary', code: '200' })).toBe(seen.main);
      expect(metricSum(m, 'seldon_gateway_requests_total', { deployment: 'a', predictor: 'canary', kind: 'primary', code: '200' })).toBe(seen.canary);
      expect(metricSum(m, 'seldon_gateway_config_generation')).toBeGreaterThanOrEqual(1);
      expect(metricSum(m, 'seldon_gateway_deployments', { state: 'accepted' })).toBe(1);
      expect(metricSum(m, 'seldon_gateway_source_connected', { source: 'manifests' })).toBe(1);
      // Each worker's upstream pool and process metrics are summed (three processes' worth of heap).
      expect(m.filter((s) => s.name === 'nodejs_heap_size_used_bytes')).toHaveLength(1);
    } finally {
      await gw.stop();
    }
  }, 60_000);
});
