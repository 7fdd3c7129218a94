/**
 * Upstream HTTP/2 sessions for gRPC, pooled per upstream (address + TLS + breaker limits, as
 * the REST pools are) and shared by every call and mirror to it.
 *
 * The endpoint of each call (a pod, or the Service address) is chosen by the endpoint set REST
 * uses too (upstream/endpoints.ts); the upstreams are kept and swept by the shared registry
 * (upstream/registry.ts). On that endpoint, a call takes the session with the fewest active
 * streams; another session is opened when all carry STREAMS_BEFORE_NEW_SESSION or more, up to
 * MAX_SESSIONS_PER_UPSTREAM (and never above the breaker's max_connections). A session that
 * goes away (GOAWAY, reset, error, idle close) leaves the pool at once, so later calls open a
 * fresh one; streams it refused are the call's to replay (grpc/call.ts). `--resolve` maps the
 * Service address to a local one before dialling; `:authority` stays the client's.
 */
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders, type Settings } from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { Breaker } from './breaker.js';
import { CONNECTION_WINDOW_BYTES, MAX_CONCURRENT_STREAMS, MAX_SESSIONS_PER_UPSTREAM, STREAMS_BEFORE_NEW_SESSION, UPSTREAM_SESSION_IDLE_MS, UPSTREAM_SESSION_OPTIONS } from '../wire/h2-settings.js';
import { EndpointSet, type Balancing, type EndpointKind, type EndpointSource, type HealthSettings } from './endpoints.js';
import { UpstreamRegistry, balancingOf } from './registry.js';
import type { EndpointHealth } from '../../routing/health/endpoints.js';
import type { UpstreamHedging } from './hedging.js';
import type { Backend, BreakerLimits, OutcomeKind, Upstream } from '../../routing/types.js';
import type { ConnectionPolicy } from '../../routing/emissary/mapping-policy.js';
import type { UpstreamTlsContext } from '../config/upstream-tls.js';
import { tlsContextOf, tlsOptions } from './tls-options.js';

export interface GrpcUpstreamSettings {
  readonly resolve: ReadonlyMap<string, { host: string; port: number }>;
  /** Ready pod endpoints per Service, when endpoint routing is on. */
  readonly endpoints?: EndpointSource | undefined;
  readonly connectTimeoutMs: number;
  readonly tlsVerify: boolean;
  readonly ca?: Buffer | undefined;
  /** A client certificate to present (the external auth service's --ext-auth-cert; models get none). */
  readonly identity?: TlsIdentity | undefined;
  /** Endpoint health of each upstream (its detector's settings and where ejections are told); default: on, told to nobody. */
  readonly healthFor?: ((backend: Backend) => HealthSettings) | undefined;
  /** --upstream-tls-context: what a Mapping's `tls: <name>` dials with. */
  readonly tlsContexts?: ReadonlyMap<string, UpstreamTlsContext> | undefined;
}

/** A client certificate and its key, PEM, as node:tls takes them. */
export type TlsIdentity = Pick<tls.SecureContextOptions, 'cert' | 'key'>;

/** A connect timeout, reported like the socket errors a refused connection gives. */
class ConnectTimeout extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(target: string, ms: number) {
    super(`no connection to ${target} within ${ms} ms`);
  }
}

const ignore = (): void => undefined;

/** One upstream session and the streams it carries. */
export class PooledSession {
  active = 0;
  /** When it was opened (performance.now() ms): its age, under the upstream's max lifetime. */
  readonly openedAt = performance.now();
  /** The transport (TCP, and TLS with ALPN h2) came up; a failure before that is a connect failure. */
  connected = false;
  /** What ended the session, when something did (for messages). */
  failure: (Error & { code?: string }) | undefined;
  maxStreams = MAX_CONCURRENT_STREAMS;
  /** Closes the session once it has carried no stream for UPSTREAM_SESSION_IDLE_MS (armed at open, again when its last stream ends; cleared when it closes). */
  idle: NodeJS.Timeout | undefined;
  readonly release = (): void => {
    if (--this.active > 0) return;
    // A retired endpoint's session closes once its last stream has ended (drained, never reset).
    if (this.target.retired) this.target.closeIdle();
    else if (!this.session.closed && !this.session.destroyed) this.idle?.refresh();
  };

  constructor(
    readonly session: ClientHttp2Session,
    readonly target: Target,
  ) {}
}

/** One dialable address (a pod endpoint, or the Service address) and its sessions. */
export class Target {
  readonly sessions: PooledSession[] = [];
  /** Left the ready set, or its upstream left the table: each session closes once it carries no stream. */
  retired = false;
  constructor(
    readonly host: string,
    readonly port: number,
    readonly health: EndpointHealth,
    /** How an attempt sent here went (forward/outcome.ts): judged by its endpoint set. */
    readonly attemptEnded: (kind: OutcomeKind, latencyMs: number) => void,
  ) {}

  /**
   * Close the sessions that carry no stream (`close()`: GOAWAY, then the socket). A busy one is
   * closed by its last stream's release; closing it now would destroy the streams still waiting for
   * its connection (Node fails those with ERR_HTTP2_GOAWAY_SESSION).
   */
  closeIdle(): void {
    const list = this.sessions;
    for (let i = list.length - 1; i >= 0; i--) {
      const ps = list[i]!;
      if (ps.active > 0) continue;
      list.splice(i, 1);
      ps.session.close();
    }
  }

  /** Streams in flight on its sessions (what the endpoint pick compares). */
  get outstanding(): number {
    let n = 0;
    for (const ps of this.sessions) n += ps.active;
    return n;
  }
}

/** A pod endpoint is opened without dialling (sessions open on demand); one that left closes its sessions once their streams finish. */
const TARGETS: EndpointKind<Target> = {
  open: (host, port, health, ended) => new Target(host, port, health, ended),
  retire: (t) => {
    t.retired = true;
    t.closeIdle();
  },
};

/** No ready endpoint: the Service is known and none of its pods can take the call. */
export class NoReadyEndpoint extends Error {
  readonly code = 'NO_READY_ENDPOINT';
}

/** One upstream: its session pool and its circuit breaker. */
export class GrpcUpstream {
  /** `host:port` as the route names it, for messages. */
  readonly name: string;
  readonly breaker: Breaker;
  readonly tls: boolean;
  private readonly maxSessions: number;
  private closed = false;
  /** The connect timeout, idle timeout and max lifetime (0: none) of its sessions: the gateway's, or its Mapping's. */
  private readonly connectTimeoutMs: number;
  private readonly idleMs: number;
  private readonly maxLifetimeMs: number;
  private readonly targets: EndpointSet<Target>;
  /**
   * Hedging's latency estimate, budget and delay (routing/hedge/delay.ts), made by the first hedged
   * call (gateway/forward/hedge.ts). Its owner is this entry: it goes with it at the registry's sweep.
   */
  hedging: UpstreamHedging | undefined;

  constructor(
    private readonly upstream: Upstream,
    limits: BreakerLimits,
    private readonly settings: GrpcUpstreamSettings,
    health?: HealthSettings,
    balancing?: Balancing,
    connection?: ConnectionPolicy | null,
    /** A Mapping's TLS context (`tls: <name>`): its CA, client certificate and SNI instead of the gateway's. */
    private readonly tlsContext?: UpstreamTlsContext,
  ) {
    this.connectTimeoutMs = connection?.connectTimeoutMs ?? settings.connectTimeoutMs;
    this.idleMs = connection?.idleTimeoutMs ?? UPSTREAM_SESSION_IDLE_MS;
    this.maxLifetimeMs = connection?.maxLifetimeMs ?? 0;
    this.name = `${upstream.host}:${upstream.port}`;
    this.tls = upstream.tls;
    this.breaker = new Breaker(limits);
    this.maxSessions = Math.max(1, Math.min(MAX_SESSIONS_PER_UPSTREAM, limits.maxConnections));
    this.targets = new EndpointSet(upstream, settings.resolve, settings.endpoints, TARGETS, health, balancing);
  }

  /**
   * Open a stream for `headers` on the least-busy session of the chosen endpoint (`avoid`: those
   * that failed this call, used only when nothing else is left; `hash`: a Mapping's hashed key). A session that refuses
   * synchronously (it went away between the pick and the request) is dropped and another tried.
   */
  request(headers: OutgoingHttpHeaders, avoid?: readonly EndpointHealth[], hash?: number): { stream: ClientHttp2Stream; session: PooledSession } {
    let lastError: unknown;
    for (let tries = 0; tries < 3; tries++) {
      const target = this.targets.pick(avoid, hash);
      if (target === undefined) throw new NoReadyEndpoint(`no ready endpoint for ${this.name}`);
      const ps = this.pick(target);
      try {
        const stream = ps.session.request(headers);
        ps.active++;
        stream.once('close', ps.release);
        return { stream, session: ps };
      } catch (err) {
        lastError = err;
        this.forget(ps);
      }
    }
    throw lastError;
  }

  /** False only when the Service is known and has no ready endpoint. */
  hasReady(): boolean {
    return this.targets.hasReady();
  }

  /** Whether a ready endpoint is not ejected (true when the Service address is dialled). */
  inService(): boolean {
    return this.targets.inService();
  }

  /** Whether a ready endpoint not ejected and not among `tried` is left (upstream/endpoints.ts). */
  otherReady(tried: readonly EndpointHealth[]): boolean {
    return this.targets.otherReady(tried);
  }

  /** This upstream left every route: each endpoint is retired (its sessions drain, then close). */
  retire(): void {
    this.targets.retire();
    this.hedging?.retired();
  }

  /** Shutdown: every session is destroyed now. */
  close(): void {
    this.closed = true;
    for (const t of this.targets.all()) {
      for (const ps of t.sessions.splice(0)) ps.session.destroy();
    }
  }

  private pick(target: Target): PooledSession {
    const list = target.sessions;
    let best: PooledSession | undefined;
    if (this.maxLifetimeMs > 0) this.expire(list);
    for (let i = 0; i < list.length; i++) {
      const ps = list[i]!;
      if (best === undefined || ps.active < best.active) best = ps;
    }
    if (best === undefined) return this.open(target);
    const busy = best.active >= Math.min(STREAMS_BEFORE_NEW_SESSION, best.maxStreams);
    return busy && list.length < this.maxSessions && !this.closed ? this.open(target) : best;
  }

  /** Sessions past their max lifetime take no new stream: the ones they carry finish, then they close (GOAWAY). */
  private expire(list: PooledSession[]): void {
    const now = performance.now();
    for (let i = list.length - 1; i >= 0; i--) {
      const ps = list[i]!;
      if (now - ps.openedAt < this.maxLifetimeMs) continue;
      list.splice(i, 1);
      ps.session.close();
    }
  }

  /** A session that went away (or refused a stream) leaves its endpoint's list: later calls open a fresh one. */
  private forget(ps: PooledSession): void {
    const list = ps.target.sessions;
    const i = list.indexOf(ps);
    if (i >= 0) list.splice(i, 1);
  }

  private open(target: Target): PooledSession {
    const up = this.upstream;
    const host = target.host.includes(':') ? `[${target.host}]` : target.host;
    const session = http2.connect(`${up.tls ? 'https' : 'http'}://${host}:${target.port}`, {
      ...UPSTREAM_SESSION_OPTIONS,
      createConnection: () => this.dial(target.host, target.port),
    });
    const ps = new PooledSession(session, target);
    const ms = this.connectTimeoutMs;
    const timedOut = (): void => {
      if (ps.connected || session.destroyed) return;
      ps.failure = new ConnectTimeout(`${host}:${target.port}`, ms);
      session.destroy(ps.failure);
    };
    // Timers run before I/O in a loop turn: after a stall, let a pending 'connect' land first.
    const connectTimer = ms > 0 ? setTimeout(() => setImmediate(timedOut), ms) : undefined;
    connectTimer?.unref();
    session.once('connect', () => {
      ps.connected = true;
      if (connectTimer) clearTimeout(connectTimer);
      session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
    });
    session.on('remoteSettings', (s: Settings) => {
      ps.maxStreams = s.maxConcurrentStreams ?? MAX_CONCURRENT_STREAMS;
    });
    // GOAWAY: streams it accepted finish on it, new ones go elsewhere.
    session.on('goaway', () => this.forget(ps));
    session.on('error', (err: Error & { code?: string }) => {
      ps.failure ??= err;
      this.forget(ps);
    });
    // Idle: no stream for UPSTREAM_SESSION_IDLE_MS. A timer of our own, not session.setTimeout: Node
    // keeps a session with such a timer alive until it fires, even once closed (its close path
    // clears the timer only after marking the session destroyed, when setTimeout(0) no longer acts),
    // so every session that came and went would stay in memory for the whole idle time.
    ps.idle = setTimeout(() => {
      if (ps.active > 0 || session.closed || session.destroyed) return;
      this.forget(ps);
      session.close();
    }, this.idleMs);
    ps.idle.unref();
    session.once('close', () => {
      if (connectTimer) clearTimeout(connectTimer);
      clearTimeout(ps.idle);
      this.forget(ps);
    });
    // Idle upstream sessions must not keep a draining process alive.
    session.unref();
    target.sessions.push(ps);
    return ps;
  }

  private dial(host: string, port: number): net.Socket {
    if (!this.upstream.tls) {
      const socket = net.connect({ host, port });
      socket.setNoDelay(true);
      socket.on('error', ignore); // reported through the session
      return socket;
    }
    // SNI is the Service host as routed (`<svc>.<ns>`), not the --resolve address (or the context's).
    const ctx = this.tlsContext;
    const socket = tls.connect({
      host,
      port,
      ALPNProtocols: ['h2'],
      ...tlsOptions(this.upstream.host, ctx, this.settings),
      ...(ctx === undefined ? this.settings.identity : {}),
    });
    socket.setNoDelay(true);
    socket.on('error', ignore);
    return socket;
  }
}

/** The gRPC upstreams: one GrpcUpstream (session pool and breaker) per upstream key. */
export class GrpcUpstreams extends UpstreamRegistry<GrpcUpstream> {
  constructor(private readonly settings: GrpcUpstreamSettings) {
    super('grpc');
  }

  protected scheme(backend: Backend): string {
    return backend.upstream.tls ? 'h2' : 'h2c';
  }

  protected create(backend: Backend): GrpcUpstream {
    const m = backend.mapping;
    return new GrpcUpstream(backend.upstream, backend.breaker, this.settings, this.settings.healthFor?.(backend), balancingOf(backend, 'grpc'), m?.connection, tlsContextOf(backend, this.settings));
  }

  protected retire(u: GrpcUpstream): void {
    u.retire();
  }

  close(): void {
    for (const u of this.drain()) u.close();
  }
}
