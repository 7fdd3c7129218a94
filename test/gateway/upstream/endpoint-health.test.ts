/**
 * Endpoint health over real sockets (docs/routing.md#endpoint-health): four model replicas on
 * 127.0.0.2–127.0.0.5 at one port, behind EndpointSlices from the Kubernetes API stand-in, the
 * real CLI gateway with two workers, open-loop load. One replica answering 500 to everything is
 * ejected within a handful of failures on REST and gRPC; bad input that every replica answers 500
 * ejects nobody; a replica that never answers costs a few timeouts; when all fail, clients get the
 * models' own answers; a replica that heals is back to its share after its ejection and slow start;
 * a replica 10× slower gets a small share. The seeded simulation (test/routing/health/endpoints-sim.test.ts)
 * has the same cases in simulated time, over many seeds.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { grpcClients, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { endpointSlice, seldonDeployment, startFakeKubeApi, tempDir, writeKubeconfig, type FakeKubeApi } from '../../fixtures/fake-kube-api.js';
import { poll, startCli, type CliGateway } from '../../helpers/cli.js';
import { md, predict } from '../../helpers/grpc.js';
import { grpcReplicas, openLoop, REPLICA_IPS, restReplicas, share, type Replicas, type Sent } from '../../fixtures/loopback-replicas.js';

const IPS = REPLICA_IPS;
const PREDICT = '/seldon/models/iris/api/v1.0/predictions';

let api: FakeKubeApi;
let tmp: ReturnType<typeof tempDir>;
let gw: CliGateway | undefined;
let replicas: Replicas | undefined;

beforeEach(async () => {
  api = await startFakeKubeApi();
  tmp = tempDir();
});

afterEach(async () => {
  await gw?.stop();
  gw = undefined;
  await replicas?.close();
  replicas = undefined;
  await api.close();
  tmp.cleanup();
});

async function metricLines(name: string): Promise<string[]> {
  const text = await (await fetch(`http://127.0.0.1:${gw!.admin}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(name) && l.includes('deployment="iris"'));
}

const sum = (lines: string[]): number => lines.reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);

/** The gateway (two workers) on the replicas, once both workers route to all four. */
async function start(r: Replicas, protocol: 'http' | 'grpc', annotations?: Record<string, string>, args: string[] = []): Promise<void> {
  replicas = r;
  api.upsert(
    'endpointslices',
    endpointSlice(
      'iris-default',
      'models',
      'iris-default-abc',
      IPS.map((ip) => ({ ip })),
      [{ name: protocol, port: r.port }],
    ),
  );
  api.upsert('seldondeployments', seldonDeployment('iris', 'models', undefined, annotations));
  gw = await startCli(['--kubernetes', '--kubeconfig', writeKubeconfig(tmp.dir, api), '--workers', '2', ...args]);
  await poll(
    'ready endpoints',
    () => metricLines('seldon_gateway_upstream_ready_endpoints'),
    (l) => sum(l) >= 4,
    20_000,
  );
}

/** `rate` requests per second for `seconds`, open loop, to the gateway. */
const load = (rate: number, seconds: number, body: (i: number) => string): Promise<Sent[]> => openLoop(gw!.port, PREDICT, rate, seconds, body);

describe('endpoint health: four replicas, two workers', () => {
  it('REST: one replica answering 500 to everything, 150/s for 20 s: at most 1% of predictions fail, it gets at most 3% after 2 s, ejected once per worker', async () => {
    await start(await restReplicas(['fail', 'ok', 'ok', 'ok']), 'http');
    const sent = await load(150, 20, () => '{"data":{"ndarray":[[1,2,3,4]]}}');
    const failed = sent.filter((s) => s.status !== 200);
    expect(failed.length / sent.length).toBeLessThanOrEqual(0.01);
    // The failures are the model's own answers, passed on.
    for (const f of failed) expect(f.body).toContain('exception in model at 127.0.0.2');
    expect(share(replicas!, 0, sent[0]!.at + 2000)).toBeLessThanOrEqual(0.03);
    const ejections = await metricLines('seldon_gateway_upstream_ejections_total');
    expect(ejections.join('\n')).toContain('reason="error_rate"');
    expect(sum(ejections)).toBeGreaterThanOrEqual(1);
    expect(sum(ejections)).toBeLessThanOrEqual(2);
    expect(sum(await metricLines('seldon_gateway_upstream_ejected_endpoints'))).toBe(1);
    // Logged once per ejection, with the address and the reason.
    const logged = gw!
      .output()
      .split('\n')
      .filter((l) => l.includes('endpoint 127.0.0.2:') && l.includes('ejected'));
    expect(logged.length).toBe(sum(ejections));
    expect(logged[0]).toContain('"reason":"error_rate"');
    // /routes lists it under its deployment, until when and in how many workers; the page marks it.
    type Listed = { predictor: string; address: string; reason: string; until: string; workers: number };
    const routes = (await (await fetch(`http://127.0.0.1:${gw!.admin}/routes`)).json()) as { deployments: { name: string; ejectedEndpoints?: Listed[] }[] };
    const listed = routes.deployments.find((d) => d.name === 'iris')!.ejectedEndpoints!;
    expect(listed).toEqual([{ predictor: 'default', address: `127.0.0.2:${replicas!.port}`, reason: 'error_rate', until: expect.any(String), workers: sum(ejections) }]);
    expect(Date.parse(listed[0]!.until)).toBeGreaterThan(Date.now());
    const page = await (await fetch(`http://127.0.0.1:${gw!.admin}/?deployment=models/iris`)).text();
    expect(page).toContain(`<span class="badge bad">ejected</span> default 127.0.0.2:${replicas!.port}`);
    // A Warning Event on the SeldonDeployment, once for the endpoint (both workers' ejections inside a minute).
    await poll(
      'the Event',
      async () => [...api.events.values()].filter((e) => e.reason === 'EndpointEjected'),
      (l) => l.length >= 1,
      10_000,
    );
    const posted = [...api.events.values()].filter((e) => e.reason === 'EndpointEjected');
    expect(posted).toHaveLength(1);
    expect(posted[0]).toMatchObject({ type: 'Warning', involvedObject: { kind: 'SeldonDeployment', name: 'iris', namespace: 'models' } });
    expect(posted[0]!.message).toMatch(
      /^endpoint 127\.0\.0\.2:\d+ of predictor default ejected for \d+ s: it answered server errors on \d+% of its recent requests where the other endpoints answered \d+%$/,
    );
  });

  it('REST: 30% bad input that every replica answers 500: nobody ejected, none avoided, the other 70% all 200', async () => {
    await start(await restReplicas(['ok', 'ok', 'ok', 'ok']), 'http');
    const bad = (i: number): boolean => (i * 7919) % 10 < 3;
    const sent = await load(150, 8, (i) => (bad(i) ? '{"data":{"ndarray":["bad"]}}' : '{"data":{"ndarray":[[1]]}}'));
    sent.forEach((s, i) => expect(s.status).toBe(bad(i) ? 500 : 200));
    expect(sum(await metricLines('seldon_gateway_upstream_ejections_total'))).toBe(0);
    // Shares follow each replica's latency (the picker's), which a busy machine moves; what bad
    // input must not do is push one out: each keeps at least half of its even share.
    for (let i = 0; i < 4; i++) expect(share(replicas!, i, 0)).toBeGreaterThanOrEqual(0.125);
  });

  it('REST: a replica that fails, then heals: ejected, back to its share within 40 s of healing, at most 1% failed meanwhile', async () => {
    await start(await restReplicas(['fail', 'ok', 'ok', 'ok']), 'http');
    // It heals 2 s in (ejected by then); the load goes on for 42 s more.
    const healAt = performance.now() + 2000;
    const healed = new Promise<void>((r) => setTimeout(r, 2000)).then(() => (replicas!.modes[0] = 'ok'));
    const sent = await load(60, 44, () => '{"data":{"ndarray":[[1]]}}');
    await healed;
    expect(sum(await metricLines('seldon_gateway_upstream_ejections_total'))).toBeGreaterThanOrEqual(1);
    expect(sent.filter((x) => x.status !== 200).length / sent.length).toBeLessThanOrEqual(0.01);
    // Ejected for 30 s, then ramped up over the 10 s slow start: in the last 4 s, an even share again.
    const back = replicas!.received.map((ts) => ts.filter((t) => t >= healAt + 38_000).length);
    const total = back.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(100);
    expect(back[0]! / total, JSON.stringify(back)).toBeGreaterThanOrEqual(0.15);
    console.log(`healed replica: ${((100 * back[0]!) / total).toFixed(1)}% of the last 4 s; ${sent.filter((x) => x.status !== 200).length} of ${sent.length} failed`);
  });

  it('REST: one replica 10× slower (200 ms against 20 ms): its share at most 8%, mean latency at most 1.5× an all-healthy run', async () => {
    await start(await restReplicas(['ok', 'ok', 'ok', 'ok']), 'http');
    const mean = (xs: Sent[]): number => xs.reduce((a, x) => a + x.ms, 0) / xs.length;
    const healthy = await load(100, 8, () => '{"data":{"ndarray":[[1]]}}');
    replicas!.modes[0] = 'slow';
    const t0 = performance.now();
    const slowed = await load(100, 8, () => '{"data":{"ndarray":[[1]]}}');
    for (const x of [...healthy, ...slowed]) expect(x.status).toBe(200);
    expect(share(replicas!, 0, t0)).toBeLessThanOrEqual(0.08);
    expect(mean(slowed) / mean(healthy), `${mean(slowed).toFixed(1)} ms against ${mean(healthy).toFixed(1)} ms`).toBeLessThanOrEqual(1.5);
    console.log(`slow replica: ${(100 * share(replicas!, 0, t0)).toFixed(1)}% share, mean ${mean(slowed).toFixed(1)} ms against ${mean(healthy).toFixed(1)} ms all healthy`);
  });

  it("REST: every replica failing: every client gets the model's own answer, never the gateway's", async () => {
    await start(await restReplicas(['fail', 'fail', 'fail', 'fail']), 'http');
    const sent = await load(100, 3, () => '{"data":{"ndarray":[[1]]}}');
    for (const s of sent) {
      expect(s.status).toBe(500);
      expect(s.body).toMatch(/exception in model at 127\.0\.0\.[2-5]/);
    }
    expect(sum(await metricLines('seldon_gateway_upstream_ejections_total'))).toBe(0);
  });

  it('REST: a replica that accepts and never answers, route timeout 1 s: at most 2% fail, none answered after 1.3 s', async () => {
    await start(await restReplicas(['hang', 'ok', 'ok', 'ok']), 'http', { 'seldon.io/rest-timeout': '1000' });
    const sent = await load(100, 8, () => '{"data":{"ndarray":[[1]]}}');
    const failed = sent.filter((s) => s.status !== 200);
    expect(failed.length / sent.length).toBeLessThanOrEqual(0.02);
    for (const f of failed) expect(f.status).toBe(504);
    expect(Math.max(...sent.map((s) => s.ms))).toBeLessThan(1300);
  });

  it('gRPC: one replica answering INTERNAL to everything, 150/s for 20 s: at most 1% of calls fail, it gets at most 3% after 2 s', async () => {
    await start(await grpcReplicas(['fail', 'ok', 'ok', 'ok']), 'grpc');
    const clients: GrpcClients = grpcClients(`127.0.0.1:${gw!.port}`);
    try {
      // As REST's: the calls sent before each worker has seen the replica fail are a fixed cost, 1% of 3000
      // (a starved client sends its late calls at once, all in flight to the failing replica together).
      const rate = 150;
      const t0 = performance.now();
      const calls: Promise<boolean>[] = [];
      for (let i = 0; i < rate * 20; i++) {
        const wait = t0 + (i * 1000) / rate - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        calls.push(predict(clients, { strData: 'x' }, md({ seldon: 'iris', namespace: 'models' })).then((o) => o.ok));
      }
      const ok = await Promise.all(calls);
      console.log(`gRPC, failing replica: ${ok.filter((x) => !x).length} of ${ok.length} calls failed`);
      expect(ok.filter((x) => !x).length / ok.length).toBeLessThanOrEqual(0.01);
      expect(share(replicas!, 0, t0 + 2000)).toBeLessThanOrEqual(0.03);
      expect((await metricLines('seldon_gateway_upstream_ejections_total')).join('\n')).toContain('reason="error_rate"');
    } finally {
      clients.close();
    }
  });
});
