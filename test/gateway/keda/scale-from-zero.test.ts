/**
 * KEDA scales a predictor from zero on the gateway's demand, end to end: real gateways (in this
 * process, and the CLI with two workers) against the Kubernetes API stand-in with a predictor at
 * zero endpoints, KEDA's external scaler asked over the real proto with @grpc/grpc-js, the held
 * requests answered once an endpoint is ready; two replicas on one real redis-server report the
 * sum, and each its own while Redis is away.
 */
import { pino } from 'pino';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { startGateway, type Gateway } from '../../../gateway/process/serve.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { endpointSlice, seldonDeployment, startFakeKubeApi, tempDir, writeKubeconfig, type FakeKubeApi } from '../../fixtures/fake-kube-api.js';
import { startCli, type CliGateway } from '../../helpers/cli.js';
import { kedaClient, scaledObject, type KedaClient } from '../../helpers/keda.js';
import { freePort } from '../../helpers/net.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { waitUntil } from '../../helpers/wait.js';

const PREDICTORS = { predictors: [{ name: 'default', graph: { name: 'model', type: 'MODEL' } }] };
const iris = scaledObject('models', 'iris', 'default');

let api: FakeKubeApi;
let tmp: ReturnType<typeof tempDir>;
const cleanup: (() => Promise<unknown> | void)[] = [];

beforeEach(async () => {
  api = await startFakeKubeApi();
  tmp = tempDir();
  api.upsert('seldondeployments', seldonDeployment('iris', 'models', PREDICTORS, { 'seldon.io/gateway-flow': 'concurrency: 2\nqueue: 50\nscaleFromZero: 30s' }));
  api.upsert('endpointslices', endpointSlice('iris-default', 'models', 'iris-default-abc', [], [{ name: 'http', port: 8000 }]));
});
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await api.close();
  tmp.cleanup();
});

interface Replica {
  readonly gw: Gateway;
  readonly url: string;
  readonly keda: KedaClient;
}

async function replica(extra: string[] = []): Promise<Replica> {
  const kubeconfig = writeKubeconfig(tmp.dir, api);
  const args = ['--kubernetes', '--kubeconfig', kubeconfig, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--workers', '1', '--access-log', 'off', '--keda-port', '0', ...extra];
  const gw = await startGateway(parseConfig('serve', args, {}), { logger: pino({ level: 'silent' }) });
  const keda = kedaClient(gw.kedaPort!);
  cleanup.push(() => gw.close());
  cleanup.push(() => keda.close());
  await waitUntil(async () => gw.ready(), 10_000);
  // The predictor is known to the flow controller (at 0) once the table has it.
  await waitUntil(async () => (await keda.metrics(iris).catch(() => undefined)) !== undefined, 10_000);
  return { gw, url: `http://127.0.0.1:${gw.port}`, keda };
}

const post = async (url: string): Promise<{ status: number; at: number }> => {
  const r = await request(`${url}/seldon/models/iris/api/v1.0/predictions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":{"ndarray":[[1]]}}' });
  await r.body.dump();
  return { status: r.statusCode, at: performance.now() };
};
const value = async (keda: KedaClient): Promise<number> => (await keda.metrics(iris))[0]!.metricValueFloat;

/** The pod comes up: one ready endpoint on `pod`. */
function podReady(pod: HttpBackend): void {
  api.upsert('endpointslices', endpointSlice('iris-default', 'models', 'iris-default-abc', [{ ip: '127.0.0.2' }], [{ name: 'http', port: pod.port }]));
}

async function startPod(): Promise<HttpBackend> {
  const pod = await startHttpBackend({ name: 'pod', host: '127.0.0.2' });
  cleanup.push(() => pod.close());
  return pod;
}

describe('scale from zero with KEDA', () => {
  it('IsActive turns true within a second of the first held request, GetMetrics counts the held ones, all are answered 200 within 2 s of an endpoint being ready', async () => {
    const { url, keda } = await replica();
    expect(await keda.isActive(iris)).toBe(false);
    expect(await value(keda)).toBe(0);
    expect(await keda.metricSpec(iris)).toEqual([{ metricName: 'seldon-gateway-pending-models-iris-default', targetSize: 100, targetSizeFloat: 100 }]);
    const stream = keda.streamIsActive(iris);
    cleanup.push(() => stream.cancel());
    await waitUntil(async () => stream.values.length === 1);
    expect(stream.values[0]!.result).toBe(false);

    const first = Date.now();
    const held = [post(url)];
    await waitUntil(async () => keda.isActive(iris), 1000);
    expect(Date.now() - first).toBeLessThan(1000);
    await waitUntil(async () => stream.values.length === 2, 1000);
    expect(stream.values[1]).toMatchObject({ result: true });
    expect(stream.values[1]!.at - first).toBeLessThan(1000);
    held.push(post(url), post(url));
    await waitUntil(async () => (await value(keda)) === 3, 1000);

    const pod = await startPod();
    const readyAt = performance.now();
    podReady(pod);
    const answers = await Promise.all(held);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    for (const a of answers) expect(a.at - readyAt).toBeLessThan(2000);
    expect(pod.requests.length).toBe(3);
    // Nothing pending any more: inactive again, and the stream says so.
    await waitUntil(async () => (await value(keda)) === 0, 2000);
    expect(await keda.isActive(iris)).toBe(false);
    await waitUntil(async () => stream.values.length === 3, 1000);
    expect(stream.values.map((v) => v.result)).toEqual([false, true, false]);
  }, 60_000);

  it('two replicas on one redis-server report the sum of what both hold; with Redis away each its own, and nothing blocks', async () => {
    const redis: TestRedis = await startRedis();
    cleanup.push(() => redis.stop());
    const a = await replica(['--redis-url', redis.url]);
    const b = await replica(['--redis-url', redis.url]);
    const held = [post(a.url), post(a.url), post(b.url), post(b.url), post(b.url)];
    await waitUntil(async () => (await value(a.keda)) === 5 && (await value(b.keda)) === 5, 5000);
    const replicas = async (r: Replica): Promise<number> => (await r.gw.metrics.flowReplicas.get()).values[0]!.value;
    await waitUntil(async () => (await replicas(a)) === 2 && (await replicas(b)) === 2, 5000);

    await redis.kill();
    await waitUntil(async () => (await value(a.keda)) === 2 && (await value(b.keda)) === 3, 5000);
    await waitUntil(async () => (await replicas(a)) === 1 && (await replicas(b)) === 1, 5000);
    // Requests still come in and are held; KEDA's answers come at once.
    held.push(post(a.url));
    await waitUntil(async () => (await value(a.keda)) === 3, 1000);
    const pod = await startPod();
    podReady(pod);
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(pod.requests.length).toBe(6);
  }, 60_000);
});

describe('scale from zero with KEDA, the CLI with two workers', () => {
  let cli: CliGateway | undefined;
  afterEach(async () => {
    await cli?.stop();
    cli = undefined;
  });

  it('the primary counts what every worker holds', async () => {
    const kedaPort = await freePort();
    const kubeconfig = writeKubeconfig(tmp.dir, api);
    cli = await startCli(['--kubernetes', '--kubeconfig', kubeconfig, '--workers', '2', '--access-log', 'off', '--keda-port', String(kedaPort)]);
    const keda = kedaClient(kedaPort);
    cleanup.push(() => keda.close());
    await waitUntil(async () => (await keda.metrics(iris).catch(() => undefined)) !== undefined, 10_000);
    expect(await keda.isActive(iris)).toBe(false);
    // New connections: the kernel spreads them over both workers.
    const url = `http://127.0.0.1:${cli.port}`;
    const held = Array.from({ length: 8 }, () => post(url));
    await waitUntil(async () => (await value(keda)) === 8, 5000);
    expect(await keda.isActive(iris)).toBe(true);
    const pod = await startPod();
    podReady(pod);
    expect((await Promise.all(held)).map((r) => r.status)).toEqual(Array(8).fill(200));
    await waitUntil(async () => (await value(keda)) === 0, 3000);
  }, 90_000);
});
