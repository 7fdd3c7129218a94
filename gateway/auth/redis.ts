/**
 * The Redis connection every replica shares (ioredis): OAuth tokens, rate limits, rollout and
 * bandit state live there. One server, a Sentinel set or a Redis Cluster (redis-url.ts): the same
 * connection either way, and scripts are defined on it with `script` (docs/redis.md).
 *
 * A request never waits behind an outage: the offline queue is off and commands in flight when
 * the connection drops are not replayed, so while Redis is away (or a failover is under way) a
 * command fails at once; the caller decides what that means (token checks fail closed, rate limits
 * fall back to a local share). The client reconnects by itself with capped, jittered backoff and
 * finds the primary again: through the sentinels (never a replica: ioredis checks the role), or
 * from the cluster's slot map (MOVED and ASK followed). Scripts are sent by SHA (EVALSHA, falling
 * back to EVAL once per connection), so each one is one round trip.
 *
 * Redis replicates asynchronously. Writes that must survive a failover are made with
 * `durableScript`: on a second connection, each followed by `WAIT 1` (bounded), so a replica has
 * them before they count as done; the first connection, which the request path uses, never waits.
 */
import { createRequire } from 'node:module';
import type * as IORedis from 'ioredis';
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';

let ioredis: typeof IORedis | undefined;
/** ioredis, loaded with the first connection: a gateway without --redis-url never loads it (8 MB of each process's idle memory: docs/observability.md#memory). */
function lib(): typeof IORedis {
  return (ioredis ??= createRequire(import.meta.url)('ioredis') as typeof IORedis);
}
import type { Logger } from 'pino';
import { parseRedisUrl, type RedisTarget, type Topology } from './redis-url.js';

/** Every key the gateway writes starts with this. */
export const KEY_PREFIX = 'seldon-gateway:';

/**
 * The start of every script that reads the time: `now`, whole ms from Redis's own clock (TIME), so
 * that replicas whose clocks differ stamp and compare on one clock.
 */
export const NOW_MS_LUA = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

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

/** A `requireAck` durable write that the primary made and no replica acknowledged in time: what the script returned is `value`. */
export class Unacknowledged extends StoreUnavailable {
  constructor(
    detail: string,
    readonly value: unknown,
  ) {
    super('timeout', detail);
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

/** What /readyz and the admin page say about the shared store. */
export interface RedisStatus {
  readonly topology: Topology;
  readonly url: string;
  readonly connected: boolean;
  /** The primary commands go to (`host:port`; every primary of a cluster, comma-separated), once known. */
  readonly primary: string | undefined;
  /** While not connected: why (what the last attempt got). */
  readonly reason: string | undefined;
}

/** A write a replica must have before it is done; see `durableScript`. */
export interface DurableOptions {
  /** Fail (StoreUnavailable) when no replica acknowledged in time; otherwise it is logged and counts as done. */
  readonly requireAck?: boolean;
}

/** Reconnect for ever: 50 ms doubling to 2 s, plus jitter so replicas do not reconnect in step. */
const backoff = (times: number): number => Math.min(2000, 50 * 2 ** Math.min(times, 6)) + Math.floor(Math.random() * 100);

const COMMON: RedisOptions = { enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: backoff };

function createClient(t: RedisTarget): Redis | Cluster {
  const auth = { ...(t.username ? { username: t.username } : {}), ...(t.password ? { password: t.password } : {}) };
  if (t.kind === 'single') return new (lib().Redis)(t.url, COMMON);
  if (t.kind === 'sentinel') {
    return new (lib().Redis)({
      ...COMMON,
      ...auth,
      sentinels: t.sentinels.map((s) => ({ ...s })),
      name: t.masterName,
      role: 'master',
      db: t.db,
      // A failover announced by a sentinel reconnects at once, even while the old primary is still up.
      failoverDetector: true,
      sentinelRetryStrategy: (times) => Math.min(1000, 50 * times),
      ...(t.sentinelUsername ? { sentinelUsername: t.sentinelUsername } : {}),
      ...(t.sentinelPassword ? { sentinelPassword: t.sentinelPassword } : {}),
      ...(t.tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
    });
  }
  const options: ClusterOptions = {
    enableOfflineQueue: false,
    scaleReads: 'master',
    slotsRefreshTimeout: 2000,
    clusterRetryStrategy: backoff,
    redisOptions: { ...COMMON, ...auth, ...(t.tls ? { tls: {} } : {}) },
    // With TLS, connect to the address the cluster announces (no lookup that would change the certificate's name).
    ...(t.tls ? { dnsLookup: (address: string, done: (err: Error | null, a: string) => void) => done(null, address) } : {}),
  };
  return new (lib().Cluster)(
    t.seeds.map((s) => ({ ...s })),
    options,
  );
}

/**
 * How long a durable write waits for a replica: within --redis-timeout, which bounds the callers
 * that wait on one (a token request), leaving half of it for the write itself.
 */
export const ackTimeoutMs = (redisTimeoutMs: number): number => Math.max(10, Math.floor(redisTimeoutMs / 2));

/** Replicas that must have a durable write. */
const ACK_REPLICAS = 1;

type Pipeline = Record<string, (...a: (string | number)[]) => unknown> & { wait(n: number, ms: number): unknown; exec(): Promise<[Error | null, unknown][] | null> };

export class RedisConnection {
  readonly client: Redis | Cluster;
  readonly target: RedisTarget;
  /** For durable writes: their WAITs never hold up the request path's commands. */
  private durable: Redis | Cluster | undefined;
  private lastProblem: string | undefined;
  private lastSentinelProblem: string | undefined;
  /** Told of each change of `up`; each removed by its owner (`onState`'s return), or kept as long as this connection. */
  private readonly listeners: ((up: boolean) => void)[] = [];
  private wasUp = false;
  private unacked = 0;
  private unackedLogged = 0;
  /** Counts the durable connection's (re)connections: a write made before the last one is not covered by a WAIT on it now. */
  private durableEpoch = 0;
  private closed = false;

  /** `ackTimeoutMs`: how long a durable write waits for a replica (WAIT's timeout). */
  /** The scripts defined so far, by name: `warm` loads them on every primary. */
  private readonly scripts = new Map<string, ScriptSpec>();

  constructor(
    url: string,
    private readonly log: Logger | undefined,
    private readonly ackTimeoutMs = 1000,
  ) {
    this.target = parseRedisUrl(url);
    this.client = createClient(this.target);
    // Sentinel and Cluster have replicas to wait for: durable writes get their own connection, from the start.
    if (this.target.kind !== 'single') {
      this.durable = createClient(this.target);
      // Its problems are the main connection's (the same servers): said there, not twice.
      this.durable.on('error', () => undefined);
      this.durable.on('ready', () => {
        this.durableEpoch++;
        this.changed();
      });
      this.durable.on('close', () => this.changed());
      this.durable.on('end', () => this.revive(this.durable!));
    }
    this.client.on('end', () => this.revive(this.client));
    this.client.on('ready', () => {
      this.lastProblem = undefined;
      this.lastSentinelProblem = undefined;
      this.log?.info({ redis: this.target.redacted, topology: this.target.kind, primary: this.primary() }, 'redis connected');
      this.changed();
    });
    this.client.on('close', () => this.changed());
    // Sentinels that answer but do not know the master say so here, not in 'error'.
    this.client.on('sentinelError', (err: Error) => {
      this.lastSentinelProblem = this.explain(err.message);
    });
    this.client.on('node error', (err: Error, node?: string) => this.problem(`${node ?? 'a cluster node'}: ${err.message}`));
    // Without a listener ioredis would throw; say it once per distinct problem, not per retry.
    this.client.on('error', (err: Error) => this.problem(err.message));
  }

  /**
   * ioredis gives a connection up for good ('end') when its connect attempt fails outright rather
   * than by a retried error: a Sentinel's failover announcement arriving while the client is still
   * asking the sentinels for the primary makes the attempt throw "Connection is closed." and never
   * retry. The gateway never means to stop while it runs: start it again, with the usual backoff.
   */
  private revive(c: Redis | Cluster): void {
    if (this.closed) return;
    setTimeout(() => {
      if (this.closed || c.status !== 'end') return;
      c.connect().catch(() => undefined);
    }, backoff(1)).unref();
  }

  /** Tell the listeners when `up` changes. */
  private changed(): void {
    const up = this.up;
    if (up === this.wasUp) return;
    this.wasUp = up;
    for (const l of this.listeners) l(up);
  }

  private explain(message: string): string {
    if (this.target.kind === 'sentinel' && (message.includes('invalid reply: null') || message.includes('No such master with that name'))) {
      const from = /sentinel (\S+?)(?: successfully| because)/.exec(message)?.[1] ?? 'a sentinel';
      return `sentinel ${from} does not know a master named "${this.target.masterName}"`;
    }
    return message;
  }

  private problem(message: string): void {
    const m = this.lastSentinelProblem && message.includes('All sentinels are unreachable') ? `${this.lastSentinelProblem} (${message})` : this.explain(message);
    if (m === this.lastProblem) return;
    this.lastProblem = m;
    this.log?.warn({ redis: this.target.redacted, topology: this.target.kind, problem: m }, 'redis unavailable: token checks answer 503, rate limits use the local share; reconnecting');
  }

  /** Connected and ready for commands now (both connections, with Sentinel or Cluster). */
  get up(): boolean {
    return this.client.status === 'ready' && (this.durable === undefined || this.durable.status === 'ready');
  }

  /** The primary in use now, `host:port` (every primary of a cluster, comma-separated). */
  primary(): string | undefined {
    if (!this.up) return undefined;
    if (this.client instanceof lib().Cluster) {
      const nodes = this.client.nodes('master').map((n) => `${n.options.host}:${n.options.port}`);
      return nodes.length > 0 ? nodes.sort().join(',') : undefined;
    }
    const s = this.client.stream as { remoteAddress?: string; remotePort?: number } | undefined;
    if (!s?.remoteAddress) return undefined;
    return `${s.remoteAddress.includes(':') ? `[${s.remoteAddress}]` : s.remoteAddress}:${s.remotePort}`;
  }

  status(): RedisStatus {
    const connected = this.up;
    return {
      topology: this.target.kind,
      url: this.target.redacted,
      connected,
      primary: this.primary(),
      reason: connected
        ? undefined
        : this.client.status === 'ready'
          ? `the durable-write connection is ${this.durable?.status}`
          : (this.lastProblem ?? this.lastSentinelProblem ?? `not connected yet (${this.client.status})`),
    };
  }

  /** Tell `listener` whenever the connection goes up or down; the function returned removes it (a listener that goes before the connection: a log sink's writer). */
  onState(listener: (up: boolean) => void): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** Define a script (once per name) and return its caller: KEYS then ARGV. */
  script(name: string, spec: ScriptSpec): ScriptCall {
    this.scripts.set(name, spec);
    return defineOn(this.client, name, spec);
  }

  /**
   * Ready for the first requests as for later ones (docs/redis.md#readiness): connected, with a
   * connection to every primary (a Cluster's too: ioredis opens them on first use) and every script
   * defined so far loaded there, so the first call on each is one EVALSHA, not a connect and an EVAL
   * that outlast --redis-timeout and send the limiter to its local share. Resolves true when warm,
   * false when the store is down (the gateway starts in fallback, as ever) or `ms` passed first.
   */
  async warm(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    const until = <T>(p: Promise<T>): Promise<T | undefined> => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()))));
      return Promise.race([p, late]).finally(() => clearTimeout(timer));
    };
    if (!this.up) {
      // Up, or known down (refused, unknown master): down means fallback now, not a wait; slow is waited for.
      const settled = await until(
        new Promise<boolean>((resolve) => {
          const check = (): void => {
            if (this.up) resolve(true);
            else if (this.knownDown()) resolve(false);
            else setTimeout(check, 20);
          };
          check();
        }),
      );
      if (settled !== true) return false;
    }
    const scripts = [...this.scripts.values()];
    const loads: Promise<unknown>[] = [];
    for (const c of this.durable === undefined ? [this.client] : [this.client, this.durable]) {
      const nodes = c instanceof lib().Cluster ? c.nodes('master') : [c];
      for (const node of nodes) for (const s of scripts) loads.push(node.script('LOAD', s.lua));
    }
    const loaded = await until(
      Promise.all(loads).then(
        () => true,
        () => false,
      ),
    );
    if (loaded === true) return true;
    // A load that timed out met a slow store, not a down one: try again within the deadline.
    if (loaded === false && !this.knownDown() && Date.now() < deadline) {
      await until(new Promise<void>((resolve) => setTimeout(resolve, 100)));
      if (Date.now() < deadline) return this.warm(deadline - Date.now());
    }
    return false;
  }

  /**
   * A problem that says the store is down or unknown (refused, no sentinel answering, an unknown
   * master): the start does not wait for it. A timeout says it is slow, which a wait may outlast.
   */
  private knownDown(): boolean {
    const p = this.lastProblem ?? this.lastSentinelProblem;
    return p !== undefined && !/time(d)? ?out|ETIMEDOUT/i.test(p);
  }

  /**
   * A script whose writes must survive a failover: sent on the durable connection and followed by
   * `WAIT 1 <ackTimeoutMs>` in the same round trip, so it resolves once a replica has it (or the
   * wait ran out: logged, and an error with `requireAck`). One server (redis://) has no failover
   * the gateway follows: there it is the plain script, as before.
   */
  durableScript(name: string, spec: ScriptSpec, options: DurableOptions = {}): ScriptCall {
    const durable = this.durable;
    if (durable === undefined) return this.script(name, spec);
    this.scripts.set(name, spec);
    defineOn(durable, name, spec);
    const send = async (args: (string | number)[], redirected: boolean): Promise<unknown> => {
      const pipeline = durable.pipeline() as unknown as Pipeline;
      pipeline[name]!(...args);
      pipeline.wait(ACK_REPLICAS, this.ackTimeoutMs);
      const r = await pipeline.exec();
      if (!r) throw new StoreUnavailable('down', `${name}: no answer`);
      const [[err, value], [waitErr, acked]] = r as [[Error | null, unknown], [Error | null, unknown]];
      if (err) {
        // ioredis follows a redirection in a pipeline only when every command got it, and WAIT (no key) never
        // does: after a cluster failover, learn the new slot map and send it again, once.
        if (!redirected && durable instanceof lib().Cluster && /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /.test(err.message)) {
          await new Promise<void>((resolve) => durable.refreshSlotsCache(() => resolve()));
          return send(args, true);
        }
        throw err;
      }
      if (waitErr || Number(acked) < ACK_REPLICAS) {
        this.unacknowledged(name, waitErr?.message);
        if (options.requireAck) throw new Unacknowledged(`${name}: no replica acknowledged within ${this.ackTimeoutMs} ms`, value);
      }
      return value;
    };
    return (...args) => send(args, false);
  }

  /**
   * A connection of its own to the same servers (the primary, through the sentinels or the slot
   * map), for a command that blocks (`XREADGROUP … BLOCK`): nothing waits behind it. Not revived
   * by this connection: its user makes another when it ended, and closes it (`disconnect`).
   */
  blockingClient(): Redis | Cluster {
    const c = createClient(this.target);
    // Its problems are the main connection's (the same servers): said there, not twice.
    c.on('error', () => undefined);
    return c;
  }

  /**
   * Which connection durable writes go on now: a write a replica did not acknowledge in time (a
   * `requireAck` script that failed with StoreUnavailable('timeout')) is on the primary; while this
   * is unchanged, `replicated` can still confirm it, without writing it again.
   */
  get durableConnection(): number {
    return this.durableEpoch;
  }

  /**
   * Whether a replica has every write made so far on the durable connection to `key`'s primary
   * (`WAIT 1`, bounded; sent behind a read of the key, so a Cluster routes it to that primary's
   * connection): true at once on one server (redis://), which has no replica to wait for.
   */
  async replicated(key: string): Promise<boolean> {
    const durable = this.durable;
    if (durable === undefined) return true;
    const pipeline = durable.pipeline() as unknown as Pipeline;
    pipeline.exists!(key);
    pipeline.wait(ACK_REPLICAS, this.ackTimeoutMs);
    const r = await pipeline.exec();
    const wait = r?.[1];
    if (wait === undefined || wait[0] !== null) throw new StoreUnavailable('down', `WAIT after ${key}: ${wait?.[0]?.message ?? 'no answer'}`);
    return Number(wait[1]) >= ACK_REPLICAS;
  }

  /** Durable writes that no replica acknowledged in time, so far. */
  get unacknowledgedWrites(): number {
    return this.unacked;
  }

  private unacknowledged(name: string, problem: string | undefined): void {
    this.unacked++;
    const now = Date.now();
    if (now - this.unackedLogged < 60_000) return;
    this.unackedLogged = now;
    this.log?.warn(
      { redis: this.target.redacted, write: name, waitedMs: this.ackTimeoutMs, ...(problem ? { problem } : {}), unacknowledged: this.unacked },
      'redis: no replica acknowledged a write in time; it is on the primary only, and a failover now could lose it',
    );
  }

  close(): void {
    this.closed = true;
    this.client.disconnect();
    this.durable?.disconnect();
  }
}

function defineOn(client: Redis | Cluster, name: string, spec: ScriptSpec): ScriptCall {
  const commands = client as unknown as Record<string, ScriptCall | undefined>;
  if (!commands[name]) client.defineCommand(name, spec);
  return commands[name]!.bind(client);
}
