/**
 * What a REST exchange (rest/forwarded-exchange.ts) is given: the proxy's dependencies, what it asks
 * of the proxy, and what the pipeline adds to one request beyond proxying it.
 */
import type { ForwardExtras } from '../forward/forwarded.js';
import type { Clock } from '../upstream/clock.js';
import type { Timeouts } from '../upstream/timeout-lists.js';
import type { GatewayReason } from '../edge/errors.js';
import type { CorsHeaders } from './cors.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { Authorized } from '../ext-auth/subject.js';
import type { RestObserve } from '../observe/observed-rest.js';
import type { RestMirrors } from './mirrors.js';
import type { Upstreams, UpstreamPool } from '../upstream/pools.js';
import type { Backend } from '../../routing/types.js';
import type { UpstreamConfig } from '../config/upstream.js';

/** What an exchange uses of the REST proxy's dependencies. */
export interface ExchangeDeps {
  readonly upstreams: Upstreams;
  readonly mirrors: RestMirrors;
  readonly metrics: GatewayMetrics;
  /** The retry buffer and the largest upstream response head accepted (status line and headers; larger: 502). */
  readonly upstream: Pick<UpstreamConfig, 'retryBufferBytes' | 'maxResponseHeaderBytes'>;
  /** When --predictor-header, --access-log, --otlp-endpoint or --shadow-compare is on: the per-request tap. */
  readonly observe?: RestObserve | undefined;
  /** --max-body: the bound of a request body decoded for its model (0 or absent: none). */
  readonly maxBodyBytes?: number | undefined;
  /** The timers' clock (upstream/clock.ts); the real one unless a test drives it. */
  readonly clock?: Clock | undefined;
}

/** What an exchange asks of the REST proxy (rest/proxy.ts). */
export interface ExchangeHost {
  readonly deps: ExchangeDeps;
  /** Shutting down: answers carry `connection: close`. */
  readonly draining: boolean;
  /** --error-detail internal: error answers also name upstream addresses and causes. */
  readonly internalDetail: boolean;
  /** The route timeouts, a list per duration (upstream/timeout-lists.ts): the exchange is its own entry. */
  readonly timeouts: Timeouts;
  upstreamFailure(up: UpstreamPool, backend: Backend, reason: GatewayReason, cause: string | undefined): void;
  internalError(where: string, err: Error, backend?: Backend): void;
}

/** What the gateway adds to one exchange beyond proxying it (the token: on the answer's header, and in its JSON `meta.tags` when it fits). */
export interface ExchangeExtras extends ForwardExtras {
  /** Headers added to the model's answer (a new sticky cookie), as name, value pairs. */
  readonly answerHeaders?: readonly string[] | undefined;
  /** Headers every answer carries, the model's and the gateway's own: a CORS route's for an allowed Origin (rest/cors.ts). */
  readonly corsHeaders?: CorsHeaders | undefined;
  /** The body, already read (feedback read for its token). */
  readonly body?: Buffer | null | undefined;
  /** The start of a body read in part (feedback too large to read for a token): the rest streams after it. */
  readonly bodyHead?: Buffer[] | undefined;
  /** The external auth service's edits of the request (ext-auth/policy.ts). */
  readonly authorized?: Authorized | undefined;
  /** When the request reached the gateway (performance.now() ms): its duration is counted from then. */
  readonly since?: number | undefined;
}
