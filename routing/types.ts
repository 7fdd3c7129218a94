/**
 * Domain types of the routing core: the compile settings, the routes, groups and backends of an
 * immutable `RouteTable`, and the `Decision` that `match` returns for one request. Nothing here
 * does I/O. The input (SeldonDeployment and its parts) is in `seldon/deployment.ts`.
 */
import type { DeploymentSteering } from './steering/spec.js';
import type { StickySpec } from './steering/sticky.js';
import type { HeaderConstraint } from './values/syntax.js';
import type { FlowPolicy } from './flow/config.js';
import type { JwtPolicy } from './policies/jwt.js';
import type { LogPolicy } from './policies/log.js';
import type { HedgePolicy } from './hedge/config.js';
import type { ErrorOverride, LoadBalancer, MappingDefaults, MappingPolicy } from './emissary/mapping-policy.js';
import type { CompressionPolicy, CompressionSettings } from './compression/policy.js';
import type { FallbackPolicy, FallbackReason } from './fallback/config.js';
import type { TranslatePolicy } from './policies/protocol.js';

// ---------------------------------------------------------------------------------------------
// Compile settings (docs/routing.md#settings).
// ---------------------------------------------------------------------------------------------

export interface CompileOptions {
  /** AMBASSADOR_ID: SDeps whose effective id differs are skipped. */
  ambassadorId: string;
  /** AMBASSADOR_SINGLE_NAMESPACE: also serve the un-namespaced prefixes. */
  singleNamespace: boolean;
  /** AMBASSADOR_NAMESPACE: the namespace a gRPC call without `namespace` means in single-namespace mode. */
  namespace: string;
  defaultTimeoutMs: number;
  defaultIdleTimeoutMs: number;
  defaultHttpPort: number;
  defaultGrpcPort: number;
  legacyServiceNaming: boolean;
  honourCustomConfig: boolean;
  /**
   * What a deployment's custom Mappings (seldon.io/ambassador-config) may claim. `namespace` (the
   * default): prefixes under its own /seldon/<namespace>/, gRPC matches for its own namespace, and
   * Services in its own namespace; a gRPC call without `namespace` metadata is routed only in
   * single-namespace mode. `cluster`: anything, as Ambassador allowed, and a missing gRPC namespace
   * means the one namespace serving that `seldon` value.
   */
  customConfigScope: 'namespace' | 'cluster';
  /** The ambassador Module's `retry_policy`: the retry policy of routes that have none of their own; absent: none. */
  defaultRetry?: RetryPolicy;
  /** The ambassador Module's `cors`: the CORS policy of REST routes that have none of their own; absent: none. */
  defaultCors?: CorsPolicy;
  /** The Module's `error_response_overrides`, `load_balancer`, `circuit_breakers`: of every route that sets none of its own (routing/emissary/mapping-policy.ts `withRouteDefaults`); absent: none, the gateway's pick, `DEFAULT_BREAKER`. */
  defaultErrorOverrides?: readonly ErrorOverride[];
  defaultLoadBalancer?: LoadBalancer;
  defaultBreaker?: BreakerLimits;
  /** --custom-config-prefixes: prefixes a namespace's custom Mappings may claim besides its own /seldon/<namespace>/ (routing/emissary/custom-prefixes.ts); absent: none. */
  customConfigPrefixes?: ReadonlyMap<string, readonly string[]>;
  /** Most predictors one SeldonDeployment may have (absent: `MAX_PREDICTORS`, 1000); more rejects it. */
  maxPredictors?: number;
  /** Largest RE2 program size of a header or path regex (absent: `REGEX_MAX_SIZE`, 200, Ambassador's `regex_max_size`); a larger one is refused. */
  regexMaxSize?: number;
  /** The ambassador Module's `add_linkerd_headers`: every route whose Mapping does not set its own sends `l5d-dst-override` (routing/emissary/mapping-policy.ts `withLinkerdHeader`); absent: off. */
  addLinkerdHeaders?: boolean;
  /** The ambassador Module's `defaults` (routing/emissary/module-defaults.ts): the header edits, as written, of every Mapping (custom and Seldon's) that does not set the key itself; absent: none. */
  mappingDefaults?: MappingDefaults;
  /** The ambassador Module's `use_ambassador_namespace_for_service_resolution`: a Mapping's `service` without a namespace is a Service of `namespace` (AMBASSADOR_NAMESPACE), not of the Mapping's; absent: off. */
  serviceInGatewayNamespace?: boolean;
  /** The ambassador Module's `merge_slashes`: true, runs of `/` are merged before the match and forwarded merged; absent or false: as sent, as Envoy's default (docs/routing.md#path-checks). */
  mergeSlashes?: boolean;
  /** Every route is checked by the external auth service unless a Mapping bypasses it (--ext-auth-service with --ext-auth-default on); absent: off. */
  extAuthDefault?: boolean;
  /** The JWT providers the operator configured (--jwt-providers), by name: the only ones `seldon.io/gateway-jwt` may name. */
  jwtProviders?: ReadonlySet<string>;
  /** The log sinks the operator configured (--log-sinks), by name: the only ones `seldon.io/gateway-log` may name. */
  logSinks?: ReadonlySet<string>;
  /** The upstream TLS contexts the operator defined (--upstream-tls-context), by name: the only ones a Mapping's `tls` may name. */
  tlsContexts?: ReadonlySet<string>;
  /** The gateway's compression (--compress and its companions), under each deployment's `seldon.io/gateway-compression`; absent: none. */
  compression?: CompressionSettings;
  /** The fallback targets the operator named (--fallback-target): the only ones `seldon.io/gateway-fallback` may name. */
  fallbackTargets?: ReadonlySet<string>;
}

export const DEFAULT_COMPILE_OPTIONS: Readonly<CompileOptions> = Object.freeze({
  ambassadorId: 'default',
  singleNamespace: false,
  namespace: 'default',
  defaultTimeoutMs: 3000,
  defaultIdleTimeoutMs: 300_000,
  defaultHttpPort: 8000,
  defaultGrpcPort: 5001,
  legacyServiceNaming: false,
  honourCustomConfig: true,
  customConfigScope: 'namespace',
});

// ---------------------------------------------------------------------------------------------
// Output: the routing table.
// ---------------------------------------------------------------------------------------------

/** The two protocols the gateway serves; the one spelling of it (the proxies, metrics, the admin page, routing). */
export type Protocol = 'rest' | 'grpc';

/** Where a member's traffic goes: a Kubernetes Service address (or a custom Mapping's host). */
export interface Upstream {
  /** Host as written in the route: `<svc>.<ns>` for generated routes. */
  readonly host: string;
  readonly port: number;
  /** Originate TLS (predictor `ssl`, or an `https://` custom service). */
  readonly tls: boolean;
  /** Service name and namespace when the host is a cluster Service (for endpoint discovery). */
  readonly service?: {
    readonly name: string;
    readonly namespace: string;
    /** The Service port name this upstream is (`http`/`grpc` on Seldon's Services), for endpoint discovery. */
    readonly portName?: 'http' | 'grpc';
  };
}

/**
 * What one attempt to an endpoint came to, as endpoint health reads it (gateway/forward/outcome.ts
 * classifies answers and failures of both protocols into it): `error` a server error answer, `local`
 * no answer (refused, reset, timed out), `success` any other answer, `none` nothing about the endpoint,
 * `lost` cancelled because a hedge of its request answered first (its time so far is a lower bound
 * of its latency, nothing more).
 */
export type OutcomeKind = 'success' | 'error' | 'local' | 'none' | 'lost';

/** Endpoint health's settings for one upstream (routing/health/endpoints.ts has the meaning of each). */
export interface OutlierPolicy {
  readonly consecutiveLocal: number;
  readonly minErrors: number;
  readonly window: number;
  readonly windowMs: number;
  readonly chance: number;
  readonly margin: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly maxEjectedPercent: number;
  readonly slowStartMs: number;
}

/** Retry policy (docs/routing.md#timeouts-retries-and-circuit-breakers). */
export type RetryOn = 'gateway-error' | '5xx' | 'connect-failure' | 'retriable-4xx' | 'refused-stream';

export interface RetryPolicy {
  readonly retryOn: RetryOn;
  /** Extra attempts after the first. */
  readonly numRetries: number;
  /** Per-attempt timeout in ms; 0 = only the route timeout applies. */
  readonly perTryTimeoutMs: number;
  /** gRPC statuses retried when an answer carries them in its headers (Envoy's `retry_grpc_on`); none when absent. */
  readonly retryGrpcOn?: readonly number[] | undefined;
}

/** Per-upstream limits (docs/routing.md#timeouts-retries-and-circuit-breakers). */
export interface BreakerLimits {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
}

export const DEFAULT_BREAKER: BreakerLimits = Object.freeze({
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
});

/**
 * `seldon.io/gateway-rate-limit: "<n>/<s|m|h>"`: `count` requests per `periodMs`, counted across every
 * replica of the gateway.
 */
export interface RateLimit {
  /** The bucket: `ns/sdep` for a deployment's limit, `ns/sdep/pred` for a predictor's. */
  readonly key: string;
  readonly count: number;
  readonly periodMs: number;
  /** Normalised text, e.g. `100/s`, `10/m per claim:sub`. */
  readonly text: string;
  /** `per claim:<name>`: each value of the verified JWT's claim has a bucket of its own (gateway/auth/rate-limit.ts `perClaimLimit`). */
  readonly perClaim?: string | undefined;
}

/**
 * What the gateway checks before it proxies to a backend (`seldon.io/gateway-auth`,
 * `seldon.io/gateway-rate-limit`). `Backend.gate` is null when there is nothing to check.
 */
export interface Gate {
  /**
   * `oauth`: a valid token of this deployment's own OAuth client is required (docs/routing.md#oauth-front-end).
   * A route to a Service of another OAuth-gated deployment carries that one's auth; to a Service
   * several claim, `deployment` is `CONFLICTED_AUTH_DEPLOYMENT`, which no token is for.
   */
  readonly auth: { readonly namespace: string; readonly deployment: string } | null;
  /** Every limit that applies; a request consumes from all of them or from none. */
  readonly rateLimits: readonly RateLimit[];
  /**
   * The external auth service (--ext-auth-service) must allow the request first, as Ambassador's
   * AuthService checks a Mapping: every route when --ext-auth-default is on, else deployments
   * annotated `seldon.io/gateway-auth: external`; a custom Mapping's `bypass_auth: true` clears it
   * for the routes of its own deployment's Services (docs/routing.md#external-auth).
   */
  readonly external: boolean;
  /** `seldon.io/gateway-jwt`: a token one of the named providers verifies, with what the policy requires (docs/security.md#jwt). */
  readonly jwt: JwtPolicy | null;
}

/**
 * A REST route's CORS policy (docs/routing.md#cors), from a Mapping's `cors` or the deployment's
 * `seldon.io/gateway-cors`, normalised once at compile time: the proxy only looks values up.
 */
export interface CorsPolicy {
  /** The allowed origins as normalised (lower case): exact `scheme://host[:port]`, `scheme://*.domain[:port]`, `null` or `*`. */
  readonly origins: readonly string[];
  /** Whether an `Origin` request header value is allowed (precomputed from `origins`). */
  readonly allowsOrigin: (origin: string) => boolean;
  /** Upper-case methods; `['*']`: a preflight's requested method is echoed; empty: no Allow-Methods. */
  readonly methods: readonly string[];
  /** Lower-case header names; `['*']`: a preflight's requested headers are echoed; empty: no Allow-Headers. */
  readonly headers: readonly string[];
  /** Lower-case header names for Access-Control-Expose-Headers; empty: none. */
  readonly exposedHeaders: readonly string[];
  readonly credentials: boolean;
  /** Access-Control-Max-Age in whole seconds, as sent; null: not sent. */
  readonly maxAge: string | null;
  /** The three lists as header values, joined once (`GET, POST`); `''` for an empty list. */
  readonly text: { readonly methods: string; readonly headers: string; readonly exposedHeaders: string };
}

/** `Gate.auth.deployment` of a route to a Service several OAuth-gated deployments claim: no deployment has this name. */
export const CONFLICTED_AUTH_DEPLOYMENT = '(a Service claimed by several OAuth deployments)';

/** Who a member belongs to, as shown to operators and used as metric labels. */
export interface Origin {
  readonly namespace: string;
  readonly deployment: string;
  /** Predictor name, or the custom Mapping's name. */
  readonly predictor: string;
}

/**
 * A backend: one member of a route group, with its own upstream and policies. Generated routes
 * have one per predictor and kind; custom Mappings one each.
 */
export interface Backend {
  /** `ns/sdep/pred` (or `ns/sdep/mapping`), plus `#explainer` for explainers; unique per kind. */
  readonly id: string;
  readonly origin: Origin;
  readonly upstream: Upstream;
  /** Replacement for the matched prefix; `null` forwards the path unchanged. */
  readonly rewrite: string | null;
  /** Request timeout in ms; 0 = none. */
  readonly timeoutMs: number;
  /** Stream idle timeout in ms; 0 = none. */
  readonly idleTimeoutMs: number;
  readonly retry: RetryPolicy | null;
  /**
   * Endpoint health from `seldon.io/gateway-outlier` (docs/routing.md#endpoint-health): a policy,
   * `null` for `off`; absent: the gateway's flags.
   */
  readonly outlier?: Partial<OutlierPolicy> | null;
  readonly breaker: BreakerLimits;
  /** Auth and rate limits to check first; null (the common case) when there are none. */
  readonly gate: Gate | null;
  /** CORS policy of a REST route that has one (docs/routing.md#cors); null (the common case) otherwise, and always on gRPC. */
  readonly cors: CorsPolicy | null;
  /** A predictor of a deployment whose weights are steered at run time (a rollout or a bandit, routing/steering/shares.ts): its answers are counted for that. */
  readonly steered: boolean;
  /** Flow control of a predictor (`seldon.io/gateway-flow`, docs/flow-control.md); null (the common case): none. */
  readonly flow: FlowPolicy | null;
  /** Payload and decision logging of a predictor (`seldon.io/gateway-log`, docs/payload-logging.md); null (the common case): none. */
  readonly log: LogPolicy | null;
  /** Hedged requests of a predictor (`seldon.io/gateway-hedge`, docs/routing.md#hedged-requests); null (the common case): none. */
  readonly hedge: HedgePolicy | null;
  /** What a custom Mapping does besides routing, with the Module's route defaults (routing/emissary/mapping-policy.ts); null (a generated route without a Module's): nothing. */
  readonly mapping: MappingPolicy | null;
  /** Answers compressed and request bodies decoded (`seldon.io/gateway-compression`, --compress, docs/edge.md#compression); null (the common case, and gRPC always): neither. */
  readonly compression: CompressionPolicy | null;
  /** Where its requests go when it cannot answer them (`seldon.io/gateway-fallback`, docs/routing.md#fallback-models); null (the common case): nowhere. */
  readonly fallback: FallbackPolicy | null;
  /** Protocol translation between Seldon's protocol and v2 (`seldon.io/gateway-protocol`, docs/protocol-translation.md); null (the common case): none. */
  readonly translate: TranslatePolicy | null;
}

/** A non-shadow member and its effective share of the group's traffic. */
export interface WeightedBackend {
  readonly backend: Backend;
  /** Effective percent after normalisation (docs/routing.md#weights-and-normalisation); may be fractional. */
  readonly percent: number;
}

/** A shadow member: gets a fire-and-forget copy of `percent` % of the group's requests. */
export interface Mirror {
  readonly backend: Backend;
  readonly percent: number;
}

/**
 * How a route matches the path (no query): `prefix`, indexed; else, from a list tried in precedence order, a
 * Mapping's `regex` (`prefix_regex`), `exact` (`prefix_exact`) or `iprefix` (`case_sensitive: false`), its
 * `source` as written (`ignoreCase`: a regex or exact path of `case_sensitive: false`).
 */
export type PathMatcher =
  | { readonly kind: 'prefix'; readonly prefix: string }
  | { readonly kind: 'regex' | 'exact' | 'iprefix'; readonly source: string; readonly test: (path: string) => boolean; readonly ignoreCase?: boolean };

/** A Mapping's `query_parameters` / `regex_query_parameters`, on the first value of the name as sent (routing/emissary/mapping-match.ts). */
export type QueryConstraint =
  | { readonly kind: 'exact'; readonly name: string; readonly value: string }
  | { readonly kind: 'presence'; readonly name: string }
  | { readonly kind: 'regex'; readonly name: string; readonly pattern: string; readonly test: (value: string) => boolean };

/** What a route matches: the fields of a group's key (docs/routing.md#route-groups). */
export interface RouteMatch {
  readonly kind: Protocol;
  /** Namespace of the deployment(s) the route belongs to (groups never span namespaces). */
  readonly namespace: string;
  readonly path: PathMatcher;
  /** Exact case-insensitive host (port ignored): unused by generated routes, kept for the listing shape; Mappings match the Host as an `:authority` constraint. */
  readonly host: string | null;
  /**
   * Header constraints. A Mapping's `method` is a `:method` constraint and its `host` / `hostname` an
   * `:authority` one (Emissary's own representation), so they take part in grouping and precedence as
   * its headers do.
   */
  readonly headers: readonly HeaderConstraint[];
  /** A Mapping's query parameter constraints; empty on generated routes. */
  readonly query: readonly QueryConstraint[];
  /** A Mapping's `precedence` (higher first, before any other order); 0 on generated routes. */
  readonly rank: number;
  /** Set on a Mapping's routes: they are ordered among themselves as Emissary orders them (`Precedence.emissary`). */
  readonly mapping?: true;
  /** Generated gRPC routes: the `seldon` and `namespace` metadata values they require. */
  readonly grpcIdentity: { readonly seldon: string; readonly namespace: string } | null;
}

/**
 * A route group: all routes sharing one match key (docs/routing.md#route-groups). Weights are normalised
 * within a group and never across groups.
 */
export interface RouteGroup extends RouteMatch {
  /** Canonical key: kind, matcher, constraints, host, gRPC identity. */
  readonly key: string;
  /** Non-shadow members in canonical order (by backend id), with normalised percents. */
  readonly members: readonly WeightedBackend[];
  readonly mirrors: readonly Mirror[];
  /** Running sum of member percents, for the weighted pick (scaled to 100 when the group passes some on). */
  readonly cumulative: readonly number[];
  /** The percent of requests that fall through to the next route (Mapping weights under 100, Envoy's `runtime_fraction`: weights.ts `emissaryWeights`). */
  readonly passOn?: number;
  /** Backends of Mappings the group refused (a core key differing from the group's, a weight past 100): their deployments are told why. */
  readonly refused?: readonly Backend[];
  /** Precedence sort keys (docs/routing.md#precedence-and-no-match). */
  readonly precedence: Precedence;
  /** Warnings from normalisation (e.g. "weights sum to 120, scaled to 100"). */
  readonly warnings: readonly string[];
  /** Some member's weights are steered at run time: `Picker.steer` gives the group a request is picked from. */
  readonly steered: boolean;
  /** Sticky assignment of the steered deployment (routing/steering/sticky.ts), or null. */
  readonly sticky: StickySpec | null;
}

export interface Precedence {
  /** A Mapping's explicit `precedence`, highest first. */
  readonly rank: number;
  readonly matcherLength: number;
  readonly headerWeight: number;
  /** Emissary's `len_query_parameters`: for each constraint its name plus value (`*` for presence), plus 1 for a regex. */
  readonly queryWeight: number;
  /** A Mapping's group: the rest of Emissary's route weight, ordering Mappings of equal weights (route-group.ts); null: generated. */
  readonly emissary: readonly string[] | null;
  readonly constraintCount: number;
  readonly matcherText: string;
  readonly constraintText: string;
}

export type DeploymentState = 'accepted' | 'degraded' | 'rejected' | 'skipped';

/** What became of one SeldonDeployment: shown in `/routes`, logs and Events. */
export interface DeploymentReport {
  readonly namespace: string;
  readonly name: string;
  readonly ambassadorId: string;
  readonly state: DeploymentState;
  readonly reasons: readonly string[];
}

/** A client of the OAuth front end, registered by a SeldonDeployment (docs/routing.md#oauth-front-end). */
export interface OAuthClient {
  /** `<oauth_key><namespace>`, or the bare `<oauth_key>` in single-namespace mode. */
  readonly clientId: string;
  readonly namespace: string;
  readonly deployment: string;
  /** `spec.oauth_secret`; never listed or logged. */
  readonly secret: string;
  /** The deployment's `metadata.uid` (Kubernetes): a re-created deployment is a new client, whose old tokens are void. */
  readonly uid?: string;
}

/**
 * A deployment's own routes, used by the OAuth front end: its predictors, weights and shadows
 * only (no other deployment sharing its name, no header constraints).
 */
export interface OwnRoutes {
  readonly rest: RouteGroup | null;
  readonly grpc: RouteGroup | null;
}

/** The immutable routing table; the gateway swaps it whole. */
export interface RouteTable {
  readonly generation: number;
  readonly options: Readonly<CompileOptions>;
  /** REST groups by prefix, each list in precedence order. */
  readonly restByPrefix: ReadonlyMap<string, readonly RouteGroup[]>;
  /** Distinct lengths of REST prefixes that do not end in `/`, descending (rare: custom Mappings). */
  readonly restOddPrefixLengths: readonly number[];
  /** Some REST prefix group has a Mapping's `precedence`: candidates of every depth are ordered together. */
  readonly restRanked?: boolean;
  /**
   * How many `/` the `/`-terminated REST prefixes have, each count once, descending: a path is cut
   * only where a prefix of the index could end (generated routes: `/seldon/<ns>/<name>/`, 4).
   */
  readonly restPrefixDepths: readonly number[];
  /** REST regex groups in precedence order. */
  readonly restRegex: readonly RouteGroup[];
  /** Generated gRPC groups by `namespace\0seldon`, in precedence order. */
  readonly grpcByIdentity: ReadonlyMap<string, readonly RouteGroup[]>;
  /** For a call without `namespace`: the namespaces that have a generated gRPC route for a `seldon` value. */
  readonly grpcNamespaces: ReadonlyMap<string, readonly string[]>;
  /** Custom gRPC Mappings by prefix, and their odd lengths and regexes, as for REST. */
  readonly grpcByPrefix: ReadonlyMap<string, readonly RouteGroup[]>;
  readonly grpcOddPrefixLengths: readonly number[];
  readonly grpcRegex: readonly RouteGroup[];
  /** Every group, in precedence order, for listing. */
  readonly groups: readonly RouteGroup[];
  /** One report per SeldonDeployment, keyed `ns/name`. */
  readonly deployments: ReadonlyMap<string, DeploymentReport>;
  /** OAuth clients by client_id; a client_id claimed by two deployments is in neither. */
  readonly oauthClients: ReadonlyMap<string, OAuthClient>;
  /** Each deployment's own routes (OAuth front end), keyed `ns/name`. */
  readonly ownRoutes: ReadonlyMap<string, OwnRoutes>;
  /** Deployments whose weights are steered at run time (rollouts, bandits), keyed `ns/name`. */
  readonly steering: ReadonlyMap<string, DeploymentSteering>;
}

// ---------------------------------------------------------------------------------------------
// Matching.
// ---------------------------------------------------------------------------------------------

/** Header lookup: lower-case name in, the value (repeated values joined with `,`) or undefined out. */
export type HeaderGetter = (name: string) => string | undefined;

export interface RouteRequest {
  readonly kind: Protocol;
  readonly method: string;
  /** Raw request target: path plus optional `?query`, as received (no decoding). */
  readonly path: string;
  /** Host / :authority as received (may carry a port). */
  readonly host: string;
  readonly header: HeaderGetter;
  /** The request's sticky point in [0, 1) under a sticky group's spec (routing/steering/shares.ts), or undefined to draw at random. */
  readonly sticky?: (spec: StickySpec) => number | undefined;
}

/** A weighted pick over a group's members; the seam for random, round-robin or sticky choice. */
export interface Picker {
  /** `point` in [0, 1): a sticky request's place (taken instead of a draw). */
  pick(group: RouteGroup, eligible?: (backend: Backend) => boolean, point?: number): Backend | undefined;
  /** A uniform draw in [0, 1), one per request for every group that passes some on and its later picks (as Envoy's one draw per request). */
  draw?(): number;
  /** The group a request is picked from: a steered group (`group.steered`) with its live shares. */
  steer(group: RouteGroup): RouteGroup;
  /** Whether a mirror of `percent` % fires for this request. */
  mirror(percent: number): boolean;
}

export interface Routed {
  readonly ok: true;
  readonly group: RouteGroup;
  readonly backend: Backend;
  /** The path to send upstream: rewritten prefix, query kept byte for byte. */
  readonly upstreamPath: string;
  /** Mirrors chosen for this request (percent already applied). */
  readonly mirrors: readonly Mirror[];
  /** Set only on the decision of a request sent to its predictor's fallback (routing/fallback/route.ts): why. */
  readonly fellBack?: FallbackReason;
  /** Set only when the path checks changed the path: that path with the query, Envoy's x-envoy-original-path (absent: the target as sent). */
  readonly originalPath?: string;
}

export type NoRouteReason = 'NO_ROUTE' | 'BAD_REQUEST' | 'NO_HEALTHY_UPSTREAM';

export interface NotRouted {
  readonly ok: false;
  /** HTTP status the gateway answers with (404, 400, 503). */
  readonly status: number;
  readonly reason: NoRouteReason;
  /** Human-readable text for the error body / grpc-message. */
  readonly info: string;
}

export type Decision = Routed | NotRouted;
