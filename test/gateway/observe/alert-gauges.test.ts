/**
 * The two gauges the alert rules compare traffic with, read from a real gateway's admin /metrics:
 * `seldon_gateway_route_weight` (each predictor's percent of its deployment's traffic in a weighted
 * split as the pick uses it now: the configured one, following edits and deletions, or a rollout's
 * step and a bandit's shares, the numbers /routes and the admin page show, once per gateway however
 * many workers it has) and `seldon_gateway_upstream_ready_endpoints` (the ready endpoints of each
 * routed predictor's Service, following its EndpointSlices on a fake Kubernetes API).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { startGateway, type Gateway } from '../../../gateway/process/serve.js';
import { type HttpBackend } from '../../fixtures/http-backend.js';
import { banditModel } from '../../helpers/bandit.js';
import { endpointSlice, seldonDeployment, startFakeKubeApi, tempDir, until, writeKubeconfig, type FakeKubeApi } from '../../fixtures/fake-kube-api.js';
import { poll, startCli, type CliGateway } from '../../helpers/cli.js';
import { sdep } from '../../helpers/gateway.js';
import { getJson, getText, post, predict, scrape, startObservedGateway, type ObservedGateway, type PromSample } from '../../helpers/observability.js';

const only = (samples: PromSample[], name: string): { labels: Record<string, string>; value: number }[] =>
  samples
    .filter((s) => s.name === name)
    .map((s) => ({ labels: { ...s.labels }, value: s.value }))
    .sort((a, b) => JSON.stringify(a.labels).localeCompare(JSON.stringify(b.labels)));

describe('seldon_gateway_route_weight', () => {
  let gw: ObservedGateway | undefined;
  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
  });

  it("is each predictor's percent in a split of two or more, per protocol; follows edits and deletions; a deployment alone in its share of a group has none", async () => {
    gw = await startObservedGateway({
      manifests: {
        'split.yaml': sdep('split', 'm', {
          predictors: [
            { name: 'main', traffic: 75 },
            { name: 'canary', traffic: 25 },
            { name: 'dark', shadow: true },
          ],
        }),
        'solo.yaml': sdep('solo', 'm', { predictors: [{ name: 'main' }] }),
        // The legacy pattern: two deployments behind one name, 80/20. Each gets all of its own
        // traffic (the alert divides by deployment), so neither has a weight to drift from.
        'legacy.yaml': sdep('legacy', 'm', { predictors: [{ name: 'main' }] }),
        'legacy-v2.yaml': sdep('legacy-v2', 'm', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-service-name': 'legacy', 'seldon.io/ambassador-weight': '20' }),
      },
    });
    const legacy = await getJson<{ deployments: { name: string; routes: { members: RouteMember[] }[] }[] }>(`${gw.adminUrl}/routes`);
    expect(
      legacy.deployments
        .find((d) => d.name === 'legacy-v2')!
        .routes[0]!.members.map((m) => `${m.deployment} ${m.percent}`)
        .sort(),
    ).toEqual(['legacy 80', 'legacy-v2 20']);
    const weight = (deployment: string, predictor: string, protocol: string, value: number) => ({ labels: { namespace: 'm', deployment, predictor, protocol }, value });
    expect(only(await scrape(gw.adminUrl), 'seldon_gateway_route_weight')).toEqual([
      weight('split', 'canary', 'grpc', 25),
      weight('split', 'canary', 'rest', 25),
      weight('split', 'main', 'grpc', 75),
      weight('split', 'main', 'rest', 75),
    ]);

    await gw.write(
      'split.yaml',
      sdep('split', 'm', {
        predictors: [
          { name: 'main', traffic: 50 },
          { name: 'canary', traffic: 50 },
        ],
      }),
    );
    await gw.write(
      'solo.yaml',
      sdep('solo', 'm', {
        predictors: [
          { name: 'a', traffic: 90 },
          { name: 'b', traffic: 10 },
        ],
      }),
    );
    const after = only(await scrape(gw.adminUrl), 'seldon_gateway_route_weight').filter((s) => s.labels.protocol === 'rest');
    expect(after).toEqual([weight('solo', 'a', 'rest', 90), weight('solo', 'b', 'rest', 10), weight('split', 'canary', 'rest', 50), weight('split', 'main', 'rest', 50)]);

    await gw.write('split.yaml', sdep('split', 'm', { predictors: [{ name: 'main' }] }));
    expect(only(await scrape(gw.adminUrl), 'seldon_gateway_route_weight').map((s) => s.labels.deployment)).not.toContain('split');
  });
});

interface RouteMember {
  deployment: string;
  predictor: string;
  percent: number;
}
type Weights = Record<string, number>;

/** `deployment`'s REST members as /routes lists them: predictor → percent (the live shares of a steered deployment). */
async function routesWeights(adminUrl: string, deployment: string): Promise<Weights> {
  const routes = await getJson<{ deployments: { name: string; routes: { kind: string; members: RouteMember[] }[] }[] }>(`${adminUrl}/routes`);
  const rest = routes.deployments.find((d) => d.name === deployment)!.routes.find((r) => r.kind === 'rest')!;
  return Object.fromEntries(rest.members.map((m) => [m.predictor, m.percent]));
}

/** The same as the admin page draws it: each member row's weight cell. */
async function pageWeights(adminUrl: string, namespace: string, deployment: string): Promise<Weights> {
  const html = await getText(`${adminUrl}/?deployment=${namespace}/${deployment}`);
  const out: Weights = {};
  for (const m of html.matchAll(/<tr class="member[^"]*" data-backend="[^"]*">\s*<td class="predictor">([^<]+)<\/td>\s*<td class="weight num">([^<%]+)%<\/td>/g)) out[m[1]!] ??= Number(m[2]);
  return out;
}

/** `deployment`'s REST weights on /metrics. */
async function gaugeWeights(adminUrl: string, deployment: string): Promise<Weights> {
  const samples = (await scrape(adminUrl)).filter((s) => s.name === 'seldon_gateway_route_weight' && s.labels.deployment === deployment && s.labels.protocol === 'rest');
  return Object.fromEntries(samples.map((s) => [s.labels.predictor!, s.value]));
}

/**
 * The weights /metrics, /routes and the admin page give for `deployment`, once all three agree:
 * read in turn until a round gives the same numbers everywhere (a bandit's shares change every
 * second, between two reads).
 */
async function agreedWeights(adminUrl: string, namespace: string, deployment: string): Promise<Weights> {
  const round = async () => ({ routes: await routesWeights(adminUrl, deployment), metrics: await gaugeWeights(adminUrl, deployment), page: await pageWeights(adminUrl, namespace, deployment) });
  const r = await poll(
    `${deployment}'s weights on /routes, /metrics and the page`,
    round,
    (v) => JSON.stringify(v.routes) === JSON.stringify(v.metrics) && JSON.stringify(v.page) === JSON.stringify(v.metrics),
    10_000,
  );
  return r.metrics;
}

describe('seldon_gateway_route_weight under a rollout and a bandit', () => {
  const models: HttpBackend[] = [];
  let gw: ObservedGateway | undefined;
  let cli: CliGateway | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await gw?.stop();
    await cli?.stop();
    await Promise.all(models.splice(0).map((m) => m.close()));
    if (dir) rmSync(dir, { recursive: true, force: true });
    gw = cli = dir = undefined;
  });

  const manifests = {
    'reviews.yaml': sdep(
      'reviews',
      'm',
      { predictors: [{ name: 'main' }, { name: 'v2' }] },
      { 'seldon.io/gateway-rollout': 'canary: v2\nsteps: [20, 60, 100]\ninterval: 1s\nminRequests: 20\nmaxLatencyShift: 300%' },
    ),
    'rec.yaml': sdep('rec', 'm', { predictors: [{ name: 'a' }, { name: 'b' }] }, { 'seldon.io/gateway-bandit': 'arms: [a, b]\nhalfLife: none' }),
  };
  const startModels = async (): Promise<Record<string, number>> => {
    const resolve: Record<string, number> = {};
    for (const [dep, pred] of [
      ['reviews', 'main'],
      ['reviews', 'v2'],
      ['rec', 'a'],
      ['rec', 'b'],
    ] as const) {
      const m = await banditModel(pred);
      models.push(m);
      resolve[`${dep}-${pred}.m:8000`] = m.port;
    }
    return resolve;
  };

  /** Traffic until the rollout has left its first step and the bandit's rewards have moved its shares off 50/50. */
  const driveSteering = async (url: string, adminUrl: string): Promise<void> => {
    await poll(
      'the rollout past its first step and the bandit off 50/50',
      async () => {
        for (let i = 0; i < 20; i++) {
          expect((await post(`${url}/seldon/m/reviews${predict}`)).status).toBe(200);
          const p = await post(`${url}/seldon/m/rec${predict}`);
          const answer = JSON.parse(p.text) as { data: { names: string[] } };
          const feedback = JSON.stringify({ request: {}, response: answer, reward: answer.data.names[0] === 'b' ? 1 : 0 });
          expect((await post(`${url}/seldon/m/rec/api/v1.0/feedback`, {}, feedback)).status).toBe(200);
        }
        return { reviews: await routesWeights(adminUrl, 'reviews'), rec: await routesWeights(adminUrl, 'rec') };
      },
      (w) => (w.reviews.v2 ?? 0) > 20 && Math.abs((w.rec.b ?? 50) - 50) > 5,
      60_000,
    );
  };

  it("is the rollout's step and the bandit's shares, as /routes and the admin page show them", async () => {
    gw = await startObservedGateway({ manifests, resolve: await startModels() });
    // Before any decision the canary gets nothing, and the bandit's arms share evenly.
    expect(await agreedWeights(gw.adminUrl, 'm', 'reviews')).toEqual({ main: 100, v2: 0 });
    await driveSteering(gw.url, gw.adminUrl);
    const reviews = await agreedWeights(gw.adminUrl, 'm', 'reviews');
    expect(reviews.v2).toBeGreaterThan(20);
    expect(reviews.main! + reviews.v2!).toBeCloseTo(100, 3);
    const rec = await agreedWeights(gw.adminUrl, 'm', 'rec');
    expect(Math.abs(rec.b! - 50)).toBeGreaterThan(5);
    expect(rec.a! + rec.b!).toBeCloseTo(100, 3);
  }, 90_000);

  it("is one gateway's weights with workers, not their sum", async () => {
    dir = mkdtempSync(join(tmpdir(), 'sgw-weights-'));
    for (const [file, yaml] of Object.entries(manifests)) writeFileSync(join(dir, file), yaml);
    const resolve = Object.entries(await startModels()).flatMap(([addr, port]) => ['--resolve', `${addr}=127.0.0.1:${port}`]);
    cli = await startCli(['--manifests', dir, '--workers', '2', ...resolve]);
    const url = `http://127.0.0.1:${cli.port}`;
    const adminUrl = `http://127.0.0.1:${cli.admin}`;
    await driveSteering(url, adminUrl);
    const reviews = await agreedWeights(adminUrl, 'm', 'reviews');
    expect(reviews.main! + reviews.v2!).toBeCloseTo(100, 3);
    const rec = await agreedWeights(adminUrl, 'm', 'rec');
    expect(rec.a! + rec.b!).toBeCloseTo(100, 3);
  }, 120_000);
});

describe('seldon_gateway_upstream_ready_endpoints', () => {
  let api: FakeKubeApi | undefined;
  let tmp: ReturnType<typeof tempDir> | undefined;
  let gw: Gateway | undefined;
  afterEach(async () => {
    await gw?.close();
    await api?.close();
    tmp?.cleanup();
    gw = api = tmp = undefined;
  });

  it("counts the ready, non-terminating endpoints of each predictor's Service, and drops to 0 with them", async () => {
    api = await startFakeKubeApi();
    tmp = tempDir();
    api.upsert('seldondeployments', seldonDeployment('iris', 'models'));
    const publish = (endpoints: { ip: string; ready?: boolean; terminating?: boolean }[]) =>
      api!.upsert('endpointslices', endpointSlice('iris-default', 'models', 'iris-default-abc', endpoints, [{ name: 'http', port: 9000 }]));
    publish([{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }, { ip: '10.0.0.3', ready: false }]);
    const config = parseConfig(
      'serve',
      ['--kubernetes', '--kubeconfig', writeKubeconfig(tmp.dir, api), '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--workers', '1', '--access-log', 'off'],
      {},
    );
    gw = await startGateway(config, { logger: pino({ level: 'silent' }) });
    await until(() => gw!.ready(), 5000, 'ready');
    const admin = `http://127.0.0.1:${gw.adminPort}`;
    const ready = async (): Promise<number | undefined> => (await scrape(admin)).find((s) => s.name === 'seldon_gateway_upstream_ready_endpoints' && s.labels.deployment === 'iris')?.value;

    await expect.poll(ready, { timeout: 5000 }).toBe(2);
    const samples = (await scrape(admin)).filter((s) => s.name === 'seldon_gateway_upstream_ready_endpoints');
    expect(samples.map((s) => s.labels)).toEqual([{ namespace: 'models', deployment: 'iris', predictor: 'default', kind: 'primary' }]);

    publish([{ ip: '10.0.0.1' }, { ip: '10.0.0.2', terminating: true }]);
    await expect.poll(ready, { timeout: 5000 }).toBe(1);
    publish([{ ip: '10.0.0.1', ready: false }]);
    await expect.poll(ready, { timeout: 5000 }).toBe(0);
  });

  it('is absent when the endpoints are not known (manifests, no endpoint routing)', async () => {
    const g = await startObservedGateway({ manifests: { 'iris.yaml': sdep('iris', 'models', { predictors: [{ name: 'default' }] }) } });
    try {
      expect((await scrape(g.adminUrl)).filter((s) => s.name === 'seldon_gateway_upstream_ready_endpoints')).toEqual([]);
    } finally {
      await g.stop();
    }
  });
});
