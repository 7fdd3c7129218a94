/**
 * The access log (`--access-log-sample <0..1>`, off by default): one pino JSON line per sampled
 * request with its request id, route, upstream, status and durations.
 *
 * What it never holds: request or response headers, bodies or query strings (where credentials
 * and tokens travel). It never blocks a request: lines go to stdout through an asynchronous
 * buffer; when stdout cannot keep up and the buffer is full, lines are dropped and counted
 * (`seldon_gateway_access_log_dropped_total`).
 */
import { pino, type Logger } from 'pino';
import type { GatewayMetrics, Protocol } from './metrics.js';

/** One access log line (beyond pino's level, time and msg). */
export interface AccessEntry {
  /** The x-request-id the upstream saw (the client's, or the one the gateway made). */
  readonly reqId: string | undefined;
  readonly protocol: Protocol;
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  readonly namespace: string;
  readonly deployment: string;
  readonly predictor: string;
  /** The upstream as the route names it (`<svc>.<ns>:<port>`). */
  readonly upstream: string;
  /** HTTP status (REST; 499: the client went away) or gRPC status code. */
  readonly status: number;
  /** From routing to the end of the response, in ms. */
  readonly durationMs: number;
  /** From sending upstream to the response head, in ms; null when no upstream answered. */
  readonly upstreamMs: number | null;
  /** Shadows this request was mirrored to. */
  readonly mirrors: number;
}

/** Bytes of access log waiting for stdout before lines are dropped. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

export class AccessLog {
  constructor(
    private readonly logger: Logger,
    /** Fraction of requests logged, 0..1. */
    readonly sample: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** One draw: is this request logged? */
  sampled(): boolean {
    return this.sample >= 1 || this.random() < this.sample;
  }

  write(entry: AccessEntry): void {
    this.logger.info(entry, 'access');
  }
}

/** The production access logger: JSON lines on stdout, asynchronous, dropping (and counting) on overflow. */
export function accessLogger(metrics: GatewayMetrics): { logger: Logger; flush(): void } {
  const dest = pino.destination({ dest: 1, sync: false, maxLength: MAX_BUFFERED_BYTES });
  dest.on('drop', () => metrics.accessLogDropped.inc());
  dest.on('error', () => undefined);
  const logger = pino({ level: 'info', base: { service: 'seldon-gateway', log: 'access' } }, dest);
  return {
    logger,
    flush: () => {
      try {
        dest.flushSync();
      } catch {
        // A write still in flight: it completes on its own.
      }
    },
  };
}
