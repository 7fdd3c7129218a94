/**
 * The retry state of one forwarded request, whatever the protocol (Envoy's router splits the same
 * way: `UpstreamRequest` per attempt, `RetryStateImpl` per request). The forwarding core
 * (forward/forwarded.ts) holds one per request and asks it whether to try again; it sends the next
 * attempt through its owner's `dispatch`.
 *
 * Algorithm (docs/routing.md#timeouts-retries-and-circuit-breakers):
 * - `admit`: the upstream's breaker takes the request, or names the limit that refuses it.
 * - An attempt the upstream never saw (connect failure, refused stream) is replayed at once, up
 *   to IMPLICIT_RETRIES times, when its body can be sent again (`replayNow`).
 * - Otherwise a failure or status is retried under the route's policy (`retry`): the body can be
 *   sent again, retries are left, `retry_on` covers it (retry-rule.ts) and the breaker's
 *   max_retries has room; on a hedged route, the upstream's budget of extra attempts has a token
 *   (routing/hedge/budget.ts: hedges and retries together stay within it). The retry holds that breaker slot from the decision until it is sent
 *   (or the request ends), and is sent after a backoff of 25 ms × 2ⁿ, full jitter, ≤ 250 ms.
 * - `afterFailure`: the two in order, for an attempt that failed without an answer.
 * - `settle` (once, at the end): the backoff stops, the breaker slots taken are given back.
 * The per-try timeout is each attempt's own (forward/attempt-base.ts).
 */
import { backoffMs, retriesOn, retriesOnGrpc, type AttemptFailure } from './retry-rule.js';
import type { Breaker, Overflow } from '../upstream/breaker.js';
import type { Clock, Timer } from '../upstream/clock.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { HedgeBudget } from '../../routing/hedge/budget.js';
import type { Backend, Protocol } from '../../routing/types.js';

/** Replays at once of an attempt the upstream never saw (Envoy's transparent retries). */
export const IMPLICIT_RETRIES = 2;

/** Who sends the attempts: the exchange or call. */
export interface Dispatcher {
  /** Send the next attempt (a replay or a retry); a no-op once the request ended. */
  dispatch(): void;
}

export class RetryState {
  /** Retries the route's policy still allows. */
  private retriesLeft: number;
  private implicitLeft = IMPLICIT_RETRIES;
  /** A retry was decided and not yet sent: it holds a breaker retry slot. */
  private retryPending = false;
  private backoffTimer: Timer | undefined;
  /** It holds the breaker's request slot: a request settled before admission (its client left while it waited) gives none back. */
  private admitted = false;
  /** On a hedged route, the upstream's budget of extra attempts: a retry takes a token, and without one is not made (forward/hedge.ts). */
  budget: HedgeBudget | undefined;

  constructor(
    private readonly backend: Backend,
    private readonly breaker: Breaker,
    private readonly metrics: GatewayMetrics,
    private readonly protocol: Protocol,
    private readonly owner: Dispatcher,
    private readonly clock: Clock,
  ) {
    this.retriesLeft = backend.retry?.numRetries ?? 0;
  }

  /** Retries the route's policy still allows. */
  get left(): number {
    return this.retriesLeft;
  }

  /** A decided retry waits for its backoff (it holds a breaker retry slot). */
  get pending(): boolean {
    return this.retryPending;
  }

  /** Take the breaker's request slot, or say which limit refuses it. */
  admit(): Overflow | null {
    const overflow = this.breaker.enter();
    this.admitted = overflow === null;
    return overflow;
  }

  /** No retries any more (a body too large to send again). */
  noRetries(): void {
    this.retriesLeft = 0;
  }

  /** Replay now an attempt the upstream never saw (connect failure, refused stream); true if so. */
  replayNow(failure: AttemptFailure, replayable: boolean): boolean {
    if ((failure !== 'connect' && failure !== 'refused') || !replayable || this.implicitLeft <= 0) return false;
    this.implicitLeft--;
    this.owner.dispatch();
    return true;
  }

  /**
   * Decide a retry under the route's policy, for a failure or HTTP status, or (`grpcStatus`) an
   * answer's gRPC status under `retry_grpc_on`; true if one is decided. The caller sends it with
   * `retryLater` (at once, or once the failed answer has been read).
   */
  retryDecided(what: AttemptFailure, replayable: boolean, grpcStatus?: number): boolean {
    const covered = retriesOn(this.backend.retry, what) || (grpcStatus !== undefined && retriesOnGrpc(this.backend.retry, grpcStatus));
    if (!replayable || this.retriesLeft <= 0 || !covered || !this.breaker.enterRetry()) return false;
    if (this.budget !== undefined && !this.budget.withdraw(this.clock.now())) {
      this.breaker.leaveRetry();
      return false;
    }
    this.metrics.retry(this.backend, this.protocol);
    this.retriesLeft--;
    this.retryPending = true;
    return true;
  }

  /** Send the decided retry after its backoff. */
  retryLater(): void {
    const n = (this.backend.retry?.numRetries ?? 0) - this.retriesLeft - 1;
    this.backoffTimer = this.clock.setTimeout(RetryState.backoffOver, backoffMs(n), this);
  }

  /** Decide a retry and send it after its backoff; true if so. */
  retry(what: AttemptFailure, replayable: boolean): boolean {
    if (!this.retryDecided(what, replayable)) return false;
    this.retryLater();
    return true;
  }

  /**
   * An attempt failed without an answer: replayed at once when the upstream never saw it and the
   * body can be sent again (`unread`: not one byte of a streamed body was taken), else retried
   * under the policy. What follows: `replay` (sent already), `retry` (after its backoff) or
   * undefined (the failure is the request's).
   */
  afterFailure(failure: AttemptFailure, replayable: boolean, unread = replayable): 'replay' | 'retry' | undefined {
    if (this.replayNow(failure, unread)) return 'replay';
    return this.retry(failure, replayable) ? 'retry' : undefined;
  }

  /** The request is over: stop the backoff, give back the breaker slots it holds. */
  settle(): void {
    if (this.backoffTimer) this.clock.clearTimeout(this.backoffTimer);
    if (this.retryPending) {
      this.retryPending = false;
      this.breaker.leaveRetry();
    }
    if (this.admitted) {
      this.admitted = false;
      this.breaker.leave();
    }
  }

  private static backoffOver(this: void, r: RetryState): void {
    if (!r.retryPending) return; // ended meanwhile (client gone, deadline)
    r.retryPending = false;
    r.breaker.leaveRetry();
    r.owner.dispatch();
  }
}
