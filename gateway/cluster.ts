/**
 * Several worker processes (Node `cluster`), so the gateway uses every core.
 *
 * The primary is the control plane: it runs the SeldonDeployment source and the admin port, and
 * sends every batch of source events to each worker; a worker that (re)starts first gets the
 * whole current set. Each worker compiles the same table from the same objects (compilation
 * is pure) and serves the shared public port. Metrics are gathered from the workers and summed
 * (observed-cluster.ts), for /metrics and the diagnostics page. SIGTERM
 * or SIGINT to the primary turns readiness off, asks every worker to drain, and exits 0 once
 * they have (or after the grace period).
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { createAdminApp } from './admin.js';
import { diagnostics } from './admin-page.js';
import type { GatewayConfig } from './config.js';
import { DataPlane } from './data-plane.js';
import { GatewayMetrics } from './metrics.js';
import { serveStoresToWorkers } from './oauth-stores.js';
import { OBSERVED_METRICS, TrafficHistory, observeDataPlane } from './observed.js';
import { aggregatedText, answerObserveRequests, gatherCluster } from './observed-cluster.js';
import { RouteState } from './route-state.js';
import { StateSink, endpointsFor, observeChanges, pageSettings, postEventsOnChanges, sourceFor } from './serve.js';
import { LazyKubeSource } from '../k8s/kubernetes.js';
import type { SourceEvent } from '../k8s/source.js';
import type { SeldonDeployment } from '../routing/types.js';

type ToWorker = { type: 'sdep-events'; events: readonly SourceEvent[] } | { type: 'sdep-snapshot'; deployments: [string, SeldonDeployment][] } | { type: 'drain'; graceMs: number };
type ToPrimary = { type: 'worker-hello' } | { type: 'worker-ready'; port: number };

export async function runPrimary(config: GatewayConfig, log: Logger): Promise<void> {
  const metrics = new GatewayMetrics();
  const state = new RouteState(config.compile);
  observeChanges(state, metrics, log);
  const current = new Map<string, SeldonDeployment>();
  const readyWorkers = new Set<number>();
  let adminPort = config.adminPort;
  let shuttingDown = false;
  const send = (w: Worker, msg: ToWorker): void => {
    if (w.isConnected()) w.send(msg);
  };
  const broadcast = (msg: ToWorker): void => {
    for (const w of Object.values(cluster.workers ?? {})) if (w) send(w, msg);
  };
  const fork = (): void => {
    const w = cluster.fork();
    w.on('message', (msg: ToPrimary) => {
      // A worker says hello once it listens for messages; anything sent before is lost to it,
      // so it starts from the whole current set and then follows the event stream.
      if (msg?.type === 'worker-hello') send(w, { type: 'sdep-snapshot', deployments: [...current] });
      else if (msg?.type === 'worker-ready') {
        readyWorkers.add(w.id);
        log.info({ worker: w.id, pid: w.process.pid, port: msg.port }, 'worker listening');
        if (readyWorkers.size === config.workers) log.info({ port: msg.port, adminPort, workers: config.workers }, 'seldon-gateway listening');
      }
    });
  };
  cluster.on('exit', (w, code, signal) => {
    readyWorkers.delete(w.id);
    if (shuttingDown) return;
    log.error({ worker: w.id, code, signal }, 'worker exited: starting another');
    fork();
  });

  const sink = new StateSink(
    (events) => {
      for (const e of events) {
        if (e.type === 'upsert') current.set(e.key, e.deployment);
        else current.delete(e.key);
      }
      state.apply(events);
      broadcast({ type: 'sdep-events', events });
    },
    log,
    metrics,
    config.manifests ? 'manifests' : 'kubernetes',
  );
  const history = new TrafficHistory(() => gatherCluster(metrics.registry, OBSERVED_METRICS));
  const ready = (): boolean => sink.synced && !shuttingDown && readyWorkers.size >= config.workers;
  const admin = createAdminApp({
    ready,
    readiness: () => (shuttingDown ? 'shutting down' : !sink.synced ? 'waiting for the initial sync' : `${readyWorkers.size}/${config.workers} workers listening`),
    table: () => state.current,
    appliedAt: () => state.lastAppliedAt,
    metrics: async () => ({ contentType: metrics.registry.contentType, body: await aggregatedText(await gatherCluster(metrics.registry)) }),
    problems: () => sink.problems,
    diagnostics: async () => {
      const { window, disagreements } = await history.observe();
      return diagnostics({ table: state.current, appliedAt: state.lastAppliedAt, problems: sink.problems, window, disagreements, settings: pageSettings(config, config.workers) });
    },
  });
  await admin.listen({ port: config.adminPort, host: config.adminHost });
  const adminAddress = admin.server.address();
  adminPort = typeof adminAddress === 'object' && adminAddress ? adminAddress.port : config.adminPort;
  // Without Redis, OAuth tokens and rate limits live here, one store for every worker (oauth-stores.ts).
  const stopStores = config.redisUrl ? undefined : serveStoresToWorkers();
  // Young-generation GC pauses set the hot path's tail latency (load/README.md): give workers room.
  const semiSpace = config.maxSemiSpaceMb > 0 ? [`--max-semi-space-size=${config.maxSemiSpaceMb}`] : [];
  cluster.setupPrimary({ execArgv: [...process.execArgv.filter((a) => !a.startsWith('--max-semi-space-size')), ...semiSpace] });
  for (let i = 0; i < config.workers; i++) fork();
  void history.start();
  const source = sourceFor(config, { log });
  const events = source instanceof LazyKubeSource ? await postEventsOnChanges(state, source, log) : undefined;
  await source.start(sink);
  log.info({ adminPort, workers: config.workers }, 'seldon-gateway primary started');

  const stop = async (signal: string): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    history.stop();
    stopStores?.();
    log.info({ signal, gracePeriodMs: config.gracePeriodMs }, 'shutting down: draining workers');
    await source.stop();
    events?.stop();
    const exits = Object.values(cluster.workers ?? {}).map((w) => new Promise<void>((r) => (w && !w.isDead() ? w.once('exit', () => r()) : r())));
    broadcast({ type: 'drain', graceMs: config.gracePeriodMs });
    const hard = setTimeout(() => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
    }, config.gracePeriodMs + 2000);
    await Promise.all(exits);
    clearTimeout(hard);
    await admin.close();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

export async function runWorker(config: GatewayConfig, log: Logger): Promise<void> {
  // Each worker watches EndpointSlices itself: endpoint changes reach its balancer without a hop.
  const endpoints = await endpointsFor(config, sourceFor(config, { log }), log);
  const plane = new DataPlane(config, undefined, log, endpoints);
  const observers = observeDataPlane(plane, config);
  answerObserveRequests(plane.metrics, observers.comparer);
  // Signals are the primary's to handle; a worker drains when the primary says so.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  process.on('message', (msg: ToWorker) => {
    if (msg?.type === 'sdep-events') plane.state.apply(msg.events);
    else if (msg?.type === 'sdep-snapshot') {
      const keep = new Set(msg.deployments.map(([k]) => k));
      const events: SourceEvent[] = msg.deployments.map(([key, deployment]) => ({ type: 'upsert', key, deployment }));
      for (const k of plane.state.current.deployments.keys()) if (!keep.has(k)) events.push({ type: 'delete', key: k });
      plane.state.apply(events);
    } else if (msg?.type === 'drain') {
      void plane.drain(msg.graceMs).then(() => {
        observers.flush();
        process.exit(0);
      });
    }
  });
  process.send?.({ type: 'worker-hello' } satisfies ToPrimary);
  await plane.listen();
  process.send?.({ type: 'worker-ready', port: plane.port } satisfies ToPrimary);
  log.debug({ pid: process.pid, port: plane.port }, 'worker listening');
}
