/**
 * `seldon-gateway serve` in one process: a source feeds the route state, the data plane serves
 * it, the admin listener shows it. (With several workers, `cluster.ts` splits the same pieces:
 * the control plane in the primary, a data plane per worker.)
 */
import { pino, type Logger } from 'pino';
import { createAdminApp } from '../admin/server.js';
import { diagnostics, type PageSettings } from '../admin/page.js';
import type { AcceptFailure } from '../edge/accept-guard.js';
import type { GatewayConfig } from '../config.js';
import { LogBudget } from '../observe/log-budget.js';
import { DataPlane } from './data-plane.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import { OBSERVED_METRICS, TrafficHistory, metricsJson, observeDataPlane } from '../observe/observed.js';
import type { RouteState, TableChange } from './route-state.js';
import { findClusterAccess, type KubeLog } from '../../source/kubernetes/cluster-access.js';
import type { DeploymentEvents } from '../../source/kubernetes/events.js';
import type { EndpointWatcher } from '../../source/kubernetes/endpoints.js';
import { LazyKubeSource, deploymentEventsFor, endpointWatcherFor } from '../../source/kubernetes/kubernetes.js';
import { ManifestSource } from '../../source/manifest-source.js';
import type { DeploymentSource, SourceEvent, SourceSink } from '../../source/source.js';
import type { RouteTable } from '../../routing/types.js';

export interface Gateway {
  readonly port: number;
  readonly adminPort: number;
  readonly grpcPort: number | undefined;
  readonly oauthPort: number | undefined;
  readonly state: RouteState;
  readonly metrics: GatewayMetrics;
  ready(): boolean;
  /** Graceful: readiness false at once, stop accepting, finish in-flight work within the grace period. */
  shutdown(): Promise<void>;
  /** Immediate stop (tests). */
  close(): Promise<void>;
}

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'seldon-gateway' },
    // Never log credentials, whatever object a caller hands the logger.
    redact: { paths: ['*.authorization', '*.Authorization', '*.token', '*.access_token', '*.oauth_secret', 'headers.authorization'], censor: '[redacted]' },
  });
}

/**
 * The source the config asks for: the manifests if given; else the Kubernetes API when --kubernetes
 * is set or credentials are found (a kubeconfig, or the in-cluster service account).
 */
export function sourceFor(config: GatewayConfig, options: { environment?: NodeJS.ProcessEnv; log?: KubeLog } = {}): DeploymentSource {
  if (config.manifests) return new ManifestSource({ path: config.manifests });
  const access = findClusterAccess({ kubeconfig: config.kubeconfig, environment: options.environment ?? process.env });
  if (access) return new LazyKubeSource({ access, namespace: config.watchNamespace, ...(options.log ? { log: options.log } : {}) });
  if (config.kubernetes) throw new Error('--kubernetes: no kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config) and no in-cluster service account found');
  throw new Error('no SeldonDeployment source: pass --manifests <file-or-dir>, or --kubernetes with a kubeconfig (--kubeconfig or KUBECONFIG), or run in a cluster');
}

/** The source's name in logs and metrics (the `source` label). */
export function sourceName(config: GatewayConfig): 'manifests' | 'kubernetes' {
  return config.manifests ? 'manifests' : 'kubernetes';
}

/**
 * Warning Events on SeldonDeployments that are rejected or degraded (Kubernetes source only).
 * Call before the source starts, so the first table's rejections are posted too.
 */
export async function postEventsOnChanges(state: RouteState, source: LazyKubeSource, log: Logger): Promise<DeploymentEvents> {
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

/** Logs and metrics for each applied change; shared by the single process and the cluster primary. */
export function observeChanges(state: RouteState, metrics: GatewayMetrics, log: Logger): void {
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

/** A sink that applies source events to a state and tracks sync and problems. */
export class StateSink implements SourceSink {
  synced = false;
  readonly problems = new Map<string, string>();
  constructor(
    private readonly apply: (events: readonly SourceEvent[]) => void,
    private readonly log: Logger,
    private readonly metrics: GatewayMetrics,
    private readonly sourceName: string,
    private readonly onFirstSync: () => void = () => undefined,
  ) {}
  onEvents(events: readonly SourceEvent[]): void {
    if (events.length) this.apply(events);
  }
  onSynced(): void {
    if (this.synced) return;
    this.synced = true;
    this.log.info({ source: this.sourceName }, 'initial sync complete');
    this.onFirstSync();
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

/** The /readyz detail while a process cannot accept connections (edge/accept-guard.ts). */
export function notAccepting(reason: AcceptFailure, who = 'this process'): string {
  return `${who} cannot accept connections: ${reason === 'EMFILE' ? 'out of file descriptors (EMFILE)' : reason === 'ENFILE' ? 'the system is out of file descriptors (ENFILE)' : 'accept failed'}`;
}

/**
 * The last-resort policy for errors no handler caught (a bug, or input nothing else caught):
 * log them, count them, keep serving. A request-level guard (grpc/proxy.ts, rest/proxy.ts) fails
 * the one request; what still escapes is async work whose request is bounded by its timeouts.
 * Exiting instead would cut every other tenant's in-flight requests on this process, and hand
 * any client that can trigger it a crash loop (Envoy does not die on a bad request either).
 * Installed once the process serves: a failure while starting still ends the process.
 */
export function keepServing(log: Logger, metrics: GatewayMetrics): void {
  const budget = new LogBudget(5, 10_000);
  const report = (kind: 'uncaughtException' | 'unhandledRejection', err: unknown): void => {
    metrics.processErrors.labels(kind).inc();
    const skipped = budget.take();
    if (skipped !== undefined) log.error({ kind, err, ...(skipped ? { notLogged: skipped } : {}) }, 'error no handler caught: counted, the process keeps serving');
  };
  process.on('uncaughtException', (err) => report('uncaughtException', err));
  process.on('unhandledRejection', (reason) => report('unhandledRejection', reason));
}

/** What the diagnostics page says about the observation options. */
export function pageSettings(config: GatewayConfig, workers: number): PageSettings {
  return { predictorHeader: config.predictorHeader, shadowCompare: config.shadowCompare.enabled, accessLogSample: config.accessLogSample, workers };
}

/**
 * With the Kubernetes source and endpoint routing on, an EndpointSlice watcher (started) on the
 * same connection and scope; otherwise none, and upstreams are dialled by Service name.
 */
export async function endpointsFor(config: GatewayConfig, source: DeploymentSource, log: Logger): Promise<EndpointWatcher | undefined> {
  if (!config.endpointRouting || !(source instanceof LazyKubeSource)) return undefined;
  const watcher = await endpointWatcherFor(await source.load(), { log });
  watcher.start();
  return watcher;
}

export async function startGateway(config: GatewayConfig, options: { source?: DeploymentSource; logger?: Logger; accessLogger?: Logger } = {}): Promise<Gateway> {
  const log = options.logger ?? createLogger(config.logLevel);
  const source = options.source ?? sourceFor(config, { log });
  const endpoints = await endpointsFor(config, source, log);
  const plane = new DataPlane(config, undefined, log, endpoints);
  const { state, metrics } = plane;
  observeChanges(state, metrics, log);
  const observers = observeDataPlane(plane, config, options.accessLogger);
  const history = new TrafficHistory(async () => ({ metrics: [await metricsJson(metrics.registry, OBSERVED_METRICS)], disagreements: observers.comparer?.recent() ?? [] }));
  await history.start();
  let shuttingDown = false;
  const sink = new StateSink((events) => state.apply(events), log, metrics, sourceName(config));
  const events = source instanceof LazyKubeSource ? await postEventsOnChanges(state, source, log) : undefined;

  await plane.listen();
  const ready = (): boolean => sink.synced && !shuttingDown && plane.acceptFailing === undefined;
  const admin = createAdminApp({
    ready,
    readiness: () =>
      shuttingDown
        ? 'shutting down'
        : !sink.synced
          ? 'waiting for the initial sync'
          : plane.acceptFailing !== undefined
            ? notAccepting(plane.acceptFailing)
            : 'synced',
    table: () => state.current,
    appliedAt: () => state.lastAppliedAt,
    metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
    problems: () => sink.problems,
    diagnostics: async () => {
      const { window, disagreements } = await history.observe();
      return diagnostics({ table: state.current, appliedAt: state.lastAppliedAt, problems: sink.problems, window, disagreements, settings: pageSettings(config, 1) });
    },
  });
  await admin.listen({ port: config.adminPort, host: config.adminHost });
  const adminAddr = admin.server.address();
  const adminPort = typeof adminAddr === 'object' && adminAddr ? adminAddr.port : config.adminPort;
  await source.start(sink);
  log.info({ port: plane.port, adminPort, grpcPort: plane.grpcPort, oauthPort: plane.oauthPort, workers: 1 }, 'seldon-gateway listening');

  let stopped: Promise<void> | undefined;
  const stop = (graceful: boolean): Promise<void> =>
    (stopped ??= (async () => {
      shuttingDown = true;
      history.stop();
      await source.stop();
      events?.stop();
      await endpoints?.stop();
      if (graceful) await plane.drain(config.gracePeriodMs);
      else await plane.close();
      await admin.close();
      observers.flush();
    })());
  return {
    port: plane.port,
    adminPort,
    grpcPort: plane.grpcPort,
    oauthPort: plane.oauthPort,
    state,
    metrics,
    ready,
    shutdown: () => stop(true),
    close: () => stop(false),
  };
}
