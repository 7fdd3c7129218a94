/**
 * Circuit breaker of one upstream (docs/routing.md#timeouts-retries-and-circuit-breakers), counted per upstream and per process as
 * Envoy does per instance. Requests beyond the open connections count as pending; a request
 * that would exceed max_requests or max_pending_requests is refused at once (the caller answers
 * 503 with `x-envoy-overloaded: true`). Retries in flight are capped by max_retries.
 */
import type { BreakerLimits } from '../../routing/types.js';

export type Overflow = 'max_requests' | 'max_pending_requests' | 'max_retries';

export class Breaker {
  inFlight = 0;
  retriesInFlight = 0;

  constructor(readonly limits: BreakerLimits) {}

  /** Take a request slot, or say which limit refuses it. */
  enter(): Overflow | null {
    const l = this.limits;
    if (this.inFlight >= l.maxRequests) return 'max_requests';
    if (this.inFlight - l.maxConnections >= l.maxPendingRequests) return 'max_pending_requests';
    this.inFlight++;
    return null;
  }

  leave(): void {
    this.inFlight--;
  }

  enterRetry(): boolean {
    if (this.retriesInFlight >= this.limits.maxRetries) return false;
    this.retriesInFlight++;
    return true;
  }

  leaveRetry(): void {
    this.retriesInFlight--;
  }
}

/** Human text for an overflow, for error bodies and grpc-message. */
export function overflowInfo(what: Overflow, upstream: string, limits: BreakerLimits): string {
  const limit = what === 'max_requests' ? limits.maxRequests : what === 'max_pending_requests' ? limits.maxPendingRequests : limits.maxRetries;
  return `circuit breaker open for ${upstream}: ${what} (${limit}) reached`;
}
