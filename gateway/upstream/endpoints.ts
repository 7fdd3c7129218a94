/**
 * The endpoints of one upstream and the choice of one for the next attempt, for REST and gRPC
 * alike (what one endpoint holds is the protocol's: an Http1Pool, or a set of h2 sessions).
 *
 * Algorithm:
 * - When the endpoint source knows the upstream's Service (EndpointSlices), the set follows its
 *   ready, non-terminating endpoints: an address seen for the first time is opened (`open`), one
 *   that left is retired (`retire`: no new work; what is in flight finishes, then it closes).
 *   Otherwise the one endpoint is the Service address, after `--resolve`.
 * - `pick(avoid)`: endpoint health's pick (routing/health/endpoints.ts): never an ejected endpoint,
 *   nor one that failed this request (`avoid`) while another is left; the cheaper of two distinct
 *   random ones by peak-EWMA latency × work in flight, slow start for a new or returning one.
 *   `otherReady(tried)`: whether such another is left at all (a hedge needs one). A Mapping's
 *   `load_balancer` (`Balancing`) picks instead (routing/table/balance-policy.ts: round robin, or its
 *   consistent-hash table, rebuilt at each `refresh`), under the same rules; its endpoints come from
 *   the Service's `http`/`grpc` port's slices when the route names no port.
 * - `attemptEnded`: each attempt's outcome (forward/outcome.ts) judged against the other endpoints:
 *   an ejection is told to `HealthSettings.ejected`, and its end to `returned` when it is over.
 * - An address that cannot be opened (the client library refuses it) makes the upstream `invalid`
 *   with the reason; routing/ validates addresses, so this is the last guard: a pick never throws.
 * - Lifetimes: this set owns its endpoints. One that leaves the ready list (or every one, when the
 *   source forgets the Service: its slices deleted, EndpointSlices forbidden) is retired at the next
 *   look (`refresh`, also pushed by the registry when the source changes); all of them when the
 *   upstream itself is retired (`retire`). A retired set still serves the requests that chose it
 *   before it left, on endpoints retired as they open.
 */
import { DEFAULT_OUTLIER_POLICY, EndpointHealth, judge, pickEndpoint, type Ejection, type OutlierPolicy } from '../../routing/health/endpoints.js';
import { PolicyBalancer } from '../../routing/table/balance-policy.js';
import type { LoadBalancer } from '../../routing/emissary/mapping-policy.js';
import type { OutcomeKind, Upstream } from '../../routing/types.js';
import { REAL_CLOCK, type Clock } from './clock.js';

/** Ready endpoints of a Service port; undefined when unknown (then the Service address is dialled). */
export interface EndpointSource {
  endpointsOf(service: string, namespace: string, port: 'http' | 'grpc' | number): readonly { readonly host: string; readonly port: number }[] | undefined;
}

type Address = { readonly host: string; readonly port: number };
const NONE: readonly Address[] = Object.freeze([]);

/** Where to dial an upstream, after `--resolve`. */
export function dialTarget(up: Upstream, resolve: ReadonlyMap<string, Address>): Address {
  return resolve.get(`${up.host}:${up.port}`) ?? { host: up.host, port: up.port };
}

/** What the pick compares: the work in flight on one endpoint, and its health. */
export interface Balanced {
  readonly outstanding: number;
  readonly health: EndpointHealth;
}

/**
 * How a protocol opens an endpoint (may throw for an address it refuses) and retires one that
 * left. `ended`: what the endpoint calls with each attempt's outcome (its `attemptEnded`).
 */
export interface EndpointKind<E> {
  open(host: string, port: number, health: EndpointHealth, ended: (kind: OutcomeKind, latencyMs: number) => void): E;
  retire(endpoint: E): void;
}

/** Endpoint health for one upstream (docs/routing.md#endpoint-health). */
export interface HealthSettings {
  /** The detector's settings; `eject` false: nothing is ejected (the pick stays latency-aware). */
  readonly policy: OutlierPolicy;
  readonly eject: boolean;
  readonly clock?: Clock | undefined;
  readonly random?: (() => number) | undefined;
  /** An endpoint (`host:port`) was ejected: counted, logged, posted. */
  ejected?(address: string, ejection: Ejection): void;
  /** That ejection is over (told once per ejection, never for one its endpoint left during). */
  returned?(address: string, ejection: Ejection): void;
  /** The endpoint left its upstream (retired): whatever was told of it goes. */
  retired?(address: string): void;
}

export const DEFAULT_HEALTH: HealthSettings = { policy: DEFAULT_OUTLIER_POLICY, eject: true };

/**
 * A Mapping's `load_balancer` for this upstream, and the Service port whose EndpointSlices list its
 * endpoints when the route names none (a Mapping's `service` is a port number; Seldon names its
 * Services' ports `http` and `grpc`).
 */
export interface Balancing {
  readonly lb: LoadBalancer;
  readonly port: 'http' | 'grpc';
}

export class EndpointSet<E extends Balanced> {
  /** The Service address, when the source does not know the endpoints. */
  private service: E | undefined;
  private readonly byAddress = new Map<string, E>();
  /** The source's list last seen (lists are replaced, never changed, so identity says "same"). */
  private seen: readonly Address[] | undefined;
  private ready: E[] = [];
  /** Endpoints opened now start slow (they join a set that had others). */
  private slowStart = false;
  /** The upstream left every route: endpoints are retired as they open. */
  private retired = false;
  /** Why this upstream cannot be dialled (an address the client refuses), once found out. */
  invalid: string | undefined;
  private readonly clock: Clock;
  private readonly random: () => number;
  /** A Mapping's load balancer (undefined: the gateway's own pick); this set owns it and its table. */
  private readonly balancer: PolicyBalancer<E> | undefined;
  /** The Service port the source is asked for. */
  private readonly port: 'http' | 'grpc' | undefined;

  constructor(
    private readonly upstream: Upstream,
    private readonly resolve: ReadonlyMap<string, Address>,
    private readonly source: EndpointSource | undefined,
    private readonly kind: EndpointKind<E>,
    private readonly health: HealthSettings = DEFAULT_HEALTH,
    balancing?: Balancing,
  ) {
    this.clock = health.clock ?? REAL_CLOCK;
    this.random = health.random ?? Math.random;
    this.balancer = balancing === undefined ? undefined : new PolicyBalancer<E>(balancing.lb, health.policy);
    this.port = upstream.service?.portName ?? balancing?.port;
  }

  /** False only when the Service is known and has no ready endpoint. */
  hasReady(): boolean {
    const ready = this.endpoints();
    return ready === undefined || ready.length > 0;
  }

  /** Whether a ready endpoint is not ejected (true when the Service address is dialled): false when the pick could only go to an ejected one. */
  inService(): boolean {
    const ready = this.endpoints();
    if (ready === undefined) return true;
    const now = this.clock.now();
    for (const e of ready) if (!e.health.isEjected(now)) return true;
    return false;
  }

  /**
   * The endpoint for the next attempt; `avoid` (those that failed this request) only if nothing else
   * is left; `hash`: the request's key under a Mapping's hashing load balancer.
   */
  pick(avoid?: readonly EndpointHealth[], hash?: number): E | undefined {
    const ready = this.endpoints();
    if (ready === undefined) return this.serviceEndpoint();
    const b = this.balancer;
    if (b !== undefined) return b.pick(ready, avoid, hash, this.clock.now(), this.random);
    return pickEndpoint(ready, avoid, this.clock.now(), this.health.policy, this.random);
  }

  /**
   * Whether a ready endpoint neither ejected nor among `tried` is left: where a hedge may go (a
   * hedge never goes where its request went already, nor to the Service address alone).
   */
  otherReady(tried: readonly EndpointHealth[]): boolean {
    const ready = this.endpoints();
    if (ready === undefined) return false;
    const now = this.clock.now();
    for (const e of ready) if (!tried.includes(e.health) && !e.health.isEjected(now)) return true;
    return false;
  }

  /** The endpoints the source lists now, each with its health (for /routes); undefined: the Service address is dialled. */
  listed(): readonly E[] | undefined {
    return this.endpoints();
  }

  /** An attempt on `e` ended: judged against the others; an ejection is told, and its end once over. */
  private attemptEnded(e: E, kind: OutcomeKind, latencyMs: number): void {
    // The Service address alone: nothing to compare it with, nothing to pick between.
    if (e === this.service) return;
    const now = this.clock.now();
    const ejection = judge(e.health, this.ready, kind, latencyMs, now, this.health.policy, this.health.eject);
    if (ejection === undefined) return;
    const address = e.health.address;
    this.health.ejected?.(address, ejection);
    const returned = this.health.returned;
    if (returned === undefined) return;
    const timer = this.clock.setTimeout((a) => returned(a, ejection), Math.max(0, ejection.until - now), address);
    timer.unref?.();
  }

  /** No new work for `e`; what is in flight finishes, then it closes; what was told of it goes. */
  private retireEndpoint(e: E): void {
    this.kind.retire(e);
    this.health.retired?.(e.health.address);
  }

  /**
   * The upstream left the table: every endpoint is retired (in-flight work finishes, then it
   * closes), and any opened later for a straggler is retired at once.
   */
  retire(): void {
    this.retired = true;
    for (const e of this.all()) this.retireEndpoint(e);
    this.byAddress.clear();
    this.service = undefined;
    this.ready = [];
    // A straggler's next look opens (retired) endpoints from the source's list as it is then.
    this.seen = undefined;
  }

  /** Every endpoint opened and not retired (for close). */
  all(): E[] {
    const list = [...this.byAddress.values()];
    if (this.service !== undefined) list.push(this.service);
    return list;
  }

  /** Ready endpoints from the source, or undefined when it does not know this upstream. */
  private endpoints(): readonly E[] | undefined {
    const svc = this.upstream.service;
    const port = this.port;
    if (this.source === undefined || svc === undefined || port === undefined) return undefined;
    const list = this.source.endpointsOf(svc.name, svc.namespace, port);
    if (list === undefined) {
      // The source forgot the Service (slices deleted, or EndpointSlices now forbidden): its pods' endpoints go.
      if (this.seen !== undefined) this.refresh(NONE);
      this.seen = undefined;
      return undefined;
    }
    if (list !== this.seen) this.refresh(list);
    return this.ready;
  }

  private refresh(list: readonly Address[]): void {
    // A set that had endpoints ramps new ones up (slow start); the first list starts level.
    this.slowStart = this.seen !== undefined && this.ready.length > 0;
    this.seen = list;
    const keep = new Set<string>();
    const ready: E[] = [];
    for (const { host, port } of list) {
      const address = `${host}:${port}`;
      keep.add(address);
      let e = this.byAddress.get(address);
      if (e === undefined) {
        e = this.open(host, port);
        if (e === undefined) continue;
        this.byAddress.set(address, e);
      }
      ready.push(e);
    }
    this.ready = ready;
    // A hashing load balancer's table follows the set: built now, once per change.
    this.balancer?.rebuild(ready);
    for (const [address, e] of this.byAddress) {
      if (keep.has(address)) continue;
      // Gone, not ready or terminating: no new work; what is in flight finishes, then it closes.
      this.byAddress.delete(address);
      this.retireEndpoint(e);
    }
  }

  private serviceEndpoint(): E | undefined {
    if (this.service === undefined) {
      if (this.invalid !== undefined) return undefined;
      const t = dialTarget(this.upstream, this.resolve);
      this.service = this.open(t.host, t.port);
    }
    return this.service;
  }

  private open(host: string, port: number): E | undefined {
    try {
      const health = new EndpointHealth(`${host}:${port}`, this.clock.now(), this.slowStart);
      const ended = (kind: OutcomeKind, latencyMs: number): void => this.attemptEnded(e, kind, latencyMs);
      const e = this.kind.open(host, port, health, ended);
      // Opened for a straggler of a retired upstream: it serves that request, then closes.
      if (this.retired) this.retireEndpoint(e);
      return e;
    } catch (err) {
      this.invalid = `${host}:${port}: ${(err as Error).message}`;
      return undefined;
    }
  }
}
