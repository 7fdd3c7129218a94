/**
 * The two gauges the alert rules compare traffic with, read from a real gateway's admin /metrics:
 * `seldon_gateway_route_weight` (each predictor's configured percent in a weighted split, following
 * edits and deletions) and `seldon_gateway_upstream_ready_endpoints` (the ready endpoints of each
 * routed predictor's Service, following its EndpointSlices on a fake Kubernetes API).
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { startGateway, type Gateway } from '../../../gateway/process/serve.js';
import { endpointSlice, seldonDeployment, startFakeKubeApi, tempDir, until, writeKubeconfig, type FakeKubeApi } from '../../fixtures/fake-kube-api.js';
import { sdep } from '../../helpers/gateway.js';
import { scrape, startObservedGateway, type ObservedGateway, type PromSample } from '../../helpers/observability.js';

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

  it("is each predictor's percent in a split of two or more, per protocol; follows edits and deletions", async () => {
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
      },
    });
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
