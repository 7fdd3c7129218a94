/**
 * The forwarding core: one forwarded request across its attempts, for REST and gRPC alike (Envoy's
 * router `Filter`, with `RetryStateImpl` as forward/retry-state.ts). It is the pipeline's request
 * (pipeline/request.ts) as well: one object per request from its arrival to its finish, so the core
 * reads what the stages decided (token, flow slot, fallback, the commit) as its own fields. What it
 * owns is written once, here, and the two protocols are codecs beneath it, through their pipeline
 * adapters (rest/forwarded-exchange.ts over the HTTP/1.1 client, grpc/call.ts over HTTP/2 streams),
 * which translate bytes and frames and say what happened:
 *
 * - the forward's state, declared when the request is made (one shape for every request, forwarded
 *   or not) and set when forwarding begins (`begin`), again for a fallback's forward;
 *
 * - admission by the upstream's breaker, the overflow answer, then the steering commit (`admit`);
 * - the route-timeout budget, less the wait for a flow-control slot (`routeBudgetMs`);
 * - the decision after each attempt: replayed, retried or passed on (`afterFailure`,
 *   `retryAnswer`: one rule, retry-rule.ts, for HTTP statuses, gRPC statuses and local failures),
 *   and each attempt's outcome told to its endpoint's health (`outcome`);
 * - hedging (forward/hedge.ts, docs/routing.md#hedged-requests), on a hedged predictor only: the
 *   budget deposit per request (which retries there spend too), the timer from the first attempt,
 *   whether a hedge may go and which reason holds it (`hedgeDue`), the answer that wins
 *   (`relayed`) and the attempts that lose (`lost`), the latency estimate they feed;
 * - the finish, once: the breaker settled, the request counted, flow control told (`settle`).
 *
 * The codec implements `dispatch` (send the next attempt), `sendHedge` (send one more beside those
 * in flight) and `resendable` (its body can go again), `answerOverflow` (the breaker's refusal in
 * its protocol) and names its upstream in messages (`who`). It keeps the attempts in flight, and
 * cancels the losers; on a route without hedging it has one at a time, as before.
 */
import { overflowInfo } from '../upstream/breaker.js';
import type { Breaker } from '../upstream/breaker.js';
import { REAL_CLOCK, type Clock } from '../upstream/clock.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { Backend, Protocol, Routed } from '../../routing/types.js';
import { retriesOn, retriesOnGrpc, type AttemptFailure } from './retry-rule.js';
import { RetryState, type Dispatcher } from './retry-state.js';
import { attemptOutcome, type OutcomeListener, type OutcomeKind } from './outcome.js';
import { Hedge, type HedgeOwner } from './hedge.js';
import { UpstreamHedging } from '../upstream/hedging.js';
import type { HedgeHeld } from '../../routing/hedge/delay.js';
import type { EndpointHealth } from '../../routing/health/endpoints.js';
import { PipelineRequest, type KeptBody } from '../pipeline/request.js';
import type { StickyKeys } from '../steer/sticky-keys.js';

/** What the core needs of an upstream (REST's pool, gRPC's session pool). */
export interface ForwardUpstream {
  /** `host:port` as the route names it. */
  readonly name: string;
  readonly breaker: Breaker;
  /** Hedging's state of this upstream (upstream/hedging.ts), made by its first hedged request; the upstream's entry owns it. */
  hedging: UpstreamHedging | undefined;
  /** Whether a ready endpoint neither ejected nor among `tried` is left (where a hedge may go). */
  otherReady(tried: readonly EndpointHealth[]): boolean;
}

export abstract class ForwardedRequest extends PipelineRequest implements Dispatcher, HedgeOwner {
  // The forward's state: set by `begin` (its decision, upstream and retry state), reset there for a fallback's forward.
  /** What the pipeline decided when forwarding began: `routed` then. */
  protected decision!: Routed;
  protected backend!: Backend;
  protected up!: ForwardUpstream;
  protected retries!: RetryState;
  /** Over: counted, settled; nothing more is done for it. */
  protected done = false;
  /** The status counted (HTTP, or gRPC on gRPC). */
  protected status = 0;
  /** Time from the answering attempt's send to its answer head; null while (or when) no upstream answered. */
  protected upstreamSeconds: number | null = null;
  /**
   * Whole milliseconds from the relayed attempt's request sent to its answer's head, as the answer's
   * `x-envoy-upstream-service-time` says it (Envoy's router sets the same field, truncated likewise).
   */
  protected serviceMs = -1;
  /** The endpoint of the first attempt, and of all of them once there is a second (allocated only then). */
  private triedFirst: EndpointHealth | undefined = undefined;
  private triedAll: EndpointHealth[] | undefined = undefined;
  /** Hedging of this request (forward/hedge.ts); undefined unless its predictor is hedged and it is not a feedback. */
  protected hedge: Hedge | undefined = undefined;
  /** Attempts sent so far. */
  private attemptsSent = 0;
  protected readonly clock: Clock;

  constructor(
    kind: Protocol,
    method: string,
    path: string,
    host: string,
    since: number,
    stickyKeys: StickyKeys | undefined,
    frontEnd: boolean,
    protected readonly metrics: GatewayMetrics,
    clock: Clock | undefined,
  ) {
    super(kind, method, path, host, since, stickyKeys, frontEnd);
    this.clock = clock ?? REAL_CLOCK;
  }

  /**
   * Forwarding begins with `decision`, to `up`: the forward's state starts afresh (a fallback's forward
   * begins again on the same request, once the primary's is settled).
   */
  protected begin(decision: Routed, up: ForwardUpstream): void {
    this.decision = decision;
    this.backend = decision.backend;
    this.up = up;
    this.retries = new RetryState(decision.backend, up.breaker, this.metrics, this.kind, this, this.clock);
    this.done = false;
    this.status = 0;
    this.upstreamSeconds = null;
    this.serviceMs = -1;
    this.triedFirst = undefined;
    this.triedAll = undefined;
    this.hedge = undefined;
    this.attemptsSent = 0;
  }

  /** Send the next attempt (the first, a replay or a retry); a no-op once the request is over. */
  abstract dispatch(): void;

  /** The upstream as this protocol's messages name it. */
  protected abstract who(): string;

  /** Answer the breaker's refusal (`info` says which limit), in this protocol. */
  protected abstract answerOverflow(info: string): void;

  /** Whether the request can be sent once more now: its body is whole and kept (not over the retry buffer, not still streaming). */
  protected abstract resendable(): boolean;

  /** Send one more attempt beside those in flight, to an endpoint this request has not tried (`otherReady` said one is left). */
  protected abstract sendHedge(): void;

  /**
   * The upstream's breaker takes the request, then what steering decided is committed; false when
   * the breaker refused it: answered (503 / UNAVAILABLE with `x-envoy-overloaded`), counted, over.
   */
  protected admit(overflowStatus: number): boolean {
    const overflow = this.retries.admit();
    if (overflow === null) {
      this.commit();
      // A route without hedging pays this one property check.
      if (this.backend.hedge !== null) this.hedged();
      return true;
    }
    this.done = true;
    this.status = overflowStatus;
    this.metrics.overflow(this.backend, this.kind, overflow);
    // Its breaker open, the predictor is unavailable: a fallback that covers it answers instead (nothing of the body was read yet).
    const send = this.backend.fallback?.unavailable === true ? this.fallBackUnadmitted() : undefined;
    if (send === undefined) {
      this.answerOverflow(overflowInfo(overflow, this.who(), this.backend.breaker));
      this.metrics.request(this.backend, this.kind, 'primary', overflowStatus, null, this.since);
    }
    this.ended(false);
    send?.();
    return false;
  }

  /**
   * Admitted on a hedged route: the request earns its share of the upstream's budget (which this
   * route's retries spend too), and unless it is a feedback it may be hedged from its first attempt.
   */
  private hedged(): void {
    const policy = this.backend.hedge!;
    const now = this.clock.now();
    let h = this.up.hedging;
    if (h === undefined) {
      const { metrics, backend, kind } = this;
      h = this.up.hedging = new UpstreamHedging(this.clock, (ms) => metrics.hedging.delayIs(backend, kind, ms));
    }
    h.track.budget.deposit(policy.budget, now);
    this.retries.budget = h.track.budget;
    if (!this.isFeedback()) this.hedge = new Hedge(this, policy, h.track, h.timeouts, this.clock);
  }

  /** The hedge's delay ran out: one more attempt goes, or why not is counted. */
  hedgeDue(): void {
    const h = this.hedge;
    if (this.done || h === undefined) return;
    const held = this.hedgeHeld(h);
    if (held !== undefined) {
      this.metrics.hedging.count(this.backend, this.kind, held);
      return;
    }
    h.sending();
    this.sendHedge();
    if (h.attemptsLeft && !this.done) h.arm();
  }

  /** Why a hedge due now may not go (the order of docs/routing.md#hedged-requests), or undefined once its flow slot and token are taken. */
  private hedgeHeld(h: Hedge): HedgeHeld | undefined {
    if (!this.resendable()) return 'body';
    if (!this.up.otherReady(this.tried()!)) return 'no_endpoint';
    const flow = this.flow;
    // Under flow control a hedge needs a free slot at once: it never waits in the queue.
    const slot = flow?.spare();
    if (flow !== undefined && slot === undefined) return 'flow';
    if (!h.track.budget.withdraw(this.clock.now())) {
      slot?.release(false);
      return 'budget';
    }
    if (slot !== undefined) h.hold(slot);
    return undefined;
  }

  /**
   * The answer of the attempt sent at `sentAt` goes to the client (its head arrived): no more
   * hedges. Its time to the head is the request's upstream time, and (not a hedge) the estimate's.
   */
  protected relayed(sentAt: number, hedge: boolean): void {
    const now = this.clock.now();
    this.upstreamSeconds = (now - sentAt) / 1000;
    this.serviceMs = Math.floor(now - sentAt);
    const h = this.hedge;
    if (h === undefined) return;
    h.stop();
    if (hedge) h.won = true;
    else h.track.estimate.add(now - sentAt, now);
  }

  /**
   * An attempt lost to another's answer (the codec cancels it): neither a success nor a failure
   * of its endpoint, but the time it ran is a lower bound of its latency there; and (not a hedge)
   * a censored sample of the estimate, at the time it had run when the hedge went (forward/hedge.ts).
   */
  protected lost(endpoint: OutcomeListener, sentAt: number, hedge: boolean): void {
    const now = this.clock.now();
    attemptOutcome(endpoint, 'lost', now - sentAt);
    const h = this.hedge;
    if (!hedge && h !== undefined) h.track.estimate.add(h.censoredMs ?? now - sentAt, now);
  }

  /** The route timeout (ms, 0: none; a fallback's: the primary's remainder), less the time spent waiting for a flow-control slot (docs/flow-control.md#timeouts). */
  protected routeBudgetMs(): number {
    const ms = this.fellBack?.budgetMs ?? this.backend.timeoutMs;
    const waited = this.flow?.waitedMs ?? 0;
    return ms > 0 && waited > 0 ? Math.max(1, ms - waited) : ms;
  }

  /**
   * An attempt failed without an answer: replayed at once (the upstream never saw it), retried after
   * a backoff, or (undefined) the failure is the request's. `unread`: none of a streamed body was taken.
   */
  protected afterFailure(failure: AttemptFailure, replayable: boolean, unread = replayable): 'replay' | 'retry' | undefined {
    const next = this.retries.afterFailure(failure, replayable, unread);
    // The retry rule took over (each attempt in flight failed): no hedge beside its attempts.
    if (next !== undefined) this.hedge?.stop();
    return next;
  }

  /**
   * An answer head arrived (its HTTP status, and for gRPC the status its headers carry): true when
   * the policy retries it (the codec drops this answer and the retry follows, `retries.retryLater`).
   */
  protected retryAnswer(httpStatus: number, replayable: boolean, grpcStatus?: number): boolean {
    if (grpcStatus === undefined && httpStatus < 400) return false;
    if (!this.retries.retryDecided(httpStatus, replayable, grpcStatus)) return false;
    this.hedge?.stop();
    return true;
  }

  /** Whether the route's policy would retry this answer at all (retries left or not): while another attempt is in flight, such an answer is that attempt's failure, not the request's answer. */
  protected retriable(httpStatus: number, grpcStatus?: number): boolean {
    return retriesOn(this.backend.retry, httpStatus) || (grpcStatus !== undefined && retriesOnGrpc(this.backend.retry, grpcStatus));
  }

  /**
   * The request's final failure is one its predictor's fallback covers (`error`: `retriable`, a
   * connect failure, reset, timeout, 502/503/504 or gRPC UNAVAILABLE; docs/routing.md#fallback-models):
   * this request is settled without answering (the failure counted against its predictor, `endUnanswered`)
   * and the request goes there (true). One property check without a fallback.
   */
  protected toFallback(retriable: boolean, kept: KeptBody, status: number): boolean {
    const f = this.backend.fallback;
    if (f === null || !f.error || !retriable) return false;
    const send = this.fallBackOnError(this.resendable() ? kept : undefined);
    if (send === undefined) return false;
    this.status = status;
    this.endUnanswered();
    send();
    return true;
  }

  /** End this request without answering the client (it went to its fallback), settled; its access line, trace and decision record are the fallback's. */
  protected abstract endUnanswered(): void;

  /**
   * The endpoints this request's attempts went to: the next attempt goes elsewhere while another
   * endpoint is left (an attempt follows another only when that one failed). Undefined before the first.
   */
  protected tried(): readonly EndpointHealth[] | undefined {
    return this.triedFirst === undefined ? undefined : (this.triedAll ??= [this.triedFirst]);
  }

  /** An attempt goes to `endpoint`: its place among the request's attempts (0: the first, which starts the hedge's delay). */
  protected tryOn(endpoint: EndpointHealth): number {
    if (this.triedFirst === undefined) {
      this.triedFirst = endpoint;
      this.hedge?.arm();
    } else (this.triedAll ??= [this.triedFirst]).push(endpoint);
    return this.attemptsSent++;
  }

  /** Tell an attempt's endpoint how it went (endpoint health: ejection, latency-aware picking). */
  protected outcome(endpoint: OutcomeListener | undefined, kind: OutcomeKind, sentAt: number): void {
    if (endpoint !== undefined) attemptOutcome(endpoint, kind, this.clock.now() - sentAt);
  }

  /** The request is over: the breaker's slots given back, the request counted once (its hedges with it), flow control told. */
  protected settle(): void {
    this.retries.settle();
    this.metrics.request(this.backend, this.kind, 'primary', this.status, this.upstreamSeconds, this.since);
    const h = this.hedge;
    if (h !== undefined) {
      h.end();
      if (h.won) this.metrics.hedging.count(this.backend, this.kind, 'won');
      const lost = h.sent - (h.won ? 1 : 0);
      if (lost > 0) this.metrics.hedging.count(this.backend, this.kind, 'lost', lost);
    }
    this.ended(this.upstreamSeconds !== null);
  }
}
