/**
 * One data plane in this process, with what it needs around it: its metrics, its observers
 * (predictor header, access log, shadow comparison) and, with endpoint routing, its own
 * EndpointSlice watcher. The single process hands it to the control plane as its `DataPlanes`
 * (serve.ts); each cluster worker runs one and answers the primary over IPC (cluster.ts).
 */
import cluster from 'node:cluster';
import type { Logger } from 'pino';
import type { AcceptFailure } from '../edge/accept-guard.js';
import type { GatewayConfig } from '../config/parse.js';
import type { AccessSink } from '../observe/access-log.js';
import type { Clock } from '../upstream/clock.js';
import { DataPlane } from './data-plane.js';
import { GatewayMetrics } from '../observe/metrics.js';
import { dataPlaneObservers, metricsJson, type DataPlaneObservers, type Gathered } from '../observe/observed.js';
import { readyEndpointCounts } from '../observe/route-gauges.js';
import { seriesReaper, type SeriesReaper } from '../observe/series-reaper.js';
import { processMemory, type ProcessMemory } from '../observe/process-memory.js';
import type { RouteState } from './route-state.js';
import type { ProviderKeySets } from '../auth/jwt-keys.js';
import type { AmbassadorModule } from '../../routing/emissary/module.js';
import type { JwtProviderConfig } from '../config/jwt.js';
import type { SteerCounts } from '../observe/steer-tally.js';
import type { RewardSink } from '../steer/bandit-edge.js';
import type { SteerOverride } from '../../routing/steering/shares.js';
import { notAccepting } from '../edge/accept-guard.js';
import type { DataPlanes, PlanesReadiness, PublicPorts } from './control-plane.js';
import type { EndpointSource } from '../upstream/pools.js';
import type { WatchedEndpoints } from '../observe/route-gauges.js';
import type { EjectionNotice } from '../upstream/health-reports.js';
import type { SourceEvent } from '../../source/source.js';
import type { FlowDemandSource } from '../flow/demand.js';
import { SettableReplicaCount } from '../keda/worker-demand.js';
import type { ReplicaTally } from '../flow/demand.js';
import type { LogSinkConfig } from '../config/log-sinks.js';
// Payload logging (gateway/payload-log/) loads only with --log-sinks: `import()` in `open`.
import type { PlaneLog } from '../payload-log/plane.js';
import type { SinkView } from '../payload-log/sinks.js';

/** Ready endpoints per Service, and when they change: a process's own EndpointSlice watcher, or a cluster worker's index the primary feeds. */
export type PlaneEndpoints = EndpointSource & WatchedEndpoints & { stop(): void | Promise<void> };

export interface LocalPlaneOptions {
  /** With endpoint routing on the Kubernetes source: the endpoints this data plane balances across (`endpointsFor`, or a worker's index). */
  readonly endpoints?: PlaneEndpoints | undefined;
  /** Where access log lines go instead of stdout (tests). */
  readonly accessSink?: AccessSink;
  /** Listen with SO_REUSEPORT (a cluster worker, where Node supports it). */
  readonly reusePort?: boolean;
  /** Told when accepting starts or stops failing (a cluster worker tells the primary). */
  readonly acceptChanged?: (failing: AcceptFailure | undefined) => void;
  /** The clock OAuth token expiry is read from (tests). */
  readonly now?: () => number;
  /** The request path's time and timers (flow-control waits, route timeouts): tests drive them; the real one otherwise. */
  readonly clock?: Clock;
  /** Where this data plane's endpoint ejections go (a cluster worker tells the primary); default: `onEjection`'s listener. */
  readonly ejected?: (notice: EjectionNotice) => void;
}

export class LocalDataPlane implements DataPlanes {
  readonly processes = 1;

  private constructor(
    private readonly plane: DataPlane,
    private readonly observers: DataPlaneObservers,
    private readonly endpoints: PlaneEndpoints | undefined,
    /** The replicas as the control plane last counted them (fixed flow limits, local rate-limit shares). */
    private readonly replicas: SettableReplicaCount,
    /** Where ejections go, once the control plane says (`onEjection`). */
    private readonly ejections: { listener?: (notice: EjectionNotice) => void },
    /** Removes the series of deployments and predictors gone from this plane's table (one per registry: a single process's control plane shares it). */
    private readonly reaper: SeriesReaper,
    /** With --log-sinks: payload logging's writers (gateway/payload-log/). */
    readonly log: PlaneLog | undefined,
  ) {}

  /** This data plane's flow demand: its flow controller's (reported to KEDA, gateway/keda/). */
  get demand(): FlowDemandSource {
    return this.plane.flow;
  }

  static async open(config: GatewayConfig, log: Logger, options: LocalPlaneOptions): Promise<LocalDataPlane> {
    const endpoints = options.endpoints;
    const metrics = new GatewayMetrics();
    const payload =
      config.logSinksFile === undefined
        ? undefined
        : new (await import('../payload-log/plane.js')).PlaneLog({ logSinks: config.logSinks, auth: config.auth, randomSeed: config.upstream.randomSeed }, metrics.registry, log);
    const observers = dataPlaneObservers(config.observe, metrics, options.accessSink, log, payload?.logger);
    // The control plane sets the replica count (gateway/keda/): the flow controller splits fixed limits by it, a rate limit decided locally takes its share.
    const replicas = new SettableReplicaCount(config.process.workers);
    const ejections: { listener?: (notice: EjectionNotice) => void } = {};
    const plane = new DataPlane(config, metrics, log, endpoints, {
      ejected: options.ejected ?? ((n) => ejections.listener?.(n)),
      replicas,
      ...(options.reusePort !== undefined ? { reusePort: options.reusePort } : {}),
      ...(options.acceptChanged ? { changed: options.acceptChanged } : {}),
      observers,
      now: options.now,
      clock: options.clock,
    });
    if (endpoints) metrics.countReadyEndpoints(readyEndpointCounts(() => plane.state.current, endpoints));
    const reaper = seriesReaper(metrics, plane.state, config.observe.seriesGraceMs);
    return new LocalDataPlane(plane, observers, endpoints, replicas, ejections, reaper, payload);
  }

  /** The table this data plane routes on. */
  get state(): RouteState {
    return this.plane.state;
  }

  get metrics(): GatewayMetrics {
    return this.plane.metrics;
  }

  async start(): Promise<PublicPorts> {
    this.reaper.start();
    await this.plane.listen();
    return { port: this.plane.port, grpcPort: this.plane.grpcPort, oauthPort: this.plane.oauthPort };
  }

  /** Nothing to do: in one process the control plane applies events to this data plane's own table. */
  apply(_events: readonly SourceEvent[]): void {}

  get jwtKeys(): ProviderKeySets | undefined {
    return this.plane.jwt?.providers;
  }

  /** Nothing to do: in one process the control plane applies the providers to this data plane's own table and key sets. */
  jwtProviders(_providers: readonly JwtProviderConfig[]): void {}

  /**
   * In one process the control plane applies the Module's route defaults to this data plane's own table:
   * its data-plane settings only (at start they are in `config.module.module`): ip_allow / ip_deny and
   * server_name, each replaced whole (a Module without one removes it).
   */
  ambassadorModule(module: AmbassadorModule): void {
    this.plane.ipFilter?.replace(module.ipPolicy);
    this.plane.serverName.value = module.serverName;
  }

  /** In one process the control plane applies the sink names to this data plane's own table: the writers only. */
  logSinks(sinks: readonly LogSinkConfig[]): void {
    this.log?.sinks.apply(sinks);
  }

  /** This process's writers as the admin page shows them (a cluster's primary gathers none: its workers' state is in their metrics). */
  logViews(): SinkView[] {
    return this.log?.views() ?? [];
  }

  readiness(): PlanesReadiness {
    const failing = this.plane.acceptFailing;
    return failing === undefined ? { ready: true, detail: 'synced' } : { ready: false, detail: notAccepting(failing) };
  }

  async memory(gc: boolean): Promise<ProcessMemory[]> {
    return [this.memoryHere(gc)];
  }

  /** This process's memory, with the upstreams its data plane keeps. */
  memoryHere(gc: boolean): ProcessMemory {
    const upstreams = { rest: this.plane.upstreams.size, grpc: this.plane.grpc.upstreams.size };
    return processMemory(cluster.isWorker ? 'worker' : 'process', gc, upstreams);
  }

  async takeCounts(): Promise<SteerCounts> {
    return this.plane.metrics.steering.take();
  }

  steer(overrides: ReadonlyMap<string, SteerOverride>): void {
    this.plane.steering.set(overrides);
  }

  steerKeys(keys: readonly Buffer[]): void {
    this.plane.sticky.setKeys(keys);
    this.plane.bandits.setKeys(keys);
  }

  rewardsTo(sink: RewardSink): void {
    this.plane.rewardsTo(sink);
  }

  replicaCount(tally: ReplicaTally): void {
    this.replicas.set(tally);
  }

  onEjection(listener: (notice: EjectionNotice) => void): void {
    this.ejections.listener = listener;
  }

  async gather(names?: readonly string[]): Promise<Gathered> {
    return { metrics: [await metricsJson(this.plane.metrics.registry, names)], disagreements: this.observers.comparer?.recent() ?? [] };
  }

  async drain(graceMs: number): Promise<void> {
    this.reaper.stop();
    await this.endpoints?.stop();
    await this.plane.drain(graceMs);
    await this.log?.drain(graceMs);
    await this.observers.flush();
  }

  async close(): Promise<void> {
    this.reaper.stop();
    await this.endpoints?.stop();
    await this.plane.close();
    this.log?.close();
    await this.observers.flush();
  }
}
