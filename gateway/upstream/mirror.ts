/**
 * Admission and settlement of mirrors (docs/routing.md#shadows), whatever the protocol: one shadow
 * writer for REST (rest/mirrors.ts) and gRPC (grpc/mirror.ts), which only send the copy.
 *
 * Algorithm, per mirror of a request, as Envoy bounds shadows: a copy counts only against its
 * shadow upstream's breaker, which admits it while that upstream has fewer than max_requests in
 * flight and fewer than max_pending_requests beyond its max_connections. Admitted, the copy WAITS
 * for a connection or stream like any request (the REST pool's queue, HTTP/2's stream limit), to
 * its own timeout (the shadow route's, from admission). It is dropped and counted, never queued,
 * when its body is over `maxBodyBytes` (`dropped_body_size`), when the breaker refuses it
 * (`dropped_breaker`), or, only with --shadow-max-in-flight set, when its upstream already has that
 * many copies outstanding (`dropped_in_flight`, mirror-budget.ts). An admitted copy holds its
 * slots until `settle`, exactly once: both are given back and it is counted as `mirrored` (with
 * the shadow's status and time) or `failed` (no endpoint, no answer, its timeout).
 *
 * Memory: a copy holds its body (at most `maxBodyBytes`) from admission to settlement, so the
 * bodies held for one shadow upstream, per process, are at most
 * min(max_requests, max_connections + max_pending_requests, --shadow-max-in-flight) x
 * --shadow-max-body, and no longer than the copy's timeout (docs/routing.md#shadows).
 */
import type { Breaker } from './breaker.js';
import type { MirrorBudget } from './mirror-budget.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { Protocol } from '../../routing/types.js';
import type { Backend, Mirror } from '../../routing/types.js';

/**
 * How long a copy may take, from admission: the shadow route's timeout, or its idle timeout when the
 * route has none (a copy is never unbounded; the primary's idle timeout is its own bound too).
 */
export function mirrorTimeoutMs(backend: Backend): number {
  return backend.timeoutMs > 0 ? backend.timeoutMs : backend.idleTimeoutMs;
}

export class MirrorAdmission {
  constructor(
    private readonly budget: MirrorBudget,
    protected readonly metrics: GatewayMetrics,
    private readonly protocol: Protocol,
    readonly maxBodyBytes: number,
  ) {}

  /** Count mirrors not sent because the request body outgrew `maxBodyBytes`. */
  tooLarge(mirrors: readonly Mirror[]): void {
    for (const m of mirrors) this.metrics.shadow(m.backend, this.protocol, 'dropped_body_size');
  }

  /** Take a budget slot and a breaker slot of `up` for a mirror of `backend`; false (counted) when refused. */
  admit(up: { readonly breaker: Breaker }, backend: Backend): boolean {
    if (!this.budget.take(up)) {
      this.metrics.shadow(backend, this.protocol, 'dropped_in_flight');
      return false;
    }
    if (up.breaker.enter() !== null) {
      this.budget.give(up);
      this.metrics.shadow(backend, this.protocol, 'dropped_breaker');
      return false;
    }
    return true;
  }

  /** An admitted mirror is over: give back its slots and count it (`seconds`: time to its answer's head). */
  settle(up: { readonly breaker: Breaker }, backend: Backend, failed: boolean, status: number, seconds: number | null): void {
    up.breaker.leave();
    this.budget.give(up);
    this.metrics.shadow(backend, this.protocol, failed ? 'failed' : 'mirrored');
    if (!failed) this.metrics.request(backend, this.protocol, 'shadow', status, seconds);
  }
}
