/**
 * Scale from zero (docs/flow-control.md#scale-from-zero) against the Kubernetes API stand-in: while
 * a predictor's EndpointSlice has no ready endpoint, requests to a predictor with `scaleFromZero`
 * are held (REST and gRPC), longer than the route timeout, and go out as soon as an endpoint is
 * ready; a gRPC deadline the client set still holds; without `scaleFromZero`, no endpoint still
 * fails fast with 503 NO_HEALTHY_UPSTREAM.
 */
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { startGateway, type Gateway } from '../../../gateway/process/serve.js';
import { grpcClients, startGrpcBackend, type GrpcBackend } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { md, predict } from '../../helpers/grpc.js';
import { endpointSlice, seldonDeployment, startFakeKubeApi, tempDir, until, writeKubeconfig, type FakeKubeApi } from '../../fixtures/fake-kube-api.js';

const FLOW = 'seldon.io/gateway-flow';
const PREDICTORS = { predictors: [{ name: 'default', graph: { name: 'model', type: 'MODEL' } }] };

let api: FakeKubeApi;
let tmp: ReturnType<typeof tempDir>;
let gw: Gateway | undefined;
let rest: HttpBackend | undefined;
let grpcPod: GrpcBackend | undefined;

beforeEach(async () => {
  api = await startFakeKubeApi();
  tmp = tempDir();
});
afterEach(async () => {
  await gw?.close();
  gw = undefined;
  await rest?.close();
  await grpcPod?.close();
  rest = grpcPod = undefined;
  await api.close();
  tmp.cleanup();
});

/** The predictor's Service with no ready endpoint, as a Deployment scaled to zero leaves it. */
function atZero(service: string): void {
  api.upsert(
    'endpointslices',
    endpointSlice(
      service,
      'models',
      `${service}-abc`,
      [],
      [
        { name: 'http', port: 8000 },
        { name: 'grpc', port: 5001 },
      ],
    ),
  );
}

async function start(): Promise<string> {
  const kubeconfig = writeKubeconfig(tmp.dir, api);
  const config = parseConfig('serve', ['--kubernetes', '--kubeconfig', kubeconfig, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--workers', '1', '--access-log', 'off'], {});
  gw = await startGateway(config, { logger: pino({ level: 'silent' }) });
  await until(() => gw!.ready(), 5000, 'ready');
  return `http://127.0.0.1:${gw.port}`;
}

async function gauge(name: string, deployment: string): Promise<number> {
  const text = await gw!.metrics.registry.getSingleMetricAsString(name);
  const line = text.split('\n').find((l) => l.includes(`deployment="${deployment}"`));
  return line === undefined ? -1 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function eventually(cond: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const post = async (url: string, deployment: string) => {
  const r = await request(`${url}/seldon/models/${deployment}/api/v1.0/predictions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  return { status: r.statusCode, text: await r.body.text(), at: performance.now() };
};

describe('scale from zero', () => {
  it('holds requests while the predictor has no ready endpoint, past the route timeout, and sends them once one is ready', async () => {
    // A route timeout of 100 ms: the hold is bounded by scaleFromZero, not by it.
    api.upsert('seldondeployments', seldonDeployment('iris', 'models', PREDICTORS, { [FLOW]: 'concurrency: 2\nqueue: 10\nscaleFromZero: 30s', 'seldon.io/rest-timeout': '100' }));
    atZero('iris-default');
    const url = await start();
    await eventually(async () => (await gauge('seldon_gateway_upstream_ready_endpoints', 'iris')) === 0, 'no ready endpoint');

    const held = [0, 1, 2].map(() => post(url, 'iris'));
    const clients = grpcClients(`127.0.0.1:${gw!.port}`);
    const call = predict(clients, { strData: 'held' }, md({ seldon: 'iris', namespace: 'models' }));
    // A deadline the client set still holds while it is held.
    const short = await predict(clients, { strData: 'short' }, md({ seldon: 'iris', namespace: 'models' }), { deadline: Date.now() + 300 });
    expect(short.ok ? 'ok' : short.error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await eventually(async () => (await gauge('seldon_gateway_flow_queued', 'iris')) === 4, 'four held');

    // The pod comes up: one endpoint, both ports.
    rest = await startHttpBackend({ name: 'pod', host: '127.0.0.2' });
    grpcPod = await startGrpcBackend({ name: 'pod', host: '127.0.0.2' });
    const readyAt = performance.now();
    api.upsert(
      'endpointslices',
      endpointSlice(
        'iris-default',
        'models',
        'iris-default-abc',
        [{ ip: '127.0.0.2' }],
        [
          { name: 'http', port: rest.port },
          { name: 'grpc', port: grpcPod.port },
        ],
      ),
    );
    const answers = await Promise.all(held);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    for (const a of answers) expect(a.at - readyAt).toBeLessThan(2000);
    const g = await call;
    expect(g.ok).toBe(true);
    expect(rest.requests.length).toBe(3);
    expect(grpcPod.calls.length).toBe(1);
    clients.seldon.close();
  }, 30_000);

  it('without scaleFromZero, no ready endpoint still fails fast', async () => {
    api.upsert('seldondeployments', seldonDeployment('plain', 'models', PREDICTORS, { [FLOW]: 'concurrency: 2' }));
    atZero('plain-default');
    const url = await start();
    await eventually(async () => (await gauge('seldon_gateway_upstream_ready_endpoints', 'plain')) === 0, 'no ready endpoint');
    const r = await post(url, 'plain');
    expect(r.status).toBe(503);
    expect(JSON.parse(r.text).status.reason).toBe('NO_HEALTHY_UPSTREAM');
  }, 30_000);
});
