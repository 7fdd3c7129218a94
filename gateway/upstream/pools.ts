/**
 * Upstream HTTP/1.1 connection pools for REST, with their breakers.
 *
 * One `UpstreamPool` per upstream (address + TLS + breaker limits, docs/routing.md#timeouts-retries-and-circuit-breakers; the registry
 * is registry.ts) holds the breaker and one connection pool per endpoint (http1-client.ts;
 * endpoints.ts picks one per attempt): keep-alive, capped at max_connections, never retrying on
 * its own (but for a request whose reused connection the upstream reset unanswered, sent once more
 * on a new one: http1-client.ts). A pool whose
 * endpoint left is closed once its requests finish. The Host header the upstream sees stays the
 * client's, whichever address is dialled.
 */
import type tls from 'node:tls';
import { tlsContextOf, tlsOptions } from './tls-options.js';
import { Http1Pool } from './http1-client.js';
import { Breaker } from './breaker.js';
import { EndpointSet, type Balancing, type EndpointKind, type EndpointSource, type HealthSettings } from './endpoints.js';
import { UpstreamRegistry, balancingOf } from './registry.js';
import type { EndpointHealth } from '../../routing/health/endpoints.js';
import type { UpstreamHedging } from './hedging.js';
import type { Backend, OutcomeKind, Upstream } from '../../routing/types.js';
import type { UpstreamConfig } from '../config/upstream.js';

export { dialTarget, type EndpointSource } from './endpoints.js';
export { upstreamKey } from './registry.js';

/** The upstream section (--resolve, --connect-timeout, TLS, --max-response-header-size) and the CA it names. */
export interface UpstreamSettings extends Pick<UpstreamConfig, 'resolve' | 'connectTimeoutMs' | 'tlsVerify' | 'maxResponseHeaderBytes'>, Pick<Partial<UpstreamConfig>, 'tlsContexts'> {
  /** Extra CA certificates for TLS upstreams (--upstream-ca, read once by the data plane). */
  readonly ca?: Buffer | undefined;
  /** A request was sent again after a reset on a reused connection (http1-client.ts): counted. */
  readonly replayed?: (() => void) | undefined;
  /** Endpoint health of each upstream (its detector's settings and where ejections are told); default: on, told to nobody. */
  readonly healthFor?: ((backend: Backend) => HealthSettings) | undefined;
}

/** One dialable address with its connection pool, requests in flight and health. */
export class Endpoint {
  outstanding = 0;
  /** `host:port`, as messages name it. */
  readonly address: string;
  constructor(
    readonly host: string,
    readonly port: number,
    readonly pool: Http1Pool,
    readonly health: EndpointHealth,
    /** How an attempt sent here went (forward/outcome.ts): judged by its endpoint set. */
    readonly attemptEnded: (kind: OutcomeKind, latencyMs: number) => void,
  ) {
    this.address = `${host}:${port}`;
  }
}

type PoolFactory = (host: string, port: number) => Http1Pool;

export class UpstreamPool {
  private readonly endpoints: EndpointSet<Endpoint>;
  /**
   * Hedging's latency estimate, budget and delay (routing/hedge/delay.ts), made by the first hedged
   * request (gateway/forward/hedge.ts). Its owner is this entry: it goes with it at the registry's sweep.
   */
  hedging: UpstreamHedging | undefined;

  constructor(
    /** `host:port` as the route names it, for messages and labels. */
    readonly name: string,
    readonly breaker: Breaker,
    upstream: Upstream,
    resolve: UpstreamSettings['resolve'],
    newPool: PoolFactory,
    source: EndpointSource | undefined,
    health?: HealthSettings,
    balancing?: Balancing,
  ) {
    const kind: EndpointKind<Endpoint> = {
      open: (host, port, h, ended) => new Endpoint(host, port, newPool(host, port), h, ended),
      // Idle connections close now; requests in flight (and any still sent here) finish, each connection closing after its answer.
      retire: (e) => void e.pool.close().catch(() => undefined),
    };
    this.endpoints = new EndpointSet(upstream, resolve, source, kind, health, balancing);
  }

  /** The endpoints the source lists now (for /routes); undefined: the Service address is dialled. */
  listed(): readonly Endpoint[] | undefined {
    return this.endpoints.listed();
  }

  /** Why this upstream cannot be dialled (an address the client refuses), once found out. */
  get invalid(): string | undefined {
    return this.endpoints.invalid;
  }

  /** False only when the Service is known and has no ready endpoint. */
  hasReady(): boolean {
    return this.endpoints.hasReady();
  }

  /** Whether a ready endpoint is not ejected (true when the Service address is dialled). */
  inService(): boolean {
    return this.endpoints.inService();
  }

  /** The endpoint for the next attempt; `avoid` (those that failed this request) only if nothing else is left; `hash`: a Mapping's hashed key. */
  pick(avoid?: readonly EndpointHealth[], hash?: number): Endpoint | undefined {
    return this.endpoints.pick(avoid, hash);
  }

  /** Whether a ready endpoint not ejected and not among `tried` is left (upstream/endpoints.ts). */
  otherReady(tried: readonly EndpointHealth[]): boolean {
    return this.endpoints.otherReady(tried);
  }

  /** This upstream left every route: its endpoints are retired (upstream/endpoints.ts `retire`). */
  retire(): void {
    this.endpoints.retire();
    this.hedging?.retired();
  }

  close(): Promise<unknown> {
    return Promise.allSettled(this.endpoints.all().map((e) => e.pool.close()));
  }

  destroy(): void {
    for (const e of this.endpoints.all()) void e.pool.destroy().catch(() => undefined);
  }
}

/** The REST upstreams: one UpstreamPool per upstream key. */
export class Upstreams extends UpstreamRegistry<UpstreamPool> {
  constructor(
    private readonly settings: UpstreamSettings,
    private readonly endpoints?: EndpointSource,
  ) {
    super('rest');
  }

  protected scheme(backend: Backend): string {
    return backend.upstream.tls ? 'https' : 'http';
  }

  protected create(backend: Backend): UpstreamPool {
    const up = backend.upstream;
    const b = backend.breaker;
    // A Mapping's connection settings override the gateway's for its upstream (its key tells them apart).
    const c = backend.mapping?.connection;
    const newPool: PoolFactory = (host, port) =>
      new Http1Pool({
        host,
        port,
        connections: b.maxConnections,
        connectTimeoutMs: c?.connectTimeoutMs ?? this.settings.connectTimeoutMs,
        keepAliveMs: c?.idleTimeoutMs ?? undefined,
        maxLifetimeMs: c?.maxLifetimeMs ?? undefined,
        maxHeadBytes: this.settings.maxResponseHeaderBytes,
        replayed: this.settings.replayed,
        tls: this.tlsFor(backend),
      });
    return new UpstreamPool(`${up.host}:${up.port}`, new Breaker(b), up, this.settings.resolve, newPool, this.endpoints, this.settings.healthFor?.(backend), balancingOf(backend, 'http'));
  }

  /** How `backend`'s upstream is dialled over TLS (undefined: cleartext): its connections', and an upgrade's (rest/upgrade-exchange.ts). */
  tlsFor(backend: Backend): tls.ConnectionOptions | undefined {
    const up = backend.upstream;
    return up.tls ? tlsOptions(up.host, tlsContextOf(backend, this.settings), this.settings) : undefined;
  }

  protected retire(p: UpstreamPool): void {
    p.retire();
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.drain().map((p) => p.close()));
  }

  destroy(): void {
    for (const p of this.drain()) p.destroy();
  }
}
