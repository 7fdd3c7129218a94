/**
 * The attempts of one proxied request or call and the decision to try again, whatever the
 * protocol (Envoy's router splits the same way: `upstream_request`, `retry_state`). REST's
 * Exchange (rest/proxy.ts) and gRPC's GrpcCall (grpc/call.ts) extend it with their codec: they
 * send an attempt (`dispatch`), say what went wrong and render the answer.
 *
 * Algorithm (docs/routing.md#timeouts-retries-and-circuit-breakers):
 * - `admit`: the upstream's breaker takes the request, or names the limit that refuses it.
 * - An attempt the upstream never saw (connect failure, refused stream) is replayed at once, up
 *   to IMPLICIT_RETRIES times, when its body can be sent again (`replayNow`).
 * - Otherwise a failure or status is retried under the route's policy (`retry`): the body can be
 *   sent again, retries are left, `retry_on` covers it (retry-policy.ts) and the breaker's
 *   max_retries has room. The retry holds that breaker slot from the decision until it is sent
 *   (or the exchange ends), and is sent after a backoff of 25 ms × 2ⁿ, full jitter, ≤ 250 ms.
 * - Each attempt may run under the route's per-try timeout (`armTryTimer`).
 * - `settle` (once, at the end): timers stop, the breaker slots taken are given back.
 * Nothing is allocated per request beyond the subclass object itself: timers take `this`.
 */
import { backoffMs, retriesOn, type AttemptFailure } from './retry-policy.js';
import type { Breaker, Overflow } from './breaker.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { Protocol } from '../../routing/types.js';
import type { Backend } from '../../routing/types.js';

/** Replays at once of an attempt the upstream never saw (Envoy's transparent retries). */
export const IMPLICIT_RETRIES = 2;

export abstract class Attempts<U extends { readonly breaker: Breaker }> {
  /** Retries the route's policy still allows. */
  protected retriesLeft: number;
  private implicitLeft = IMPLICIT_RETRIES;
  /** A retry was decided and not yet sent: it holds a breaker retry slot. */
  protected retryPending = false;
  private backoffTimer: NodeJS.Timeout | undefined;
  private tryTimer: NodeJS.Timeout | undefined;

  constructor(
    protected readonly backend: Backend,
    protected readonly up: U,
    private readonly metrics: GatewayMetrics,
    private readonly protocol: Protocol,
  ) {
    this.retriesLeft = backend.retry?.numRetries ?? 0;
  }

  /** Send the next attempt (the first, a replay or a retry); a no-op once the exchange ended. */
  protected abstract dispatch(): void;

  /** The per-try timeout of the attempt in flight expired. */
  protected abstract onPerTryTimeout(): void;

  /** Take the breaker's request slot, or say which limit refuses it. */
  protected admit(): Overflow | null {
    return this.up.breaker.enter();
  }

  /** Start the per-try timer of an attempt, when the route has one. */
  protected armTryTimer(): void {
    const ms = this.backend.retry?.perTryTimeoutMs ?? 0;
    if (ms > 0) this.tryTimer = setTimeout(Attempts.tryExpired, ms, this);
  }

  protected clearTryTimer(): void {
    if (this.tryTimer) clearTimeout(this.tryTimer);
  }

  /** Replay now an attempt the upstream never saw (connect failure, refused stream); true if so. */
  protected replayNow(failure: AttemptFailure, replayable: boolean): boolean {
    if ((failure !== 'connect' && failure !== 'refused') || !replayable || this.implicitLeft <= 0) return false;
    this.implicitLeft--;
    this.dispatch();
    return true;
  }

  /**
   * Decide a retry under the route's policy, for a failure or HTTP status (`null`: whatever
   * `retry_on` says, as a REST per-try timeout); true if one is decided. The caller sends it
   * with `retryLater` (at once, or once the failed answer has been read).
   */
  protected retryDecided(what: AttemptFailure | null, replayable: boolean): boolean {
    if (!replayable || this.retriesLeft <= 0 || (what !== null && !retriesOn(this.backend.retry, what)) || !this.up.breaker.enterRetry()) return false;
    this.metrics.retry(this.backend, this.protocol);
    this.retriesLeft--;
    this.retryPending = true;
    return true;
  }

  /** Send the decided retry after its backoff. */
  protected retryLater(): void {
    const n = (this.backend.retry?.numRetries ?? 0) - this.retriesLeft - 1;
    this.backoffTimer = setTimeout(Attempts.backoffOver, backoffMs(n), this);
  }

  /** Decide a retry and send it after its backoff; true if so. */
  protected retry(what: AttemptFailure | null, replayable: boolean): boolean {
    if (!this.retryDecided(what, replayable)) return false;
    this.retryLater();
    return true;
  }

  /** The exchange is over: stop the timers, give back the breaker slots it holds. */
  protected settle(): void {
    this.clearTryTimer();
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    if (this.retryPending) {
      this.retryPending = false;
      this.up.breaker.leaveRetry();
    }
    this.up.breaker.leave();
  }

  private static tryExpired(this: void, a: Attempts<{ readonly breaker: Breaker }>): void {
    a.onPerTryTimeout();
  }

  private static backoffOver(this: void, a: Attempts<{ readonly breaker: Breaker }>): void {
    if (!a.retryPending) return; // ended meanwhile (client gone, deadline)
    a.retryPending = false;
    a.up.breaker.leaveRetry();
    a.dispatch();
  }
}
