/**
 * The gRPC proxy: each gRPC stream the public HTTP/2 server (edge/h2-server.ts) hands it runs
 * through the request pipeline (gateway/pipeline/chain.ts, its adapter grpc/grpc-request.ts) and is
 * proxied transparently (grpc/call.ts). Per stream: the pipeline (one `match` over the metadata,
 * the stages a route has), one pooled upstream stream. Gateway-made answers are trailers-only gRPC
 * statuses that say what happened.
 */
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { answerTrailersOnly } from './answer.js';
import { GrpcCall } from './call.js';
import type { GrpcHost, GrpcPipelineRequest } from './grpc-request.js';
import type { ModelMetadata } from '../model-metadata/model-metadata.js';
import { requestPipeline } from '../pipeline/chain.js';
import type { FallbackDeps } from '../pipeline/fallback.js';
import type { FlowController } from '../flow/controller.js';
import type { Stage } from '../pipeline/stage.js';
import { GrpcMirrors } from './mirror.js';
import { GrpcUpstreams } from '../upstream/grpc-sessions.js';
import type { EndpointSource, HealthSettings } from '../upstream/endpoints.js';
import { GrpcStatus } from '../edge/errors.js';
import type { Peer } from '../edge/http-headers.js';
import { LogBudget } from '../observe/log-budget.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { GrpcObserve } from '../observe/observed-grpc.js';
import type { Gatekeeper } from '../auth/gate.js';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Clock } from '../upstream/clock.js';
import type { MirrorBudget } from '../upstream/mirror-budget.js';
import type { ShadowConfig } from '../config/shadows.js';
import type { UpstreamConfig } from '../config/upstream.js';
import type { Backend, Picker } from '../../routing/types.js';
import type { LiveTable } from '../../routing/table/live.js';
import type { StickyKeys } from '../steer/sticky-keys.js';
import type { BanditEdge } from '../steer/bandit-edge.js';
import type { IpFilter } from '../pipeline/ip-policy.js';
import { ServerName } from '../edge/server-name.js';
import type { EdgeRules } from '../../routing/emissary/edge-rules.js';

export interface GrpcProxyDeps {
  /** The timers' clock (upstream/clock.ts); the real one unless a test drives it. */
  readonly clock?: Clock | undefined;
  /** `state.current` is read once per call, at match time. */
  readonly state: LiveTable;
  readonly picker: Picker;
  /** Sticky assignment's keys (gateway/steer/sticky-keys.ts). */
  readonly sticky?: StickyKeys | undefined;
  /** Bandits: tokens on answers, feedback to its arm (gateway/steer/bandit-edge.ts). */
  readonly bandits?: BanditEdge | undefined;
  /** Flow control (gateway/flow/), for backends with a `seldon.io/gateway-flow` policy. */
  readonly flow?: FlowController | undefined;
  /** The ambassador Module's ip_allow / ip_deny (pipeline/ip.ts); undefined: no such stage. */
  readonly ipFilter?: IpFilter | undefined;
  /** The ambassador Module's edge keys (routing/emissary/edge-rules.ts): the stages they add; undefined without them. */
  readonly rules?: EdgeRules | undefined;
  readonly metrics: GatewayMetrics;
  /** The optional cap on copies per shadow upstream, --shadow-max-in-flight (keyed by the gRPC upstream object). */
  readonly budget: MirrorBudget;
  /** Dialling (resolve, connect timeout; TLS: ALPN h2, SNI = upstream host, rejectUnauthorized = tlsVerify) and the retry buffer. */
  readonly upstream: UpstreamConfig;
  /** The CA certificates of --upstream-ca, read once by the data plane. */
  readonly ca?: Buffer | undefined;
  /** The mirror body limit (the budget is `budget`). */
  readonly shadow: ShadowConfig;
  /** Ready pod endpoints per Service, when endpoint routing is on: each call is balanced over them. */
  readonly endpoints?: EndpointSource | undefined;
  /** Endpoint health of each upstream (upstream/health-reports.ts). */
  readonly healthFor?: ((backend: Backend) => HealthSettings) | undefined;
  /** Auth and rate limits (routes with `backend.gate`), the OAuth front end. */
  readonly gate?: Gatekeeper | undefined;
  /** Where failures are logged. */
  readonly log?: Logger | undefined;
  /** --error-detail internal: statuses also name upstream addresses and causes. */
  readonly errorDetail?: 'public' | 'internal' | undefined;
  /** Which peers may set x-forwarded-for/-proto (the REST side's rule); default: none. */
  readonly trusts?: ((socket: Socket) => boolean) | undefined;
  /** --predictor-header: answers carry `x-seldon-predictor` in their initial metadata. */
  readonly predictorHeader?: boolean | undefined;
  /** --access-log, --otlp-endpoint: what observes each call; undefined when neither is on. */
  readonly observe?: GrpcObserve | undefined;
  /** Fallbacks (pipeline/fallback.ts); the proxy adds its upstreams' `unready`. */
  readonly fallback?: FallbackDeps | undefined;
  /** The Module's `server_name` in this process (edge/server-name.ts); none when absent. */
  readonly server?: ServerName | undefined;
  /** The v2 models' metadata a Seldon client's translated call is typed by (model-metadata/); absent: by the values. */
  readonly metadata?: ModelMetadata | undefined;
}

export class GrpcProxy {
  private readonly eligible: ((backend: Backend) => boolean) | undefined;
  /** The gRPC upstreams (sessions per endpoint); the data plane retires those the table no longer names. */
  readonly upstreams: GrpcUpstreams;
  private readonly log: Logger | undefined;
  private readonly bugLog = new LogBudget();
  /** The request pipeline (gateway/pipeline/chain.ts), gRPC's instance, and what its calls ask of this proxy (what every call shares). */
  private readonly pipeline: Stage;
  private readonly host: GrpcHost;

  constructor(private readonly deps: GrpcProxyDeps) {
    this.upstreams = new GrpcUpstreams({ ...deps.upstream, ca: deps.ca, endpoints: deps.endpoints, healthFor: deps.healthFor });
    this.eligible = deps.endpoints ? this.upstreams.eligible : undefined;
    const mirrors = new GrpcMirrors(this.upstreams, deps.budget, deps.metrics, deps.shadow.maxBodyBytes);
    this.log = deps.log;
    this.host = {
      metrics: deps.metrics,
      upstreams: this.upstreams,
      mirrors,
      retryBufferBytes: deps.upstream.retryBufferBytes,
      predictorHeader: deps.predictorHeader ?? false,
      observe: deps.observe,
      log: deps.log,
      logBudget: new LogBudget(),
      internalDetail: deps.errorDetail === 'internal',
      trusts: deps.trusts ?? (() => false),
      server: deps.server ?? new ServerName(undefined),
      suppressEnvoyHeaders: deps.rules?.suppressEnvoyHeaders === true,
      sticky: deps.sticky,
      metadata: deps.metadata,
      clock: deps.clock,
      failed: (stream, backend, err, call) => this.failed(stream, backend, err, call),
    };
    const fallback = deps.fallback && { ...deps.fallback, unready: deps.endpoints ? this.upstreams.unready : undefined };
    this.pipeline = requestPipeline({
      state: deps.state,
      picker: deps.picker,
      eligible: this.eligible,
      gate: deps.gate,
      bandits: deps.bandits,
      flow: deps.flow,
      fallback,
      ipFilter: deps.ipFilter,
      rules: deps.rules,
    });
  }

  /** Close the upstream sessions. */
  close(): void {
    this.upstreams.close();
  }

  /** A gRPC stream from the public HTTP/2 server (edge/h2-server.ts). */
  readonly stream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[], peer: Peer, since: number): void => {
    try {
      this.pipeline.run(new GrpcCall(this.host, stream, headers, rawHeaders, headers[':path'] ?? '', since, peer));
    } catch (err) {
      this.failed(stream, undefined, err);
    }
  };

  /**
   * Last resort: an unexpected error while handling a call fails that call (INTERNAL), never the
   * process; counted and logged with the deployment.
   */
  private failed(stream: ServerHttp2Stream, backend: Backend | undefined, err: unknown, call?: GrpcPipelineRequest): void {
    const o = backend?.origin;
    this.deps.metrics.internalErrors.labels('grpc', o?.namespace ?? '', o?.deployment ?? '').inc();
    const skipped = this.bugLog.take();
    if (skipped !== undefined) {
      this.log?.error(
        { protocol: 'grpc', deployment: o ? `${o.namespace}/${o.deployment}` : undefined, backend: backend?.id, err, ...(skipped ? { notLogged: skipped } : {}) },
        'unexpected error while handling a gRPC call: the call fails, the gateway keeps serving',
      );
    }
    try {
      if (call) return call.abort(err);
      if (!stream.headersSent) answerTrailersOnly(stream, GrpcStatus.INTERNAL, `the gateway failed while handling the call${backend ? ` to ${backend.id}` : ''}`, undefined, this.host.server.value);
      else if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    } catch {
      if (!stream.destroyed) stream.destroy();
    }
  }
}
