/**
 * Admission and settlement of mirrors (docs/routing.md#shadows), whatever the protocol: one shadow
 * writer for REST (rest/mirrors.ts) and gRPC (grpc/mirror.ts), which only send the copy.
 *
 * Algorithm, per mirror of a request: it is dropped and counted, never queued, when its body is
 * over `maxBodyBytes` (`dropped_body_size`), when its shadow upstream already has the budget's
 * `maxInFlight` mirrors in flight (`dropped_in_flight`, mirror-budget.ts), or when that
 * upstream's breaker refuses it (`dropped_breaker`). Admitted, it holds a budget slot and a
 * breaker slot until `settle`, exactly once: both are given back and the mirror counted as
 * `mirrored` (with the shadow's status and time) or `failed` (no endpoint, no answer).
 */
import type { Breaker } from './breaker.js';
import type { MirrorBudget } from './mirror-budget.js';
import type { GatewayMetrics, Protocol } from '../observe/metrics.js';
import type { Backend, Mirror } from '../../routing/types.js';

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
