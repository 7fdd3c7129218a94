/**
 * What a REST exchange (rest/forwarded-exchange.ts) is given: the proxy's dependencies and what it asks
 * of the proxy.
 */
import type { Clock } from '../upstream/clock.js';
import type { Timeouts } from '../upstream/timeout-lists.js';
import type { GatewayReason } from '../edge/errors.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { RestObserve } from '../observe/observed-rest.js';
import type { RestMirrors } from './mirrors.js';
import type { Upstreams, UpstreamPool } from '../upstream/pools.js';
import type { Backend } from '../../routing/types.js';
import type { UpstreamConfig } from '../config/upstream.js';
import type { ModelMetadata } from '../model-metadata/model-metadata.js';

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
  /** The v2 models' metadata a Seldon client's translated request is typed by (model-metadata/); absent: by the values. */
  readonly metadata?: ModelMetadata | undefined;
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
