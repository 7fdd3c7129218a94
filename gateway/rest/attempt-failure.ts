/**
 * What a failed REST attempt means (docs/routing.md#timeouts-retries-and-circuit-breakers): the
 * retry rule's class of an upstream error (`classify`), and the errors that end the request
 * whatever the rule says, because the model ran it or the gateway failed (`executedFailure`).
 * Pure: the exchange (rest/forwarded-exchange.ts) sends what these say.
 */
import type { GatewayReason } from '../edge/errors.js';
import type { AttemptFailure } from '../forward/retry-rule.js';

/** Errors that mean the request never reached the model: nothing was sent, a retry is always safe. */
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UPSTREAM_CONNECT_TIMEOUT',
  'ECONNABORTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
]);

/** The retry rule's class of an upstream error: the model idle past its timeout, never reached, or gone mid-request. */
export function classify(err: Error & { code?: string }): Exclude<AttemptFailure, number> {
  if (err.code === 'UPSTREAM_HEADERS_TIMEOUT' || err.code === 'UPSTREAM_BODY_TIMEOUT') return 'idle';
  if (err.code && CONNECT_CODES.has(err.code)) return 'connect';
  return 'reset';
}

/** The client's answer to a failure that ends the request. `internal`: the gateway's own fault (counted, its detail not shown). */
export interface FinalFailure {
  readonly status: number;
  readonly reason: GatewayReason;
  readonly info: string;
  readonly cause?: string | undefined;
  readonly internal?: true;
}

/**
 * A failure no retry follows: the model answered (a head, then a close; a head over the limit; an
 * answer that is not HTTP) and so ran the request, or the gateway could not write it. `who` names
 * the upstream in the client's error.
 */
export function executedFailure(err: Error & { code?: string }, answered: boolean, who: string, maxResponseHeaderBytes: number): FinalFailure | undefined {
  // A head, then a close before its body's end: a 502, not a 503 that says it never answered.
  if (answered && (err.code === 'UPSTREAM_CLOSED' || err.code === 'ECONNRESET' || err.code === 'EPIPE'))
    return { status: 502, reason: 'UPSTREAM_BAD_RESPONSE', info: `${who} closed the connection before its answer ended`, cause: err.message };
  if (err.code === 'UPSTREAM_HEADERS_OVERFLOW') return { status: 502, reason: 'UPSTREAM_BAD_RESPONSE', info: `${who} answered with response headers larger than ${maxResponseHeaderBytes} bytes` };
  if (err.code === 'UPSTREAM_BAD_RESPONSE') return { status: 502, reason: 'UPSTREAM_BAD_RESPONSE', info: `${who} answered with a response the gateway cannot parse`, cause: err.message };
  if (err.code === 'UPSTREAM_INVALID_REQUEST') return { status: 502, reason: 'INTERNAL_ERROR', info: 'the gateway failed to forward this request', internal: true };
  return undefined;
}

/** A failure the retry rule let end the request (no attempt left, or none allowed): the model never answered. */
export function unansweredFailure(failure: Exclude<AttemptFailure, number>, who: string, idleTimeoutMs: number, cause: string): FinalFailure {
  if (failure === 'idle') return { status: 504, reason: 'UPSTREAM_TIMEOUT', info: `${who} was idle for ${idleTimeoutMs} ms` };
  if (failure === 'connect') return { status: 503, reason: 'UPSTREAM_CONNECT_FAILURE', info: `could not connect to ${who}`, cause };
  return { status: 503, reason: 'UPSTREAM_RESET', info: `${who} closed or reset the connection before answering`, cause };
}
