/**
 * The control plane of `seldon-gateway serve`: the one composition root, whatever serves traffic.
 *
 * It owns the SeldonDeployment source and the sink it feeds, the route state and its change
 * observers (logs, metrics, Kubernetes Events), the traffic history, the admin listener and every
 * one of its data sources (readiness, routes, problems, metrics, diagnostics), and the shutdown
 * sequence. Where the data plane runs is the one thing it does not decide: it drives `DataPlanes`,
 * which is one data plane in this process (serve.ts, `local-plane.ts`) or one per cluster worker,
 * reached over IPC (cluster.ts). So the code the in-process tests exercise is the code production
 * runs; only the transport to the data plane differs.
 *
 * Start: change observers, traffic baseline, admin listener, the source, then the data planes
 * listen. Shutdown: readiness false at once, the source stops, the data planes drain within the
 * grace period, the admin listener closes.
 */
import { ProviderKeySets } from '../auth/jwt-keys.js';
import type { JwtProviderConfig } from '../config/jwt.js';
import { JwtProvidersFile, applyJwtProviders } from './jwt-providers-file.js';
import { watchAmbassadorModule, type ModulePlanes } from './ambassador-module-file.js';
// Payload logging's modules (gateway/payload-log/) load only with --log-sinks (`import()` in controlPlaneLogSinks).
import { controlPlaneLogSinks, type LogSinkPlanes } from './log-sinks-file.js';
import type { Logger } from 'pino';
import { createAdminApp } from '../admin/server.js';
import { AdminToken } from '../admin/token.js';
import { diagnostics, type PageSettings } from '../admin/page-model.js';
import { FLOW_METRICS, flowViews } from '../observe/flow-metrics.js';
import type { GatewayConfig } from '../config/parse.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { ProcessMemory } from '../observe/process-memory.js';
import { OBSERVED_METRICS, TrafficHistory, WINDOW_SAMPLES, aggregatedText, type Gathered } from '../observe/observed.js';
import { routeWeights } from '../observe/route-gauges.js';
import { sourceName } from './sources.js';
import type { RouteState, TableChange } from './route-state.js';
import type { DeploymentEvents } from '../../source/kubernetes/events.js';
import type { EjectionNotice } from '../upstream/health-reports.js';
import type { ReplicaTally } from '../flow/demand.js';
import { EJECTION_METRICS, ejectedEndpoints } from '../observe/ejections-view.js';
import { LazyKubeSource, deploymentEventsFor } from '../../source/kubernetes/kubernetes.js';
import type { DeploymentSource, SourceEvent, SourceSink } from '../../source/source.js';
import type { RouteTable } from '../../routing/types.js';
import { steerGroup, type SteerOverride } from '../../routing/steering/shares.js';
import type { SteerCounts } from '../observe/steer-tally.js';
import { registerSteerMetrics } from '../steer/metrics.js';
import { RedisConnection, ackTimeoutMs } from '../auth/redis.js';
import { SteerController } from '../steer/controller.js';
import { steeringJson } from '../steer/describe.js';
import { loadKeys } from '../steer/keys.js';
import type { RewardSink } from '../steer/bandit-edge.js';
import { MemorySteerStore, RedisSteerStore, type SteerStore } from '../steer/store.js';
import type { FlowDemandSource } from '../flow/demand.js';
import { startFlowDemand, type FlowDemandService } from '../keda/flow-demand.js';

/** The public ports the data planes listen on (the ones the kernel chose, for port 0). */
export interface PublicPorts {
  readonly port: number;
  readonly grpcPort: number | undefined;
  readonly oauthPort: number | undefined;
}

/** Whether the data planes can serve traffic now, and the /readyz detail that says so. */
export interface PlanesReadiness {
  readonly ready: boolean;
  readonly detail: string;
}

/**
 * Where traffic is served, as the control plane sees it: one data plane in this process, or one
 * per cluster worker. The control plane calls nothing else.
 */
export interface DataPlanes extends LogSinkPlanes, ModulePlanes {
  /** Processes that serve traffic (the diagnostics page says how many). */
  readonly processes: number;
  /** Listen on the public ports; resolves once every data plane does, rejects if one cannot. */
  start(): Promise<PublicPorts>;
  /** A batch of source events the control plane has applied to its own table. */
  apply(events: readonly SourceEvent[]): void;
  /** Not ready while a data plane is not listening or cannot accept connections. */
  readiness(): PlanesReadiness;
  /** Every process's metrics (`names` only, when given), the control plane's own included, and kept shadow disagreements. */
  gather(names?: readonly string[]): Promise<Gathered>;
  /** What each process holds (observe/process-memory.ts), after forced collections when `gc`: the control plane's own first. */
  memory(gc: boolean): Promise<ProcessMemory[]>;
  /** What every data plane counted for rollouts and bandits since the last call (observe/steer-tally.ts). */
  takeCounts(): Promise<SteerCounts>;
  /** Every data plane applies these live shares of steered deployments from now on (gateway/steer/). */
  steer(overrides: ReadonlyMap<string, SteerOverride>): void;
  /** Every data plane signs and checks what clients send back (tokens, sticky cookies) with these keys (gateway/steer/keys.ts). */
  steerKeys(keys: readonly Buffer[]): void;
  /** This process's JWT key sets when its data plane runs here (one process): /readyz and the page read them; undefined in a cluster primary. */
  readonly jwtKeys: ProviderKeySets | undefined;
  /** Every data plane takes the --jwt-providers file as it now reads (process/jwt-providers-file.ts). */
  jwtProviders(providers: readonly JwtProviderConfig[]): void;
  /** Without Redis: where the data planes record bandit rewards (the control plane's memory store). */
  rewardsTo(sink: RewardSink): void;
  /** Where every data plane's endpoint ejections go (a Warning Event each): set once by the control plane. */
  onEjection(listener: (notice: EjectionNotice) => void): void;
  /** This replica's flow demand: every data plane's flow controller, summed (gateway/keda/). */
  readonly demand: FlowDemandSource;
  /** The replicas as counted now: every data plane splits its fixed flow limits and its local rate-limit shares by it. */
  replicaCount(tally: ReplicaTally): void;
  /** Stop accepting, finish in-flight work within `graceMs`, then stop (flushing what they log). */
  drain(graceMs: number): Promise<void>;
  /** Stop at once. */
  close(): Promise<void>;
}

/** A running gateway: what `startGateway` returns and what the cluster primary runs. */
export interface Gateway extends PublicPorts {
  readonly adminPort: number;
  /** KEDA's external scaler (--keda-port), when set. */
  readonly kedaPort: number | undefined;
  readonly state: RouteState;
  readonly metrics: GatewayMetrics;
  /** Rollouts and bandits: this replica's view and its decisions (gateway/steer/). */
  readonly steering: SteerController;
  ready(): boolean;
  /** Graceful: readiness false at once, stop accepting, finish in-flight work within the grace period. `why` is logged (a signal). */
  shutdown(why?: string): Promise<void>;
  /** Immediate stop (tests). */
  close(): Promise<void>;
}

export interface ControlPlaneParts {
  readonly log: Logger;
  readonly source: DeploymentSource;
  /** The table source events are applied to (in one process, the data plane's own). */
  readonly state: RouteState;
  /** This process's metrics (in one process, the data plane's too). */
  readonly metrics: GatewayMetrics;
  readonly planes: DataPlanes;
}

/** The admin token of --admin-token-file, if given (read now: an unusable file is an error). */
async function loadAdminToken(file: string | undefined, log: Logger): Promise<AdminToken | undefined> {
  return file === undefined ? undefined : AdminToken.load(file, { log });
}

/** 127.0.0.0/8, ::1 and localhost: only this host can reach an address like these. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** How long a start waits for the replicas' shared steering key from Redis (its connect timeout, and a little). */
const STEER_KEY_WAIT_MS = 3000;

/**
 * Warning Events on SeldonDeployments that are rejected or degraded (Kubernetes source only).
 * Called before the source starts, so the first table's rejections are posted too.
 */
async function postEventsOnChanges(state: RouteState, source: LazyKubeSource, log: Logger): Promise<DeploymentEvents> {
  const events = await deploymentEventsFor(await source.load(), log);
  state.onChange((_table, change) => {
    for (const [key, report] of change.reports) {
      const slash = key.indexOf('/');
      if (report) events.report(report);
      else events.forget(key.slice(0, slash), key.slice(slash + 1));
    }
  });
  return events;
}

/** At most one ejection Event per endpoint of a predictor per this long (every worker ejects on its own). */
const EJECTION_EVENT_MS = 60_000;

/** Endpoint ejections as Warning Events on their SeldonDeployment (`EndpointEjected`), rate-limited per endpoint. */
function ejectionEvents(events: DeploymentEvents, now: () => number = Date.now): (n: EjectionNotice) => void {
  const last = new Map<string, number>();
  return (n) => {
    const key = `${n.namespace}/${n.deployment}/${n.predictor}/${n.address}`;
    const t = now();
    if (t - (last.get(key) ?? -Infinity) < EJECTION_EVENT_MS) return;
    last.set(key, t);
    if (last.size > 10_000) last.clear();
    events.post(n.namespace, n.deployment, 'Warning', 'EndpointEjected', n.message);
  };
}

/**
 * --jwt-providers while serving: the file watched, each change applied to this process's table and
 * key sets and sent to every data plane. Undefined without the flag.
 */
function jwtProvidersOf(config: GatewayConfig, state: RouteState, planes: DataPlanes, metrics: GatewayMetrics, log: Logger): { readonly keys: ProviderKeySets; close(): void } | undefined {
  if (config.jwtProvidersFile === undefined) return undefined;
  const own = planes.jwtKeys === undefined ? new ProviderKeySets(config.jwtProviders, { now: Date.now, log }) : undefined;
  if (own) void own.start();
  const keys = planes.jwtKeys ?? own!;
  const file = new JwtProvidersFile(
    config.jwtProvidersFile,
    config.jwtProviders,
    (providers) => {
      applyJwtProviders(state, keys, providers);
      planes.jwtProviders(providers);
    },
    { log, metrics },
  );
  file.start();
  return {
    keys,
    close: () => {
      file.close();
      own?.close();
    },
  };
}

/** Logs and metrics for each applied change. */
function observeChanges(state: RouteState, metrics: GatewayMetrics, log: Logger): void {
  const onChange = (table: RouteTable, change: TableChange): void => {
    metrics.generation.set(table.generation);
    metrics.lastApplied.set(Date.now() / 1000);
    const counts = { accepted: 0, degraded: 0, rejected: 0, skipped: 0 };
    for (const r of table.deployments.values()) counts[r.state]++;
    for (const [state, n] of Object.entries(counts)) metrics.deployments.labels(state).set(n);
    log.info({ generation: change.generation, upserted: change.upserted, deleted: change.deleted, groups: table.groups.length }, 'route table updated');
    for (const [key, r] of change.reports) {
      if (!r) continue;
      if (r.state === 'rejected') log.warn({ deployment: key, state: r.state, reasons: r.reasons }, 'SeldonDeployment rejected');
      else if (r.state === 'degraded') log.warn({ deployment: key, state: r.state, reasons: r.reasons }, 'SeldonDeployment degraded');
      else log.info({ deployment: key, state: r.state, reasons: r.reasons }, `SeldonDeployment ${r.state}`);
    }
  };
  state.onChange(onChange);
}

/** A sink that applies source events (`apply`) and tracks sync and problems. */
export class StateSink implements SourceSink {
  synced = false;
  readonly problems = new Map<string, string>();
  constructor(
    private readonly apply: (events: readonly SourceEvent[]) => void,
    private readonly log: Logger,
    private readonly metrics: GatewayMetrics,
    private readonly sourceName: string,
  ) {}
  onEvents(events: readonly SourceEvent[]): void {
    if (events.length) this.apply(events);
  }
  onSynced(): void {
    if (this.synced) return;
    this.synced = true;
    this.log.info({ source: this.sourceName }, 'initial sync complete');
  }
  onProblem(where: string, message: string | null): void {
    if (message === null) {
      if (this.problems.delete(where)) this.log.info({ where }, 'source problem cleared');
    } else {
      this.problems.set(where, message);
      this.log.warn({ where, problem: message }, 'source problem');
    }
  }
  onConnected(connected: boolean): void {
    this.metrics.sourceConnected.labels(this.sourceName).set(connected ? 1 : 0);
    if (connected) this.log.info({ source: this.sourceName, connected }, 'source connected');
    else this.log.warn({ source: this.sourceName, connected }, 'source disconnected: routes keep serving from the last table');
  }
  /** A full relist (after 410 Gone or a reconnect), for sources that have one. */
  onResync(): void {
    this.metrics.resyncs.labels(this.sourceName).inc();
    this.log.info({ source: this.sourceName }, 'source resynced');
  }
}

/** Start the gateway around `parts.planes`: see the header for the order. Rejects (having stopped what started) if a data plane cannot listen. */
export async function startControlPlane(config: GatewayConfig, parts: ControlPlaneParts): Promise<Gateway> {
  const { log, source, state, metrics, planes } = parts;
  // First: a token file that cannot be used ends the start before anything listens.
  const adminToken = await loadAdminToken(config.listen.adminTokenFile, log).catch(async (err: unknown) => {
    await planes.close().catch(() => undefined);
    throw err;
  });
  observeChanges(state, metrics, log);
  const events = source instanceof LazyKubeSource ? await postEventsOnChanges(state, source, log) : undefined;
  if (events) planes.onEjection(ejectionEvents(events));
  const sink = new StateSink(
    (batch) => {
      state.apply(batch);
      planes.apply(batch);
    },
    log,
    metrics,
    sourceName(config.source),
  );
  let shuttingDown = false;
  // Rollouts and bandits: decided here, once per replica, never on a worker (gateway/steer/).
  const steerRedis = config.auth.redisUrl ? new RedisConnection(config.auth.redisUrl, log, ackTimeoutMs(config.auth.redisTimeoutMs)) : undefined;
  const steerStore: SteerStore = steerRedis ? new RedisSteerStore(steerRedis) : new MemorySteerStore();
  const steerMetrics = registerSteerMetrics(metrics.registry);
  const steering = new SteerController({
    store: steerStore,
    planes,
    table: () => state.current,
    log,
    observers: {
      event: (ns, name, type, reason, message) => events?.post(ns, name, type, reason, message),
      transition: (deployment, canary, t) => steerMetrics.transition(deployment, canary, t),
      judged: (deployment, canary, checks) => steerMetrics.judged(deployment, canary, checks),
    },
  });
  steerMetrics.follow(steering);
  // The weights the pick uses now: the table's, with the live shares the data planes were last sent.
  metrics.weighRoutes(
    routeWeights(
      () => state.current,
      () => steering.overrides(),
    ),
  );
  if (!steerStore.shared) planes.rewardsTo(steerStore);
  let stopKeys = (): void => undefined;
  let flowDemand: FlowDemandService | undefined;
  const sampleMs = config.listen.adminPageSampleMs;
  const history = new TrafficHistory(() => planes.gather(OBSERVED_METRICS), sampleMs, sampleMs * WINDOW_SAMPLES);
  const settings: PageSettings = {
    predictorHeader: config.observe.predictorHeader,
    shadowCompare: config.observe.shadowCompare.enabled,
    accessLogSample: config.observe.accessLog.enabled ? config.observe.accessLog.sample : 0,
    workers: planes.processes,
  };
  const ready = (): boolean => sink.synced && !shuttingDown && planes.readiness().ready;
  // The JWT providers' keys as this replica reaches them, for /readyz and the page: the data plane's in one
  // process; a cluster primary fetches its own (each worker holds and refreshes its set).
  const jwt = jwtProvidersOf(config, state, planes, metrics, log);
  // --ambassador-module: a change recompiles every process's table under its route defaults.
  const moduleFile = watchAmbassadorModule(config, { state, planes, metrics, log });
  // Payload logging's shippers, one per replica, here (gateway/payload-log/).
  const logSinks = config.logSinksFile === undefined ? undefined : await controlPlaneLogSinks(config.logSinksFile, config, { state, planes, redis: steerRedis, metrics, log });
  const admin = createAdminApp(
    {
      ready,
      readiness: () => (shuttingDown ? 'shutting down' : !sink.synced ? 'waiting for the initial sync' : planes.readiness().detail),
      ...(steerRedis ? { redis: () => steerRedis.status() } : {}),
      ...(jwt ? { jwtKeys: () => jwt.keys.states() } : {}),
      table: () => state.current,
      appliedAt: () => state.lastAppliedAt,
      metrics: async () => ({ contentType: metrics.registry.contentType, body: await aggregatedText(await planes.gather()) }),
      problems: () => sink.problems,
      steering: () => steeringJson(steering.rolloutViews(), steering.banditViews()),
      steer: (g) => steerGroup(g, steering.overrides()),
      ejections: async () => ejectedEndpoints((await planes.gather(EJECTION_METRICS)).metrics),
      memory: (gc) => planes.memory(gc),
      diagnostics: async () => {
        const { window, disagreements } = await history.observe();
        const [flow, ejected, logged] = await Promise.all([planes.gather(FLOW_METRICS), planes.gather(EJECTION_METRICS), logSinks ? planes.gather(logSinks.metricNames) : undefined]);
        return diagnostics({
          flow: flowViews(flow.metrics),
          ejections: ejectedEndpoints(ejected.metrics),
          table: state.current,
          appliedAt: state.lastAppliedAt,
          problems: sink.problems,
          window,
          disagreements,
          settings: {
            ...settings,
            redis: steerRedis?.status(),
            jwtKeys: jwt?.keys.states(),
            logSinks: logged && logSinks?.states(logged.metrics),
          },
          steering: steeringJson(steering.rolloutViews(), steering.banditViews()),
          steer: (g) => steerGroup(g, steering.overrides()),
        });
      },
    },
    adminToken ? { token: adminToken } : {},
  );

  let stopped: Promise<void> | undefined;
  const stop = (graceful: boolean, why: string | undefined): Promise<void> =>
    (stopped ??= (async () => {
      shuttingDown = true;
      log.info({ ...(why ? { reason: why } : {}), graceful, gracePeriodMs: config.process.gracePeriodMs }, 'shutting down');
      history.stop();
      stopKeys();
      await flowDemand?.stop();
      await steering.stop();
      steerStore.close();
      steerRedis?.close();
      jwt?.close();
      moduleFile?.close();
      logSinks?.close();
      await source.stop();
      events?.stop();
      if (graceful) await planes.drain(config.process.gracePeriodMs);
      else await planes.close();
      await admin.close();
      log.info('stopped');
    })());

  let ports: PublicPorts;
  try {
    // A key file that cannot be used ends the start, as a bad token file does.
    const keys = loadKeys({ file: config.auth.steeringKeyFile, redis: steerRedis }, (k) => planes.steerKeys(k));
    stopKeys = keys.stop;
    // The baseline sample, before any traffic (and before any worker exists to be asked).
    await history.start();
    await admin.listen({ port: config.listen.adminPort, host: config.listen.adminHost });
    // The source first: a data plane starts listening with the deployments known so far (a
    // worker gets them when it says hello), not with an empty table.
    await source.start(sink);
    // With Redis, the replicas' shared key before the first token is signed (keys.ts), within the store's deadline.
    await Promise.race([keys.first, new Promise((resolve) => setTimeout(resolve, STEER_KEY_WAIT_MS).unref())]);
    ports = await planes.start();
    steering.start();
    // Demand for KEDA and the replica count, once the data planes report (gateway/keda/).
    flowDemand = await startFlowDemand({
      planes,
      redis: steerRedis,
      kedaPort: config.listen.kedaPort,
      host: config.listen.host,
      metrics,
      log,
      timeoutMs: config.auth.redisTimeoutMs,
    });
  } catch (err) {
    await stop(false, 'could not start').catch(() => undefined);
    throw err;
  }
  const address = admin.server.address();
  const adminPort = typeof address === 'object' && address ? address.port : config.listen.adminPort;
  log.info({ ...ports, adminPort, kedaPort: flowDemand.kedaPort, workers: planes.processes, adminToken: adminToken !== undefined }, 'seldon-gateway listening');
  if (!adminToken && !isLoopback(config.listen.adminHost)) {
    log.warn(
      { adminHost: config.listen.adminHost, adminPort },
      'the admin port answers /routes, /metrics and /diagnostics to anyone who reaches it: set --admin-token-file, or keep it behind a NetworkPolicy',
    );
  }
  return {
    ...ports,
    adminPort,
    kedaPort: flowDemand.kedaPort,
    state,
    metrics,
    steering,
    ready,
    shutdown: (why) => stop(true, why),
    close: () => stop(false, undefined),
  };
}
