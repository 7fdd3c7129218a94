/**
 * Flow control in one process (docs/flow-control.md): one state per predictor under a
 * `seldon.io/gateway-flow` policy, the requests waiting in it, their timers, and the demand the
 * KEDA side reports. The decisions are routing/flow/core.ts's; this file owns the clock, the timers
 * and the requests, through the protocol-neutral `FlowExchange` (the pipeline's flow stage,
 * gateway/pipeline/flow.ts, adapts a request of either protocol to it).
 *
 * - A predictor's state is keyed by its backend id (`ns/sdep/pred`, REST and gRPC together: they
 *   reach the same model pods) and kept across table swaps while its policy is unchanged; a changed
 *   policy starts a new state (what waits in the old one still drains from it).
 * - The ready endpoint count follows the EndpointSlices (with endpoint routing; 1 otherwise): a
 *   fixed limit follows it, and requests held while at zero go out, in order, once one is ready.
 * - A slot is held from `forward` until the exchange settles (answered, failed, client gone);
 *   only a model's answer teaches the adaptive limit and the service time estimate.
 * - Backends without a policy never reach this file (`backend.flow === null` is the whole cost).
 */
import type { Backend, RouteTable } from '../../routing/types.js';
import { FlowCore, FlowWaiter, type Sharing } from '../../routing/flow/core.js';
import { PRIORITY_HEADER, priorityOf } from '../../routing/flow/queue.js';
import type { FlowDemandSource, PredictorDemand, ReplicaCount } from './demand.js';
import type { WatchedEndpoints } from '../observe/route-gauges.js';
import type { FlowStats } from '../observe/flow-metrics.js';
import { REAL_CLOCK, type Clock, type Timer } from '../upstream/clock.js';

/** A flow refusal, which each protocol renders: REST 503 `OVERLOADED` with Retry-After, gRPC trailers-only UNAVAILABLE. */
export interface FlowRefusal {
  readonly message: string;
  readonly retryAfterS: number;
  /** The client's own deadline (gRPC's grpc-timeout) ended the wait: a deadline, not an overload. */
  readonly clientDeadline?: boolean;
}

/** A slot at the model, held by one exchange until it settles. */
export interface FlowSlot {
  /** How long the request waited for its slot, in ms: it counts against its route timeout (holding at zero does not). */
  readonly waitedMs: number;
  /** The exchange is over; `answered`: the model answered it (its latency then teaches the limit). Idempotent. */
  release(answered: boolean): void;
  /**
   * Another slot for the same request, now, when one is free and nobody waits: a hedge's
   * (docs/routing.md#hedged-requests), which is never queued; undefined when there is none.
   */
  spare(): FlowSlot | undefined;
}

/** What flow control needs of one request, whatever its protocol. */
export interface FlowExchange {
  readonly backend: Backend;
  header(name: string): string | undefined;
  /** Ms left before the client's own deadline (gRPC's grpc-timeout) at `now`; Infinity without one. */
  deadlineMs(now: number): number;
  /** Call `listener` when the client leaves (or the exchange ends): it frees the place of a request still waiting, and does nothing after. */
  onGone(listener: () => void): void;
  refuse(refusal: FlowRefusal): void;
  /** Send it to the model, holding `slot` until it settles. */
  forward(slot: FlowSlot): void;
}

/** A request under flow control, from arrival to the end of its exchange. */
class Ticket extends FlowWaiter implements FlowSlot {
  timer: Timer | undefined;
  waitedMs = 0;
  /** The client's deadline, not queueTimeout or scaleFromZero, bounds the wait. */
  clientBound = false;
  private tag = 0;
  private startedAt = 0;
  private released = true;
  constructor(
    priority: 0 | 1 | 2,
    tenant: string,
    readonly ex: FlowExchange,
    readonly flow: PredictorFlow,
    readonly arrivedAt: number,
    /** Held while no endpoint was ready: the wait does not count against the route timeout. */
    readonly held: boolean,
  ) {
    super(priority, tenant);
  }

  start(now: number): void {
    this.tag = this.flow.core.started(now, this.priority, this.tenant);
    this.startedAt = now;
    this.released = false;
    if (!this.held) this.waitedMs = now - this.arrivedAt;
  }

  spare(): FlowSlot | undefined {
    const flow = this.flow;
    if (!flow.core.spare()) return undefined;
    const now = flow.controller.now();
    const t = new Ticket(this.priority, this.tenant, this.ex, flow, now, this.held);
    t.start(now);
    flow.controller.pump(flow);
    return t;
  }

  release(answered: boolean): void {
    if (this.released) return;
    this.released = true;
    const flow = this.flow;
    const now = flow.controller.now();
    flow.core.settled(now, answered ? now - this.startedAt : null, this.tag);
    flow.controller.pump(flow);
  }
}

/** One predictor's flow control in this process. */
export class PredictorFlow {
  readonly core: FlowCore<Ticket>;
  /** `ns/service` of its Service, for endpoint changes (undefined: not a cluster Service). */
  readonly serviceKey: string | undefined;
  /** Requests its fallback is answering while it is at zero (`coldFallback`): they count in its demand. */
  coldDemand = 0;
  constructor(
    readonly controller: FlowController,
    readonly backend: Backend,
    random: () => number,
    sharing: Sharing,
    /** Refusals counted by the states it replaced (same predictor, older policy), by class. */
    readonly refusedBefore: readonly number[],
  ) {
    this.core = new FlowCore<Ticket>(backend.flow!, random, sharing);
    const svc = backend.upstream.service;
    this.serviceKey = svc ? `${svc.namespace}/${svc.name}` : undefined;
  }

  refusedTotal(): number[] {
    return this.core.refused.map((n, i) => n + (this.refusedBefore[i] ?? 0));
  }
}

export interface FlowControllerOptions {
  /** With endpoint routing: the ready endpoints of each Service, and when they change. */
  readonly endpoints?: WatchedEndpoints | undefined;
  /** The gateway's replicas sharing fixed limits (the KEDA side's count; 1 without it). */
  readonly replicas?: ReplicaCount | undefined;
  /** This process among the cluster's workers (1 and 0 in one process). */
  readonly workers?: number;
  readonly index?: number;
  readonly random?: () => number;
  /** Time and the waiters' timers (upstream/clock.ts); the real one unless a test drives it. */
  readonly clock?: Clock | undefined;
}

const NO_REFUSALS: readonly number[] = [0, 0, 0];

export class FlowController implements FlowDemandSource {
  private readonly byId = new Map<string, PredictorFlow>();
  private readonly byBackend = new WeakMap<Backend, PredictorFlow>();
  private readonly listeners = new Set<() => void>();
  private readonly sharing: Sharing;
  private readonly random: () => number;
  readonly now: () => number;
  private readonly clock: Clock;
  private reshareTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: FlowControllerOptions = {}) {
    const replicas = options.replicas ?? { replicas: () => 1 };
    this.sharing = { replicas: () => replicas.replicas(), workers: options.workers ?? 1, index: options.index ?? 0 };
    this.random = options.random ?? Math.random;
    const clock = (this.clock = options.clock ?? REAL_CLOCK);
    this.now = () => clock.now();
    options.endpoints?.onChange((services) => this.endpointsChanged(services));
    // A replica count that changes (the KEDA side's) moves each process's share of the fixed limits.
    if (options.replicas !== undefined) {
      this.reshareTimer = setInterval(() => {
        for (const f of this.byId.values()) {
          const before = f.core.limit;
          f.core.reshare();
          if (f.core.limit > before) this.pump(f);
        }
      }, 1000);
      this.reshareTimer.unref();
    }
  }

  /** The table changed: keep each predictor's state while its policy is the same, start new ones, drop the rest. */
  tableChanged(table: RouteTable): void {
    const live = new Set<string>();
    for (const g of table.groups) {
      for (const m of g.members) {
        const b = m.backend;
        if (b.flow === null || live.has(b.id)) continue;
        live.add(b.id);
        this.of(b);
      }
    }
    let dropped = false;
    for (const id of [...this.byId.keys()]) {
      if (live.has(id)) continue;
      this.byId.delete(id);
      dropped = true;
    }
    if (dropped) this.changed();
  }

  /** Stop the timers (shutdown); what waits is left to the connections' own ends. */
  close(): void {
    if (this.reshareTimer) clearInterval(this.reshareTimer);
  }

  /** The state of a backend with a flow policy. */
  of(backend: Backend): PredictorFlow {
    let f = this.byBackend.get(backend);
    if (f !== undefined) return f;
    f = this.byId.get(backend.id);
    if (f === undefined || f.core.policy.key !== backend.flow!.key) {
      f = new PredictorFlow(this, backend, this.random, this.sharing, f?.refusedTotal() ?? NO_REFUSALS);
      f.core.setEndpoints(this.readyEndpoints(backend));
      this.byId.set(backend.id, f);
      this.changed();
    }
    this.byBackend.set(backend, f);
    return f;
  }

  /**
   * A request to a backend with a flow policy: sent now, queued, or refused at once. The REST
   * route timeout and a gRPC deadline bound the wait; while the predictor is held at zero only
   * the client's own deadline does (the route timeout starts when the request is sent).
   */
  admit(ex: FlowExchange): void {
    const flow = this.of(ex.backend);
    const core = flow.core;
    const policy = core.policy;
    const now = this.now();
    const held = core.holding;
    const deadline = ex.deadlineMs(now);
    const route = ex.backend.timeoutMs > 0 ? ex.backend.timeoutMs : Infinity;
    const budget = held ? deadline : Math.min(deadline, route);
    const tenant = policy.tenantHeader === null ? '' : (ex.header(policy.tenantHeader) ?? '');
    const t = new Ticket(priorityOf(ex.header(PRIORITY_HEADER)), tenant, ex, flow, now, held);
    t.clientBound = deadline <= (held ? policy.scaleFromZeroMs : Math.min(policy.queueTimeoutMs, route));
    const a = core.arrive(now, t, budget);
    if (a.kind === 'start') {
      t.start(now);
      this.changed();
      ex.forward(t);
      return;
    }
    if (a.kind === 'refuse') {
      this.changed();
      ex.refuse({ message: `${ex.backend.id} is overloaded: ${a.why}`, retryAfterS: a.retryAfterS });
      return;
    }
    t.timer = this.clock.setTimeout(expire, Math.max(0, a.deadline - now), t);
    ex.onGone(() => this.gone(t));
    if (a.displaced !== undefined) this.dropWaiter(a.displaced, `${ex.backend.id} is overloaded: a request of higher priority took its place in the queue`);
    if (a.overtaken !== undefined) for (const o of a.overtaken) this.dropWaiter(o, `${ex.backend.id} is overloaded: requests of higher priority would keep it waiting past its queue timeout`);
    this.changed();
  }

  /**
   * A request to `backend` its fallback answers while it is at zero (pipeline/fallback.ts): counted
   * in the demand KEDA reads for it, as a held request would be, until the returned release runs.
   */
  coldFallback(backend: Backend): () => void {
    const f = this.of(backend);
    f.coldDemand++;
    this.changed();
    let counted = true;
    return () => {
      if (!counted) return;
      counted = false;
      f.coldDemand--;
      this.changed();
    };
  }

  /** Start the waiters a freed slot (or a ready endpoint, or a higher limit) lets go. */
  pump(flow: PredictorFlow): void {
    const core = flow.core;
    for (let t = core.next(); t !== undefined; t = core.next()) {
      this.unwait(t);
      t.start(this.now());
      try {
        t.ex.forward(t);
      } catch {
        t.release(false);
      }
    }
    this.changed();
  }

  private gone(t: Ticket): void {
    if (!t.flow.core.leave(t)) return;
    this.unwait(t);
    this.changed();
  }

  /** A waiter's deadline passed: refused now (counted as a refusal). */
  expired(t: Ticket): void {
    const core = t.flow.core;
    t.timer = undefined;
    if (!core.leave(t)) return;
    core.timedOut(t);
    this.unwait(t);
    const id = t.ex.backend.id;
    const why = t.held
      ? `no endpoint became ready within ${Math.round(this.now() - t.arrivedAt)} ms (scaleFromZero ${core.policy.scaleFromZeroMs} ms)`
      : `it waited ${Math.round(this.now() - t.arrivedAt)} ms without a free slot (queueTimeout ${core.policy.queueTimeoutMs} ms)`;
    this.changed();
    if (t.clientBound) {
      // Its timer and the client's end together: answer what the client's own deadline means (as a
      // forwarded call does), whichever of the two the client sees first.
      const where = t.held ? 'while no endpoint was ready' : 'while waiting for a free slot';
      t.ex.refuse({ message: `the client's deadline expired ${where} at ${id}`, retryAfterS: core.retryAfterS(), clientDeadline: true });
      return;
    }
    t.ex.refuse({ message: `${id} is overloaded: ${why}`, retryAfterS: core.retryAfterS() });
  }

  private dropWaiter(t: Ticket, message: string): void {
    this.unwait(t);
    t.ex.refuse({ message, retryAfterS: t.flow.core.retryAfterS() });
  }

  private unwait(t: Ticket): void {
    if (t.timer !== undefined) this.clock.clearTimeout(t.timer);
    t.timer = undefined;
  }

  private readyEndpoints(b: Backend): number {
    const svc = b.upstream.service;
    if (svc?.portName === undefined) return 1;
    return this.options.endpoints?.endpointsOf(svc.name, svc.namespace, svc.portName)?.length ?? 1;
  }

  private endpointsChanged(services: ReadonlySet<string>): void {
    for (const f of this.byId.values()) {
      if (f.serviceKey === undefined || !services.has(f.serviceKey)) continue;
      f.core.setEndpoints(this.readyEndpoints(f.backend));
      this.pump(f);
    }
  }

  // ---- what metrics, the admin page and the KEDA side read ----

  stats(): FlowStats[] {
    const out: FlowStats[] = [];
    for (const f of this.byId.values()) {
      const o = f.backend.origin;
      const c = f.core;
      out.push({
        namespace: o.namespace,
        deployment: o.deployment,
        predictor: o.predictor,
        concurrency: c.policy.concurrency,
        limit: c.limit,
        inflight: c.inflight,
        queued: c.queue.size + f.coldDemand,
        refused: f.refusedTotal(),
      });
    }
    return out;
  }

  snapshot(): PredictorDemand[] {
    const out: PredictorDemand[] = [];
    for (const f of this.byId.values()) {
      const o = f.backend.origin;
      out.push({ namespace: o.namespace, deployment: o.deployment, predictor: o.predictor, queued: f.core.queue.size + f.coldDemand, inflight: f.core.inflight });
    }
    return out;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    if (this.listeners.size === 0) return;
    for (const l of this.listeners) l();
  }
}

function expire(t: Ticket): void {
  t.flow.controller.expired(t);
}
