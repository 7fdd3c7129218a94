/**
 * Where rollouts and bandits keep what replicas share (docs/rollouts.md, docs/bandits.md): the
 * counts each replica flushes once a second, the run's state written by compare-and-set on an
 * epoch, the lease that says which replica may advance a run, and a bandit's decayed reward sums.
 *
 *   --redis-url   Redis: every replica of the gateway reads and writes the same keys.
 *   otherwise     this process's memory (the cluster primary, or the single process).
 *
 * Redis is written only by the scripts below, each one atomic, and every key of one deployment
 * carries the hash tag `{ns/name}`, so each script touches one slot (Redis Cluster works too). The
 * state and the lease are written durably (a replica acknowledges them: RedisConnection.durableScript);
 * counts and rewards are not (docs/redis.md says why).
 * Times are the store's clock (Redis TIME), never a replica's: windows, decay and the lease agree
 * whichever replica wrote them.
 *
 * Counts are appended, stamped by the store's clock, to a list per run; the leader reads a prefix,
 * decides, and writes the new state and trims exactly that prefix in one script. So a piece of
 * counts is consumed once: a leader that dies between reading and writing leaves the list as it
 * was, and a stale leader's write fails on the epoch.
 */
import { KEY_PREFIX, NOW_MS_LUA, type RedisConnection } from '../auth/redis.js';
import { addReward, type ArmStats } from '../../routing/steering/bandit.js';

/** One replica's counts for about a second, as it flushed them (field → count), and when the store received them. */
export interface CountsPiece {
  /** Store clock, ms. */
  readonly at: number;
  readonly counts: Readonly<Record<string, number>>;
}

/** A run's stored state: an epoch that each write increases by one, and the state's JSON. */
export interface StoredState {
  readonly epoch: number;
  readonly json: string;
}

export type RewardOutcome = 'recorded' | 'duplicate';

export interface SteerStore {
  /** Whether it is a store every replica shares (Redis), or this process's memory. */
  readonly shared: boolean;
  /** Append one piece of counts to a run's list. */
  addCounts(deployment: string, run: string, counts: Readonly<Record<string, number>>): Promise<void>;
  /** The run's pending pieces (oldest first, at most `max`), its state, and the store's clock now. */
  pending(deployment: string, run: string, max: number): Promise<{ pieces: CountsPiece[]; state: StoredState | null; now: number }>;
  /**
   * Write the run's state if its epoch is still `epoch` (null: no state yet), and drop the first
   * `consumed` pieces. Unless `anyone` (a rollback: any replica may retreat), only the lease holder may write.
   */
  writeState(deployment: string, run: string, epoch: number | null, json: string, consumed: number, holder: string, anyone: boolean): Promise<boolean>;
  /** The run's state, without its pieces. */
  readState(deployment: string, run: string): Promise<StoredState | null>;
  /**
   * Take or keep the lease on a deployment's decisions for `ttlMs`; true while `holder` has it. A lease
   * write no replica acknowledged in time still counts (a promoted replica with no replica of its own
   * would stop every rollout): one lost in a failover lets another replica take it while this one still
   * believes it holds it, for at most `ttlMs` (controller.ts); their writes are fenced by `writeState`.
   */
  lease(deployment: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Record one reward for an arm, once per nonce (kept `nonceTtlMs`), decayed on the store's clock. */
  reward(deployment: string, run: string, arm: string, reward: number, nonce: string, nonceTtlMs: number, halfLifeMs: number | null): Promise<RewardOutcome>;
  /** Every arm's sums, and the store's clock now. */
  arms(deployment: string, run: string): Promise<{ arms: Map<string, ArmStats>; now: number }>;
  /**
   * Keep only these runs (`deployment\0run`) and their deployments' leases: the others' deployments
   * left the table or started a new run. The store in this process's memory forgets them; Redis
   * keys expire by themselves (their TTL), so Redis keeps them for another replica still running them.
   */
  retain(runs: ReadonlySet<string>): void;
  close(): void;
}

/** The key of a run in `SteerStore.retain`'s set. */
export const runKey = (deployment: string, run: string): string => `${deployment}\u0000${run}`;

/** Pieces kept per run at most while no leader consumes them (an hour of one replica's flushes). */
export const MAX_PIECES = 3600;
/** Keys of a run expire after a day without writes. */
const TTL_MS = 86_400_000;

const keyOf = (deployment: string, run: string, what: string): string => `${KEY_PREFIX}steer:{${deployment}}:${run}:${what}`;
const leaseKey = (deployment: string): string => `${KEY_PREFIX}steer:{${deployment}}:lease`;

// KEYS: the run's list. ARGV: the counts (JSON), most pieces kept, TTL ms. The piece is stamped with TIME.
const ADD_COUNTS = {
  numberOfKeys: 1,
  lua: `
${NOW_MS_LUA}redis.call('RPUSH', KEYS[1], now .. '|' .. ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return now`,
};

// KEYS: the run's list, its state. ARGV: most pieces. Returns {now, state or false, pieces...}.
const PENDING = {
  numberOfKeys: 2,
  lua: `
${NOW_MS_LUA}local state = redis.call('GET', KEYS[2])
local pieces = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local out = {now, state}
for i = 1, #pieces do out[#out + 1] = pieces[i] end
return out`,
};

// KEYS: the run's state, its list, the deployment's lease. ARGV: expected epoch ('' = none yet),
// new state JSON (carrying epoch + 1), pieces consumed, holder, anyone ('1': no lease needed), TTL ms.
// The state is stored as "<epoch>|<json>".
const WRITE_STATE = {
  numberOfKeys: 3,
  lua: `
local cur = redis.call('GET', KEYS[1])
local epoch = ''
if cur then epoch = string.sub(cur, 1, string.find(cur, '|', 1, true) - 1) end
if epoch ~= ARGV[1] then return 0 end
if ARGV[5] ~= '1' and redis.call('GET', KEYS[3]) ~= ARGV[4] then return 0 end
local next = (tonumber(ARGV[1]) or 0) + 1
redis.call('SET', KEYS[1], next .. '|' .. ARGV[2], 'PX', tonumber(ARGV[6]))
local n = tonumber(ARGV[3])
if n > 0 then redis.call('LTRIM', KEYS[2], n, -1) end
return 1`,
};

// KEYS: the lease. ARGV: holder, TTL ms. Taken when free, extended by its holder.
const LEASE = {
  numberOfKeys: 1,
  lua: `
local cur = redis.call('GET', KEYS[1])
if cur == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2])) return 1 end
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])) return 1 end
return 0`,
};

// KEYS: the arms hash, the nonce. ARGV: arm, reward in [0, 1], nonce TTL ms, half-life ms ('' = none), TTL ms.
// The same arithmetic as routing/steering/bandit.ts addReward: decay to now on the store's clock, then add.
const REWARD = {
  numberOfKeys: 2,
  lua: `
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', tonumber(ARGV[3])) then return 0 end
${NOW_MS_LUA}local a = ARGV[1]
local v = redis.call('HMGET', KEYS[1], a .. ':s', a .. ':f', a .. ':n', a .. ':t')
local s, f, n, last = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0, tonumber(v[4]) or now
if ARGV[4] ~= '' and now > last then
  local k = math.pow(2, -(now - last) / tonumber(ARGV[4]))
  s, f = s * k, f * k
end
local r = tonumber(ARGV[2])
local ts = now
if last > now then ts = last end
redis.call('HSET', KEYS[1], a .. ':s', tostring(s + r), a .. ':f', tostring(f + 1 - r), a .. ':n', n + 1, a .. ':t', ts)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]))
return 1`,
};

// KEYS: the arms hash. Returns {now, field, value, ...}.
const ARMS = {
  numberOfKeys: 1,
  lua: `
${NOW_MS_LUA}local out = {now}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all do out[#out + 1] = all[i] end
return out`,
};

function parsePiece(raw: string): CountsPiece | null {
  const bar = raw.indexOf('|');
  if (bar < 0) return null;
  try {
    const counts = JSON.parse(raw.slice(bar + 1)) as Record<string, number>;
    return { at: Number(raw.slice(0, bar)), counts };
  } catch {
    return null;
  }
}

function parseState(raw: string | null | undefined): StoredState | null {
  if (!raw) return null;
  const bar = raw.indexOf('|');
  return bar < 0 ? null : { epoch: Number(raw.slice(0, bar)), json: raw.slice(bar + 1) };
}

/** The arms hash (`<arm>:s`, `:f`, `:n`, `:t`) as ArmStats per arm. */
function armsOf(fields: readonly string[]): Map<string, ArmStats> {
  const arms = new Map<string, ArmStats>();
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const field = fields[i]!;
    const colon = field.lastIndexOf(':');
    const arm = field.slice(0, colon);
    const a = arms.get(arm) ?? { s: 0, f: 0, n: 0, t: 0 };
    const v = Number(fields[i + 1]);
    const which = field.slice(colon + 1);
    arms.set(arm, { ...a, [which]: v });
  }
  return arms;
}

export class RedisSteerStore implements SteerStore {
  readonly shared = true;
  private readonly addScript;
  private readonly pendingScript;
  private readonly writeScript;
  private readonly leaseScript;
  private readonly rewardScript;
  private readonly armsScript;

  constructor(private readonly redis: RedisConnection) {
    this.addScript = redis.script('sgwSteerAdd', ADD_COUNTS);
    this.pendingScript = redis.script('sgwSteerPending', PENDING);
    // A step written, or a lease taken, must survive a failover (docs/redis.md): a replica has it first.
    this.writeScript = redis.durableScript('sgwSteerWrite', WRITE_STATE);
    this.leaseScript = redis.durableScript('sgwSteerLease', LEASE);
    this.rewardScript = redis.script('sgwSteerReward', REWARD);
    this.armsScript = redis.script('sgwSteerArms', ARMS);
  }

  async addCounts(deployment: string, run: string, counts: Readonly<Record<string, number>>): Promise<void> {
    await this.addScript(keyOf(deployment, run, 'counts'), JSON.stringify(counts), MAX_PIECES, TTL_MS);
  }

  async pending(deployment: string, run: string, max: number): Promise<{ pieces: CountsPiece[]; state: StoredState | null; now: number }> {
    const r = (await this.pendingScript(keyOf(deployment, run, 'counts'), keyOf(deployment, run, 'state'), max)) as [number, string | null, ...string[]];
    const pieces: CountsPiece[] = [];
    for (let i = 2; i < r.length; i++) {
      const p = parsePiece(r[i] as string);
      // An unreadable piece still counts as consumed (its place in the list), as nothing.
      pieces.push(p ?? { at: 0, counts: {} });
    }
    return { now: Number(r[0]), state: parseState(r[1]), pieces };
  }

  async writeState(deployment: string, run: string, epoch: number | null, json: string, consumed: number, holder: string, anyone: boolean): Promise<boolean> {
    const ok = await this.writeScript(
      keyOf(deployment, run, 'state'),
      keyOf(deployment, run, 'counts'),
      leaseKey(deployment),
      epoch === null ? '' : String(epoch),
      json,
      consumed,
      holder,
      anyone ? '1' : '0',
      TTL_MS,
    );
    return Number(ok) === 1;
  }

  async readState(deployment: string, run: string): Promise<StoredState | null> {
    return parseState(await this.redis.client.get(keyOf(deployment, run, 'state')));
  }

  async lease(deployment: string, holder: string, ttlMs: number): Promise<boolean> {
    return Number(await this.leaseScript(leaseKey(deployment), holder, ttlMs)) === 1;
  }

  async reward(deployment: string, run: string, arm: string, reward: number, nonce: string, nonceTtlMs: number, halfLifeMs: number | null): Promise<RewardOutcome> {
    const r = await this.rewardScript(
      keyOf(deployment, run, 'arms'),
      keyOf(deployment, run, `nonce:${nonce}`),
      arm,
      reward,
      Math.max(1, Math.ceil(nonceTtlMs)),
      halfLifeMs === null ? '' : halfLifeMs,
      TTL_MS,
    );
    return Number(r) === 1 ? 'recorded' : 'duplicate';
  }

  async arms(deployment: string, run: string): Promise<{ arms: Map<string, ArmStats>; now: number }> {
    const r = (await this.armsScript(keyOf(deployment, run, 'arms'))) as [number, ...string[]];
    return { now: Number(r[0]), arms: armsOf(r.slice(1) as string[]) };
  }

  /** Redis keys expire by their TTL; another replica may still run a run this one no longer routes. */
  retain(): void {}

  close(): void {}
}

interface MemoryRun {
  pieces: CountsPiece[];
  state: StoredState | null;
  arms: Map<string, ArmStats>;
}

/** The same store in this process's memory (one process, or a cluster primary for its workers). */
export class MemorySteerStore implements SteerStore {
  readonly shared = false;
  private readonly runs = new Map<string, MemoryRun>();
  private readonly leases = new Map<string, { holder: string; until: number }>();
  private readonly nonces = new Map<string, number>();
  private sweeps = 0;

  constructor(private readonly clock: () => number = Date.now) {}

  private run(deployment: string, run: string): MemoryRun {
    const key = runKey(deployment, run);
    let r = this.runs.get(key);
    if (!r) this.runs.set(key, (r = { pieces: [], state: null, arms: new Map() }));
    return r;
  }

  async addCounts(deployment: string, run: string, counts: Readonly<Record<string, number>>): Promise<void> {
    const r = this.run(deployment, run);
    r.pieces.push({ at: this.clock(), counts: { ...counts } });
    if (r.pieces.length > MAX_PIECES) r.pieces.splice(0, r.pieces.length - MAX_PIECES);
  }

  async pending(deployment: string, run: string, max: number): Promise<{ pieces: CountsPiece[]; state: StoredState | null; now: number }> {
    const r = this.run(deployment, run);
    return { pieces: r.pieces.slice(0, max), state: r.state, now: this.clock() };
  }

  async writeState(deployment: string, run: string, epoch: number | null, json: string, consumed: number, holder: string, anyone: boolean): Promise<boolean> {
    const r = this.run(deployment, run);
    if ((r.state?.epoch ?? null) !== epoch) return false;
    const lease = this.leases.get(deployment);
    if (!anyone && (!lease || lease.holder !== holder || lease.until <= this.clock())) return false;
    r.state = { epoch: (epoch ?? 0) + 1, json };
    r.pieces.splice(0, consumed);
    return true;
  }

  async readState(deployment: string, run: string): Promise<StoredState | null> {
    return this.run(deployment, run).state;
  }

  async lease(deployment: string, holder: string, ttlMs: number): Promise<boolean> {
    const now = this.clock();
    const cur = this.leases.get(deployment);
    if (cur && cur.holder !== holder && cur.until > now) return false;
    this.leases.set(deployment, { holder, until: now + ttlMs });
    return true;
  }

  async reward(deployment: string, run: string, arm: string, reward: number, nonce: string, nonceTtlMs: number, halfLifeMs: number | null): Promise<RewardOutcome> {
    const now = this.clock();
    if (++this.sweeps >= 1024) {
      this.sweeps = 0;
      for (const [k, until] of this.nonces) if (until <= now) this.nonces.delete(k);
    }
    const nonceKey = `${deployment}\u0000${run}\u0000${nonce}`;
    const seen = this.nonces.get(nonceKey);
    if (seen !== undefined && seen > now) return 'duplicate';
    this.nonces.set(nonceKey, now + nonceTtlMs);
    const r = this.run(deployment, run);
    r.arms.set(arm, addReward(r.arms.get(arm) ?? { s: 0, f: 0, n: 0, t: now }, reward, now, halfLifeMs));
    return 'recorded';
  }

  async arms(deployment: string, run: string): Promise<{ arms: Map<string, ArmStats>; now: number }> {
    return { arms: new Map(this.run(deployment, run).arms), now: this.clock() };
  }

  retain(runs: ReadonlySet<string>): void {
    const deployments = new Set<string>();
    for (const key of this.runs.keys()) if (!runs.has(key)) this.runs.delete(key);
    for (const key of runs) deployments.add(key.slice(0, key.indexOf('\u0000')));
    for (const dep of this.leases.keys()) if (!deployments.has(dep)) this.leases.delete(dep);
    for (const key of this.nonces.keys()) if (!runs.has(key.slice(0, key.lastIndexOf('\u0000')))) this.nonces.delete(key);
  }

  close(): void {
    this.runs.clear();
  }
}
