/**
 * The upstreams of one protocol, each shared by every request, call and mirror to it (REST's
 * HTTP/1.1 pools, gRPC's h2 sessions).
 *
 * Algorithm: one entry per `upstreamKey` (scheme, address, breaker limits: docs/routing.md#timeouts-retries-and-circuit-breakers),
 * created on first use and cached per Backend object (a WeakMap), so the hot path builds no key.
 * `sweep(table)`, run now and then (not per change), retires the entries no route of this
 * protocol names any more (deployments deleted or moved) once their breaker counts nothing in
 * flight.
 */
import type { Breaker } from './breaker.js';
import type { Backend, Protocol, RouteTable } from '../../routing/types.js';

/** What the registry needs of an upstream. */
export interface UpstreamEntry {
  readonly breaker: Breaker;
  /** False only when the Service is known and has no ready endpoint. */
  hasReady(): boolean;
}

export abstract class UpstreamRegistry<U extends UpstreamEntry> {
  private readonly byKey = new Map<string, U>();
  private readonly byBackend = new WeakMap<Backend, U>();

  constructor(private readonly kind: Protocol) {}

  /** The key's scheme for a backend (e.g. `https`/`http`, `h2`/`h2c`). */
  protected abstract scheme(backend: Backend): string;
  protected abstract create(backend: Backend): U;
  /** Close a swept entry (it has nothing in flight). */
  protected abstract retire(entry: U): void;

  /** The upstream of a backend. */
  for(backend: Backend): U {
    let u = this.byBackend.get(backend);
    if (u) return u;
    const key = upstreamKey(backend, this.scheme(backend));
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
   * Close the upstreams no route of `table` names any more, once they have nothing in flight;
   * returns how many.
   */
  sweep(table: RouteTable): number {
    const live = liveUpstreamKeys(table, (b) => this.scheme(b), this.kind);
    let closed = 0;
    for (const [key, u] of this.byKey) {
      if (live.has(key) || u.breaker.inFlight > 0) continue;
      this.byKey.delete(key);
      this.retire(u);
      closed++;
    }
    return closed;
  }

  /** Take every entry out (for close and destroy). */
  protected drain(): U[] {
    const all = [...this.byKey.values()];
    this.byKey.clear();
    return all;
  }
}

/** One upstream per address, TLS and breaker limits (docs/routing.md#timeouts-retries-and-circuit-breakers). */
export function upstreamKey(backend: Backend, scheme: string): string {
  const up = backend.upstream;
  const b = backend.breaker;
  // Endpoint health's settings are the upstream's too: backends that differ in them do not share one.
  const outlier = backend.outlier === undefined ? '' : `|${JSON.stringify(backend.outlier)}`;
  return `${scheme}://${up.host}:${up.port}|${b.maxConnections}/${b.maxPendingRequests}/${b.maxRequests}/${b.maxRetries}${outlier}`;
}

/** The upstream keys every member and mirror of `table` uses (of one kind of route, if given). */
export function liveUpstreamKeys(table: RouteTable, scheme: (b: Backend) => string, kind?: Protocol): Set<string> {
  const live = new Set<string>();
  for (const g of table.groups) {
    if (kind !== undefined && g.kind !== kind) continue;
    for (const m of g.members) live.add(upstreamKey(m.backend, scheme(m.backend)));
    for (const m of g.mirrors) live.add(upstreamKey(m.backend, scheme(m.backend)));
  }
  return live;
}
