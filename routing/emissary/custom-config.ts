/**
 * `seldon.io/ambassador-config`: Ambassador Mappings written by hand (docs/routing.md#custom-ambassador-config).
 *
 * Turns the YAML into route specs for `compile`. A parse failure, or no valid Mapping left,
 * rejects the SDep; one invalid Mapping is dropped with a reason; unknown keys warn once each.
 */
import { parseAllDocuments } from 'yaml';
import { isObj, RegexBudget, type HeaderConstraint } from '../values/syntax.js';
import type { BreakerLimits, CorsPolicy, PathMatcher, QueryConstraint, RetryOn, RetryPolicy } from '../types.js';
import { classifyMappingKey, isKubernetesResolver, resolverRefusal } from './mapping-keys.js';
import { parseMappingMatch } from './mapping-match.js';
import { isDrop, LINKERD_DST_OVERRIDE, parseMappingPolicy, withLinkerdHeader, type HeaderAddition, type MappingPolicy } from './mapping-policy.js';
import { groupKeysOf, type GroupKeys } from './group-keys.js';
import { withMappingDefaults, type MappingDefaults } from './module-defaults.js';
import { readCircuitBreakers } from '../seldon/circuit-breakers.js';
import { MAX_INT32, readWholeNumber } from '../values/whole-number.js';
import { isDns1123Subdomain, serviceOfHost } from '../seldon/services.js';
import { validPort } from '../values/port.js';
import { parseCorsPolicy } from '../policies/cors.js';
import { parseDuration } from '../values/duration.js';
import { unreadKind } from './unread-kinds.js';
import { readList } from '../values/list.js';
import { readMappingIds } from './mapping-ids.js';

/** One valid Mapping, before it becomes a route spec. */
export interface MappingRoute {
  readonly name: string;
  readonly path: PathMatcher;
  readonly rewrite: string | null;
  readonly service: {
    readonly host: string;
    readonly port: number;
    readonly tls: boolean;
    readonly serviceName: string | null;
    readonly serviceNamespace: string | null;
    /** The port was written (else the scheme's default). */
    readonly explicitPort: boolean;
  };
  readonly grpc: boolean;
  readonly timeoutMs: number | null;
  readonly idleTimeoutMs: number | null;
  /** Its headers, with `method` as `:method` and its host as `:authority` (routing/emissary/mapping-match.ts). */
  readonly headers: readonly HeaderConstraint[];
  readonly query: readonly QueryConstraint[];
  /** `precedence`. */
  readonly rank: number;
  readonly weight: number | null;
  readonly shadow: boolean;
  /** null: none written, the `default` gateway's (mapping-ids.ts). */
  readonly ambassadorIds: readonly string[] | null;
  readonly retry: RetryPolicy | null;
  /** Its own `circuit_breakers`; null when it sets none (the Module's, or the defaults, apply). */
  readonly breaker: BreakerLimits | null;
  /** What it does to the request and its answer besides routing; null when nothing (routing/emissary/mapping-policy.ts). */
  readonly policy: MappingPolicy | null;
  /** The Mapping's own `cors` (REST only); null: the deployment's `seldon.io/gateway-cors`, if any, applies. */
  readonly cors: CorsPolicy | null;
  /**
   * `bypass_auth: true`: the external auth service is not asked, as Ambassador skips its AuthService;
   * honoured for the Mapping's own deployment's Services only (a Service of another deployment keeps
   * that one's check, routing/table/owner-gates.ts).
   */
  readonly bypassAuth: boolean;
  /** Its core keys as written (`coreKeysOf`): every Mapping of a group must share them (routing/table/route-group.ts). */
  readonly core: CoreKeys;
  /** Its own values of the keys Emissary takes from the group (routing/emissary/group-keys.ts); null: it sets none. */
  readonly groupKeys: GroupKeys | null;
  /** The `l5d-dst-override` its `add_linkerd_headers` adds: its own whatever the group's other Mappings add. */
  readonly linkerd: HeaderAddition | null;
}

/** A Mapping's core keys (Emissary's `CoreMappingKeys`) that it sets, each with its value as canonical JSON. */
export type CoreKeys = Readonly<Record<string, string>>;

/**
 * Emissary's `IRHTTPMappingGroup.CoreMappingKeys` that a Mapping here can set (`headers`, `method` and `prefix`
 * are the group's match already; `labels`, `cluster_timeout_ms` and `group_id` drop a Mapping before this).
 */
export const CORE_MAPPING_KEYS: readonly string[] = [
  'bypass_auth',
  'circuit_breakers',
  'connect_timeout_ms',
  'cluster_idle_timeout_ms',
  'cluster_max_connection_lifetime_ms',
  'keepalive',
  'load_balancer',
  'prefix_regex',
  'prefix_exact',
];

/** JSON with object keys sorted, so two values written in another key order compare equal. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObj(v))
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

export function coreKeysOf(m: Obj): CoreKeys {
  const out: Record<string, string> = {};
  for (const k of CORE_MAPPING_KEYS) if (m[k] !== undefined) out[k] = canonical(m[k]);
  return out;
}

export type CustomConfig = { ok: true; mappings: MappingRoute[]; warnings: string[] } | { ok: false; error: string };

const RETRY_ON: readonly RetryOn[] = ['5xx', 'gateway-error', 'connect-failure', 'retriable-4xx', 'refused-stream'];

type Obj = Record<string, unknown>;
const NO_TLS_CONTEXTS: ReadonlySet<string> = new Set();

function nonNegativeInt(v: unknown): number | null {
  const n = readWholeNumber(v);
  return n.ok ? n.value : null;
}

/**
 * What the ambassador Module says of a Mapping's `service` (Emissary's `normalize_service_name`):
 * the gateway's own namespace (AMBASSADOR_NAMESPACE), whether a name without a namespace is a Service
 * of it (`use_ambassador_namespace_for_service_resolution`) rather than of the Mapping's, and whether a
 * Mapping that does not set `add_linkerd_headers` has it on.
 */
export interface ServiceResolution {
  readonly gatewayNamespace: string;
  readonly inGatewayNamespace: boolean;
  readonly linkerdDefault: boolean;
}

const MAPPING_NAMESPACE: ServiceResolution = { gatewayNamespace: '', inGatewayNamespace: false, linkerdDefault: false };

/**
 * `l5d-dst-override` as Emissary writes it: the service's host, qualified with the Mapping's
 * namespace only when the name has none, is not resolved in the gateway's namespace and the Mapping
 * is not in it; its port as written, else the scheme's (80, or 443 for `https://`).
 */
function linkerdTarget(written: string, port: number, namespace: string, res: ServiceResolution): string {
  const qualify = !written.includes('.') && written !== 'localhost' && !res.inGatewayNamespace && namespace !== res.gatewayNamespace;
  return `${qualify ? `${written}.${namespace}` : written}:${port}`;
}

function parseService(raw: unknown, mappingNamespace: string, res: ServiceResolution): (MappingRoute['service'] & { readonly written: string }) | string {
  // A name without a namespace: a Service of the Mapping's namespace, or of the gateway's when the Module says so.
  const namespace = res.inGatewayNamespace ? res.gatewayNamespace : mappingNamespace;
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
  const explicitPort = colon >= 0;
  const written = host.toLowerCase();
  if (dots.length === 1) return { host: `${host}.${namespace}`, port, tls, serviceName: host, serviceNamespace: namespace, explicitPort, written };
  if (dots.length === 2) return { host, port, tls, serviceName: dots[0]!, serviceNamespace: dots[1]!, explicitPort, written };
  return { host, port, tls, serviceName: null, serviceNamespace: null, explicitPort, written };
}

/** `retry_policy` (a Mapping's, and the ambassador Module's default for every route). */
export function parseRetry(raw: unknown): RetryPolicy | string {
  if (!isObj(raw)) return 'retry_policy must be a map';
  const on = raw.retry_on;
  if (typeof on !== 'string' || !RETRY_ON.includes(on as RetryOn)) return `retry_policy.retry_on "${String(on)}" is not one of ${RETRY_ON.join(', ')}`;
  const n = raw.num_retries === undefined ? 1 : nonNegativeInt(raw.num_retries);
  if (n === null) return `retry_policy.num_retries "${String(raw.num_retries)}" is not a whole number`;
  // A string, as Emissary's CRD types it and Envoy's Duration reads it: a bare YAML number (`0.5`) has no unit and is refused.
  const perTry = raw.per_try_timeout === undefined ? 0 : parseDuration(raw.per_try_timeout);
  if (perTry === null)
    return `retry_policy.per_try_timeout ${JSON.stringify(raw.per_try_timeout) ?? String(raw.per_try_timeout)} is not a duration string like "500ms" or "2s"${typeof raw.per_try_timeout === 'number' ? ' (a bare number has no unit; quote it with one)' : ''}`;
  const grpcOn = raw.retry_grpc_on === undefined ? [] : parseGrpcRetryOn(raw.retry_grpc_on);
  if (typeof grpcOn === 'string') return grpcOn;
  return { retryOn: on as RetryOn, numRetries: n, perTryTimeoutMs: perTry, ...(grpcOn.length > 0 ? { retryGrpcOn: grpcOn } : {}) };
}

/** Envoy's `retry_grpc_on` names and the gRPC status each stands for. */
const GRPC_RETRY_ON: Readonly<Record<string, number>> = { cancelled: 1, 'deadline-exceeded': 4, 'resource-exhausted': 8, internal: 13, unavailable: 14 };

/** `retry_grpc_on`: a comma-separated string (as Envoy's header) or a list of the names above. */
function parseGrpcRetryOn(raw: unknown): number[] | string {
  const names = readList(raw);
  const bad = `retry_policy.retry_grpc_on "${String(raw)}" is not a list of ${Object.keys(GRPC_RETRY_ON).join(', ')}`;
  if (!names.ok) return bad;
  const out: number[] = [];
  for (const n of names.value) {
    const code = Object.hasOwn(GRPC_RETRY_ON, n) ? GRPC_RETRY_ON[n] : undefined;
    if (code === undefined) return bad;
    if (!out.includes(code)) out.push(code);
  }
  return out;
}

/** One Mapping document → a route, or why it was dropped. */
function parseMapping(
  m: Obj,
  index: number,
  namespace: string,
  regexes: RegexBudget,
  tlsContexts: ReadonlySet<string>,
  res: ServiceResolution,
  resolvers: ReadonlySet<string>,
  warn: (w: string) => void,
): MappingRoute | string {
  const name = typeof m.name === 'string' && m.name.trim() !== '' ? m.name.trim() : `mapping-${index}`;
  const match = parseMappingMatch(m, regexes);
  if (isDrop(match)) return match.why;
  const path: PathMatcher = match.path;
  let rewrite: string | null;
  if (m.regex_rewrite !== undefined) {
    // Emissary: regex_rewrite replaces rewrite (with a notice when both are set).
    if (m.rewrite !== undefined && m.rewrite !== '/' && m.rewrite !== '') warn(`${name}: rewrite is ignored beside regex_rewrite`);
    rewrite = null;
  } else if (m.rewrite === undefined) {
    // Emissary's default `rewrite: /` on every Mapping, regex and gRPC ones included: Envoy's prefix_rewrite
    // replaces what the route matched, the whole path on a regex or exact route.
    rewrite = '/';
  } else if (typeof m.rewrite !== 'string') return 'rewrite must be a string';
  // Envoy sends such a rewrite as it is, a request target that is no path (Emissary's own KAT marks it broken).
  else if (m.rewrite !== '' && !m.rewrite.startsWith('/')) return `rewrite "${m.rewrite}" does not start with "/": the model would get a request target that is no path`;
  else rewrite = m.rewrite === '' ? null : m.rewrite;
  if (m.resolver !== undefined && !isKubernetesResolver(m.resolver) && !(typeof m.resolver === 'string' && resolvers.has(m.resolver))) return resolverRefusal(m.resolver);
  const parsedService = parseService(m.service, namespace, res);
  if (typeof parsedService === 'string') return parsedService;
  const { written, ...service } = parsedService;
  if (m.tls !== undefined && typeof m.tls !== 'boolean' && typeof m.tls !== 'string') return 'tls must be true, false or the name of an upstream TLS context';
  const ownPolicy = parseMappingPolicy(m, regexes, tlsContexts);
  if (isDrop(ownPolicy)) return ownPolicy.why;
  if (m.add_linkerd_headers !== undefined && typeof m.add_linkerd_headers !== 'boolean') return `add_linkerd_headers "${String(m.add_linkerd_headers)}" is not true or false`;
  // The Mapping's own value, else the Module's (irhttpmapping.py); never on a redirect, which reaches no service.
  const linkerd = (m.add_linkerd_headers ?? res.linkerdDefault) === true && m.host_redirect !== true;
  const policy = linkerd ? withLinkerdHeader(ownPolicy, linkerdTarget(written, service.port, namespace, res)) : ownPolicy;
  const upstream = m.tls === true || typeof m.tls === 'string' ? { ...service, tls: true, port: service.explicitPort ? service.port : 443 } : service;
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
  const ms = (key: 'timeout_ms' | 'idle_timeout_ms'): number | null | string => {
    if (m[key] === undefined) return null;
    const n = nonNegativeInt(m[key]);
    return n === null ? `${key} "${String(m[key])}" is not a whole number of ms` : n;
  };
  const timeoutMs = ms('timeout_ms');
  if (typeof timeoutMs === 'string') return timeoutMs;
  const idleTimeoutMs = ms('idle_timeout_ms');
  if (typeof idleTimeoutMs === 'string') return idleTimeoutMs;
  // Any whole number: the group decides what it means (routing/values/weights.ts `emissaryWeights`).
  let weight: number | null = null;
  if (m.weight !== undefined) {
    const n = readWholeNumber(m.weight, { min: -MAX_INT32 });
    if (!n.ok) return `weight "${String(m.weight)}" is not a whole number`;
    weight = n.value;
  }
  let retry: RetryPolicy | null = null;
  if (m.retry_policy !== undefined) {
    const r = parseRetry(m.retry_policy);
    if (typeof r === 'string') return r;
    retry = r;
  }
  if (m.bypass_auth !== undefined && typeof m.bypass_auth !== 'boolean') return `bypass_auth "${String(m.bypass_auth)}" is not true or false`;
  if (m.shadow !== undefined && typeof m.shadow !== 'boolean') return `shadow "${String(m.shadow)}" is not true or false`;
  if (m.grpc !== undefined && typeof m.grpc !== 'boolean') return `grpc "${String(m.grpc)}" is not true or false`;
  const ambassadorIds = readMappingIds(m.ambassador_id);
  if (ambassadorIds !== null && 'error' in ambassadorIds) return ambassadorIds.error;
  if (m.grpc === true && policy !== null) {
    if (policy.upgrades.length > 0) return 'allow_upgrade / use_websocket cannot apply to a gRPC Mapping';
    if (policy.redirect !== null) return 'host_redirect cannot apply to a gRPC Mapping';
  }
  if (policy?.redirect && m.shadow === true) return 'a shadow Mapping cannot redirect';
  // A shadow's weight is the percent of requests mirrored (Envoy's runtime_fraction over 100): nothing else has a meaning.
  if (m.shadow === true && weight !== null && (weight < 0 || weight > 100)) return `a shadow Mapping's weight must be 0 to 100 (the percent of requests mirrored), not ${weight}`;
  if (m.grpc === true && m.rewrite === undefined && m.regex_rewrite === undefined && !(path.kind === 'prefix' && path.prefix === '/')) {
    warn(`${name}: a gRPC Mapping without rewrite is rewritten to "/" as Emissary does (the model is called at "/<Method>"): set rewrite to the service's prefix to keep its name`);
  }
  // Emissary invalidates a Mapping whose circuit_breakers do not validate (irbasemapping.py): one reader with the Module's.
  let breaker: BreakerLimits | null = null;
  if (m.circuit_breakers !== undefined) {
    const b = readCircuitBreakers(m.circuit_breakers);
    if (!b.ok) return `circuit_breakers: ${b.error}`;
    breaker = b.value;
  }
  return {
    name,
    path,
    rewrite,
    service: upstream,
    grpc: m.grpc === true,
    timeoutMs,
    idleTimeoutMs,
    headers: match.headers,
    query: match.query,
    rank: match.rank,
    weight,
    shadow: m.shadow === true,
    ambassadorIds,
    retry,
    breaker,
    policy,
    cors,
    bypassAuth: m.bypass_auth === true,
    core: coreKeysOf(m),
    groupKeys: m.shadow === true || m.host_redirect === true ? null : ownGroupKeys(m, ownPolicy, retry, cors),
    linkerd: linkerd ? (policy?.requestHeaders?.add.find((a) => a.name === LINKERD_DST_OVERRIDE) ?? null) : null,
  };
}

/** The group-level keys a Mapping writes (the key present, as Emissary's flattening sees it), from its parsed values. */
function ownGroupKeys(m: Obj, p: MappingPolicy | null, retry: RetryPolicy | null, cors: CorsPolicy | null): GroupKeys | null {
  const set = (key: string): boolean => m[key] !== undefined && m[key] !== null;
  return groupKeysOf({
    addRequestHeaders: set('add_request_headers') ? (p?.requestHeaders?.add ?? []) : null,
    removeRequestHeaders: set('remove_request_headers') ? (p?.requestHeaders?.remove ?? []) : null,
    addResponseHeaders: set('add_response_headers') ? (p?.responseHeaders?.add ?? []) : null,
    removeResponseHeaders: set('remove_response_headers') ? (p?.responseHeaders?.remove ?? []) : null,
    regexRewrite: p?.regexRewrite ?? null,
    cors,
    retry,
    upgrades: set('allow_upgrade') || set('use_websocket') ? (p?.upgrades ?? []) : null,
  });
}

/** A v3alpha1 resource as written (`metadata` and `spec`) read as the flat form annotations use: the spec's keys, with `name` and `namespace` from its metadata. */
export function flatten(doc: Obj): Obj {
  if (!isObj(doc.spec) || !isObj(doc.metadata)) return doc;
  const { metadata, spec, ...rest } = doc;
  const meta = metadata as Obj;
  return { ...rest, ...(spec as Obj), ...(meta.name !== undefined ? { name: meta.name } : {}), ...(meta.namespace !== undefined ? { namespace: meta.namespace } : {}) };
}

/** A key's class as written with its value (migrate-check prints it): keys whose value makes them harmless though the key alone is not (Envoy's default priority). */
export function keyClass(key: string, value: unknown): ReturnType<typeof classifyMappingKey> {
  if (key === 'priority' && value === 'default') return { class: 'harmless', why: "Envoy's default priority" };
  return classifyMappingKey(key);
}

/** Emissary's resolver resources that resolve a Service in the cluster: what the gateway does anyway (a Service's ready endpoints, else its name). */
const KUBERNETES_RESOLVER_KINDS: ReadonlySet<string> = new Set(['KubernetesEndpointResolver', 'KubernetesServiceResolver']);

/** The names of the annotation's Kubernetes resolver resources: a Mapping's `resolver: <name>` of one is read as the built-in resolvers are. */
function kubernetesResolvers(docs: readonly unknown[]): ReadonlySet<string> {
  const names = new Set<string>();
  for (const raw of docs) {
    if (!isObj(raw) || typeof raw.kind !== 'string' || !KUBERNETES_RESOLVER_KINDS.has(raw.kind)) continue;
    const name = flatten(raw).name;
    if (typeof name === 'string' && name !== '') names.add(name);
  }
  return names;
}

export function parseCustomConfig(
  text: string,
  namespace: string,
  regexes = new RegexBudget(),
  tlsContexts: ReadonlySet<string> = NO_TLS_CONTEXTS,
  res: ServiceResolution = { ...MAPPING_NAMESPACE, gatewayNamespace: namespace },
  defaults?: MappingDefaults,
): CustomConfig {
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
  const resolvers = kubernetesResolvers(docs);
  docs.forEach((raw, i) => {
    if (raw === null || raw === undefined) return;
    if (!isObj(raw)) {
      warnings.push(`document ${i + 1} is not a map: ignored`);
      return;
    }
    if (typeof raw.kind === 'string' && KUBERNETES_RESOLVER_KINDS.has(raw.kind)) return;
    if (raw.kind !== 'Mapping') {
      const unread = unreadKind(raw.apiVersion, raw.kind);
      warnings.push(`kind ${String(raw.kind)} is not supported: ignored${unread ? `; instead: ${unread.instead}` : ''}`);
      return;
    }
    // Emissary refuses a resource whose apiVersion is not its own (config.py validate_object); Ambassador 1.x
    // read `ambassador/vN` as `getambassador.io/vN`, as Seldon's examples write it.
    if (typeof raw.apiVersion !== 'string' || !(raw.apiVersion.startsWith('getambassador.io/') || raw.apiVersion.startsWith('ambassador/'))) {
      const shown = typeof raw.name === 'string' ? `"${raw.name}"` : `#${i + 1}`;
      warnings.push(`Mapping ${shown} dropped: apiVersion ${raw.apiVersion === undefined ? 'None/' : JSON.stringify(raw.apiVersion)} unsupported (getambassador.io/… or ambassador/…)`);
      return;
    }
    const doc = flatten(raw);
    // docs/routing.md#mapping-keys: a key the gateway does not honour drops its Mapping, never a looser route.
    const refused: string[] = [];
    for (const [key, value] of Object.entries(doc)) {
      const c = keyClass(key, value);
      if (c.class === 'drops') refused.push(`"${key}" (${c.why})`);
      else if (c.class === 'harmless' && !warnedKeys.has(key)) {
        warnedKeys.add(key);
        warnings.push(`Mapping key "${key}" changes nothing here: ignored (${c.why})`);
      }
    }
    if (refused.length > 0) {
      warnings.push(`Mapping ${typeof doc.name === 'string' ? `"${doc.name}"` : `#${i + 1}`} dropped: ${refused.length === 1 ? 'key' : 'keys'} ${refused.join(', ')} not honoured`);
      return;
    }
    // The Module's defaults for the keys it does not set itself (after the key check: they are the Module's, not the tenant's keys).
    const m = parseMapping(withMappingDefaults(doc, defaults), i, namespace, regexes, tlsContexts, res, resolvers, (w) => warnings.push(w));
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
export function scopeViolation(m: MappingRoute, namespace: string, singleNamespace: boolean, granted: readonly string[] = []): string | null {
  if (m.grpc) {
    const ns = m.headers.filter((h) => h.name === 'namespace');
    const exact = ns.find((h) => h.kind === 'exact');
    if (exact && exact.value !== namespace) return `gRPC header namespace "${exact.value}" is not its own namespace "${namespace}"`;
    if (!exact && !singleNamespace) return `a gRPC Mapping needs the header namespace: ${namespace}`;
  } else {
    const allowed = allowedPrefix(namespace, singleNamespace);
    const text = m.path.kind === 'prefix' ? m.path.prefix : m.path.source;
    if (!text.startsWith(allowed) && !granted.some((g) => text.startsWith(g))) {
      const also = granted.length > 0 ? ` nor ${granted.join(', ')}` : '';
      return `${m.path.kind === 'prefix' ? 'prefix' : 'prefix_regex'} "${text}" is not under ${allowed}${also} (--custom-config-prefixes ${namespace}=/prefix/ grants more)`;
    }
  }
  // A redirect's service is only the Location the client is sent to: the gateway never dials it.
  if (m.policy?.redirect) return null;
  const svc = serviceOfHost(m.service.host, namespace);
  if (!svc) return `service "${m.service.host}" is not a Service of namespace "${namespace}"`;
  if (svc.namespace !== namespace) return `service "${m.service.host}" is in namespace "${svc.namespace}", not "${namespace}"`;
  return null;
}

/** A regex Mapping that passed `scopeViolation`, made to match only paths under its allowed prefix (a top-level `|` cannot escape). */
export function confined(m: MappingRoute, namespace: string, singleNamespace: boolean, granted: readonly string[] = []): MappingRoute {
  if (m.grpc || m.path.kind !== 'regex') return m;
  const source = m.path.source;
  const allowed = granted.find((g) => source.startsWith(g)) ?? allowedPrefix(namespace, singleNamespace);
  const test = m.path.test;
  return { ...m, path: { kind: 'regex', source: m.path.source, test: (p) => p.startsWith(allowed) && test(p) } };
}
