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

// KEYS: client key, new token key. ARGV: entry JSON, record JSON, TTL ms, fingerprint.
const ISSUE = {
  numberOfKeys: 2,
  lua: `
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, e = pcall(cjson.decode, cur)
  if ok and type(e) == 'table' and e.fp == ARGV[4] then return cur end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return false`,
};

// KEYS: client key. ARGV: token key prefix, fingerprint ('' for any). Drops the client's entry if
// it has that fingerprint (or is unreadable), and marks its token's record revoked.
const REVOKE = {
  numberOfKeys: 1,
  lua: `
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local ok, e = pcall(cjson.decode, cur)
if ok and type(e) == 'table' and ARGV[2] ~= '' and e.fp ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
if not ok or type(e) ~= 'table' or type(e.tokenHash) ~= 'string' then return 1 end
local tk = ARGV[1] .. e.tokenHash
local rec = redis.call('GET', tk)
if rec then
  local ok2, r = pcall(cjson.decode, rec)
  if ok2 and type(r) == 'table' then
    r.revoked = true
    redis.call('SET', tk, cjson.encode(r), 'KEEPTTL')
  end
end
return 1`,
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

export class RedisTokenStore implements TokenStore {
  private readonly issueScript;
  private readonly revokeScript;
  private readonly incarnationScript;
  private readonly retireScript;

  constructor(private readonly redis: RedisConnection) {
    this.issueScript = redis.script('sgwOauthIssue', ISSUE);
    this.revokeScript = redis.script('sgwOauthRevokeFp', REVOKE);
    this.incarnationScript = redis.script('sgwOauthIncarnation', INCARNATION);
    this.retireScript = redis.script('sgwOauthRetire', RETIRE);
  }

  async issue(clientId: string, entry: ClientEntry, record: TokenRecord): Promise<ClientEntry | null> {
    const ttl = Math.max(1, record.expiresAt - Date.now());
    const cur = await this.issueScript(CLIENT + clientId, TOKEN + entry.tokenHash, JSON.stringify(entry), JSON.stringify(record), ttl, record.fp);
    return cur ? parse<ClientEntry>(cur) : null;
  }

  async lookup(tokenHash: string): Promise<TokenRecord | null> {
    return parse<TokenRecord>(await this.redis.client.get(TOKEN + tokenHash));
  }

  async revoke(clientId: string, fp?: string): Promise<void> {
    await this.revokeScript(CLIENT + clientId, TOKEN, fp ?? '');
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
