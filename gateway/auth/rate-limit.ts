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
 * traffic: it decides locally with this process's share of each limit (`n / processes`: every live
 * replica's workers, as the control plane last counted them in Redis, keda/replica-demand.ts; the
 * worker count without Redis), counts each such
 * decision in `seldon_gateway_rate_limit_fallback_total` and sets
 * `seldon_gateway_rate_limit_fallback_active`. After a timeout it stays local for a second
 * rather than make every request wait again.
 */
import { hash } from 'node:crypto';
import type { GatewayMetrics } from '../observe/metrics.js';
import { KEY_PREFIX, NOW_MS_LUA, StoreUnavailable, withTimeout, type RedisConnection } from './redis.js';
import type { RateLimit } from '../../routing/types.js';

export interface Verdict {
  readonly allowed: boolean;
  /** When refused: how long until a request would be allowed. */
  readonly retryAfterMs: number;
  /** When refused: the limit that refused it. */
  readonly limit?: RateLimit;
}

const ALLOWED: Verdict = Object.freeze({ allowed: true, retryAfterMs: 0 });

/** The separator of a per-claim bucket's key: `ns/sdep[/pred]/#claim:<name>=<digest>` keeps the deployment's hash tag. */
const PER_CLAIM = '/#claim:';

/**
 * A limit `per claim:<name>` for one caller: its own bucket, keyed by a digest of the claim's value
 * (bounded, nothing a caller writes reaches a Redis key as it is); a caller without the claim (no
 * token where `allowMissing`) shares the bucket of the empty value.
 */
export function perClaimLimit(l: RateLimit, claims: Readonly<Record<string, unknown>> | undefined): RateLimit {
  if (l.perClaim === undefined) return l;
  const v = claims?.[l.perClaim];
  const value = typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : v === undefined || v === null ? '' : JSON.stringify(v);
  return { ...l, key: `${l.key}${PER_CLAIM}${l.perClaim}=${hash('sha256', value, 'base64url').slice(0, 22)}` };
}

/** A limit's name in metrics and messages: its deployment's or predictor's key, never a caller's digest. */
export const bucketName = (l: RateLimit): string => {
  const i = l.key.indexOf(PER_CLAIM);
  return i < 0 ? l.key : l.key.slice(0, i);
};

/** A bucket's identity: the limit is part of it, so a changed limit starts afresh. */
export const bucketKey = (l: RateLimit): string => `${l.key}:${l.text}`;

/**
 * A bucket's Redis Cluster hash tag: a deployment's buckets (`ns/sdep`, `ns/sdep/pred`) share the
 * deployment's slot, so one script checks every limit of a request; any other bucket (the login
 * throttle's) is a slot of its own. Different deployments land on different slots.
 */
export function bucketTag(l: RateLimit): string {
  if (l.key.startsWith('oauth-login:')) return l.key;
  const parts = l.key.split('/');
  return parts.length < 2 ? l.key : `${parts[0]}/${parts[1]}`;
}

/** Buckets are swept at least this often (ms), so those of deleted deployments or gone callers do not wait for 10,000 decisions. */
const SWEEP_EVERY_MS = 60_000;

/**
 * GCRA over a map of theoretical arrival times (ms). `share` < 1 gives a fraction of each limit.
 * Its owner of each bucket: the sweep, which drops a bucket once its arrival time has passed (it
 * then holds nothing), every 10,000 decisions or every minute, whichever comes first.
 */
export class Gcra {
  private readonly tat = new Map<string, number>();
  private sweeps = 0;
  private sweptAt = -Infinity;

  take(limits: readonly RateLimit[], now: number, share = 1): Verdict {
    const refused = this.peek(limits, now, share);
    if (!refused.allowed) return refused;
    for (const l of limits) {
      const k = bucketKey(l);
      this.tat.set(k, Math.max(this.tat.get(k) ?? now, now) + l.periodMs / (l.count * share));
    }
    if (++this.sweeps >= 10_000 || now - this.sweptAt >= SWEEP_EVERY_MS) this.sweep(now);
    return ALLOWED;
  }

  /** What `take` would answer, without consuming anything. */
  peek(limits: readonly RateLimit[], now: number, share = 1): Verdict {
    let refused: Verdict | undefined;
    for (const l of limits) {
      const interval = l.periodMs / (l.count * share);
      const tolerance = Math.max(0, l.periodMs - interval);
      const tat = Math.max(this.tat.get(bucketKey(l)) ?? now, now);
      const wait = tat - tolerance - now;
      if (wait > 0 && (!refused || wait > refused.retryAfterMs)) refused = { allowed: false, retryAfterMs: wait, limit: l };
    }
    return refused ?? ALLOWED;
  }

  /** Buckets held now. */
  get size(): number {
    return this.tat.size;
  }

  /** Buckets whose arrival time has passed hold nothing: forget them. */
  private sweep(now: number): void {
    this.sweeps = 0;
    this.sweptAt = now;
    for (const [k, t] of this.tat) if (t <= now) this.tat.delete(k);
  }
}

/** The store every replica (or worker) shares. */
export interface SharedLimits {
  take(limits: readonly RateLimit[]): Promise<Verdict>;
  /** What `take` would answer, without consuming anything. */
  peek(limits: readonly RateLimit[]): Promise<Verdict>;
  /** Call `listener` each time the store is reachable again (a store that cannot be away has none). */
  onAvailable?(listener: () => void): void;
}

// KEYS: bucket keys (the count is passed per call). ARGV: interval ms, tolerance ms, a pair per key.
// Returns {1} when allowed, else {0, wait ms, index of the limit that refused}. GCRA_PEEK_LUA is the
// same check without the update.
const GCRA_CHECK = `
${NOW_MS_LUA}local n = #KEYS
local tats = {}
local worst, worstAt = 0, 0
for i = 1, n do
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  tats[i] = tat
  local wait = tat - tonumber(ARGV[2 * i]) - now
  if wait > worst then worst, worstAt = wait, i end
end
if worstAt > 0 then return {0, tostring(worst), worstAt} end`;
const GCRA_LUA = {
  lua: `${GCRA_CHECK}
for i = 1, n do
  local nt = tats[i] + tonumber(ARGV[2 * i - 1])
  redis.call('SET', KEYS[i], tostring(nt), 'PX', math.ceil(nt - now) + 1)
end
return {1, '0', 0}`,
};
const GCRA_PEEK_LUA = {
  lua: `${GCRA_CHECK}
return {1, '0', 0}`,
};

/** A bucket's key, `seldon-gateway:ratelimit:{<tag>}:<bucket>` (docs/redis.md), and its tag: once per compiled limit. */
const redisKeys = new WeakMap<RateLimit, { key: string; tag: string }>();
function redisKeyOf(l: RateLimit): { key: string; tag: string } {
  let k = redisKeys.get(l);
  if (k === undefined) {
    const tag = bucketTag(l);
    redisKeys.set(l, (k = { key: `${KEY_PREFIX}ratelimit:{${tag}}:${bucketKey(l)}`, tag }));
  }
  return k;
}
/** Limits in Redis. */
export class RedisLimits implements SharedLimits {
  private readonly gcra;
  private readonly gcraPeek;

  constructor(private readonly redis: RedisConnection) {
    this.gcra = redis.script('sgwRateLimit', GCRA_LUA);
    this.gcraPeek = redis.script('sgwRateLimitPeek', GCRA_PEEK_LUA);
  }

  take(limits: readonly RateLimit[]): Promise<Verdict> {
    return this.run(this.gcra, limits);
  }

  peek(limits: readonly RateLimit[]): Promise<Verdict> {
    return this.run(this.gcraPeek, limits);
  }

  private async run(script: (...args: (string | number)[]) => Promise<unknown>, limits: readonly RateLimit[]): Promise<Verdict> {
    if (limits.length === 0) return ALLOWED;
    const keys = limits.map((l) => redisKeyOf(l).key);
    const tag = redisKeyOf(limits[0]!).tag;
    if (limits.some((l) => redisKeyOf(l).tag !== tag)) {
      // Buckets in different slots (the login throttle's address and client): one script each.
      // Only asking spans them; consuming is always one bucket's slot (LoginThrottle.failed).
      if (script !== this.gcraPeek) throw new Error('a rate-limit take spans buckets in different slots');
      const verdicts = await Promise.all(limits.map((l) => this.run(script, [l])));
      return verdicts.reduce((worst, v) => (!v.allowed && (worst.allowed || v.retryAfterMs > worst.retryAfterMs) ? v : worst), ALLOWED);
    }
    const args: (string | number)[] = [];
    for (const l of limits) {
      const interval = l.periodMs / l.count;
      args.push(interval, Math.max(0, l.periodMs - interval));
    }
    const r = (await script(keys.length, ...keys, ...args)) as [number, string, number];
    if (r[0] === 1) return ALLOWED;
    return { allowed: false, retryAfterMs: Number(r[1]), limit: limits[r[2] - 1]! };
  }

  onAvailable(listener: () => void): void {
    this.redis.onState((up) => {
      if (up) listener();
    });
  }
}

export interface LimiterOptions {
  /** Null: the limits are this process's own (one process, no Redis). */
  readonly shared: SharedLimits | null;
  /** The gateway's processes sharing the limits, as last counted (keda/replica-demand.ts): the local share is 1 / this. */
  readonly processes?: () => number;
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

  constructor(private readonly o: LimiterOptions) {
    // Back: the next decision is shared again. Said now, not at this process's next limited request,
    // which may be long in coming (a worker that gets no such traffic would report fallback forever).
    o.shared?.onAvailable?.(() => {
      if (Date.now() >= this.localUntil) this.setFallback(false);
    });
  }

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
    return this.fallbackLocal.take(limits, Date.now(), 1 / Math.max(1, this.o.processes?.() ?? 1));
  }

  private setFallback(on: boolean): void {
    if (on === this.inFallback) return;
    this.inFallback = on;
    this.o.metrics.rateLimitFallbackActive.set(on ? 1 : 0);
  }
}

/** A budget of failures: `count` per `periodMs`, bursts of up to `count`. */
export interface FailureBudget {
  readonly count: number;
  readonly periodMs: number;
}

export interface LoginThrottleOptions {
  /** Null: this process's own buckets (one process, no Redis). */
  readonly shared: SharedLimits | null;
  readonly timeoutMs: number;
  /** Failed attempts one client address may make (IPv6: per /64). */
  readonly perAddress: FailureBudget;
  /** Failed attempts against one registered client_id, from anywhere. */
  readonly perClient: FailureBudget;
}

export const LOGIN_PER_ADDRESS: FailureBudget = { count: 10, periodMs: 60_000 };
export const LOGIN_PER_CLIENT: FailureBudget = { count: 30, periodMs: 60_000 };

/** IPv6 addresses are grouped by /64 (one host usually has a whole /64); IPv4 (also mapped) as is. */
export function addressBucket(address: string): string {
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  if (!address.includes(':')) return address;
  const [head = '', tail = ''] = address.split('::', 2) as [string?, string?];
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, '').toLowerCase())
    .join(':')}::/64`;
}

/**
 * Failed `/oauth/token` attempts, per client address and per client_id (docs/routing.md#oauth-front-end): each
 * attempt first asks whether either budget is spent (then 429, the credentials are not even
 * checked), and only a failed attempt consumes. Successful logins cost nothing and are never
 * slowed. The buckets are the rate limits' (GCRA): in Redis when configured (every replica
 * agrees), else in the cluster primary (every worker agrees), else in this process. When the
 * shared store cannot answer, this process's own buckets decide (per process, full budget).
 */
export class LoginThrottle {
  private readonly local = new Gcra();

  constructor(private readonly o: LoginThrottleOptions) {}

  private limits(address: string, clientId: string | undefined): RateLimit[] {
    const mk = (key: string, b: FailureBudget): RateLimit => ({ key, count: b.count, periodMs: b.periodMs, text: `${b.count} failures/${b.periodMs}ms` });
    const out = [mk(`oauth-login:address:${addressBucket(address)}`, this.o.perAddress)];
    if (clientId !== undefined) out.push(mk(`oauth-login:client:${clientId.length > 200 ? clientId.slice(0, 200) : clientId}`, this.o.perClient));
    return out;
  }

  /** Before checking credentials: refused (with the bucket, `address` or `client`) once a budget is spent. */
  async check(address: string, clientId: string | undefined): Promise<Verdict & { by?: 'address' | 'client' }> {
    const limits = this.limits(address, clientId);
    const v = await this.ask(limits, 'peek');
    return v.allowed ? v : { ...v, by: v.limit?.key.startsWith('oauth-login:client:') ? 'client' : 'address' };
  }

  /** After a failed attempt: consume from each budget. */
  async failed(address: string, clientId: string | undefined): Promise<void> {
    const limits = this.limits(address, clientId);
    // Spend every budget that has room (a spent one stays spent): one at a time.
    for (const l of limits) await this.ask([l], 'take');
  }

  private async ask(limits: readonly RateLimit[], op: 'peek' | 'take'): Promise<Verdict> {
    const shared = this.o.shared;
    const local = (): Verdict => (op === 'peek' ? this.local.peek(limits, Date.now()) : this.local.take(limits, Date.now()));
    if (shared === null) return local();
    try {
      return await withTimeout(op === 'peek' ? shared.peek(limits) : shared.take(limits), this.o.timeoutMs, 'login throttle');
    } catch {
      return local();
    }
  }
}
