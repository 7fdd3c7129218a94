/**
 * Upstream HTTP/1.1 connection pools, their breakers, and the choice of a pod endpoint.
 *
 * One `UpstreamPool` per upstream (address + TLS + breaker limits, SEMANTICS.md §9) holds the
 * breaker and one undici Pool per endpoint: keep-alive, capped at max_connections, never
 * retrying on its own. When the endpoint source knows the upstream's Service (EndpointSlices),
 * each request goes to the ready, non-terminating endpoint with the fewest requests in flight
 * (two random choices, so equal loads spread evenly); a pool whose endpoint left is closed once
 * its requests finish. Otherwise the Service address is dialled, after `--resolve`. The Host
 * header the upstream sees stays the client's either way.
 */
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import { Breaker } from './breaker.js';
import type { Backend, RouteTable, Upstream } from '../../routing/types.js';

export interface UpstreamSettings {
  readonly resolve: ReadonlyMap<string, { host: string; port: number }>;
  readonly connectTimeoutMs: number;
  readonly tlsVerify: boolean;
  readonly caFile?: string | undefined;
  /** Largest upstream response head (status line and headers) accepted; default 60 KiB, as Envoy's. */
  readonly maxResponseHeaderBytes?: number | undefined;
}

/** Ready endpoints of a Service port; undefined when unknown (then the Service address is dialled). */
export interface EndpointSource {
  endpointsOf(service: string, namespace: string, port: 'http' | 'grpc' | number): readonly { readonly host: string; readonly port: number }[] | undefined;
}

/** Where to dial an upstream, after `--resolve`. */
export function dialTarget(up: Upstream, resolve: UpstreamSettings['resolve']): { host: string; port: number } {
  return resolve.get(`${up.host}:${up.port}`) ?? { host: up.host, port: up.port };
}

/** One dialable address with its connection pool and requests in flight. */
export class Endpoint {
  outstanding = 0;
  constructor(
    readonly address: string,
    readonly pool: Pool,
  ) {}
}

type PoolFactory = (host: string, port: number) => Pool;
type Address = { readonly host: string; readonly port: number };

export class UpstreamPool {
  private service: Endpoint | undefined;
  private readonly byAddress = new Map<string, Endpoint>();
  private seen: readonly Address[] | undefined;
  private ready: Endpoint[] = [];
  /** Why this upstream cannot be dialled (an address undici refuses), once found out. */
  invalid: string | undefined;

  constructor(
    /** `host:port` as the route names it, for messages and labels. */
    readonly name: string,
    readonly breaker: Breaker,
    private readonly upstream: Upstream,
    private readonly resolve: UpstreamSettings['resolve'],
    private readonly newPool: PoolFactory,
    private readonly source: EndpointSource | undefined,
  ) {}

  /** Ready endpoints from the source, or undefined when it does not know this upstream. */
  private endpoints(): readonly Endpoint[] | undefined {
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
    this.ready = list.map(({ host, port }) => {
      const address = `${host}:${port}`;
      keep.add(address);
      let e = this.byAddress.get(address);
      if (!e) {
        try {
          this.byAddress.set(address, (e = new Endpoint(address, this.newPool(host, port))));
        } catch (err) {
          this.invalid = `${address}: ${(err as Error).message}`;
          return undefined;
        }
      }
      return e;
    }).filter((e): e is Endpoint => e !== undefined);
    for (const [address, e] of this.byAddress) {
      if (keep.has(address)) continue;
      // Gone, not ready or terminating: no new requests; queued ones finish, then the pool closes.
      this.byAddress.delete(address);
      void e.pool.close().catch(() => undefined);
    }
  }

  /** False only when the Service is known and has no ready endpoint. */
  hasReady(): boolean {
    const e = this.endpoints();
    return e === undefined || e.length > 0;
  }

  /** The endpoint for the next attempt; `avoid` (the one that just failed) only if nothing else is ready. */
  pick(avoid?: Endpoint): Endpoint | undefined {
    const ready = this.endpoints();
    if (ready === undefined) {
      if (!this.service) {
        if (this.invalid !== undefined) return undefined;
        const t = dialTarget(this.upstream, this.resolve);
        try {
          this.service = new Endpoint(`${t.host}:${t.port}`, this.newPool(t.host, t.port));
        } catch (err) {
          // routing/ validates addresses; this is the last guard, so that no request can throw here.
          this.invalid = `${t.host}:${t.port}: ${(err as Error).message}`;
          return undefined;
        }
      }
      return this.service;
    }
    const n = ready.length;
    if (n === 0) return undefined;
    if (n === 1) return ready[0];
    let a = ready[Math.floor(Math.random() * n)]!;
    let b = ready[Math.floor(Math.random() * n)]!;
    if (a === avoid) [a, b] = [b, a];
    if (b === avoid || a === b) {
      if (a !== avoid) return a;
      return ready.find((e) => e !== avoid) ?? a;
    }
    return b.outstanding < a.outstanding ? b : a;
  }

  close(): Promise<unknown> {
    const pools = [...this.byAddress.values(), ...(this.service ? [this.service] : [])].map((e) => e.pool.close());
    return Promise.allSettled(pools);
  }

  destroy(): void {
    for (const e of [...this.byAddress.values(), ...(this.service ? [this.service] : [])]) void e.pool.destroy().catch(() => undefined);
  }
}

export class Upstreams {
  private readonly byKey = new Map<string, UpstreamPool>();
  private readonly byBackend = new WeakMap<Backend, UpstreamPool>();
  private readonly ca: Buffer | undefined;

  constructor(
    private readonly settings: UpstreamSettings,
    private readonly endpoints?: EndpointSource,
  ) {
    this.ca = settings.caFile ? readFileSync(settings.caFile) : undefined;
  }

  /** The pool for a backend; cached per Backend object so the hot path builds no key. */
  for(backend: Backend): UpstreamPool {
    let p = this.byBackend.get(backend);
    if (p) return p;
    const up = backend.upstream;
    const b = backend.breaker;
    const key = upstreamKey(backend, up.tls ? 'https' : 'http');
    p = this.byKey.get(key);
    if (!p) {
      const newPool: PoolFactory = (host, port) =>
        new Pool(`${up.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`, {
          connections: b.maxConnections,
          pipelining: 1,
          keepAliveTimeout: 60_000,
          keepAliveMaxTimeout: 600_000,
          headersTimeout: 0,
          bodyTimeout: 0,
          maxHeaderSize: this.settings.maxResponseHeaderBytes ?? 60 * 1024,
          connect: {
            timeout: this.settings.connectTimeoutMs,
            ...(up.tls ? { servername: up.host.replace(/:\d+$/, ''), rejectUnauthorized: this.settings.tlsVerify, ...(this.ca ? { ca: this.ca } : {}) } : {}),
          },
        });
      p = new UpstreamPool(`${up.host}:${up.port}`, new Breaker(b), up, this.settings.resolve, newPool, this.endpoints);
      this.byKey.set(key, p);
    }
    this.byBackend.set(backend, p);
    return p;
  }

  /** For `match`: a member whose Service has no ready endpoint leaves the weighted pick. */
  readonly eligible = (backend: Backend): boolean => this.for(backend).hasReady();

  /**
   * Close the pools of upstreams no route of `table` names any more (deployments deleted or
   * moved), once they have nothing in flight; returns how many. Run now and then, not per change.
   */
  sweep(table: RouteTable): number {
    const live = liveUpstreamKeys(table, (b) => (b.upstream.tls ? 'https' : 'http'), 'rest');
    let closed = 0;
    for (const [key, p] of this.byKey) {
      if (live.has(key) || p.breaker.inFlight > 0) continue;
      this.byKey.delete(key);
      void p.close();
      closed++;
    }
    return closed;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.byKey.values()].map((p) => p.close()));
    this.byKey.clear();
  }

  destroy(): void {
    for (const p of this.byKey.values()) p.destroy();
    this.byKey.clear();
  }
}

/** One pool per upstream address, TLS and breaker limits (SEMANTICS.md §9). */
export function upstreamKey(backend: Backend, scheme: string): string {
  const up = backend.upstream;
  const b = backend.breaker;
  return `${scheme}://${up.host}:${up.port}|${b.maxConnections}/${b.maxPendingRequests}/${b.maxRequests}/${b.maxRetries}`;
}

/** The pool keys every member and mirror of `table` uses. */
export function liveUpstreamKeys(table: RouteTable, scheme: (b: Backend) => string, kind?: 'rest' | 'grpc'): Set<string> {
  const live = new Set<string>();
  for (const g of table.groups) {
    if (kind !== undefined && g.kind !== kind) continue;
    for (const m of g.members) live.add(upstreamKey(m.backend, scheme(m.backend)));
    for (const m of g.mirrors) live.add(upstreamKey(m.backend, scheme(m.backend)));
  }
  return live;
}
