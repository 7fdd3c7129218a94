/**
 * Where OAuth tokens live (docs/routing.md#oauth-front-end): in Redis, so every replica accepts every token, or
 * in memory (one store per instance). Either way the store never holds a token itself: a token
 * is found by its SHA-256 (`TokenRecord` under `token:<hash>`), and a client's current token is
 * kept sealed (AES-GCM under a key derived from the client's secret, which only the SeldonDeployment
 * has), so a repeat request gets the same token back without the token ever being stored.
 *
 * Redis keys (the first two with the token's remaining TTL):
 *   seldon-gateway:oauth:token:<sha256 of the token, base64url>  → TokenRecord (JSON)
 *   seldon-gateway:oauth:client:<client_id>                      → ClientEntry (JSON)
 *   seldon-gateway:oauth:incarnation:<namespace>/<name>          → the deployment's identity
 * Revoking marks the token's record `revoked` (kept until it expires, so the answer can say why)
 * and drops the client's entry, but only if that entry still belongs to the registration being
 * revoked (its fingerprint): a late revocation never takes a re-created deployment's new token.
 *
 * Incarnations: a deployment with no `metadata.uid` (a manifest) gets a random identity, agreed by
 * every process through the store (the first to propose one wins, the others adopt it). It is kept
 * across edits, retired when the deployment is deleted, and a re-created deployment gets a new
 * one. Token fingerprints include it (oauth.ts), so a token never outlives its deployment's identity.
 */
import { KEY_PREFIX, type RedisConnection } from './redis.js';

/** What a token stands for; stored under the token's hash. */
export interface TokenRecord {
  readonly clientId: string;
  readonly namespace: string;
  readonly sdep: string;
  readonly scope: string;
  /** Fingerprint of the registration that issued it; a changed key or secret no longer matches. */
  readonly fp: string;
  /** Unix ms. */
  readonly expiresAt: number;
  readonly revoked?: boolean;
}

/** A client's current token, sealed. */
export interface ClientEntry {
  readonly tokenHash: string;
  readonly sealed: string;
  readonly fp: string;
  readonly expiresAt: number;
}

export interface TokenStore {
  /**
   * The client's current entry if it has fingerprint `record.fp`; otherwise store `entry` and
   * `record` (expiring at `record.expiresAt`) and return null. Atomic per client.
   */
  issue(clientId: string, entry: ClientEntry, record: TokenRecord): Promise<ClientEntry | null>;
  lookup(tokenHash: string): Promise<TokenRecord | null>;
  /**
   * Revoke the client's current token and forget the client, if its entry has fingerprint `fp`
   * (any entry when `fp` is undefined); unknown clients are fine.
   */
  revoke(clientId: string, fp?: string): Promise<void>;
  /**
   * The identity of a deployment (`namespace/name`): the stored one if there is one (its lifetime
   * renewed to `ttlMs`), else `proposed`, now stored. Atomic.
   */
  incarnation(deployment: string, proposed: string, ttlMs: number): Promise<string>;
  /** Forget the deployment's identity if it is `incarnation` (any identity when undefined). */
  retire(deployment: string, incarnation: string | undefined): Promise<void>;
  /** Call `listener` whenever the store becomes reachable again (work waiting to be retried can go now). */
  onAvailable?(listener: () => void): void;
  close(): void;
}

const TOKEN = `${KEY_PREFIX}oauth:token:`;
const CLIENT = `${KEY_PREFIX}oauth:client:`;
const INCARNATION_KEY = `${KEY_PREFIX}oauth:incarnation:`;

function parse<T>(json: unknown): T | null {
  if (typeof json !== 'string') return null;
  try {
    return JSON.parse(json) as T;
  } catch {
    return null;
  }
}

/** In this process's memory: one replica (with several workers, the primary holds it: oauth-ipc.ts). */
export class MemoryTokenStore implements TokenStore {
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly clients = new Map<string, ClientEntry>();
  private readonly incarnations = new Map<string, { id: string; expiresAt: number }>();
  private readonly sweeper: NodeJS.Timeout;

  /** `now`: the clock expiry is read from (tests move it instead of sleeping). */
  constructor(
    sweepMs = 60_000,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.sweeper = setInterval(() => this.sweep(this.now()), sweepMs);
    this.sweeper.unref();
  }

  async issue(clientId: string, entry: ClientEntry, record: TokenRecord): Promise<ClientEntry | null> {
    const now = this.now();
    const cur = this.clients.get(clientId);
    if (cur && cur.expiresAt > now && cur.fp === record.fp) return cur;
    this.clients.set(clientId, entry);
    this.tokens.set(entry.tokenHash, record);
    return null;
  }

  async lookup(tokenHash: string): Promise<TokenRecord | null> {
    const r = this.tokens.get(tokenHash);
    if (r && r.expiresAt <= this.now()) {
      this.tokens.delete(tokenHash);
      return null;
    }
    return r ?? null;
  }

  async revoke(clientId: string, fp?: string): Promise<void> {
    const cur = this.clients.get(clientId);
    if (!cur || (fp !== undefined && cur.fp !== fp)) return;
    this.clients.delete(clientId);
    const r = this.tokens.get(cur.tokenHash);
    if (r) this.tokens.set(cur.tokenHash, { ...r, revoked: true });
  }

  async incarnation(deployment: string, proposed: string, ttlMs: number): Promise<string> {
    const now = this.now();
    const cur = this.incarnations.get(deployment);
    const id = cur && cur.expiresAt > now ? cur.id : proposed;
    this.incarnations.set(deployment, { id, expiresAt: now + ttlMs });
    return id;
  }

  async retire(deployment: string, incarnation: string | undefined): Promise<void> {
    const cur = this.incarnations.get(deployment);
    if (cur && (incarnation === undefined || cur.id === incarnation)) this.incarnations.delete(deployment);
  }

  private sweep(now: number): void {
    for (const [k, r] of this.tokens) if (r.expiresAt <= now) this.tokens.delete(k);
    for (const [k, c] of this.clients) if (c.expiresAt <= now) this.clients.delete(k);
    for (const [k, c] of this.incarnations) if (c.expiresAt <= now) this.incarnations.delete(k);
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}

// Each script touches one key, so any topology takes it (a Redis Cluster keeps a client's key and
// a token's key in different slots: a token is looked up by its hash alone). Issuing and revoking
// are therefore a few steps, ordered so that a step that never happens leaves nothing a client
// could use: a token's record is written before the client's entry names it, and a revoked
// token's record is marked before the entry is dropped.

// KEYS: a token's record. ARGV: record JSON, TTL ms.
const PUT_RECORD = { numberOfKeys: 1, lua: `return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])` };

// KEYS: client key. ARGV: entry JSON, TTL ms, fingerprint. The current entry if it has that fingerprint, else stores the new one.
const CLAIM = {
  numberOfKeys: 1,
  lua: `
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, e = pcall(cjson.decode, cur)
  if ok and type(e) == 'table' and e.fp == ARGV[3] then return cur end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false`,
};

// KEYS: a token's record. Marks it revoked (kept until it expires, so the answer can say why).
const MARK_REVOKED = {
  numberOfKeys: 1,
  lua: `
local rec = redis.call('GET', KEYS[1])
if not rec then return 0 end
local ok, r = pcall(cjson.decode, rec)
if not ok or type(r) ~= 'table' then return 0 end
r.revoked = true
redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL')
return 1`,
};

// KEYS: client key. ARGV: the entry as read. Drops it unless it changed meanwhile (a new registration's token).
const FORGET = {
  numberOfKeys: 1,
  lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0`,
};

// KEYS: incarnation key. ARGV: proposed identity, TTL ms. Returns the identity now stored.
const INCARNATION = {
  numberOfKeys: 1,
  lua: `
local cur = redis.call('GET', KEYS[1])
if not cur then cur = ARGV[1] end
redis.call('SET', KEYS[1], cur, 'PX', ARGV[2])
return cur`,
};

// KEYS: incarnation key. ARGV: the identity to retire ('' for any).
const RETIRE = {
  numberOfKeys: 1,
  lua: `
if ARGV[1] == '' or redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`,
};

/** How long a record read from Redis may answer for it while Redis is away, and how many are kept. */
const LAST_KNOWN_MS = 30_000;
const LAST_KNOWN_MAX = 10_000;

/**
 * Tokens in Redis. Every write is durable (RedisConnection.durableScript): a replica has it before
 * the client gets its token or a revocation is confirmed, so a failover loses neither; a revocation
 * no replica confirmed fails and is retried (oauth.ts).
 */
export class RedisTokenStore implements TokenStore {
  /**
   * Sentinel and Cluster: records read in the last LAST_KNOWN_MS, answered while Redis cannot be,
   * so a failover (seconds) does not fail the predictions of clients whose tokens were just checked.
   * The gate still checks expiry, the registration's fingerprint and this replica's pending
   * revocations (oauth.ts). One server has no failover: there an outage fails closed (503), as before.
   */
  private readonly failover: boolean;
  private readonly lastKnown = new Map<string, { record: TokenRecord; at: number }>();
  private readonly putRecord;
  private readonly claim;
  private readonly markRevoked;
  private readonly forget;
  private readonly incarnationScript;
  private readonly retireScript;

  /** `staleAfterMs`: how long a read may take before the last record read answers instead (within --redis-timeout). */
  constructor(
    private readonly redis: RedisConnection,
    private readonly staleAfterMs = 50,
  ) {
    this.failover = redis.target.kind !== 'single';
    this.putRecord = redis.durableScript('sgwOauthRecord', PUT_RECORD);
    this.claim = redis.durableScript('sgwOauthClaim', CLAIM);
    this.markRevoked = redis.durableScript('sgwOauthMarkRevoked', MARK_REVOKED, { requireAck: true });
    this.forget = redis.durableScript('sgwOauthForget', FORGET, { requireAck: true });
    this.incarnationScript = redis.durableScript('sgwOauthIncarnation', INCARNATION);
    this.retireScript = redis.durableScript('sgwOauthRetire', RETIRE, { requireAck: true });
  }

  async issue(clientId: string, entry: ClientEntry, record: TokenRecord): Promise<ClientEntry | null> {
    const ttl = Math.max(1, record.expiresAt - Date.now());
    await this.putRecord(TOKEN + entry.tokenHash, JSON.stringify(record), ttl);
    const cur = await this.claim(CLIENT + clientId, JSON.stringify(entry), ttl, record.fp);
    if (!cur) return null;
    // Another token is current: the record just written names a token nobody was given.
    this.redis.client.del(TOKEN + entry.tokenHash).catch(() => undefined);
    return parse<ClientEntry>(cur);
  }

  async lookup(tokenHash: string): Promise<TokenRecord | null> {
    const read = this.redis.client.get(TOKEN + tokenHash).then((raw) => {
      const record = parse<TokenRecord>(raw);
      this.lastKnown.delete(tokenHash);
      if (record && this.failover) {
        this.lastKnown.set(tokenHash, { record, at: Date.now() });
        if (this.lastKnown.size > LAST_KNOWN_MAX) this.lastKnown.delete(this.lastKnown.keys().next().value!);
      }
      return record;
    });
    const known = this.failover ? this.lastKnown.get(tokenHash) : undefined;
    if (!known || Date.now() - known.at >= LAST_KNOWN_MS) return read;
    // A failover may leave the read failing, or hanging until a node is known dead: the record read before answers.
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(known.record), this.staleAfterMs);
      read.then(
        (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        () => {
          clearTimeout(timer);
          resolve(known.record);
        },
      );
    });
  }

  async revoke(clientId: string, fp?: string): Promise<void> {
    const raw = await this.redis.client.get(CLIENT + clientId);
    if (raw === null) return;
    const e = parse<Partial<ClientEntry>>(raw);
    if (e && typeof e === 'object' && fp !== undefined && e.fp !== fp) return;
    if (e && typeof e.tokenHash === 'string') await this.markRevoked(TOKEN + e.tokenHash);
    await this.forget(CLIENT + clientId, raw);
  }

  async incarnation(deployment: string, proposed: string, ttlMs: number): Promise<string> {
    return String(await this.incarnationScript(INCARNATION_KEY + deployment, proposed, Math.max(1, Math.ceil(ttlMs))));
  }

  onAvailable(listener: () => void): void {
    this.redis.onState((up) => up && listener());
  }

  async retire(deployment: string, incarnation: string | undefined): Promise<void> {
    await this.retireScript(INCARNATION_KEY + deployment, incarnation ?? '');
  }

  close(): void {
    // The connection is shared; its owner closes it.
  }
}
