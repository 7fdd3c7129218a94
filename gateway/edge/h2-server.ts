/**
 * The public HTTP/2 server, for gRPC and REST over HTTP/2 alike: an h2c server that does not listen
 * itself (the public listener hands it the sockets that start with the HTTP/2 preface;
 * `--grpc-port` listens with it), its sessions and their SETTINGS, rapid-reset protection, a
 * graceful drain, and the entry choice per stream: `application/grpc*` streams go to the gRPC proxy
 * (grpc/proxy.ts), the others to REST over HTTP/2 (rest/h2.ts), or get the REST 404 JSON without it.
 * Client connection trouble (garbage frames, resets) ends that session or stream only: every session
 * and stream has an 'error' listener.
 *
 * Shutdown: `drain()` sends each client session GOAWAY (first "no new streams soon", then, one
 * ping later, the real last stream id) so in-flight streams finish and none are refused in a
 * race; `close()` ends everything still open.
 */
import http2, { type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream, type ServerOptions } from 'node:http2';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { CLIENT_SESSION_IDLE_MS, CONNECTION_WINDOW_BYTES, MAX_HEADER_LIST_BYTES, SERVER_OPTIONS } from '../wire/h2-settings.js';
import { LogBudget } from '../observe/log-budget.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import { errorBody } from './errors.js';
import { schemeOf, type Peer } from './http-headers.js';
import type { EdgeRules } from '../../routing/emissary/edge-rules.js';

/** What takes a stream: its headers as parsed and as received, its client's peer, its arrival (performance.now() ms). */
export type H2StreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[], peer: Peer, since: number) => void;

export interface H2ServerOptions {
  /** gRPC calls (`content-type: application/grpc*`). */
  readonly grpc: H2StreamHandler;
  /** The other streams: REST over HTTP/2. Without it they get the REST 404 JSON. */
  readonly rest?: H2StreamHandler | undefined;
  readonly metrics: GatewayMetrics;
  readonly log?: Logger | undefined;
  /** Which peers may set x-forwarded-for/-proto; default: none. */
  readonly trusts?: ((socket: Socket) => boolean) | undefined;
  /**
   * The REST request head limits (--max-header-size, --max-headers-count): the server's
   * SETTINGS_MAX_HEADER_LIST_SIZE and header pair limit grow to fit them (never below gRPC's own).
   */
  readonly restHead?: { readonly maxHeaderBytes: number; readonly maxHeadersCount: number } | undefined;
  /** A session with no stream for this long is closed (the ambassador Module's listener_idle_timeout_ms); absent: CLIENT_SESSION_IDLE_MS. */
  readonly idleMs?: number | undefined;
  /** The ambassador Module's edge keys, carried by each session's peer; absent without them. */
  readonly rules?: EdgeRules | undefined;
}

/** Server options fitting REST heads up to `head` (HTTP/2 counts 32 bytes more per field than the HTTP/1.1 line). */
function serverOptions(head: H2ServerOptions['restHead']): ServerOptions {
  if (head === undefined) return SERVER_OPTIONS;
  const fields = head.maxHeadersCount + 8;
  const list = head.maxHeaderBytes + 32 * fields;
  const pairs = Math.max(DEFAULT_MAX_HEADER_PAIRS, fields);
  if (list <= MAX_HEADER_LIST_BYTES && pairs === DEFAULT_MAX_HEADER_PAIRS) return SERVER_OPTIONS;
  return { ...SERVER_OPTIONS, maxHeaderListPairs: pairs, settings: { ...SERVER_OPTIONS.settings, maxHeaderListSize: Math.max(list, MAX_HEADER_LIST_BYTES) } };
}
/** Node's default maxHeaderListPairs. */
const DEFAULT_MAX_HEADER_PAIRS = 128;

const { NGHTTP2_NO_ERROR, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;
const MAX_STREAM_ID = 2 ** 31 - 1;
/** How long a draining session waits for the ping that confirms the first GOAWAY arrived. */
const GOAWAY_PING_WAIT_MS = 1000;
const ignore = (): void => undefined;

/**
 * HTTP/2 rapid reset (CVE-2023-44487), handled as Envoy does (`overload.premature_reset_*`): a
 * stream the client resets within PREMATURE_RESET_MS of opening it, before its answer is
 * complete, is a premature reset. A connection is closed (GOAWAY ENHANCE_YOUR_CALM) once half of
 * PREMATURE_RESET_STREAMS of its streams were premature, or, after that many streams, once
 * premature resets are half of all its closed streams. Node 20's nghttp2 limit (a burst of 1,000
 * resets, then 33/s) lets a client make the gateway open ~1,000 upstream calls first.
 */
export const PREMATURE_RESET_STREAMS = 500;
const NO_PEER: Peer = { address: undefined, trusted: false };
const PREMATURE_RESET_MS = 1000;

/** Per client connection: its peer (read once, while the socket is bound) and its stream resets. */
interface SessionInfo {
  readonly peer: Peer;
  closed: number;
  premature: number;
  /** Closed for rapid reset (counted once). */
  cut: boolean;
  /** Streams open now. */
  open: number;
  /** Closes the session once it has had no stream for `idleMs` (CLIENT_SESSION_IDLE_MS by default; armed at the start, again when its last stream ends; cleared when it closes). */
  idle: NodeJS.Timeout | undefined;
}

export class H2Server {
  readonly server: Http2Server;
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly sessionInfo = new WeakMap<Http2Session, SessionInfo>();
  private readonly trusts: (socket: Socket) => boolean;
  private readonly logBudget = new LogBudget();
  private draining = false;

  constructor(private readonly o: H2ServerOptions) {
    this.trusts = o.trusts ?? (() => false);
    this.server = http2.createServer(serverOptions(o.restHead));
    // Sockets handed over by the listeners have Nagle on: small frames would wait for ACKs.
    this.server.on('connection', (socket: Socket) => socket.setNoDelay(true));
    this.server.on('session', this.onSession);
    this.server.on('stream', this.onStream);
    this.server.on('sessionError', ignore);
  }

  /** True once drain() or close() began. */
  get closing(): boolean {
    return this.draining;
  }

  /** Graceful shutdown: GOAWAY every client session (in-flight streams finish), refuse new streams. */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    if (this.server.listening) this.server.close();
    for (const s of this.sessions) this.goaway(s);
  }

  /** Close every client session (what is still open is cut) and the server. */
  async close(): Promise<void> {
    this.drain();
    for (const s of this.sessions) s.destroy();
    this.sessions.clear();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** A session's peer under the Module's edge keys: the listener's port for strip_matching_host_port. */
  private ruledPeer(socket: Socket | undefined, rules: EdgeRules): Peer {
    return { address: socket?.remoteAddress, trusted: socket !== undefined && this.trusts(socket), proto: schemeOf(socket), rules, localPort: socket?.localPort };
  }

  private readonly onSession = (session: ServerHttp2Session): void => {
    this.sessions.add(session);
    const socket = session.socket as Socket | undefined;
    const info: SessionInfo = {
      peer: this.o.rules === undefined ? { address: socket?.remoteAddress, trusted: socket !== undefined && this.trusts(socket), proto: schemeOf(socket) } : this.ruledPeer(socket, this.o.rules),
      closed: 0,
      premature: 0,
      cut: false,
      open: 0,
      idle: undefined,
    };
    this.sessionInfo.set(session, info);
    session.on('error', ignore);
    // Idle: no stream for `idleMs`. A timer of our own, not session.setTimeout: Node
    // keeps a session with such a timer alive until it fires, even once closed (its close path
    // clears the timer only after marking the session destroyed, when setTimeout(0) no longer acts),
    // so every client connection that came and went would stay in memory for the whole idle time.
    info.idle = setTimeout(() => {
      if (info.open === 0 && !session.closed && !session.destroyed) session.close();
    }, this.o.idleMs ?? CLIENT_SESSION_IDLE_MS);
    info.idle.unref();
    session.once('close', () => {
      clearTimeout(info.idle);
      this.sessions.delete(session);
    });
    // Node's connection window is 64 KiB; the settings only size stream windows.
    session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
    if (this.draining) this.goaway(session);
  };

  /** Two-step GOAWAY: streams the client opens before it sees the first one are still served. */
  private goaway(session: ServerHttp2Session): void {
    if (session.closed || session.destroyed) return;
    session.goaway(NGHTTP2_NO_ERROR, MAX_STREAM_ID);
    const close = (): void => {
      clearTimeout(timer);
      if (!session.closed && !session.destroyed) session.close();
    };
    const timer = setTimeout(close, GOAWAY_PING_WAIT_MS);
    timer.unref();
    if (!session.ping(close)) close();
  }

  private readonly onStream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]): void => {
    const since = performance.now();
    stream.on('error', ignore);
    const session = stream.session;
    const info = session && this.sessionInfo.get(session);
    if (session && info) {
      this.watchIdle(stream, session, info);
      this.watchResets(stream, session, info);
    }
    const ct = headers['content-type'];
    const handler = ct !== undefined && ct.startsWith('application/grpc') ? this.o.grpc : this.o.rest;
    if (handler !== undefined) handler(stream, headers, rawHeaders, info?.peer ?? NO_PEER, since);
    else this.notGrpc(stream, headers, since);
  };

  /** A stream is open: the session is not idle until its last stream has ended. */
  private watchIdle(stream: ServerHttp2Stream, session: Http2Session, info: SessionInfo): void {
    info.open++;
    stream.once('close', () => {
      if (--info.open === 0 && !session.closed && !session.destroyed) info.idle?.refresh();
    });
  }

  /** Count the stream's end against its connection; close a connection that resets too fast. */
  private watchResets(stream: ServerHttp2Stream, session: Http2Session, count: SessionInfo): void {
    const openedAt = performance.now();
    stream.once('close', () => {
      if (count.cut) return;
      count.closed++;
      // `aborted`: closed before the answer was complete (Node ends the writable side on close, so
      // writableFinished cannot tell); a reset code: not the end of a finished exchange.
      if (stream.aborted && stream.rstCode !== NGHTTP2_NO_ERROR && performance.now() - openedAt < PREMATURE_RESET_MS) count.premature++;
      else if (count.closed < PREMATURE_RESET_STREAMS) return;
      if (count.closed < PREMATURE_RESET_STREAMS ? count.premature < PREMATURE_RESET_STREAMS / 2 : count.premature * 2 < count.closed) return;
      if (session.destroyed) return;
      count.cut = true;
      this.o.metrics.clientErrors.labels('too_many_premature_resets').inc();
      const skipped = this.logBudget.take();
      if (skipped !== undefined) {
        this.o.log?.warn(
          { remoteAddress: count.peer.address, streams: count.closed, prematureResets: count.premature, ...(skipped ? { notLogged: skipped } : {}) },
          'HTTP/2 connection closed: it resets streams faster than it completes them (rapid reset)',
        );
      }
      // GOAWAY ENHANCE_YOUR_CALM, then the socket is closed (the error goes to the ignored session error).
      session.destroy(new Error('too many premature stream resets (rapid reset)'), NGHTTP2_ENHANCE_YOUR_CALM);
    });
  }

  /** HTTP/2 without gRPC's content-type, and no REST side: the REST-style 404. */
  private notGrpc(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, since: number): void {
    this.o.metrics.unroutedRequest('rest', 'NO_ROUTE', 404, since);
    const body = errorBody(404, 'NO_ROUTE', `no route for ${headers[':path'] ?? ''}: HTTP/2 requests here must be gRPC (content-type application/grpc)`);
    const head = headers[':method'] === 'HEAD';
    stream.respond({ ':status': 404, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, { endStream: head });
    if (!head) stream.end(body);
    stream.resume();
  }
}
