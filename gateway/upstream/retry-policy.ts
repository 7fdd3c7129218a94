/**
 * The retry rules REST and gRPC share (docs/routing.md#timeouts-retries-and-circuit-breakers): which failures a route's `retry_on`
 * covers, and the backoff between attempts.
 */
import type { RetryPolicy } from '../../routing/types.js';

/** What went wrong with an attempt, or the upstream's HTTP status. */
export type AttemptFailure = 'connect' | 'reset' | 'refused' | 'timeout' | 'idle' | number;

export function retriesOn(policy: RetryPolicy | null, what: AttemptFailure): boolean {
  if (!policy) return false;
  const on = policy.retryOn;
  if (typeof what === 'number') {
    if (on === 'gateway-error') return what === 502 || what === 503 || what === 504;
    if (on === '5xx') return what >= 500;
    if (on === 'retriable-4xx') return what === 409;
    return false;
  }
  if (what === 'refused') return on === 'refused-stream' || on === 'gateway-error' || on === '5xx';
  if (what === 'connect') return on === 'gateway-error' || on === '5xx' || on === 'connect-failure';
  if (what === 'reset') return on === 'gateway-error' || on === '5xx';
  return false;
}

/** Backoff before retry `n` (0-based): 25 ms × 2ⁿ with full jitter, capped at 250 ms. */
export function backoffMs(n: number): number {
  return Math.random() * Math.min(250, 25 * 2 ** n);
}
