/**
 * Errors the gateway itself produces (docs/routing.md#timeouts-retries-and-circuit-breakers): a Seldon-style JSON body for REST and a
 * gRPC status for gRPC. Upstream statuses and bodies are never rewritten.
 */
import type { Backend } from '../../routing/types.js';
import type { DenialTally } from '../observe/denial-tally.js';

export type GatewayReason =
  | 'NO_ROUTE'
  | 'BAD_REQUEST'
  | 'NO_HEALTHY_UPSTREAM'
  | 'UPSTREAM_CONNECT_FAILURE'
  | 'UPSTREAM_RESET'
  | 'UPSTREAM_OVERFLOW'
  | 'UPSTREAM_TIMEOUT'
  | 'REQUEST_TIMEOUT'
  | 'PAYLOAD_TOO_LARGE'
  | 'SHUTTING_DOWN'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'RATE_LIMITED'
  | 'OVERLOADED'
  | 'AUTH_BACKEND_UNAVAILABLE'
  | 'METHOD_NOT_ALLOWED'
  | 'HEADERS_TOO_LARGE'
  | 'TOO_MANY_CONNECTIONS'
  | 'UPSTREAM_BAD_RESPONSE'
  | 'NOT_IMPLEMENTED'
  | 'INTERNAL_ERROR';

/**
 * The upstream as an error names it, REST and gRPC alike: with --error-detail internal (and in the
 * log) its address and backend, `upstream host:port (ns/name/predictor)`; else only the backend,
 * `the upstream of ns/name/predictor`: no Service names, ports or addresses reach the public.
 */
export function upstreamNamed(address: string, backend: Backend, full: boolean): string {
  return full ? `upstream ${address} (${backend.id})` : `the upstream of ${backend.id}`;
}

/** gRPC status codes the gateway answers with. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

const GRPC_OF: Record<GatewayReason, number> = {
  NO_ROUTE: GrpcStatus.UNIMPLEMENTED,
  BAD_REQUEST: GrpcStatus.INTERNAL,
  NO_HEALTHY_UPSTREAM: GrpcStatus.UNAVAILABLE,
  UPSTREAM_CONNECT_FAILURE: GrpcStatus.UNAVAILABLE,
  UPSTREAM_RESET: GrpcStatus.UNAVAILABLE,
  UPSTREAM_OVERFLOW: GrpcStatus.UNAVAILABLE,
  UPSTREAM_TIMEOUT: GrpcStatus.DEADLINE_EXCEEDED,
  REQUEST_TIMEOUT: GrpcStatus.DEADLINE_EXCEEDED,
  PAYLOAD_TOO_LARGE: GrpcStatus.RESOURCE_EXHAUSTED,
  SHUTTING_DOWN: GrpcStatus.UNAVAILABLE,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  FORBIDDEN: GrpcStatus.PERMISSION_DENIED,
  RATE_LIMITED: GrpcStatus.RESOURCE_EXHAUSTED,
  OVERLOADED: GrpcStatus.UNAVAILABLE,
  AUTH_BACKEND_UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  METHOD_NOT_ALLOWED: GrpcStatus.UNIMPLEMENTED,
  HEADERS_TOO_LARGE: GrpcStatus.RESOURCE_EXHAUSTED,
  TOO_MANY_CONNECTIONS: GrpcStatus.UNAVAILABLE,
  UPSTREAM_BAD_RESPONSE: GrpcStatus.INTERNAL,
  NOT_IMPLEMENTED: GrpcStatus.UNIMPLEMENTED,
  INTERNAL_ERROR: GrpcStatus.INTERNAL,
};

export function grpcStatusOf(reason: GatewayReason): number {
  return GRPC_OF[reason];
}

/**
 * A refusal the gateway answers itself (the gate's, auth/gate.ts; the external auth service's,
 * ext-auth/policy.ts). REST renders `status` with the gateway's JSON error body (`reason`,
 * `message`), or `body` when set, and `headers`; gRPC answers trailers-only with
 * `grpcStatusOf(reason)`, `message` and `metadata`.
 */
export interface Deny {
  readonly allow: false;
  readonly status: number;
  readonly reason: GatewayReason;
  readonly message: string;
  /** Extra REST headers: `www-authenticate`, `retry-after`. */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** Extra gRPC metadata (the `retry-after` of a rate limit). */
  readonly metadata?: Readonly<Record<string, string>> | undefined;
  /** A REST body of its own instead of the error body (the front end's Spring OAuth2 shapes). */
  readonly body?: string | undefined;
  /** The gRPC status, when `reason` does not say it (an external auth service's answer, --ext-auth-status-on-error). */
  readonly grpcStatus?: number | undefined;
  /** The external auth service's own answer, returned to a REST client as it came (`status`, these headers, this body). */
  readonly raw?: { readonly headers: readonly string[]; readonly body: Buffer } | undefined;
  /** What the refusal counts beside its answer; the request's protocol counts it where the request ends (observe/metrics.ts `denied`). */
  readonly tally?: DenialTally | undefined;
}

/** `{"status":{"code":…,"info":…,"reason":…,"status":"FAILURE"}}` */
export function errorBody(code: number, reason: GatewayReason, info: string): string {
  return JSON.stringify({ status: { code, info, reason, status: 'FAILURE' } });
}
