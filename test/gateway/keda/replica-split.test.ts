/**
 * The replica count that the flow demand records in Redis give (gateway/keda/replica-demand.ts)
 * reaches each data plane's flow controller: two gateway replicas on one real redis-server split a
 * fixed `concurrency: 4` between them (2 each), and while Redis is away each takes the whole limit
 * again, so nothing waits on the outage. The model (test/fixtures/limited-model.ts) finishes a
 * request only when the test says so: what reached it is counted, not timed.
 */
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { startLimitedModel, type LimitedModel } from '../../fixtures/limited-model.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { waitUntil } from '../../helpers/wait.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe('fixed flow limits split between the replicas that share Redis', () => {
  let model: LimitedModel;
  let redis: TestRedis;

  const replica = async (): Promise<TestGateway> => {
    const gw = await startTestGateway({
      manifests: { 'iris.yaml': sdep('iris', 'm', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-flow': 'concurrency: 4\nqueue: 50\nqueueTimeout: 60s' }) },
      resolve: { 'iris-main.m:8000': model.restPort },
      args: ['--redis-url', redis.url],
    });
    cleanup.push(() => gw.stop());
    return gw;
  };
  const post = (gw: TestGateway, id: string): Promise<number> =>
    request(`${gw.url}/seldon/m/iris/api/v1.0/predictions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-test-id': id }, body: '{}' }).then(async (r) => {
      await r.body.dump();
      return r.statusCode;
    });
  const series = (gw: TestGateway, name: string): Promise<number> => metric(gw.adminUrl, `${name}{namespace="m",deployment="iris",predictor="main"}`);

  it('two replicas take 2 of the 4 each; with Redis away, each the whole 4 again', async () => {
    model = await startLimitedModel({ concurrency: 100, serviceMs: null });
    cleanup.push(() => model.close());
    redis = await startRedis();
    cleanup.push(() => redis.stop());
    const a = await replica();
    const b = await replica();
    await waitUntil(async () => (await metric(a.adminUrl, 'seldon_gateway_flow_replicas')) === 2 && (await metric(b.adminUrl, 'seldon_gateway_flow_replicas')) === 2, 10_000);
    await waitUntil(async () => (await series(a, 'seldon_gateway_flow_limit')) === 2, 5000);

    // Four to replica A: two reach the model, two wait in A's queue.
    const answers = ['a1', 'a2', 'a3', 'a4'].map((id) => post(a, id));
    await model.servedCount(2);
    await waitUntil(async () => (await series(a, 'seldon_gateway_flow_queued')) === 2, 5000);
    expect(model.arrived.length).toBe(2);
    // B has its own 2.
    const fromB = ['b1', 'b2'].map((id) => post(b, id));
    await model.servedCount(4);
    expect(model.arrived.filter((id) => id.startsWith('a')).length).toBe(2);

    // Redis away: one replica counted, A's limit is the whole 4 and its queue goes to the model.
    await redis.kill();
    await waitUntil(async () => (await metric(a.adminUrl, 'seldon_gateway_flow_replicas')) === 1, 10_000);
    await model.servedCount(6);
    expect(model.arrived.filter((id) => id.startsWith('a')).sort()).toEqual(['a1', 'a2', 'a3', 'a4']);
    while (model.finish());
    expect(await Promise.all([...answers, ...fromB])).toEqual([200, 200, 200, 200, 200, 200]);
  }, 60_000);
});
