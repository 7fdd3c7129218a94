/**
 * It lasts (issue 52): deployments and pods come and go through a CLI gateway with two workers on
 * the Kubernetes API stand-in, and nothing of them stays behind in any process.
 *
 * - 300 deployments, each on a pod address of its own from 127.0.0.3–254 (recycled), answer REST
 *   and gRPC requests through each worker, get their endpoints replaced once (a new address), and
 *   are deleted (EndpointSlice, then SeldonDeployment). After that, in each process: the heap after
 *   forced collections is within 2 MB of where it was after the first 20; no series names a deleted
 *   deployment or a gone address once `--series-grace` (2 s) is over; every process's descriptors
 *   are back to the baseline within 15 s (pools and sessions of gone upstreams closed, not aged out
 *   after the 60 s keep-alive), the pods hold no connection of the gateway's (they never close one
 *   themselves), and the upstreams each worker keeps are the ones the live table names.
 * - One of four replicas of a deployment under REST and gRPC load leaves the ready set (ready:
 *   false, then terminating, then removed) and comes back, every second: no request fails, and every
 *   answer is byte for byte what the pod sent.
 *
 * Pods are real servers (test/fixtures/loopback-replicas.ts `LoopbackPods`) on 127.0.0.x sharing two
 * ports, as pods share a Service's target ports. Requests go through connections placed on each
 * worker (test/helpers/cli.ts `connectionsOnWorkers`), so "a worker has the deployment" is a fact a
 * test can wait for: the first 200 on that worker's connection. Before it, a request may meet a
 * worker that has not yet seen the deployment or its slice (404, 503: propagation, recorded); after
 * it, every request must succeed.
 */
import * as grpc from '@grpc/grpc-js';
import { Client } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeSeldonMessage, encodeSeldonMessage } from '../../fixtures/grpc-backend.js';
import { endpointSlice, seldonDeployment, startFakeKubeApi, tempDir, writeKubeconfig, type FakeEndpoint, type FakeKubeApi } from '../../fixtures/fake-kube-api.js';
import { LoopbackPods, POD_REQUEST_ID, REPLICA_IPS } from '../../fixtures/loopback-replicas.js';
import { connectionsOnWorkers, poll, processMemory, startCli, type CliGateway, type ProcessMemoryJson } from '../../helpers/cli.js';
import { sleep } from '../../helpers/wait.js';

const NS = 'churn';
const PREDICT = '/api/v1.0/predictions';
const REST_BODY = '{"data":{"ndarray":[[1]]}}';
const GRPC_BODY = encodeSeldonMessage({ strData: 'predict' });
const MiB = 1024 * 1024;
const SERIES_GRACE_S = 2;

/** What one request got: ok with the pod that answered (its bytes were what that pod sent), or why not. */
type Answer = { readonly ok: true; readonly pod: string } | { readonly ok: false; readonly why: string };
type Protocol = 'rest' | 'grpc';

let api: FakeKubeApi | undefined;
let tmp: ReturnType<typeof tempDir> | undefined;
let pods: LoopbackPods | undefined;
let gw: CliGateway | undefined;
const closers: (() => unknown)[] = [];

afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await gw?.stop();
  gw = undefined;
  await pods?.close();
  pods = undefined;
  await api?.close();
  api = undefined;
  tmp?.cleanup();
  tmp = undefined;
});

const predictorSpec = { predictors: [{ name: 'main', graph: { name: 'model', type: 'MODEL' } }] };

/** The slice of `name`'s predictor `main`: its pods at the shared REST and gRPC ports. */
function publish(name: string, endpoints: FakeEndpoint[]): void {
  api!.upsert(
    'endpointslices',
    endpointSlice(`${name}-main`, NS, `${name}-main-slice`, endpoints, [
      { name: 'http', port: pods!.restPort },
      { name: 'grpc', port: pods!.grpcPort },
    ]),
  );
}

/** The stand-in API, the pods (first one at `firstPod`) and a CLI gateway with two workers watching it. */
async function start(firstPod: string, latencyMs: () => number, args: string[] = []): Promise<CliGateway> {
  api = await startFakeKubeApi();
  tmp = tempDir();
  pods = new LoopbackPods(latencyMs, true);
  await pods.start(firstPod);
  gw = await startCli(['--kubernetes', '--kubeconfig', writeKubeconfig(tmp.dir, api), '--workers', '2', '--log-level', 'warn', ...args]);
  return gw;
}

/** Bytes answered against what the pod sent for that request. */
function judge(protocol: Protocol, got: Buffer, id: string): Answer {
  const sent = pods!.take(id);
  if (sent === undefined) return { ok: false, why: `${protocol}: an answer no pod sent for request ${id}` };
  if (!sent.equals(got)) return { ok: false, why: `${protocol}: answer to ${id} differs from what the pod sent (${got.length} bytes against ${sent.length})` };
  const json = protocol === 'rest' ? got.toString() : (decodeSeldonMessage(got).strData ?? '');
  return { ok: true, pod: (JSON.parse(json) as { meta: { tags: { pod: string } } }).meta.tags.pod };
}

let requestSeq = 0;

async function restPredict(c: Client, name: string): Promise<Answer> {
  const id = `r${++requestSeq}`;
  try {
    const r = await c.request({
      path: `/seldon/${NS}/${name}${PREDICT}`,
      method: 'POST',
      headers: { 'content-type': 'application/json', [POD_REQUEST_ID]: id },
      body: REST_BODY,
      headersTimeout: 15_000,
      bodyTimeout: 15_000,
    });
    const body = Buffer.from(await r.body.arrayBuffer());
    if (r.statusCode !== 200) {
      pods!.take(id);
      return { ok: false, why: `rest: ${r.statusCode} ${body.toString().slice(0, 160)}` };
    }
    return judge('rest', body, id);
  } catch (err) {
    return { ok: false, why: `rest: ${(err as Error).message}` };
  }
}

function grpcPredict(c: grpc.Client, name: string): Promise<Answer> {
  const id = `g${++requestSeq}`;
  const md = new grpc.Metadata();
  md.set('seldon', name);
  md.set('namespace', NS);
  md.set(POD_REQUEST_ID, id);
  const raw = (b: Buffer): Buffer => b;
  return new Promise((resolve) => {
    // Raw bytes both ways (through the real client), so the answer is compared byte for byte.
    c.makeUnaryRequest('/seldon.protos.Seldon/Predict', raw, raw, GRPC_BODY, md, { deadline: Date.now() + 15_000 }, (err, res) => {
      if (err) {
        pods!.take(id);
        resolve({ ok: false, why: `grpc: ${grpc.status[err.code]} ${err.details}` });
      } else resolve(judge('grpc', res!, id));
    });
  });
}

/** Clients placed on each worker: REST connections (undici, one connection each) and gRPC channels. */
interface WorkerClients {
  readonly rest: Client[];
  readonly grpc: grpc.Client[];
  /** Connections that closed under the test (then the client is on an unknown worker). */
  readonly lost: string[];
}

async function clientsOnWorkers(g: CliGateway, restPerWorker: number, grpcPerWorker: number): Promise<WorkerClients[]> {
  const lost: string[] = [];
  const origin = `http://127.0.0.1:${g.port}`;
  const rest = await connectionsOnWorkers(
    g.admin,
    async () => {
      const c = new Client(origin, { pipelining: 1, keepAliveTimeout: 120_000, keepAliveMaxTimeout: 120_000 });
      const r = await c.request({ path: '/ping', method: 'GET' });
      await r.body.dump();
      return c;
    },
    (c) => c.destroy(),
    restPerWorker,
  );
  for (const c of rest.flat()) {
    c.on('disconnect', (_origin, _targets, err) => lost.push(`a REST connection closed: ${err.message}`));
    closers.push(() => c.destroy());
  }
  let channel = 0;
  const grpcs = await connectionsOnWorkers(
    g.admin,
    async () => {
      const c = new grpc.Client(`127.0.0.1:${g.port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.test_channel': ++channel });
      await new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
      return c;
    },
    (c) => c.close(),
    grpcPerWorker,
  );
  for (const c of grpcs.flat()) {
    closers.push(() => c.close());
    const ch = c.getChannel();
    const watch = (): void =>
      ch.watchConnectivityState(grpc.connectivityState.READY, Infinity, () => {
        if (ch.getConnectivityState(false) === grpc.connectivityState.SHUTDOWN) return;
        lost.push(`a gRPC channel left READY (${grpc.connectivityState[ch.getConnectivityState(false)]})`);
      });
    watch();
  }
  return rest.map((r, i) => ({ rest: r, grpc: grpcs[i]!, lost }));
}

/** Send on worker `w` with protocol `p` through its `k`-th client. */
function send(w: WorkerClients, p: Protocol, name: string, k = 0): Promise<Answer> {
  return p === 'rest' ? restPredict(w.rest[k % w.rest.length]!, name) : grpcPredict(w.grpc[k % w.grpc.length]!, name);
}

/**
 * Until the first success on (worker, protocol): that worker has the deployment and its slice.
 * What failed before it is propagation (recorded in `misses`); only "not routed yet" and "no
 * endpoint yet" are: anything else is returned as a failure.
 */
async function firstAnswer(w: WorkerClients, p: Protocol, name: string, misses: string[], withinMs = 20_000): Promise<Answer> {
  const end = Date.now() + withinMs;
  for (;;) {
    const a = await send(w, p, name);
    if (a.ok) return a;
    if (!/^rest: (404|503) |^grpc: (NOT_FOUND|UNIMPLEMENTED|UNAVAILABLE) /.test(a.why)) return a;
    misses.push(a.why);
    if (Date.now() > end) return { ok: false, why: `${name} not answered on a worker within ${withinMs} ms: ${a.why}` };
    await sleep(10);
  }
}

const mb = (n: number): string => (n / MiB).toFixed(2);

function table(label: string, ps: readonly ProcessMemoryJson[]): string {
  return `${label}: ${ps.map((p) => `${p.role}${p.worker ?? ''} heap ${mb(p.heapUsed)} MB, rss ${mb(p.rss)} MB, external ${mb(p.external)} MB, fds ${p.descriptors}, upstreams ${JSON.stringify(p.upstreams ?? null)}`).join('; ')}`;
}

/** Series (sample lines) of a /metrics text that name one of `deployments` or contain one of `addresses`. */
function seriesNaming(text: string, deployments: ReadonlySet<string>, addresses: readonly string[]): string[] {
  return text.split('\n').filter((l) => {
    if (l === '' || l.startsWith('#')) return false;
    const d = /deployment="([^"]*)"/.exec(l)?.[1];
    return (d !== undefined && deployments.has(d)) || addresses.some((a) => l.includes(a));
  });
}

async function metricsText(g: CliGateway): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${g.admin}/metrics`);
  return r.text();
}

describe('deployments and pods that come and go leave nothing behind', () => {
  it('300 deployments on 600 pod addresses: heap, series, descriptors and upstreams come back in every process', async () => {
    const ANCHOR = REPLICA_IPS[0]!;
    const g = await start(ANCHOR, () => 2, ['--series-grace', `${SERIES_GRACE_S}s`]);
    // A deployment that stays: its upstreams are the ones the live table names at the end.
    publish('anchor', [{ ip: ANCHOR }]);
    api!.upsert('seldondeployments', seldonDeployment('anchor', NS, predictorSpec));
    const workers = await clientsOnWorkers(g, 3, 1);
    const misses: string[] = [];
    const failures: string[] = [];
    for (const w of workers) for (const p of ['rest', 'grpc'] as const) expect(await firstAnswer(w, p, 'anchor', misses)).toMatchObject({ ok: true, pod: ANCHOR });

    // Pod addresses, reused in the order they were let go (an address comes back as late as it can).
    const free: string[] = [];
    for (let i = 3; i <= 254; i++) free.push(`127.0.0.${i}`);
    const used = new Set<string>();
    const deleted = new Set<string>();
    const alloc = async (): Promise<string> => {
      const ip = free.shift()!;
      used.add(ip);
      if (!pods!.has(ip)) await pods!.start(ip);
      return ip;
    };
    let lastDeletion = 0;

    /** One deployment's life: created on pod a, answers on every worker and protocol, moved to pod b, deleted. */
    const live = async (i: number): Promise<void> => {
      const name = `c${i}`;
      const a = await alloc();
      publish(name, [{ ip: a }]);
      api!.upsert('seldondeployments', seldonDeployment(name, NS, predictorSpec));
      for (const [wi, w] of workers.entries()) {
        for (const p of ['rest', 'grpc'] as const) {
          const first = await firstAnswer(w, p, name, misses);
          if (!first.ok || first.pod !== a) failures.push(`${name} worker ${wi} ${p}: ${first.ok ? `answered by ${first.pod}, not ${a}` : first.why}`);
          for (let k = 1; k <= 2; k++) {
            const r = await send(w, p, name, k);
            if (!r.ok || r.pod !== a) failures.push(`${name} worker ${wi} ${p}: ${r.ok ? `answered by ${r.pod}, not ${a}` : r.why}`);
          }
        }
      }
      // Its pod is replaced by one on a new address: requests go on, answered by a until the worker has the new slice, then only by b.
      const b = await alloc();
      publish(name, [{ ip: b }]);
      for (const [wi, w] of workers.entries()) {
        for (const p of ['rest', 'grpc'] as const) {
          const end = Date.now() + 20_000;
          for (let k = 0; ; k++) {
            const r = await send(w, p, name, k);
            if (!r.ok) failures.push(`${name} worker ${wi} ${p} during the move: ${r.why}`);
            else if (r.pod === b) break;
            else if (r.pod !== a) failures.push(`${name} worker ${wi} ${p}: answered by ${r.pod}`);
            if (Date.now() > end) {
              failures.push(`${name} worker ${wi} ${p}: still on ${a} 20 s after its pod moved`);
              break;
            }
          }
          const after = await send(w, p, name, 1);
          if (!after.ok || after.pod !== b) failures.push(`${name} worker ${wi} ${p} after the move: ${after.ok ? `answered by ${after.pod}` : after.why}`);
        }
      }
      api!.remove('endpointslices', NS, `${name}-main-slice`);
      api!.remove('seldondeployments', NS, name);
      deleted.add(name);
      lastDeletion = Date.now();
      free.push(a, b);
    };

    /** Deployments from..to-1 through six lanes, with the anchor answering on every worker meanwhile. */
    let seriesSeen = 0;
    const churn = async (from: number, to: number, peekAt?: number): Promise<void> => {
      let next = from;
      let done = false;
      const anchor = (async () => {
        for (let k = 0; !done; k++) {
          const w = workers[k % workers.length]!;
          const p: Protocol = k % 4 < 2 ? 'rest' : 'grpc';
          const r = await send(w, p, 'anchor', k);
          if (!r.ok || r.pod !== ANCHOR) failures.push(`anchor ${p}: ${r.ok ? `answered by ${r.pod}` : r.why}`);
          await sleep(5);
        }
      })();
      await Promise.all(
        Array.from({ length: 6 }, async () => {
          while (next < to) {
            const i = next++;
            if (i === peekAt) seriesSeen = seriesNaming(await metricsText(g), new Set(Array.from({ length: to }, (_x, j) => `c${j}`)), []).length;
            await live(i);
          }
        }),
      );
      done = true;
      await anchor;
    };

    /** Once churned: series of the deleted are gone after the grace, the pods hold none of the gateway's connections, every process's descriptors are at most `limit`. */
    const settled = async (limit: Map<number, number> | undefined): Promise<{ seriesMs: number; fdsMs: number; memory: ProcessMemoryJson[] }> => {
      const churnAddresses = [...used].flatMap((ip) => [`${ip}:${pods!.restPort}`, `${ip}:${pods!.grpcPort}`]);
      await poll(
        'series naming deleted deployments or gone addresses',
        async () => seriesNaming(await metricsText(g), deleted, churnAddresses),
        (l) => l.length === 0,
        SERIES_GRACE_S * 1000 + 15_000,
      );
      const seriesMs = Date.now() - lastDeletion;
      const churned = (): number => [...used].reduce((n, ip) => n + pods!.connections(ip), 0);
      const memory = await poll(
        'the gateway letting go of gone pods (pods: their open connections; each process: its descriptors against the baseline)',
        async () => ({ pods: churned(), processes: await processMemory(g.admin) }),
        (v) => v.pods === 0 && (limit === undefined || v.processes.every((p) => p.descriptors! <= limit.get(p.pid)!)),
        15_000,
      );
      return { seriesMs, fdsMs: Date.now() - lastDeletion, memory: memory.processes };
    };

    await churn(0, 20);
    await settled(undefined);
    const baseline = await processMemory(g.admin, true);
    console.log(table('after 20 deployments', baseline));
    // Tolerance, one descriptor per process: each holds a watch on the Kubernetes API (the primary
    // SeldonDeployments, each worker EndpointSlices), which the API server ends every 300 s; it is
    // re-opened on a new connection while the old one may wait in the client library's keep-alive pool.
    // Everything else is exact: with no churned deployment left, no upstream connection of theirs may stay.
    const limit = new Map(baseline.map((p) => [p.pid, p.descriptors! + 1]));

    await churn(20, 300, 150);
    const end = await settled(limit);
    const after = await processMemory(g.admin, true);
    console.log(table('after 300 deployments', after));
    console.log(
      `series of deleted deployments gone ${end.seriesMs} ms after the last deletion (grace ${SERIES_GRACE_S} s); descriptors back after ${end.fdsMs} ms; ${misses.length} propagation misses; ${requestSeq} requests`,
    );

    expect(failures).toEqual([]);
    expect(workers[0]!.lost).toEqual([]);
    expect(deleted.size).toBe(300);
    expect(used.size).toBe(252);
    // The series check meant something: the deployments had series while they lived.
    expect(seriesSeen).toBeGreaterThan(0);
    expect(end.fdsMs).toBeLessThan(15_000);
    // The same processes (none restarted), each holding what it held after the first 20.
    expect(after.map((p) => p.pid).sort()).toEqual(baseline.map((p) => p.pid).sort());
    for (const p of after) {
      const base = baseline.find((b) => b.pid === p.pid)!;
      expect(p.heapUsed - base.heapUsed, `${p.role} ${p.pid}: heap after 300 deployments against after 20`).toBeLessThanOrEqual(2 * MiB);
      expect(p.descriptors!, `${p.role} ${p.pid}: descriptors`).toBeLessThanOrEqual(limit.get(p.pid)!);
      // Each worker keeps the upstreams of the live table alone: the anchor's REST pool and gRPC session pool.
      if (p.role === 'worker') expect(p.upstreams).toEqual({ rest: 1, grpc: 1 });
    }
  }, 240_000);

  it('a replica leaving the ready set and coming back every second under REST and gRPC load fails no request', async () => {
    const g = await start(REPLICA_IPS[0]!, () => 15 + Math.random() * 10);
    for (const ip of REPLICA_IPS.slice(1)) await pods!.start(ip);
    const all = (): FakeEndpoint[] => REPLICA_IPS.map((ip) => ({ ip }));
    publish('steady', all());
    api!.upsert('seldondeployments', seldonDeployment('steady', NS, predictorSpec));
    const workers = await clientsOnWorkers(g, 4, 2);
    const misses: string[] = [];
    for (const w of workers) for (const p of ['rest', 'grpc'] as const) expect(await firstAnswer(w, p, 'steady', misses)).toMatchObject({ ok: true });

    const failures: string[] = [];
    const answeredBy = new Map<string, number>();
    let sent = 0;
    let stop = false;
    const outstanding = new Set<Promise<void>>();
    /** `rate` requests per second of protocol `p`, open loop, over every worker's clients in turn. */
    const load = async (p: Protocol, rate: number): Promise<void> => {
      const t0 = performance.now();
      for (let i = 0; !stop; i++) {
        const wait = t0 + (i * 1000) / rate - performance.now();
        if (wait > 1) await sleep(wait);
        const w = workers[i % workers.length]!;
        sent++;
        const req = send(w, p, 'steady', i >> 1).then((a) => {
          if (a.ok) answeredBy.set(a.pod, (answeredBy.get(a.pod) ?? 0) + 1);
          else failures.push(a.why);
        });
        outstanding.add(req);
        void req.finally(() => outstanding.delete(req));
      }
    };
    const loads = [load('rest', 100), load('grpc', 50)];

    // Every second one replica leaves: not ready, then terminating, then out of the slice; then it is back.
    let inFlightAtLeave = 0;
    const t0 = performance.now();
    const at = async (ms: number): Promise<void> => {
      const wait = t0 + ms - performance.now();
      if (wait > 0) await sleep(wait);
    };
    const FLIPS = 25;
    for (let k = 0; k < FLIPS; k++) {
      const leaving = REPLICA_IPS[k % REPLICA_IPS.length]!;
      const others = REPLICA_IPS.filter((ip) => ip !== leaving).map((ip) => ({ ip }));
      await at(k * 1000);
      inFlightAtLeave += pods!.inFlight(leaving);
      publish('steady', [...others, { ip: leaving, ready: false }]);
      await at(k * 1000 + 250);
      publish('steady', [...others, { ip: leaving, ready: false, terminating: true }]);
      await at(k * 1000 + 500);
      publish('steady', others);
      await at(k * 1000 + 750);
      publish('steady', all());
    }
    await at(FLIPS * 1000);
    stop = true;
    await Promise.all(loads);
    await Promise.all([...outstanding]);
    console.log(`${sent} requests, answered by ${JSON.stringify(Object.fromEntries(answeredBy))}; ${inFlightAtLeave} in flight at a replica as it left; ${misses.length} propagation misses`);

    expect(failures).toEqual([]);
    expect(workers[0]!.lost).toEqual([]);
    expect([...answeredBy.values()].reduce((a, b) => a + b, 0)).toBe(sent);
    for (const ip of REPLICA_IPS) expect(answeredBy.get(ip) ?? 0).toBeGreaterThan(0);
    // The flips met requests under way at the replica that left, as they should to mean anything.
    expect(inFlightAtLeave).toBeGreaterThan(0);
  }, 150_000);
});
