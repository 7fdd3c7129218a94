/**
 * Rate limits (`seldon.io/gateway-rate-limit: "<n>/<s|m|h>"`), counted across every replica.
 *
 * The algorithm is GCRA (the generic cell rate algorithm, a leaky bucket kept as one timestamp
 * per bucket, the "theoretical arrival time"): a steady `n` per period, bursts of up to `n`. A
 * request consumes from all the buckets that apply to it (deployment, predictor) or from none.
 * With Redis it is one Lua script, one round trip, on Redis's clock (replicas' clocks may differ);
 * without Redis it runs in memory (with several workers, in the primary: oauth-ipc.ts).
 *
 * When the shared store is down, or slower than `--redis-timeout`, the limiter does not block
 * traffic: it decides locally with this replica's share of each limit (`n / replicas`, the
 * replicas that last said they were alive in Redis, or the worker count), counts each such
 * decision in `seldon_gateway_rate_limit_fallback_total` and sets
 * `seldon_gateway_rate_limit_fallback_active`. After a timeout it stays local for a second
 * rather than make every request wait again.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { GatewayMetrics } from './metrics.js';
import { KEY_PREFIX, StoreUnavailable, withTimeout, type RedisConnection } from './redis.js';
import type { RateLimit } from '../routing/types.js';

export interface Verdict {
  readonly allowed: boolean;
  /** When refused: how long until a request would be allowed. */
  readonly retryAfterMs: number;
  /** When refused: the limit that refused it. */
  readonly limit?: RateLimit;
}

const ALLOWED: Verdict = Object.freeze({ allowed: true, retryAfterMs: 0 });

/** A bucket's identity: the limit is part of it, so a changed limit starts afresh. */
export const bucketKey = (l: RateLimit): string => `${l.key}:${l.text}`;

/** GCRA over a map of theoretical arrival times (ms). `share` < 1 gives a fraction of each limit. */
export class Gcra {
  private readonly tat = new Map<string, number>();
  private sweeps = 0;

  take(limits: readonly RateLimit[], now: number, share = 1): Verdict {
    let refused: Verdict | undefined;
    for (const l of limits) {
      const interval = l.periodMs / (l.count * share);
      const tolerance = Math.max(0, l.periodMs - interval);
      const tat = Math.max(this.tat.get(bucketKey(l)) ?? now, now);
      const wait = tat - tolerance - now;
      if (wait > 0 && (!refused || wait > refused.retryAfterMs)) refused = { allowed: false, retryAfterMs: wait, limit: l };
    }
    if (refused) return refused;
    for (const l of limits) {
      const k = bucketKey(l);
      this.tat.set(k, Math.max(this.tat.get(k) ?? now, now) + l.periodMs / (l.count * share));
    }
    if (++this.sweeps >= 10_000) this.sweep(now);
    return ALLOWED;
  }

  /** Buckets whose arrival time has passed hold nothing: forget them. */
  private sweep(now: number): void {
    this.sweeps = 0;
    for (const [k, t] of this.tat) if (t <= now) this.tat.delete(k);
  }
}

/** The store every replica (or worker) shares. */
export interface SharedLimits {
  take(limits: readonly RateLimit[]): Promise<Verdict>;
  /** Replicas taking part now (for the local share when the store is away). */
  replicas(): number;
  close(): void;
}

// KEYS: bucket keys (the count is passed per call). ARGV: interval ms, tolerance ms, a pair per key.
// Returns {1} when allowed, else {0, wait ms, index of the limit that refused}.
const GCRA_LUA = {
  lua: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local n = #KEYS
local tats = {}
local worst, worstAt = 0, 0
for i = 1, n do
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  tats[i] = tat
  local wait = tat - tonumber(ARGV[2 * i]) - now
  if wait > worst then worst, worstAt = wait, i end
end
if worstAt > 0 then return {0, tostring(worst), worstAt} end
for i = 1, n do
  local nt = tats[i] + tonumber(ARGV[2 * i - 1])
  redis.call('SET', KEYS[i], tostring(nt), 'PX', math.ceil(nt - now) + 1)
end
return {1, '0', 0}`,
};

// KEYS: the replica set. ARGV: this replica's id, how long a silent replica counts (ms).
const HEARTBEAT_LUA = {
  numberOfKeys: 1,
  lua: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1])`,
};

const LIMIT = `${KEY_PREFIX}ratelimit:`;
const REPLICAS = `${KEY_PREFIX}ratelimit-replicas`;
const HEARTBEAT_MS = 5000;

/** Limits in Redis; replicas announce themselves every 5 s (only once a limit was checked). */
export class RedisLimits implements SharedLimits {
  private readonly gcra;
  private readonly heartbeatScript;
  private readonly id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private known = 1;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: RedisConnection,
    private readonly onReplicas: (n: number) => void = () => undefined,
  ) {
    this.gcra = redis.script('sgwRateLimit', GCRA_LUA);
    this.heartbeatScript = redis.script('sgwRateLimitReplicas', HEARTBEAT_LUA);
  }

  async take(limits: readonly RateLimit[]): Promise<Verdict> {
    if (this.timer === undefined) this.startHeartbeat();
    const args: (string | number)[] = [];
    for (const l of limits) {
      const interval = l.periodMs / l.count;
      args.push(interval, Math.max(0, l.periodMs - interval));
    }
    const keys = limits.map((l) => LIMIT + bucketKey(l));
    const r = (await this.gcra(keys.length, ...keys, ...args)) as [number, string, number];
    if (r[0] === 1) return ALLOWED;
    return { allowed: false, retryAfterMs: Number(r[1]), limit: limits[r[2] - 1]! };
  }

  replicas(): number {
    return this.known;
  }

  private startHeartbeat(): void {
    const beat = (): void => {
      if (!this.redis.up) return;
      this.heartbeatScript(REPLICAS, this.id, HEARTBEAT_MS * 3).then(
        (n) => {
          this.known = Math.max(1, Number(n));
          this.onReplicas(this.known);
        },
        () => undefined,
      );
    };
    this.timer = setInterval(beat, HEARTBEAT_MS);
    this.timer.unref();
    beat();
    this.redis.onState((up) => up && beat());
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

export interface LimiterOptions {
  /** Null: the limits are this process's own (one process, no Redis). */
  readonly shared: SharedLimits | null;
  readonly timeoutMs: number;
  readonly metrics: GatewayMetrics;
}

/** Decides for one request; shared store first, this replica's share when it cannot answer. */
export class RateLimiter {
  private readonly local = new Gcra();
  private readonly fallbackLocal = new Gcra();
  /** Until when to decide locally without asking (after a timeout). */
  private localUntil = 0;
  private inFallback = false;

  constructor(private readonly o: LimiterOptions) {}

  check(limits: readonly RateLimit[]): Verdict | Promise<Verdict> {
    const shared = this.o.shared;
    if (shared === null) return this.local.take(limits, Date.now());
    if (Date.now() < this.localUntil) return this.fallback(limits, 'slow');
    return withTimeout(shared.take(limits), this.o.timeoutMs, 'rate limit').then(
      (v) => {
        this.setFallback(false);
        return v;
      },
      (err: unknown) => {
        const slow = err instanceof StoreUnavailable && err.why === 'timeout';
        if (slow) this.localUntil = Date.now() + 1000;
        return this.fallback(limits, slow ? 'slow' : 'down');
      },
    );
  }

  private fallback(limits: readonly RateLimit[], why: 'slow' | 'down'): Verdict {
    this.setFallback(true);
    this.o.metrics.rateLimitFallback.labels(why).inc();
    return this.fallbackLocal.take(limits, Date.now(), 1 / Math.max(1, this.o.shared?.replicas() ?? 1));
  }

  private setFallback(on: boolean): void {
    if (on === this.inFallback) return;
    this.inFallback = on;
    this.o.metrics.rateLimitFallbackActive.set(on ? 1 : 0);
  }

  close(): void {
    this.o.shared?.close();
  }
}
