/**
 * Several worker processes (Node `cluster`), so the gateway uses every core.
 *
 * The primary runs the control plane (control-plane.ts, the same one a single process runs) with
 * `WorkerPlanes` as its data planes: every batch of source events goes to each worker; a worker
 * that (re)starts first gets the whole current set. Each worker runs a `LocalDataPlane`
 * (local-plane.ts), compiles the same table from the same objects (compilation is pure) and
 * serves the shared public port. Metrics are gathered from the workers and summed
 * (observe/observed-cluster.ts), for /metrics and the diagnostics page. SIGTERM or SIGINT to
 * the primary runs the control plane's shutdown (workers drain when told) and exits 0.
 *
 * Connections never pass through the primary. Node's default (round-robin) has the primary accept
 * every connection and pass it to a worker over IPC; out of file descriptors, that hand-over
 * stalls for good (accepted sockets pile up in CLOSE-WAIT in the primary while /readyz says 200).
 * So each worker accepts itself: with SO_REUSEPORT where this Node supports it (`reusePort`,
 * Node >= 22.12: one socket per worker, the kernel spreads connections), else on one shared
 * socket (SCHED_NONE). A worker out of descriptors stops accepting and tells the primary, whose
 * /readyz is false until it accepts again (edge/accept-guard.ts). A worker that cannot listen at
 * start-up stops the gateway (exit 1) rather than leave it up and never ready.
 */
import cluster, { type Worker } from 'node:cluster';
import net from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { EjectionNotice } from '../upstream/health-reports.js';
import type { AcceptFailure } from '../edge/accept-guard.js';
import type { GatewayConfig } from '../config/parse.js';
import { GatewayMetrics } from '../observe/metrics.js';
import { PRIMARY_PROBE_INTERVAL_MS } from '../observe/runtime-metrics.js';
import { serveStoresToWorkers } from '../auth/stores.js';
import { answerObserveRequests, gatherCluster } from '../observe/observed-cluster.js';
import { answerMemoryRequests, clusterMemory, HeapTrimmer, IdleTrimmer, trimHeap, type ProcessMemory } from '../observe/process-memory.js';
import type { Gathered } from '../observe/observed.js';
import { RouteState } from './route-state.js';
// Each role loads its own plane only (`import()` in runPrimary and runWorker): a worker never loads the
// admin page, the KEDA scaler or the rollout controller, nor the primary the request path.
import type { DataPlanes, PlanesReadiness, PublicPorts } from './control-plane.js';
import { notAccepting } from '../edge/accept-guard.js';
import { seriesReaper } from '../observe/series-reaper.js';
import { endpointsFor, routesToEndpoints, sourceFor } from './sources.js';
import { EndpointIndex, type SliceChange } from '../../source/kubernetes/endpoint-index.js';
import type { EndpointWatcher } from '../../source/kubernetes/endpoints.js';
import { keepServing } from './logger.js';
import type { SourceEvent } from '../../source/source.js';
import { addCounts, type SteerCounts } from '../observe/steer-tally.js';
import { fromWire, toWire, type SteerOverridesWire } from '../steer/overrides.js';
import type { RewardSink } from '../steer/bandit-edge.js';
import { serveRewardsToWorkers } from '../steer/reward-ipc.js';
import { WorkerDemand, reportDemandToPrimary, type ReplicasMessage } from '../keda/worker-demand.js';
import type { ReplicaTally } from '../flow/demand.js';
import type { SteerOverride } from '../../routing/steering/shares.js';
import type { SeldonDeployment } from '../../routing/seldon/deployment.js';
import type { JwtProviderConfig } from '../config/jwt.js';
import { applyJwtProviders } from './jwt-providers-file.js';
import { applyAmbassadorModule } from './ambassador-module-file.js';
import type { AmbassadorModule } from '../../routing/emissary/module.js';
import type { LogSinkConfig } from '../config/log-sinks.js';
import { applyLogSinks } from './log-sinks-file.js';
import type { SinkView } from '../payload-log/sinks.js';

type ToWorker =
  | { type: 'sdep-events'; events: readonly SourceEvent[] }
  | { type: 'endpoint-slices'; changes: readonly SliceChange[] }
  | { type: 'endpoint-snapshot'; slices: readonly SliceChange[] }
  | { type: 'sdep-snapshot'; deployments: [string, SeldonDeployment][] }
  | { type: 'steer'; overrides: SteerOverridesWire }
  | { type: 'steer-keys'; keys: string[] }
  | { type: 'jwt-providers'; providers: readonly JwtProviderConfig[] }
  | { type: 'log-sinks'; sinks: readonly LogSinkConfig[] }
  | { type: 'ambassador-module'; module: AmbassadorModule }
  | ReplicasMessage
  | { type: 'drain'; graceMs: number };
type ToPrimary =
  | { type: 'worker-hello' }
  | { type: 'steer-counts'; counts: SteerCounts }
  | { type: 'worker-ready'; ports: PublicPorts }
  | { type: 'worker-failed'; problem: string }
  | { type: 'worker-accept'; failing: AcceptFailure | null }
  | { type: 'worker-ejection'; notice: EjectionNotice };

/** How often a worker sends its rollout and bandit counts to the primary. */
const STEER_COUNTS_MS = 1000;
/** The primary gives back V8's pooled pages once its resident memory grew 32 MB since it last did, at most every 5 minutes (observe/process-memory.ts HeapTrimmer). */
const PRIMARY_TRIM_GROWTH_BYTES = 32 * 1024 * 1024;
const PRIMARY_TRIM_MIN_INTERVAL_MS = 5 * 60_000;
const PRIMARY_TRIM_CHECK_MS = 60_000;
/**
 * A worker gives its memory back after this long without traffic (its event loop busy under 2% of
 * the time), when it grew by WORKER_IDLE_GROWTH_BYTES since it last did (observe/process-memory.ts
 * IdleTrimmer), looked at every WORKER_IDLE_CHECK_MS: under a minute from the load's end to a worker
 * as small as it started.
 */
const WORKER_IDLE_QUIET_MS = 10_000;
const WORKER_IDLE_GROWTH_BYTES = 16 * 1024 * 1024;
const WORKER_IDLE_CHECK_MS = 5_000;

/** Set in a worker's environment when it should listen with SO_REUSEPORT. */
const REUSE_PORT_ENV = 'SELDON_GATEWAY_REUSE_PORT';

/**
 * Whether this Node can have several sockets listen on one port (`reusePort`, SO_REUSEPORT):
 * tried on 127.0.0.1. Node 20 ignores the option, so the second listen fails (EADDRINUSE).
 */
export async function reusePortWorks(): Promise<boolean> {
  const listen = (server: net.Server, port: number): Promise<number | undefined> =>
    new Promise((resolve) => {
      server.once('error', () => resolve(undefined));
      const options: net.ListenOptions & { reusePort?: boolean } = { port, host: '127.0.0.1', reusePort: true };
      server.listen(options, () => {
        const a = server.address();
        resolve(typeof a === 'object' && a ? a.port : undefined);
      });
    });
  const a = net.createServer();
  const b = net.createServer();
  try {
    const port = await listen(a, 0);
    return port !== undefined && (await listen(b, port)) === port;
  } finally {
    for (const s of [a, b]) if (s.listening) s.close();
  }
}

/**
 * How workers share the public ports: SO_REUSEPORT when this Node supports it and every port is
 * fixed (with port 0 each worker's socket would get a port of its own), else one shared socket
 * that each worker accepts on itself. Never round-robin through the primary.
 */
async function shareListeners(config: GatewayConfig): Promise<'reuse-port' | 'shared'> {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const ports = [config.listen.port, config.listen.grpcPort, config.listen.oauthPort].filter((p): p is number => p !== undefined);
  return ports.every((p) => p !== 0) && (await reusePortWorks()) ? 'reuse-port' : 'shared';
}

/** Where a worker's old-generation marking starts: this percent of the way from its size after the last full collection to its limit. */
const MARKING_SOFT_TRIGGER_PERCENT = 50;

/**
 * The node flags of a worker: the primary's, with the young generation set by --max-semi-space-size
 * (0: Node's defaults). Young-generation GC pauses set the hot path's tail latency (load/README.md),
 * so workers get room, and keep it: after a lull, V8's memory reducer runs full GCs that shrink the
 * young generation back to its minimum, and the next burst met scavenges several times as frequent.
 * With a set size the reducer is off.
 *
 * And a young generation that large needs V8 to start marking the old one by how far it grew, not
 * by the young generation's size: by default V8 starts incremental marking as soon as the old
 * generation's room left is smaller than the young generation, which for a worker (about 19 MB
 * live, its limit 16 MB above) is always once the young one grew past 16 MB: a full collection
 * every few seconds for as long as the worker lives, whatever it promotes (load/README.md, payload
 * logging: 1.3x the CPU per request of the same route in a worker whose young generation stayed at
 * 8 MB). `--incremental-marking-soft-trigger` makes it start halfway from the last collection's size
 * to the limit instead.
 */
export function workerExecArgv(primary: readonly string[], semiSpaceMb: number): string[] {
  const own = (a: string): boolean => a.startsWith('--max-semi-space-size') || a === '--memory-reducer' || a === '--no-memory-reducer' || a.startsWith('--incremental-marking-soft-trigger');
  const young = semiSpaceMb > 0 ? [`--max-semi-space-size=${semiSpaceMb}`, '--no-memory-reducer', `--incremental-marking-soft-trigger=${MARKING_SOFT_TRIGGER_PERCENT}`] : [];
  return [...primary.filter((a) => !own(a)), ...young];
}

/** The control plane's data planes in a cluster primary: one per worker, reached over IPC. */
class WorkerPlanes implements DataPlanes {
  readonly processes: number;
  /** The deployments as the source last gave them: a (re)started worker starts from these. */
  private readonly current = new Map<string, SeldonDeployment>();
  /** Workers listening, with their ports. */
  private readonly listening = new Map<number, PublicPorts>();
  /** Workers that cannot accept connections now, and why. */
  private readonly notAccepting = new Map<number, AcceptFailure>();
  private sharing: 'reuse-port' | 'shared' = 'shared';
  /** Until every worker listens: settles `start()`. */
  private starting: { resolve(ports: PublicPorts): void; reject(err: Error): void } | undefined;
  private stopping = false;
  /** Where the workers' endpoint ejections go (the control plane's Events). */
  private ejected: ((notice: EjectionNotice) => void) | undefined;
  private stopStores: (() => void) | undefined;
  /** Rollout and bandit counts the workers sent since the control plane last took them. */
  private counts: SteerCounts = {};
  /** The live shares last sent: a (re)started worker gets them after its snapshot. */
  private overrides: SteerOverridesWire = {};
  /** The steering keys (hex), for workers that (re)start. */
  private keys: string[] = [];
  private rewards: RewardSink | undefined;
  private stopRewards: (() => void) | undefined;
  /** Every worker's flow demand, as each last reported it (gateway/keda/worker-demand.ts). */
  readonly demand = new WorkerDemand();
  /** The replicas as last counted (keda/replica-demand.ts): a (re)started worker gets it after its snapshot. */
  private replicas: ReplicaTally | undefined;
  /** The JWT providers as the file last read, once it changed: a (re)started worker gets them after its snapshot. */
  private providers: readonly JwtProviderConfig[] | undefined;
  /** The log sinks as the file last read, once it changed: a (re)started worker gets them after its snapshot. */
  private sinks: readonly LogSinkConfig[] | undefined;
  private module: AmbassadorModule | undefined;
  /** The workers hold the JWT key sets; the control plane fetches its own for /readyz. */
  readonly jwtKeys = undefined;

  constructor(
    private readonly config: GatewayConfig,
    private readonly log: Logger,
    /** The primary's own metrics, gathered with the workers'. */
    private readonly own: Registry,
    /** The one EndpointSlice watcher (endpoint routing on the Kubernetes source): every slice it sees goes to every worker's index. */
    private readonly endpoints: EndpointWatcher | undefined,
  ) {
    this.processes = config.process.workers;
    endpoints?.onSlices((changes) => this.broadcast({ type: 'endpoint-slices', changes }));
  }

  async start(): Promise<PublicPorts> {
    this.sharing = await shareListeners(this.config);
    // Without Redis, OAuth tokens and rate limits live here, one store for every worker (auth/stores.ts).
    this.stopStores = this.config.auth.redisUrl ? undefined : serveStoresToWorkers();
    this.stopRewards = this.config.auth.redisUrl ? undefined : serveRewardsToWorkers(() => this.rewards);
    cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv, this.config.process.maxSemiSpaceMb) });
    cluster.on('exit', (w, code, signal) => {
      this.listening.delete(w.id);
      this.notAccepting.delete(w.id);
      if (this.stopping) return;
      this.log.error({ worker: w.id, code, signal }, 'worker exited: starting another');
      this.fork();
    });
    const started = new Promise<PublicPorts>((resolve, reject) => (this.starting = { resolve, reject }));
    for (let i = 0; i < this.processes; i++) this.fork();
    return started;
  }

  apply(events: readonly SourceEvent[]): void {
    for (const e of events) {
      if (e.type === 'upsert') this.current.set(e.key, e.deployment);
      else this.current.delete(e.key);
    }
    this.broadcast({ type: 'sdep-events', events });
  }

  async takeCounts(): Promise<SteerCounts> {
    const counts = this.counts;
    this.counts = {};
    return counts;
  }

  steer(overrides: ReadonlyMap<string, SteerOverride>): void {
    this.overrides = toWire(overrides);
    this.broadcast({ type: 'steer', overrides: this.overrides });
  }

  jwtProviders(providers: readonly JwtProviderConfig[]): void {
    this.providers = providers;
    this.broadcast({ type: 'jwt-providers', providers });
  }

  ambassadorModule(module: AmbassadorModule): void {
    this.module = module;
    this.broadcast({ type: 'ambassador-module', module });
  }

  logSinks(sinks: readonly LogSinkConfig[]): void {
    this.sinks = sinks;
    this.broadcast({ type: 'log-sinks', sinks });
  }

  /** The workers' writers report through their metrics only. */
  logViews(): SinkView[] {
    return [];
  }

  replicaCount(tally: ReplicaTally): void {
    this.replicas = tally;
    this.broadcast({ type: 'sgw-replicas', tally });
  }

  onEjection(listener: (notice: EjectionNotice) => void): void {
    this.ejected = listener;
  }

  /** Rewards the workers send (no Redis) are recorded here. */
  rewardsTo(sink: RewardSink): void {
    this.rewards = sink;
  }

  steerKeys(keys: readonly Buffer[]): void {
    this.keys = keys.map((k) => k.toString('hex'));
    this.broadcast({ type: 'steer-keys', keys: this.keys });
  }

  readiness(): PlanesReadiness {
    for (const [id, reason] of this.notAccepting) return { ready: false, detail: notAccepting(reason, `worker ${id}`) };
    return { ready: this.listening.size >= this.processes, detail: `${this.listening.size}/${this.processes} workers listening` };
  }

  memory(gc: boolean): Promise<ProcessMemory[]> {
    return clusterMemory(gc);
  }

  gather(names?: readonly string[]): Promise<Gathered> {
    return gatherCluster(this.own, names);
  }

  /** Every worker drains (its own grace period); any still running 2 s after it is killed. */
  async drain(graceMs: number): Promise<void> {
    await this.stop(graceMs, graceMs + 2000);
  }

  async close(): Promise<void> {
    await this.stop(undefined, 0);
  }

  private async stop(drainMs: number | undefined, killAfterMs: number): Promise<void> {
    this.stopping = true;
    const workers = this.workers();
    const exits = workers.map((w) => new Promise<void>((r) => (w.isDead() ? r() : w.once('exit', () => r()))));
    if (drainMs !== undefined) this.broadcast({ type: 'drain', graceMs: drainMs });
    const kill = (): void => {
      for (const w of workers) if (!w.isDead()) w.process.kill('SIGKILL');
    };
    const hard = setTimeout(kill, killAfterMs);
    await Promise.all(exits);
    clearTimeout(hard);
    this.stopStores?.();
    this.stopRewards?.();
    this.demand.stop();
    await this.endpoints?.stop();
  }

  private workers(): Worker[] {
    return Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
  }

  private send(w: Worker, msg: ToWorker): void {
    if (w.isConnected()) w.send(msg);
  }

  private broadcast(msg: ToWorker): void {
    for (const w of this.workers()) this.send(w, msg);
  }

  private fork(): void {
    const w = cluster.fork(this.sharing === 'reuse-port' ? { [REUSE_PORT_ENV]: '1' } : {});
    w.on('message', (msg: ToPrimary) => {
      // A worker says hello once it listens for messages; anything sent before is lost to it,
      // so it starts from the whole current set and then follows the event stream.
      if (msg?.type === 'worker-hello') {
        this.send(w, { type: 'sdep-snapshot', deployments: [...this.current] });
        if (this.endpoints !== undefined) this.send(w, { type: 'endpoint-snapshot', slices: this.endpoints.index.snapshot() });
        this.send(w, { type: 'steer-keys', keys: this.keys });
        this.send(w, { type: 'steer', overrides: this.overrides });
        if (this.replicas !== undefined) this.send(w, { type: 'sgw-replicas', tally: this.replicas });
        if (this.providers !== undefined) this.send(w, { type: 'jwt-providers', providers: this.providers });
        if (this.sinks !== undefined) this.send(w, { type: 'log-sinks', sinks: this.sinks });
        if (this.module !== undefined) this.send(w, { type: 'ambassador-module', module: this.module });
      } else if (msg?.type === 'steer-counts') addCounts(this.counts, msg.counts);
      else if (msg?.type === 'worker-ready') {
        this.listening.set(w.id, msg.ports);
        this.log.info({ worker: w.id, pid: w.process.pid, ...msg.ports, listening: this.sharing }, 'worker listening');
        if (this.listening.size === this.processes && this.starting) {
          this.starting.resolve(msg.ports);
          this.starting = undefined;
        }
      } else if (msg?.type === 'worker-ejection') {
        this.ejected?.(msg.notice);
      } else if (msg?.type === 'worker-accept') {
        if (msg.failing === null) this.notAccepting.delete(w.id);
        else this.notAccepting.set(w.id, msg.failing);
      } else if (msg?.type === 'worker-failed') {
        this.log.error({ worker: w.id, problem: msg.problem }, 'a worker could not listen');
        // At start-up the gateway could never serve: it stops (exit 1) rather than stay up, never ready.
        if (this.starting) {
          this.stopping = true;
          this.starting.reject(new Error(`a worker could not listen: ${msg.problem}`));
          this.starting = undefined;
        }
      }
    });
  }
}

/** The cluster primary: the control plane, with a data plane per worker. */
export async function runPrimary(config: GatewayConfig, log: Logger): Promise<void> {
  // The primary serves no traffic: its event loop is probed ten times less often (idle wake-ups).
  const metrics = new GatewayMetrics({ loopProbeMs: PRIMARY_PROBE_INTERVAL_MS });
  const source = sourceFor(config.source, { log });
  // The primary watches EndpointSlices for every worker: only it loads the Kubernetes client.
  const planes = new WorkerPlanes(config, log, metrics.registry, await endpointsFor(config, source, log));
  const state = new RouteState(config.compile);
  const { startControlPlane } = await import('./control-plane.js');
  const gateway = await startControlPlane(config, { log, source, state, metrics, planes });
  trimHeap();
  // The primary serves no public traffic: a pause now and then to give back V8's pooled pages costs no request.
  new HeapTrimmer(PRIMARY_TRIM_GROWTH_BYTES, PRIMARY_TRIM_MIN_INTERVAL_MS).start(PRIMARY_TRIM_CHECK_MS);
  // The primary's own series (the rollout counters) follow its table as the workers' follow theirs.
  seriesReaper(metrics, state, config.observe.seriesGraceMs).start();
  keepServing(log, metrics);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void gateway.shutdown(signal).then(() => process.exit(0)));
}

/** A cluster worker: one data plane, fed and asked by the primary over IPC. */
export async function runWorker(config: GatewayConfig, log: Logger): Promise<void> {
  // Endpoint routing on the Kubernetes source: the primary's watcher feeds this index (no Kubernetes client here).
  const endpoints = routesToEndpoints(config, sourceFor(config.source, { log })) ? new EndpointIndex() : undefined;
  const { LocalDataPlane } = await import('./local-plane.js');
  const plane = await LocalDataPlane.open(config, log, {
    endpoints,
    reusePort: process.env[REUSE_PORT_ENV] === '1',
    acceptChanged: (failing) => {
      if (process.connected) process.send?.({ type: 'worker-accept', failing: failing ?? null } satisfies ToPrimary);
    },
    ejected: (notice) => {
      if (process.connected) process.send?.({ type: 'worker-ejection', notice } satisfies ToPrimary);
    },
  });
  answerObserveRequests((names) => plane.gather(names));
  answerMemoryRequests((gc) => plane.memoryHere(gc));
  // Signals are the primary's to handle; a worker drains when the primary says so.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  process.on('message', (msg: ToWorker) => {
    if (msg?.type === 'sdep-events') plane.state.apply(msg.events);
    else if (msg?.type === 'endpoint-slices') endpoints?.apply(msg.changes);
    else if (msg?.type === 'endpoint-snapshot') endpoints?.reset(msg.slices);
    else if (msg?.type === 'sdep-snapshot') {
      const keep = new Set(msg.deployments.map(([k]) => k));
      const events: SourceEvent[] = msg.deployments.map(([key, deployment]) => ({ type: 'upsert', key, deployment }));
      for (const k of plane.state.current.deployments.keys()) if (!keep.has(k)) events.push({ type: 'delete', key: k });
      plane.state.apply(events);
    } else if (msg?.type === 'steer') plane.steer(fromWire(msg.overrides));
    else if (msg?.type === 'steer-keys') plane.steerKeys(msg.keys.map((k) => Buffer.from(k, 'hex')));
    else if (msg?.type === 'sgw-replicas') plane.replicaCount(msg.tally);
    else if (msg?.type === 'jwt-providers') applyJwtProviders(plane.state, plane.jwtKeys, msg.providers);
    else if (msg?.type === 'log-sinks') applyLogSinks(plane.state, plane.log?.sinks, msg.sinks);
    else if (msg?.type === 'ambassador-module') {
      applyAmbassadorModule(plane.state, config.module.base, msg.module);
      plane.ambassadorModule(msg.module);
    } else if (msg?.type === 'drain') void plane.drain(msg.graceMs).then(() => process.exit(0));
  });
  // Rollout and bandit counts go to the primary once a second (gateway/steer/controller.ts).
  setInterval(() => {
    void plane.takeCounts().then((counts) => {
      if (process.connected && Object.keys(counts).length > 0) process.send?.({ type: 'steer-counts', counts } satisfies ToPrimary);
    });
  }, STEER_COUNTS_MS).unref();
  // Flow demand goes to the primary on change and every second (gateway/keda/worker-demand.ts), when
  // something there reads it: KEDA's scaler, or the records in Redis that count the replicas.
  if (config.listen.kedaPort !== undefined || config.auth.redisUrl) reportDemandToPrimary(plane.demand);
  process.send?.({ type: 'worker-hello' } satisfies ToPrimary);
  let ports: PublicPorts;
  try {
    trimHeap();
    ports = await plane.start();
  } catch (err) {
    const problem = err instanceof Error ? err.message : String(err);
    log.error({ pid: process.pid, problem }, 'worker could not listen');
    process.send?.({ type: 'worker-failed', problem } satisfies ToPrimary, () => process.exit(1));
    return;
  }
  process.send?.({ type: 'worker-ready', ports } satisfies ToPrimary);
  log.debug({ pid: process.pid, ...ports }, 'worker listening');
  new IdleTrimmer(WORKER_IDLE_QUIET_MS, WORKER_IDLE_GROWTH_BYTES).start(WORKER_IDLE_CHECK_MS);
  keepServing(log, plane.metrics);
}
