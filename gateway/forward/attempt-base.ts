/**
 * What an attempt of either codec is to the forwarding core (REST's `RestAttempt`, gRPC's `GrpcAttempt`
 * extend it): when it was sent, its place among its request's attempts, whether it is a hedge, and its
 * per-try timer, which it owns and stops when it is answered or dropped.
 */
import type { Backend } from '../../routing/types.js';
import type { Clock, Timer } from '../upstream/clock.js';

/**
 * Start an attempt's per-try timer, when the route has a per-try timeout: `expired(attempt)` when it runs
 * out. The attempt owns the timer and stops it (`clock.clearTimeout`) when it is answered.
 */
export function perTryTimer<A>(backend: Backend, clock: Clock, expired: (attempt: A) => void, attempt: A): Timer | undefined {
  const ms = backend.retry?.perTryTimeoutMs ?? 0;
  return ms > 0 ? clock.setTimeout(expired, ms, attempt) : undefined;
}

export abstract class AttemptBase {
  /** When it was sent (clock ms). */
  readonly sentAt: number;
  private tryTimer: Timer | undefined = undefined;

  constructor(
    protected readonly clock: Clock,
    /** Its place among its request's attempts (0: the first). */
    readonly n: number,
    /** Sent as a hedge, beside an attempt still in flight. */
    readonly hedge: boolean,
  ) {
    this.sentAt = clock.now();
  }

  /** The route's per-try timeout, when it has one: `expired(this)` when it runs out (the codec's own set-up done first). */
  protected startTryTimer<A extends AttemptBase>(this: A, backend: Backend, expired: (attempt: A) => void): void {
    (this as AttemptBase).tryTimer = perTryTimer(backend, this.clock, expired, this);
  }

  stopTimer(): void {
    if (this.tryTimer !== undefined) {
      this.clock.clearTimeout(this.tryTimer);
      this.tryTimer = undefined;
    }
  }
}
