/**
 * `seldon-gateway serve` in one process: a source feeds the route state, the data plane serves
 * it, the admin listener shows it. (With several workers, `cluster.ts` splits the same pieces:
 * the control plane in the primary, a data plane per worker.)
 */
import { pino, type Logger } from 'pino';
import { createAdminApp } from './admin.js';
import type { GatewayConfig } from './config.js';
import { DataPlane } from './data-plane.js';
import type { GatewayMetrics } from './metrics.js';
import type { RouteState, TableChange } from './route-state.js';
import { ManifestSource } from '../k8s/manifest-source.js';
import type { DeploymentSource, SourceEvent, SourceSink } from '../k8s/source.js';
import type { RouteTable } from '../routing/types.js';

export interface Gateway {
  readonly port: number;
  readonly adminPort: number;
  readonly grpcPort: number | undefined;
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

export function sourceFor(config: GatewayConfig): DeploymentSource {
  if (config.manifests) return new ManifestSource({ path: config.manifests });
  throw new Error('no SeldonDeployment source: pass --manifests <file-or-dir> (the Kubernetes watch comes with --kubernetes)');
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
    this.log.info({ source: this.sourceName, connected }, connected ? 'source connected' : 'source disconnected');
  }
}

export async function startGateway(config: GatewayConfig, options: { source?: DeploymentSource; logger?: Logger } = {}): Promise<Gateway> {
  const log = options.logger ?? createLogger(config.logLevel);
  const plane = new DataPlane(config);
  const { state, metrics } = plane;
  observeChanges(state, metrics, log);
  let shuttingDown = false;
  const source = options.source ?? sourceFor(config);
  const sink = new StateSink((events) => state.apply(events), log, metrics, config.manifests ? 'manifests' : 'kubernetes');

  await plane.listen();
  const admin = createAdminApp({
    ready: () => sink.synced && !shuttingDown,
    readiness: () => (shuttingDown ? 'shutting down' : sink.synced ? 'synced' : 'waiting for the initial sync'),
    table: () => state.current,
    appliedAt: () => state.lastAppliedAt,
    metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
    problems: () => sink.problems,
  });
  await admin.listen({ port: config.adminPort, host: config.adminHost });
  const adminAddr = admin.server.address();
  const adminPort = typeof adminAddr === 'object' && adminAddr ? adminAddr.port : config.adminPort;
  await source.start(sink);
  log.info({ port: plane.port, adminPort, grpcPort: plane.grpcPort, workers: 1 }, 'seldon-gateway listening');

  let stopped: Promise<void> | undefined;
  const stop = (graceful: boolean): Promise<void> =>
    (stopped ??= (async () => {
      shuttingDown = true;
      await source.stop();
      if (graceful) await plane.drain(config.gracePeriodMs);
      else await plane.close();
      await admin.close();
    })());
  return {
    port: plane.port,
    adminPort,
    grpcPort: plane.grpcPort,
    state,
    metrics,
    ready: () => sink.synced && !shuttingDown,
    shutdown: () => stop(true),
    close: () => stop(false),
  };
}
