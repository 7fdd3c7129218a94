/**
 * External authorization (docs/routing.md#external-auth): an auth service the operator already runs
 * decides on each request of a route whose gate says `external`, before anything reaches a model,
 * as Ambassador's AuthService does. Two protocols, as AuthService speaks them: HTTP (http-client.ts)
 * and Envoy's `envoy.service.auth.v3.Authorization/Check` over gRPC (grpc-client.ts).
 *
 * This module is the policy around either client: the breaker (checks in flight, at most
 * --ext-auth-max-requests), the timeout, what a failure means (fail closed with
 * --ext-auth-status-on-error, or open with --ext-auth-failure-mode-allow), counting and timing
 * each decision. It gives the gate (auth/gate.ts) an `ExtVerdict`: allowed with the header edits
 * the auth service asked for, or a `Deny` carrying the auth service's own answer (status, the
 * headers it may return, body: returned as it came) or, when it failed, the gateway's words.
 */
import type { Logger } from 'pino';
import { Breaker } from '../upstream/breaker.js';
import { GrpcStatus, type Deny, type GatewayReason } from '../edge/errors.js';
import { LogBudget } from '../observe/log-budget.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { Protocol } from '../../routing/types.js';
import type { AuthContextExtensions } from '../../routing/emissary/auth-context.js';
import type { ExtAuthConfig } from '../config/ext-auth.js';
import type { AuthHeaderEdit } from '../../routing/policies/auth-edits.js';

/** What is checked: the request as the gateway received it, and what of its body the check carries. */
export interface CheckSubject {
  readonly protocol: Protocol;
  readonly method: string;
  /** The request target as routed (path and query: dot segments resolved, as Envoy's :path after normalize_path), before any rewrite. */
  readonly path: string;
  readonly host: string;
  readonly scheme: 'http' | 'https';
  /** `HTTP/1.1`, `HTTP/2`. */
  readonly httpVersion: string;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  /** The request's headers as the model would get them (forwarding headers settled), names lower case, in order. */
  readonly headers: readonly string[];
  /** include_body: the body (or its first max_bytes), else null. */
  readonly body: Buffer | null;
  /** The body sent is its first max_bytes only (allow_partial). */
  readonly partial: boolean;
  /** The body's declared size (Content-Length), -1 when unknown. */
  readonly size: number;
  /** Its route's Mapping's `auth_context_extensions` (a gRPC check carries them; an HTTP one cannot). */
  readonly contextExtensions?: AuthContextExtensions | undefined;
}

/** The auth service's decision, as either client reads it. */
export type ServiceAnswer =
  | {
      readonly allow: true;
      /** Request headers to set (replacing the client's) or add. */
      readonly headers: readonly AuthHeaderEdit[];
      /** Request headers to remove. */
      readonly remove: readonly string[];
      /** Headers for the client's answer (a refreshed session cookie). */
      readonly answer: readonly AuthHeaderEdit[];
    }
  | {
      readonly allow: false;
      readonly status: number;
      /** The headers the client may see, `name, value` pairs. */
      readonly headers: readonly string[];
      readonly body: Buffer;
    };

/** Why a check failed (not a decision): what the metric and the log say. */
export class CheckFailed extends Error {
  constructor(
    readonly kind: 'error' | 'timeout',
    message: string,
  ) {
    super(message);
  }
}

/** One protocol's client of the auth service. `check` rejects with CheckFailed when there is no decision. */
export interface AuthServiceClient {
  check(subject: CheckSubject, signal: AbortSignal): Promise<ServiceAnswer>;
  close(): void;
}

/** Allowed: what to change on the request and the client's answer. */
export interface ExtAllow {
  readonly allow: true;
  readonly headers: readonly AuthHeaderEdit[];
  readonly remove: readonly string[];
  /** `name, value` pairs added to the client's answer. */
  readonly answer: readonly string[];
}

export type ExtVerdict = ExtAllow | Deny;

export type ExtAuthResult = 'allowed' | 'denied' | 'body_too_large' | 'error' | 'timeout' | 'overflow' | 'error_allowed';

/** Allowed without changes (a failure let through by --ext-auth-failure-mode-allow). */
export const UNCHANGED: ExtAllow = { allow: true, headers: [], remove: [], answer: [] };

/** The gRPC status a gateway-made HTTP status stands for (the HTTP-to-gRPC mapping gRPC specifies). */
export function grpcStatusOfHttp(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 413:
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return 2; // UNKNOWN
  }
}

/** Headers of a denial that a gRPC status answer cannot carry as metadata (its own framing, HTTP/2's connection headers). */
const NOT_METADATA = new Set(['content-type', 'content-length', 'connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'host', 'grpc-status', 'grpc-message']);

const reasonOf = (status: number): GatewayReason => (status === 401 ? 'UNAUTHENTICATED' : status === 429 ? 'RATE_LIMITED' : 'FORBIDDEN');

export interface ExternalAuthDeps {
  readonly config: ExtAuthConfig;
  readonly client: AuthServiceClient;
  readonly metrics: GatewayMetrics;
  readonly log?: Logger | undefined;
  /** --error-detail internal: failures name the auth service and the cause. */
  readonly internalDetail?: boolean | undefined;
}

export class ExternalAuth {
  readonly config: ExtAuthConfig;
  private readonly breaker: Breaker;
  private readonly failureLog = new LogBudget();

  constructor(private readonly d: ExternalAuthDeps) {
    this.config = d.config;
    const c = d.config;
    this.breaker = new Breaker({ maxConnections: c.maxConnections, maxPendingRequests: c.maxRequests, maxRequests: c.maxRequests, maxRetries: 0 });
  }

  /** Ask the auth service about `subject` (`startedAt`: when the check began, body reading included). Never rejects. */
  check(subject: CheckSubject, startedAt: number): Promise<ExtVerdict> {
    if (this.breaker.enter() !== null) {
      return Promise.resolve(this.failed(subject.protocol, startedAt, 'overflow', `${this.config.maxRequests} checks are in flight, the most --ext-auth-max-requests allows`));
    }
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new CheckFailed('timeout', `no answer within ${this.config.timeoutMs} ms`)), this.config.timeoutMs);
    let pending: Promise<ServiceAnswer>;
    try {
      pending = this.d.client.check(subject, abort.signal);
    } catch (err) {
      pending = Promise.reject(err as Error);
    }
    // Whichever comes first: the answer, or the timeout (the client's request is aborted with it).
    const timedOut = new Promise<never>((_, reject) => abort.signal.addEventListener('abort', () => reject(abort.signal.reason as Error), { once: true }));
    return Promise.race([pending, timedOut]).then(
      (a) => {
        this.settle(timer, abort);
        return this.decided(subject.protocol, startedAt, a);
      },
      (err: unknown) => {
        this.settle(timer, abort);
        const kind = err instanceof CheckFailed ? err.kind : 'error';
        return this.failed(subject.protocol, startedAt, kind, err instanceof Error ? err.message : String(err));
      },
    );
  }

  /** A body over --ext-auth-include-body without --ext-auth-allow-partial: 413 before the auth service is asked (as Envoy). */
  tooLarge(protocol: Protocol, startedAt: number): Deny {
    this.count(protocol, 'body_too_large', startedAt);
    return {
      allow: false,
      status: 413,
      reason: 'PAYLOAD_TOO_LARGE',
      message: `the request body is larger than the ${this.config.includeBody?.maxBytes} bytes the external auth check may read`,
      grpcStatus: GrpcStatus.RESOURCE_EXHAUSTED,
    };
  }

  close(): void {
    this.d.client.close();
  }

  private settle(timer: NodeJS.Timeout, abort: AbortController): void {
    clearTimeout(timer);
    this.breaker.leave();
    if (!abort.signal.aborted) abort.abort(new CheckFailed('error', 'settled'));
  }

  private count(protocol: Protocol, result: ExtAuthResult, startedAt: number): void {
    this.d.metrics.extAuth.labels(protocol, result).inc();
    this.d.metrics.extAuthSeconds.labels(protocol, result).observe((performance.now() - startedAt) / 1000);
  }

  private decided(protocol: Protocol, startedAt: number, a: ServiceAnswer): ExtVerdict {
    if (a.allow) {
      this.count(protocol, 'allowed', startedAt);
      const answer: string[] = [];
      for (const h of a.answer) answer.push(h.name, h.value);
      return { allow: true, headers: a.headers, remove: a.remove, answer };
    }
    this.count(protocol, 'denied', startedAt);
    // The auth service's words, returned as they came: REST gets status, headers and body; gRPC the
    // status's gRPC code (as Envoy maps its local replies), the body as the message, the headers as metadata.
    const metadata: Record<string, string> = {};
    for (let i = 0; i < a.headers.length; i += 2) if (!NOT_METADATA.has(a.headers[i]!) && !a.headers[i]!.startsWith(':')) metadata[a.headers[i]!] = a.headers[i + 1]!;
    const grpcStatus = grpcStatusOfHttp(a.status);
    return {
      allow: false,
      status: a.status,
      reason: reasonOf(a.status),
      message: a.body.toString('utf8'),
      metadata,
      grpcStatus,
      raw: { headers: a.headers, body: a.body },
    };
  }

  private failed(protocol: Protocol, startedAt: number, kind: 'error' | 'timeout' | 'overflow', cause: string): ExtVerdict {
    const c = this.config;
    this.count(protocol, c.failureModeAllow ? 'error_allowed' : kind, startedAt);
    const log = this.d.log;
    const skipped = log === undefined ? undefined : this.failureLog.take();
    if (skipped !== undefined) {
      log!.warn({ protocol, authService: c.address, failure: kind, cause, failureModeAllow: c.failureModeAllow, ...(skipped ? { notLogged: skipped } : {}) }, 'external auth check failed');
    }
    if (c.failureModeAllow) return UNCHANGED;
    const what = kind === 'timeout' ? `did not answer within ${c.timeoutMs} ms` : kind === 'overflow' ? 'has too many checks in flight' : 'could not be asked, or gave no decision';
    const where = this.d.internalDetail ? ` (${c.address}: ${cause})` : '';
    return {
      allow: false,
      status: c.statusOnError,
      reason: 'AUTH_BACKEND_UNAVAILABLE',
      message: `the external auth service ${what}: the request is refused${where}`,
      grpcStatus: grpcStatusOfHttp(c.statusOnError),
    };
  }
}
