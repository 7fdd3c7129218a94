/**
 * Emissary's `ambassador` Module (the cluster-wide defaults of an Ambassador install), read from the
 * operator's file (--ambassador-module), never from a SeldonDeployment: a tenant does not set
 * cluster-wide config. Either shape Emissary reads: `getambassador.io/v2` with `name: ambassador`
 * and `config:`, or the v3alpha1 resource with `metadata.name: ambassador` and `spec.config`.
 *
 * Every key of `config` is in one class (docs/migrating-from-ambassador.md#the-ambassador-module), with the
 * values that keep it there:
 *
 * - `honoured`: read with Emissary's meaning, or a value that says what the gateway already does;
 * - `harmless`: nothing a client or model observes here depends on it (accepted with a warning);
 * - `refused`: the gateway does not honour it (or not that value): the Module is refused whole, at
 *   start (exit 2) or on a reload (the Module in use stays). A key not known here is refused.
 *
 * `inspectModule` classifies every key (migrate-check prints it); `parseAmbassadorModule` is the
 * same reading, thrown at the first refused key.
 */
import { isIP } from 'node:net';
import { parseAllDocuments } from 'yaml';
import { settingsFromModuleGzip } from './module-gzip.js';
import { parseCorsPolicy } from '../policies/cors.js';
import { parseRetry } from './custom-config.js';
import type { CompressionSettings } from '../compression/policy.js';
import type { BreakerLimits, CorsPolicy, RetryPolicy } from '../types.js';
import { readCircuitBreakers } from '../seldon/circuit-breakers.js';
import { readWholeNumber } from '../values/whole-number.js';
import { isKubernetesResolver, resolverRefusal } from './mapping-keys.js';
import { readModuleDefaults, type MappingDefaults } from './module-defaults.js';
import { errorOverrides, isDrop, loadBalancerOf, type ErrorOverride, type LoadBalancer } from './mapping-policy.js';

export type ModuleKeyClass = 'honoured' | 'harmless' | 'refused';

/** What the gateway takes from a Module: each setting absent when the Module is silent on it. */
export interface AmbassadorModule {
  /** `max_request_headers_kb`, in bytes (--max-header-size). */
  readonly maxRequestHeaderBytes?: number;
  /** `buffer.max_request_bytes` (--max-body). */
  readonly maxRequestBodyBytes?: number;
  /** `listener_idle_timeout_ms`: a client connection with no request in flight for this long is closed. */
  readonly listenerIdleTimeoutMs?: number;
  /** `cluster_request_timeout_ms`: the timeout of routes that set none (--default-timeout). */
  readonly defaultTimeoutMs?: number;
  /** `regex_max_size` (--regex-max-size). */
  readonly regexMaxSize?: number;
  /** `gzip` as written (checked by routing/emissary/module-gzip.ts, which makes it compression settings: `moduleCompression`). */
  readonly gzip?: unknown;
  /** `error_response_overrides` (the Mapping's parser): those of every route whose Mapping has none of its own (`moduleCompile`'s `defaultErrorOverrides`), and of the no-route answers. */
  readonly errorResponseOverrides?: readonly ErrorOverride[];
  /** `load_balancer` (the Mapping's parser): the balancer of every route whose Mapping sets none. */
  readonly loadBalancer?: LoadBalancer;
  /** `circuit_breakers`' default-priority entry: the limits of every route that sets none of its own. */
  readonly circuitBreakers?: BreakerLimits;
  /** `server_name`: the Server field of every answer, the model's replaced (Envoy's `server_header_transformation: OVERWRITE`). */
  readonly serverName?: string;
  /** `cors` as written (checked by the Mapping's parser): the CORS policy of every route that sets none (`moduleCors`). */
  readonly cors?: unknown;
  /** `retry_policy`: the retry policy of every route that has none of its own. */
  readonly retryPolicy?: RetryPolicy;
  /** `ip_allow` / `ip_deny` (one of them, as Emissary allows): who may send requests at all. */
  readonly ipPolicy?: IpPolicy;
  /** `xff_num_trusted_hops`: X-Forwarded-For entries (from the right) that proxies in front of the gateway wrote. */
  readonly xffNumTrustedHops?: number;
  /** `use_remote_address`: false, the peer's address is not the client's, nor appended to X-Forwarded-For. */
  readonly useRemoteAddress?: boolean;
  /** `strip_matching_host_port`: a Host's port equal to the listener's is dropped before matching. */
  readonly stripMatchingHostPort?: boolean;
  /** `reject_requests_with_escaped_slashes`: a path with %2F or %5C gets 400. */
  readonly rejectEscapedSlashes?: boolean;
  /** `x_forwarded_proto_redirect`: a request whose X-Forwarded-Proto is not https gets a 301 to https. */
  readonly xForwardedProtoRedirect?: boolean;
  /** `merge_slashes`: true, runs of / are merged before the match and forwarded merged; else kept as sent (Envoy's default). */
  readonly mergeSlashes?: boolean;
  /** `preserve_external_request_id`: false, a client's x-request-id is replaced by the gateway's own. */
  readonly preserveExternalRequestId?: boolean;
  /** `suppress_envoy_headers`: true, the gateway adds none of Envoy's router x-envoy-* headers (routing/emissary/edge-rules.ts). */
  readonly suppressEnvoyHeaders?: boolean;
  /** `headers_with_underscores_action: REJECT_REQUEST`: a request with a header name holding `_` gets 400. */
  readonly rejectUnderscoreHeaders?: boolean;
  /** `add_linkerd_headers`: every route whose Mapping sets none of its own sends `l5d-dst-override` to the model. */
  readonly addLinkerdHeaders?: boolean;
  /** `use_ambassador_namespace_for_service_resolution`: a Mapping's `service` without a namespace is a Service of AMBASSADOR_NAMESPACE. */
  readonly serviceInGatewayNamespace?: boolean;
  /** `defaults` (routing/emissary/module-defaults.ts): the header edits of every Mapping that does not set the key itself. */
  readonly mappingDefaults?: MappingDefaults;
  /** The harmless keys it sets, one line each (logged, applied anyway). */
  readonly warnings?: readonly string[];
}

/**
 * Emissary's `ip_allow` / `ip_deny` (Envoy's RBAC filter): `allow` admits a request when any principal
 * matches, `deny` refuses it when any does. `peer` is the connection's address; `remote` the client's as
 * the gateway determines it (the last X-Forwarded-For entry from a trusted proxy, else the peer).
 */
export interface IpPolicy {
  readonly action: 'allow' | 'deny';
  readonly principals: readonly IpPrincipal[];
}

export interface IpPrincipal {
  readonly kind: 'peer' | 'remote';
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

/** One key of the Module as the gateway reads it. */
export interface ModuleKeyReport {
  readonly key: string;
  readonly class: ModuleKeyClass;
  readonly why: string;
}

export interface ModuleReading {
  readonly module: AmbassadorModule;
  readonly keys: readonly ModuleKeyReport[];
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Class = Omit<ModuleKeyReport, 'key'>;
/** A key's reader: its class and why, or why the value refuses the Module. */
type Read = (v: unknown, into: Mutable<AmbassadorModule>) => Class | string;

const honoured = (why: string): Class => ({ class: 'honoured', why });
const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

/** A whole number of at least `min` (the one reader, routing/values/whole-number.ts); else the message. */
function whole(v: unknown, min: number): number | string {
  const n = readWholeNumber(v, { min });
  return n.ok ? n.value : n.error;
}

/** A boolean key read into `field`: `yes` / `no` say what each value does. */
function flag(
  field:
    | 'useRemoteAddress'
    | 'stripMatchingHostPort'
    | 'rejectEscapedSlashes'
    | 'xForwardedProtoRedirect'
    | 'mergeSlashes'
    | 'preserveExternalRequestId'
    | 'suppressEnvoyHeaders'
    | 'addLinkerdHeaders'
    | 'serviceInGatewayNamespace',
  yes: string,
  no: string,
): Read {
  return (v, into) => {
    if (typeof v !== 'boolean') return `${show(v)} is not true or false`;
    into[field] = v;
    return honoured(v ? yes : no);
  };
}

/** A key whose only honoured value is the one the gateway already has (`equal`); any other value refuses the Module. */
function only(equal: unknown, why: string, otherwise: string): Read {
  return (v) => (v === equal ? honoured(why) : `${show(v)}: ${otherwise}`);
}

const harmless =
  (why: string): Read =>
  () => ({ class: 'harmless', why });
const refused =
  (why: string): Read =>
  () =>
    why;

/**
 * Every key Emissary's Module takes (irambassador.py and its reference), with how the gateway reads it.
 * A key that is not here refuses the Module.
 */
const MODULE_KEYS: Readonly<Record<string, Read>> = {
  max_request_headers_kb: (v, into) => {
    const n = whole(v, 1);
    if (typeof n === 'string') return n;
    into.maxRequestHeaderBytes = n * 1024;
    return honoured(`request heads up to ${n} KiB (as --max-header-size)`);
  },
  cluster_request_timeout_ms: (v, into) => {
    const n = whole(v, 1);
    if (typeof n === 'string') return n;
    into.defaultTimeoutMs = n;
    return honoured(`routes that set no timeout time out after ${n} ms (as --default-timeout)`);
  },
  listener_idle_timeout_ms: (v, into) => {
    const n = whole(v, 1);
    if (typeof n === 'string') return n;
    into.listenerIdleTimeoutMs = n;
    return honoured(`client connections with no request in flight are closed after ${n} ms (HTTP/1.1 keep-alive, HTTP/2 sessions)`);
  },
  regex_max_size: (v, into) => {
    const n = whole(v, 1);
    if (typeof n === 'string') return n;
    into.regexMaxSize = n;
    return honoured(`regexes up to RE2 program size ${n} (as --regex-max-size)`);
  },
  buffer: (v, into) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'must be a map with max_request_bytes';
    const extra = Object.keys(v).find((k) => k !== 'max_request_bytes');
    if (extra !== undefined) return `"${extra}" is not a buffer setting the gateway knows`;
    const n = whole((v as Record<string, unknown>).max_request_bytes, 1);
    if (typeof n === 'string') return `max_request_bytes: ${n}`;
    into.maxRequestBodyBytes = n;
    return honoured(`request bodies up to ${n} bytes, larger ones 413 (as --max-body)`);
  },
  gzip: (v, into) => {
    // One reader of the block with compression's own (routing/emissary/module-gzip.ts); a bad block refuses the Module.
    const parsed = settingsFromModuleGzip(v);
    if (!parsed.ok) return parsed.error;
    into.gzip = v;
    return honoured("answers compressed as Envoy's gzip filter does, with the block's settings (unless --compress is given)");
  },
  error_response_overrides: (v, into) => {
    const parsed = errorOverrides(v);
    if (isDrop(parsed)) return parsed.why;
    if (parsed.length > 0) into.errorResponseOverrides = parsed;
    return honoured(
      "the bodies of REST answers with a listed status, on every route whose Mapping lists none of its own and does not bypass them, and the gateway's 404 and 503 when no route serves a request (gRPC answers are HTTP 200: none applies, as in Envoy)",
    );
  },
  load_balancer: (v, into) => {
    const parsed = loadBalancerOf(v);
    if (isDrop(parsed)) return parsed.why;
    into.loadBalancer = parsed;
    return honoured(`${parsed.policy}: the balancer of every route, REST and gRPC, whose Mapping sets none of its own (over the endpoints of its Service's EndpointSlices)`);
  },
  circuit_breakers: (v, into) => {
    const read = readCircuitBreakers(v);
    if (!read.ok) return read.error;
    const parsed = read.value;
    into.circuitBreakers = parsed;
    const b = parsed;
    return honoured(
      `connections ${b.maxConnections}, pending ${b.maxPendingRequests}, requests ${b.maxRequests}, retries ${b.maxRetries}: the breaker of every route that sets none of its own (a Mapping's circuit_breakers, seldon.io/ambassador-circuit-breakers-*)`,
    );
  },
  server_name: (v, into) => {
    if (typeof v !== 'string' || v.trim() === '' || v !== v.trim() || !/^[\x21-\x7e\x80-\xff][\x20-\x7e\x80-\xff]*$/.test(v))
      return `${show(v)} is not a header value (one line of visible characters)`;
    into.serverName = v;
    return honoured(`every answer's Server field is "${v}", the model's replaced, REST and gRPC (Envoy's overwrite)`);
  },
  cors: (v, into) => {
    const parsed = parseCorsPolicy(v, 'cors');
    if (!parsed.ok) return parsed.error;
    into.cors = v;
    // The one reader of CORS (routing/policies/cors.ts): a key it does not know is ignored, as Emissary's IRCORS ignores it, and said.
    const ignored = parsed.value.warnings.length > 0 ? ` (${parsed.value.warnings.join('; ')})` : '';
    return honoured(`the CORS policy of every route that has none of its own (a Mapping's cors, seldon.io/gateway-cors)${ignored}`);
  },
  retry_policy: (v, into) => {
    const parsed = parseRetry(v);
    if (typeof parsed === 'string') return parsed;
    into.retryPolicy = parsed;
    return honoured("the retry policy of every route that has none of its own (a Mapping's retry_policy, seldon.io/ambassador-retries)");
  },
  ip_allow: (v, into) => ipPolicy('allow', v, into),
  ip_deny: (v, into) => ipPolicy('deny', v, into),
  // The client's address and the forwarded headers: one rule with --trusted-proxies (gateway/config/ambassador-module.ts `moduleEdge`).
  use_remote_address: flag(
    'useRemoteAddress',
    "the peer's address is appended to X-Forwarded-For; the client is the peer, or counted from the right of X-Forwarded-For with xff_num_trusted_hops",
    "X-Forwarded-For goes on as sent (nothing appended) and every peer's is believed: the client is its (xff_num_trusted_hops + 1)th entry from the right",
  ),
  xff_num_trusted_hops: (v, into) => {
    const n = whole(v, 0);
    if (typeof n === 'string') return n;
    into.xffNumTrustedHops = n;
    return honoured(
      n === 0
        ? 'no X-Forwarded-For entry is trusted (unless --trusted-proxies names the peer)'
        : `every peer's X-Forwarded-For is kept (unless --trusted-proxies names the peers): the client is its ${n === 1 ? 'last entry' : `${n}th entry from the right`}`,
    );
  },
  // Paths and Hosts.
  merge_slashes: flag('mergeSlashes', 'runs of / are merged before the match, and forwarded merged', 'runs of / are matched and forwarded as sent'),
  strip_matching_host_port: flag('stripMatchingHostPort', "a Host's port equal to the listener's port is dropped before the match and towards the model", "a Host's port is matched as sent"),
  reject_requests_with_escaped_slashes: flag('rejectEscapedSlashes', 'a path with %2F or %5C (any case) gets 400 and reaches no model', 'escaped slashes are passed on'),
  preserve_external_request_id: flag('preserveExternalRequestId', "a client's x-request-id is kept", "a client's x-request-id is replaced by the gateway's own"),
  x_forwarded_proto_redirect: flag('xForwardedProtoRedirect', 'a request whose X-Forwarded-Proto (as the model would get it) is not https gets a 301 to https://', 'no redirect to HTTPS'),
  suppress_envoy_headers: flag(
    'suppressEnvoyHeaders',
    'no x-envoy-original-path to the model, no x-envoy-upstream-service-time nor x-envoy-overloaded to the client',
    'x-envoy-* headers are added, as the gateway does',
  ),
  use_proxy_proto: only(false, 'no PROXY protocol, as the gateway does', 'the gateway does not read the PROXY protocol'),
  add_linkerd_headers: flag(
    'addLinkerdHeaders',
    "the model receives l5d-dst-override: <service host>:<port> on every route whose Mapping does not set add_linkerd_headers itself (Seldon's routes included), as Emissary writes it",
    'no l5d-dst-override unless a Mapping sets add_linkerd_headers: true',
  ),
  allow_chunked_length: only(false, 'Content-Length with chunked is refused, as the gateway does', 'the gateway refuses Content-Length beside Transfer-Encoding'),
  proper_case: only(false, 'header names as the gateway writes them', 'header names are not re-cased'),
  regex_type: only('safe', 'RE2, as the gateway uses', 'only RE2 ("safe") regexes are read'),
  headers_with_underscores_action: (v, into) => {
    if (v === 'ALLOW') return honoured('header names with underscores are passed on, as the gateway does');
    if (v !== 'REJECT_REQUEST') return `${show(v)}: ALLOW or REJECT_REQUEST (DROP_HEADER, which would change the request, is not done)`;
    into.rejectUnderscoreHeaders = true;
    return honoured('a request with a header name holding "_" gets 400 and reaches no model');
  },
  // Emissary's own processes and pages, which the gateway has none of.
  diagnostics: harmless("Emissary's diagnostics pages; the gateway's admin port has its own (/routes, /metrics)"),
  admin_port: harmless("Envoy's admin port; the gateway's is --admin-port"),
  debug_mode: harmless("Envoy's log level; the gateway's is --log-level"),
  envoy_log_type: harmless("Envoy's access log; the gateway's is --access-log"),
  envoy_log_path: harmless("Envoy's access log; the gateway's is --access-log"),
  envoy_log_format: harmless("Envoy's access log; the gateway's is --access-log"),
  statsd: harmless("Envoy's statistics; the gateway's are on /metrics"),
  prune_unreachable_routes: harmless("the size of Envoy's configuration"),
  enable_ipv4: harmless('the gateway dials whichever family a name resolves to'),
  enable_ipv6: harmless('the gateway dials whichever family a name resolves to'),
  // Not honoured (or not yet): a Module that sets one is refused.
  lua_scripts: refused('Lua scripts are not run'),
  envoy_validation_timeout: refused("there is no Envoy configuration to validate; a key about Envoy's own process is not read"),
  cluster_idle_timeout_ms: refused('a default for every upstream is not applied'),
  cluster_max_connection_lifetime_ms: refused('a default for every upstream is not applied'),
  keepalive: refused('a default for every upstream is not applied'),
  resolver: (v) =>
    isKubernetesResolver(v)
      ? honoured(`${String(v)}: Services are resolved as the gateway does anyway (the endpoints of their EndpointSlices, else the Service's name through DNS)`)
      : resolverRefusal(v),
  liveness_probe: refused('the /ambassador/v0/check_alive route is not served (the gateway has /healthz on its admin port)'),
  readiness_probe: refused('the /ambassador/v0/check_ready route is not served (the gateway has /readyz on its admin port)'),
  enable_http10: refused('HTTP/1.0 handling is not set by the Module'),
  enable_grpc_http11_bridge: refused('the gRPC HTTP/1.1 bridge is not run'),
  enable_grpc_web: refused('gRPC-Web is not translated'),
  grpc_stats: refused("Envoy's gRPC statistics filter is not run: its per-service and per-method counters are not made (the gateway's gRPC metrics on /metrics are its own)"),
  forward_client_cert_details: refused('client certificate details are not forwarded'),
  set_current_client_cert_details: refused('client certificate details are not forwarded'),
  header_case_overrides: refused('header names are not re-cased'),
  auth_enabled: refused('auth is set by --ext-auth-service'),
  default_label_domain: refused('rate limit labels need a RateLimitService; use seldon.io/gateway-rate-limit'),
  default_labels: refused('rate limit labels need a RateLimitService; use seldon.io/gateway-rate-limit'),
  defaults: (v, into) => {
    const read = readModuleDefaults(v);
    if (typeof read === 'string') return read;
    if (Object.keys(read.defaults).length > 0) into.mappingDefaults = read.defaults;
    return honoured(read.why);
  },
  runtime_flags: refused("Envoy's runtime flags are not read"),
  service_port: refused('the port is --port'),
  buffer_limit_bytes: refused('connection buffer limits are not set by the Module'),
  use_ambassador_namespace_for_service_resolution: flag(
    'serviceInGatewayNamespace',
    "a Mapping's service without a namespace is a Service of the gateway's namespace (AMBASSADOR_NAMESPACE), not of the Mapping's (with --custom-config-scope namespace, a Mapping outside that namespace is then dropped)",
    "a Mapping's service without a namespace is a Service of the Mapping's namespace",
  ),
};

/** `ip_allow` or `ip_deny`: a list of `{peer: CIDR}` / `{remote: CIDR}`, one principal per entry. */
function ipPolicy(action: 'allow' | 'deny', v: unknown, into: Mutable<AmbassadorModule>): Class | string {
  if (into.ipPolicy !== undefined) return 'ip_allow and ip_deny cannot both be given';
  if (!Array.isArray(v) || v.length === 0) return 'must be a list of {peer: CIDR} or {remote: CIDR}';
  const principals: IpPrincipal[] = [];
  for (const [i, e] of v.entries()) {
    const entries = typeof e === 'object' && e !== null && !Array.isArray(e) ? Object.entries(e) : [];
    if (entries.length !== 1) return `[${i}]: ${show(e)} is not one {peer: CIDR} or {remote: CIDR}`;
    const [kind, spec] = entries[0]!;
    if (kind !== 'peer' && kind !== 'remote') return `[${i}]: "${kind}" is not peer or remote`;
    const [address = '', bits, ...rest] = String(spec).trim().split('/');
    const family = isIP(address);
    const prefix = bits === undefined ? (family === 6 ? 128 : 32) : /^[0-9]+$/.test(bits) ? Number(bits) : -1;
    if (family === 0 || rest.length > 0 || prefix < 0 || prefix > (family === 6 ? 128 : 32)) return `[${i}].${kind}: ${show(spec)} is not an address or CIDR`;
    principals.push({ kind, address, prefix, family: family === 6 ? 'ipv6' : 'ipv4' });
  }
  into.ipPolicy = { action, principals };
  return honoured(action === 'allow' ? 'requests from other addresses get 403' : 'requests from these addresses get 403');
}

/**
 * The `config` of the Module named `ambassador` in `text` (any of its YAML documents); null when the file has none
 * (empty). A Module whose `ambassador_id` (absent: `default`) does not name this gateway's AMBASSADOR_ID is refused: Emissary would
 * not apply it.
 */
function moduleConfig(text: string, ambassadorId: string): Record<string, unknown> | null {
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  let found: Record<string, unknown> | null = null;
  let seen = 0;
  for (const doc of list) {
    if (doc.errors.length > 0) throw new Error(`does not parse as YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
    const v: unknown = doc.toJS({ maxAliasCount: 100 });
    if (v === null || v === undefined) continue;
    seen++;
    if (typeof v !== 'object' || Array.isArray(v)) throw new Error('must be a Module (apiVersion: getambassador.io/…, kind: Module, name: ambassador)');
    const d = v as Record<string, unknown>;
    if (d.kind !== 'Module') throw new Error(`kind ${show(d.kind)}: only the ambassador Module is read from this file`);
    const meta = (typeof d.metadata === 'object' && d.metadata !== null ? d.metadata : {}) as Record<string, unknown>;
    const name = d.name ?? meta.name;
    if (name !== 'ambassador') throw new Error(`the Module named ${show(name)}: only the one named ambassador is read`);
    if (found !== null) throw new Error('two Modules named ambassador');
    const spec = (typeof d.spec === 'object' && d.spec !== null ? d.spec : undefined) as Record<string, unknown> | undefined;
    // Absent, the Module is the `default` gateway's, as every Emissary resource (config.py good_ambassador_id).
    const ids = d.ambassador_id ?? spec?.ambassador_id ?? 'default';
    if (!(Array.isArray(ids) ? ids : [ids]).includes(ambassadorId)) {
      throw new Error(`ambassador_id ${show(ids)} does not name this gateway's AMBASSADOR_ID "${ambassadorId}": Emissary would not apply this Module`);
    }
    const config = spec?.config ?? d.config ?? {};
    if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new Error('config must be a map of settings');
    found = config as Record<string, unknown>;
  }
  return seen === 0 ? null : found;
}

/** Every key of the Module in `text`, classified, and what the honoured ones set. Throws when the text is not a Module. */
export function inspectModule(text: string, ambassadorId = 'default'): ModuleReading {
  const config = moduleConfig(text, ambassadorId);
  const into: Mutable<AmbassadorModule> = {};
  const keys: ModuleKeyReport[] = [];
  for (const [key, v] of Object.entries(config ?? {})) {
    const read = Object.hasOwn(MODULE_KEYS, key) ? MODULE_KEYS[key]! : undefined;
    if (read === undefined) {
      keys.push({ key, class: 'refused', why: 'not a Module key the gateway knows' });
      continue;
    }
    const got = read(v, into);
    keys.push(typeof got === 'string' ? { key, class: 'refused', why: got } : { ...got, key });
  }
  return { module: into, keys };
}

/** The Module in `text`, or an Error naming the first key the gateway does not honour (`config.<key>: why`). */
export function parseAmbassadorModule(text: string, ambassadorId = 'default'): AmbassadorModule {
  const reading = inspectModule(text, ambassadorId);
  const bad = reading.keys.find((k) => k.class === 'refused');
  if (bad !== undefined) throw new Error(`config.${bad.key}: not honoured: ${bad.why}`);
  const warnings = reading.keys.filter((k) => k.class === 'harmless').map((k) => `ambassador Module config.${k.key}: not read here: ${k.why}`);
  return warnings.length > 0 ? { ...reading.module, warnings } : reading.module;
}

/** The Module's `cors` as the policy routes take (parsed again where it is applied: the Module travels between processes as data). */
export function moduleCors(m: AmbassadorModule | undefined): CorsPolicy | undefined {
  if (m?.cors === undefined) return undefined;
  const parsed = parseCorsPolicy(m.cors, 'cors');
  return parsed.ok ? parsed.value.policy : undefined;
}

/** The Module's `gzip` as the gateway's compression settings (read again where applied, as `cors`). */
export function moduleCompression(m: AmbassadorModule | undefined): CompressionSettings | undefined {
  if (m?.gzip === undefined) return undefined;
  const parsed = settingsFromModuleGzip(m.gzip);
  return parsed.ok ? parsed.value : undefined;
}
