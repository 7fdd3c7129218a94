/**
 * Prometheus metrics (prom-client), served on the admin port only. Labels are bounded: namespace,
 * deployment, predictor, protocol, kind, code, code class — never paths or request ids. The metrics every
 * request touches are series bound once per backend (observe/bound-series.ts), so the hot path
 * does no label hashing; the rest are prom-client's own.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ComputedSeries, type GaugeSeries } from './computed-series.js';
import type { Backend, Protocol } from '../../routing/types.js';
import { BoundCounter, BoundHistogram, type CounterSeries, type HistogramSeries } from './bound-series.js';
import { CODE_CLASSES, codeClassIndex } from './code-class.js';
import { SteerTally } from './steer-tally.js';
import { ConnectionMetrics } from './connection-metrics.js';
import { HedgeMetrics } from './hedge-metrics.js';
import { TlsMetrics } from './tls-metrics.js';
import { CompressionMetrics } from './compression-metrics.js';
import { TranslationMetrics } from './translation-metrics.js';
import { FallbackMetrics } from './fallback-metrics.js';
import { collectProcessMetrics } from './process-metrics.js';
import { PROBE_INTERVAL_MS, registerRuntimeMetrics } from './runtime-metrics.js';
import type { DenialTally } from './denial-tally.js';

export type TrafficKind = 'primary' | 'shadow';
export type ShadowResult = 'mirrored' | 'dropped_in_flight' | 'dropped_body_size' | 'dropped_breaker' | 'failed';
/** A shadow answer against the primary's: agree, disagree, or skipped (too large, or the primary had no upstream answer). */
export type ComparisonResult = 'agree' | 'disagree' | 'skipped';

/** Latency buckets from 1 ms to 30 s. */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

interface Children {
  /** The metrics' `epoch` these were bound at: bound again after series were removed. */
  readonly epoch: number;
  readonly latency: HistogramSeries;
  readonly byCode: Map<number, CounterSeries>;
  /** Request duration by code class (CODE_CLASSES order), bound on first use; primary traffic only. */
  readonly duration: (HistogramSeries | undefined)[];
}

export const REQUEST_DURATION_METRIC = 'seldon_gateway_request_duration_seconds';
export const EJECTED_UNTIL_METRIC = 'seldon_gateway_upstream_endpoint_ejected_until_seconds';

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests = new BoundCounter(
    'seldon_gateway_requests_total',
    'Requests answered, by deployment, predictor, protocol, kind (primary/shadow) and status code.',
    ['namespace', 'deployment', 'predictor', 'protocol', 'kind', 'code'],
    this.registry,
  );
  private readonly latency = new BoundHistogram(
    'seldon_gateway_upstream_latency_seconds',
    'Time from sending a request upstream to its response headers.',
    ['namespace', 'deployment', 'predictor', 'protocol', 'kind'],
    BUCKETS,
    this.registry,
  );
  private readonly duration = new BoundHistogram(
    REQUEST_DURATION_METRIC,
    "Time from a request reaching the gateway (REST request, gRPC call) to the end of its answer, by the route's namespace, deployment and predictor (empty when nothing routed it), protocol and code class (2xx, 4xx, 5xx…; a gRPC status by the HTTP status it maps to: CANCELLED 4xx, UNAVAILABLE 5xx…).",
    ['namespace', 'deployment', 'predictor', 'protocol', 'code_class'],
    BUCKETS,
    this.registry,
  );
  /** Unrouted answers' durations by protocol and code class index. */
  private readonly unroutedDuration = new Map<string, HistogramSeries>();
  readonly unrouted = new Counter({
    name: 'seldon_gateway_unrouted_requests_total',
    help: 'Requests answered by the gateway without an upstream, by protocol and reason.',
    labelNames: ['protocol', 'reason'],
    registers: [this.registry],
  });
  readonly retries = new Counter({
    name: 'seldon_gateway_retries_total',
    help: 'Upstream retries attempted, by namespace and deployment.',
    labelNames: ['namespace', 'deployment', 'protocol'],
    registers: [this.registry],
  });
  readonly upstreamReplays = new Counter({
    name: 'seldon_gateway_upstream_replays_total',
    help: 'REST requests sent again on a new connection because the upstream reset the reused keep-alive connection they were sent on before answering (it had closed it as idle, with the request unread).',
    registers: [this.registry],
  });
  readonly ejections = new Counter({
    name: 'seldon_gateway_upstream_ejections_total',
    help: 'Endpoints ejected by outlier detection (docs/routing.md#endpoint-health), by the predictor whose upstream they serve and why: local_origin (failures without an answer in a row) or error_rate (server errors where its peers had few). Each worker ejects on its own.',
    labelNames: ['namespace', 'deployment', 'predictor', 'reason'],
    registers: [this.registry],
  });
  readonly ejectedEndpoints = new Gauge({
    name: 'seldon_gateway_upstream_ejected_endpoints',
    help: "Endpoints of a predictor's upstream ejected now (the most any worker has out).",
    labelNames: ['namespace', 'deployment', 'predictor'],
    aggregator: 'max',
    registers: [this.registry],
  });
  /** Per ejected endpoint (removed when it is back): /routes lists them (observe/ejections-view.ts). */
  readonly ejectedUntil = new Gauge({
    name: EJECTED_UNTIL_METRIC,
    help: 'When an ejected endpoint is back (unix seconds), by the predictor it serves, its address and why it is out; no series once it is back.',
    labelNames: ['namespace', 'deployment', 'predictor', 'address', 'reason'],
    aggregator: 'max',
    registers: [this.registry],
  });
  readonly breakerRejections = new Counter({
    name: 'seldon_gateway_breaker_rejections_total',
    help: 'Requests refused by a circuit breaker (503 x-envoy-overloaded), by upstream limit.',
    labelNames: ['namespace', 'deployment', 'protocol', 'limit'],
    registers: [this.registry],
  });
  readonly timeouts = new Counter({
    name: 'seldon_gateway_timeouts_total',
    help: "Requests the gateway ended with a timeout: the route, idle, per-try or the client's deadline.",
    labelNames: ['namespace', 'deployment', 'protocol'],
    registers: [this.registry],
  });
  /** Counted for every mirror, on the hot path: bound series too. */
  private readonly shadows = new BoundCounter(
    'seldon_gateway_shadow_requests_total',
    'Mirrored requests by outcome: mirrored, dropped (in-flight bound, body size, breaker) or failed.',
    ['namespace', 'deployment', 'predictor', 'protocol', 'result'],
    this.registry,
  );
  readonly comparisons = new Counter({
    name: 'seldon_gateway_shadow_comparisons_total',
    help: 'Shadow answers compared with the primary answer to the same request (status, JSON body): agree, disagree or skipped.',
    labelNames: ['namespace', 'deployment', 'predictor', 'protocol', 'result'],
    registers: [this.registry],
  });
  readonly banditFeedback = new Counter({
    name: 'seldon_gateway_bandit_feedback_total',
    help: 'Feedback to bandit deployments by outcome: attributed (reward recorded for the arm that answered), unattributed (no token or no reward), expired, forged, duplicate (a token already counted), dropped (the store stayed away too long).',
    labelNames: ['namespace', 'deployment', 'predictor', 'outcome'],
    registers: [this.registry],
  });
  readonly accessLogDropped = new Counter({
    name: 'seldon_gateway_access_log_dropped_total',
    help: 'Access log lines dropped because the log output could not keep up (or a write failed, e.g. a full disk).',
    registers: [this.registry],
  });
  readonly spansExported = new Counter({
    name: 'seldon_gateway_tracing_spans_exported_total',
    help: 'Spans the OTLP exporter delivered to the collector (--otlp-endpoint).',
    registers: [this.registry],
  });
  readonly spansDropped = new Counter({
    name: 'seldon_gateway_tracing_spans_dropped_total',
    help: 'Spans not delivered: queue_full (the export queue was full), export_failed (the collector did not take them).',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  // Control-plane gauges: set by the process that owns the source (the primary with workers);
  // `max` so that aggregating with workers (which leave them at 0) keeps the primary's value.
  readonly generation = new Gauge({ name: 'seldon_gateway_config_generation', help: 'Generation of the live route table.', aggregator: 'max', registers: [this.registry] });
  readonly lastApplied = new Gauge({
    name: 'seldon_gateway_last_applied_timestamp_seconds',
    help: 'When the live route table was applied (Unix time).',
    aggregator: 'max',
    registers: [this.registry],
  });
  readonly deployments = new Gauge({
    name: 'seldon_gateway_deployments',
    help: 'SeldonDeployments by state: accepted, degraded, rejected, skipped (ambassador-id or namespace).',
    labelNames: ['state'],
    aggregator: 'max',
    registers: [this.registry],
  });
  readonly sourceConnected = new Gauge({
    name: 'seldon_gateway_source_connected',
    help: '1 while the SeldonDeployment source (manifests or Kubernetes API) is connected.',
    labelNames: ['source'],
    aggregator: 'max',
    registers: [this.registry],
  });
  readonly resyncs = new Counter({
    name: 'seldon_gateway_source_resyncs_total',
    help: 'Full relists of the SeldonDeployment source (after 410 Gone or a reconnect).',
    labelNames: ['source'],
    registers: [this.registry],
  });
  // OAuth, rate limits and the hardened edge (auth/gate.ts, oauth.ts, rate-limit.ts, process/data-plane.ts).
  readonly authFailures = new Counter({
    name: 'seldon_gateway_auth_failures_total',
    help: "Requests refused by the OAuth check: missing, invalid, expired, forbidden (another deployment's token), gone (its deployment was deleted), unavailable (token store down).",
    labelNames: ['protocol', 'reason'],
    registers: [this.registry],
  });
  // JWT checks (auth/jwt.ts).
  /** Bound series (observe/bound-series.ts): a JWT check is on the request path. */
  readonly jwtVerifications = new BoundCounter(
    'seldon_gateway_jwt_verifications_total',
    'JWT checks by provider (empty when no provider could be told) and result: valid (verified now), cached (verified before, until its exp), or why it failed: missing, too_large, malformed, issuer, algorithm, signature, unknown_key, expired, not_yet_valid, audience, claims, scope, no_keys.',
    ['provider', 'result'],
    this.registry,
  );
  readonly ambassadorModuleReloads = new Counter({
    name: 'seldon_gateway_ambassador_module_reloads_total',
    help: 'Changes of the --ambassador-module file read while running: success (in use now) or failure (a key not honoured, invalid or half written: the Module before stays in use).',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly jwtProviderReloads = new Counter({
    name: 'seldon_gateway_jwt_provider_reloads_total',
    help: 'Changes of the --jwt-providers file read while running: success (in use now) or failure (invalid or half written: the providers before stay in use).',
    labelNames: ['result'],
    registers: [this.registry],
  });
  // The external auth service (ext-auth/policy.ts).
  readonly extAuth = new Counter({
    name: 'seldon_gateway_ext_auth_total',
    help: 'Decisions on requests checked by the external auth service: allowed, denied (its answer returned), body_too_large (413 before asking), error / timeout / overflow (it failed, was slow, or too many checks were in flight: refused with --ext-auth-status-on-error), error_allowed (it failed and --ext-auth-failure-mode-allow let the request through).',
    labelNames: ['protocol', 'result'],
    registers: [this.registry],
  });
  readonly extAuthSeconds = new Histogram({
    name: 'seldon_gateway_ext_auth_duration_seconds',
    help: 'Time each external auth decision took, from the start of the check (body reading included) to the verdict.',
    labelNames: ['protocol', 'result'],
    buckets: BUCKETS,
    registers: [this.registry],
  });
  readonly tokenRequests = new Counter({
    name: 'seldon_gateway_oauth_token_requests_total',
    help: 'POST /oauth/token answers: issued, reused, unauthorized, bad_request, unavailable.',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly tokenThrottled = new Counter({
    name: 'seldon_gateway_oauth_token_throttled_total',
    help: 'POST /oauth/token attempts refused with 429 because too many failed attempts came from one client address (by="address") or named one client_id (by="client").',
    labelNames: ['by'],
    registers: [this.registry],
  });
  readonly revocationsPending = new Gauge({
    name: 'seldon_gateway_oauth_revocations_pending',
    help: 'OAuth revocations (tokens of deleted or changed clients, identities of deleted deployments) not yet confirmed by the token store; retried with backoff until they are.',
    registers: [this.registry],
  });
  readonly revocationRetries = new Counter({
    name: 'seldon_gateway_oauth_revocation_retries_total',
    help: 'Failed attempts to write an OAuth revocation or deployment identity to the token store (each is retried).',
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'seldon_gateway_rate_limited_total',
    help: 'Requests refused with 429 / RESOURCE_EXHAUSTED, by deployment, protocol and the bucket that refused them.',
    labelNames: ['namespace', 'deployment', 'protocol', 'bucket'],
    registers: [this.registry],
  });
  readonly rateLimitFallback = new Counter({
    name: 'seldon_gateway_rate_limit_fallback_total',
    help: "Rate-limit decisions made locally with this replica's share of the limit because the shared store was down or slow.",
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly rateLimitFallbackActive = new Gauge({
    name: 'seldon_gateway_rate_limit_fallback_active',
    help: '1 while this process decides rate limits locally (shared store down or slow).',
    registers: [this.registry],
  });
  readonly rateLimitReplicas = new Gauge({
    name: 'seldon_gateway_rate_limit_replicas',
    help: "Processes sharing the rate limits (every live replica's workers), as last counted in the replicas' roster in Redis (the divisor of the local share).",
    aggregator: 'max',
    registers: [this.registry],
  });
  readonly flowReplicas = new Gauge({
    name: 'seldon_gateway_flow_replicas',
    help: "Replicas of the gateway that share the fixed flow limits, as counted in the replicas' roster in Redis (1 without Redis or while it is away).",
    aggregator: 'max',
    registers: [this.registry],
  });
  readonly redisConnected = new Gauge({
    name: 'seldon_gateway_redis_connected',
    help: '1 while the Redis connection is ready (with --redis-url).',
    registers: [this.registry],
  });
  readonly http1Handoffs = new Counter({
    name: 'seldon_gateway_http1_handoffs_total',
    help: "HTTP/1.1 connections the gateway's own server (--http1-server gateway) gave to Node's at a request it does not serve itself, by reason: request_shape (any request but GET, POST, PUT, PATCH, DELETE and OPTIONS over HTTP/1.1 with a Content-Length body, a `Transfer-Encoding: chunked` one or none, and plain headers: another Transfer-Encoding, Expect, HEAD, HTTP/1.0, a malformed request), large_body (a Content-Length over --max-body: Node's server answers 413), gateway_route (/oauth/token, /ping, /ready). Node's server serves the connection from that request on.",
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly clientErrors = new Counter({
    name: 'seldon_gateway_client_errors_total',
    help: 'Requests and connections refused at the edge: bad_request (malformed, smuggling), headers_too_large, request_timeout, body_too_large, method_not_allowed, too_many_connections, idle_connection, too_many_premature_resets (an HTTP/2 connection closed for resetting streams faster than it completes them), tls_on_cleartext_port (a TLS handshake on a port without TLS: closed).',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  // Robustness: descriptor exhaustion, bugs caught at the last resort.
  readonly acceptErrors = new Counter({
    name: 'seldon_gateway_accept_errors_total',
    help: 'Times a worker found it could not accept connections, by reason (EMFILE: out of file descriptors for the process, ENFILE: for the system, other): an accept error, or a descriptor check that failed. While it lasts the worker stops accepting and /readyz is false.',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly acceptPaused = new Gauge({
    name: 'seldon_gateway_accept_paused',
    help: '1 while this process has stopped accepting connections because it is out of file descriptors.',
    registers: [this.registry],
  });
  readonly internalErrors = new Counter({
    name: 'seldon_gateway_internal_errors_total',
    help: 'Requests and gRPC calls failed by an unexpected error inside the gateway (answered 502/503, or INTERNAL/UNAVAILABLE), by protocol, namespace and deployment (empty when not routed yet).',
    labelNames: ['protocol', 'namespace', 'deployment'],
    registers: [this.registry],
  });
  readonly processErrors = new Counter({
    name: 'seldon_gateway_process_errors_total',
    help: 'Errors no handler caught (uncaughtException, unhandledRejection): logged, counted, and the process keeps serving.',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  // TLS on the public port (edge/tls.ts), per worker.
  readonly tls = new TlsMetrics(this.registry);
  // Operability: what the alert rules (deploy/kustomize/components/alerts) compare traffic with.
  readonly routeWeight = new Gauge({
    name: 'seldon_gateway_route_weight',
    help: "Share of its deployment's traffic each predictor gets in a weighted split now, in percent, by protocol: the configured weights (`traffic`, seldon.io/ambassador-weight), or a rollout's step and a bandit's shares while one steers the deployment (deployments with two or more predictors in a split only). Compare with requests_total to see a canary drift.",
    labelNames: ['namespace', 'deployment', 'predictor', 'protocol'],
    // Set by the process that owns the source and the steering (a cluster primary); workers leave
    // it empty, so `max` is the primary's value, never a sum over processes.
    aggregator: 'max',
    registers: [this.registry],
    collect: () => this.routeWeightSeries?.collect(),
  });
  readonly readyEndpoints = new Gauge({
    name: 'seldon_gateway_upstream_ready_endpoints',
    help: "Ready, non-terminating endpoints of each routed predictor's Service, from its EndpointSlices (with endpoint routing only; as Envoy's membership_healthy). At 0 it leaves weighted splits, and requests only it can answer get 503 NO_HEALTHY_UPSTREAM.",
    // No protocol: REST and gRPC reach the same pods.
    labelNames: ['namespace', 'deployment', 'predictor', 'kind'],
    // Each worker watches the slices itself: the lowest count is what some requests meet.
    aggregator: 'min',
    registers: [this.registry],
    collect: () => this.readyEndpointSeries?.collect(),
  });
  private routeWeightSeries: ComputedSeries | undefined;
  private readyEndpointSeries: ComputedSeries | undefined;
  /** Open client connections and their bytes, per listener (observe/connection-metrics.ts). */
  readonly connections = new ConnectionMetrics(this.registry);
  /** What rollouts and bandits count (observe/steer-tally.ts), taken once a second by the control plane. */
  readonly steering = new SteerTally();
  /** Hedged requests (observe/hedge-metrics.ts), counted on hedged routes only; requests sent to a predictor's fallback (observe/fallback-metrics.ts). */
  readonly hedging = new HedgeMetrics(this.registry);
  readonly compression = new CompressionMetrics(this.registry);
  readonly fallbacks = new FallbackMetrics(this.registry);
  /** Protocol translations (observe/translation-metrics.ts), counted on translated routes only. */
  readonly translations = new TranslationMetrics(this.registry);
  private readonly children = new WeakMap<Backend, Children>();
  private readonly shadowChildren = new WeakMap<Backend, Children>();
  private readonly shadowResults = new WeakMap<Backend, { readonly epoch: number; readonly byResult: Map<string, CounterSeries> }>();
  /**
   * Bumped when series of gone subjects are removed (observe/series-reaper.ts): the series cached per
   * Backend above are bound again at their next use, so a straggler of a gone deployment counts into
   * a live series (reaped in its turn) rather than into a removed one.
   */
  private epoch = 0;

  /**
   * `processMetrics: false`: none of the process's own (tests with many registries in one process).
   * `loopProbeMs`: how often the event loop is probed by runtime-metrics.ts (default
   * PROBE_INTERVAL_MS; a cluster primary: PRIMARY_PROBE_INTERVAL_MS).
   */
  constructor(options: { processMetrics?: boolean; loopProbeMs?: number } = {}) {
    if (options.processMetrics === false) return;
    // prom-client's process metrics, but for its event-loop gauges (observe/process-metrics.ts).
    collectProcessMetrics(this.registry);
    // Event-loop delay and GC pauses per process (observe/runtime-metrics.ts): the event loop's one set of series.
    registerRuntimeMetrics(this.registry, options.loopProbeMs ?? PROBE_INTERVAL_MS);
  }

  private childrenOf(b: Backend, protocol: Protocol, kind: TrafficKind): Children {
    const cache = kind === 'primary' ? this.children : this.shadowChildren;
    let c = cache.get(b);
    if (c === undefined || c.epoch !== this.epoch) {
      const o = b.origin;
      c = { epoch: this.epoch, latency: this.latency.series(o.namespace, o.deployment, o.predictor, protocol, kind), byCode: new Map(), duration: [] };
      cache.set(b, c);
    }
    return c;
  }

  /** Series of gone subjects were removed (observe/series-reaper.ts): cached ones are bound again. */
  seriesRemoved(): void {
    this.epoch++;
  }

  /**
   * One answered request: its status code, the upstream latency when one answered, and (primary
   * traffic) `since`, when it reached the gateway (performance.now() ms), for its duration.
   */
  request(b: Backend, protocol: Protocol, kind: TrafficKind, code: number, upstreamSeconds: number | null, since?: number): void {
    if (b.steered) {
      if (kind === 'primary') this.steering.request(b, protocol, code, upstreamSeconds);
      else this.steering.mirrored(b);
    }
    this.answered(b, protocol, kind, code, upstreamSeconds, since);
  }

  /**
   * A routed request the gateway refused before forwarding it (the gate: auth, rate limits): counted
   * as its answer in the request metrics, never as a predictor's outcome for rollouts and bandits
   * (observe/steer-tally.ts), since no model saw it.
   */
  refused(b: Backend, protocol: Protocol, code: number, since: number): void {
    this.answered(b, protocol, 'primary', code, null, since);
  }

  /**
   * A request the gate refused, answered with `code` (REST: the HTTP status; gRPC: the gRPC
   * status) `since` it reached the gateway: what its verdict's tally names, counted here once.
   */
  denied(protocol: Protocol, t: DenialTally | undefined, code: number, since: number): void {
    if (t === undefined) return;
    if (t.authFailure !== undefined) this.authFailures.labels(protocol, t.authFailure).inc();
    if (t.bucket !== undefined && t.backend !== undefined) {
      const o = t.backend.origin;
      this.rateLimited.labels(o.namespace, o.deployment, protocol, t.bucket).inc();
    }
    if (t.backend !== undefined) this.refused(t.backend, protocol, code, since);
    else if (t.unrouted !== undefined) this.unroutedRequest(protocol, t.unrouted, code, since);
  }

  private answered(b: Backend, protocol: Protocol, kind: TrafficKind, code: number, upstreamSeconds: number | null, since: number | undefined): void {
    const c = this.childrenOf(b, protocol, kind);
    let counter = c.byCode.get(code);
    if (!counter) {
      const o = b.origin;
      counter = this.requests.series(o.namespace, o.deployment, o.predictor, protocol, kind, String(code));
      c.byCode.set(code, counter);
    }
    counter.inc();
    if (upstreamSeconds !== null) c.latency.observe(upstreamSeconds);
    if (since !== undefined) {
      const i = codeClassIndex(protocol, code);
      let d = c.duration[i];
      if (d === undefined) {
        const o = b.origin;
        d = c.duration[i] = this.duration.series(o.namespace, o.deployment, o.predictor, protocol, CODE_CLASSES[i]!);
      }
      d.observe((performance.now() - since) / 1000);
    }
  }

  /** A request answered without a route (`reason`, its status `code`), `since` it reached the gateway (performance.now() ms). */
  unroutedRequest(protocol: Protocol, reason: string, code: number, since: number): void {
    this.unrouted.labels(protocol, reason).inc();
    const cls = CODE_CLASSES[codeClassIndex(protocol, code)]!;
    const key = `${protocol} ${cls}`;
    let d = this.unroutedDuration.get(key);
    if (d === undefined) this.unroutedDuration.set(key, (d = this.duration.series('', '', '', protocol, cls)));
    d.observe((performance.now() - since) / 1000);
  }

  shadow(b: Backend, protocol: Protocol, result: ShadowResult): void {
    let bound = this.shadowResults.get(b);
    if (bound === undefined || bound.epoch !== this.epoch) this.shadowResults.set(b, (bound = { epoch: this.epoch, byResult: new Map() }));
    const byResult = bound.byResult;
    const key = `${protocol}/${result}`;
    let counter = byResult.get(key);
    if (!counter) byResult.set(key, (counter = this.shadows.series(b.origin.namespace, b.origin.deployment, b.origin.predictor, protocol, result)));
    counter.inc();
  }

  /** `b`: the shadow backend whose answer was compared. */
  comparison(b: Backend, protocol: Protocol, result: ComparisonResult): void {
    if (b.steered && result !== 'skipped') this.steering.compared(b, result === 'agree');
    this.comparisons.labels(b.origin.namespace, b.origin.deployment, b.origin.predictor, protocol, result).inc();
  }

  /** Where `seldon_gateway_route_weight` comes from (observe/route-gauges.ts), read when metrics are. */
  weighRoutes(series: () => ReadonlyMap<string, GaugeSeries> | undefined): void {
    this.routeWeightSeries = new ComputedSeries(this.routeWeight, series);
  }

  /** Where `seldon_gateway_upstream_ready_endpoints` comes from (observe/route-gauges.ts), read when metrics are. */
  countReadyEndpoints(series: () => ReadonlyMap<string, GaugeSeries> | undefined): void {
    this.readyEndpointSeries = new ComputedSeries(this.readyEndpoints, series);
  }

  retry(b: Backend, protocol: Protocol): void {
    this.retries.labels(b.origin.namespace, b.origin.deployment, protocol).inc();
  }

  overflow(b: Backend, protocol: Protocol, limit: string): void {
    this.breakerRejections.labels(b.origin.namespace, b.origin.deployment, protocol, limit).inc();
  }

  timeout(b: Backend, protocol: Protocol): void {
    this.timeouts.labels(b.origin.namespace, b.origin.deployment, protocol).inc();
  }
}
