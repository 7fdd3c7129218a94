/**
 * The forwarding core: one forwarded request across its attempts, for REST and gRPC alike (Envoy's
 * router `Filter`, with `RetryStateImpl` as forward/retry-state.ts). What it owns is written once,
 * here, and the two protocols are codecs beneath it (rest/forwarded-exchange.ts over the HTTP/1.1 client,
 * grpc/call.ts over HTTP/2 streams), which translate bytes and frames and say what happened:
 *
 * - admission by the upstream's breaker, the overflow answer, then the steering commit (`admit`);
 * - the route-timeout budget, less the wait for a flow-control slot (`routeBudgetMs`);
 * - the decision after each attempt: replayed, retried or passed on (`afterFailure`,
 *   `retryAnswer`: one rule, retry-rule.ts, for HTTP statuses, gRPC statuses and local failures),
 *   and each attempt's outcome told to its endpoint's health (`outcome`);
 * - the finish, once: the breaker settled, the request counted, flow control told (`settle`).
 *
 * The codec implements `dispatch` (send the next attempt), `answerOverflow` (the breaker's refusal
 * in its protocol) and names its upstream in messages (`who`).
 */
import { overflowInfo } from '../upstream/breaker.js';
import type { Breaker } from '../upstream/breaker.js';
import { REAL_CLOCK, type Clock } from '../upstream/clock.js';
import type { FlowSlot } from '../flow/controller.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { LogSubject } from '../observe/payload-tap.js';
import type { Backend, Protocol, Routed } from '../../routing/types.js';
import type { AttemptFailure } from './retry-rule.js';
import { RetryState, type Dispatcher } from './retry-state.js';
import { attemptOutcome, type OutcomeListener, type OutcomeKind } from './outcome.js';
import type { EndpointHealth } from '../../routing/endpoint-health.js';

/** What the core needs of an upstream (REST's pool, gRPC's session pool). */
export interface ForwardUpstream {
  /** `host:port` as the route names it. */
  readonly name: string;
  readonly breaker: Breaker;
}

/** What the pipeline decided for a forwarded request, whatever its protocol (the pipeline request implements it; its payload log reads it too). */
export interface ForwardExtras extends LogSubject {
  /** A bandit prediction's attribution token, carried by its answer. */
  readonly token?: string | undefined;
  /** Its slot under flow control (gateway/flow/): how long it waited for it. */
  readonly flow?: FlowSlot | undefined;
  /** Apply what steering decided (a feedback's credit): called once the upstream's breaker admitted the request. */
  commit?(): void;
  /**
   * The request is over for the model: its answer has ended (told before it is relayed to the
   * client), or it failed, the client left, the breaker refused it. Told again when the request
   * itself ends: only the first call counts (`PipelineRequest.ended`). `answered`: the model answered it.
   */
  ended?(answered: boolean): void;
}

export abstract class ForwardedRequest implements Dispatcher {
  protected readonly backend: Backend;
  protected readonly retries: RetryState;
  protected readonly clock: Clock;
  /** Over: counted, settled; nothing more is done for it. */
  protected done = false;
  /** The status counted (HTTP, or gRPC on gRPC). */
  protected status = 0;
  /** Time from the answering attempt's send to its answer head; null while (or when) no upstream answered. */
  protected upstreamSeconds: number | null = null;
  /** The endpoint of the first attempt, and of all of them once there is a second (allocated only then). */
  private triedFirst: EndpointHealth | undefined;
  private triedAll: EndpointHealth[] | undefined;

  constructor(
    protected readonly metrics: GatewayMetrics,
    protected readonly protocol: Protocol,
    protected readonly decision: Routed,
    protected readonly up: ForwardUpstream,
    protected readonly extras: ForwardExtras,
    /** When the request reached the gateway (performance.now() ms): its duration counts from then. */
    protected readonly since: number | undefined,
    clock: Clock | undefined,
  ) {
    this.backend = decision.backend;
    this.clock = clock ?? REAL_CLOCK;
    this.retries = new RetryState(this.backend, up.breaker, metrics, protocol, this, this.clock);
  }

  /** Send the next attempt (the first, a replay or a retry); a no-op once the request is over. */
  abstract dispatch(): void;

  /** The upstream as this protocol's messages name it. */
  protected abstract who(): string;

  /** Answer the breaker's refusal (`info` says which limit), in this protocol. */
  protected abstract answerOverflow(info: string): void;

  /**
   * The upstream's breaker takes the request, then what steering decided is committed; false when
   * the breaker refused it: answered (503 / UNAVAILABLE with `x-envoy-overloaded`), counted, over.
   */
  protected admit(overflowStatus: number): boolean {
    const overflow = this.retries.admit();
    if (overflow === null) {
      this.extras.commit?.();
      return true;
    }
    this.done = true;
    this.status = overflowStatus;
    this.metrics.overflow(this.backend, this.protocol, overflow);
    this.answerOverflow(overflowInfo(overflow, this.who(), this.backend.breaker));
    this.metrics.request(this.backend, this.protocol, 'primary', overflowStatus, null, this.since);
    this.extras.ended?.(false);
    return false;
  }

  /** The route timeout (ms, 0: none), less the time spent waiting for a flow-control slot (docs/flow-control.md#timeouts). */
  protected routeBudgetMs(): number {
    const ms = this.backend.timeoutMs;
    const waited = this.extras.flow?.waitedMs ?? 0;
    return ms > 0 && waited > 0 ? Math.max(1, ms - waited) : ms;
  }

  /**
   * An attempt failed without an answer: replayed at once (the upstream never saw it), retried after
   * a backoff, or (undefined) the failure is the request's. `unread`: none of a streamed body was taken.
   */
  protected afterFailure(failure: AttemptFailure, replayable: boolean, unread = replayable): 'replay' | 'retry' | undefined {
    return this.retries.afterFailure(failure, replayable, unread);
  }

  /**
   * An answer head arrived (its HTTP status, and for gRPC the status its headers carry): true when
   * the policy retries it (the codec drops this answer and the retry follows, `retries.retryLater`).
   */
  protected retryAnswer(httpStatus: number, replayable: boolean, grpcStatus?: number): boolean {
    if (grpcStatus === undefined && httpStatus < 400) return false;
    return this.retries.retryDecided(httpStatus, replayable, grpcStatus);
  }

  /**
   * The endpoints this request's attempts went to: the next attempt goes elsewhere while another
   * endpoint is left (an attempt follows another only when that one failed). Undefined before the first.
   */
  protected tried(): readonly EndpointHealth[] | undefined {
    return this.triedFirst === undefined ? undefined : (this.triedAll ??= [this.triedFirst]);
  }

  /** An attempt goes to `endpoint`. */
  protected tryOn(endpoint: EndpointHealth): void {
    if (this.triedFirst === undefined) this.triedFirst = endpoint;
    else (this.triedAll ??= [this.triedFirst]).push(endpoint);
  }

  /** Tell an attempt's endpoint how it went (endpoint health: ejection, latency-aware picking). */
  protected outcome(endpoint: OutcomeListener | undefined, kind: OutcomeKind, sentAt: number): void {
    if (endpoint !== undefined) attemptOutcome(endpoint, kind, this.clock.now() - sentAt);
  }

  /** The request is over: the breaker's slots given back, the request counted once, flow control told. */
  protected settle(): void {
    this.retries.settle();
    this.metrics.request(this.backend, this.protocol, 'primary', this.status, this.upstreamSeconds, this.since);
    this.extras.ended?.(this.upstreamSeconds !== null);
  }
}
