/**
 * The decisions of flow control for one predictor in one process (docs/flow-control.md): start a
 * request now, let it wait, or refuse it at once; which waiter goes next when a slot frees; and
 * what a refusal's Retry-After says. Pure: the clock (`now`, ms) is an argument of every call and
 * the randomness is injected; the controller (gateway/flow/controller.ts) owns the timers and the
 * requests.
 *
 * Refusing early: a request that would wait is refused at once when the wait estimated from its
 * place in the queue, (ahead + 1) × the time between two completions, is over `ADMIT_SHARE` (95%)
 * of `queueTimeout` or later than one completion before its end, or when that wait plus one
 * service time is over what is left of its budget (the route timeout or the gRPC deadline):
 * waiting would only end in a timeout. Requests of higher classes keep arriving while it waits and
 * go first: the wait is divided by the share of the model they leave (1 − their recent start rate
 * × the time per completion), with room for NOISE_Z standard deviations of their count, and a class
 * they leave less than 5% of is refused at once. With a tenant header, a tenant with requests
 * waiting already is served at its own recent pace (others' later requests cut into the round
 * robin): its next one also waits (waiting + 1) / its start rate, and the longer estimate counts.
 * The time between two completions is measured while requests wait for a slot (it includes what
 * the service time alone does not: the gateway's own delay between a slot freeing and the next
 * request going out), and is at least service time / limit. The margins keep a steady overload,
 * whose queue sits at the admission bound, from timing out the requests it admitted: a refusal
 * after waiting costs the client the whole queue timeout, one at once nothing. Without an observed
 * service time yet, only a full queue refuses.
 *
 * Holding at zero: while the predictor has no ready endpoint and `scaleFromZero` is set, requests
 * wait (up to `queue`) without an estimate, until an endpoint is ready.
 */
import type { FlowPolicy } from './config.js';
import { FlowQueue, Waiter, type Priority } from './queue.js';
import { AdaptiveLimit, ServiceTime, fixedShare } from './limit.js';

/** What happens to an arriving request. */
export type Arrival<W> =
  | { readonly kind: 'start' }
  | {
      readonly kind: 'wait';
      readonly deadline: number;
      readonly displaced: W | undefined;
      /** Lower-class waiters this arrival pushed past their deadline: refused now (counted), rather than when it passes. */
      readonly overtaken?: readonly W[] | undefined;
    }
  | { readonly kind: 'refuse'; readonly retryAfterS: number; readonly why: string };

/** A waiting request. */
export class FlowWaiter extends Waiter {
  /** When its wait ends (set on arrival, from `Arrival.deadline`). */
  deadline = Infinity;
}

/** How this process's share of a fixed limit is found: the gateway's replicas and this process's place among its workers. */
export interface Sharing {
  replicas(): number;
  readonly workers: number;
  readonly index: number;
}

const ONE_PROCESS: Sharing = { replicas: () => 1, workers: 1, index: 0 };
const START: Arrival<never> = Object.freeze({ kind: 'start' });
/** Longest Retry-After, in seconds. */
export const MAX_RETRY_AFTER_S = 60;
/**
 * A request is admitted to wait only when it is expected to start within this share of
 * queueTimeout, and at least one completion before its end (admissionBound).
 */
const ADMIT_SHARE = 0.95;
/** Time constant of the start rates by class, in ms. */
const RATE_WINDOW_MS = 2000;
/** A start rate counts once it has been measured this long, in ms. */
const RATE_MIN_AGE_MS = 500;
/** Standard deviations of the count of higher-class arrivals during a wait that an admitted wait leaves room for (one-sided 99.9%). */
const NOISE_Z = 3;
/** Below this share of the model left by higher classes, a request of a lower class is refused at once. */
const MIN_SHARE_LEFT = 0.05;
/** Tenants whose start rate is kept (beyond, idle ones are forgotten first). */
const MAX_RATES = 3000;
/** A start rate this low (one start in about 20 minutes) is idle. */
const IDLE_RATE_PER_MS = 1e-6;

/** An exponentially weighted event rate over RATE_WINDOW_MS: per ms, as of `at`, counted since `since`. */
interface Rate {
  perMs: number;
  at: number;
  since: number;
}
const decayed = (r: Rate, now: number): number => r.perMs * Math.exp((r.at - now) / RATE_WINDOW_MS);
/**
 * The rate now: 0 while it has been counted for under RATE_MIN_AGE_MS (too few starts to say), then
 * corrected for a count younger than the window, which would read low by 1 − e^(−age/window).
 */
function rateAt(r: Rate | undefined, now: number): number {
  if (r === undefined || now - r.since < RATE_MIN_AGE_MS) return 0;
  return decayed(r, now) / (1 - Math.exp((r.since - now) / RATE_WINDOW_MS));
}
/** One more start now, on `r` or, the first time, a new rate (returned). */
function bump(r: Rate | undefined, now: number): Rate {
  if (r === undefined) return { perMs: 1 / RATE_WINDOW_MS, at: now, since: now };
  r.perMs = decayed(r, now) + 1 / RATE_WINDOW_MS;
  r.at = now;
  return r;
}

/** The longest estimated wait admitted: ADMIT_SHARE of the queue timeout, and one completion before its end. */
function admissionBound(queueTimeoutMs: number, perCompletionMs: number): number {
  return Math.min(queueTimeoutMs * ADMIT_SHARE, queueTimeoutMs - perCompletionMs);
}

export class FlowCore<W extends FlowWaiter> {
  /** Sent to the model and not yet settled. */
  inflight = 0;
  readonly queue = new FlowQueue<W>();
  /** Refusals by priority class, since the start. */
  readonly refused = [0, 0, 0];
  readonly service = new ServiceTime();
  /** Time between two completions while saturated (ms, moving average); null until measured. */
  private readonly cycle = new ServiceTime(0.05);
  /** When the last completion while saturated happened (null: the one before was not saturated). */
  private lastSaturatedSettle: number | null = null;
  /** Requests started per ms, by class: an exponentially weighted rate over RATE_WINDOW_MS. */
  private readonly startRates: (Rate | undefined)[] = [undefined, undefined, undefined];
  /** The same by class and tenant (`class\0tenant`), with a tenant header; swept of idle tenants past MAX_RATES. */
  private readonly tenantRates = new Map<string, Rate>();
  private readonly adaptive: AdaptiveLimit | null;
  /** Ready endpoints (1 when unknown: the Service address). */
  private endpoints = 1;
  private fixed: number;

  constructor(
    readonly policy: FlowPolicy,
    random: () => number,
    private readonly sharing: Sharing = ONE_PROCESS,
  ) {
    this.adaptive = policy.concurrency === 'adaptive' ? new AdaptiveLimit(random) : null;
    this.fixed = this.share();
  }

  /** This process's limit now; 0 while there is no ready endpoint. */
  get limit(): number {
    if (this.endpoints === 0) return 0;
    return this.adaptive === null ? this.fixed : this.adaptive.limit;
  }

  /** Holding requests for an endpoint: none is ready and `scaleFromZero` is set. */
  get holding(): boolean {
    return this.endpoints === 0 && this.policy.scaleFromZeroMs > 0;
  }

  /** The ready endpoint count changed (or the replica count): the fixed share follows. */
  setEndpoints(n: number): void {
    this.endpoints = n;
    this.fixed = this.share();
  }

  /** The replica count may have changed. */
  reshare(): void {
    this.fixed = this.share();
  }

  private share(): number {
    const c = this.policy.concurrency;
    return c === 'adaptive' ? 0 : fixedShare(c * this.endpoints, this.sharing.replicas(), this.sharing.workers, this.sharing.index);
  }

  /**
   * A request arrives with `budgetMs` left (route timeout or gRPC deadline; Infinity: none).
   * `start`: it may go now (the caller then calls `started`). `wait`: it is queued until
   * `deadline` (a displaced waiter, if any, must be refused by the caller). `refuse`: at once.
   */
  arrive(now: number, w: W, budgetMs: number): Arrival<W> {
    const limit = this.limit;
    if (this.holding) {
      if (this.queue.size >= this.policy.queue) return this.refusal(w, 'the queue of requests held until an endpoint is ready is full');
      this.queue.push(w);
      return { kind: 'wait', deadline: now + Math.min(this.policy.scaleFromZeroMs, budgetMs), displaced: undefined };
    }
    // No endpoint and no holding: through, to fail fast as without flow control.
    if (limit === 0) return START;
    if (this.inflight < limit && this.queue.size === 0) return START;
    const service = this.service.ms;
    // An adaptive limit lowered for a probe is not the model's pace, and is unknown before the first probe.
    const pace = this.adaptive === null ? limit : this.adaptive.steadyLimit;
    if (service !== null && pace !== null) {
      const per = this.perCompletion(service, pace);
      // Higher classes arriving while it waits go first: it gets only the share of the model they leave.
      const higherRate = this.higherRate(now, w.priority);
      const left = 1 - higherRate * per;
      if (left < MIN_SHARE_LEFT) return this.refusal(w, 'requests of higher priority take the whole model');
      let wait = ((this.queue.ahead(w.priority, w.tenant) + 1) * per) / left;
      // How many of them come meanwhile is a count of random arrivals (Poisson): their spread, NOISE_Z
      // standard deviations of it, is kept free too, or a request admitted at the bound would be
      // refused after waiting as often as not when more come than on average.
      wait += (NOISE_Z * Math.sqrt(higherRate * wait) * per) / left;
      // A tenant with requests waiting already is served at its own recent pace: the next one waits
      // for all of them at that pace (which counts the turns other tenants take meanwhile). Without
      // a tenant header a class is one FIFO, which the estimate above is exact for; its start rate,
      // a noisy measure, would only raise it (the larger of two estimates: a shorter queue).
      if (this.policy.tenantHeader !== null) {
        const own = this.queue.countOf(w.priority, w.tenant);
        const rate = own > 0 ? this.tenantRate(now, w.priority, w.tenant) : 0;
        if (rate > 0) wait = Math.max(wait, (own + 1) / rate);
      }
      if (wait > admissionBound(this.policy.queueTimeoutMs, per)) return this.refusal(w, `it could not start within the queue timeout of ${this.policy.queueTimeoutMs} ms`);
      if (wait + service > budgetMs) return this.refusal(w, `it could not be answered within the ${Math.round(budgetMs)} ms left of its timeout`);
    } else if (this.policy.queueTimeoutMs === 0) return this.refusal(w, 'the model is at its limit and the queue timeout is 0');
    let displaced: W | undefined;
    if (this.queue.size >= this.policy.queue) {
      displaced = this.queue.victim(w.priority, w.tenant);
      if (displaced === undefined) return this.refusal(w, 'the queue is full');
      this.queue.remove(displaced);
      this.refused[displaced.priority]!++;
    }
    this.queue.push(w);
    w.deadline = now + Math.min(this.policy.queueTimeoutMs, budgetMs);
    const overtaken = service !== null && pace !== null && w.priority < 2 ? this.overtaken(now, w, this.perCompletion(service, pace)) : undefined;
    return { kind: 'wait', deadline: w.deadline, displaced, overtaken };
  }

  /**
   * An arrival of a higher class goes before the waiters of lower ones: the last of them (the
   * lowest class's, from its longest tenant queue), expected to start after all that waits and the
   * share higher classes keep taking, is refused now when that is later than one completion before
   * its deadline: waiting would only end in a refusal after the whole queue timeout. Not at the
   * admission bound: the share taken by higher classes was already counted when it was admitted,
   * so a steady mix keeps its estimate where it was, at that bound, and each arrival's noise would
   * refuse the tail after it had waited.
   */
  private overtaken(now: number, w: W, perCompletion: number): W[] | undefined {
    let out: W[] | undefined;
    for (;;) {
      const v = this.queue.victim(w.priority, w.tenant);
      if (v === undefined || v.priority <= w.priority) return out;
      // Behind all that waits, and behind the higher classes still to come, as an arrival's estimate.
      const left = 1 - this.higherRate(now, v.priority) * perCompletion;
      if (left >= MIN_SHARE_LEFT && now + (this.queue.size * perCompletion) / left <= v.deadline - perCompletion) return out;
      this.queue.remove(v);
      this.refused[v.priority]!++;
      (out ??= []).push(v);
    }
  }

  /** A request of class `priority` is sent to the model now: the tag to give back to `settled`. */
  started(now: number, priority: Priority = 1, tenant = ''): number {
    this.startRates[priority] = bump(this.startRates[priority], now);
    if (this.policy.tenantHeader !== null) {
      const key = `${priority}\u0000${tenant}`;
      const r = this.tenantRates.get(key);
      if (r !== undefined) bump(r, now);
      else {
        if (this.tenantRates.size >= MAX_RATES) this.sweepRates(now);
        this.tenantRates.set(key, bump(undefined, now));
      }
    }
    const tag = this.adaptive === null ? 0 : this.adaptive.started(now, this.inflight);
    this.inflight++;
    return tag;
  }

  /**
   * A sent request is over; `latencyMs` is the model's answer time, null when it did not answer
   * (an error, the client left, a timeout): only real answers teach the limit and the estimate.
   */
  settled(now: number, latencyMs: number | null, tag: number): void {
    // Saturated: requests wait, so the freed slot is taken at once (an interval then is the model's
    // cadence and the gateway's delays, no idle time).
    const saturated = this.queue.size > 0;
    this.inflight--;
    // Completions at a limit lowered for a probe, or still growing from the start, are slower than the model's pace.
    const paced = this.adaptive === null || this.adaptive.steadyLimit === this.adaptive.limit;
    if (saturated && paced && this.lastSaturatedSettle !== null) this.cycle.add(now - this.lastSaturatedSettle);
    this.lastSaturatedSettle = saturated ? now : null;
    if (latencyMs === null) return;
    this.service.add(latencyMs);
    this.adaptive?.sample(now, latencyMs, tag);
  }

  /**
   * Whether one more request may start at once without taking a waiter's turn: under the limit
   * with nobody waiting. A hedge asks this and, if not, is not sent (it never waits for a slot).
   */
  spare(): boolean {
    const limit = this.limit;
    return limit > 0 && this.inflight < limit && this.queue.size === 0;
  }

  /** The next waiter that may start now (the caller starts it, calling `started`), if any. */
  next(): W | undefined {
    const limit = this.limit;
    if (limit === 0 || this.inflight >= limit) return undefined;
    return this.queue.pop();
  }

  /** A waiter left before it started (its client went, its deadline passed); false if it was not waiting. */
  leave(w: W): boolean {
    return this.queue.remove(w);
  }

  /** A waiter timed out: count its refusal. */
  timedOut(w: W): void {
    this.refused[w.priority]!++;
  }

  /**
   * Retry-After in whole seconds: the time to drain what is queued and in flight at the observed
   * service time and the current limit (at least 1 s; while holding, the scale-from-zero bound).
   */
  retryAfterS(): number {
    const service = this.service.ms;
    const limit = this.limit;
    if (limit === 0) return Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(this.policy.scaleFromZeroMs / 1000)));
    if (service === null) return 1;
    const drainMs = (this.queue.size + this.inflight) * this.perCompletion(service, this.adaptive?.steadyLimit ?? limit);
    return Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(drainMs / 1000)));
  }

  /** Requests of the classes above `p` started per ms lately (× the time per completion: the share of the model they take). */
  private higherRate(now: number, p: Priority): number {
    let rate = 0;
    for (let q = 0; q < p; q++) rate += rateAt(this.startRates[q], now);
    return rate;
  }

  /** Requests of class `p` and `tenant` started per ms lately (with a tenant header). */
  private tenantRate(now: number, p: Priority, tenant: string): number {
    return rateAt(this.tenantRates.get(`${p}\u0000${tenant}`), now);
  }

  /** Forget the tenants that started nothing lately. */
  private sweepRates(now: number): void {
    for (const [key, r] of this.tenantRates) if (decayed(r, now) < IDLE_RATE_PER_MS) this.tenantRates.delete(key);
  }

  /** Ms between two completions while saturated: measured, and at least service time / limit. */
  private perCompletion(service: number, limit: number): number {
    return Math.max(service / limit, this.cycle.ms ?? 0);
  }

  private refusal(w: W, why: string): Arrival<W> {
    this.refused[w.priority]!++;
    return { kind: 'refuse', retryAfterS: this.retryAfterS(), why };
  }
}
