/**
 * What the hedged-request tests share (test/gateway/forward/hedged-*.test.ts): four model pods on
 * 127.0.0.2–127.0.0.5 (test/fixtures/loopback-replicas.ts `LoopbackPods`, every request logged with
 * how it ended at the pod), SeldonDeployments on the Kubernetes API stand-in with an EndpointSlice
 * each over those pods, and the real CLI gateway (one worker: one estimate and one budget per
 * predictor to reason about) watching them, in a process of its own as in production, so that
 * what it measures is the pods' time and its own, not this process's load generators'; REST and
 * gRPC senders that name each request (`x-pod-request`), and what came back, checked against what
 * the pods sent.
 */
import { Pool } from 'undici';
import { endpointSlice, seldonDeployment, startFakeKubeApi, tempDir, writeKubeconfig, type FakeKubeApi } from '../fixtures/fake-kube-api.js';
import { grpcClients, unaryCall, type GrpcClients } from '../fixtures/grpc-backend.js';
import { LoopbackPods, POD_REQUEST_ID, REPLICA_IPS, type PodArrival } from '../fixtures/loopback-replicas.js';
import { startCli, type CliGateway } from './cli.js';
import { md, predict } from './grpc.js';
import { metricSum, scrape } from './observability.js';
import { waitUntil } from './wait.js';

export const NS = 'models';
export const PREDICT = '/api/v1.0/predictions';
export const FEEDBACK = '/api/v1.0/feedback';

/** A pods' delay: the first arrival of a request waits 60 ms, any other 5 ms, so a hedge sent after 10 ms wins. */
export function firstSlow(): (ip: string, id: string) => number {
  const seen = new Set<string>();
  return (_ip, id) => {
    const first = !seen.has(id);
    seen.add(id);
    return first ? 60 : 5;
  };
}

/**
 * One deployment to serve: its annotations, and the pods its predictor `main` has ready (default:
 * all four), or its predictors, each with its own pods (the first takes what the others leave).
 */
export interface HedgedDeployment {
  readonly annotations?: Record<string, string>;
  readonly ips?: readonly string[];
  readonly predictors?: Readonly<Record<string, readonly string[]>>;
}

/** What a client got for one request. */
export interface Got {
  readonly id: string;
  readonly status: number;
  readonly body: string;
  readonly ms: number;
  /** A REST answer's header. */
  readonly header?: (name: string) => string | undefined;
}

export class HedgingWorld {
  private constructor(
    readonly api: FakeKubeApi,
    private readonly tmp: ReturnType<typeof tempDir>,
    readonly pods: LoopbackPods,
    readonly gw: CliGateway,
    private readonly pool: Pool,
    readonly grpc: GrpcClients,
  ) {}

  /** The pods, the deployments (`name` → its settings) and the gateway, once it routes to every deployment's pods. */
  static async start(deployments: Record<string, HedgedDeployment>, latencyMs: (ip: string, id: string) => number, args: string[] = []): Promise<HedgingWorld> {
    const api = await startFakeKubeApi();
    const tmp = tempDir();
    const pods = new LoopbackPods(latencyMs, false, 64, true);
    for (const ip of REPLICA_IPS) await pods.start(ip);
    for (const [name, d] of Object.entries(deployments)) {
      const predictors = d.predictors ?? { main: d.ips ?? REPLICA_IPS };
      for (const [predictor, ips] of Object.entries(predictors)) {
        for (const ip of ips) if (!pods.has(ip)) await pods.start(ip);
        const ports = [
          { name: 'http', port: pods.restPort },
          { name: 'grpc', port: pods.grpcPort },
        ];
        api.upsert(
          'endpointslices',
          endpointSlice(
            `${name}-${predictor}`,
            NS,
            `${name}-${predictor}-slice`,
            ips.map((ip) => ({ ip })),
            ports,
          ),
        );
      }
      const spec = { predictors: Object.keys(predictors).map((p, i) => ({ name: p, graph: { name: 'model', type: 'MODEL' }, ...(i > 0 ? { traffic: 50 } : {}) })) };
      api.upsert('seldondeployments', seldonDeployment(name, NS, spec, d.annotations));
    }
    const gw = await startCli(['--kubernetes', '--kubeconfig', writeKubeconfig(tmp.dir, api), '--workers', '1', ...args]);
    const world = new HedgingWorld(api, tmp, pods, gw, new Pool(`http://127.0.0.1:${gw.port}`, { connections: 128 }), grpcClients(`127.0.0.1:${gw.port}`));
    for (const [name, d] of Object.entries(deployments)) {
      for (const [predictor, ips] of Object.entries(d.predictors ?? { main: d.ips ?? REPLICA_IPS })) {
        await waitUntil(async () => (await world.metric('seldon_gateway_upstream_ready_endpoints', { deployment: name, predictor, kind: 'primary' })) === ips.length, 30_000);
      }
    }
    return world;
  }

  async close(): Promise<void> {
    this.grpc.close();
    await this.pool.close();
    await this.gw.stop();
    await this.pods.close();
    await this.api.close();
    this.tmp.cleanup();
  }

  /** One REST request named `id` to `deployment`'s `path`, with `body`. */
  async rest(deployment: string, id: string, body = '{"data":{"ndarray":[[1]]}}', path = PREDICT, headers: Record<string, string> = {}): Promise<Got> {
    const at = performance.now();
    try {
      const r = await this.pool.request({
        path: `/seldon/${NS}/${deployment}${path}`,
        method: 'POST',
        headers: { 'content-type': 'application/json', [POD_REQUEST_ID]: id, 'x-request-id': id, ...headers },
        body,
        headersTimeout: 10_000,
      });
      const text = await r.body.text();
      const header = (name: string): string | undefined => r.headers[name] as string | undefined;
      return { id, status: r.statusCode, body: text, ms: performance.now() - at, header };
    } catch (err) {
      return { id, status: 0, body: (err as Error).message, ms: performance.now() - at };
    }
  }

  /** One gRPC Predict named `id` to `deployment` with `strData` (status: 0 for OK, else the gRPC status; body: the answer's strData). */
  async grpcPredict(deployment: string, id: string, strData = 'predict'): Promise<Got> {
    const at = performance.now();
    const o = await predict(this.grpc, { strData }, md({ seldon: deployment, namespace: NS, [POD_REQUEST_ID]: id, 'x-request-id': id }), { deadline: Date.now() + 10_000 });
    const ms = performance.now() - at;
    return o.ok ? { id, status: 0, body: o.result.response.strData ?? '', ms } : { id, status: o.error.code, body: o.error.details, ms };
  }

  /** One gRPC SendFeedback named `id` to `deployment`. */
  async grpcFeedback(deployment: string, id: string): Promise<Got> {
    const at = performance.now();
    const metadata = md({ seldon: deployment, namespace: NS, [POD_REQUEST_ID]: id });
    const r = await unaryCall(this.grpc.seldon.SendFeedback, this.grpc.seldon, { reward: 1 }, metadata, { deadline: Date.now() + 10_000 }).then(
      (x) => ({ status: 0, body: x.response.strData ?? '' }),
      (e: { code: number; details: string }) => ({ status: e.code, body: e.details }),
    );
    return { id, ...r, ms: performance.now() - at };
  }

  /** Requests the pods saw for the ids `ids` takes. */
  arrivalsOf(ids: (id: string) => boolean): PodArrival[] {
    return this.pods.arrivals.filter((a) => ids(a.id));
  }

  /**
   * Whether `got` is what one pod sent for its request, byte for byte: the answer of the pod it
   * names, which that pod sent whole (the winner's; a loser was cut before it answered).
   */
  fromWinner(got: Got): boolean {
    const ip = /"pod":"([0-9.]+)"/.exec(got.body)?.[1];
    if (ip === undefined || got.body !== this.pods.answer(ip, got.id)) return false;
    return this.pods.arrivals.some((a) => a.ip === ip && a.id === got.id && a.answered);
  }

  /** The sum of the gateway's samples of `name` whose labels include `labels` (its admin /metrics). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    return metricSum(await scrape(`http://127.0.0.1:${this.gw.admin}`), name, labels);
  }

  /**
   * Once the gateway has counted `n` requests of `deployment` (seldon_gateway_requests_total): a
   * request's hedges are counted when it ends, which for a gRPC call may be after its client has
   * its answer. Read hedge counts after this, never straight after the answers.
   */
  async counted(deployment: string, n: number): Promise<void> {
    await waitUntil(async () => (await this.metric('seldon_gateway_requests_total', { deployment })) >= n, 15_000);
  }

  /** `seldon_gateway_hedges_total` of `deployment` with `result`, summed over protocols unless one is named. */
  hedges(deployment: string, result: string, protocol?: 'rest' | 'grpc'): Promise<number> {
    return this.metric('seldon_gateway_hedges_total', { deployment, result, ...(protocol ? { protocol } : {}) });
  }
}

/** The `q` quantile of `ms` (nearest rank). */
export function quantile(ms: readonly number[], q: number): number {
  const s = [...ms].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}
