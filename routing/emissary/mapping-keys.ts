/**
 * Every key Emissary documents for a `Mapping` (getambassador.io/v2 and v3alpha1), in one of three classes
 * (docs/routing.md#mapping-keys):
 *
 * - `honoured`: read with Emissary's meaning (routing/emissary/custom-config.ts, mapping-match.ts, mapping-policy.ts);
 * - `harmless`: nothing a client or a model can observe in this gateway depends on it: ignored, with one
 *   warning per key per SeldonDeployment;
 * - `drops`: the gateway does not honour it, so a Mapping that sets it is dropped with the reason: a request
 *   never reaches its service under a meaning the Mapping did not have. Any key not listed here is `drops`.
 *
 * `migrate-check` prints this same table for a cluster's config before a switch.
 */

export type KeyClass = 'honoured' | 'harmless' | 'drops';

export interface KeyInfo {
  readonly class: KeyClass;
  /** What it does here (honoured), why it changes nothing (harmless), or why the Mapping is dropped. */
  readonly why: string;
}

const h = (why: string): KeyInfo => ({ class: 'honoured', why });
const x = (why: string): KeyInfo => ({ class: 'harmless', why });
const d = (why: string): KeyInfo => ({ class: 'drops', why });

export const MAPPING_KEYS: Readonly<Record<string, KeyInfo>> = Object.freeze({
  // What the document is.
  apiVersion: h("getambassador.io/v2 (or older), v3alpha1, or Ambassador 1.x's ambassador/vN: read the same way; any other, or none, drops the Mapping"),
  kind: h('only Mapping documents become routes; other kinds are ignored with a warning'),
  name: h("the Mapping's label in /routes and its backend id"),
  namespace: h("the SeldonDeployment's own namespace is used for Services without one"),
  metadata_labels: x("labels select Mappings for Emissary's Host resources, which the gateway has none of"),
  // Match.
  prefix: h('the path prefix (raw bytes, no decoding)'),
  prefix_regex: h('prefix is an RE2 pattern matched against the whole path'),
  prefix_exact: h('the whole path must equal prefix'),
  case_sensitive: h('false: the prefix (or prefix_exact path) matches regardless of case; a prefix_regex ignores it, as Envoy does'),
  method: h('the request method must equal it (a :method constraint)'),
  method_regex: h('method is an RE2 pattern for the method'),
  headers: h('exact values, or true for presence'),
  regex_headers: h('RE2 patterns matched against the whole value'),
  query_parameters: h('exact values, or true for presence, of query parameters'),
  regex_query_parameters: h('RE2 patterns for query parameter values'),
  host: h('the Host (:authority) exactly as sent, case and port included; with host_regex an RE2 pattern'),
  host_regex: h('host is an RE2 pattern for the Host as sent'),
  hostname: h('a Host glob (*.example.com a suffix, foo.* a prefix, * any), compared as sent; overrides host'),
  precedence: h('higher precedence is tried first, before any other order'),
  ambassador_id: h('served only by a gateway whose AMBASSADOR_ID is listed'),
  grpc: h('true: a gRPC route'),
  // What the model receives.
  service: h('the upstream: [scheme://]host[:port]'),
  rewrite: h('replaces the matched prefix (the whole path on prefix_regex and prefix_exact, gRPC included); default /; "" forwards the path as it came; one not starting with / drops its Mapping'),
  regex_rewrite: h("pattern and substitution applied to the path (RE2), instead of rewrite; a route key: the group's, from the last Mapping by name that sets it"),
  add_request_headers: h("headers added to the request (a value, or {value, append}); a route key: merged over the group's Mappings"),
  remove_request_headers: h("headers removed from the request; a route key: the group's, from the last Mapping by name that sets it"),
  host_rewrite: h('the Host the model receives'),
  auto_host_rewrite: h("true: the model receives its service's host name (no port) as Host"),
  tls: h('true, or the name of an upstream TLS context (--upstream-tls-context): TLS to the model'),
  timeout_ms: h('the route timeout'),
  idle_timeout_ms: h('the stream idle timeout'),
  retry_policy: h("retry_on, num_retries, per_try_timeout, retry_grpc_on; a route key: the group's, from the last Mapping by name that sets it"),
  weight: h('percent of a group of Mappings with the same match; what the weights leave falls through to the next route'),
  shadow: h("a mirror of the group's requests"),
  bypass_auth: h('the external auth service is not asked; a core key: every Mapping of a group must share it'),
  auth_context_extensions: h("sent in a gRPC check's context_extensions; an HTTP check has none (as Envoy)"),
  cors: h("the route's CORS policy; a route key: the group's, from the last Mapping by name that sets it"),
  // What the client receives.
  add_response_headers: h("headers added to the answer; a route key: merged over the group's Mappings"),
  remove_response_headers: h("headers removed from the answer; a route key: the group's, from the last Mapping by name that sets it"),
  error_response_overrides: h('the body of answers with a given status replaced'),
  bypass_error_response_overrides: h("no override applies to this Mapping's answers, not even the Module's"),
  host_redirect: h('the gateway answers with a redirect to service, no model is asked'),
  path_redirect: h("with host_redirect: the redirect's path"),
  prefix_redirect: h("with host_redirect: the matched prefix replaced in the redirect's path"),
  regex_redirect: h("with host_redirect: pattern and substitution applied to the redirect's path"),
  redirect_response_code: h('with host_redirect: 301, 302, 303, 307 or 308'),
  // The upstream.
  load_balancer: h('round_robin, least_request, or ring_hash/maglev by header, cookie or source_ip'),
  circuit_breakers: h('the priority-default entry: connection, pending, request and retry limits'),
  connect_timeout_ms: h('how long a connection to the model may take to open'),
  cluster_idle_timeout_ms: h('how long an idle upstream connection is kept'),
  cluster_max_connection_lifetime_ms: h('how long an upstream connection is used at most'),
  resolver: h(
    'kubernetes-service, kubernetes-endpoint or a KubernetesEndpointResolver/KubernetesServiceResolver of the same annotation: what the gateway does anyway; any other resolver (a Consul resolver) drops the Mapping',
  ),
  allow_upgrade: h("[websocket]: relayed both ways after the model's 101; an upgrade on a route without it gets 403, as Envoy's; a route key: the group's, from the last Mapping by name that sets it"),
  use_websocket: h('true: as allow_upgrade: [websocket]'),
  cluster_tag: h("an upstream of its own (connections, circuit breaker), as Emissary's cluster of its own; requests go to the same service"),
  // Nothing a client or model sees here depends on these.
  docs: x("documentation for Emissary's developer portal"),
  stats_name: x("names Envoy's statistics; the gateway labels metrics by deployment and predictor"),
  v3StatsName: x('as stats_name'),
  dns_type: x('the gateway resolves with the system resolver'),
  respect_dns_ttl: x('the gateway resolves with the system resolver'),
  enable_ipv4: x('the gateway connects over whichever family the name resolves to'),
  enable_ipv6: x('the gateway connects over whichever family the name resolves to'),
  keepalive: x('TCP keepalive probes on upstream connections: the answers are the same'),
  add_linkerd_headers: h("true: the model receives l5d-dst-override: <service host>:<port>, as Emissary writes it (the Module's add_linkerd_headers when the Mapping sets none)"),
  // Not honoured: a Mapping that sets one is dropped.
  priority: d("Envoy's high-priority circuit breakers are not modelled: its limits would differ"),
  labels: d('rate limit labels need a RateLimitService; use seldon.io/gateway-rate-limit'),
  rate_limits: d('rate limit labels need a RateLimitService; use seldon.io/gateway-rate-limit'),
  envoy_override: d('raw Envoy configuration cannot be honoured'),
  health_checks: d("active health checks are not run; the gateway's endpoint health is passive"),
  v3health_checks: d("active health checks are not run; the gateway's endpoint health is passive"),
  outlier_detection: d('not supported by Emissary either; use seldon.io/gateway-outlier'),
  modules: d('Module settings inside a Mapping are not read'),
  serialization: d('not a Mapping setting the gateway knows'),
});

/**
 * Whether `v` names one of Emissary's built-in resolvers, which the gateway does anyway (a Service's ready
 * endpoints, else its name through DNS). Any other names a resolver resource (Consul) that would send the
 * requests elsewhere: not read, so the Mapping or Module naming it is refused.
 */
export const isKubernetesResolver = (v: unknown): boolean => v === 'kubernetes-service' || v === 'kubernetes-endpoint';
export const resolverRefusal = (v: unknown): string =>
  `resolver ${JSON.stringify(v) ?? String(v)}: only the built-in Kubernetes resolvers (kubernetes-service, kubernetes-endpoint) are what the gateway does; a resolver resource (Consul) is not read`;

/** The class of one key as written in a Mapping; a key not listed drops its Mapping. */
export function classifyMappingKey(key: string): KeyInfo {
  return Object.hasOwn(MAPPING_KEYS, key) ? MAPPING_KEYS[key]! : { class: 'drops', why: 'not a Mapping key the gateway knows' };
}
