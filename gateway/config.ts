/**
 * Settings of `seldon-gateway serve` and `seldon-gateway routes`: one table of options, from which
 * the parser, the `--help` text and the README's configuration reference all come. Every flag has
 * an environment form (`SELDON_GATEWAY_<FLAG>`), except the Ambassador names users already set
 * (`AMBASSADOR_ID`, `AMBASSADOR_SINGLE_NAMESPACE`, `AMBASSADOR_NAMESPACE`) and the conventional
 * `REDIS_URL`. Flags win over env.
 */
import { BlockList, isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { serviceAccountNamespace } from '../source/kubernetes/cluster-access.js';
import { parseRedisUrl } from './auth/redis-url.js';
import type { CompileOptions } from '../routing/types.js';

type Kind = 'string' | 'boolean' | 'int' | 'number' | 'bytes' | 'duration' | 'list';

/** The groups of `--help`, in its order, with their headings. */
export const SECTIONS = {
  listen: 'Listen (the public port, and what clients may send it)',
  source: 'Source (where SeldonDeployments come from, and which are served)',
  tls: 'TLS (on the public port)',
  upstream: 'Upstream (how the models are reached)',
  shadows: 'Shadows (mirrored requests)',
  auth: 'Auth (OAuth tokens, rate limits)',
  extauth: "External auth (an auth service that checks every prediction, as Ambassador's AuthService)",
  observe: 'Observe (logs, traces, headers)',
  admin: 'Admin (the admin port)',
  process: 'Process',
  general: 'General',
} as const;
export type Section = keyof typeof SECTIONS;

interface OptionSpec {
  readonly flag: string;
  /** Where `--help` lists it. */
  readonly section: Section;
  /** The value's name in `--help` (`--port <port>`); unset: the kind's (valueName). */
  readonly value?: string;
  readonly env: string;
  readonly kind: Kind;
  readonly help: string;
  readonly default?: string;
  readonly short?: string;
  readonly commands: readonly ('serve' | 'routes')[];
}

const KIND_VALUE: Record<Kind, string> = { string: 'value', boolean: '', int: 'n', number: 'n', bytes: 'size', duration: 'duration', list: 'value' };

/** What `--help` calls an option's value: `<duration>`, `<path>`, `<size>`, ... (empty for a boolean). */
export function valueName(o: OptionSpec): string {
  const name = o.value ?? KIND_VALUE[o.kind];
  return name ? `<${name}>` : '';
}

const BOTH = ['serve', 'routes'] as const;
const SERVE = ['serve'] as const;
const env = (flag: string): string => `SELDON_GATEWAY_${flag.toUpperCase().replace(/-/g, '_')}`;

export const OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'manifests',
    section: 'source',
    value: 'path',
    short: 'f',
    env: env('manifests'),
    kind: 'string',
    commands: BOTH,
    help: 'File or directory of SeldonDeployment manifests (YAML/JSON) to serve; watched for changes.',
  },
  {
    flag: 'kubernetes',
    section: 'source',
    env: env('kubernetes'),
    kind: 'boolean',
    commands: SERVE,
    help: 'List and watch SeldonDeployments in the Kubernetes API. The default when no --manifests is given and a kubeconfig or an in-cluster service account is found.',
  },
  {
    flag: 'kubeconfig',
    section: 'source',
    value: 'path',
    env: 'KUBECONFIG',
    kind: 'string',
    commands: SERVE,
    help: 'kubeconfig file(s) for --kubernetes (a list separated by ":", as kubectl takes it). Default: ~/.kube/config, else the in-cluster service account.',
  },
  {
    flag: 'endpoint-routing',
    section: 'source',
    value: 'auto|off',
    env: env('endpoint-routing'),
    kind: 'string',
    default: 'auto',
    commands: SERVE,
    help: 'auto: with --kubernetes, watch the EndpointSlices of routed Services and balance each request across ready pods (Service DNS if RBAC forbids it); off: always dial Service DNS names.',
  },
  {
    flag: 'port',
    section: 'listen',
    value: 'port',
    env: env('port'),
    kind: 'int',
    default: '8080',
    commands: SERVE,
    help: 'Public port: REST (HTTP/1.1 and h2c) and gRPC (h2c) on one listener, as Ambassador had.',
  },
  { flag: 'host', section: 'listen', value: 'address', env: env('host'), kind: 'string', default: '0.0.0.0', commands: SERVE, help: 'Address the public port binds to.' },
  { flag: 'grpc-port', section: 'listen', value: 'port', env: env('grpc-port'), kind: 'int', commands: SERVE, help: 'Optional extra port that serves h2c gRPC only.' },
  {
    flag: 'oauth-port',
    section: 'listen',
    value: 'port',
    env: env('oauth-port'),
    kind: 'int',
    commands: SERVE,
    help: "Optional extra listener (REST and gRPC) for clients of Seldon 0.x's OAuth API front end, which used their own port; it serves what the public port serves.",
  },
  {
    flag: 'tls-cert',
    section: 'tls',
    value: 'path',
    env: env('tls-cert'),
    kind: 'string',
    commands: SERVE,
    help: 'PEM certificate (chain) of the public port: it then takes TLS (REST over HTTP/1.1 and HTTP/2, gRPC by ALPN). With --tls-key; reloaded when the file changes.',
  },
  { flag: 'tls-key', section: 'tls', value: 'path', env: env('tls-key'), kind: 'string', commands: SERVE, help: 'PEM private key of --tls-cert (unencrypted).' },
  {
    flag: 'tls-dir',
    section: 'tls',
    value: 'path',
    env: env('tls-dir'),
    kind: 'string',
    commands: SERVE,
    help: "Directory of certificate pairs chosen by SNI, laid out as mounted kubernetes.io/tls Secrets: tls.crt and tls.key in it and/or in each subdirectory; names from each certificate's subjectAltName (else CN); watched for changes.",
  },
  {
    flag: 'tls-allow-cleartext',
    section: 'tls',
    env: env('tls-allow-cleartext'),
    kind: 'boolean',
    commands: SERVE,
    help: 'With TLS on, the public port also serves cleartext HTTP/1.1 and h2c, told apart per connection (else they are refused).',
  },
  {
    flag: 'tls-redirect-cleartext',
    section: 'tls',
    env: env('tls-redirect-cleartext'),
    kind: 'boolean',
    commands: SERVE,
    help: "With TLS on, answer cleartext HTTP/1.1 requests with a redirect to https:// (301 for GET and HEAD, else 308), as Ambassador's insecure action Redirect. Cleartext gRPC is refused unless --tls-allow-cleartext.",
  },
  {
    flag: 'tls-client-ca',
    section: 'tls',
    value: 'path',
    env: env('tls-client-ca'),
    kind: 'string',
    commands: SERVE,
    help: 'PEM CA certificate(s) client certificates must chain to (mutual TLS, as a TLSContext ca_secret); refused handshakes are counted.',
  },
  {
    flag: 'tls-client-auth',
    section: 'tls',
    value: 'required|optional',
    env: env('tls-client-auth'),
    kind: 'string',
    default: 'required',
    commands: SERVE,
    help: 'With --tls-client-ca: required (every client presents a valid certificate) or optional (a client may present none; one it presents must be valid).',
  },
  {
    flag: 'admin-port',
    section: 'admin',
    value: 'port',
    env: env('admin-port'),
    kind: 'int',
    default: '8877',
    commands: SERVE,
    help: 'Admin port: /healthz, /readyz, /routes, /metrics. Never served on the public port.',
  },
  {
    flag: 'admin-host',
    section: 'admin',
    value: 'address',
    env: env('admin-host'),
    kind: 'string',
    commands: SERVE,
    help: "Address the admin port binds to. Default 127.0.0.1, or 0.0.0.0 inside a cluster, where the kubelet's probes and Prometheus reach it at the pod's address (guard it with --admin-token-file and a NetworkPolicy).",
  },
  {
    flag: 'admin-token-file',
    section: 'admin',
    value: 'path',
    env: env('admin-token-file'),
    kind: 'string',
    commands: SERVE,
    help: 'File holding a bearer token the admin port then requires (Authorization: Bearer <token>, or a browser login) on everything but /healthz and /readyz; re-read when it changes, as a mounted Secret does. Unset: no token.',
  },
  {
    flag: 'admin-page-sample',
    section: 'admin',
    env: env('admin-page-sample'),
    kind: 'duration',
    default: '10s',
    commands: SERVE,
    help: 'How often the admin page samples the traffic counters: its window is 30 samples (5 minutes at 10s), its charts one point per sample.',
  },
  {
    flag: 'ambassador-id',
    section: 'source',
    value: 'id',
    env: 'AMBASSADOR_ID',
    kind: 'string',
    default: 'default',
    commands: BOTH,
    help: 'Serve only SeldonDeployments whose seldon.io/ambassador-id is this id (untagged ones are "default").',
  },
  {
    flag: 'single-namespace',
    section: 'source',
    env: 'AMBASSADOR_SINGLE_NAMESPACE',
    kind: 'boolean',
    commands: BOTH,
    help: 'Serve one namespace (--namespace) and also the un-namespaced /seldon/<name>/ prefixes.',
  },
  {
    flag: 'namespace',
    section: 'source',
    value: 'namespace',
    env: 'AMBASSADOR_NAMESPACE',
    kind: 'string',
    default: 'default',
    commands: BOTH,
    help: "The namespace served in single-namespace mode (in a cluster: the gateway's own). Given as a flag, it also limits the Kubernetes watch to that namespace.",
  },
  {
    flag: 'resolve',
    section: 'upstream',
    value: 'svc.ns:port=host:port',
    env: env('resolve'),
    kind: 'list',
    commands: SERVE,
    help: 'Dial <svc>.<ns>:<port> at <host>:<port> instead, like curl --resolve. Repeatable; env: comma-separated.',
  },
  {
    flag: 'workers',
    section: 'process',
    env: env('workers'),
    kind: 'int',
    commands: SERVE,
    help: 'Worker processes serving traffic, beside a primary that watches the source and serves the admin port. Default: one per core.',
  },
  {
    flag: 'max-semi-space-size',
    section: 'process',
    value: 'MB',
    env: env('max-semi-space-size'),
    kind: 'int',
    default: '64',
    commands: SERVE,
    help: "V8 young-generation semi-space of each worker, in MB (node --max-semi-space-size). Larger means fewer, shorter GC pauses on the hot path; a set size also turns off the V8 memory reducer in workers, which would shrink it back after a lull; 0 keeps Node's default.",
  },
  {
    flag: 'grace-period',
    section: 'process',
    env: env('grace-period'),
    kind: 'duration',
    default: '10s',
    commands: SERVE,
    help: 'On SIGTERM/SIGINT, how long in-flight requests may take to finish before exit.',
  },
  {
    flag: 'default-timeout',
    section: 'upstream',
    env: env('default-timeout'),
    kind: 'duration',
    default: '3000ms',
    commands: BOTH,
    help: 'Request timeout of routes without seldon.io/rest-timeout / grpc-timeout.',
  },
  { flag: 'default-idle-timeout', section: 'upstream', env: env('default-idle-timeout'), kind: 'duration', default: '300000ms', commands: BOTH, help: 'Stream idle timeout of routes that set none.' },
  { flag: 'connect-timeout', section: 'upstream', env: env('connect-timeout'), kind: 'duration', default: '3000ms', commands: SERVE, help: 'Upstream connect timeout, per attempt (TCP plus TLS).' },
  {
    flag: 'default-http-port',
    section: 'upstream',
    value: 'port',
    env: env('default-http-port'),
    kind: 'int',
    default: '8000',
    commands: BOTH,
    help: "Executor REST port when the SeldonDeployment status is silent (the operator's ENGINE_SERVER_PORT).",
  },
  {
    flag: 'default-grpc-port',
    section: 'upstream',
    value: 'port',
    env: env('default-grpc-port'),
    kind: 'int',
    default: '5001',
    commands: BOTH,
    help: 'Executor gRPC port when the status is silent (ENGINE_SERVER_GRPC_PORT).',
  },
  {
    flag: 'legacy-service-naming',
    section: 'upstream',
    env: env('legacy-service-naming'),
    kind: 'boolean',
    commands: BOTH,
    help: 'Use Seldon <= 0.3 Service names (<spec.name>-<sdep>, one Service for all predictors).',
  },
  { flag: 'no-custom-config', section: 'source', env: env('no-custom-config'), kind: 'boolean', commands: BOTH, help: "Ignore seldon.io/ambassador-config (as Seldon's resource mode did)." },
  {
    flag: 'custom-config-scope',
    section: 'source',
    value: 'namespace|cluster',
    env: env('custom-config-scope'),
    kind: 'string',
    default: 'namespace',
    commands: BOTH,
    help: "What a SeldonDeployment's seldon.io/ambassador-config Mappings may claim. namespace: only prefixes under /seldon/<its namespace>/, gRPC for its own namespace and Services in its own namespace (tenants cannot reach each other), and a gRPC call without namespace metadata is routed only in single-namespace mode; cluster: anything, as Ambassador allowed, and a missing gRPC namespace means the one namespace serving that name.",
  },
  {
    flag: 'regex-max-size',
    section: 'source',
    env: env('regex-max-size'),
    kind: 'int',
    default: '200',
    commands: BOTH,
    help: "Largest RE2 program size of a regex in seldon.io/ambassador-regex-header or a custom Mapping (regex_headers, prefix_regex), as Ambassador's regex_max_size: matching a request costs in proportion to it, so a larger one rejects its SeldonDeployment (or drops its Mapping).",
  },
  {
    flag: 'upstream-tls-verify',
    section: 'upstream',
    env: env('upstream-tls-verify'),
    kind: 'boolean',
    commands: SERVE,
    help: 'Verify upstream TLS certificates (predictors with ssl). Off by default: Seldon uses self-signed ones.',
  },
  {
    flag: 'upstream-ca',
    section: 'upstream',
    value: 'path',
    env: env('upstream-ca'),
    kind: 'string',
    commands: SERVE,
    help: 'PEM file of CA certificates to verify upstream TLS against (implies --upstream-tls-verify).',
  },
  {
    flag: 'shadow-max-in-flight',
    section: 'shadows',
    env: env('shadow-max-in-flight'),
    kind: 'int',
    commands: SERVE,
    help: "Optional cap on mirrored requests outstanding (waiting or sent) per shadow upstream; more are dropped and counted. Unset or 0: none; as in Envoy, copies are bounded by the shadow's circuit breaker (max_requests, max_pending_requests) and its route timeout alone. The request bytes copies hold are at most that bound x --shadow-max-body.",
  },
  {
    flag: 'shadow-max-body',
    section: 'shadows',
    env: env('shadow-max-body'),
    kind: 'bytes',
    default: '4MiB',
    commands: SERVE,
    help: 'Largest request body that is mirrored; larger ones are not mirrored (counted).',
  },
  {
    flag: 'retry-buffer',
    section: 'upstream',
    env: env('retry-buffer'),
    kind: 'bytes',
    default: '1MiB',
    commands: SERVE,
    help: 'Largest request body kept for retries; larger requests are not retried.',
  },
  {
    flag: 'balance',
    section: 'upstream',
    value: 'random|round-robin',
    env: env('balance'),
    kind: 'string',
    default: 'random',
    commands: SERVE,
    help: 'How a weighted split picks: random (one uniform draw per request) or round-robin (smooth weighted).',
  },
  { flag: 'random-seed', section: 'upstream', env: env('random-seed'), kind: 'int', commands: SERVE, help: 'Seed the weighted pick for reproducible splits (tests, demos).' },
  {
    flag: 'predictor-header',
    section: 'observe',
    env: env('predictor-header'),
    kind: 'boolean',
    commands: SERVE,
    help: 'Add x-seldon-predictor: <predictor> to every upstream answer (REST header, gRPC initial metadata), replacing any the upstream sent.',
  },
  {
    flag: 'access-log',
    section: 'observe',
    value: 'on|off',
    env: env('access-log'),
    kind: 'string',
    default: 'on',
    commands: SERVE,
    help: 'on: a line on stdout for every REST request and gRPC call (the fields are in the README), as Envoy and ingress-nginx write one; written without ever holding a request (what stdout cannot take in time is dropped and counted). off: none.',
  },
  {
    flag: 'access-log-format',
    section: 'observe',
    value: 'json|text',
    env: env('access-log-format'),
    kind: 'string',
    default: 'json',
    commands: SERVE,
    help: "json: one JSON object per line, with Envoy's JSON field names; text: Envoy's default access log line, the gateway's fields appended.",
  },
  {
    flag: 'access-log-sample',
    section: 'observe',
    value: 'fraction',
    env: env('access-log-sample'),
    kind: 'number',
    default: '1',
    commands: SERVE,
    help: 'Fraction (0..1) of requests the access log writes (0: none).',
  },
  {
    flag: 'access-log-query',
    section: 'observe',
    env: env('access-log-query'),
    kind: 'boolean',
    commands: SERVE,
    help: 'Write query strings in logged paths. Off: the path only, since queries can carry credentials (?access_token=).',
  },
  {
    flag: 'access-log-buffer',
    section: 'observe',
    env: env('access-log-buffer'),
    kind: 'bytes',
    default: '16MiB',
    commands: SERVE,
    help: "Access log bytes waiting for stdout, at most, per process (nginx's access_log buffer); past it, lines are dropped and counted in seldon_gateway_access_log_dropped_total.",
  },
  {
    flag: 'otlp-endpoint',
    section: 'observe',
    value: 'url',
    env: env('otlp-endpoint'),
    kind: 'string',
    commands: SERVE,
    help: 'OpenTelemetry collector to send traces to, over OTLP/HTTP (protobuf, batched), e.g. http://otel-collector:4318 (spans go to /v1/traces; a URL with a path is used as it is). Unset: no tracing, at no cost. OTEL_SERVICE_NAME names the service (default seldon-gateway).',
  },
  {
    flag: 'trace-sample',
    section: 'observe',
    value: 'fraction',
    env: env('trace-sample'),
    kind: 'number',
    default: '1',
    commands: SERVE,
    help: 'Head sampling: the fraction (0..1) of requests without a trace context that start a sampled trace. Parent-based: a W3C or B3 context the client sent decides for its request, sampled or not.',
  },
  {
    flag: 'shadow-compare',
    section: 'shadows',
    env: env('shadow-compare'),
    kind: 'boolean',
    commands: SERVE,
    help: "Compare each REST shadow answer with the primary's for the same request (status, JSON body): counted, and the last disagreements shown on the admin page.",
  },
  {
    flag: 'shadow-compare-tolerance',
    section: 'shadows',
    env: env('shadow-compare-tolerance'),
    kind: 'number',
    default: '0.000001',
    commands: SERVE,
    help: 'Numbers in compared JSON answers agree when they differ by at most tolerance x max(1, abs(a), abs(b)).',
  },
  {
    flag: 'shadow-compare-ignore',
    section: 'shadows',
    value: 'field',
    env: env('shadow-compare-ignore'),
    kind: 'list',
    default: 'meta',
    commands: SERVE,
    help: 'Top-level JSON fields left out of the comparison. Repeatable; env: comma-separated.',
  },
  {
    flag: 'shadow-compare-max-body',
    section: 'shadows',
    env: env('shadow-compare-max-body'),
    kind: 'bytes',
    default: '256KiB',
    commands: SERVE,
    help: 'Largest answer (primary or shadow) kept for comparison; larger pairs are counted as skipped.',
  },
  {
    flag: 'redis-url',
    section: 'auth',
    value: 'url',
    env: 'REDIS_URL',
    kind: 'string',
    commands: SERVE,
    help: "Redis for state every replica shares (OAuth tokens, rate limits, rollouts, bandits): redis://redis:6379/0, redis+sentinel://s1:26379,s2:26379/mymaster, redis+cluster://n1:6379,n2:6379 (rediss… for TLS; docs/redis.md). Unset: kept in this instance's memory.",
  },
  {
    flag: 'redis-timeout',
    section: 'auth',
    env: env('redis-timeout'),
    kind: 'duration',
    default: '100ms',
    commands: SERVE,
    help: "How long a request waits for Redis: then token checks answer 503 and rate limits use this replica's share.",
  },
  {
    flag: 'steering-key-file',
    section: 'auth',
    value: 'path',
    env: env('steering-key-file'),
    kind: 'string',
    commands: SERVE,
    help: 'HMAC keys, one per line (a mounted Secret; the first signs), for what clients send back: bandit attribution tokens and sticky cookies. Unset: a key shared through --redis-url, else one per instance.',
  },
  {
    flag: 'oauth-token-ttl',
    section: 'auth',
    env: env('oauth-token-ttl'),
    kind: 'duration',
    default: '43200s',
    commands: SERVE,
    help: 'Lifetime of the bearer tokens POST /oauth/token issues (a client gets its unexpired token again).',
  },
  {
    flag: 'ext-auth-service',
    section: 'extauth',
    value: '[scheme://]host:port',
    env: env('ext-auth-service'),
    kind: 'string',
    commands: BOTH,
    help: "The external auth service every prediction is checked by before it reaches a model (AuthService auth_service): http://host:port or https://host:port (HTTP), grpc://host:port or grpcs://host:port (Envoy's envoy.service.auth.v3.Authorization/Check, as OPA-Envoy and Authorino serve it), or host:port with --ext-auth-proto. A cluster Service name is dialled through --resolve like any upstream. Unset: no external auth (routes that require it are refused with --ext-auth-status-on-error).",
  },
  {
    flag: 'ext-auth-proto',
    section: 'extauth',
    value: 'http|grpc',
    env: env('ext-auth-proto'),
    kind: 'string',
    default: 'http',
    commands: SERVE,
    help: 'The protocol of --ext-auth-service when its address names no scheme (AuthService proto).',
  },
  {
    flag: 'ext-auth-default',
    section: 'extauth',
    value: 'on|off',
    env: env('ext-auth-default'),
    kind: 'string',
    default: 'on',
    commands: BOTH,
    help: "on: every route is checked, as an AuthService checks every Mapping (a custom Mapping's bypass_auth: true opts out, for its own deployment's Services); off: only SeldonDeployments annotated seldon.io/gateway-auth: external.",
  },
  {
    flag: 'ext-auth-path-prefix',
    section: 'extauth',
    value: 'path',
    env: env('ext-auth-path-prefix'),
    kind: 'string',
    default: '',
    commands: SERVE,
    help: "HTTP: prepended to the request's path in the check request (AuthService path_prefix), e.g. /extauth.",
  },
  {
    flag: 'ext-auth-timeout',
    section: 'extauth',
    env: env('ext-auth-timeout'),
    kind: 'duration',
    default: '5000ms',
    commands: SERVE,
    help: 'How long a check may take (AuthService timeout_ms); then the request fails with --ext-auth-status-on-error (or passes, with --ext-auth-failure-mode-allow).',
  },
  {
    flag: 'ext-auth-allowed-request-headers',
    section: 'extauth',
    value: 'name',
    env: env('ext-auth-allowed-request-headers'),
    kind: 'list',
    commands: SERVE,
    help: 'Client request headers sent to the auth service besides those always sent (Authorization, Cookie, From, Proxy-Authorization, User-Agent, X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto, and Host, Content-Length); AuthService allowed_request_headers. gRPC checks carry every header, as Envoy sends them. Repeatable; env: comma-separated.',
  },
  {
    flag: 'ext-auth-allowed-authorization-headers',
    section: 'extauth',
    value: 'name',
    env: env('ext-auth-allowed-authorization-headers'),
    kind: 'list',
    commands: SERVE,
    help: "HTTP: headers of the auth service's answer added to an allowed request (replacing the client's) and returned to the client with a denial, besides those always taken (Authorization, Location, Proxy-Authenticate, Set-Cookie, WWW-Authenticate); AuthService allowed_authorization_headers. Repeatable; env: comma-separated.",
  },
  {
    flag: 'ext-auth-add-header',
    section: 'extauth',
    value: 'name:value',
    env: env('ext-auth-add-header'),
    kind: 'list',
    commands: SERVE,
    help: 'A header added to every check request (AuthService add_auth_headers). Repeatable; env: comma-separated.',
  },
  {
    flag: 'ext-auth-include-body',
    section: 'extauth',
    value: 'max_bytes',
    env: env('ext-auth-include-body'),
    kind: 'bytes',
    commands: SERVE,
    help: 'Send up to this many bytes of the request body with the check (AuthService include_body.max_bytes); a larger body is refused with 413 unless --ext-auth-allow-partial. Unset: no body is sent, or read, before the check.',
  },
  {
    flag: 'ext-auth-allow-partial',
    section: 'extauth',
    env: env('ext-auth-allow-partial'),
    kind: 'boolean',
    commands: SERVE,
    help: 'With --ext-auth-include-body: a larger body is checked by its first max_bytes (AuthService include_body.allow_partial; the check says x-envoy-auth-partial-body: true).',
  },
  {
    flag: 'ext-auth-status-on-error',
    section: 'extauth',
    value: 'code',
    env: env('ext-auth-status-on-error'),
    kind: 'int',
    default: '403',
    commands: SERVE,
    help: "The HTTP status of a request whose check failed: the auth service down, slow, overloaded or answering what is not HTTP / a CheckResponse (AuthService status_on_error.code); gRPC calls get the status's gRPC code.",
  },
  {
    flag: 'ext-auth-failure-mode-allow',
    section: 'extauth',
    env: env('ext-auth-failure-mode-allow'),
    kind: 'boolean',
    commands: SERVE,
    help: 'Let requests through when their check failed (AuthService failure_mode_allow); counted as result="error_allowed".',
  },
  {
    flag: 'ext-auth-tls-verify',
    section: 'extauth',
    value: 'on|off',
    env: env('ext-auth-tls-verify'),
    kind: 'string',
    default: 'on',
    commands: SERVE,
    help: "With an https:// or grpcs:// auth service: verify its certificate (against --ext-auth-ca, else the system's CAs) and name (the address's host).",
  },
  {
    flag: 'ext-auth-ca',
    section: 'extauth',
    value: 'path',
    env: env('ext-auth-ca'),
    kind: 'string',
    commands: SERVE,
    help: "PEM CA certificate(s) the auth service's TLS certificate must chain to (AuthService tls, as a TLSContext ca_secret).",
  },
  {
    flag: 'ext-auth-cert',
    section: 'extauth',
    value: 'path',
    env: env('ext-auth-cert'),
    kind: 'string',
    commands: SERVE,
    help: 'PEM client certificate (chain) the gateway presents to an https:// or grpcs:// auth service that asks for one (a TLSContext cert_chain_file); with --ext-auth-key.',
  },
  {
    flag: 'ext-auth-key',
    section: 'extauth',
    value: 'path',
    env: env('ext-auth-key'),
    kind: 'string',
    commands: SERVE,
    help: 'PEM private key of --ext-auth-cert (a TLSContext private_key_file).',
  },
  {
    flag: 'ext-auth-max-connections',
    section: 'extauth',
    env: env('ext-auth-max-connections'),
    kind: 'int',
    default: '1024',
    commands: SERVE,
    help: 'Connections to the auth service per process, at most (AuthService circuit_breakers max_connections; gRPC: sessions are at most 4).',
  },
  {
    flag: 'ext-auth-max-requests',
    section: 'extauth',
    env: env('ext-auth-max-requests'),
    kind: 'int',
    default: '1024',
    commands: SERVE,
    help: 'Checks in flight per process, at most (AuthService circuit_breakers max_requests; queued ones count as well, up to max_pending_requests, the same number); more fail at once as an error (result="overflow").',
  },
  {
    flag: 'trusted-proxies',
    section: 'listen',
    value: 'cidr',
    env: env('trusted-proxies'),
    kind: 'list',
    commands: SERVE,
    help: "Peers (addresses or CIDRs) whose X-Forwarded-For/-Proto are kept and appended to; others' are replaced. Repeatable; env: comma-separated.",
  },
  {
    flag: 'trust-forwarded-headers',
    section: 'listen',
    env: env('trust-forwarded-headers'),
    kind: 'boolean',
    commands: SERVE,
    help: 'Trust X-Forwarded-For/-Proto from every peer (only behind a proxy that sets them).',
  },
  { flag: 'max-body', section: 'listen', env: env('max-body'), kind: 'bytes', default: '100MiB', commands: SERVE, help: 'Largest REST request body; larger ones get 413. 0: no limit.' },
  {
    flag: 'max-header-size',
    section: 'listen',
    env: env('max-header-size'),
    kind: 'bytes',
    default: '16KiB',
    commands: SERVE,
    help: 'Largest HTTP/1.1 request head (request line and headers); larger ones get 431.',
  },
  {
    flag: 'max-headers-count',
    section: 'listen',
    env: env('max-headers-count'),
    kind: 'int',
    default: '100',
    commands: SERVE,
    help: "Most header lines in an HTTP/1.1 request; more get 431 (never truncated). Envoy's default is also 100.",
  },
  {
    flag: 'max-response-header-size',
    section: 'upstream',
    env: env('max-response-header-size'),
    kind: 'bytes',
    default: '60KiB',
    commands: SERVE,
    help: "Largest upstream response head (status line and headers); a larger one is answered 502 and never retried. Envoy's default is also 60 KiB.",
  },
  {
    flag: 'client-header-timeout',
    section: 'listen',
    env: env('client-header-timeout'),
    kind: 'duration',
    default: '60s',
    commands: SERVE,
    help: 'A client must send its request headers within this (also the first byte of a connection); else 408.',
  },
  {
    flag: 'client-request-timeout',
    section: 'listen',
    env: env('client-request-timeout'),
    kind: 'duration',
    default: '300s',
    commands: SERVE,
    help: 'A client must send its whole REST request within this; else 408. 0: no limit.',
  },
  {
    flag: 'lingering-close',
    section: 'listen',
    value: 'on|off',
    env: env('lingering-close'),
    kind: 'string',
    default: 'on',
    commands: SERVE,
    help: "on: a connection closed while its client may still be sending (an answer before the whole request was read: the model's early answer, a 413 or 408, bytes after Connection: close) lingers as nginx's lingering_close does: the answer goes out, the gateway shuts its side and reads and drops what the client still sends, within --lingering-time, --lingering-timeout and --lingering-bytes, then closes. Closed at once, the client's system would reset the connection and drop the answer unread. off: closed as soon as the answer is sent.",
  },
  {
    flag: 'lingering-time',
    section: 'listen',
    env: env('lingering-time'),
    kind: 'duration',
    default: '30s',
    commands: SERVE,
    help: "The longest a lingering close reads after the answer was sent (nginx's lingering_time).",
  },
  {
    flag: 'lingering-timeout',
    section: 'listen',
    env: env('lingering-timeout'),
    kind: 'duration',
    default: '5s',
    commands: SERVE,
    help: "The longest a lingering close waits for more bytes from the client (nginx's lingering_timeout).",
  },
  {
    flag: 'lingering-bytes',
    section: 'listen',
    env: env('lingering-bytes'),
    kind: 'bytes',
    default: '100MiB',
    commands: SERVE,
    help: 'The most bytes a lingering close reads and drops before it closes (nginx has no such bound). Clients that send a whole body before reading the answer see it only when their body fits: keep it at least --max-body.',
  },
  {
    flag: 'http1-server',
    section: 'listen',
    value: 'gateway|node',
    env: env('http1-server'),
    kind: 'string',
    default: 'gateway',
    commands: SERVE,
    help: "Who serves HTTP/1.1 on the public port. gateway: the gateway's own lean server takes the proxied requests of the common shape and leaves every other request, and its connection, to Node's; node: Node's server takes every request.",
  },
  {
    flag: 'max-connections',
    section: 'listen',
    env: env('max-connections'),
    kind: 'int',
    default: '10000',
    commands: SERVE,
    help: 'Open client connections per process on the public port; more get 503 and are closed. 0: no limit.',
  },
  {
    flag: 'error-detail',
    section: 'listen',
    value: 'public|internal',
    env: env('error-detail'),
    kind: 'string',
    default: 'public',
    commands: SERVE,
    help: "What the gateway's own error answers say. public: the deployment and the reason, never internal addresses or library text (those go to the log and metrics); internal: the details too, for debugging.",
  },
  { flag: 'log-level', section: 'observe', value: 'level', env: env('log-level'), kind: 'string', default: 'info', commands: SERVE, help: 'fatal, error, warn, info, debug or trace.' },
  { flag: 'json', section: 'general', env: env('json'), kind: 'boolean', commands: ['routes'], help: 'Print the table as JSON (the shape of the admin /routes).' },
  { flag: 'help', section: 'general', short: 'h', env: '', kind: 'boolean', commands: BOTH, help: 'Show this help.' },
];

/** Where the gateway listens: the public port and its optional extras, the admin port. */
export interface ListenConfig {
  readonly port: number;
  readonly host: string;
  readonly grpcPort: number | undefined;
  readonly oauthPort: number | undefined;
  readonly adminPort: number;
  readonly adminHost: string;
  /** --admin-token-file: the file's path (the admin server reads it, and again when it changes). */
  readonly adminTokenFile: string | undefined;
  /** --admin-page-sample: the admin page's traffic sample interval (its window is 30 of them). */
  readonly adminPageSampleMs: number;
}

/** TLS on the public port (edge/tls.ts); absent when the port is cleartext only. */
export interface TlsConfig {
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
  readonly dir: string | undefined;
  readonly clientCaFile: string | undefined;
  readonly clientAuth: 'optional' | 'required';
  readonly allowCleartext: boolean;
  readonly redirectCleartext: boolean;
}

/** Where SeldonDeployments come from. */
export interface SourceConfig {
  readonly manifests: string | undefined;
  /** --kubernetes given: use the Kubernetes API even if no credentials are found up front. */
  readonly kubernetes: boolean;
  /** --kubeconfig / KUBECONFIG: one file or a path-delimiter-separated list. */
  readonly kubeconfig: string | undefined;
  /** The one namespace the Kubernetes watches cover; undefined: cluster-wide. */
  readonly watchNamespace: string | undefined;
  /** Balance across EndpointSlice endpoints when the source is Kubernetes (--endpoint-routing auto). */
  readonly endpointRouting: boolean;
}

/** The processes: workers, their heap, shutdown, logging. */
export interface ProcessConfig {
  readonly workers: number;
  readonly maxSemiSpaceMb: number;
  readonly gracePeriodMs: number;
  readonly logLevel: string;
}

/** How upstreams are dialled and picked (the REST pools and the gRPC sessions take it whole). */
export interface UpstreamConfig {
  readonly resolve: ReadonlyMap<string, { host: string; port: number }>;
  readonly connectTimeoutMs: number;
  readonly tlsVerify: boolean;
  /** --upstream-ca: the PEM file's path (the data plane reads it once). */
  readonly caFile: string | undefined;
  readonly maxResponseHeaderBytes: number;
  readonly retryBufferBytes: number;
  readonly balance: 'random' | 'round-robin';
  readonly randomSeed: number | undefined;
}

/** Mirroring to shadow predictors. */
export interface ShadowConfig {
  /** --shadow-max-in-flight; undefined: no cap beside the shadow upstream's breaker. */
  readonly maxInFlight: number | undefined;
  readonly maxBodyBytes: number;
}

/** The client side of the public listeners: trust, HTTP/1.1 guards, error answers. */
export interface EdgeConfig {
  /** Addresses and CIDRs as given (validated); `trustForwardedHeaders` trusts every peer. */
  readonly trustedProxies: readonly string[];
  readonly trustForwardedHeaders: boolean;
  /** 0: no limit. */
  readonly maxBodyBytes: number;
  readonly maxHeaderBytes: number;
  readonly maxHeadersCount: number;
  readonly clientHeaderTimeoutMs: number;
  /** 0: no limit. */
  readonly clientRequestTimeoutMs: number;
  /** 0: no limit. */
  readonly maxConnections: number;
  /** public: error answers name the deployment and reason only; internal: addresses and library text too. */
  readonly errorDetail: 'public' | 'internal';
  /** gateway: the lean HTTP/1.1 server (edge/http1-lane.ts) in front of Node's; node: Node's alone. */
  readonly http1Server: 'gateway' | 'node';
  /** How a connection whose client may still be sending is closed (edge/lingering-close.ts). */
  readonly lingering: LingerConfig;
}

/** --lingering-*: nginx's lingering close, and a byte budget. */
export interface LingerConfig {
  /** Off: closed as soon as the answer is sent. */
  readonly enabled: boolean;
  /** The longest the client's bytes are read after the answer was sent (lingering_time), ms. */
  readonly timeMs: number;
  /** The longest wait for more bytes (lingering_timeout), ms. */
  readonly timeoutMs: number;
  /** The most bytes read and dropped. */
  readonly maxBytes: number;
}

/** OAuth tokens and rate limits, and the Redis they share. */
export interface AuthConfig {
  readonly redisUrl: string | undefined;
  /** --steering-key-file: the keys that sign attribution tokens and sticky cookies (gateway/steer/keys.ts). */
  readonly steeringKeyFile: string | undefined;
  readonly redisTimeoutMs: number;
  readonly oauthTokenTtlMs: number;
}

/** The external auth service (gateway/auth/ext-auth.ts); absent when --ext-auth-service is unset. */
export interface ExtAuthConfig {
  readonly proto: 'http' | 'grpc';
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
  /** `host:port` as given, for messages and the log. */
  readonly address: string;
  readonly pathPrefix: string;
  readonly timeoutMs: number;
  /** Lower-case names, beside the ones always sent. */
  readonly allowedRequestHeaders: readonly string[];
  /** Lower-case names, beside the ones always taken. */
  readonly allowedAuthorizationHeaders: readonly string[];
  /** `name, value` pairs. */
  readonly addHeaders: readonly string[];
  /** include_body: undefined when no body is sent. */
  readonly includeBody: { readonly maxBytes: number; readonly allowPartial: boolean } | undefined;
  readonly statusOnError: number;
  readonly failureModeAllow: boolean;
  readonly tlsVerify: boolean;
  /** --ext-auth-ca: the PEM file's path (the data plane reads it once). */
  readonly caFile: string | undefined;
  /** --ext-auth-cert and --ext-auth-key: the client certificate presented to the auth service, both or neither. */
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
  readonly maxConnections: number;
  readonly maxRequests: number;
}

/** What is observed beside the traffic. */
export interface ObserveConfig {
  readonly predictorHeader: boolean;
  readonly accessLog: {
    readonly enabled: boolean;
    readonly format: 'json' | 'text';
    /** Fraction of requests logged, 0..1. */
    readonly sample: number;
    /** Keep query strings in logged paths. */
    readonly query: boolean;
    readonly bufferBytes: number;
  };
  readonly tracing: {
    /** The OTLP/HTTP collector; undefined: tracing is off. */
    readonly endpoint: string | undefined;
    readonly sample: number;
  };
  readonly shadowCompare: { readonly enabled: boolean; readonly tolerance: number; readonly ignore: readonly string[]; readonly maxBodyBytes: number };
}

export interface GatewayConfig {
  readonly listen: ListenConfig;
  readonly source: SourceConfig;
  readonly process: ProcessConfig;
  readonly upstream: UpstreamConfig;
  readonly shadow: ShadowConfig;
  readonly edge: EdgeConfig;
  readonly auth: AuthConfig;
  /** undefined: no --ext-auth-service. */
  readonly extAuth: ExtAuthConfig | undefined;
  readonly observe: ObserveConfig;
  /** undefined: no --tls-cert / --tls-dir, the public port is cleartext only. */
  readonly tls: TlsConfig | undefined;
  /** The routing compiler's options (routing/types.ts). */
  readonly compile: CompileOptions;
  /** routes --json */
  readonly json: boolean;
}

export class UsageError extends Error {}

/** --redis-url as given, once it parses (gateway/auth/redis-url.ts): a malformed one is a usage error. */
function redisUrl(v: string | undefined): string | undefined {
  if (v) {
    try {
      parseRedisUrl(v);
    } catch (err) {
      throw new UsageError(err instanceof Error ? err.message : String(err));
    }
  }
  return v;
}

const UNITS: Record<string, number> = { b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 };

function parseBytes(flag: string, v: string): number {
  const m = /^([0-9]+)\s*([a-z]*)$/i.exec(v.trim());
  const unit = m ? UNITS[(m[2] || 'b').toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new UsageError(`--${flag}: "${v}" is not a size like 1048576, 512KiB or 4MiB`);
  return Number(m[1]) * unit;
}

/** `10s`, `500ms`, `2m`, `12h`; a bare number is milliseconds. */
export function parseDuration(flag: string, v: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new UsageError(`--${flag}: "${v}" is not a duration like 500ms, 10s or 2m`);
  const n = Number(m[1]);
  return Math.round(m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : m[2] === 'h' ? n * 3_600_000 : n);
}

/** An address or `<address>/<prefix>`, IPv4 or IPv6, added to `list`; throws UsageError otherwise. */
export function addTrustedProxy(list: BlockList, entry: string): void {
  const [addr = '', prefix, ...rest] = entry.trim().split('/');
  const family = isIP(addr);
  const bits = prefix === undefined ? (family === 6 ? 128 : 32) : /^[0-9]+$/.test(prefix) ? Number(prefix) : -1;
  if (family === 0 || rest.length || bits < 0 || bits > (family === 6 ? 128 : 32)) {
    throw new UsageError(`--trusted-proxies: "${entry}" is not an address or CIDR like 10.0.0.0/8 or fd00::/8`);
  }
  list.addSubnet(addr, bits, family === 6 ? 'ipv6' : 'ipv4');
}

function parseInt32(flag: string, v: string): number {
  if (!/^[0-9]+$/.test(v.trim())) throw new UsageError(`--${flag}: "${v}" is not a whole number`);
  return Number(v.trim());
}

function parseNumber(flag: string, v: string): number {
  const n = Number(v.trim());
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag}: "${v}" is not a number`);
  return n;
}

function parseBool(flag: string, v: string): boolean {
  const s = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
  throw new UsageError(`${flag}: "${v}" is not true or false`);
}

/** `<svc>.<ns>:<port>=<host>:<port>` */
export function parseResolve(entry: string): [string, { host: string; port: number }] {
  const m = /^([^=\s]+):([0-9]+)=(\[[^\]]+\]|[^:=\s]+):([0-9]+)$/.exec(entry.trim());
  if (!m) throw new UsageError(`--resolve: "${entry}" is not <svc>.<ns>:<port>=<host>:<port>`);
  return [`${m[1]}:${m[2]}`, { host: m[3]!.replace(/^\[|\]$/g, ''), port: Number(m[4]) }];
}

export function inCluster(environment: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(environment.KUBERNETES_SERVICE_HOST);
}

/** Parse argv (after the sub-command) and the environment. Throws UsageError on bad input. */
export function parseConfig(command: 'serve' | 'routes', argv: readonly string[], environment: NodeJS.ProcessEnv = process.env): GatewayConfig & { help: boolean } {
  const specs = OPTIONS.filter((o) => o.commands.includes(command));
  const parseOptions: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const o of specs) {
    parseOptions[o.flag] = { type: o.kind === 'boolean' ? 'boolean' : 'string', ...(o.kind === 'list' ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) };
  }
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options: parseOptions, allowPositionals: false, strict: true }));
  } catch (e) {
    throw new UsageError(argumentError(command, e));
  }
  // An option another command owns is not read from argv or env, but still has its default.
  const spec = (flag: string): OptionSpec => {
    const o = OPTIONS.find((x) => x.flag === flag);
    if (!o) throw new Error(`no option --${flag}`);
    return o;
  };
  const get = (flag: string): string | boolean | string[] | undefined => {
    const o = spec(flag);
    if (!specs.includes(o)) return o.default;
    const v = values[o.flag];
    if (v !== undefined) return v as string | boolean | string[];
    const e = o.env ? environment[o.env] : undefined;
    if (e !== undefined && e !== '')
      return o.kind === 'list'
        ? e
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : e;
    return o.default;
  };
  /** The value of an option that has a default in OPTIONS (so it is never missing). */
  const need = <T>(flag: string, v: T | undefined): T => {
    if (v === undefined) throw new Error(`--${flag} has no default in OPTIONS`);
    return v;
  };
  const str = (flag: string): string | undefined => {
    const v = get(flag);
    return typeof v === 'string' ? v : undefined;
  };
  const bool = (flag: string): boolean => {
    const v = get(flag);
    return typeof v === 'boolean' ? v : typeof v === 'string' ? parseBool(spec(flag).env || flag, v) : false;
  };
  const int = (flag: string): number | undefined => {
    const v = str(flag);
    return v === undefined ? undefined : parseInt32(flag, v);
  };
  const dur = (flag: string): number => parseDuration(flag, need(flag, str(flag)));
  const num = (flag: string): number => parseNumber(flag, need(flag, str(flag)));
  const bytes = (flag: string): number => parseBytes(flag, need(flag, str(flag)));
  const list = (flag: string): string[] => {
    const v = get(flag);
    return (Array.isArray(v) ? v : typeof v === 'string' ? v.split(',') : []).map((x) => x.trim()).filter(Boolean);
  };

  const resolve = new Map<string, { host: string; port: number }>();
  const resolveRaw = get('resolve');
  for (const entry of Array.isArray(resolveRaw) ? resolveRaw : []) {
    const [k, v] = parseResolve(entry);
    resolve.set(k, v);
  }
  const balance = need('balance', str('balance'));
  if (balance !== 'random' && balance !== 'round-robin') throw new UsageError(`--balance: "${balance}" is not random or round-robin`);
  const port = need('port', int('port'));
  const adminPort = need('admin-port', int('admin-port'));
  for (const [flag, p] of [
    ['port', port],
    ['admin-port', adminPort],
    ['grpc-port', int('grpc-port')],
    ['oauth-port', int('oauth-port')],
  ] as const) {
    if (p !== undefined && p > 65535) throw new UsageError(`--${flag}: ${p} is not a port`);
  }
  const caFile = str('upstream-ca');
  const trustedRaw = get('trusted-proxies');
  const trustedProxies = (Array.isArray(trustedRaw) ? trustedRaw : [])
    .flatMap((x) => x.split(','))
    .map((x) => x.trim())
    .filter(Boolean);
  for (const entry of trustedProxies) addTrustedProxy(new BlockList(), entry);
  const clientHeaderTimeoutMs = dur('client-header-timeout');
  const clientRequestTimeoutMs = dur('client-request-timeout');
  if (clientHeaderTimeoutMs === 0) throw new UsageError('--client-header-timeout: must be more than 0');
  if (clientRequestTimeoutMs > 0 && clientRequestTimeoutMs < clientHeaderTimeoutMs) {
    throw new UsageError('--client-request-timeout: must be 0 or at least --client-header-timeout');
  }
  const oauthTokenTtlMs = dur('oauth-token-ttl');
  if (oauthTokenTtlMs < 1000) throw new UsageError('--oauth-token-ttl: must be at least 1s');
  const manifests = str('manifests');
  const kubernetes = bool('kubernetes');
  if (manifests !== undefined && kubernetes) throw new UsageError('--manifests and --kubernetes are two different sources: pass one');
  const endpointRouting = need('endpoint-routing', str('endpoint-routing')).trim().toLowerCase();
  if (!['auto', 'on', 'true', 'off', 'false'].includes(endpointRouting)) throw new UsageError(`--endpoint-routing: "${endpointRouting}" is not auto or off`);
  // AMBASSADOR_NAMESPACE defaults to the gateway's own namespace in a cluster (docs/routing.md#settings).
  // An empty --namespace / --ambassador-id falls back to the table's default too.
  const namespace = str('namespace') || need('namespace', spec('namespace').default);
  const namespaceGiven = values['namespace'] !== undefined || Boolean(environment.AMBASSADOR_NAMESPACE);
  const effectiveNamespace = namespaceGiven ? namespace : (serviceAccountNamespace(environment) ?? namespace);
  const singleNamespace = bool('single-namespace');
  // Only the flag narrows the watch: Ambassador's AMBASSADOR_NAMESPACE is set in every install
  // (from the downward API) and means a watch scope only with AMBASSADOR_SINGLE_NAMESPACE.
  const watchNamespace = singleNamespace ? effectiveNamespace : typeof values['namespace'] === 'string' ? namespace : undefined;
  const accessLogSample = num('access-log-sample');
  if (accessLogSample < 0 || accessLogSample > 1) throw new UsageError(`--access-log-sample: ${accessLogSample} is not between 0 and 1`);
  const accessLogOn = parseBool('--access-log', need('access-log', str('access-log')));
  const accessLogFormat = need('access-log-format', str('access-log-format')).trim().toLowerCase();
  if (accessLogFormat !== 'json' && accessLogFormat !== 'text') throw new UsageError(`--access-log-format: "${accessLogFormat}" is not json or text`);
  const traceSample = num('trace-sample');
  if (traceSample < 0 || traceSample > 1) throw new UsageError(`--trace-sample: ${traceSample} is not between 0 and 1`);
  const otlpEndpoint = str('otlp-endpoint')?.trim() || undefined;
  if (otlpEndpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(otlpEndpoint);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new UsageError(`--otlp-endpoint: "${otlpEndpoint}" is not an http:// or https:// URL`);
  }
  const errorDetail = need('error-detail', str('error-detail')).trim().toLowerCase();
  if (errorDetail !== 'public' && errorDetail !== 'internal') throw new UsageError(`--error-detail: "${errorDetail}" is not public or internal`);
  const http1Server = need('http1-server', str('http1-server')).trim().toLowerCase();
  if (http1Server !== 'gateway' && http1Server !== 'node') throw new UsageError(`--http1-server: "${http1Server}" is not gateway or node`);
  const lingeringClose = need('lingering-close', str('lingering-close')).trim().toLowerCase();
  if (lingeringClose !== 'on' && lingeringClose !== 'off') throw new UsageError(`--lingering-close: "${lingeringClose}" is not on or off`);
  const lingering: LingerConfig = { enabled: lingeringClose === 'on', timeMs: dur('lingering-time'), timeoutMs: dur('lingering-timeout'), maxBytes: bytes('lingering-bytes') };
  for (const [flag, v] of [
    ['lingering-time', lingering.timeMs],
    ['lingering-timeout', lingering.timeoutMs],
  ] as const) {
    if (lingering.enabled && v === 0) throw new UsageError(`--${flag}: must be more than 0 (--lingering-close off closes at once)`);
  }
  const regexMaxSize = need('regex-max-size', int('regex-max-size'));
  if (regexMaxSize < 1) throw new UsageError(`--regex-max-size: ${regexMaxSize} is not a positive whole number`);
  const customConfigScope = need('custom-config-scope', str('custom-config-scope')).trim().toLowerCase();
  if (customConfigScope !== 'namespace' && customConfigScope !== 'cluster') throw new UsageError(`--custom-config-scope: "${customConfigScope}" is not namespace or cluster`);
  const tls = tlsConfig(str, bool, (flag) => values[flag] !== undefined || Boolean(environment[spec(flag).env]));
  const extAuthDefault = parseBool('--ext-auth-default', need('ext-auth-default', str('ext-auth-default')));
  const extAuth = command === 'serve' ? extAuthConfig(str, bool, int, dur, list, (flag) => bytes(flag)) : undefined;
  const tolerance = num('shadow-compare-tolerance');
  if (tolerance < 0) throw new UsageError(`--shadow-compare-tolerance: ${tolerance} is negative`);

  return {
    help: bool('help'),
    json: bool('json'),
    listen: {
      port,
      host: need('host', str('host')),
      grpcPort: int('grpc-port'),
      oauthPort: int('oauth-port'),
      adminPort,
      // No table default: it depends on where the gateway runs (the help says so).
      adminHost: str('admin-host') ?? (inCluster(environment) ? '0.0.0.0' : '127.0.0.1'),
      adminTokenFile: str('admin-token-file'),
      adminPageSampleMs: dur('admin-page-sample'),
    },
    source: {
      manifests,
      kubernetes,
      kubeconfig: str('kubeconfig'),
      watchNamespace,
      endpointRouting: endpointRouting !== 'off' && endpointRouting !== 'false',
    },
    process: {
      // No table default: one per core.
      workers: Math.max(1, int('workers') ?? availableParallelism()),
      maxSemiSpaceMb: need('max-semi-space-size', int('max-semi-space-size')),
      gracePeriodMs: dur('grace-period'),
      logLevel: need('log-level', str('log-level')),
    },
    upstream: {
      resolve,
      connectTimeoutMs: dur('connect-timeout'),
      tlsVerify: bool('upstream-tls-verify') || caFile !== undefined,
      caFile,
      maxResponseHeaderBytes: bytes('max-response-header-size'),
      retryBufferBytes: bytes('retry-buffer'),
      balance,
      randomSeed: int('random-seed'),
    },
    shadow: {
      maxInFlight: int('shadow-max-in-flight') || undefined,
      maxBodyBytes: bytes('shadow-max-body'),
    },
    edge: {
      trustedProxies,
      trustForwardedHeaders: bool('trust-forwarded-headers'),
      maxBodyBytes: bytes('max-body'),
      maxHeaderBytes: bytes('max-header-size'),
      maxHeadersCount: Math.max(1, need('max-headers-count', int('max-headers-count'))),
      clientHeaderTimeoutMs,
      clientRequestTimeoutMs,
      maxConnections: need('max-connections', int('max-connections')),
      errorDetail,
      http1Server,
      lingering,
    },
    auth: {
      redisUrl: redisUrl(str('redis-url')),
      steeringKeyFile: str('steering-key-file'),
      redisTimeoutMs: dur('redis-timeout'),
      oauthTokenTtlMs,
    },
    extAuth,
    tls,
    observe: {
      predictorHeader: bool('predictor-header'),
      accessLog: { enabled: accessLogOn, format: accessLogFormat, sample: accessLogSample, query: bool('access-log-query'), bufferBytes: bytes('access-log-buffer') },
      tracing: { endpoint: otlpEndpoint, sample: traceSample },
      shadowCompare: { enabled: bool('shadow-compare'), tolerance, ignore: list('shadow-compare-ignore'), maxBodyBytes: bytes('shadow-compare-max-body') },
    },
    compile: {
      ambassadorId: str('ambassador-id') || need('ambassador-id', spec('ambassador-id').default),
      singleNamespace,
      namespace: effectiveNamespace,
      defaultTimeoutMs: dur('default-timeout'),
      defaultIdleTimeoutMs: dur('default-idle-timeout'),
      defaultHttpPort: need('default-http-port', int('default-http-port')),
      defaultGrpcPort: need('default-grpc-port', int('default-grpc-port')),
      legacyServiceNaming: bool('legacy-service-naming'),
      honourCustomConfig: !bool('no-custom-config'),
      customConfigScope,
      regexMaxSize,
      extAuthDefault: extAuthDefault && (str('ext-auth-service')?.trim() ?? '') !== '',
    },
  };
}

/** Headers always sent to an HTTP auth service (Ambassador's list), beside Host and Content-Length. */
const ALWAYS_REQUEST_HEADERS = ['authorization', 'cookie', 'from', 'proxy-authorization', 'user-agent', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto'];

/** The --ext-auth-* flags, when --ext-auth-service is set. */
function extAuthConfig(
  str: (flag: string) => string | undefined,
  bool: (flag: string) => boolean,
  int: (flag: string) => number | undefined,
  dur: (flag: string) => number,
  list: (flag: string) => string[],
  bytes: (flag: string) => number,
): ExtAuthConfig | undefined {
  const raw = str('ext-auth-service')?.trim();
  if (!raw) return undefined;
  const given = (str('ext-auth-proto') ?? 'http').trim().toLowerCase();
  if (given !== 'http' && given !== 'grpc') throw new UsageError(`--ext-auth-proto: "${given}" is not http or grpc`);
  const m = /^(?:([a-z]+):\/\/)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)(?::([0-9]{1,5}))?\/?$/.exec(raw);
  const scheme = m?.[1]?.toLowerCase();
  const SCHEMES: Record<string, { proto: 'http' | 'grpc'; tls: boolean }> = {
    http: { proto: 'http', tls: false },
    https: { proto: 'http', tls: true },
    grpc: { proto: 'grpc', tls: false },
    grpcs: { proto: 'grpc', tls: true },
  };
  const known = scheme === undefined ? { proto: given as 'http' | 'grpc', tls: false } : SCHEMES[scheme];
  if (!m || known === undefined) throw new UsageError(`--ext-auth-service: "${raw}" is not [http|https|grpc|grpcs://]host:port`);
  const host = m[2]!.replace(/^\[|\]$/g, '');
  const port = m[3] !== undefined ? Number(m[3]) : known.tls ? 443 : 80;
  if (port < 1 || port > 65535) throw new UsageError(`--ext-auth-service: ${port} is not a port`);
  const pathPrefix = (str('ext-auth-path-prefix') ?? '').trim();
  if (pathPrefix !== '' && (!pathPrefix.startsWith('/') || /[\s?#]/.test(pathPrefix))) throw new UsageError(`--ext-auth-path-prefix: "${pathPrefix}" is not a path like /extauth`);
  const statusOnError = int('ext-auth-status-on-error') ?? 403;
  if (statusOnError < 100 || statusOnError > 599) throw new UsageError(`--ext-auth-status-on-error: ${statusOnError} is not an HTTP status`);
  const names = (flag: string): string[] => {
    const out = list(flag).map((n) => n.toLowerCase());
    for (const n of out) if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(n)) throw new UsageError(`--${flag}: "${n}" is not a header name`);
    return out;
  };
  const addHeaders: string[] = [];
  for (const entry of list('ext-auth-add-header')) {
    const i = entry.indexOf(':');
    const name = i > 0 ? entry.slice(0, i).trim().toLowerCase() : '';
    if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(name)) throw new UsageError(`--ext-auth-add-header: "${entry}" is not name:value`);
    addHeaders.push(name, entry.slice(i + 1).trim());
  }
  const bodyGiven = str('ext-auth-include-body') !== undefined;
  const maxConnections = int('ext-auth-max-connections') ?? 1024;
  const maxRequests = int('ext-auth-max-requests') ?? 1024;
  if (maxConnections < 1 || maxRequests < 1) throw new UsageError('--ext-auth-max-connections and --ext-auth-max-requests: must be at least 1');
  const tlsVerify = parseBool('--ext-auth-tls-verify', str('ext-auth-tls-verify') ?? 'on');
  const certFile = str('ext-auth-cert');
  const keyFile = str('ext-auth-key');
  if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError('--ext-auth-cert and --ext-auth-key go together: give both');
  if (certFile !== undefined && !known.tls) throw new UsageError(`--ext-auth-cert: the auth service "${raw}" is not https:// or grpcs://, so no certificate would be presented`);
  return {
    proto: known.proto,
    tls: known.tls,
    host,
    port,
    address: `${m[2]}:${port}`,
    pathPrefix: pathPrefix.replace(/\/$/, ''),
    timeoutMs: Math.max(1, dur('ext-auth-timeout')),
    allowedRequestHeaders: names('ext-auth-allowed-request-headers').filter((n) => !ALWAYS_REQUEST_HEADERS.includes(n)),
    allowedAuthorizationHeaders: names('ext-auth-allowed-authorization-headers'),
    addHeaders,
    includeBody: bodyGiven ? { maxBytes: bytes('ext-auth-include-body'), allowPartial: bool('ext-auth-allow-partial') } : undefined,
    statusOnError,
    failureModeAllow: bool('ext-auth-failure-mode-allow'),
    tlsVerify,
    caFile: str('ext-auth-ca'),
    certFile,
    keyFile,
    maxConnections,
    maxRequests,
  };
}

/** The TLS section from its flags (`given`: set on the command line or in the environment). */
function tlsConfig(str: (flag: string) => string | undefined, bool: (flag: string) => boolean, given: (flag: string) => boolean): TlsConfig | undefined {
  const certFile = str('tls-cert');
  const keyFile = str('tls-key');
  const dir = str('tls-dir');
  if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError('--tls-cert and --tls-key go together: give both');
  const on = certFile !== undefined || dir !== undefined;
  const dependents = ['tls-allow-cleartext', 'tls-redirect-cleartext', 'tls-client-ca', 'tls-client-auth'].filter(given);
  if (!on) {
    if (dependents.length > 0) throw new UsageError(`--${dependents[0]} needs TLS: give --tls-cert and --tls-key, or --tls-dir`);
    return undefined;
  }
  const clientCaFile = str('tls-client-ca');
  const clientAuth = (str('tls-client-auth') ?? 'required').trim().toLowerCase();
  if (clientAuth !== 'optional' && clientAuth !== 'required') throw new UsageError(`--tls-client-auth: "${clientAuth}" is not optional or required`);
  if (clientCaFile === undefined && given('tls-client-auth')) throw new UsageError('--tls-client-auth needs --tls-client-ca (the CA client certificates are checked against)');
  return { certFile, keyFile, dir, clientCaFile, clientAuth, allowCleartext: bool('tls-allow-cleartext'), redirectCleartext: bool('tls-redirect-cleartext') };
}

/** `--help` text for a command, from the option table: its options grouped by section, in SECTIONS order. */
export function helpText(command: 'serve' | 'routes'): string {
  const usage =
    command === 'serve'
      ? 'Usage: seldon-gateway [serve] [options]\n\nServe REST and gRPC predictions for the SeldonDeployments found by --manifests, or\nwatched in the Kubernetes API (--kubernetes; the default in a cluster or with a kubeconfig).'
      : 'Usage: seldon-gateway routes -f <file-or-dir> [options]\n\nPrint the routing table compiled from the manifests, then every rejected or degraded\nSeldonDeployment with its reason. Exit 0: all compiled; 1: some rejected; 2: usage error.';
  const lines = [usage, '', 'After each option: its environment variable and default, in parentheses (a flag wins over its variable).', 'Durations take ms, s, m or h; sizes KiB, MiB or GiB.'];
  const options = OPTIONS.filter((x) => x.commands.includes(command));
  for (const [section, heading] of Object.entries(SECTIONS)) {
    const group = options.filter((o) => o.section === section);
    if (group.length === 0) continue;
    lines.push('', `${heading}:`);
    for (const o of group) {
      const name = `${o.short ? `-${o.short}, ` : ''}--${o.flag}${o.kind === 'boolean' ? '' : ` ${valueName(o)}`}`;
      const meta = [o.env, o.default ? `default ${o.default}` : ''].filter(Boolean).join(', ');
      lines.push(`  ${name}`, `      ${o.help}${meta ? ` (${meta})` : ''}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** A parseArgs error in the gateway's words: value names instead of `<value>`, and the nearest option for a mistyped one. */
function argumentError(command: 'serve' | 'routes', e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown }).code;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const given = /Unknown option '([^']+)'/.exec(message)?.[1];
    if (given === undefined) return message;
    const name = given.replace(/^--?/, '').replace(/=.*$/, '');
    const other = OPTIONS.find((o) => o.flag === name && !o.commands.includes(command));
    if (other) return `Option '--${name}' is an option of ${other.commands.join(' and ')}, not of ${command}`;
    const near = given.startsWith('--')
      ? nearestOption(
          name,
          OPTIONS.filter((o) => o.commands.includes(command)).map((o) => o.flag),
        )
      : undefined;
    return near === undefined ? `Unknown option '${given}'. Run 'seldon-gateway ${command} --help' for the options.` : `Unknown option '${given}'. Did you mean '--${near}'?`;
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const flag = /--([a-z0-9-]+) <value>/.exec(message)?.[1];
    const o = OPTIONS.find((x) => x.flag === flag);
    if (o) return `Option '--${o.flag} ${valueName(o)}' needs a value`;
  }
  return message;
}

/** The flag closest to a mistyped one (edit distance, a swap of neighbours counting 1), if close enough to be a typo. */
export function nearestOption(typed: string, flags: readonly string[]): string | undefined {
  const limit = Math.max(2, Math.floor(typed.length * 0.4));
  let best: { flag: string; distance: number } | undefined;
  for (const flag of flags) {
    const distance = editDistance(typed, flag);
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { flag, distance };
  }
  return best?.flag;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
