/**
 * The retry rule, one for both protocols (docs/routing.md#retries): which outcomes of an attempt a
 * route's policy retries, and the backoff between attempts. An outcome is a failure the gateway saw
 * (no answer), an HTTP status, or a gRPC status an answer carried in its headers (a trailers-only
 * answer: how gRPC servers answer an error before any message).
 */
import type { RetryPolicy } from '../../routing/types.js';

/**
 * What went wrong with an attempt before an answer, or the upstream's HTTP status: `connect`
 * (never reached it), `refused` (an HTTP/2 stream it refused unprocessed), `reset` (closed or
 * reset before the answer head), `per-try-timeout` (its own timer), `timeout` (the route's or the
 * client's deadline), `idle` (no byte for the idle timeout).
 */
export type AttemptFailure = 'connect' | 'reset' | 'refused' | 'per-try-timeout' | 'timeout' | 'idle' | number;

/** Whether `policy` retries `what` (an HTTP status is a number). */
export function retriesOn(policy: RetryPolicy | null, what: AttemptFailure): boolean {
  if (!policy) return false;
  const on = policy.retryOn;
  if (typeof what === 'number') {
    if (on === 'gateway-error') return what === 502 || what === 503 || what === 504;
    if (on === '5xx') return what >= 500;
    if (on === 'retriable-4xx') return what === 409;
    return false;
  }
  // A per-try timeout is what the policy's per_try_timeout exists for: any policy retries it.
  if (what === 'per-try-timeout') return true;
  if (what === 'refused') return on === 'refused-stream' || on === 'gateway-error' || on === '5xx';
  if (what === 'connect') return on === 'gateway-error' || on === '5xx' || on === 'connect-failure';
  if (what === 'reset') return on === 'gateway-error' || on === '5xx';
  return false;
}

/** Whether `policy` retries an answer whose headers carry gRPC status `code` (its `retry_grpc_on`). */
export function retriesOnGrpc(policy: RetryPolicy | null, code: number): boolean {
  const on = policy?.retryGrpcOn;
  return on !== undefined && on.includes(code);
}

/** Backoff before retry `n` (0-based): 25 ms × 2ⁿ with full jitter, capped at 250 ms. */
export function backoffMs(n: number): number {
  return Math.random() * Math.min(250, 25 * 2 ** n);
}
