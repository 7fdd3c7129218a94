/**
 * What a gRPC call (grpc/call.ts) is given: the proxy's shared context.
 */
import type { Socket } from 'node:net';
import type { ModelMetadata } from '../model-metadata/model-metadata.js';
import type { Logger } from 'pino';
import type { LogBudget } from '../observe/log-budget.js';
import type { GrpcObserve } from '../observe/observed-grpc.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { Clock } from '../upstream/clock.js';
import type { Backend } from '../../routing/types.js';
import { upstreamNamed } from '../edge/errors.js';
import type { ServerName } from '../edge/server-name.js';
import type { GrpcMirrors } from './mirror.js';
import type { GrpcUpstreams } from '../upstream/grpc-sessions.js';

/** What the proxy shares with its calls. */
export interface CallContext {
  readonly metrics: GatewayMetrics;
  readonly upstreams: GrpcUpstreams;
  readonly mirrors: GrpcMirrors;
  readonly retryBufferBytes: number;
  /** Answers carry `x-seldon-predictor: <predictor>` in their initial metadata (--predictor-header). */
  readonly predictorHeader?: boolean;
  /** With --access-log or --otlp-endpoint: what taps each call; undefined, nothing is observed. */
  readonly observe?: GrpcObserve | undefined;
  /** Where failures are logged with their details (bounded by `logBudget`). */
  readonly log: Logger | undefined;
  readonly logBudget: LogBudget;
  /**
   * --error-detail internal: statuses name upstream addresses and the underlying error, as the
   * log does. Public (the default): the deployment and the reason only.
   */
  readonly internalDetail: boolean;
  /** Whether the peer may set x-forwarded-for/-proto (--trusted-proxies), as on REST. */
  readonly trusts: (socket: Socket) => boolean;
  /** The Module's `server_name` in this process (edge/server-name.ts): every answer's Server field when set. */
  readonly server: ServerName;
  /** The Module's `suppress_envoy_headers`: no x-envoy-upstream-service-time, no breaker's x-envoy-overloaded. */
  readonly suppressEnvoyHeaders?: boolean;
  /** The timers' clock (upstream/clock.ts); the real one unless a test drives it. */
  readonly clock?: Clock | undefined;
  /** The v2 models' metadata a Seldon client's translated call is typed by (model-metadata/); absent: by the values. */
  readonly metadata?: ModelMetadata | undefined;
}

/** A message given where the upstream is named (`where`), in full (internal detail) or not. */
export type Message = (where: string, full: boolean) => string;

/**
 * Log a failure of the gateway's in full (bounded by the log budget) and give the client's
 * message: in full with --error-detail internal, else without addresses or library text.
 */
export function failureMessage(ctx: CallContext, upstream: string, backend: Backend, code: number, text: Message): string {
  const full = text(upstreamNamed(upstream, backend, true), true);
  const log = ctx.log;
  const skipped = log === undefined ? undefined : ctx.logBudget.take();
  if (log !== undefined && skipped !== undefined) {
    const o = backend.origin;
    log.warn({ protocol: 'grpc', deployment: `${o.namespace}/${o.deployment}`, backend: backend.id, grpcStatus: code, problem: full, ...(skipped ? { notLogged: skipped } : {}) }, 'gRPC call failed');
  }
  return ctx.internalDetail ? full : text(upstreamNamed(upstream, backend, false), false);
}
