/**
 * Where OAuth tokens live (SEMANTICS.md §12): in Redis, so every replica accepts every token, or
 * in memory (one store per instance). Either way the store never holds a token itself: a token
 * is found by its SHA-256 (`TokenRecord` under `token:<hash>`), and a client's current token is
 * kept sealed (AES-GCM under a key derived from the client's secret, which only the SeldonDeployment
 * has), so a repeat request gets the same token back without the token ever being stored.
 *
 * Redis keys (both with the token's remaining TTL):
 *   seldon-gateway:oauth:token:<sha256 of the token, base64url>  → TokenRecord (JSON)
 *   seldon-gateway:oauth:client:<client_id>                      → ClientEntry (JSON)
 * Revoking marks the token's record `revoked` (kept until it expires, so the answer can say why)
 * and drops the client's entry.
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
  /** Revoke the client's current token and forget the client; unknown clients are fine. */
  revoke(clientId: string): Promise<void>;
  close(): void;
}

const TOKEN = `${KEY_PREFIX}oauth:token:`;
const CLIENT = `${KEY_PREFIX}oauth:client:`;

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
  private readonly sweeper: NodeJS.Timeout;

  constructor(sweepMs = 60_000) {
    this.sweeper = setInterval(() => this.sweep(Date.now()), sweepMs);
    this.sweeper.unref();
  }

  async issue(clientId: string, entry: ClientEntry, record: TokenRecord): Promise<ClientEntry | null> {
    const now = Date.now();
    const cur = this.clients.get(clientId);
    if (cur && cur.expiresAt > now && cur.fp === record.fp) return cur;
    this.clients.set(clientId, entry);
    this.tokens.set(entry.tokenHash, record);
    return null;
  }

  async lookup(tokenHash: string): Promise<TokenRecord | null> {
    const r = this.tokens.get(tokenHash);
    if (r && r.expiresAt <= Date.now()) {
      this.tokens.delete(tokenHash);
      return null;
    }
    return r ?? null;
  }

  async revoke(clientId: string): Promise<void> {
    const cur = this.clients.get(clientId);
    if (!cur) return;
    this.clients.delete(clientId);
    const r = this.tokens.get(cur.tokenHash);
    if (r) this.tokens.set(cur.tokenHash, { ...r, revoked: true });
  }

  private sweep(now: number): void {
    for (const [k, r] of this.tokens) if (r.expiresAt <= now) this.tokens.delete(k);
    for (const [k, c] of this.clients) if (c.expiresAt <= now) this.clients.delete(k);
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

// KEYS: client key, its token's key. ARGV: that token's hash. Marks the token, drops the entry.
const REVOKE = {
  numberOfKeys: 2,
  lua: `
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, e = pcall(cjson.decode, cur)
  if ok and type(e) == 'table' and e.tokenHash == ARGV[1] then redis.call('DEL', KEYS[1]) end
end
local rec = redis.call('GET', KEYS[2])
if rec then
  local ok, r = pcall(cjson.decode, rec)
  if ok and type(r) == 'table' then
    r.revoked = true
    redis.call('SET', KEYS[2], cjson.encode(r), 'KEEPTTL')
  end
end
return 1`,
};

export class RedisTokenStore implements TokenStore {
  private readonly issueScript;
  private readonly revokeScript;

  constructor(private readonly redis: RedisConnection) {
    this.issueScript = redis.script('sgwOauthIssue', ISSUE);
    this.revokeScript = redis.script('sgwOauthRevoke', REVOKE);
  }

  async issue(clientId: string, entry: ClientEntry, record: TokenRecord): Promise<ClientEntry | null> {
    const ttl = Math.max(1, record.expiresAt - Date.now());
    const cur = await this.issueScript(CLIENT + clientId, TOKEN + entry.tokenHash, JSON.stringify(entry), JSON.stringify(record), ttl, record.fp);
    return cur ? parse<ClientEntry>(cur) : null;
  }

  async lookup(tokenHash: string): Promise<TokenRecord | null> {
    return parse<TokenRecord>(await this.redis.client.get(TOKEN + tokenHash));
  }

  async revoke(clientId: string): Promise<void> {
    const cur = parse<ClientEntry>(await this.redis.client.get(CLIENT + clientId));
    if (cur) await this.revokeScript(CLIENT + clientId, TOKEN + cur.tokenHash, cur.tokenHash);
  }

  close(): void {
    // The connection is shared; its owner closes it.
  }
}
