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
 * use the worker's share: the limit divided by the worker count).
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { AuthConfig } from '../config/auth.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import { Gcra, RedisLimits, type SharedLimits, type Verdict } from './rate-limit.js';
import { RedisConnection } from './redis.js';
import { MemoryTokenStore, RedisTokenStore, type ClientEntry, type TokenRecord, type TokenStore } from './token-store.js';
import type { RateLimit } from '../../routing/types.js';

export interface Stores {
  readonly tokens: TokenStore;
  /** Null: limits are this process's own (in memory). */
  readonly limits: SharedLimits | null;
  readonly redis: RedisConnection | undefined;
  close(): void;
}

/** `workers`: the worker processes sharing this primary's in-memory limits (--workers). */
export function createStores(auth: AuthConfig, workers: number, metrics: GatewayMetrics, log?: Logger): Stores {
  if (auth.redisUrl) {
    const redis = new RedisConnection(auth.redisUrl, log);
    metrics.redisConnected.set(0);
    redis.onState((up) => metrics.redisConnected.set(up ? 1 : 0));
    const limits = new RedisLimits(redis, (n) => metrics.rateLimitReplicas.set(n));
    return {
      tokens: new RedisTokenStore(redis),
      limits,
      redis,
      close: () => {
        limits.close();
        redis.close();
      },
    };
  }
  if (cluster.isWorker) {
    const ipc = new IpcClient();
    return { tokens: new IpcTokenStore(ipc), limits: new IpcLimits(ipc, workers), redis: undefined, close: () => ipc.close() };
  }
  const tokens = new MemoryTokenStore();
  return { tokens, limits: null, redis: undefined, close: () => tokens.close() };
}

// ---- IPC ----------------------------------------------------------------------------------------

type Op = 'issue' | 'lookup' | 'revoke' | 'incarnation' | 'retire' | 'take' | 'peek';
interface Call {
  readonly type: 'sgw-store-call';
  readonly id: number;
  readonly op: Op;
  readonly args: unknown[];
}
interface Reply {
  readonly type: 'sgw-store-reply';
  readonly id: number;
  readonly value?: unknown;
  readonly error?: string;
}

const IPC_TIMEOUT_MS = 5000;

class IpcClient {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor() {
    process.on('message', this.onMessage);
  }

  call(op: Op, args: unknown[]): Promise<unknown> {
    const send = process.send?.bind(process);
    if (!send || !process.connected) return Promise.reject(new Error('no IPC channel to the primary'));
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the primary did not answer within ${IPC_TIMEOUT_MS} ms`));
      }, IPC_TIMEOUT_MS);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer });
      send({ type: 'sgw-store-call', id, op, args } satisfies Call, undefined, undefined, (err: Error | null) => {
        if (!err) return;
        clearTimeout(timer);
        this.pending.delete(id);
        reject(err);
      });
    });
  }

  private readonly onMessage = (msg: Reply): void => {
    if (msg?.type !== 'sgw-store-reply') return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.error !== undefined) p.reject(new Error(msg.error));
    else p.resolve(msg.value);
  };

  close(): void {
    process.off('message', this.onMessage);
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
  }
}

class IpcTokenStore implements TokenStore {
  constructor(private readonly ipc: IpcClient) {}
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
  constructor(
    private readonly ipc: IpcClient,
    private readonly workers: number,
  ) {}
  take(limits: readonly RateLimit[]): Promise<Verdict> {
    return this.ipc.call('take', [limits]) as Promise<Verdict>;
  }
  peek(limits: readonly RateLimit[]): Promise<Verdict> {
    return this.ipc.call('peek', [limits]) as Promise<Verdict>;
  }
  replicas(): number {
    return this.workers;
  }
  close(): void {}
}

/** In the primary, without Redis: one memory store answering every worker. Returns a stop function. */
export function serveStoresToWorkers(): () => void {
  const tokens = new MemoryTokenStore();
  const gcra = new Gcra();
  const onMessage = (worker: Worker, msg: Call): void => {
    if (msg?.type !== 'sgw-store-call') return;
    let result: Promise<unknown>;
    try {
      const a = msg.args;
      if (msg.op === 'issue') result = tokens.issue(a[0] as string, a[1] as ClientEntry, a[2] as TokenRecord);
      else if (msg.op === 'lookup') result = tokens.lookup(a[0] as string);
      else if (msg.op === 'revoke') result = tokens.revoke(a[0] as string, (a[1] as string | null) ?? undefined);
      else if (msg.op === 'incarnation') result = tokens.incarnation(a[0] as string, a[1] as string, a[2] as number);
      else if (msg.op === 'retire') result = tokens.retire(a[0] as string, (a[1] as string | null) ?? undefined);
      else if (msg.op === 'peek') result = Promise.resolve(gcra.peek(a[0] as RateLimit[], Date.now()));
      else result = Promise.resolve(gcra.take(a[0] as RateLimit[], Date.now()));
    } catch (err) {
      result = Promise.reject(err);
    }
    const reply = (r: Reply): void => {
      if (worker.isConnected()) worker.send(r);
    };
    result.then(
      (value) => reply({ type: 'sgw-store-reply', id: msg.id, value: value ?? null }),
      (err: unknown) => reply({ type: 'sgw-store-reply', id: msg.id, error: err instanceof Error ? err.message : String(err) }),
    );
  };
  cluster.on('message', onMessage);
  return () => {
    cluster.off('message', onMessage);
    tokens.close();
  };
}
