/**
 * Several worker processes (Node `cluster`), so the gateway uses every core.
 *
 * The primary is the control plane: it runs the SeldonDeployment source and the admin port, and
 * sends every batch of source events to each worker; a worker that (re)starts first gets the
 * whole current set. Each worker compiles the same table from the same objects (compilation
 * is pure) and serves the shared public port. Metrics are gathered from the workers and summed
 * (observe/observed-cluster.ts), for /metrics and the diagnostics page. SIGTERM
 * or SIGINT to the primary turns readiness off, asks every worker to drain, and exits 0 once
 * they have (or after the grace period).
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
import type { AcceptFailure } from '../edge/accept-guard.js';
import type { Logger } from 'pino';
import { createAdminApp } from '../admin/server.js';
import { diagnostics } from '../admin/page.js';
import type { GatewayConfig } from '../config.js';
import { DataPlane } from './data-plane.js';
import { GatewayMetrics } from '../observe/metrics.js';
import { serveStoresToWorkers } from '../auth/stores.js';
import { OBSERVED_METRICS, TrafficHistory, observeDataPlane } from '../observe/observed.js';
import { aggregatedText, answerObserveRequests, gatherCluster } from '../observe/observed-cluster.js';
import { RouteState } from './route-state.js';
import { StateSink, endpointsFor, keepServing, notAccepting, observeChanges, pageSettings, postEventsOnChanges, sourceFor } from './serve.js';
import { LazyKubeSource } from '../../source/kubernetes/kubernetes.js';
import type { SourceEvent } from '../../source/source.js';
import type { SeldonDeployment } from '../../routing/types.js';

type ToWorker = { type: 'sdep-events'; events: readonly SourceEvent[] } | { type: 'sdep-snapshot'; deployments: [string, SeldonDeployment][] } | { type: 'drain'; graceMs: number };
type ToPrimary =
  | { type: 'worker-hello' }
  | { type: 'worker-ready'; port: number }
  | { type: 'worker-failed'; problem: string }
  | { type: 'worker-accept'; failing: AcceptFailure | null };

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
  const ports = [config.port, config.grpcPort, config.oauthPort].filter((p): p is number => p !== undefined);
  return ports.every((p) => p !== 0) && (await reusePortWorks()) ? 'reuse-port' : 'shared';
}

export async function runPrimary(config: GatewayConfig, log: Logger): Promise<void> {
  const metrics = new GatewayMetrics();
  const state = new RouteState(config.compile);
  observeChanges(state, metrics, log);
  const current = new Map<string, SeldonDeployment>();
  const readyWorkers = new Set<number>();
  /** Workers that cannot accept connections now, and why. */
  const notAcceptingWorkers = new Map<number, AcceptFailure>();
  let adminPort = config.adminPort;
  let shuttingDown = false;
  let started = false;
  const send = (w: Worker, msg: ToWorker): void => {
    if (w.isConnected()) w.send(msg);
  };
  const broadcast = (msg: ToWorker): void => {
    for (const w of Object.values(cluster.workers ?? {})) if (w) send(w, msg);
  };
  const fork = (): void => {
    const w = cluster.fork(listening === 'reuse-port' ? { [REUSE_PORT_ENV]: '1' } : {});
    w.on('message', (msg: ToPrimary) => {
      // A worker says hello once it listens for messages; anything sent before is lost to it,
      // so it starts from the whole current set and then follows the event stream.
      if (msg?.type === 'worker-hello') send(w, { type: 'sdep-snapshot', deployments: [...current] });
      else if (msg?.type === 'worker-ready') {
        readyWorkers.add(w.id);
        log.info({ worker: w.id, pid: w.process.pid, port: msg.port }, 'worker listening');
        if (readyWorkers.size === config.workers && !started) {
          started = true;
          log.info({ port: msg.port, adminPort, workers: config.workers, listening }, 'seldon-gateway listening');
        }
      } else if (msg?.type === 'worker-accept') {
        if (msg.failing === null) notAcceptingWorkers.delete(w.id);
        else notAcceptingWorkers.set(w.id, msg.failing);
      } else if (msg?.type === 'worker-failed') {
        log.error({ worker: w.id, problem: msg.problem }, 'a worker could not listen');
        // At start-up the gateway could never serve: exit non-zero rather than stay up, never ready.
        if (!started) void fail();
      }
    });
  };
  const fail = async (): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
    log.error('seldon-gateway could not start: exiting');
    process.exit(1);
  };
  cluster.on('exit', (w, code, signal) => {
    readyWorkers.delete(w.id);
    notAcceptingWorkers.delete(w.id);
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
  const ready = (): boolean => sink.synced && !shuttingDown && readyWorkers.size >= config.workers && notAcceptingWorkers.size === 0;
  const admin = createAdminApp({
    ready,
    readiness: () => {
      if (shuttingDown) return 'shutting down';
      if (!sink.synced) return 'waiting for the initial sync';
      for (const [id, reason] of notAcceptingWorkers) return notAccepting(reason, `worker ${id}`);
      return `${readyWorkers.size}/${config.workers} workers listening`;
    },
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
  // Without Redis, OAuth tokens and rate limits live here, one store for every worker (auth/stores.ts).
  const stopStores = config.redisUrl ? undefined : serveStoresToWorkers();
  // Young-generation GC pauses set the hot path's tail latency (load/README.md): give workers room.
  const semiSpace = config.maxSemiSpaceMb > 0 ? [`--max-semi-space-size=${config.maxSemiSpaceMb}`] : [];
  const listening = await shareListeners(config);
  cluster.setupPrimary({ execArgv: [...process.execArgv.filter((a) => !a.startsWith('--max-semi-space-size')), ...semiSpace] });
  for (let i = 0; i < config.workers; i++) fork();
  void history.start();
  const source = sourceFor(config, { log });
  const events = source instanceof LazyKubeSource ? await postEventsOnChanges(state, source, log) : undefined;
  await source.start(sink);
  log.info({ adminPort, workers: config.workers }, 'seldon-gateway primary started');
  keepServing(log, metrics);

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
  plane.reusePort = process.env[REUSE_PORT_ENV] === '1';
  plane.acceptChanged = (failing) => {
    if (process.connected) process.send?.({ type: 'worker-accept', failing: failing ?? null } satisfies ToPrimary);
  };
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
  try {
    await plane.listen();
  } catch (err) {
    const problem = err instanceof Error ? err.message : String(err);
    log.error({ pid: process.pid, problem }, 'worker could not listen');
    process.send?.({ type: 'worker-failed', problem } satisfies ToPrimary, () => process.exit(1));
    return;
  }
  process.send?.({ type: 'worker-ready', port: plane.port } satisfies ToPrimary);
  log.debug({ pid: process.pid, port: plane.port, reusePort: plane.reusePort }, 'worker listening');
  keepServing(log, plane.metrics);
}
