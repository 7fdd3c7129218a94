/**
 * Fallback when the predictor cannot take the request (docs/routing.md#fallback-models), against the
 * Kubernetes API stand-in, over real sockets, REST and gRPC: its EndpointSlice has no ready endpoint
 * (`unavailable`), its one endpoint is ejected (`unavailable`), or it is scaled to zero with
 * `scaleFromZero` (`cold`: answered by the fallback at once, never held, while the primary's demand
 * counts the request until its answer ends). Each answer is the fallback's 200 with
 * `x-seldon-fallback` and `x-seldon-model`; the primary gets nothing it cannot take.
 */
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { startGateway, type Gateway } from '../../../gateway/process/serve.js';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { answeredBy, md, predict } from '../../helpers/grpc.js';
import { endpointSlice, seldonDeployment, startFakeKubeApi, tempDir, until, writeKubeconfig, type FakeKubeApi } from '../../fixtures/fake-kube-api.js';

const FLOW = 'seldon.io/gateway-flow';
const FALLBACK = 'seldon.io/gateway-fallback';
const PREDICTORS = {
  predictors: [
    { name: 'main', graph: { name: 'model', type: 'MODEL' } },
    { name: 'small', traffic: 0, graph: { name: 'model', type: 'MODEL' } },
  ],
};

let api: FakeKubeApi;
let tmp: ReturnType<typeof tempDir>;
let gw: Gateway | undefined;
let clients: GrpcClients | undefined;
let small: HttpBackend;
let smallGrpc: GrpcBackend;

beforeEach(async () => {
  api = await startFakeKubeApi();
  tmp = tempDir();
  small = await startHttpBackend({ name: 'small', host: '127.0.0.3' });
  smallGrpc = await startGrpcBackend({ name: 'small-grpc', host: '127.0.0.3' });
});
afterEach(async () => {
  clients?.seldon.close();
  clients = undefined;
  await gw?.close();
  gw = undefined;
  await small.close();
  await smallGrpc.close();
  await api.close();
  tmp.cleanup();
});

/** `service`'s EndpointSlice: these addresses ready, on these ports. */
function slice(service: string, ips: string[], http = 8000, grpcPort = 5001): void {
  const ports = [
    { name: 'http', port: http },
    { name: 'grpc', port: grpcPort },
  ];
  api.upsert(
    'endpointslices',
    endpointSlice(
      service,
      'models',
      `${service}-abc`,
      ips.map((ip) => ({ ip })),
      ports,
    ),
  );
}

async function start(): Promise<string> {
  const kubeconfig = writeKubeconfig(tmp.dir, api);
  const config = parseConfig('serve', ['--kubernetes', '--kubeconfig', kubeconfig, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--workers', '1', '--access-log', 'off'], {});
  gw = await startGateway(config, { logger: pino({ level: 'silent' }) });
  await until(() => gw!.ready(), 5000, 'ready');
  clients = grpcClients(`127.0.0.1:${gw.port}`);
  return `http://127.0.0.1:${gw.port}`;
}

/** The first sample of `name` whose labels begin with `labels`. */
async function sample(name: string, labels: string): Promise<number> {
  const text = await gw!.metrics.registry.getSingleMetricAsString(name);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function eventually(cond: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ready = (deployment: string, predictor: string): Promise<number> => sample('seldon_gateway_upstream_ready_endpoints', `namespace="models",deployment="${deployment}",predictor="${predictor}",`);

const post = async (url: string, deployment: string, id: string) => {
  const r = await request(`${url}/seldon/models/${deployment}/api/v1.0/predictions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-test-id': id },
    body: '{"data":{"ndarray":[[7]]}}',
  });
  return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
};

/** REST and gRPC to `deployment` are answered by `small`, marked with `reason`. */
async function answeredBySmall(url: string, deployment: string, reason: string, restBefore = 0): Promise<void> {
  const before = small.requests.length;
  const r = await post(url, deployment, 'r1');
  expect(r.status).toBe(200);
  expect(r.headers['x-seldon-fallback']).toBe(reason);
  expect(r.headers['x-seldon-model']).toBe(`models/${deployment}/small`);
  expect(JSON.parse(r.text).meta.tags.backend).toBe('small');
  expect(small.requests.slice(before).map((q) => [q.url, q.body.toString()])).toEqual([['/api/v1.0/predictions', '{"data":{"ndarray":[[7]]}}']]);
  const g = await predict(clients!, { strData: 'g' }, md({ seldon: deployment, namespace: 'models' }));
  expect(g.ok).toBe(true);
  if (g.ok) {
    expect(answeredBy(g)).toBe('small-grpc');
    expect(g.result.headers.get('x-seldon-fallback')).toEqual([reason]);
    expect(g.result.headers.get('x-seldon-model')).toEqual([`models/${deployment}/small`]);
  }
  for (const [protocol, before] of [
    ['rest', restBefore],
    ['grpc', 0],
  ] as const) {
    const labels = `namespace="models",deployment="${deployment}",predictor="main",protocol="${protocol}",reason="${reason}",to="predictor/small",result="answered"}`;
    expect(await sample('seldon_gateway_fallbacks_total', labels)).toBe(before + 1);
  }
}

describe('a predictor that cannot take a request falls back', () => {
  it('unavailable: no ready endpoint; its share goes to the fallback marked, never silently to another member', async () => {
    api.upsert('seldondeployments', seldonDeployment('iris', 'models', PREDICTORS, { [FALLBACK]: 'to: {predictor: small}' }));
    slice('iris-main', []);
    slice('iris-small', ['127.0.0.3'], small.port, smallGrpc.port);
    const url = await start();
    await eventually(async () => (await ready('iris', 'small')) === 1, 'small ready');
    await answeredBySmall(url, 'iris', 'unavailable');
  }, 30_000);

  it('without a fallback, a member without an endpoint still leaves the pick: another answers, unmarked', async () => {
    api.upsert('seldondeployments', seldonDeployment('plain', 'models', PREDICTORS));
    slice('plain-main', []);
    slice('plain-small', ['127.0.0.3'], small.port, smallGrpc.port);
    const url = await start();
    await eventually(async () => (await ready('plain', 'small')) === 1, 'small ready');
    const r = await post(url, 'plain', 'p1');
    expect(r.status).toBe(200);
    expect(r.headers['x-seldon-fallback']).toBeUndefined();
  }, 30_000);

  it('unavailable: its only endpoint ejected', async () => {
    api.upsert(
      'seldondeployments',
      seldonDeployment('iris', 'models', PREDICTORS, {
        [FALLBACK]: 'to: {predictor: small}',
        'seldon.io/gateway-outlier': 'consecutiveLocalFailures: 1\nmaxEjectedPercent: 100\nejectionTime: 5m',
      }),
    );
    // Nothing listens there: every connection is refused, and one local failure ejects it.
    slice('iris-main', ['127.0.0.4'], 1, 1);
    slice('iris-small', ['127.0.0.3'], small.port, smallGrpc.port);
    const url = await start();
    await eventually(async () => (await ready('iris', 'small')) === 1, 'small ready');
    const first = await post(url, 'iris', 'e1');
    expect(first.status).toBe(503);
    const g = await predict(clients!, { strData: 'g' }, md({ seldon: 'iris', namespace: 'models' }));
    expect(g.ok ? 'ok' : g.error.code).toBe(grpc.status.UNAVAILABLE);
    await answeredBySmall(url, 'iris', 'unavailable');
  }, 30_000);

  it('cold: scaled to zero with scaleFromZero, answered by the fallback at once while its demand counts for the primary', async () => {
    api.upsert('seldondeployments', seldonDeployment('iris', 'models', PREDICTORS, { [FALLBACK]: 'to: {predictor: small}', [FLOW]: 'concurrency: 2\nqueue: 10\nscaleFromZero: 60s' }));
    slice('iris-main', []);
    slice('iris-small', ['127.0.0.3'], small.port, smallGrpc.port);
    const url = await start();
    await eventually(async () => (await ready('iris', 'small')) === 1, 'small ready');
    // The fallback answers when the test says: meanwhile the request counts in the primary's demand.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    small.setHandler(async (_req, res) => {
      await gate;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"data":{"ndarray":[[0]]},"meta":{"tags":{"backend":"small"}}}');
    });
    const pending = post(url, 'iris', 'c0');
    const queued = (): Promise<number> => sample('seldon_gateway_flow_queued', 'namespace="models",deployment="iris",predictor="main"}');
    await eventually(async () => (await queued()) === 1, 'demand counted');
    release();
    const r = await pending;
    expect(r.status).toBe(200);
    expect(r.headers['x-seldon-fallback']).toBe('cold');
    await eventually(async () => (await queued()) === 0, 'demand released');
    small.setHandler(undefined);
    await answeredBySmall(url, 'iris', 'cold', 1);
  }, 30_000);
});
