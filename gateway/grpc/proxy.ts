/**
 * The gRPC side of the public port: an h2c server (not listening itself: the public listener
 * hands it the sockets that start with the HTTP/2 preface; `--grpc-port` listens with it) that
 * runs each gRPC stream through the request pipeline (gateway/pipeline/chain.ts, its adapter
 * grpc/grpc-request.ts) and proxies it transparently (grpc/call.ts).
 *
 * Per stream: one content-type check, the pipeline (one `match` over the metadata, the stages a
 * route has), one pooled upstream stream. Gateway-made answers are trailers-only gRPC statuses
 * that say what happened; HTTP/2 requests that are not gRPC go to the REST side (`rest`:
 * rest/h2.ts, REST over HTTP/2), or get the REST 404 JSON without it; rapid-reset protection and
 * the SETTINGS cover them too. Client connection trouble (garbage frames, resets) ends that
 * session or stream only: every session and stream has an 'error' listener.
 *
 * Shutdown: `drain()` sends each client session GOAWAY (first "no new streams soon", then, one
 * ping later, the real last stream id) so in-flight streams finish and none are refused in a
 * race; `close()` ends everything still open.
 */
import http2, { type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream, type ServerOptions } from 'node:http2';
import { answerTrailersOnly } from './answer.js';
import { GrpcCall } from './call.js';
import type { CallContext, CallExtras } from './call-context.js';
import { GrpcPipelineRequest, type GrpcHost } from './grpc-request.js';
import { requestPipeline } from '../pipeline/chain.js';
import type { FlowController } from '../flow/controller.js';
import type { Stage } from '../pipeline/stage.js';
import { GrpcMirrors } from './mirror.js';
import { CLIENT_SESSION_IDLE_MS, CONNECTION_WINDOW_BYTES, MAX_HEADER_LIST_BYTES, SERVER_OPTIONS } from '../wire/h2-settings.js';
import { GrpcUpstreams } from '../upstream/grpc-sessions.js';
import type { EndpointSource } from '../upstream/endpoints.js';
import { GrpcStatus, errorBody } from '../edge/errors.js';
import { schemeOf, type Peer } from '../edge/http-headers.js';
import { LogBudget } from '../observe/log-budget.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { GrpcObserve } from '../observe/observed-grpc.js';
import type { Gatekeeper } from '../auth/gate.js';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { MirrorBudget } from '../upstream/mirror-budget.js';
import type { ShadowConfig } from '../config/shadows.js';
import type { UpstreamConfig } from '../config/upstream.js';
import type { Backend, LiveTable, Picker, Routed, RouteTable } from '../../routing/types.js';
import type { StickyKeys } from '../steer/sticky.js';
import type { BanditEdge } from '../steer/bandit-edge.js';

export interface GrpcProxyDeps {
  /** `state.current` is read once per call, at match time. */
  readonly state: LiveTable;
  readonly picker: Picker;
  /** Sticky assignment's keys (gateway/steer/sticky.ts). */
  readonly sticky?: StickyKeys | undefined;
  /** Bandits: tokens on answers, feedback to its arm (gateway/steer/bandit-edge.ts). */
  readonly bandits?: BanditEdge | undefined;
  /** Flow control (gateway/flow/), for backends with a `seldon.io/gateway-flow` policy. */
  readonly flow?: FlowController | undefined;
  readonly metrics: GatewayMetrics;
  /** The optional cap on copies per shadow upstream, --shadow-max-in-flight (keyed by the gRPC upstream object). */
  readonly budget: MirrorBudget;
  /** Dialling (resolve, connect timeout; TLS: ALPN h2, SNI = upstream host, rejectUnauthorized = tlsVerify) and the retry buffer. */
  readonly upstream: UpstreamConfig;
  /** The CA certificates of --upstream-ca, read once by the data plane. */
  readonly ca?: Buffer | undefined;
  /** The mirror body limit (the budget is `budget`). */
  readonly shadow: ShadowConfig;
  /** Ready pod endpoints per Service, when endpoint routing is on: each call is balanced over them. */
  readonly endpoints?: EndpointSource | undefined;
  /** Auth and rate limits (routes with `backend.gate`), the OAuth front end. */
  readonly gate?: Gatekeeper | undefined;
  /** Where failures are logged. */
  readonly log?: Logger | undefined;
  /** --error-detail internal: statuses also name upstream addresses and causes. */
  readonly errorDetail?: 'public' | 'internal' | undefined;
  /** Which peers may set x-forwarded-for/-proto (the REST side's rule); default: none. */
  readonly trusts?: ((socket: Socket) => boolean) | undefined;
  /** --predictor-header: answers carry `x-seldon-predictor` in their initial metadata. */
  readonly predictorHeader?: boolean | undefined;
  /** --access-log, --otlp-endpoint: what observes each call; undefined when neither is on. */
  readonly observe?: GrpcObserve | undefined;
  /**
   * HTTP/2 streams that are not gRPC (`content-type` not application/grpc*): REST over HTTP/2
   * (rest/h2.ts, wired by the data plane). Without it they get the REST 404 JSON.
   */
  readonly rest?: ((stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[]) => void) | undefined;
  /**
   * The REST request head limits (--max-header-size, --max-headers-count): the server's
   * SETTINGS_MAX_HEADER_LIST_SIZE and header pair limit grow to fit them (never below gRPC's own).
   */
  readonly restHead?: { readonly maxHeaderBytes: number; readonly maxHeadersCount: number } | undefined;
}

/** Server options fitting REST heads up to `head` (HTTP/2 counts 32 bytes more per field than the HTTP/1.1 line). */
function serverOptions(head: GrpcProxyDeps['restHead']): ServerOptions {
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
}

export class GrpcProxy {
  readonly server: Http2Server;
  private readonly eligible: ((backend: Backend) => boolean) | undefined;
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly upstreams: GrpcUpstreams;
  private readonly ctx: Readonly<CallContext>;
  private draining = false;
  private readonly sessionInfo = new WeakMap<Http2Session, SessionInfo>();
  private readonly log: Logger | undefined;
  private readonly bugLog = new LogBudget();
  /** The request pipeline (gateway/pipeline/chain.ts), gRPC's instance, and what its requests ask of this proxy. */
  private readonly pipeline: Stage;
  private readonly host: GrpcHost;

  constructor(private readonly deps: GrpcProxyDeps) {
    this.upstreams = new GrpcUpstreams({ ...deps.upstream, ca: deps.ca, endpoints: deps.endpoints });
    this.eligible = deps.endpoints ? this.upstreams.eligible : undefined;
    const mirrors = new GrpcMirrors(this.upstreams, deps.budget, deps.metrics, deps.shadow.maxBodyBytes);
    this.log = deps.log;
    this.ctx = {
      metrics: deps.metrics,
      upstreams: this.upstreams,
      mirrors,
      retryBufferBytes: deps.upstream.retryBufferBytes,
      predictorHeader: deps.predictorHeader ?? false,
      observe: deps.observe,
      log: deps.log,
      logBudget: new LogBudget(),
      internalDetail: deps.errorDetail === 'internal',
      trusts: deps.trusts ?? (() => false),
    };
    this.host = {
      metrics: deps.metrics,
      observe: deps.observe,
      sticky: deps.sticky,
      call: (stream, headers, routed, extras, since) => this.call(stream, headers, routed, extras, since),
      failed: (stream, backend, err) => this.failed(stream, backend, err),
    };
    this.pipeline = requestPipeline({ state: deps.state, picker: deps.picker, eligible: this.eligible, gate: deps.gate, bandits: deps.bandits, flow: deps.flow });
    this.server = http2.createServer(serverOptions(deps.restHead));
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
  /** Close upstream sessions no route names any more (see GrpcUpstreams.sweep). */
  sweep(table: RouteTable): number {
    return this.upstreams.sweep(table);
  }

  drain(): void {
    if (this.draining) return;
    this.draining = true;
    if (this.server.listening) this.server.close();
    for (const s of this.sessions) this.goaway(s);
  }

  /** Close upstream sessions and client sessions (what is still open is cut). */
  async close(): Promise<void> {
    this.drain();
    for (const s of this.sessions) s.destroy();
    this.sessions.clear();
    this.upstreams.close();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private readonly onSession = (session: ServerHttp2Session): void => {
    this.sessions.add(session);
    const socket = session.socket as Socket | undefined;
    this.sessionInfo.set(session, { peer: { address: socket?.remoteAddress, trusted: socket !== undefined && this.ctx.trusts(socket), proto: schemeOf(socket) }, closed: 0, premature: 0, cut: false });
    session.on('error', ignore);
    session.once('close', () => this.sessions.delete(session));
    // Node's connection window is 64 KiB; the settings only size stream windows.
    session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
    session.setTimeout(CLIENT_SESSION_IDLE_MS, () => session.close());
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
    stream.on('error', ignore);
    this.watchResets(stream);
    try {
      this.route(stream, headers, rawHeaders);
    } catch (err) {
      this.failed(stream, undefined, err);
    }
  };

  /** Count the stream's end against its connection; close a connection that resets too fast. */
  private watchResets(stream: ServerHttp2Stream): void {
    const session = stream.session;
    const count = session && this.sessionInfo.get(session);
    if (!session || !count) return;
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
      this.deps.metrics.clientErrors.labels('too_many_premature_resets').inc();
      const skipped = this.bugLog.take();
      if (skipped !== undefined) {
        this.log?.warn(
          { remoteAddress: count.peer.address, streams: count.closed, prematureResets: count.premature, ...(skipped ? { notLogged: skipped } : {}) },
          'HTTP/2 connection closed: it resets streams faster than it completes them (rapid reset)',
        );
      }
      // GOAWAY ENHANCE_YOUR_CALM, then the socket is closed (the error goes to the ignored session error).
      session.destroy(new Error('too many premature stream resets (rapid reset)'), NGHTTP2_ENHANCE_YOUR_CALM);
    });
  }

  /**
   * Last resort: an unexpected error while handling a call fails that call (INTERNAL), never the
   * process; counted and logged with the deployment.
   */
  private failed(stream: ServerHttp2Stream, backend: Backend | undefined, err: unknown, call?: GrpcCall): void {
    const o = backend?.origin;
    this.deps.metrics.internalErrors.labels('grpc', o?.namespace ?? '', o?.deployment ?? '').inc();
    const skipped = this.bugLog.take();
    if (skipped !== undefined) {
      this.log?.error(
        { protocol: 'grpc', deployment: o ? `${o.namespace}/${o.deployment}` : undefined, err, ...(skipped ? { notLogged: skipped } : {}) },
        'unexpected error while handling a gRPC call: the call fails, the gateway keeps serving',
      );
    }
    try {
      if (call) return call.abort(err);
      if (!stream.headersSent) answerTrailersOnly(stream, GrpcStatus.INTERNAL, `the gateway failed while handling the call${backend ? ` to ${backend.id}` : ''}`);
      else if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    } catch {
      if (!stream.destroyed) stream.destroy();
    }
  }

  private call(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, routed: Routed, extras: CallExtras, since: number): void {
    let call: GrpcCall | undefined;
    try {
      const session = stream.session;
      const peer = (session && this.sessionInfo.get(session)?.peer) ?? NO_PEER;
      call = new GrpcCall(this.ctx, stream, headers, routed, peer, extras, since);
      call.start();
    } catch (err) {
      if (call === undefined) extras.ended?.(false);
      this.failed(stream, routed.backend, err, call);
    }
  }

  private route(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[]): void {
    const since = performance.now();
    const path = headers[':path'] ?? '';
    const ct = headers['content-type'];
    if (ct === undefined || !ct.startsWith('application/grpc')) {
      const rest = this.deps.rest;
      if (rest !== undefined) rest(stream, headers, rawHeaders);
      else this.notGrpc(stream, headers, path, since);
      return;
    }
    this.pipeline.run(new GrpcPipelineRequest(this.host, stream, headers, rawHeaders, path, since));
  }

  /** HTTP/2 without gRPC's content-type, and no REST side: the REST-style 404. */
  private notGrpc(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, path: string, since: number): void {
    this.deps.metrics.unroutedRequest('rest', 'NO_ROUTE', 404, since);
    const body = errorBody(404, 'NO_ROUTE', `no route for ${path}: HTTP/2 requests here must be gRPC (content-type application/grpc)`);
    const head = headers[':method'] === 'HEAD';
    stream.respond({ ':status': 404, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, { endStream: head });
    if (!head) stream.end(body);
    stream.resume();
  }
}
