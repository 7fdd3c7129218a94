/**
 * JWT verification for the gate (docs/security.md#jwt): a token is read by the provider whose
 * issuer is its `iss` (one of those the route's policy names), verified by jose against that
 * provider's keys (jwt-keys.ts) with its algorithms, audiences and clock skew, `exp` required; then
 * the route's own requirements (audiences, scopes, claim values) are checked.
 *
 * A verified token is kept (by its SHA-256, at most `cacheSize`, oldest out first) until its `exp`,
 * so a client reusing its token costs a hash and a map lookup, not a signature check; it stops
 * passing as soon as its key leaves the provider's set.
 */
import { hash } from 'node:crypto';
import type { JWTPayload } from 'jose';
import type { GatewayMetrics } from '../observe/metrics.js';
import { jose, type ProviderKeySets, type ProviderKeys } from './jwt-keys.js';
import type { JwtPolicy } from '../../routing/policies/jwt.js';

/** Tokens longer than this are refused before any parsing. */
export const MAX_TOKEN_BYTES = 8192;
const CACHE_SIZE = 10_000;

/** Why a token did not pass: 401 for the token, 403 for what the route requires of a good one, 503 without keys. */
export type JwtFailure = 'missing' | 'too_large' | 'malformed' | 'issuer' | 'algorithm' | 'signature' | 'unknown_key' | 'expired' | 'not_yet_valid' | 'audience' | 'claims' | 'scope' | 'no_keys';

export type JwtOutcome = { readonly ok: true; readonly claims: JWTPayload; readonly provider: string } | { readonly ok: false; readonly failure: JwtFailure; readonly description: string };

interface Verified {
  readonly provider: ProviderKeys;
  readonly claims: JWTPayload;
  readonly kid: string | undefined;
  /** `exp` and `nbf` in ms, the provider's skew applied. */
  readonly until: number;
  readonly from: number;
  /** The outcome for the route policy it was last checked against: a client reusing its token on one route allocates nothing. */
  policy?: JwtPolicy;
  outcome?: JwtOutcome;
  /** Its `cached` counter child. */
  counter?: { inc(): void };
}

export interface JwtVerifierDeps {
  /** Epoch ms (tests move it). */
  readonly now: () => number;
  readonly metrics?: GatewayMetrics | undefined;
  readonly cacheSize?: number | undefined;
}

const fail = (failure: JwtFailure, description: string): JwtOutcome => ({ ok: false, failure, description });

/** What a claim holds as a list of strings (`scp` may be a list or a space-separated string). */
function words(v: unknown): string[] {
  if (typeof v === 'string') return v.split(' ').filter((s) => s !== '');
  if (Array.isArray(v)) return v.filter((s): s is string => typeof s === 'string');
  return [];
}

/** The route's own requirements of a verified token. */
export function meetsPolicy(claims: JWTPayload, policy: JwtPolicy): JwtOutcome | null {
  if (policy.audiences.length > 0) {
    const aud = typeof claims.aud === 'string' ? [claims.aud] : (claims.aud ?? []);
    if (!policy.audiences.some((a) => aud.includes(a))) return fail('audience', `the token's audience is not ${policy.audiences.join(' or ')}`);
  }
  if (policy.scopes.length > 0) {
    const held = new Set([...words(claims.scope), ...words(claims.scp)]);
    const missing = policy.scopes.filter((s) => !held.has(s));
    if (missing.length > 0) return fail('scope', `the token lacks the scope ${missing.join(' ')}`);
  }
  for (const [name, value] of policy.claims) {
    const v = claims[name];
    const ok = Array.isArray(v) ? v.some((x) => String(x) === value) : v !== undefined && v !== null && typeof v !== 'object' && String(v) === value;
    if (!ok) return fail('claims', `the token's ${name} claim is not ${JSON.stringify(value)}`);
  }
  return null;
}

/** jose's refusal as a failure, in words that never quote the token. */
function joseFailure(err: unknown): JwtOutcome {
  const { errors } = jose();
  if (err instanceof errors.JWTExpired) return fail('expired', 'the token has expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return fail('not_yet_valid', 'the token is not valid yet');
    if (err.claim === 'iat') return fail('not_yet_valid', 'the token was issued in the future');
    if (err.claim === 'aud') return fail('audience', "the token's audience is not the provider's");
    if (err.claim === 'iss') return fail('issuer', "the token's issuer is not the provider's");
    return fail('malformed', `the token's ${err.claim} claim is missing or invalid`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return fail('algorithm', "the token's algorithm is not accepted");
  if (err instanceof errors.JWSSignatureVerificationFailed) return fail('signature', "the token's signature does not verify");
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) return fail('unknown_key', "the token's key is not one of the provider's");
  return fail('malformed', 'the token is not a well-formed signed JWT');
}

export class JwtVerifier {
  private readonly cache = new Map<string, Verified>();
  private readonly cacheSize: number;
  /** Per client connection, the token it sent last and its digest (held as long as the connection is). */
  private readonly lastOn = new WeakMap<object, { readonly token: string; readonly key: string }>();

  /** `providers`: the process's key sets (replaced when the providers file changes). */
  constructor(
    readonly providers: ProviderKeySets,
    private readonly deps: JwtVerifierDeps,
  ) {
    this.cacheSize = deps.cacheSize ?? CACHE_SIZE;
  }

  /** A request without a token where one is required (counted, as every check is). */
  missing(policy: JwtPolicy): JwtOutcome {
    return this.counted(policy.providers.length === 1 ? policy.providers[0]! : '', fail('missing', 'no token'));
  }

  /** Verify `token` for a route with `policy`: at once for a token verified before, else once jose has. */
  verify(token: string, policy: JwtPolicy, connection?: object): JwtOutcome | Promise<JwtOutcome> {
    if (token.length > MAX_TOKEN_BYTES) return this.counted('', fail('too_large', `the token is over ${MAX_TOKEN_BYTES} bytes`));
    // Most of what a cached token costs is its digest: a client that sends the token it sent last on this
    // connection (a keep-alive client's every request) is not hashed again; the cache entry is looked up as ever.
    const last = connection === undefined ? undefined : this.lastOn.get(connection);
    let key: string;
    if (last !== undefined && last.token === token) key = last.key;
    else {
      // One-shot (no Hash object).
      key = hash('sha256', token, 'base64url');
      if (connection !== undefined) this.lastOn.set(connection, { token, key });
    }
    const hit = this.cache.get(key);
    const now = this.deps.now();
    if (hit !== undefined) {
      if (now >= hit.until) this.cache.delete(key);
      else if (hit.provider.holds(hit.kid) && now >= hit.from) {
        const name = hit.provider.config.name;
        if (!policy.providers.includes(name)) return this.counted(name, fail('issuer', "the token's issuer is not one this route accepts"));
        if (hit.policy !== policy) {
          hit.policy = policy;
          hit.outcome = meetsPolicy(hit.claims, policy) ?? { ok: true, claims: hit.claims, provider: name };
        }
        const o = hit.outcome!;
        if (!o.ok) return this.counted(name, o);
        if (this.deps.metrics !== undefined) (hit.counter ??= this.counter(name, 'cached')).inc();
        return o;
      }
    }
    return this.verifyNew(token, key, policy);
  }

  private async verifyNew(token: string, key: string, policy: JwtPolicy): Promise<JwtOutcome> {
    let iss: unknown;
    let kid: string | undefined;
    let alg: unknown;
    try {
      const header = jose().decodeProtectedHeader(token);
      kid = header.kid;
      alg = header.alg;
      iss = jose().decodeJwt(token).iss;
    } catch {
      return this.counted('', fail('malformed', 'the token is not a well-formed signed JWT'));
    }
    let provider: ProviderKeys | undefined;
    for (const name of policy.providers) {
      const p = this.providers.get(name);
      if (p !== undefined && p.config.issuer === iss) provider = p;
    }
    if (provider === undefined) return this.counted('', fail('issuer', "the token's issuer is not one this route accepts"));
    const c = provider.config;
    if (typeof alg !== 'string' || !c.algorithms.includes(alg)) return this.counted(c.name, fail('algorithm', `the token's algorithm ${JSON.stringify(alg)} is not accepted`));
    if (provider.keys === undefined) {
      await provider.unknownKid();
      if (provider.keys === undefined) return this.counted(c.name, fail('no_keys', `the keys of provider ${c.name} could not be fetched`));
    }
    let outcome = await this.verifyWith(provider, token);
    if (!outcome.ok && outcome.failure === 'unknown_key' && (await provider.unknownKid())) outcome = await this.verifyWith(provider, token);
    if (!outcome.ok) return this.counted(c.name, outcome);
    const claims = outcome.claims;
    const skew = c.clockSkewMs;
    if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, { provider, claims, kid, until: claims.exp! * 1000 + skew, from: claims.nbf === undefined ? -Infinity : claims.nbf * 1000 - skew });
    return this.counted(c.name, meetsPolicy(claims, policy) ?? outcome);
  }

  private async verifyWith(provider: ProviderKeys, token: string): Promise<JwtOutcome> {
    const c = provider.config;
    try {
      const { payload } = await jose().jwtVerify(token, provider.keys!, {
        issuer: c.issuer,
        audience: c.audiences.length > 0 ? [...c.audiences] : undefined,
        algorithms: [...c.algorithms],
        clockTolerance: c.clockSkewMs / 1000,
        currentDate: new Date(this.deps.now()),
        requiredClaims: ['exp'],
      });
      return { ok: true, claims: payload, provider: c.name };
    } catch (err) {
      return joseFailure(err);
    }
  }

  private counted(provider: string, o: JwtOutcome): JwtOutcome {
    if (this.deps.metrics !== undefined) this.counter(provider, o.ok ? 'valid' : o.failure).inc();
    return o;
  }

  /** The bound series of (provider, result) (a cache entry keeps its `cached` one). */
  private counter(provider: string, result: string): { inc(): void } {
    return this.deps.metrics!.jwtVerifications.series(provider, result);
  }
}
