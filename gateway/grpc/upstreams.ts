/**
 * Upstream HTTP/2 sessions for gRPC, pooled per upstream (address + TLS + breaker limits, as
 * the REST pools are) and shared by every call and mirror to it.
 *
 * A call takes the session with the fewest active streams; another session is opened when all
 * carry STREAMS_BEFORE_NEW_SESSION or more, up to MAX_SESSIONS_PER_UPSTREAM (and never above
 * the breaker's max_connections). A session that goes away (GOAWAY, reset, error, idle close)
 * leaves the pool at once, so later calls open a fresh one; streams it refused are the call's
 * to replay (grpc/call.ts). `--resolve` maps the Service address to a local one before dialling;
 * `:authority` stays the client's.
 */
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders, type Settings } from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { Breaker } from '../upstream/breaker.js';
import {
  CONNECTION_WINDOW_BYTES,
  MAX_CONCURRENT_STREAMS,
  MAX_SESSIONS_PER_UPSTREAM,
  STREAMS_BEFORE_NEW_SESSION,
  UPSTREAM_SESSION_IDLE_MS,
  UPSTREAM_SESSION_OPTIONS,
} from './settings.js';
import { dialTarget, liveUpstreamKeys, upstreamKey, type EndpointSource } from '../upstream/pools.js';
import type { Backend, BreakerLimits, RouteTable, Upstream } from '../../routing/types.js';

export interface GrpcUpstreamSettings {
  readonly resolve: ReadonlyMap<string, { host: string; port: number }>;
  /** Ready pod endpoints per Service, when endpoint routing is on. */
  readonly endpoints?: EndpointSource | undefined;
  readonly connectTimeoutMs: number;
  readonly tlsVerify: boolean;
  readonly ca?: Buffer | undefined;
}

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
  /** The transport (TCP, and TLS with ALPN h2) came up; a failure before that is a connect failure. */
  connected = false;
  /** What ended the session, when something did (for messages). */
  failure: (Error & { code?: string }) | undefined;
  maxStreams = MAX_CONCURRENT_STREAMS;
  readonly release = (): void => {
    this.active--;
  };

  constructor(
    readonly session: ClientHttp2Session,
    readonly target: Target,
  ) {}
}

/** One dialable address (a pod endpoint, or the Service address) and its sessions. */
class Target {
  readonly sessions: PooledSession[] = [];
  constructor(
    readonly host: string,
    readonly port: number,
  ) {}

  get active(): number {
    let n = 0;
    for (const ps of this.sessions) n += ps.active;
    return n;
  }
}

type Address = { readonly host: string; readonly port: number };

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
  /** The Service address, when endpoints are unknown. */
  private service: Target | undefined;
  private readonly byAddress = new Map<string, Target>();
  private seen: readonly Address[] | undefined;
  private ready: Target[] = [];

  constructor(
    private readonly upstream: Upstream,
    limits: BreakerLimits,
    private readonly settings: GrpcUpstreamSettings,
  ) {
    this.name = `${upstream.host}:${upstream.port}`;
    this.tls = upstream.tls;
    this.breaker = new Breaker(limits);
    this.maxSessions = Math.max(1, Math.min(MAX_SESSIONS_PER_UPSTREAM, limits.maxConnections));
  }

  /**
   * Open a stream for `headers` on the least-busy session of the chosen endpoint (`avoid`: the
   * one that just failed, used only when nothing else is ready). A session that refuses
   * synchronously (it went away between the pick and the request) is dropped and another tried.
   */
  request(headers: OutgoingHttpHeaders, avoid?: PooledSession): { stream: ClientHttp2Stream; session: PooledSession } {
    let lastError: unknown;
    for (let tries = 0; tries < 3; tries++) {
      const target = this.pickTarget(avoid?.target);
      if (target === undefined) throw new NoReadyEndpoint(`no ready endpoint for ${this.name}`);
      const ps = this.pick(target);
      try {
        const stream = ps.session.request(headers);
        ps.active++;
        stream.once('close', ps.release);
        return { stream, session: ps };
      } catch (err) {
        lastError = err;
        this.retire(ps);
      }
    }
    throw lastError;
  }

  /** False only when the Service is known and has no ready endpoint. */
  hasReady(): boolean {
    const ready = this.endpoints();
    return ready === undefined || ready.length > 0;
  }

  close(): void {
    this.closed = true;
    for (const t of [...this.byAddress.values(), ...(this.service ? [this.service] : [])]) {
      for (const ps of t.sessions.splice(0)) ps.session.destroy();
    }
  }

  private endpoints(): readonly Target[] | undefined {
    const svc = this.upstream.service;
    const source = this.settings.endpoints;
    if (source === undefined || svc?.portName === undefined) return undefined;
    const list = source.endpointsOf(svc.name, svc.namespace, svc.portName);
    if (list === undefined) return undefined;
    if (list !== this.seen) {
      this.seen = list;
      const keep = new Set<string>();
      this.ready = list.map(({ host, port }) => {
        const key = `${host}:${port}`;
        keep.add(key);
        let t = this.byAddress.get(key);
        if (!t) this.byAddress.set(key, (t = new Target(host, port)));
        return t;
      });
      for (const [key, t] of this.byAddress) {
        if (keep.has(key)) continue;
        // Not ready, terminating or gone: no new calls; streams in flight finish, then it closes.
        this.byAddress.delete(key);
        for (const ps of t.sessions.splice(0)) ps.session.close();
      }
    }
    return this.ready;
  }

  private pickTarget(avoid?: Target): Target | undefined {
    const ready = this.endpoints();
    if (ready === undefined) {
      if (!this.service) {
        const t = dialTarget(this.upstream, this.settings.resolve);
        this.service = new Target(t.host, t.port);
      }
      return this.service;
    }
    const n = ready.length;
    if (n <= 1) return ready[0];
    let a = ready[Math.floor(Math.random() * n)]!;
    let b = ready[Math.floor(Math.random() * n)]!;
    if (a === avoid) [a, b] = [b, a];
    if (b === avoid || a === b) return a !== avoid ? a : (ready.find((t) => t !== avoid) ?? a);
    return b.active < a.active ? b : a;
  }

  private pick(target: Target): PooledSession {
    const list = target.sessions;
    let best: PooledSession | undefined;
    for (let i = 0; i < list.length; i++) {
      const ps = list[i]!;
      if (best === undefined || ps.active < best.active) best = ps;
    }
    if (best === undefined) return this.open(target);
    const busy = best.active >= Math.min(STREAMS_BEFORE_NEW_SESSION, best.maxStreams);
    return busy && list.length < this.maxSessions && !this.closed ? this.open(target) : best;
  }

  private retire(ps: PooledSession): void {
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
    const ms = this.settings.connectTimeoutMs;
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
    session.on('goaway', () => this.retire(ps));
    session.on('error', (err: Error & { code?: string }) => {
      ps.failure ??= err;
      this.retire(ps);
    });
    session.once('close', () => {
      if (connectTimer) clearTimeout(connectTimer);
      this.retire(ps);
    });
    session.setTimeout(UPSTREAM_SESSION_IDLE_MS, () => {
      if (ps.active === 0) {
        this.retire(ps);
        session.close();
      }
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
    // SNI is the Service host as routed (`<svc>.<ns>`), not the --resolve address.
    const sni = this.upstream.host;
    const socket = tls.connect({
      host,
      port,
      ALPNProtocols: ['h2'],
      rejectUnauthorized: this.settings.tlsVerify,
      ...(net.isIP(sni) ? {} : { servername: sni }),
      ...(this.settings.ca ? { ca: this.settings.ca } : {}),
    });
    socket.setNoDelay(true);
    socket.on('error', ignore);
    return socket;
  }
}

/** The pools of all gRPC upstreams, cached per Backend object so the hot path builds no key. */
export class GrpcUpstreams {
  private readonly byKey = new Map<string, GrpcUpstream>();
  private readonly byBackend = new WeakMap<Backend, GrpcUpstream>();

  constructor(private readonly settings: GrpcUpstreamSettings) {}

  for(backend: Backend): GrpcUpstream {
    let u = this.byBackend.get(backend);
    if (u) return u;
    const up = backend.upstream;
    const b = backend.breaker;
    const key = upstreamKey(backend, up.tls ? 'h2' : 'h2c');
    u = this.byKey.get(key);
    if (!u) {
      u = new GrpcUpstream(up, b, this.settings);
      this.byKey.set(key, u);
    }
    this.byBackend.set(backend, u);
    return u;
  }

  /** For `match`: a member whose Service has no ready endpoint leaves the weighted pick. */
  readonly eligible = (backend: Backend): boolean => this.for(backend).hasReady();

  /** Close the sessions of upstreams no gRPC route of `table` names any more, once idle (see Upstreams.sweep). */
  sweep(table: RouteTable): number {
    const live = liveUpstreamKeys(table, (b) => (b.upstream.tls ? 'h2' : 'h2c'), 'grpc');
    let closed = 0;
    for (const [key, u] of this.byKey) {
      if (live.has(key) || u.breaker.inFlight > 0) continue;
      this.byKey.delete(key);
      u.close();
      closed++;
    }
    return closed;
  }

  close(): void {
    for (const u of this.byKey.values()) u.close();
    this.byKey.clear();
  }
}
