/**
 * The endpoints of one upstream and the choice of one for the next attempt, for REST and gRPC
 * alike (what one endpoint holds is the protocol's: an Http1Pool, or a set of h2 sessions).
 *
 * Algorithm:
 * - When the endpoint source knows the upstream's Service (EndpointSlices), the set follows its
 *   ready, non-terminating endpoints: an address seen for the first time is opened (`open`), one
 *   that left is retired (`retire`: no new work; what is in flight finishes, then it closes).
 *   Otherwise the one endpoint is the Service address, after `--resolve`.
 * - `pick(avoid)`: the less busy (fewer `outstanding`) of two random ready endpoints (power of two
 *   choices, so equal loads spread evenly); `avoid`, the endpoint whose attempt just failed, only
 *   when no other is ready.
 * - An address that cannot be opened (the client library refuses it) makes the upstream `invalid`
 *   with the reason; routing/ validates addresses, so this is the last guard: a pick never throws.
 */
import type { Upstream } from '../../routing/types.js';

/** Ready endpoints of a Service port; undefined when unknown (then the Service address is dialled). */
export interface EndpointSource {
  endpointsOf(service: string, namespace: string, port: 'http' | 'grpc' | number): readonly { readonly host: string; readonly port: number }[] | undefined;
}

type Address = { readonly host: string; readonly port: number };

/** Where to dial an upstream, after `--resolve`. */
export function dialTarget(up: Upstream, resolve: ReadonlyMap<string, Address>): Address {
  return resolve.get(`${up.host}:${up.port}`) ?? { host: up.host, port: up.port };
}

/** What the pick compares: the work in flight on one endpoint. */
export interface Balanced {
  readonly outstanding: number;
}

/** How a protocol opens an endpoint (may throw for an address it refuses) and retires one that left. */
export interface EndpointKind<E> {
  open(host: string, port: number): E;
  retire(endpoint: E): void;
}

export class EndpointSet<E extends Balanced> {
  /** The Service address, when the source does not know the endpoints. */
  private service: E | undefined;
  private readonly byAddress = new Map<string, E>();
  /** The source's list last seen (lists are replaced, never changed, so identity says "same"). */
  private seen: readonly Address[] | undefined;
  private ready: E[] = [];
  /** Why this upstream cannot be dialled (an address the client refuses), once found out. */
  invalid: string | undefined;

  constructor(
    private readonly upstream: Upstream,
    private readonly resolve: ReadonlyMap<string, Address>,
    private readonly source: EndpointSource | undefined,
    private readonly kind: EndpointKind<E>,
  ) {}

  /** False only when the Service is known and has no ready endpoint. */
  hasReady(): boolean {
    const ready = this.endpoints();
    return ready === undefined || ready.length > 0;
  }

  /** The endpoint for the next attempt; `avoid` (the one that just failed) only if nothing else is ready. */
  pick(avoid?: E): E | undefined {
    const ready = this.endpoints();
    if (ready === undefined) return this.serviceEndpoint();
    const n = ready.length;
    if (n <= 1) return ready[0];
    let a = ready[Math.floor(Math.random() * n)]!;
    let b = ready[Math.floor(Math.random() * n)]!;
    if (a === avoid) [a, b] = [b, a];
    if (b === avoid || a === b) return a !== avoid ? a : (ready.find((e) => e !== avoid) ?? a);
    return b.outstanding < a.outstanding ? b : a;
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
    if (this.source === undefined || svc?.portName === undefined) return undefined;
    const list = this.source.endpointsOf(svc.name, svc.namespace, svc.portName);
    if (list === undefined) return undefined;
    if (list !== this.seen) this.refresh(list);
    return this.ready;
  }

  private refresh(list: readonly Address[]): void {
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
    for (const [address, e] of this.byAddress) {
      if (keep.has(address)) continue;
      // Gone, not ready or terminating: no new work; what is in flight finishes, then it closes.
      this.byAddress.delete(address);
      this.kind.retire(e);
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
      return this.kind.open(host, port);
    } catch (err) {
      this.invalid = `${host}:${port}: ${(err as Error).message}`;
      return undefined;
    }
  }
}
