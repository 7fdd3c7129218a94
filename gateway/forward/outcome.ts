/**
 * What one attempt came to, as endpoint health reads it, whatever the protocol: the one place that
 * says which answers and failures speak of an endpoint's health (docs/routing.md#endpoint-health).
 *
 * - `error`: the endpoint answered with a server error: an HTTP 5xx, or a gRPC INTERNAL,
 *   UNAVAILABLE, UNKNOWN or DATA_LOSS (as Envoy maps gRPC statuses for outlier detection);
 * - `local`: no answer from it: connection refused or reset, reset before the answer head, a per-try,
 *   route or idle timeout (Envoy's local-origin failures);
 * - `success`: any other answer (a 4xx is the client's doing, not the endpoint's);
 * - `none`: says nothing of the endpoint (a refused HTTP/2 stream, the client cancelled).
 */
import type { AttemptFailure } from './retry-rule.js';
import type { OutcomeKind } from '../../routing/types.js';

export type { OutcomeKind };

/** An endpoint told how each attempt sent to it went (upstream/pools.ts's Endpoint, upstream/grpc-sessions.ts's Target). */
export interface OutcomeListener {
  attemptEnded(kind: OutcomeKind, latencyMs: number): void;
}

/** gRPC statuses that count as the endpoint's error: UNKNOWN, INTERNAL, UNAVAILABLE, DATA_LOSS. */
const GRPC_ERRORS = new Set([2, 13, 14, 15]);

/** An HTTP answer's outcome. */
export function httpOutcome(status: number): OutcomeKind {
  return status >= 500 ? 'error' : 'success';
}

/** A gRPC answer's outcome, by the status it ended with. */
export function grpcOutcome(code: number): OutcomeKind {
  return GRPC_ERRORS.has(code) ? 'error' : 'success';
}

/** A failure without an answer. */
export function failureOutcome(failure: AttemptFailure): OutcomeKind {
  return failure === 'refused' || typeof failure === 'number' ? 'none' : 'local';
}

/** Tell `endpoint` (none for a kind that says nothing). */
export function attemptOutcome(endpoint: OutcomeListener, kind: OutcomeKind, latencyMs: number): void {
  if (kind !== 'none') endpoint.attemptEnded(kind, latencyMs);
}
