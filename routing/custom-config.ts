/**
 * `seldon.io/ambassador-config`: Ambassador Mappings written by hand (docs/routing.md#custom-ambassador-config).
 *
 * Turns the YAML into route specs for `compile`. A parse failure, or no valid Mapping left,
 * rejects the SDep; one invalid Mapping is dropped with a reason; unknown keys warn once each.
 */
import { parseAllDocuments } from 'yaml';
import { compileFullMatch, checkHeaderName, isObj, RegexBudget, type HeaderConstraint } from './values.js';
import type { BreakerLimits, CorsPolicy, PathMatcher, RetryOn, RetryPolicy } from './types.js';
import { DEFAULT_BREAKER } from './types.js';
import { isDns1123Subdomain, serviceOfHost, validPort } from './services.js';
import { parseCorsPolicy } from './cors-config.js';
import { parseDuration } from './duration.js';

/** One valid Mapping, before it becomes a route spec. */
export interface MappingRoute {
  readonly name: string;
  readonly path: PathMatcher;
  readonly rewrite: string | null;
  readonly service: { readonly host: string; readonly port: number; readonly tls: boolean; readonly serviceName: string | null; readonly serviceNamespace: string | null };
  readonly grpc: boolean;
  readonly timeoutMs: number | null;
  readonly idleTimeoutMs: number | null;
  readonly headers: readonly HeaderConstraint[];
  readonly weight: number | null;
  readonly shadow: boolean;
  /** null: inherit the SDep's id. */
  readonly ambassadorIds: readonly string[] | null;
  readonly retry: RetryPolicy | null;
  readonly breaker: BreakerLimits;
  readonly host: string | null;
  /** The Mapping's own `cors` (REST only); null: the deployment's `seldon.io/gateway-cors`, if any, applies. */
  readonly cors: CorsPolicy | null;
  /**
   * `bypass_auth: true`: the external auth service is not asked, as Ambassador skips its AuthService;
   * honoured for the Mapping's own deployment's Services only (a Service of another deployment keeps
   * that one's check, routing/owner-gates.ts).
   */
  readonly bypassAuth: boolean;
}

export type CustomConfig = { ok: true; mappings: MappingRoute[]; warnings: string[] } | { ok: false; error: string };

const HONOURED = new Set([
  'name',
  'prefix',
  'prefix_regex',
  'rewrite',
  'service',
  'grpc',
  'timeout_ms',
  'idle_timeout_ms',
  'headers',
  'regex_headers',
  'weight',
  'shadow',
  'ambassador_id',
  'retry_policy',
  'circuit_breakers',
  'host',
  'cors',
  'bypass_auth',
  'apiVersion',
  'kind',
  'namespace',
]);
const RETRY_ON: readonly RetryOn[] = ['5xx', 'gateway-error', 'connect-failure', 'retriable-4xx', 'refused-stream'];

type Obj = Record<string, unknown>;

function nonNegativeInt(v: unknown): number | null {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 2147483647) return v;
  if (typeof v === 'string' && /^[0-9]+$/.test(v.trim())) return Number(v.trim());
  return null;
}

/** Ambassador's `per_try_timeout`: a duration (routing/duration.ts), or a number of ms (YAML's `0.5` typed as a number). */
function perTryMs(v: unknown): number | null {
  if (typeof v === 'number') return v >= 0 ? v : null;
  return parseDuration(v);
}

function parseService(raw: unknown, namespace: string): MappingRoute['service'] | string {
  if (typeof raw !== 'string' || raw.trim() === '') return 'service is required';
  let s = raw.trim();
  let tls = false;
  if (s.startsWith('https://')) {
    tls = true;
    s = s.slice(8);
  } else if (s.startsWith('http://')) s = s.slice(7);
  let host = s;
  let port = tls ? 443 : 80;
  const colon = s.lastIndexOf(':');
  if (colon >= 0) {
    host = s.slice(0, colon);
    const p = validPort(s.slice(colon + 1));
    if (p === null) return `service "${raw}" has an invalid port (1..65535)`;
    port = p;
  }
  // A DNS-1123 subdomain (any case) or an IPv4 address: nothing a URL parser would read differently.
  if (!isDns1123Subdomain(host.toLowerCase())) return `service "${raw}" has an invalid host`;
  // A dotless host is a Service in the SDep's namespace; `name.ns` names one in another namespace.
  const dots = host.split('.');
  if (dots.length === 1) return { host: `${host}.${namespace}`, port, tls, serviceName: host, serviceNamespace: namespace };
  if (dots.length === 2) return { host, port, tls, serviceName: dots[0]!, serviceNamespace: dots[1]! };
  return { host, port, tls, serviceName: null, serviceNamespace: null };
}

function parseConstraints(m: Obj, regexes: RegexBudget): HeaderConstraint[] | string {
  const out: HeaderConstraint[] = [];
  if (m.headers !== undefined) {
    if (!isObj(m.headers)) return 'headers must be a map';
    for (const [rawName, v] of Object.entries(m.headers)) {
      const name = rawName.trim().toLowerCase();
      const bad = checkHeaderName(name);
      if (bad) return `headers: ${bad}`;
      if (v === true) out.push({ kind: 'presence', name });
      else if (typeof v === 'string' || typeof v === 'number') out.push({ kind: 'exact', name, value: String(v) });
      else return `headers.${name} must be a string or true`;
    }
  }
  if (m.regex_headers !== undefined) {
    if (!isObj(m.regex_headers)) return 'regex_headers must be a map';
    for (const [rawName, v] of Object.entries(m.regex_headers)) {
      const name = rawName.trim().toLowerCase();
      const bad = checkHeaderName(name);
      if (bad) return `regex_headers: ${bad}`;
      if (typeof v !== 'string' || v === '') return `regex_headers.${name} must be a non-empty pattern`;
      const test = compileFullMatch(v, regexes);
      if (!test.ok) return `regex_headers.${name}: ${test.error}`;
      out.push({ kind: 'regex', name, pattern: v, test: test.value });
    }
  }
  return out;
}

function parseRetry(raw: unknown): RetryPolicy | string {
  if (!isObj(raw)) return 'retry_policy must be a map';
  const on = raw.retry_on;
  if (typeof on !== 'string' || !RETRY_ON.includes(on as RetryOn)) return `retry_policy.retry_on "${String(on)}" is not one of ${RETRY_ON.join(', ')}`;
  const n = raw.num_retries === undefined ? 1 : nonNegativeInt(raw.num_retries);
  if (n === null) return `retry_policy.num_retries "${String(raw.num_retries)}" is not a whole number`;
  const perTry = raw.per_try_timeout === undefined ? 0 : perTryMs(raw.per_try_timeout);
  if (perTry === null) return `retry_policy.per_try_timeout "${String(raw.per_try_timeout)}" is not a duration like 500ms or 2s`;
  const grpcOn = raw.retry_grpc_on === undefined ? [] : parseGrpcRetryOn(raw.retry_grpc_on);
  if (typeof grpcOn === 'string') return grpcOn;
  return { retryOn: on as RetryOn, numRetries: n, perTryTimeoutMs: perTry, ...(grpcOn.length > 0 ? { retryGrpcOn: grpcOn } : {}) };
}

/** Envoy's `retry_grpc_on` names and the gRPC status each stands for. */
const GRPC_RETRY_ON: Readonly<Record<string, number>> = { cancelled: 1, 'deadline-exceeded': 4, 'resource-exhausted': 8, internal: 13, unavailable: 14 };

/** `retry_grpc_on`: a comma-separated string (as Envoy's header) or a list of the names above. */
function parseGrpcRetryOn(raw: unknown): number[] | string {
  const names = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) ? raw : null;
  const bad = `retry_policy.retry_grpc_on "${String(raw)}" is not a list of ${Object.keys(GRPC_RETRY_ON).join(', ')}`;
  if (names === null) return bad;
  const out: number[] = [];
  for (const n of names) {
    const code = typeof n === 'string' ? GRPC_RETRY_ON[n.trim()] : undefined;
    if (code === undefined) return bad;
    if (!out.includes(code)) out.push(code);
  }
  return out;
}

function parseBreakers(raw: unknown, warn: (w: string) => void): BreakerLimits {
  if (!Array.isArray(raw)) {
    warn('circuit_breakers must be a list: defaults used');
    return DEFAULT_BREAKER;
  }
  const entry = raw.find((e) => isObj(e) && (e.priority === undefined || e.priority === 'default'));
  if (!isObj(entry)) return DEFAULT_BREAKER;
  const field = (key: string, dflt: number): number => {
    if (entry[key] === undefined) return dflt;
    const n = nonNegativeInt(entry[key]);
    if (n === null || n === 0) {
      warn(`circuit_breakers.${key} "${String(entry[key])}" is invalid: default ${dflt} used`);
      return dflt;
    }
    return n;
  };
  return {
    maxConnections: field('max_connections', DEFAULT_BREAKER.maxConnections),
    maxPendingRequests: field('max_pending_requests', DEFAULT_BREAKER.maxPendingRequests),
    maxRequests: field('max_requests', DEFAULT_BREAKER.maxRequests),
    maxRetries: field('max_retries', DEFAULT_BREAKER.maxRetries),
  };
}

/** One Mapping document → a route, or why it was dropped. */
function parseMapping(m: Obj, index: number, namespace: string, regexes: RegexBudget, warn: (w: string) => void): MappingRoute | string {
  const name = typeof m.name === 'string' && m.name.trim() !== '' ? m.name.trim() : `mapping-${index}`;
  if (typeof m.prefix !== 'string' || !m.prefix.startsWith('/')) return `prefix must be a path starting with "/"`;
  const regex = m.prefix_regex === true;
  let path: PathMatcher;
  let rewrite: string | null;
  if (regex) {
    const test = compileFullMatch(m.prefix, regexes);
    if (!test.ok) return `prefix: ${test.error}`;
    path = { kind: 'regex', source: m.prefix, test: test.value };
    if (m.rewrite !== undefined && m.rewrite !== '') return 'rewrite is not allowed on a prefix_regex Mapping';
    rewrite = null;
  } else {
    path = { kind: 'prefix', prefix: m.prefix };
    if (m.rewrite === undefined) rewrite = '/';
    else if (typeof m.rewrite !== 'string') return 'rewrite must be a string';
    else rewrite = m.rewrite === '' ? null : m.rewrite;
  }
  const service = parseService(m.service, namespace);
  if (typeof service === 'string') return service;
  const headers = parseConstraints(m, regexes);
  if (typeof headers === 'string') return headers;

  let host: string | null = null;
  if (m.host !== undefined) {
    if (typeof m.host !== 'string' || m.host.trim() === '') return 'host must be a non-empty string';
    if (m.host.includes('*')) return `host "${m.host}" with a wildcard is not supported`;
    host = m.host.trim().toLowerCase().replace(/:\d+$/, '');
  }
  // A bad `cors` drops the Mapping: it decides which requests the gateway answers itself.
  let cors: CorsPolicy | null = null;
  if (m.cors !== undefined && m.cors !== null) {
    if (m.grpc === true) warn(`${name}: cors is ignored on a gRPC Mapping`);
    else {
      const c = parseCorsPolicy(m.cors, 'cors');
      if (!c.ok) return c.error;
      for (const w of c.value.warnings) warn(`${name}: ${w}`);
      cors = c.value.policy;
    }
  }
  const ms = (key: 'timeout_ms' | 'idle_timeout_ms'): number | null => {
    if (m[key] === undefined) return null;
    const n = nonNegativeInt(m[key]);
    if (n === null) warn(`${name}: ${key} "${String(m[key])}" is not a whole number of ms: default used`);
    return n;
  };
  let weight: number | null = null;
  if (m.weight !== undefined) {
    const n = nonNegativeInt(m.weight);
    if (n === null && Number.isInteger(Number(m.weight)) && Number(m.weight) < 0) {
      warn(`${name}: weight ${String(m.weight)} clamped to 0`);
      weight = 0;
    } else if (n === null) warn(`${name}: weight "${String(m.weight)}" is not a whole number: ignored`);
    else if (n > 100) {
      warn(`${name}: weight ${n} clamped to 100`);
      weight = 100;
    } else weight = n;
  }
  let retry: RetryPolicy | null = null;
  if (m.retry_policy !== undefined) {
    const r = parseRetry(m.retry_policy);
    if (typeof r === 'string') warn(`${name}: ${r}: retry policy dropped`);
    else retry = r;
  }
  if (m.bypass_auth !== undefined && typeof m.bypass_auth !== 'boolean') warn(`${name}: bypass_auth "${String(m.bypass_auth)}" is not true or false: the auth service is asked`);
  let ambassadorIds: string[] | null = null;
  if (m.ambassador_id !== undefined) {
    const ids = Array.isArray(m.ambassador_id) ? m.ambassador_id : [m.ambassador_id];
    ambassadorIds = ids.filter((x): x is string => typeof x === 'string').map((x) => x.trim());
  }
  return {
    name,
    path,
    rewrite,
    service,
    grpc: m.grpc === true,
    timeoutMs: ms('timeout_ms'),
    idleTimeoutMs: ms('idle_timeout_ms'),
    headers,
    weight,
    shadow: m.shadow === true,
    ambassadorIds,
    retry,
    breaker: m.circuit_breakers === undefined ? DEFAULT_BREAKER : parseBreakers(m.circuit_breakers, (w) => warn(`${name}: ${w}`)),
    host,
    cors,
    bypassAuth: m.bypass_auth === true,
  };
}

export function parseCustomConfig(text: string, namespace: string, regexes = new RegexBudget()): CustomConfig {
  let docs: unknown[];
  try {
    const parsed = parseAllDocuments(text);
    if (!Array.isArray(parsed)) return { ok: false, error: 'seldon.io/ambassador-config is empty' };
    for (const d of parsed) {
      if (d.errors.length > 0) return { ok: false, error: `seldon.io/ambassador-config does not parse: ${d.errors[0]!.message}` };
    }
    docs = parsed.map((d) => d.toJS() as unknown);
  } catch (e) {
    return { ok: false, error: `seldon.io/ambassador-config does not parse: ${e instanceof Error ? e.message : String(e)}` };
  }
  const warnings: string[] = [];
  const warnedKeys = new Set<string>();
  const mappings: MappingRoute[] = [];
  const names = new Set<string>();
  docs.forEach((doc, i) => {
    if (doc === null || doc === undefined) return;
    if (!isObj(doc)) {
      warnings.push(`document ${i + 1} is not a map: ignored`);
      return;
    }
    if (doc.kind !== 'Mapping') {
      warnings.push(`kind ${String(doc.kind)} is not supported: ignored`);
      return;
    }
    for (const key of Object.keys(doc)) {
      if (!HONOURED.has(key) && !warnedKeys.has(key)) {
        warnedKeys.add(key);
        warnings.push(`Mapping key "${key}" is not supported: ignored`);
      }
    }
    const m = parseMapping(doc, i, namespace, regexes, (w) => warnings.push(w));
    if (typeof m === 'string') {
      warnings.push(`Mapping ${typeof doc.name === 'string' ? `"${doc.name}"` : `#${i + 1}`} dropped: ${m}`);
      return;
    }
    if (names.has(m.name)) {
      warnings.push(`Mapping "${m.name}" appears twice: the later one is dropped`);
      return;
    }
    names.add(m.name);
    mappings.push(m);
  });
  if (mappings.length === 0) {
    return { ok: false, error: `seldon.io/ambassador-config has no valid Mapping${warnings.length ? ` (${warnings.join('; ')})` : ''}` };
  }
  return { ok: true, mappings, warnings };
}

// ---------------------------------------------------------------------------------------------
// Tenant isolation (customConfigScope "namespace", docs/routing.md#custom-ambassador-config).
// ---------------------------------------------------------------------------------------------

/**
 * The paths a deployment in `namespace` may claim: `/seldon/<namespace>/`; in single-namespace mode
 * (one namespace served, so one tenant) anything under `/seldon/`, as the generated un-namespaced
 * prefixes are. Never `/oauth/`, `/api/` or anything else outside `/seldon/`.
 */
export function allowedPrefix(namespace: string, singleNamespace: boolean): string {
  return singleNamespace ? '/seldon/' : `/seldon/${namespace}/`;
}

/**
 * Why a Mapping reaches past its deployment's namespace, or null when it does not: a REST prefix
 * (or a regex's literal start) outside `allowedPrefix`; a gRPC Mapping without an exact `namespace`
 * header of its own namespace (cluster-wide; in single-namespace mode one that names another); a
 * `service` that is not a Service of its own namespace by name (`svc`, `svc.<ns>`, `svc.<ns>.svc…`).
 */
export function scopeViolation(m: MappingRoute, namespace: string, singleNamespace: boolean): string | null {
  if (m.grpc) {
    const ns = m.headers.filter((h) => h.name === 'namespace');
    const exact = ns.find((h) => h.kind === 'exact');
    if (exact && exact.value !== namespace) return `gRPC header namespace "${exact.value}" is not its own namespace "${namespace}"`;
    if (!exact && !singleNamespace) return `a gRPC Mapping needs the header namespace: ${namespace}`;
  } else {
    const allowed = allowedPrefix(namespace, singleNamespace);
    const text = m.path.kind === 'prefix' ? m.path.prefix : m.path.source;
    if (!text.startsWith(allowed)) return `${m.path.kind === 'prefix' ? 'prefix' : 'prefix_regex'} "${text}" is not under ${allowed}`;
  }
  const svc = serviceOfHost(m.service.host, namespace);
  if (!svc) return `service "${m.service.host}" is not a Service of namespace "${namespace}"`;
  if (svc.namespace !== namespace) return `service "${m.service.host}" is in namespace "${svc.namespace}", not "${namespace}"`;
  return null;
}

/** A regex Mapping that passed `scopeViolation`, made to match only paths under its allowed prefix (a top-level `|` cannot escape). */
export function confined(m: MappingRoute, namespace: string, singleNamespace: boolean): MappingRoute {
  if (m.grpc || m.path.kind !== 'regex') return m;
  const allowed = allowedPrefix(namespace, singleNamespace);
  const test = m.path.test;
  return { ...m, path: { kind: 'regex', source: m.path.source, test: (p) => p.startsWith(allowed) && test(p) } };
}
