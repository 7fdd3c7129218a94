/**
 * The --log-sinks file while the gateway runs (process/operator-file.ts: watched, read again when it
 * changes, applied when every entry is accepted; a bad entry is refused naming it, and the sinks in
 * use stay): each process compiles its table again under the new sink names (a deployment naming a
 * sink that is gone degrades, nothing of it logged, with the reason in /routes, the log and an
 * Event) and rebuilds the sinks whose entries changed (payload-log/sinks.ts). The control plane
 * reads it; the workers get the result over IPC.
 */
import type { Logger } from 'pino';
import type { RedisConnection } from '../auth/redis.js';
import { checkLogSinks, parseLogSinks, sinkNames, type LogSinkConfig } from '../config/log-sinks.js';
import type { GatewayConfig } from '../config/parse.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { MetricsJson } from '../observe/observed.js';
import type { LogMetrics } from '../payload-log/metrics.js';
import type { LogSinks, SinkView } from '../payload-log/sinks.js';
import type { SinkState } from '../payload-log/view.js';
import { OperatorFile, sameNames } from './operator-file.js';
import type { RouteState } from './route-state.js';

/** One process takes the sinks as the file now says: its sinks, then its table (when the names changed). */
export function applyLogSinks(state: RouteState, sinks: LogSinks | undefined, configs: readonly LogSinkConfig[]): void {
  sinks?.apply(configs);
  const names = sinkNames(configs);
  if (!sameNames(state.options.logSinks, names)) state.reconfigure({ ...state.options, logSinks: names });
}

export class LogSinksFile extends OperatorFile<readonly LogSinkConfig[]> {
  constructor(
    path: string,
    current: readonly LogSinkConfig[],
    /** --redis-url: what a redis-stream sink needs. */
    redisUrl: string | undefined,
    apply: (sinks: readonly LogSinkConfig[]) => void,
    deps: { readonly log: Logger; readonly metrics: LogMetrics },
  ) {
    super(path, current, {
      parse: (text) => {
        const sinks = parseLogSinks(text);
        checkLogSinks(sinks, redisUrl);
        return sinks;
      },
      apply,
      log: deps.log,
      counted: (result) => deps.metrics.reloads.labels(result).inc(),
      what: 'log sinks',
      described: (sinks) => ({ sinks: sinks.map((s) => s.name) }),
    });
  }
}

/** What the control plane's data planes do with --log-sinks (control-plane.ts `DataPlanes`). */
export interface LogSinkPlanes {
  /** Every data plane takes the --log-sinks file as it now reads. */
  logSinks(sinks: readonly LogSinkConfig[]): void;
  /** This process's log writers as the page shows them (one process); none in a cluster primary (its workers' state is in their metrics). */
  logViews(): SinkView[];
}

/** --log-sinks in a control plane, while it serves. */
export interface ControlPlaneLogSinks {
  /** The metrics the admin page's sink states are made of (gathered from every process). */
  readonly metricNames: readonly string[];
  /** Each sink as the admin page shows it, from `gathered` (those metrics). */
  states(gathered: readonly MetricsJson[]): SinkState[];
  /** Stops watching the file and closes this replica's shippers. */
  close(): void;
}

/**
 * --log-sinks while serving: this replica's shippers (with --redis-url, gateway/payload-log/), and
 * the file watched, each change applied to this process's table and shippers and sent to every
 * data plane. Payload logging's modules load here, with the flag only (a gateway without it never
 * loads them: process/cluster.ts, "each role loads its own plane").
 *
 * Lifetimes: the returned value owns the file's watcher and the shippers (each sink's, which its
 * `LogSinks` owns: payload-log/sinks.ts); the control plane closes it at shutdown.
 */
export async function controlPlaneLogSinks(
  path: string,
  config: Pick<GatewayConfig, 'logSinks' | 'auth'>,
  d: { readonly state: RouteState; readonly planes: LogSinkPlanes; readonly redis: RedisConnection | undefined; readonly metrics: GatewayMetrics; readonly log: Logger },
): Promise<ControlPlaneLogSinks> {
  const [{ LogMetrics }, { planeShippers }, { sinkView }, { LOG_METRICS, sinkStates }] = await Promise.all([
    import('../payload-log/metrics.js'),
    import('../payload-log/plane.js'),
    import('../payload-log/sinks.js'),
    import('../payload-log/view.js'),
  ]);
  const { state, planes, redis, metrics, log } = d;
  const shippers = planeShippers(config.logSinks, redis, metrics.registry, log);
  let current = config.logSinks;
  const file = new LogSinksFile(
    path,
    config.logSinks,
    config.auth.redisUrl,
    (sinks) => {
      current = sinks;
      applyLogSinks(state, shippers, sinks);
      planes.logSinks(sinks);
    },
    { log, metrics: LogMetrics.of(metrics.registry) },
  );
  file.start();
  // The shippers' health first (the delivery with Redis), then this process's writers, then every sink as configured.
  const views = (): SinkView[] => [...(shippers?.views() ?? []), ...planes.logViews(), ...current.map((c) => sinkView(c, redis !== undefined))];
  return {
    metricNames: LOG_METRICS,
    states: (gathered) => sinkStates(views(), gathered),
    close: () => {
      file.close();
      shippers?.close();
    },
  };
}
