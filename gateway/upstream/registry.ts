/**
 * The upstreams of one protocol, each shared by every request, call and mirror to it (REST's
 * HTTP/1.1 pools, gRPC's h2 sessions).
 *
 * Algorithm: one entry per `upstreamKey` (scheme, address, breaker limits: docs/routing.md#timeouts-retries-and-circuit-breakers),
 * created on first use and cached per Backend object (a WeakMap), so the hot path builds no key.
 *
 * Lifetimes (docs/architecture.md#lifetimes): this registry owns its entries. `sweep(table)`, run at
 * every table change, retires at once each entry no route of this protocol names any more
 * (deployments deleted, predictors renamed, Services, breaker limits or hedging changed; the
 * hedging state an entry holds, and its delay's metric series, go with it), as Envoy drains a
 * removed cluster: idle connections and sessions close now, requests in flight finish, then it
 * closes. A request that chose the entry before it left (it matched on the table before) still gets
 * it through its Backend and is served by it, never refused; once no table or request holds that
 * Backend, the entry is garbage. `refreshEndpoints()`, run when the endpoint source changes, lets each
 * live entry retire the endpoints that left without waiting for its next request.
 */
import type { Breaker } from './breaker.js';
import type { Balancing } from './endpoints.js';
import type { Backend, Protocol, RouteTable } from '../../routing/types.js';
import { joined } from '../../routing/values/text.js';

/** What the registry needs of an upstream. */
export interface UpstreamEntry {
  readonly breaker: Breaker;
  /** False only when the Service is known and has no ready endpoint. */
  hasReady(): boolean;
  /** Whether a ready endpoint is not ejected (true when the Service address is dialled). */
  inService(): boolean;
}

export abstract class UpstreamRegistry<U extends UpstreamEntry> {
  private readonly byKey = new Map<string, U>();
  private readonly byBackend = new WeakMap<Backend, U>();
  /** Each Backend's key, built once (a sweep looks at every member of the table). */
  private readonly keys = new WeakMap<Backend, string>();

  constructor(private readonly kind: Protocol) {}

  /** The key's scheme for a backend (e.g. `https`/`http`, `h2`/`h2c`). */
  protected abstract scheme(backend: Backend): string;
  protected abstract create(backend: Backend): U;
  /** Retire an entry no route names any more: idle connections close now, in-flight work finishes. */
  protected abstract retire(entry: U): void;

  /** The upstream of a backend. */
  for(backend: Backend): U {
    let u = this.byBackend.get(backend);
    if (u) return u;
    const key = this.keyOf(backend);
    u = this.byKey.get(key);
    if (!u) {
      u = this.create(backend);
      this.byKey.set(key, u);
    }
    this.byBackend.set(backend, u);
    return u;
  }

  /**
   * For `match`: a member whose Service has no ready endpoint leaves the weighted pick, unless flow
   * control holds its requests until one is ready (`scaleFromZero`, docs/flow-control.md#scale-from-zero).
   */
  readonly eligible = (backend: Backend): boolean => this.for(backend).hasReady() || (backend.flow !== null && backend.flow.scaleFromZeroMs > 0);

  /**
   * For a fallback (pipeline/fallback.ts): why `backend` cannot take a request now: no ready endpoint
   * (`cold` when flow control would hold it at zero), or only ejected ones (`unavailable`); undefined when it can.
   */
  readonly unready = (backend: Backend): 'unavailable' | 'cold' | undefined => {
    const u = this.for(backend);
    if (!u.hasReady()) return backend.flow !== null && backend.flow.scaleFromZeroMs > 0 ? 'cold' : 'unavailable';
    return u.inService() ? undefined : 'unavailable';
  };

  /** Retire the upstreams no route of `table` names any more, nor `keep` (the operator's fallback targets); returns how many. */
  sweep(table: RouteTable, keep: readonly Backend[] = NONE): number {
    const live = new Set<string>();
    for (const b of keep) live.add(this.keyOf(b));
    for (const g of table.groups) {
      if (g.kind !== this.kind) continue;
      for (const m of g.members) live.add(this.keyOf(m.backend));
      for (const m of g.mirrors) live.add(this.keyOf(m.backend));
    }
    let retired = 0;
    for (const [key, u] of this.byKey) {
      if (live.has(key)) continue;
      this.byKey.delete(key);
      this.retire(u);
      retired++;
    }
    return retired;
  }

  /** The endpoint source changed: every upstream looks at its endpoints now (those that left are retired). */
  refreshEndpoints(): void {
    for (const u of this.byKey.values()) u.hasReady();
  }

  /** Upstreams held now (for tests and the soak's figures). */
  get size(): number {
    return this.byKey.size;
  }

  /** Take every entry out (for close and destroy). */
  protected drain(): U[] {
    const all = [...this.byKey.values()];
    this.byKey.clear();
    return all;
  }

  private keyOf(backend: Backend): string {
    let key = this.keys.get(backend);
    if (key === undefined) this.keys.set(backend, (key = upstreamKey(backend, this.scheme(backend))));
    return key;
  }
}

/** One upstream per address, TLS and breaker limits (docs/routing.md#timeouts-retries-and-circuit-breakers). */
export function upstreamKey(backend: Backend, scheme: string): string {
  const up = backend.upstream;
  const b = backend.breaker;
  // Endpoint health's settings are the upstream's too, and so is hedging's state (its estimate,
  // budget and delay): backends that differ in them do not share one.
  const outlier = backend.outlier === undefined ? '' : `|${JSON.stringify(backend.outlier)}`;
  const hedge = backend.hedge === null ? '' : `|hedge ${backend.hedge.text}`;
  // So are a Mapping's load balancer, connection settings, TLS context and cluster_tag (Emissary's cluster of its own).
  const m = backend.mapping;
  const mapping =
    m === null || (m.loadBalancer === null && m.connection === null && m.tlsContext === null && m.clusterTag === null)
      ? ''
      : `|${JSON.stringify([m.loadBalancer, m.connection, m.tlsContext, m.clusterTag])}`;
  // One flat string: the registry keeps a key for every backend of the table (routing/values/text.ts).
  return joined(scheme, '://', up.host, ':', `${up.port}|${b.maxConnections}/${b.maxPendingRequests}/${b.maxRequests}/${b.maxRetries}`, outlier, hedge, mapping);
}

/** A Mapping's load balancer for an upstream, with the Service port its endpoints are listed under. */
export function balancingOf(backend: Backend, port: 'http' | 'grpc'): Balancing | undefined {
  const lb = backend.mapping?.loadBalancer;
  return lb == null ? undefined : { lb, port };
}

const NONE: readonly Backend[] = [];
