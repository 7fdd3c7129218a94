/**
 * The `seldon.io/*` annotations of a SeldonDeployment, read into typed settings (docs/routing.md#effective-annotations, docs/routing.md#annotations).
 *
 * One reader per annotation: it takes the effective annotations (metadata overlaid by spec), applies
 * the default when the key is absent, and says what a bad value does. Two outcomes for a bad value,
 * and the reader decides which:
 * - a match-defining value (service name, headers, gateway-auth, gateway-cors, a predictor's
 *   svc-name) returns an error text, and the caller rejects the deployment;
 * - a tuning value (timeouts, retries, breakers, legacy weight and shadow, rate limits) falls back to
 *   its default and records a warning in `Findings`, which degrades the deployment.
 * The value syntax itself (integers, header lists, RE2 patterns) is parsed in `values/syntax.ts`; what the
 * settings become (routes, groups) is assembled in `compile/deployment.ts`. Nothing here does I/O or throws on
 * input.
 */
import { parseHeaderAnnotation, parseRegexHeaderAnnotation, RegexBudget, type HeaderConstraint, type Parsed } from '../values/syntax.js';
import { readWholeNumber } from '../values/whole-number.js';
import { parse as parseYaml } from 'yaml';
import { isDns1035Label } from './services.js';
import { parseCorsPolicy } from '../policies/cors.js';
import { readBreakerAnnotation } from './circuit-breakers.js';
import { CONFLICTED_AUTH_DEPLOYMENT, DEFAULT_BREAKER, type BreakerLimits, type CorsPolicy, type Gate, type Protocol, type RateLimit, type RetryPolicy } from '../types.js';
import { JWT_ANNOTATION, parseJwtPolicy, type JwtPolicy } from '../policies/jwt.js';
import type { Annotations, PredictorSpec } from './deployment.js';

/** The effective annotations of one SeldonDeployment: key → trimmed value. */
export type EffectiveAnnotations = ReadonlyMap<string, string>;

/** Collects the warnings of one SeldonDeployment as it is read; any warning makes it `degraded`. */
export class Findings {
  readonly warnings: string[] = [];
  warn(msg: string): void {
    this.warnings.push(msg);
  }
}

/**
 * Effective annotations: metadata overlaid by spec, spec winning by key presence (a present
 * empty value hides the metadata one). Values are trimmed.
 */
export function effectiveAnnotations(metadata: Annotations | undefined, spec: Annotations | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const source of [metadata, spec]) {
    if (!source || typeof source !== 'object') continue;
    for (const [k, v] of Object.entries(source)) out.set(k, typeof v === 'string' ? v.trim() : String(v ?? '').trim());
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Scope and replacement.
// ---------------------------------------------------------------------------------------------

/** `seldon.io/ambassador-id`: one id, never split on commas; absent or empty is `default`. */
export function ambassadorIdAnnotation(ann: EffectiveAnnotations): string {
  return ann.get('seldon.io/ambassador-id') || 'default';
}

/** `seldon.io/ambassador-config`: the custom Mappings' text, or undefined when absent or empty. */
export function customConfigAnnotation(ann: EffectiveAnnotations): string | undefined {
  return ann.get('seldon.io/ambassador-config') || undefined;
}

// ---------------------------------------------------------------------------------------------
// Match-defining: a bad value rejects the deployment.
// ---------------------------------------------------------------------------------------------

const BAD_SERVICE_NAME = /[/?#%\s\p{Cc}]/u;

/**
 * `seldon.io/ambassador-service-name`: the external name in REST prefixes and the gRPC `seldon`
 * value, `name` (the deployment's) when absent. Empty: the default, with a warning. A character
 * that cannot stand in a path segment: an error.
 */
export function serviceNameAnnotation(ann: EffectiveAnnotations, name: string, f: Findings): Parsed<string> {
  const raw = ann.get('seldon.io/ambassador-service-name');
  if (raw === undefined) return { ok: true, value: name };
  if (raw === '') {
    f.warn('seldon.io/ambassador-service-name is empty: the deployment name is used');
    return { ok: true, value: name };
  }
  if (BAD_SERVICE_NAME.test(raw)) return { ok: false, error: `seldon.io/ambassador-service-name "${raw}" contains characters not allowed in a path segment` };
  return { ok: true, value: raw };
}

/** The header constraints of a deployment's generated routes, REST and gRPC. */
export interface HeaderConstraints {
  readonly rest: readonly HeaderConstraint[];
  /** The same without constraints on `seldon` or `namespace`, which the gRPC identity owns. */
  readonly grpc: readonly HeaderConstraint[];
}

/**
 * `seldon.io/ambassador-header` (exact and presence) and `seldon.io/ambassador-regex-header`
 * (RE2 full match), ANDed. A malformed value of either is an error. Constraints on `seldon` or
 * `namespace` are left off the gRPC routes, with a warning.
 */
export function headerAnnotations(ann: EffectiveAnnotations, f: Findings, regexes = new RegexBudget()): Parsed<HeaderConstraints> {
  const headers: HeaderConstraint[] = [];
  const rawHeader = ann.get('seldon.io/ambassador-header');
  if (rawHeader) {
    const h = parseHeaderAnnotation(rawHeader);
    if (!h.ok) return h;
    headers.push(...h.value);
  }
  const rawRegex = ann.get('seldon.io/ambassador-regex-header');
  if (rawRegex) {
    const h = parseRegexHeaderAnnotation(rawRegex, regexes);
    if (!h.ok) return h;
    headers.push(...h.value);
  }
  const grpc = headers.filter((h) => h.name !== 'seldon' && h.name !== 'namespace');
  if (grpc.length !== headers.length) f.warn('header constraints on "seldon" or "namespace" are ignored on gRPC routes');
  return { ok: true, value: { rest: headers, grpc } };
}

/**
 * `seldon.io/gateway-cors`: the CORS policy of every REST route of the deployment (explainers
 * included; a Mapping's own `cors` replaces it on that Mapping's route), with the fields of
 * Ambassador's Mapping `cors`, written as JSON or YAML. Null when absent or empty. A value that
 * does not parse, or a bad field, is an error: CORS decides which requests the gateway answers
 * itself, so a policy is applied whole or not at all. An unknown key only warns.
 */
export function corsAnnotation(ann: EffectiveAnnotations, f: Findings): Parsed<CorsPolicy | null> {
  const raw = ann.get('seldon.io/gateway-cors');
  if (raw === undefined || raw === '') return { ok: true, value: null };
  let value: unknown;
  try {
    value = parseYaml(raw, { maxAliasCount: 100 });
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    return { ok: false, error: `seldon.io/gateway-cors does not parse as JSON or YAML: ${msg}` };
  }
  const p = parseCorsPolicy(value, 'seldon.io/gateway-cors');
  if (!p.ok) return p;
  for (const w of p.value.warnings) f.warn(w);
  return { ok: true, value: p.value.policy };
}

/**
 * A predictor's own annotations: `seldon.io/svc-name` must be a DNS-1035 label (an error text if
 * not: the operator could not create that Service either); `getambassador.io/config` is ignored
 * with a warning. Null when nothing rejects the deployment.
 */
export function predictorAnnotations(p: PredictorSpec, f: Findings): string | null {
  const svcName = p.annotations?.['seldon.io/svc-name'];
  if (svcName !== undefined && !isDns1035Label(svcName.trim())) {
    return `predictor "${p.name}": seldon.io/svc-name "${svcName}" is not a DNS-1035 label of at most 63 characters`;
  }
  if (p.annotations?.['getambassador.io/config'] !== undefined) {
    f.warn(`predictor "${p.name}": getambassador.io/config is ignored; use seldon.io/ambassador-config on the SeldonDeployment`);
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Tuning: a bad value keeps the default, with a warning.
// ---------------------------------------------------------------------------------------------

/** Above this request timeout, a generated route's idle timeout equals it. */
const MAX_IDLE_DEFAULT_MS = 300_000;

/** A request timeout and the stream idle timeout that goes with it, in ms (0: none). */
export interface Timeouts {
  readonly timeoutMs: number;
  readonly idleTimeoutMs: number;
}

/**
 * `seldon.io/rest-timeout` or `seldon.io/grpc-timeout` (before Seldon 1.1: `…-read-timeout`, read
 * only when the new key is absent): whole milliseconds, 0 for none, `defaultTimeoutMs` otherwise.
 * The idle timeout is the default one, or the request timeout when that is longer than 300 s.
 */
export function timeoutAnnotation(ann: EffectiveAnnotations, kind: Protocol, defaults: { readonly defaultTimeoutMs: number; readonly defaultIdleTimeoutMs: number }, f: Findings): Timeouts {
  const key = `seldon.io/${kind}-timeout`;
  const legacy = `seldon.io/${kind}-read-timeout`;
  const k = ann.has(key) ? key : ann.has(legacy) ? legacy : null;
  let timeoutMs = defaults.defaultTimeoutMs;
  if (k !== null) {
    const v = readWholeNumber(ann.get(k)!);
    if (v.ok) timeoutMs = v.value;
    else f.warn(`${k}: ${v.error}: default ${timeoutMs} ms used`);
  }
  return { timeoutMs, idleTimeoutMs: timeoutMs > MAX_IDLE_DEFAULT_MS ? timeoutMs : defaults.defaultIdleTimeoutMs };
}

/** `seldon.io/ambassador-retries`: N > 0 retries `gateway-error` failures N times; 0, absent or bad: none. */
export function retriesAnnotation(ann: EffectiveAnnotations, f: Findings): RetryPolicy | null {
  const raw = ann.get('seldon.io/ambassador-retries');
  if (raw === undefined) return null;
  const v = readWholeNumber(raw);
  if (!v.ok) {
    f.warn(`seldon.io/ambassador-retries: ${v.error}: no retries`);
    return null;
  }
  return v.value > 0 ? { retryOn: 'gateway-error', numRetries: v.value, perTryTimeoutMs: 0 } : null;
}

const BREAKER_SUFFIXES = ['max-connections', 'max-pending-requests', 'max-requests', 'max-retries'] as const;

/**
 * `seldon.io/ambassador-circuit-breakers-max-connections`, `-max-pending-requests`, `-max-requests`
 * and `-max-retries`: each read by the circuit breakers' one reader (routing/seldon/circuit-breakers.ts), 0
 * meaning unset; an unset or refused field keeps its default (a refused one warns).
 * All defaults: the shared `DEFAULT_BREAKER` object. None of the four given: `module` (the ambassador
 * Module's `circuit_breakers`) when there is one, as Emissary gives a Mapping without its own breakers
 * the Module's; given, they are the Mapping's own (Seldon writes them there) and replace the Module's whole.
 */
export function breakerAnnotations(ann: EffectiveAnnotations, f: Findings, module?: BreakerLimits): BreakerLimits {
  if (module !== undefined && !BREAKER_SUFFIXES.some((s) => ann.has(`seldon.io/ambassador-circuit-breakers-${s}`))) return module;
  const field = (suffix: string, dflt: number): number => {
    const k = `seldon.io/ambassador-circuit-breakers-${suffix}`;
    const raw = ann.get(k);
    if (raw === undefined) return dflt;
    const v = readBreakerAnnotation(raw);
    if (!v.ok) {
      f.warn(`${k}: ${v.error}: default ${dflt} used`);
      return dflt;
    }
    return v.value ?? dflt;
  };
  const b = {
    maxConnections: field('max-connections', DEFAULT_BREAKER.maxConnections),
    maxPendingRequests: field('max-pending-requests', DEFAULT_BREAKER.maxPendingRequests),
    maxRequests: field('max-requests', DEFAULT_BREAKER.maxRequests),
    maxRetries: field('max-retries', DEFAULT_BREAKER.maxRetries),
  };
  const same =
    b.maxConnections === DEFAULT_BREAKER.maxConnections &&
    b.maxPendingRequests === DEFAULT_BREAKER.maxPendingRequests &&
    b.maxRequests === DEFAULT_BREAKER.maxRequests &&
    b.maxRetries === DEFAULT_BREAKER.maxRetries;
  return same ? DEFAULT_BREAKER : b;
}

/**
 * `seldon.io/ambassador-weight` (Seldon ≤ 0.3): one explicit weight for all of the deployment's
 * members (the mirror percent on a shadow deployment), clamped to 0..100; null when absent or bad.
 */
export function legacyWeightAnnotation(ann: EffectiveAnnotations, f: Findings): number | null {
  const raw = ann.get('seldon.io/ambassador-weight');
  if (raw === undefined || raw === '') return null;
  const t = raw.trim();
  if (/^-[0-9]+$/.test(t)) {
    f.warn(`seldon.io/ambassador-weight "${raw}" clamped to 0`);
    return 0;
  }
  const v = readWholeNumber(t);
  if (!v.ok) {
    f.warn(`seldon.io/ambassador-weight: ${v.error}: ignored`);
    return null;
  }
  if (v.value > 100) {
    f.warn(`seldon.io/ambassador-weight ${v.value} clamped to 100`);
    return 100;
  }
  return v.value;
}

/** `seldon.io/ambassador-shadow` (Seldon ≤ 1.0): every route a mirror. `true`/`false` in any case; anything else is true, with a warning. */
export function legacyShadowAnnotation(ann: EffectiveAnnotations, f: Findings): boolean {
  const raw = ann.get('seldon.io/ambassador-shadow');
  if (raw === undefined || raw === '') return false;
  const v = raw.toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  f.warn(`seldon.io/ambassador-shadow "${raw}" is not true or false: taken as true`);
  return true;
}

// ---------------------------------------------------------------------------------------------
// The gate: seldon.io/gateway-auth and seldon.io/gateway-rate-limit.
// ---------------------------------------------------------------------------------------------

const RATE_LIMIT = /^([0-9]+)\s*\/\s*(s|m|h)(?:\s+per\s+claim:([A-Za-z0-9_.:/-]{1,128}))?$/;
const PERIOD_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000 };

/** `"<n>/<s|m|h>"`, optionally `" per claim:<name>"` (a bucket per caller) → a limit on bucket `key`, or an error text. */
export function parseRateLimit(raw: string, key: string): RateLimit | string {
  const m = RATE_LIMIT.exec(raw.trim());
  const n = m ? readWholeNumber(m[1]!) : undefined;
  if (!m || !n?.ok || n.value === 0) return `"${raw}" is not a rate like 100/s, 600/m or 5000/h (n ≥ 1), optionally followed by "per claim:<name>"`;
  const claim = m[3];
  if (claim === undefined) return { key, count: n.value, periodMs: PERIOD_MS[m[2]!]!, text: `${n.value}/${m[2]}` };
  return { key, count: n.value, periodMs: PERIOD_MS[m[2]!]!, text: `${n.value}/${m[2]} per claim:${claim}`, perClaim: claim };
}

export const NO_LIMITS: readonly RateLimit[] = [];

/** The deployment-wide gate annotations, read once; `gate(predictorLimit)` gives each backend its gate. */
export interface GateAnnotations {
  readonly warnings: readonly string[];
  /** Null when there is nothing to check; one shared object for every backend without a limit of its own. */
  gate(extra: RateLimit | null): Gate | null;
}

/** `seldon.io/gateway-auth: external`: the deployment's routes are checked by the external auth service even where --ext-auth-default is off. */
export function externalAuthAnnotation(ann: EffectiveAnnotations, extAuthDefault: boolean): boolean {
  return extAuthDefault || ann.get('seldon.io/gateway-auth')?.toLowerCase() === 'external';
}

/**
 * `seldon.io/gateway-auth` and the deployment's `seldon.io/gateway-rate-limit`. An auth value other
 * than `oauth`, `external` or `none` is an error text (a typo must not leave the deployment open); a
 * bad rate limit only warns. `extAuthDefault` (--ext-auth-default on): every route is checked by the
 * external auth service whatever the value, as Ambassador's AuthService checks every Mapping.
 */
export function gateAnnotations(ann: EffectiveAnnotations, ns: string, name: string, extAuthDefault = false, jwtProviders?: ReadonlySet<string>): GateAnnotations | string {
  const warnings: string[] = [];
  const jwt = jwtAnnotation(ann, jwtProviders);
  if (typeof jwt === 'string') return jwt;
  const rawAuth = ann.get('seldon.io/gateway-auth');
  const authValue = rawAuth?.toLowerCase();
  if (authValue !== undefined && authValue !== '' && authValue !== 'oauth' && authValue !== 'external' && authValue !== 'none') {
    return `seldon.io/gateway-auth "${rawAuth}" is not "oauth", "external" or "none"`;
  }
  const auth = authValue === 'oauth' ? { namespace: ns, deployment: name } : null;
  const external = externalAuthAnnotation(ann, extAuthDefault);
  let limit: RateLimit | null = null;
  const rawLimit = ann.get('seldon.io/gateway-rate-limit');
  if (rawLimit) {
    const l = parseRateLimit(rawLimit, `${ns}/${name}`);
    if (typeof l === 'string') warnings.push(`seldon.io/gateway-rate-limit: ${l}: no limit`);
    else limit = l;
  }
  if (limit?.perClaim !== undefined && jwt === null)
    warnings.push(`seldon.io/gateway-rate-limit: "per claim:${limit.perClaim}" needs seldon.io/gateway-jwt (a verified claim): every request shares one bucket`);
  const shared = auth || limit || external || jwt ? { auth, rateLimits: limit ? [limit] : NO_LIMITS, external, jwt } : null;
  return {
    warnings,
    gate: (extra) => (extra === null ? shared : { auth, rateLimits: limit ? [limit, extra] : [extra], external, jwt }),
  };
}

/** `seldon.io/gateway-jwt`: the policy, null when absent, or an error text (a bad policy must not leave the deployment open). */
export function jwtAnnotation(ann: EffectiveAnnotations, jwtProviders: ReadonlySet<string> | undefined): JwtPolicy | null | string {
  const raw = ann.get(JWT_ANNOTATION);
  if (raw === undefined || raw.trim() === '') return null;
  const p = parseJwtPolicy(raw, jwtProviders);
  return p.ok ? p.value : p.error;
}

/**
 * The gate of an OAuth- or JWT-gated deployment (`seldon.io/gateway-auth: oauth`, `seldon.io/gateway-jwt`)
 * as its Services impose it on anyone's route to them: its auth, its JWT policy and its valid
 * deployment-wide rate limit (and the external check, when its routes have it). Null when it is neither.
 */
export function ownerGateAnnotation(ann: EffectiveAnnotations, ns: string, name: string, extAuthDefault = false, jwtProviders?: ReadonlySet<string>): Gate | null {
  const oauth = ann.get('seldon.io/gateway-auth')?.toLowerCase() === 'oauth';
  const jwt = jwtAnnotation(ann, jwtProviders);
  if (!oauth && jwt === null) return null;
  // A policy that does not compile: the owner's routes are not served, and no one else's route passes to its Services either.
  const auth = oauth || typeof jwt === 'string' ? { namespace: ns, deployment: typeof jwt === 'string' ? CONFLICTED_AUTH_DEPLOYMENT : name } : null;
  const rawLimit = ann.get('seldon.io/gateway-rate-limit');
  const limit = rawLimit ? parseRateLimit(rawLimit, `${ns}/${name}`) : null;
  return { auth, rateLimits: limit === null || typeof limit === 'string' ? NO_LIMITS : [limit], external: extAuthDefault, jwt: typeof jwt === 'string' ? null : jwt };
}

/** A predictor's own `seldon.io/gateway-rate-limit` (its annotations): a bucket of its own; null when absent or bad (warned). */
export function predictorRateLimitAnnotation(p: PredictorSpec, ns: string, name: string, f: Findings): RateLimit | null {
  const raw = p.annotations?.['seldon.io/gateway-rate-limit'];
  if (raw === undefined || raw === '') return null;
  const l = typeof raw === 'string' ? parseRateLimit(raw, `${ns}/${name}/${p.name}`) : `${JSON.stringify(raw)} is not a string`;
  if (typeof l !== 'string') return l;
  f.warn(`predictor "${p.name}": seldon.io/gateway-rate-limit: ${l}: no limit`);
  return null;
}
