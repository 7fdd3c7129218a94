/**
 * KEDA's external scaler as KEDA sees it: a @grpc/grpc-js client over the vendored proto against
 * the control plane's flow demand service (gateway/keda/flow-demand.ts), fed by a flow demand
 * source the test sets, with real redis-servers for the sum over replicas.
 */
import { pino } from 'pino';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisConnection } from '../../../gateway/auth/redis.js';
import { startFlowDemand, type FlowDemandService } from '../../../gateway/keda/flow-demand.js';
import type { ReplicaTally } from '../../../gateway/flow/demand.js';
import { GatewayMetrics } from '../../../gateway/observe/metrics.js';
import { kedaClient, scaledObject, SetDemand, type KedaClient } from '../../helpers/keda.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { waitUntil } from '../../helpers/wait.js';

const log = pino({ level: 'silent' });
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

interface Replica {
  readonly demand: SetDemand;
  readonly service: FlowDemandService;
  readonly keda: KedaClient;
  readonly metrics: GatewayMetrics;
  /** What the data planes were last told. */
  readonly told: ReplicaTally[];
}

async function replica(redis?: TestRedis): Promise<Replica> {
  const demand = new SetDemand();
  demand.set('models', 'iris', 'main');
  const metrics = new GatewayMetrics();
  const connection = redis ? new RedisConnection(redis.url, log) : undefined;
  const told: ReplicaTally[] = [];
  // Two workers each: the count of processes is the replicas' workers summed.
  const service = await startFlowDemand({ planes: { demand, processes: 2, replicaCount: (n) => told.push(n) }, redis: connection, kedaPort: 0, host: '127.0.0.1', metrics, log });
  const keda = kedaClient(service.kedaPort!);
  cleanup.push(async () => {
    keda.close();
    await service.stop();
    connection?.close();
  });
  return { demand, service, keda, metrics, told };
}

const iris = scaledObject('models', 'iris', 'main');
const value = async (keda: KedaClient): Promise<number> => (await keda.metrics(iris))[0]!.metricValueFloat;
const gauge = async (metrics: GatewayMetrics): Promise<number> => (await metrics.flowReplicas.get()).values[0]!.value;

describe('KEDA external scaler', () => {
  it('names a stable metric with the target from the metadata (100 by default), in the float and the int field', async () => {
    const { keda } = await replica();
    expect(await keda.metricSpec(iris)).toEqual([{ metricName: 'seldon-gateway-pending-models-iris-main', targetSize: 100, targetSizeFloat: 100 }]);
    expect(await keda.metricSpec(scaledObject('models', 'iris', 'main', { targetPendingRequests: '2.5' }))).toEqual([
      { metricName: 'seldon-gateway-pending-models-iris-main', targetSize: 3, targetSizeFloat: 2.5 },
    ]);
  });

  it('is inactive at 0 and active with demand; GetMetrics counts queued plus in flight', async () => {
    const { keda, demand } = await replica();
    expect(await keda.isActive(iris)).toBe(false);
    expect(await keda.metrics(iris)).toEqual([{ metricName: 'seldon-gateway-pending-models-iris-main', metricValue: 0, metricValueFloat: 0 }]);
    demand.set('models', 'iris', 'main', 3, 4);
    expect(await keda.isActive(iris)).toBe(true);
    expect(await keda.metrics(iris)).toEqual([{ metricName: 'seldon-gateway-pending-models-iris-main', metricValue: 7, metricValueFloat: 7 }]);
  });

  it('StreamIsActive sends the state at once, then each change within a second', async () => {
    const { keda, demand } = await replica();
    const stream = keda.streamIsActive(iris);
    cleanup.push(() => stream.cancel());
    await waitUntil(async () => stream.values.length === 1);
    expect(stream.values[0]!.result).toBe(false);
    const held = Date.now();
    demand.set('models', 'iris', 'main', 1, 0);
    await waitUntil(async () => stream.values.length === 2, 1000);
    expect(stream.values[1]!.result).toBe(true);
    expect(stream.values[1]!.at - held).toBeLessThan(1000);
    // Counts that move without crossing zero send nothing; back to zero sends false.
    demand.set('models', 'iris', 'main', 2, 1);
    demand.set('models', 'iris', 'main', 0, 0);
    await waitUntil(async () => stream.values.length === 3, 1000);
    expect(stream.values.map((v) => v.result)).toEqual([false, true, false]);
  });

  it('refuses metadata it cannot use with INVALID_ARGUMENT in words that say what to fix', async () => {
    const { keda } = await replica();
    const refusal = (p: Promise<unknown>): Promise<unknown> =>
      p.then(
        () => 'answered',
        (e: grpc.ServiceError) => ({ code: e.code, details: e.details }),
      );
    expect(await refusal(keda.isActive({ ...iris, scalerMetadata: { predictor: 'main' } }))).toEqual({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'ScaledObject models/iris-main: metadata "deployment" (the SeldonDeployment\'s name) is missing',
    });
    expect(await refusal(keda.metrics({ ...iris, scalerMetadata: { deployment: 'iris' } }))).toEqual({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'ScaledObject models/iris-main: metadata "predictor" (the predictor\'s name in the SeldonDeployment) is missing',
    });
    for (const bad of ['0', 'lots', '-1', '']) {
      const answer = await refusal(keda.metricSpec(scaledObject('models', 'iris', 'main', { targetPendingRequests: bad })));
      if (bad === '') expect(answer).toBe('answered');
      else expect(answer).toEqual({ code: grpc.status.INVALID_ARGUMENT, details: `ScaledObject models/iris-main: metadata "targetPendingRequests" must be a number above 0 (got "${bad}")` });
    }
    expect(await refusal(keda.isActive({ ...iris, scalerMetadata: { deployment: 'Iris_Model', predictor: 'main' } }))).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    const stream = keda.streamIsActive({ ...iris, namespace: '' });
    expect(await stream.error).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'ScaledObject ?/iris-main: the ScaledObjectRef has no valid namespace (got "")' });
    expect(await refusal(keda.isActive(scaledObject('models', 'iris', 'canary')))).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      details: expect.stringContaining('predictor "canary" of SeldonDeployment models/iris is not under flow control'),
    });
  });
});

describe('demand over the replicas that share Redis', () => {
  it('two replicas on one redis-server each report the sum and count two replicas; one that stops is no longer counted', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const a = await replica(redis);
    const b = await replica(redis);
    a.demand.set('models', 'iris', 'main', 2, 0);
    b.demand.set('models', 'iris', 'main', 1, 4);
    await waitUntil(async () => (await value(a.keda)) === 7 && (await value(b.keda)) === 7, 5000);
    expect(await b.keda.isActive(iris)).toBe(true);
    await waitUntil(async () => (await gauge(a.metrics)) === 2 && (await gauge(b.metrics)) === 2, 5000);
    expect(a.told.at(-1)).toEqual({ replicas: 2, processes: 4 });
    expect(b.told.at(-1)).toEqual({ replicas: 2, processes: 4 });
    expect((await a.metrics.rateLimitReplicas.get()).values[0]!.value).toBe(4);
    // Demand held only by the other replica makes this one active too.
    a.demand.set('models', 'iris', 'main', 0, 0);
    await waitUntil(async () => (await value(a.keda)) === 5, 3000);
    expect(await a.keda.isActive(iris)).toBe(true);
    // A replica that stops takes its records with it.
    await b.service.stop();
    await waitUntil(async () => (await value(a.keda)) === 0 && (await gauge(a.metrics)) === 1, 3000);
    expect(a.told.at(-1)).toEqual({ replicas: 1, processes: 2 });
  });

  it('while Redis is away each replica reports its own demand at once and counts one replica; the sum is back when Redis is', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const a = await replica(redis);
    const b = await replica(redis);
    a.demand.set('models', 'iris', 'main', 3, 0);
    b.demand.set('models', 'iris', 'main', 0, 2);
    await waitUntil(async () => (await value(a.keda)) === 5 && (await value(b.keda)) === 5 && (await gauge(a.metrics)) === 2, 5000);
    await redis.kill();
    await waitUntil(async () => (await value(a.keda)) === 3 && (await value(b.keda)) === 2, 5000);
    await waitUntil(async () => (await gauge(a.metrics)) === 1 && (await gauge(b.metrics)) === 1, 5000);
    // Fixed flow limits are not split while Redis is away; a rate limit decided locally keeps its share of the last count.
    expect(a.told.at(-1)).toEqual({ replicas: 1, processes: 4 });
    // Nothing waits on the outage: every answer comes at once.
    const started = Date.now();
    expect(await a.keda.isActive(iris)).toBe(true);
    expect(await value(b.keda)).toBe(2);
    a.demand.set('models', 'iris', 'main', 4, 0);
    expect(await value(a.keda)).toBe(4);
    expect(Date.now() - started).toBeLessThan(500);
    await redis.restart();
    await waitUntil(async () => (await value(a.keda)) === 6 && (await value(b.keda)) === 6 && (await gauge(b.metrics)) === 2, 10_000);
  });

  it("keeps one record per replica, hash-tagged by deployment, that expires on Redis's clock", async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const a = await replica(redis);
    a.demand.set('models', 'iris', 'main', 2, 1);
    const key = 'seldon-gateway:flow-demand:{models/iris}:main';
    await waitUntil(async () => (await redis.command('HLEN', key)).startsWith(':1'), 3000);
    const [field, record] = (await redis.command('HGETALL', key)).split('\r\n').filter((l) => l && !l.startsWith('*') && !l.startsWith('$'));
    expect(field).toMatch(/\/\d+\/[0-9a-f]{8}$/);
    const [demand, expires] = record!.split(':');
    expect(demand).toBe('3');
    const [seconds, micros] = (await redis.command('TIME')).split('\r\n').filter((l) => /^\d+$/.test(l));
    const left = Number(expires) - (Number(seconds) * 1000 + Math.floor(Number(micros) / 1000));
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(3000);
    const ttl = Number((await redis.command('PTTL', key)).slice(1));
    expect(ttl).toBeGreaterThan(0);
  });
});
