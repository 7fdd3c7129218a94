/**
 * The Redis connection every replica shares (ioredis): OAuth tokens and rate limits live there.
 *
 * A request never waits behind an outage: the offline queue is off and commands in flight when
 * the connection drops are not replayed, so while Redis is away a command fails at once; the
 * caller decides what that means (token checks fail closed, rate limits fall back to a local
 * share). The client reconnects by itself with capped, jittered backoff. Scripts are sent by
 * SHA (EVALSHA, falling back to EVAL once per connection), so each one is one round trip.
 *
 * One Redis server (6.0 or later: KEEPTTL) is supported, not Redis Cluster: the scripts touch a
 * client's key and its token's key together.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** Every key the gateway writes starts with this. */
export const KEY_PREFIX = 'seldon-gateway:';

/** A Lua script: `numberOfKeys` KEYS, then ARGV; without it, each call passes the key count first. */
export interface ScriptSpec {
  readonly numberOfKeys?: number;
  readonly lua: string;
}

type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;

/** A Redis call that did not complete: Redis is down, or slower than the request can wait. */
export class StoreUnavailable extends Error {
  constructor(
    readonly why: 'down' | 'timeout',
    detail: string,
  ) {
    super(detail);
  }
}

/** `p`, or StoreUnavailable('timeout') after `ms`; other failures become StoreUnavailable('down'). */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new StoreUnavailable('timeout', `${what}: no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof StoreUnavailable ? err : new StoreUnavailable('down', `${what}: ${err instanceof Error ? err.message : String(err)}`));
      },
    );
  });
}

export class RedisConnection {
  readonly client: Redis;
  private lastProblem: string | undefined;
  private readonly listeners: ((up: boolean) => void)[] = [];

  constructor(
    url: string,
    private readonly log: Logger | undefined,
  ) {
    this.client = new Redis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 2000,
      // Reconnect for ever: 50 ms doubling to 2 s, plus jitter so replicas do not reconnect in step.
      retryStrategy: (times) => Math.min(2000, 50 * 2 ** Math.min(times, 6)) + Math.floor(Math.random() * 100),
    });
    this.client.on('ready', () => {
      this.lastProblem = undefined;
      this.log?.info({ redis: redactUrl(url) }, 'redis connected');
      for (const l of this.listeners) l(true);
    });
    this.client.on('close', () => {
      for (const l of this.listeners) l(false);
    });
    // Without a listener ioredis would throw; say it once per distinct problem, not per retry.
    this.client.on('error', (err: Error) => {
      if (err.message === this.lastProblem) return;
      this.lastProblem = err.message;
      this.log?.warn({ redis: redactUrl(url), problem: err.message }, 'redis unavailable: token checks answer 503, rate limits use the local share; reconnecting');
    });
  }

  /** Connected and ready for commands now. */
  get up(): boolean {
    return this.client.status === 'ready';
  }

  onState(listener: (up: boolean) => void): void {
    this.listeners.push(listener);
  }

  /** Define a script (once per name) and return its caller: KEYS then ARGV. */
  script(name: string, spec: ScriptSpec): ScriptCall {
    const commands = this.client as unknown as Record<string, ScriptCall | undefined>;
    if (!commands[name]) this.client.defineCommand(name, spec);
    return commands[name]!.bind(this.client);
  }

  close(): void {
    this.client.disconnect();
  }
}

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = 'redacted';
    return u.toString();
  } catch {
    return 'redis://(unparseable url)';
  }
}
