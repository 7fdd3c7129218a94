/**
 * The forwarding rules REST and gRPC share (gateway/forward/), each checked on both protocols over
 * real sockets: a per-try timeout is retried under any retry policy; a gRPC status in a trailers-only
 * answer is retried under `retry_grpc_on`; a retry goes to another endpoint; a shadow that never
 * answers is bounded by the shadow route's idle timeout when it has no route timeout; a shadow's
 * latency is recorded. "Pods" are servers on 127.0.0.2, .3, … sharing a port, published as
 * EndpointSlices by the Kubernetes API stand-in (generated routes); custom Mappings are dialled by
 * Service name, here through --resolve.
 */
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { startGateway, type Gateway } from '../../../gateway/process/serve.js';
import { grpcClients, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { endpointSlice, seldonDeployment, startFakeKubeApi, tempDir, until, writeKubeconfig, type FakeKubeApi } from '../../fixtures/fake-kube-api.js';
import { answerOk, md, predict, startRawUpstream, type RawUpstream } from '../../helpers/grpc.js';

const NS = 'models';
const PREDICT = '/api/v1.0/predictions';
/** The shadow route's idle timeout: what bounds a copy when the route has no timeout. */
const IDLE_MS = 400;

/** A REST pod: `handle` gets each request with its arrival index across all pods of its group. */
interface RestPod {
  readonly ip: string;
  readonly seen: { body: string; at: number; closedAt?: number }[];
  close(): Promise<void>;
}

async function restPods(ips: string[], handle: (n: number, res: http.ServerResponse, body: string) => void): Promise<{ port: number; pods: RestPod[] }> {
  let port = 0;
  let n = 0;
  const pods: RestPod[] = [];
  for (const ip of ips) {
    const seen: RestPod['seen'] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('latin1');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        const record: RestPod['seen'][number] = { body, at: performance.now() };
        seen.push(record);
        res.once('close', () => (record.closedAt = performance.now()));
        handle(n++, res, body);
      });
    });
    await new Promise<void>((r) => server.listen(port, ip, r));
    port = (server.address() as AddressInfo).port;
    pods.push({
      ip,
      seen,
      close: () =>
        new Promise<void>((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
    });
  }
  return { port, pods };
}

/** gRPC pods on `ips` at one port; `n` counts streams across the group. */
async function grpcPods(ips: string[], handle: (s: http2.ServerHttp2Stream, n: number, body: string) => void): Promise<{ port: number; pods: (RawUpstream & { ip: string })[] }> {
  let port = 0;
  let n = 0;
  const pods: (RawUpstream & { ip: string })[] = [];
  for (const ip of ips) {
    const up = await startRawUpstream(
      (s) => {
        let body = '';
        s.setEncoding('latin1');
        s.on('data', (d: string) => (body += d));
        s.on('end', () => handle(s, n++, body));
      },
      { host: ip, port },
    );
    port = up.port;
    pods.push({ ...up, ip });
  }
  return { port, pods };
}

const json = (res: http.ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};

/** A trailers-only gRPC answer with `code` (how a server says an error before any message). */
function trailersOnly(s: http2.ServerHttp2Stream, code: number): void {
  s.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': 'not now' }, { endStream: true });
}

const mapping = (lines: string[]): string => ['apiVersion: ambassador/v1', 'kind: Mapping', ...lines].join('\n');

let api: FakeKubeApi;
let tmp: ReturnType<typeof tempDir>;
let gw: Gateway;
let clients: GrpcClients;
let url: string;
const closers: (() => Promise<void>)[] = [];

// Per-try: the first attempt stalls, the next answers. Retry: the first attempt fails on one pod, the
// next answers from whichever it reaches. Shadow: the primary answers; the copy holds what says "hold".
let pertryRest: { port: number; pods: RestPod[] };
let pertryGrpc: Awaited<ReturnType<typeof grpcPods>>;
let retryRest: { port: number; pods: RestPod[] };
let retryGrpc: Awaited<ReturnType<typeof grpcPods>>;
let grpcOn: Awaited<ReturnType<typeof grpcPods>>;
let noGrpcRetry: Awaited<ReturnType<typeof grpcPods>>;
let mainRest: { port: number; pods: RestPod[] };
let copyRest: { port: number; pods: RestPod[] };
let mainGrpc: Awaited<ReturnType<typeof grpcPods>>;
let copyGrpc: Awaited<ReturnType<typeof grpcPods>>;

beforeAll(async () => {
  api = await startFakeKubeApi();
  tmp = tempDir();
  pertryRest = await restPods(['127.0.0.2'], (n, res) => (n === 0 ? undefined : json(res, 200, { attempt: n })));
  pertryGrpc = await grpcPods(['127.0.0.2'], (s, n) => (n === 0 ? undefined : answerOk(s, `attempt ${n}`)));
  retryRest = await restPods(['127.0.0.3', '127.0.0.4'], (n, res) => json(res, n === 0 ? 503 : 200, { attempt: n }));
  retryGrpc = await grpcPods(['127.0.0.3', '127.0.0.4'], (s, n) => (n === 0 ? s.close(http2.constants.NGHTTP2_INTERNAL_ERROR) : answerOk(s, `attempt ${n}`)));
  grpcOn = await grpcPods(['127.0.0.5'], (s, n) => (n === 0 ? trailersOnly(s, grpc.status.UNAVAILABLE) : answerOk(s, `attempt ${n}`)));
  noGrpcRetry = await grpcPods(['127.0.0.5'], (s) => trailersOnly(s, grpc.status.UNAVAILABLE));
  mainRest = await restPods(['127.0.0.6'], (_n, res) => json(res, 200, { from: 'main' }));
  copyRest = await restPods(['127.0.0.7'], (_n, res, body) => (body.includes('hold') ? undefined : json(res, 200, { from: 'copy' })));
  mainGrpc = await grpcPods(['127.0.0.6'], (s) => answerOk(s, 'main'));
  copyGrpc = await grpcPods(['127.0.0.7'], (s, _n, body) => (body.includes('hold') ? undefined : answerOk(s, 'copy')));
  for (const group of [pertryRest, pertryGrpc, retryRest, retryGrpc, grpcOn, noGrpcRetry, mainRest, copyRest, mainGrpc, copyGrpc]) for (const p of group.pods) closers.push(() => p.close());

  const slice = (service: string, ips: string[], ports: { name: string; port: number }[]): void => {
    api.upsert(
      'endpointslices',
      endpointSlice(
        service,
        NS,
        `${service}-abc`,
        ips.map((ip) => ({ ip })),
        ports,
      ),
    );
  };
  slice(
    'spread-default',
    ['127.0.0.3', '127.0.0.4'],
    [
      { name: 'http', port: retryRest.port },
      { name: 'grpc', port: retryGrpc.port },
    ],
  );
  slice(
    'mirrored-main',
    ['127.0.0.6'],
    [
      { name: 'http', port: mainRest.port },
      { name: 'grpc', port: mainGrpc.port },
    ],
  );
  slice(
    'mirrored-copy',
    ['127.0.0.7'],
    [
      { name: 'http', port: copyRest.port },
      { name: 'grpc', port: copyGrpc.port },
    ],
  );

  // A connect-failure policy does not name timeouts: the per-try timeout is retried all the same.
  const pertry = ['retry_policy:', '  retry_on: connect-failure', '  num_retries: 1', '  per_try_timeout: 300ms'];
  const grpcHeaders = (name: string): string[] => ['grpc: true', 'prefix: /seldon.protos.Seldon/', 'rewrite: /seldon.protos.Seldon/', 'headers:', `  seldon: ${name}`, `  namespace: ${NS}`];
  const mappings = [
    mapping(['name: pertry-rest', `prefix: /seldon/${NS}/pertry-rest/`, `service: pertry-rest:${pertryRest.port}`, ...pertry]),
    mapping(['name: pertry-grpc', ...grpcHeaders('pertry-grpc'), `service: pertry-grpc:${pertryGrpc.port}`, ...pertry]),
    mapping(['name: grpc-on', ...grpcHeaders('grpc-on'), `service: grpc-on:${grpcOn.port}`, 'retry_policy:', '  retry_on: 5xx', '  retry_grpc_on: unavailable']),
    mapping(['name: noretry-grpc', ...grpcHeaders('noretry-grpc'), `service: noretry-grpc:${noGrpcRetry.port}`, 'retry_policy:', '  retry_on: 5xx']),
  ].join('\n---\n');
  api.upsert('seldondeployments', seldonDeployment('rules', NS, { predictors: [{ name: 'default', graph: { name: 'model', type: 'MODEL' } }] }, { 'seldon.io/ambassador-config': mappings }));
  // ambassador-retries: the generated routes' policy, gateway-error (a 503, a reset before the answer).
  api.upsert('seldondeployments', seldonDeployment('spread', NS, undefined, { 'seldon.io/ambassador-retries': '1' }));
  // No route timeout on either protocol: the copy's bound is the idle timeout.
  api.upsert(
    'seldondeployments',
    seldonDeployment(
      'mirrored',
      NS,
      {
        predictors: [
          { name: 'main', graph: { name: 'model', type: 'MODEL' } },
          { name: 'copy', shadow: true, graph: { name: 'model', type: 'MODEL' } },
        ],
      },
      { 'seldon.io/rest-timeout': '0', 'seldon.io/grpc-timeout': '0' },
    ),
  );

  const resolve = (
    [
      ['pertry-rest', '127.0.0.2', pertryRest.port],
      ['pertry-grpc', '127.0.0.2', pertryGrpc.port],
      ['grpc-on', '127.0.0.5', grpcOn.port],
      ['noretry-grpc', '127.0.0.5', noGrpcRetry.port],
    ] as const
  ).flatMap(([svc, ip, port]) => ['--resolve', `${svc}.${NS}:${port}=${ip}:${port}`]);
  const kubeconfig = writeKubeconfig(tmp.dir, api);
  const config = parseConfig(
    'serve',
    [
      '--kubernetes',
      '--kubeconfig',
      kubeconfig,
      '--port',
      '0',
      '--admin-port',
      '0',
      '--host',
      '127.0.0.1',
      '--workers',
      '1',
      '--access-log',
      'off',
      '--default-idle-timeout',
      `${IDLE_MS}ms`,
      ...resolve,
    ],
    {},
  );
  gw = await startGateway(config, { logger: pino({ level: 'silent' }) });
  await until(() => gw.ready(), 5000, 'ready');
  url = `http://127.0.0.1:${gw.port}`;
  clients = grpcClients(`127.0.0.1:${gw.port}`);
  // The routes reach pods once the EndpointSlices are known: wait for each backend's ready endpoints.
  await readyEndpoints(3);
});

afterAll(async () => {
  clients?.close();
  await gw?.close();
  for (const close of closers) await close();
  await api?.close();
  tmp?.cleanup();
});

async function post(path: string, body: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return { status: r.status, text: await r.text() };
}

/** A series' value in the gateway's registry (0 when absent); a histogram's `_count` too. */
async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const text = await gw.metrics.registry.getSingleMetricAsString(name.replace(/_count$/, ''));
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && want.every((w) => l.includes(w)));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Wait until a series reads `value`; the time it did (performance.now()). */
async function metricReaches(name: string, labels: Record<string, string>, value: number, ms = 5000): Promise<number> {
  const end = performance.now() + ms;
  for (;;) {
    const now = await metric(name, labels);
    if (now === value) return performance.now();
    if (performance.now() > end) throw new Error(`${name} ${JSON.stringify(labels)} is ${now}, not ${value}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Wait until `n` predictors of NS have ready endpoints (the gauge reads the view requests are balanced on). */
async function readyEndpoints(n: number): Promise<void> {
  const end = performance.now() + 10_000;
  for (;;) {
    const text = await gw.metrics.registry.getSingleMetricAsString('seldon_gateway_upstream_ready_endpoints');
    const ready = text.split('\n').filter((l) => l.includes(`namespace="${NS}"`) && !l.endsWith(' 0'));
    if (ready.length >= n) return;
    if (performance.now() > end) throw new Error(`ready endpoints: ${ready.join('; ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a per-try timeout is retried under any retry policy', () => {
  it('REST: the first attempt stalls past per_try_timeout under retry_on connect-failure; the second answers', async () => {
    const sent = performance.now();
    const r = await post(`/seldon/${NS}/pertry-rest${PREDICT}`, '{"data":{"ndarray":[1]}}');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ attempt: 1 });
    expect(performance.now() - sent).toBeGreaterThanOrEqual(290);
    const pod = pertryRest.pods[0]!;
    expect(pod.seen.map((s) => s.body)).toEqual(['{"data":{"ndarray":[1]}}', '{"data":{"ndarray":[1]}}']);
    // The stalled attempt was cut upstream, not left running.
    await until(() => pod.seen[0]!.closedAt !== undefined, 5000, 'the stalled attempt closed');
  });

  it('gRPC: the same policy retries the stalled call; the client gets the second answer', async () => {
    const sent = performance.now();
    const o = await predict(clients, { strData: 'per-try' }, md({ seldon: 'pertry-grpc', namespace: NS }));
    expect(o.ok ? o.result.response.strData : o.error.code).toBe('attempt 1');
    expect(performance.now() - sent).toBeGreaterThanOrEqual(290);
    expect(pertryGrpc.pods[0]!.streams).toHaveLength(2);
    expect(pertryGrpc.pods[0]!.streams.map((h) => h[':path'])).toEqual(['/seldon.protos.Seldon/Predict', '/seldon.protos.Seldon/Predict']);
  });
});

describe('a gRPC status in a trailers-only answer is retried under retry_grpc_on', () => {
  it('UNAVAILABLE under retry_grpc_on unavailable: retried; the client gets the second answer', async () => {
    const o = await predict(clients, { strData: 'retry me' }, md({ seldon: 'grpc-on', namespace: NS }));
    expect(o.ok ? o.result.response.strData : `code ${o.error.code}`).toBe('attempt 1');
    expect(grpcOn.pods[0]!.streams).toHaveLength(2);
  });

  it('without retry_grpc_on, the trailers-only UNAVAILABLE is the answer (retry_on reads HTTP statuses and failures)', async () => {
    const o = await predict(clients, { strData: 'no retry' }, md({ seldon: 'noretry-grpc', namespace: NS }));
    expect(o.ok).toBe(false);
    if (!o.ok) {
      expect(o.error.code).toBe(grpc.status.UNAVAILABLE);
      expect(o.error.details).toBe('not now');
    }
    expect(noGrpcRetry.pods[0]!.streams).toHaveLength(1);
  });
});

describe('a retry goes to another endpoint', () => {
  const from = (pods: { ip: string; seen?: unknown[]; streams?: unknown[] }[]): string[] => pods.flatMap((p) => Array.from({ length: (p.seen ?? p.streams)!.length }, () => p.ip));

  it('REST: a 503 under gateway-error; the second attempt reaches the other pod', async () => {
    const r = await post(`/seldon/${NS}/spread${PREDICT}`, '{"data":{"ndarray":[2]}}');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ attempt: 1 });
    const hits = from(retryRest.pods);
    expect(hits.sort()).toEqual(['127.0.0.3', '127.0.0.4']);
  });

  it('gRPC: a stream reset before the answer under gateway-error; the retry reaches the other pod', async () => {
    const o = await predict(clients, { strData: 'retry me' }, md({ seldon: 'spread', namespace: NS }));
    expect(o.ok ? o.result.response.strData : `code ${o.error.code}`).toBe('attempt 1');
    expect(from(retryGrpc.pods).sort()).toEqual(['127.0.0.3', '127.0.0.4']);
  });
});

describe('shadow copies: bounded and measured the same on both protocols', () => {
  const shadowed = { namespace: NS, deployment: 'mirrored', predictor: 'copy' };

  it('REST: a copy the shadow never answers is ended at the idle timeout and counted failed; the primary answers at once', async () => {
    const failed = await metric('seldon_gateway_shadow_requests_total', { ...shadowed, protocol: 'rest', result: 'failed' });
    const r = await post(`/seldon/${NS}/mirrored${PREDICT}`, '{"hold":1}');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ from: 'main' });
    const copy = copyRest.pods[0]!;
    await until(() => copy.seen.some((s) => s.body === '{"hold":1}' && s.closedAt !== undefined), 5000, 'the held copy ended');
    const held = copy.seen.find((s) => s.body === '{"hold":1}')!;
    const heldMs = held.closedAt! - held.at;
    expect(heldMs).toBeGreaterThanOrEqual(IDLE_MS - 50);
    expect(heldMs).toBeLessThan(IDLE_MS + 2000);
    await metricReaches('seldon_gateway_shadow_requests_total', { ...shadowed, protocol: 'rest', result: 'failed' }, failed + 1);
  });

  it('gRPC: the same copy is ended at the idle timeout and counted failed', async () => {
    const failed = await metric('seldon_gateway_shadow_requests_total', { ...shadowed, protocol: 'grpc', result: 'failed' });
    const o = await predict(clients, { strData: 'hold' }, md({ seldon: 'mirrored', namespace: NS }));
    expect(o.ok ? o.result.response.strData : o.error.code).toBe('main');
    const copy = copyGrpc.pods[0]!;
    await until(() => copy.streams.length > 0, 5000, 'the copy arrived');
    const arrived = performance.now();
    const ended = await metricReaches('seldon_gateway_shadow_requests_total', { ...shadowed, protocol: 'grpc', result: 'failed' }, failed + 1);
    expect(ended - arrived).toBeGreaterThanOrEqual(IDLE_MS - 100);
    expect(ended - arrived).toBeLessThan(IDLE_MS + 2000);
  });

  it('both: an answered copy records its latency under kind="shadow"', async () => {
    for (const protocol of ['rest', 'grpc'] as const) {
      const labels = { ...shadowed, protocol, kind: 'shadow' };
      const before = await metric('seldon_gateway_upstream_latency_seconds_count', labels);
      if (protocol === 'rest') expect((await post(`/seldon/${NS}/mirrored${PREDICT}`, '{"answer":1}')).status).toBe(200);
      else expect((await predict(clients, { strData: 'answer' }, md({ seldon: 'mirrored', namespace: NS }))).ok).toBe(true);
      await metricReaches('seldon_gateway_upstream_latency_seconds_count', labels, before + 1);
    }
  });
});
