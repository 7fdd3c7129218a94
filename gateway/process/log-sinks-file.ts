/**
 * The --log-sinks file while the gateway runs (process/operator-file.ts: watched, read again when it
 * changes, applied when every entry is accepted; a bad entry is refused naming it, and the sinks in
 * use stay): each process compiles its table again under the new sink names (a deployment naming a
 * sink that is gone degrades, nothing of it logged, with the reason in /routes, the log and an
 * Event) and rebuilds the sinks whose entries changed (payload-log/sinks.ts). The control plane
 * reads it; the workers get the result over IPC.
 */
import type { Logger } from 'pino';
import { checkLogSinks, parseLogSinks, sinkNames, type LogSinkConfig } from '../config/log-sinks.js';
import type { LogMetrics } from '../payload-log/metrics.js';
import type { LogSinks } from '../payload-log/sinks.js';
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
