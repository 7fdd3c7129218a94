/**
 * Endpoint-level balancing: the gateway on the Kubernetes source spreads each REST
 * request across the ready endpoints of a Service's EndpointSlices, drops endpoints that are not
 * ready or terminating, and lets a rolling restart pass under load with zero failed requests.
 * "Pods" are real HTTP servers on 127.0.0.2, .3, … sharing one port, as pods share a targetPort.
 */
import * as grpc from '@grpc/grpc-js';
import type { ServerResponse } from 'node:http';
import { Pool } from 'undici';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { startGateway, type Gateway } from '../../../gateway/process/serve.js';
import { grpcClients, startGrpcBackend, type GrpcBackend } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { predict as grpcPredict } from '../../helpers/grpc.js';
import { endpointSlice, seldonDeployment, startFakeKubeApi, tempDir, until, writeKubeconfig, type FakeEndpoint, type FakeKubeApi } from '../../fixtures/fake-kube-api.js';

const predict = '/api/v1.0/predictions';
let api: FakeKubeApi;
let tmp: ReturnType<typeof tempDir>;
let gw: Gateway | undefined;
let pods: HttpBackend[] = [];
/** Requests each pod (by name) is serving now. */
const serving = new Map<string, number>();
let pool: Pool | undefined;

beforeEach(async () => {
  api = await startFakeKubeApi();
  tmp = tempDir();
});

afterEach(async () => {
  await pool?.close();
  pool = undefined;
  await gw?.close();
  gw = undefined;
  await Promise.all(pods.map((p) => p.close().catch(() => undefined)));
  pods = [];
  serving.clear();
  await api.close();
  tmp.cleanup();
});

/** Pods on 127.0.0.<n>, all on the port of the first. */
async function startPods(ips: string[], port = 0): Promise<number> {
  for (const ip of ips) {
    const p = await startHttpBackend({ name: ip, host: ip, port: port || (pods[0]?.port ?? 0) });
    p.server.on('request', (_req, res: ServerResponse) => {
      serving.set(ip, (serving.get(ip) ?? 0) + 1);
      res.once('close', () => serving.set(ip, serving.get(ip)! - 1));
    });
    pods.push(p);
    port = p.port;
  }
  return port;
}

function publish(port: number, endpoints: FakeEndpoint[]): void {
  api.upsert('endpointslices', endpointSlice('iris-default', 'models', 'iris-default-abc', endpoints, [{ name: 'http', port }]));
}

async function start(): Promise<string> {
  api.upsert('seldondeployments', seldonDeployment('iris', 'models'));
  const kubeconfig = writeKubeconfig(tmp.dir, api);
  const config = parseConfig('serve', ['--kubernetes', '--kubeconfig', kubeconfig, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--workers', '1', '--access-log', 'off'], {});
  gw = await startGateway(config, { logger: pino({ level: 'silent' }) });
  await until(() => gw!.ready(), 5000, 'ready');
  const url = `http://127.0.0.1:${gw.port}`;
  pool = new Pool(url, { connections: 8 });
  return url;
}

/** Wait until the gateway routes to `n` ready endpoints of iris's predictor (its gauge reads the view requests are balanced on). */
async function readyEndpoints(n: number): Promise<void> {
  const value = async (): Promise<number> => {
    const text = await gw!.metrics.registry.getSingleMetricAsString('seldon_gateway_upstream_ready_endpoints');
    const line = text.split('\n').find((l) => l.includes('deployment="iris"') && l.includes('predictor="default"'));
    return line === undefined ? -1 : Number(line.slice(line.lastIndexOf(' ') + 1));
  };
  const end = Date.now() + 10_000;
  let v = await value();
  while (v !== n) {
    if (Date.now() > end) throw new Error(`ready endpoints: ${v}, not ${n}, after 10 s`);
    await new Promise((r) => setTimeout(r, 20));
    v = await value();
  }
}

async function send(n: number, concurrency = 8): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        const r = await pool!.request({ path: `/seldon/models/iris${predict}`, method: 'POST', body: '{}' });
        await r.body.text();
        const who = r.statusCode === 200 ? String(r.headers['x-backend']) : `status ${r.statusCode}`;
        counts[who] = (counts[who] ?? 0) + 1;
      }
    }),
  );
  return counts;
}

describe('endpoint routing', () => {
  it('spreads requests across ready endpoints and follows not-ready and terminating changes', async () => {
    const port = await startPods(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    publish(port, [{ ip: '127.0.0.2' }, { ip: '127.0.0.3' }, { ip: '127.0.0.4' }]);
    await start();
    const spread = await send(3000);
    // Every ready endpoint takes its part. The pick weighs measured latency (peak-EWMA, two choices:
    // docs/routing.md#endpoint-health), so shares follow how each replica answers on this machine:
    // at least half of an even share each, not an exact third.
    for (const ip of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) expect(spread[ip] ?? 0, JSON.stringify(spread)).toBeGreaterThanOrEqual(500);
    expect(Object.values(spread).reduce((a, b) => a + b, 0)).toBe(3000);

    publish(port, [{ ip: '127.0.0.2' }, { ip: '127.0.0.3', ready: false }, { ip: '127.0.0.4', terminating: true }]);
    // Once the gateway has the change, nothing reaches .3 or .4.
    await readyEndpoints(1);
    const only = await send(500);
    expect(only).toEqual({ '127.0.0.2': 500 });

    publish(port, [{ ip: '127.0.0.2', ready: false }]);
    await readyEndpoints(0);
    const none = await send(5, 1);
    expect(none).toEqual({ 'status 503': 5 });
  }, 30_000);

  it('a rolling restart under load fails no request', async () => {
    const port = await startPods(['127.0.0.2', '127.0.0.3']);
    publish(port, [{ ip: '127.0.0.2' }, { ip: '127.0.0.3' }]);
    await start();
    let stop = false;
    const statuses: Record<string, number> = {};
    const load = Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 20_000 && !stop; i++) {
          const r = await pool!.request({ path: `/seldon/models/iris${predict}`, method: 'POST', body: '{}' });
          await r.body.text();
          statuses[r.statusCode] = (statuses[r.statusCode] ?? 0) + 1;
        }
      }),
    );
    // Replace .2 and .3 by .5 and .6, one pod at a time, the way a Deployment rolls:
    // new pod ready → old pod terminating (out of the slice's ready set) → old pod stops.
    const steps: [string, string][] = [
      ['127.0.0.2', '127.0.0.5'],
      ['127.0.0.3', '127.0.0.6'],
    ];
    let live = ['127.0.0.2', '127.0.0.3'];
    for (const [old, fresh] of steps) {
      await startPods([fresh], port);
      live = [...live, fresh];
      publish(
        port,
        live.map((ip) => ({ ip })),
      );
      await readyEndpoints(live.length);
      publish(
        port,
        live.map((ip) => ({ ip, ...(ip === old ? { terminating: true, ready: false } : {}) })),
      );
      // The old pod stops once the gateway no longer sends to it and it has served what it had.
      await readyEndpoints(live.length - 1);
      await until(() => (serving.get(old) ?? 0) === 0, 5000, `${old} idle`);
      await pods.find((p) => p.name === old)!.close();
      live = live.filter((ip) => ip !== old);
      publish(
        port,
        live.map((ip) => ({ ip })),
      );
    }
    // Load over the final pods too.
    const total = (): number => Object.values(statuses).reduce((a, b) => a + b, 0);
    const rolled = total();
    await until(() => total() >= Math.max(rolled + 200, 600), 15_000, 'requests after the roll');
    stop = true;
    await load;
    expect(Object.keys(statuses)).toEqual(['200']);
    expect(statuses[200]).toBeGreaterThan(500);
    expect(pods.find((p) => p.name === '127.0.0.6')!.requests.length).toBeGreaterThan(0);
  }, 30_000);
});

describe('endpoint routing for gRPC', () => {
  const grpcPods: GrpcBackend[] = [];
  afterEach(async () => {
    await Promise.all(grpcPods.splice(0).map((p) => p.close()));
  });

  it('spreads the calls of one client HTTP/2 connection over three pods (33% ±5 each)', async () => {
    for (const ip of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) {
      grpcPods.push(await startGrpcBackend({ name: ip, host: ip, port: grpcPods[0]?.port ?? 0 }));
    }
    const port = grpcPods[0]!.port;
    api.upsert(
      'endpointslices',
      endpointSlice(
        'iris-default',
        'models',
        'iris-default-grpc',
        ['127.0.0.2', '127.0.0.3', '127.0.0.4'].map((ip) => ({ ip })),
        [{ name: 'grpc', port }],
      ),
    );
    await start();
    const clients = grpcClients(`127.0.0.1:${gw!.port}`);
    const md = new grpc.Metadata();
    md.set('seldon', 'iris');
    md.set('namespace', 'models');
    let next = 0;
    let failed = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < 3000) {
          next++;
          if (!(await grpcPredict(clients, { strData: 'hi' }, md)).ok) failed++;
        }
      }),
    );
    clients.close();
    expect(failed).toBe(0);
    for (const pod of grpcPods) expect(Math.abs(pod.calls.length / 30 - 33.3)).toBeLessThanOrEqual(5);
  }, 30_000);
});
