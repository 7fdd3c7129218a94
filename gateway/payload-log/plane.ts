/**
 * Payload logging in one process (docs/payload-logging.md): the data plane's writers and payload
 * logger (what the request taps feed), or the control plane's shippers. Built only with
 * --log-sinks: without it nothing of this folder runs.
 *
 * A data plane's writers get a Redis connection of their own: their batches and WAITs never queue
 * ahead of the request path's rate-limit scripts on the gateway's main connection.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { RedisConnection, ackTimeoutMs } from '../auth/redis.js';
import type { AuthConfig } from '../config/auth.js';
import type { LogSinkConfig } from '../config/log-sinks.js';
import { seededRandom } from '../../routing/table/pick.js';
import { LogMetrics } from './metrics.js';
import { PayloadLog } from './request-log.js';
import { LogSinks, type SinkView } from './sinks.js';

/** How long a stopping data plane waits, at most, for its writers to hand on what they hold. */
const DRAIN_MAX_MS = 5000;

export interface PlaneLogConfig {
  readonly logSinks: readonly LogSinkConfig[];
  readonly auth: Pick<AuthConfig, 'redisUrl' | 'redisTimeoutMs'>;
  /** --random-seed: sampling draws are seeded too. */
  readonly randomSeed: number | undefined;
}

/** A data plane's payload logging: the logger the taps call and the sinks it writes to. */
export class PlaneLog {
  readonly sinks: LogSinks;
  readonly logger: PayloadLog;
  private readonly redis: RedisConnection | undefined;

  constructor(config: PlaneLogConfig, registry: Registry, log: Logger | undefined) {
    const metrics = LogMetrics.of(registry);
    const url = config.auth.redisUrl;
    // Connected whenever Redis is configured: a file that later names a cloudevents sink finds it up.
    this.redis = url !== undefined ? new RedisConnection(url, log, ackTimeoutMs(config.auth.redisTimeoutMs)) : undefined;
    this.sinks = new LogSinks({ role: 'writer', redis: this.redis, metrics, log });
    this.sinks.apply(config.logSinks);
    const seed = config.randomSeed;
    this.logger = new PayloadLog(this.sinks, seed === undefined ? Math.random : seededRandom((seed ^ 0x10c5eed) >>> 0));
  }

  views(): SinkView[] {
    return this.sinks.views();
  }

  /** Hand on what the writers hold (within the grace period, at most 5 s), then stop. */
  async drain(graceMs: number): Promise<void> {
    await this.sinks.drain(Math.min(graceMs, DRAIN_MAX_MS));
    this.redis?.close();
  }

  close(): void {
    this.sinks.close();
    this.redis?.close();
  }
}

/** A control plane's shippers (with --redis-url): one per cloudevents sink, on the control plane's connection. */
export function planeShippers(sinks: readonly LogSinkConfig[], redis: RedisConnection | undefined, registry: Registry, log: Logger): LogSinks | undefined {
  if (redis === undefined) return undefined;
  const s = new LogSinks({ role: 'shipper', redis, metrics: LogMetrics.of(registry), log });
  s.apply(sinks);
  return s;
}
