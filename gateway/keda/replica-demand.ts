/**
 * Flow demand over every replica of the gateway that shares --redis-url, and how many replicas
 * there are: what KEDA is told (scaler.ts), what splits the fixed concurrency limits and what a
 * rate limit's local share is (the gateway's one count of its replicas).
 *
 * Each replica's control plane keeps a short-lived record per predictor in Redis: a hash per
 * predictor (key hash-tagged `{namespace/deployment}`, so one deployment's keys share a Redis
 * Cluster slot), a field per replica, its value `demand:expiresAtMs`. Once a second (and sooner
 * when a predictor's demand turns from zero to some, or back), one Lua script call per deployment
 * writes this replica's demand and reads the others': the script stamps and checks expiry against
 * Redis's own clock (TIME), so the replicas' clocks do not matter, and drops expired fields. No
 * request ever waits on it. A predictor's total is this replica's demand now plus the others'
 * as last read. The same script, on the roster key (a record per replica, its value the replica's
 * worker count), counts the live replicas and their processes, every second whether or not any
 * predictor is under flow control.
 *
 * While Redis is away (or without it) the total is this replica's own demand and the replica count
 * is 1: each replica then admits up to the whole fixed limit, as one replica alone would, rather
 * than hold a split that no longer matches the replicas still alive. The process count stays as last
 * counted: a rate limit decided locally during the outage takes this process's share of it
 * (auth/rate-limit.ts). Nothing blocks meanwhile.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { KEY_PREFIX, NOW_MS_LUA, withTimeout, type RedisConnection } from '../auth/redis.js';
import type { FlowDemandSource, PredictorDemand, ReplicaCount, ReplicaTally } from '../flow/demand.js';
import type { DemandTotals } from './scaler.js';
import { debounced, predictorKey } from './worker-demand.js';

/** How often each replica writes its records and reads the others'. */
export const RECORD_EVERY_MS = 1000;
/** A record not renewed for this long is no longer counted (three missed writes). */
export const RECORD_TTL_MS = 3000;
/** The soonest an early write follows the previous one (a predictor's demand turned from zero to some or back). */
const EARLY_WRITE_GAP_MS = 250;
/** Local changes reach the listeners (KEDA streams) at most this late. */
const NOTIFY_DEBOUNCE_MS = 50;

/** KEYS: hashes of records sharing a slot (a deployment's predictors, or the roster); ARGV: replica id, ttl (ms), then this replica's value per key. Returns {others' sum, live replicas} per key. */
const RECORD_LUA = `
${NOW_MS_LUA}local ttl = tonumber(ARGV[2])
local out = {}
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, ARGV[1], ARGV[i + 2] .. ':' .. (now + ttl))
  local others, live = 0, 0
  local all = redis.call('HGETALL', key)
  for j = 1, #all, 2 do
    local v = all[j + 1]
    local sep = string.find(v, ':', 1, true)
    local expires = sep and tonumber(string.sub(v, sep + 1)) or 0
    if expires <= now then
      redis.call('HDEL', key, all[j])
    else
      live = live + 1
      if all[j] ~= ARGV[1] then others = others + (tonumber(string.sub(v, 1, sep - 1)) or 0) end
    end
  end
  if live == 0 then redis.call('DEL', key) else redis.call('PEXPIRE', key, ttl * 2) end
  out[i] = {others, live}
end
return out
`;

/** The Redis key of a predictor's records. */
export function demandKey(d: Pick<PredictorDemand, 'namespace' | 'deployment' | 'predictor'>): string {
  return `${KEY_PREFIX}flow-demand:{${d.namespace}/${d.deployment}}:${d.predictor}`;
}

/** The roster: a record per live replica, its value the replica's worker count. */
export const ROSTER_KEY = `${KEY_PREFIX}replicas`;

/** This process's replica id in the records: the pod's name (hostname), the pid and a random part. */
export function replicaId(): string {
  return `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
}

export interface ReplicaDemandOptions {
  /** This replica's demand (its data planes', summed). */
  readonly local: FlowDemandSource;
  readonly redis?: RedisConnection | undefined;
  /** This replica's processes (its workers; 1 without). */
  readonly workers?: number;
  /** Told each time the count changes. */
  readonly replicasChanged?: (tally: ReplicaTally) => void;
  readonly timeoutMs?: number;
  readonly log?: Logger;
  readonly id?: string;
}

export class ReplicaDemand implements DemandTotals, ReplicaCount {
  readonly id: string;
  /** The other replicas' demand per predictor key, as last read. */
  private others = new Map<string, number>();
  private tally: ReplicaTally;
  private readonly listeners = new Set<() => void>();
  private readonly record: ((...args: (string | number)[]) => Promise<unknown>) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private early: NodeJS.Timeout | undefined;
  private busy: Promise<void> | undefined;
  private lastWriteAt = 0;
  /** Predictors written as active (demand > 0) at the last write. */
  private written = new Set<string>();
  private stopped = false;
  private readonly unsubscribe: () => void;
  private readonly notify = debounced(NOTIFY_DEBOUNCE_MS, () => this.localChanged());
  /** Whether the last call reached Redis ('unknown' until one did or failed): each outage is logged once. */
  private redis: 'unknown' | 'up' | 'away' = 'unknown';

  constructor(private readonly options: ReplicaDemandOptions) {
    this.id = options.id ?? replicaId();
    this.tally = { replicas: 1, processes: this.workers };
    this.record = options.redis?.script('sgwFlowDemand', { lua: RECORD_LUA });
    this.unsubscribe = options.local.onChange(this.notify);
  }

  start(): void {
    if (!this.record) return;
    this.timer = setInterval(() => void this.write(), RECORD_EVERY_MS);
    this.timer.unref();
    void this.write();
  }

  /** Stop writing; with Redis, this replica's records expire now (the others count one fewer at their next write). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.early);
    this.notify.cancel();
    this.unsubscribe();
    await this.busy;
    if (this.record && this.options.redis?.up) await this.call(0).catch(() => undefined);
  }

  total(namespace: string, deployment: string, predictor: string): number | undefined {
    const key = predictorKey({ namespace, deployment, predictor });
    const own = this.options.local.snapshot().find((d) => predictorKey(d) === key);
    if (!own) return undefined;
    return own.queued + own.inflight + (this.others.get(key) ?? 0);
  }

  replicas(): number {
    return this.tally.replicas;
  }

  processes(): number {
    return this.tally.processes;
  }

  private get workers(): number {
    return Math.max(1, this.options.workers ?? 1);
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  /** Local counts moved: tell the listeners; write early if a predictor turned active or idle. */
  private localChanged(): void {
    this.changed();
    if (!this.record || this.stopped || this.early) return;
    const active = new Set(
      this.options.local
        .snapshot()
        .filter((d) => d.queued + d.inflight > 0)
        .map(predictorKey),
    );
    if (active.size === this.written.size && [...active].every((k) => this.written.has(k))) return;
    const wait = Math.max(0, this.lastWriteAt + EARLY_WRITE_GAP_MS - Date.now());
    this.early = setTimeout(() => {
      this.early = undefined;
      void this.write();
    }, wait);
  }

  /** One write-and-read; overlapping calls share the one in progress. */
  private write(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.busy ??= this.call(RECORD_TTL_MS)
      .catch((err: unknown) => this.redisAway(err))
      .finally(() => (this.busy = undefined));
    return this.busy;
  }

  private async call(ttlMs: number): Promise<void> {
    this.lastWriteAt = Date.now();
    const snapshot = this.options.local.snapshot();
    const byDeployment = new Map<string, PredictorDemand[]>();
    for (const d of snapshot) {
      const k = `${d.namespace}/${d.deployment}`;
      byDeployment.set(k, [...(byDeployment.get(k) ?? []), d]);
    }
    this.written = new Set(snapshot.filter((d) => d.queued + d.inflight > 0).map(predictorKey));
    // One call per deployment (its keys share a slot in Redis Cluster), and one for the roster.
    const script = (keys: string[], values: number[], what: string): Promise<[number, number][]> =>
      withTimeout(this.record!(keys.length, ...keys, this.id, ttlMs, ...values), this.options.timeoutMs ?? 1000, what) as Promise<[number, number][]>;
    const [roster, ...results] = await Promise.all([
      script([ROSTER_KEY], [this.workers], 'replica roster'),
      ...[...byDeployment.values()].map(async (ds) => {
        const reply = await script(
          ds.map(demandKey),
          ds.map((d) => d.queued + d.inflight),
          'flow demand records',
        );
        return ds.map((d, i) => [predictorKey(d), reply[i]![0]] as const);
      }),
    ]);
    if (ttlMs === 0) return;
    const others = new Map<string, number>(results.flat());
    const [otherWorkers, live] = roster![0]!;
    if (this.redis === 'away') this.options.log?.info('flow demand: redis is back, counting every replica again');
    this.redis = 'up';
    this.apply(others, { replicas: Math.max(1, live), processes: this.workers + otherWorkers });
  }

  private redisAway(err: unknown): void {
    // At start-up the connection may not be ready yet: RedisConnection says so itself.
    if (this.redis === 'up') {
      this.options.log?.warn({ problem: err instanceof Error ? err.message : String(err) }, 'flow demand: redis unavailable, KEDA is told this replica alone and fixed limits are not split');
    }
    this.redis = 'away';
    this.apply(new Map(), { replicas: 1, processes: this.tally.processes });
  }

  private apply(others: Map<string, number>, tally: ReplicaTally): void {
    const moved = others.size !== this.others.size || [...others].some(([k, v]) => this.others.get(k) !== v);
    this.others = others;
    if (tally.replicas !== this.tally.replicas || tally.processes !== this.tally.processes) {
      this.tally = tally;
      this.options.replicasChanged?.(tally);
    }
    if (moved) this.changed();
  }
}
