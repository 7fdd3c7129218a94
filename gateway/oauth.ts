/**
 * OAuth (SEMANTICS.md §12): the token endpoint, token checks, and revocation.
 *
 * Clients are registered by SeldonDeployments (`spec.oauth_key` + `spec.oauth_secret`, compiled
 * into `table.oauthClients`). `POST /oauth/token` with HTTP Basic `client_id:secret` and
 * `grant_type=client_credentials` issues a random UUID bearer token, or hands back the client's
 * unexpired one. Secrets are compared as SHA-256 digests with timingSafeEqual.
 *
 * What is stored (token-store.ts) is never a token: records are found by the token's SHA-256, and
 * a client's current token is sealed with AES-256-GCM under a key derived from its secret
 * (scrypt, once per registration and process), so only a caller who knows the secret gets it back.
 * Each record carries a fingerprint of the registration (client_id, deployment, derived key): a
 * token is valid only while its client_id is still registered to the same deployment with the
 * same secret, whether or not revocation reached the store. A table change that drops or changes
 * a registration revokes that client's token (marked, kept until it expires).
 *
 * Answers: missing token 401 `unauthorized`; unknown, expired or revoked token 401
 * `invalid_token`; a token whose deployment no longer exists 404; token store unavailable 503
 * (fail closed). Tokens, secrets and Authorization headers are never logged or echoed.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, randomUUID, scrypt, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { GatewayMetrics } from './metrics.js';
import { withTimeout } from './redis.js';
import type { RouteState } from './route-state.js';
import type { TokenRecord, TokenStore } from './token-store.js';
import type { OAuthClient, RouteTable } from '../routing/types.js';

export const TOKEN_SCOPE = 'read write';

export type AuthFailure = 'missing' | 'invalid' | 'expired' | 'forbidden' | 'gone' | 'unavailable';

export type AuthOutcome =
  | { readonly ok: true; readonly owner: string; readonly clientId: string }
  | { readonly ok: false; readonly failure: AuthFailure; readonly description: string };

/** The answer of the token endpoint. */
export interface TokenAnswer {
  readonly status: number;
  readonly body: Record<string, string | number>;
  readonly headers: Record<string, string>;
}

const sha256 = (s: string | Buffer): Buffer => createHash('sha256').update(s).digest();

/** The key under which a token's record is stored. */
export const tokenHash = (token: string): string => sha256(token).toString('base64url');

/** `Authorization: Bearer <t>` → t (scheme case-insensitive). */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined || authorization.length < 8 || authorization.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
  const t = authorization.slice(7).trim();
  return t === '' ? undefined : t;
}

/** `Authorization: Basic base64(id:secret)` → [id, secret]. */
export function basicCredentials(authorization: string | undefined): [string, string] | undefined {
  if (authorization === undefined || authorization.slice(0, 6).toLowerCase() !== 'basic ') return undefined;
  const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : [decoded.slice(0, colon), decoded.slice(colon + 1)];
}

/** The `access_token` query parameter, and the request target without it. */
export function queryToken(url: string): { token: string | undefined; url: string } {
  const q = url.indexOf('?');
  if (q < 0 || !url.includes('access_token=', q)) return { token: undefined, url };
  const params = new URLSearchParams(url.slice(q + 1));
  const token = params.get('access_token') ?? undefined;
  params.delete('access_token');
  const rest = params.toString();
  return { token: token === '' ? undefined : token, url: url.slice(0, q) + (rest ? `?${rest}` : '') };
}

interface Derived {
  /** AES key sealing the client's token. */
  readonly key: Buffer;
  /** Fingerprint of the registration, stored with each token. */
  readonly fp: string;
}

function derive(c: OAuthClient): Promise<Derived> {
  return new Promise((resolve, reject) => {
    // N = 2^14: about 30 ms and 16 MiB, once per registration and process.
    scrypt(c.secret, `seldon-gateway oauth ${c.clientId}`, 32, { N: 16384, r: 8, p: 1 }, (err, key) => {
      if (err) reject(err);
      else resolve({ key, fp: sha256(Buffer.concat([key, Buffer.from(`\u0000${c.clientId}\u0000${c.namespace}/${c.deployment}`)])).toString('base64url').slice(0, 22) });
    });
  });
}

function seal(key: Buffer, token: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

function unseal(key: Buffer, sealed: string): string | undefined {
  try {
    const raw = Buffer.from(sealed, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

/** Same-length digests compared in constant time: neither length nor content leaks. */
function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(sha256(given), sha256(expected));
}

export interface OAuthOptions {
  readonly store: TokenStore;
  readonly state: RouteState;
  readonly ttlMs: number;
  /** How long a request waits for the token store before 503. */
  readonly timeoutMs: number;
  readonly metrics: GatewayMetrics;
  readonly log?: Logger | undefined;
}

export class OAuth {
  private readonly derived = new WeakMap<OAuthClient, Promise<Derived>>();
  private registered: ReadonlyMap<string, OAuthClient>;

  constructor(private readonly o: OAuthOptions) {
    this.registered = o.state.current.oauthClients;
    o.state.onChange((table) => this.onTable(table));
  }

  /** At least one client is registered: the front end's paths are served. */
  get active(): boolean {
    return this.o.state.current.oauthClients.size > 0;
  }

  private derivedOf(c: OAuthClient): Promise<Derived> {
    let d = this.derived.get(c);
    if (!d) this.derived.set(c, (d = derive(c)));
    return d;
  }

  /** `POST /oauth/token`: authenticate the client first (401), then the grant type (400). */
  async token(authorization: string | undefined, grantType: string | undefined): Promise<TokenAnswer> {
    const m = this.o.metrics.tokenRequests;
    const creds = basicCredentials(authorization);
    const client = creds ? this.o.state.current.oauthClients.get(creds[0]) : undefined;
    // Compare even for an unknown client, so timing says nothing about which ids exist.
    const good = sameSecret(creds?.[1] ?? '', client?.secret ?? '\u0000');
    if (!good || client === undefined) {
      m.labels('unauthorized').inc();
      return {
        status: 401,
        headers: { 'www-authenticate': 'Basic realm="oauth2/client"' },
        body: { error: 'unauthorized', error_description: creds ? 'Bad client credentials' : 'Full authentication is required to access this resource' },
      };
    }
    if (grantType !== 'client_credentials') {
      m.labels('bad_request').inc();
      return grantType === undefined || grantType === ''
        ? { status: 400, headers: {}, body: { error: 'invalid_request', error_description: 'Missing grant type' } }
        : { status: 400, headers: {}, body: { error: 'unsupported_grant_type', error_description: 'Unsupported grant type: client_credentials only' } };
    }
    try {
      const issued = await this.issue(client);
      m.labels(issued.reused ? 'reused' : 'issued').inc();
      return {
        status: 200,
        headers: { 'cache-control': 'no-store', pragma: 'no-cache' },
        body: { access_token: issued.token, token_type: 'bearer', expires_in: issued.expiresIn, scope: TOKEN_SCOPE },
      };
    } catch (err) {
      m.labels('unavailable').inc();
      this.o.log?.warn({ problem: (err as Error).message }, 'token endpoint: token store unavailable');
      return { status: 503, headers: { 'retry-after': '1' }, body: { error: 'temporarily_unavailable', error_description: 'The token store is unavailable; try again shortly' } };
    }
  }

  private async issue(client: OAuthClient, retry = true): Promise<{ token: string; expiresIn: number; reused: boolean }> {
    const { key, fp } = await this.derivedOf(client);
    const token = randomUUID();
    const hash = tokenHash(token);
    const expiresAt = Date.now() + this.o.ttlMs;
    const record: TokenRecord = { clientId: client.clientId, namespace: client.namespace, sdep: client.deployment, scope: TOKEN_SCOPE, fp, expiresAt };
    const current = await withTimeout(this.o.store.issue(client.clientId, { tokenHash: hash, sealed: seal(key, token), fp, expiresAt }, record), this.o.timeoutMs, 'token store');
    if (current === null) return { token, expiresIn: Math.ceil(this.o.ttlMs / 1000), reused: false };
    const again = unseal(key, current.sealed);
    if (again === undefined || tokenHash(again) !== current.tokenHash) {
      // Not sealed with this secret (a store written by something else): start over once.
      if (!retry) throw new Error('the stored token cannot be read back');
      await withTimeout(this.o.store.revoke(client.clientId), this.o.timeoutMs, 'token store');
      return this.issue(client, false);
    }
    return { token: again, expiresIn: Math.max(0, Math.floor((current.expiresAt - Date.now()) / 1000)), reused: true };
  }

  /**
   * Who a bearer token stands for. `table` is the one the request is routed with (its clients
   * decide whether the token's registration still holds).
   */
  async authenticate(token: string | undefined, table: RouteTable): Promise<AuthOutcome> {
    if (token === undefined) return { ok: false, failure: 'missing', description: 'Full authentication is required to access this resource' };
    let rec: TokenRecord | null;
    try {
      rec = await withTimeout(this.o.store.lookup(tokenHash(token)), this.o.timeoutMs, 'token store');
    } catch (err) {
      return { ok: false, failure: 'unavailable', description: `the token store is unavailable: ${(err as Error).message}` };
    }
    if (rec === null) return { ok: false, failure: 'invalid', description: 'Invalid access token' };
    if (rec.expiresAt <= Date.now()) return { ok: false, failure: 'expired', description: 'Access token expired' };
    const owner = `${rec.namespace}/${rec.sdep}`;
    const client = table.oauthClients.get(rec.clientId);
    const holds = !rec.revoked && client !== undefined && client.namespace === rec.namespace && client.deployment === rec.sdep && (await this.derivedOf(client)).fp === rec.fp;
    if (holds) return { ok: true, owner, clientId: rec.clientId };
    if (!table.deployments.has(owner)) return { ok: false, failure: 'gone', description: `the deployment ${owner} this token was issued for no longer exists` };
    return { ok: false, failure: 'invalid', description: 'Invalid access token' };
  }

  /** Revoke every client whose registration a new table dropped or changed. */
  private onTable(table: RouteTable): void {
    const next = table.oauthClients;
    const prev = this.registered;
    if (next === prev) return;
    this.registered = next;
    for (const [id, c] of prev) {
      const n = next.get(id);
      if (n && n.secret === c.secret && n.namespace === c.namespace && n.deployment === c.deployment) continue;
      withTimeout(this.o.store.revoke(id), Math.max(1000, this.o.timeoutMs), 'token store').then(
        () => this.o.log?.info({ clientId: id, deployment: `${c.namespace}/${c.deployment}` }, 'OAuth client unregistered or changed: its token is revoked'),
        (err: Error) =>
          this.o.log?.warn({ clientId: id, problem: err.message }, 'could not revoke the token of an unregistered OAuth client (it is refused anyway: its registration no longer matches)'),
      );
    }
  }
}
