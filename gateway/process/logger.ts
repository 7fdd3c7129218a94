/**
 * What every gateway process sets up for itself, whichever its role: its logger, and its
 * last-resort policy for errors no handler caught.
 */
import { pino, type Logger } from 'pino';
import { LogBudget } from '../observe/log-budget.js';
import { LOG_FORMAT } from '../observe/log-format.js';
import type { GatewayMetrics } from '../observe/metrics.js';

/** The gateway's logger: JSON lines on stdout, or on `destination` (the quick start's terminal). */
export function createLogger(level: string, destination?: { write(line: string): void }): Logger {
  const options = {
    ...LOG_FORMAT,
    level,
    base: { service: 'seldon-gateway' },
    // Never log credentials, whatever object a caller hands the logger.
    redact: { paths: ['*.authorization', '*.Authorization', '*.token', '*.access_token', '*.oauth_secret', 'headers.authorization'], censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
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
