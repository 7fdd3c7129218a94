/**
 * OAuth (docs/routing.md#oauth-front-end): the token endpoint, token checks, and revocation.
 *
 * Clients are registered by SeldonDeployments (`spec.oauth_key` + `spec.oauth_secret`, compiled
 * into `table.oauthClients`). `POST /oauth/token` with HTTP Basic `client_id:secret` and
 * `grant_type=client_credentials` issues a random UUID bearer token, or hands back the client's
 * unexpired one. Secrets are compared as SHA-256 digests with timingSafeEqual.
 *
 * What is stored (auth/token-store.ts) is never a token: records are found by the token's SHA-256, and
 * a client's current token is sealed with AES-256-GCM under a key derived from its secret
 * (scrypt, once per registration and process), so only a caller who knows the secret gets it back.
 * Each record carries a fingerprint of the registration (client_id, deployment, derived key, and
 * the deployment's identity): a token is valid only while its client_id is still registered to
 * the same deployment, with the same secret, and that deployment is the same object it was issued
 * to, whether or not revocation reached the store.
 *
 * A deployment's identity is its `metadata.uid` when the table carries one (Kubernetes); without
 * one (manifests) it is an incarnation agreed through the token store (auth/token-store.ts): kept
 * across edits, new once the deployment was deleted and re-created. A table change that drops or
 * changes a registration revokes that client's token (marked, kept until it expires), and a
 * deleted deployment's incarnation is retired; both are retried with backoff until the store
 * confirms them (`seldon_gateway_oauth_revocations_pending`). While they wait, the old tokens are
 * refused anyway: their fingerprints name the old identity.
 *
 * The token endpoint throttles failed attempts per client address and per client_id
 * (rate-limit.ts `LoginThrottle`): 429 with Retry-After once a budget is spent.
 *
 * Answers: missing token 401 `unauthorized`; unknown, expired or revoked token 401
 * `invalid_token`; a token whose deployment no longer exists 404; token store unavailable 503
 * (fail closed). Tokens, secrets and Authorization headers are never logged or echoed, and public
 * bodies never carry store or library error text (`--error-detail internal` adds it back).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { problemOf, withDetail, type ErrorDetail } from './error-detail.js';
import { Registrations, type StoreOptions } from './oauth-registrations.js';
import { LOGIN_PER_ADDRESS, LOGIN_PER_CLIENT, LoginThrottle, type FailureBudget, type SharedLimits } from './rate-limit.js';
import { withTimeout } from './redis.js';
import { clientFromForwarded } from '../../routing/emissary/edge-rules.js';
import { deploymentOf, derive, fingerprint, sameSecret, seal, tokenHash, unseal } from './token-crypto.js';
import type { TokenRecord } from './token-store.js';
import type { OAuthClient, RouteTable } from '../../routing/types.js';
import type { LiveTable } from '../../routing/table/live.js';

export const TOKEN_SCOPE = 'read write';

export type AuthFailure = 'missing' | 'invalid' | 'expired' | 'forbidden' | 'gone' | 'unavailable';

export type AuthOutcome = { readonly ok: true; readonly owner: string; readonly clientId: string } | { readonly ok: false; readonly failure: AuthFailure; readonly description: string };

/** The answer of the token endpoint. */
export interface TokenAnswer {
  readonly status: number;
  readonly body: Record<string, string | number>;
  readonly headers: Record<string, string>;
}

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

/** The query parameter `name` (`access_token` unless told), and the request target without it. */
export function queryToken(url: string, name = 'access_token'): { token: string | undefined; url: string } {
  const q = url.indexOf('?');
  if (q < 0 || !url.includes(`${name}=`, q)) return { token: undefined, url };
  const params = new URLSearchParams(url.slice(q + 1));
  const token = params.get(name) ?? undefined;
  params.delete(name);
  const rest = params.toString();
  return { token: token === '' ? undefined : token, url: url.slice(0, q) + (rest ? `?${rest}` : '') };
}

export interface OAuthOptions extends StoreOptions {
  readonly state: LiveTable;
  readonly errorDetail?: ErrorDetail | undefined;
  /** Where the failed-login budgets live (null or absent: this process). */
  readonly limits?: SharedLimits | null | undefined;
  readonly loginPerAddress?: FailureBudget | undefined;
  readonly loginPerClient?: FailureBudget | undefined;
  /** How often each process re-reads its deployments' incarnations (default 30 s). */
  readonly resyncMs?: number | undefined;
  /** The clock token expiry is read from (default Date.now; tests move it instead of sleeping). */
  readonly now?: (() => number) | undefined;
  /** From a trusted peer, the client is this many X-Forwarded-For entries from the right (the Module's xff_num_trusted_hops; default 1). */
  readonly clientHops?: number | undefined;
}

/** The token endpoint and token checks; the registrations behind them are `oauth-registrations.ts`'s. */
export class OAuth {
  private readonly derived = new WeakMap<OAuthClient, Promise<Buffer>>();
  private readonly registrations: Registrations;
  private readonly resync: NodeJS.Timeout;
  /** --error-detail: what refusals say of the store's problems. */
  readonly errorDetail: ErrorDetail;
  private readonly throttle: LoginThrottle;

  constructor(private readonly o: OAuthOptions) {
    this.errorDetail = o.errorDetail ?? 'public';
    this.throttle = this.throttleFor(o.limits ?? null);
    const r = (this.registrations = new Registrations({ ...o, keyOf: (c) => this.keyOf(c) }));
    r.onTable(o.state.current, new Set());
    o.state.onChange((table, change) => r.onTable(table, new Set(change.deleted)));
    this.resync = setInterval(() => r.refresh(), o.resyncMs ?? 30_000);
    this.resync.unref();
    o.store.onAvailable?.(() => r.retryNow());
  }

  private throttleFor(shared: SharedLimits | null): LoginThrottle {
    return new LoginThrottle({ shared, timeoutMs: this.o.timeoutMs, perAddress: this.o.loginPerAddress ?? LOGIN_PER_ADDRESS, perClient: this.o.loginPerClient ?? LOGIN_PER_CLIENT });
  }

  get log(): Logger | undefined {
    return this.o.log;
  }

  /** At least one client is registered: the front end's paths are served. */
  get active(): boolean {
    return this.o.state.current.oauthClients.size > 0;
  }

  private keyOf(c: OAuthClient): Promise<Buffer> {
    let d = this.derived.get(c);
    if (!d) this.derived.set(c, (d = derive(c)));
    return d;
  }

  private readonly fps = new WeakMap<OAuthClient, { readonly identity: string; readonly fp: string }>();

  private async fingerprintOf(c: OAuthClient): Promise<{ key: Buffer; fp: string }> {
    const [key, identity] = await Promise.all([this.keyOf(c), this.registrations.identityOf(c)]);
    let known = this.fps.get(c);
    if (known?.identity !== identity) this.fps.set(c, (known = { identity, fp: fingerprint(key, c, identity) }));
    return { key, fp: known.fp };
  }

  /**
   * `POST /oauth/token`: the failed-attempt throttle first (429), then the client (401), then the
   * grant type (400). `address`: the client's address (the throttle's bucket).
   */
  async token(authorization: string | undefined, grantType: string | undefined, address = 'unknown'): Promise<TokenAnswer> {
    const m = this.o.metrics.tokenRequests;
    const creds = basicCredentials(authorization);
    const client = creds ? this.o.state.current.oauthClients.get(creds[0]) : undefined;
    // Only attempts that name credentials are counted; a registered client_id has a budget of its own.
    const bucketClient = client?.clientId;
    if (creds) {
      const v = await this.throttle.check(address, bucketClient);
      if (!v.allowed) {
        const s = Math.max(1, Math.ceil(v.retryAfterMs / 1000));
        m.labels('throttled').inc();
        this.o.metrics.tokenThrottled.labels(v.by ?? 'address').inc();
        return {
          status: 429,
          headers: { 'retry-after': String(s) },
          body: { error: 'too_many_requests', error_description: `Too many failed attempts ${v.by === 'client' ? 'for this client' : 'from this address'}: retry in ${s} s` },
        };
      }
    }
    // Compare even for an unknown client, so timing says nothing about which ids exist.
    const good = sameSecret(creds?.[1] ?? '', client?.secret ?? '\u0000');
    if (!good || client === undefined) {
      m.labels('unauthorized').inc();
      if (creds) await this.throttle.failed(address, bucketClient);
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
      const problem = problemOf(err);
      this.o.log?.warn({ deployment: deploymentOf(client), problem }, 'token endpoint: token store unavailable');
      return {
        status: 503,
        headers: { 'retry-after': '1' },
        body: { error: 'temporarily_unavailable', error_description: withDetail(this.errorDetail, 'The token store is unavailable; try again shortly', problem) },
      };
    }
  }

  /**
   * The answer for a request the token endpoint's framework refused before it reached `token()`
   * (fastify's FST_ERR_* errors: content type, malformed or oversized body): an OAuth-style 4xx,
   * never the framework's code or text (those go to the log; `--error-detail internal` adds them).
   */
  requestError(err: { readonly statusCode?: number | undefined; readonly code?: string | undefined; readonly message?: string | undefined }): TokenAnswer {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    const detail = `${err.code ?? 'error'}: ${err.message ?? ''}`;
    const headers = { 'cache-control': 'no-store' };
    const described = (text: string): string => withDetail(this.errorDetail, text, detail);
    this.o.metrics.tokenRequests.labels(status >= 500 ? 'error' : 'bad_request').inc();
    if (status >= 500) {
      this.o.log?.warn({ code: err.code, problem: err.message }, 'token endpoint: request failed');
      return { status: 500, headers, body: { error: 'server_error', error_description: described('The token request could not be handled') } };
    }
    // Not the message: a parse error quotes the body, which may hold a client_secret.
    this.o.log?.debug({ code: err.code, status }, 'token endpoint: request refused');
    if (status === 415) return { status, headers, body: { error: 'invalid_request', error_description: described('Unsupported content type: send the form as application/x-www-form-urlencoded') } };
    if (status === 413) return { status, headers, body: { error: 'invalid_request', error_description: described('The request body is too large') } };
    return { status: status === 429 ? 429 : 400, headers, body: { error: 'invalid_request', error_description: described('Malformed token request') } };
  }

  /**
   * The address the failed-login throttle counts against: the peer, or, from a trusted proxy
   * (`trusts`: --trust-forwarded-headers / --trusted-proxy), the X-Forwarded-For entry `clientHops` from the right (the last by default).
   */
  clientAddress(req: IncomingMessage, trusts: (socket: Socket) => boolean): string {
    const peer = req.socket.remoteAddress ?? 'unknown';
    const xff = req.headers['x-forwarded-for'];
    if (xff === undefined || !trusts(req.socket)) return peer;
    return clientFromForwarded(Array.isArray(xff) ? xff.join(',') : xff, this.o.clientHops ?? 1) ?? peer;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  private async issue(client: OAuthClient, retry = true): Promise<{ token: string; expiresIn: number; reused: boolean }> {
    // The identity waits at most timeoutMs (identityOf); the key derivation is CPU, not the store.
    const { key, fp } = await this.fingerprintOf(client);
    const token = randomUUID();
    const hash = tokenHash(token);
    const expiresAt = this.now() + this.o.ttlMs;
    const record: TokenRecord = { clientId: client.clientId, namespace: client.namespace, sdep: client.deployment, scope: TOKEN_SCOPE, fp, expiresAt };
    const current = await withTimeout(this.o.store.issue(client.clientId, { tokenHash: hash, sealed: seal(key, token), fp, expiresAt }, record), this.o.timeoutMs, 'token store');
    if (current === null) return { token, expiresIn: Math.ceil(this.o.ttlMs / 1000), reused: false };
    const again = unseal(key, current.sealed);
    if (again === undefined || tokenHash(again) !== current.tokenHash) {
      // Not sealed with this secret (a store written by something else): start over once.
      if (!retry) throw new Error('the stored token cannot be read back');
      await withTimeout(this.o.store.revoke(client.clientId, current.fp), this.o.timeoutMs, 'token store');
      return this.issue(client, false);
    }
    return { token: again, expiresIn: Math.max(0, Math.floor((current.expiresAt - this.now()) / 1000)), reused: true };
  }

  /**
   * Who a bearer token stands for. `table` is the one the request is routed with (its clients
   * decide whether the token's registration still holds). `guarding`: the deployment whose gate
   * asks (named in a 503 when the token's own record cannot be read).
   */
  async authenticate(token: string | undefined, table: RouteTable, guarding?: string): Promise<AuthOutcome> {
    if (token === undefined) return { ok: false, failure: 'missing', description: 'Full authentication is required to access this resource' };
    let rec: TokenRecord | null;
    try {
      rec = await withTimeout(this.o.store.lookup(tokenHash(token)), this.o.timeoutMs, 'token store');
    } catch (err) {
      return this.unavailable(err, guarding);
    }
    if (rec === null) return { ok: false, failure: 'invalid', description: 'Invalid access token' };
    if (rec.expiresAt <= this.now()) return { ok: false, failure: 'expired', description: 'Access token expired' };
    const owner = `${rec.namespace}/${rec.sdep}`;
    const client = table.oauthClients.get(rec.clientId);
    if (!rec.revoked && client !== undefined && client.namespace === rec.namespace && client.deployment === rec.sdep) {
      let fp: string;
      try {
        fp = (await this.fingerprintOf(client)).fp;
      } catch (err) {
        return this.unavailable(err, owner);
      }
      if (fp === rec.fp) return { ok: true, owner, clientId: rec.clientId };
    }
    if (!table.deployments.has(owner)) return { ok: false, failure: 'gone', description: `the deployment ${owner} this token was issued for no longer exists` };
    return { ok: false, failure: 'invalid', description: 'Invalid access token' };
  }

  private lastProblem = '';
  private lastProblemAt = 0;

  /** 503: the public text names the deployment when known; the detail goes to the log (once per distinct problem and 10 s). */
  private unavailable(err: unknown, owner: string | undefined): AuthOutcome {
    const problem = problemOf(err);
    const now = Date.now();
    if (problem !== this.lastProblem || now - this.lastProblemAt > 10_000) {
      this.lastProblem = problem;
      this.lastProblemAt = now;
      this.o.log?.warn({ deployment: owner, problem }, 'token check: token store unavailable (answering 503)');
    }
    const text = owner === undefined ? 'the token store is unavailable' : `the token store is unavailable for ${owner}`;
    return { ok: false, failure: 'unavailable', description: withDetail(this.errorDetail, text, problem) };
  }

  /** Revocations and registrations still waiting for the store (tests, diagnostics). */
  get pending(): number {
    return this.registrations.pending;
  }

  close(): void {
    clearInterval(this.resync);
    this.registrations.close();
  }
}
