/**
 * Which stores a process uses for OAuth tokens and rate limits, and the one the primary keeps
 * for its workers:
 *
 *   --redis-url          Redis, in every worker of every replica: all of them agree.
 *   no Redis, 1 process  this process's memory.
 *   no Redis, workers    the primary's memory, reached over the cluster IPC channel, so every
 *                        worker of the instance accepts every token and counts against the same
 *                        limits (docs/routing.md#oauth-front-end). Other replicas cannot see it: one replica only.
 *
 * An IPC call that gets no answer fails like a Redis call would (token checks 503, rate limits
 * use the worker's share: the limit divided by the worker count, auth/rate-limit.ts).
 */
import cluster from 'node:cluster';
import type { Logger } from 'pino';
import type { AuthConfig } from '../config/auth.js';
import { channel, fromParent, fromWorkers, parent, Requester, serve } from '../ipc/request-reply.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import { Gcra, RedisLimits, type SharedLimits, type Verdict } from './rate-limit.js';
import { RedisConnection, ackTimeoutMs } from './redis.js';
import { MemoryTokenStore, RedisTokenStore, type ClientEntry, type TokenRecord, type TokenStore } from './token-store.js';
import type { RateLimit } from '../../routing/types.js';

export interface Stores {
  readonly tokens: TokenStore;
  /** Null: limits are this process's own (in memory). */
  readonly limits: SharedLimits | null;
  readonly redis: RedisConnection | undefined;
  close(): void;
}

/** `now`: the in-memory token store's clock. */
export function createStores(auth: AuthConfig, metrics: GatewayMetrics, log?: Logger, now?: () => number): Stores {
  if (auth.redisUrl) {
    const patience = ackTimeoutMs(auth.redisTimeoutMs);
    const redis = new RedisConnection(auth.redisUrl, log, patience);
    metrics.redisConnected.set(0);
    redis.onState((up) => metrics.redisConnected.set(up ? 1 : 0));
    return {
      tokens: new RedisTokenStore(redis, patience),
      limits: new RedisLimits(redis),
      redis,
      close: () => redis.close(),
    };
  }
  if (cluster.isWorker) {
    const ipc = new IpcStore();
    return { tokens: new IpcTokenStore(ipc), limits: new IpcLimits(ipc), redis: undefined, close: () => ipc.close() };
  }
  const tokens = new MemoryTokenStore(undefined, now);
  return { tokens, limits: null, redis: undefined, close: () => tokens.close() };
}

// ---- IPC ----------------------------------------------------------------------------------------

type Op = 'issue' | 'lookup' | 'revoke' | 'incarnation' | 'retire' | 'take' | 'peek';
const STORE = channel<{ readonly op: Op; readonly args: unknown[] }, unknown>('sgw-store');
const IPC_TIMEOUT_MS = 5000;

/** The primary's store, asked over IPC. */
class IpcStore {
  private readonly requests = new Requester(STORE, fromParent, IPC_TIMEOUT_MS);
  call(op: Op, args: unknown[]): Promise<unknown> {
    return this.requests.request(parent, { op, args });
  }
  close(): void {
    this.requests.close();
  }
}

class IpcTokenStore implements TokenStore {
  constructor(private readonly ipc: IpcStore) {}
  issue(clientId: string, entry: ClientEntry, record: TokenRecord): Promise<ClientEntry | null> {
    return this.ipc.call('issue', [clientId, entry, record]) as Promise<ClientEntry | null>;
  }
  lookup(tokenHash: string): Promise<TokenRecord | null> {
    return this.ipc.call('lookup', [tokenHash]) as Promise<TokenRecord | null>;
  }
  async revoke(clientId: string, fp?: string): Promise<void> {
    await this.ipc.call('revoke', [clientId, fp ?? null]);
  }
  async incarnation(deployment: string, proposed: string, ttlMs: number): Promise<string> {
    return String(await this.ipc.call('incarnation', [deployment, proposed, ttlMs]));
  }
  async retire(deployment: string, incarnation: string | undefined): Promise<void> {
    await this.ipc.call('retire', [deployment, incarnation ?? null]);
  }
  close(): void {}
}

class IpcLimits implements SharedLimits {
  constructor(private readonly ipc: IpcStore) {}
  take(limits: readonly RateLimit[]): Promise<Verdict> {
    return this.ipc.call('take', [limits]) as Promise<Verdict>;
  }
  peek(limits: readonly RateLimit[]): Promise<Verdict> {
    return this.ipc.call('peek', [limits]) as Promise<Verdict>;
  }
}

/** In the primary, without Redis: one memory store answering every worker. Returns a stop function. */
export function serveStoresToWorkers(): () => void {
  const tokens = new MemoryTokenStore();
  const gcra = new Gcra();
  const stop = serve(STORE, fromWorkers, async ({ op, args: a }) => {
    if (op === 'issue') return tokens.issue(a[0] as string, a[1] as ClientEntry, a[2] as TokenRecord);
    if (op === 'lookup') return tokens.lookup(a[0] as string);
    if (op === 'revoke') return tokens.revoke(a[0] as string, (a[1] as string | null) ?? undefined);
    if (op === 'incarnation') return tokens.incarnation(a[0] as string, a[1] as string, a[2] as number);
    if (op === 'retire') return tokens.retire(a[0] as string, (a[1] as string | null) ?? undefined);
    if (op === 'peek') return gcra.peek(a[0] as RateLimit[], Date.now());
    return gcra.take(a[0] as RateLimit[], Date.now());
  });
  return () => {
    stop();
    tokens.close();
  };
}
