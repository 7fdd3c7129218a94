/**
 * What a gRPC call (grpc/call.ts) is given: the proxy's shared context, and what the pipeline
 * decided for it (grpc/grpc-request.ts).
 */
import type { Socket } from 'node:net';
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
import type { FlowSlot } from '../flow/controller.js';
import type { LogSubject } from '../observe/payload-tap.js';

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
  /** The timers' clock (upstream/clock.ts); the real one unless a test drives it. */
  readonly clock?: Clock | undefined;
}

/** What the pipeline decided for a call (grpc/grpc-request.ts; its payload log reads it too). */
export interface CallExtras extends LogSubject {
  /** A bandit prediction's token: its answer carries it (metadata and SeldonMessage). */
  readonly token?: string | undefined;
  /** The request, read whole already (a feedback, for its token). */
  readonly request?: readonly Buffer[] | undefined;
  /** Apply what steering decided (a feedback's credit): called once the upstream's breaker admitted the call. */
  commit?(): void;
  /** Its slot under flow control (gateway/flow/): how long it waited for it. */
  readonly flow?: FlowSlot | undefined;
  /** Metadata its answer carries, as name, value pairs (a fallback's marks, pipeline/fallback.ts). */
  readonly answerHeaders?: readonly string[] | undefined;
  /** Sent to its predictor's fallback: its route timeout is what the primary's had left. */
  readonly fellBack?: { readonly budgetMs: number; readonly reason: string; readonly from: { readonly id: string } } | undefined;
  /**
   * The call is over for the model: its answer has ended (told before its end is relayed to the
   * client), or it failed, the client left, the breaker refused it. Told again when the call itself
   * ends: only the first call counts (`PipelineRequest.ended`). `answered`: the model answered it.
   */
  ended?(answered: boolean): void;
  /** A `SendFeedback`: never hedged (forward/forwarded.ts `ForwardExtras.isFeedback`). */
  isFeedback?(): boolean;
  /** A Mapping's hashing load balancer: the hash of the call's key (forward/forwarded.ts `ForwardExtras.balanceHash`). */
  readonly balanceHash?: number | undefined;
}

export const NO_EXTRAS: CallExtras = {};

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
