/**
 * One proxied gRPC call, across its attempts: a transparent stream proxy between the client's
 * HTTP/2 stream and a stream on a pooled upstream session. Request headers, every DATA frame,
 * response headers and trailers pass unchanged (only `:scheme` follows the upstream, and
 * `grpc-timeout` passes unchanged, a retry carries what is left of it); nothing is parsed.
 *
 * Timeouts (docs/routing.md#timeouts-retries-and-circuit-breakers): the client's `grpc-timeout` runs from arrival, the route timeout
 * from the end of the request; whichever ends first before the upstream's response headers
 * answers DEADLINE_EXCEEDED. After headers only the idle timeout applies (no bytes either way),
 * which ends the call with trailers grpc-status 4.
 *
 * Replay: request chunks are kept (by reference) up to `retryBufferBytes` until the response
 * headers arrive. While they are complete, a connect failure or a refused stream (the upstream
 * never processed it, e.g. a GOAWAY race) is replayed on another session up to twice, and the
 * route's retry policy may replay resets and 5xx answers, with backoff. Never after a response
 * byte reached the client.
 */
import { randomUUID } from 'node:crypto';
import http2, { type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { overflowInfo } from '../upstream/breaker.js';
import { dropInternalHeaders } from '../edge/http-headers.js';
import type { AttemptFailure } from '../upstream/retry-policy.js';
import { Attempts } from '../upstream/attempts.js';
import { GrpcStatus } from '../edge/errors.js';
import { RESPOND_END_STREAM, RESPOND_WITH_TRAILERS, answerTrailersOnly, statusTrailers, stopReading } from './answer.js';
import { answerStatus, type GrpcMirrors } from './mirror.js';
import { formatGrpcTimeout, parseGrpcTimeout } from './timeout.js';
import type { FlowSlot } from '../flow/controller.js';
import type { GrpcUpstream, GrpcUpstreams, PooledSession } from '../upstream/grpc-sessions.js';
import type { LogBudget } from '../observe/log-budget.js';
import type { CallTap, GrpcObserve } from '../observe/observed-grpc.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { ARM_HEADER } from '../steer/bandit-edge.js';
import { tagGrpcFrame } from '../steer/answer-tag.js';
import type { Routed } from '../../routing/types.js';

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_FLAG_END_STREAM, NGHTTP2_INTERNAL_ERROR } = http2.constants;
const OVERLOADED = { 'x-envoy-overloaded': 'true' } as const;
const ignore = (): void => undefined;

const RST_NAMES = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
];

/** What the proxy shares with its calls. */
export interface CallContext {
  readonly metrics: GatewayMetrics;
  readonly upstreams: GrpcUpstreams;
  readonly mirrors: GrpcMirrors;
  readonly retryBufferBytes: number;
  /** Answers carry `x-seldon-predictor: <predictor>` in their initial metadata (--predictor-header). */
  readonly predictorHeader?: boolean;
  /** With --access-log or --otlp-endpoint: what taps each call; undefined, nothing is observed. */
  readonly observe?: GrpcObserve | undefined;
  /** Called once per call when it is over (in-flight accounting for drain). */
  callEnded(): void;
  /** Where failures are logged with their details (bounded by `logBudget`). */
  readonly log: Logger | undefined;
  readonly logBudget: LogBudget;
  /**
   * --error-detail internal: statuses name upstream addresses and the underlying error, as the
   * log does. Public (the default): the deployment and the reason only.
   */
  readonly internalDetail: boolean;
  /** Whether the peer may set x-forwarded-for/-proto (--trusted-proxies), as on REST. */
  readonly trusts: (socket: Socket) => boolean;
}

/** The client connection's address, and whether it may set x-forwarded-for/-proto. */
export interface Peer {
  readonly address: string | undefined;
  readonly trusted: boolean;
  /** The client connection's scheme (TLS: https); absent: http. */
  readonly proto?: 'http' | 'https';
}

/** A socket error as the public may see it: what happened, without addresses or library text. */
function publicCause(e: (Error & { code?: string }) | undefined): string {
  const code = e?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'connection reset';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'name not resolved';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
    case undefined:
      return 'connection failed';
    default:
      return /CERT|SSL|TLS|SELF_SIGNED|HOSTNAME/i.test(code) ? 'TLS handshake failed' : 'connection failed';
  }
}

/**
 * X-Forwarded-For and X-Forwarded-Proto as REST sets them (edge/http-headers.ts): from a peer that is
 * not a trusted proxy the client's own are replaced by its address and the scheme; a trusted
 * proxy's are kept, its address appended to X-Forwarded-For.
 */
function forwardedHeaders(headers: IncomingHttpHeaders, { address: peer, trusted, proto: scheme }: Peer): void {
  const xff = headers['x-forwarded-for'];
  const proto = headers['x-forwarded-proto'];
  const given = trusted && typeof xff === 'string' && xff !== '' ? xff : undefined;
  if (peer) headers['x-forwarded-for'] = given === undefined ? peer : `${given}, ${peer}`;
  else if (given !== undefined) headers['x-forwarded-for'] = given;
  else delete headers['x-forwarded-for'];
  headers['x-forwarded-proto'] = trusted && typeof proto === 'string' && proto !== '' ? proto : (scheme ?? 'http');
}

type Failure = Exclude<AttemptFailure, number>;
/** A message given where the upstream is named (`where`), in full (internal detail) or not. */
type Message = (where: string, full: boolean) => string;

/** One gRPC call across its attempts; the retry state is the shared one (upstream/attempts.ts). */
/** Largest bandit answer read whole to carry its token in its SeldonMessage (larger ones carry the metadata alone). */
export const TAG_MAX_BYTES = 64 * 1024;

export class GrpcCall extends Attempts<GrpcUpstream> {
  private readonly arrivedAt = performance.now();
  /** The client's grpc-timeout as sent, and its absolute deadline (performance.now() ms). */
  private readonly clientTimeout: string | undefined;
  private readonly clientDeadlineAt: number | undefined;
  private routeDeadlineAt: number | undefined;

  private attempt: ClientHttp2Stream | undefined;
  private attemptSession: PooledSession | undefined;
  private attemptError: (Error & { code?: string }) | undefined;
  private attempts = 0;

  /** Request chunks kept for replay and mirrors; complete while either flag holds. */
  private chunks: Buffer[] | undefined;
  private size = 0;
  private keepForRetry: boolean;
  private keepForMirror: boolean;
  private requestEnded = false;

  private responseStarted = false;
  private upstreamEnded = false;
  private trailers: OutgoingHttpHeaders | undefined;
  private httpStatus = 0;
  private status: number = GrpcStatus.CANCELLED;
  private sentAt = 0;
  private upstreamSeconds: number | null = null;
  private deadlineAt = Infinity;
  private deadlineWhy: 'client' | 'route' = 'route';
  private timer: NodeJS.Timeout | undefined;
  private done = false;
  /** Access log and tracing: set only when one applies to this call. */
  private readonly tap: CallTap | undefined;
  /** A bandit prediction's answer, read whole (up to TAG_MAX_BYTES) to carry its token in its SeldonMessage. */
  private tagging: { chunks: Buffer[]; size: number } | undefined;

  constructor(
    private readonly ctx: CallContext,
    private readonly client: ServerHttp2Stream,
    /** The client's headers; becomes the upstream request headers (`:scheme`, `grpc-timeout`). */
    private readonly headers: IncomingHttpHeaders,
    private readonly decision: Routed,
    /** The client connection's peer and whether it is a trusted proxy. */
    peer: Peer,
    /** A bandit's: the token its answer carries (metadata and SeldonMessage), or the request already read (feedback). */
    private readonly extras: { readonly token?: string | undefined; readonly request?: readonly Buffer[] | undefined; readonly flow?: FlowSlot | undefined } = {},
    /** When the call reached the gateway (performance.now() ms), before auth and rate limits: its duration counts from then. */
    private readonly since: number = performance.now(),
  ) {
    super(decision.backend, ctx.upstreams.for(decision.backend), ctx.metrics, 'grpc');
    // Taken as the call arrives, before its headers become the upstream's.
    if (ctx.observe !== undefined) this.tap = ctx.observe.begin(client, headers, decision, this.up.name);
    // Clients cannot forge the gateway's own headers (x-seldon-predictor, x-envoy-*), as on REST.
    dropInternalHeaders(headers);
    forwardedHeaders(headers, peer);
    // As on REST (and as Envoy does for gRPC): every call upstream carries a request id.
    if (headers['x-request-id'] === undefined) headers['x-request-id'] = randomUUID();
    this.keepForRetry = ctx.retryBufferBytes > 0;
    this.keepForMirror = decision.mirrors.length > 0;
    const t = headers['grpc-timeout'];
    this.clientTimeout = typeof t === 'string' ? t : undefined;
    const ms = parseGrpcTimeout(this.clientTimeout);
    // After waiting under flow control, the deadline runs from the call's arrival, the wait included.
    this.clientDeadlineAt = ms === undefined ? undefined : (extras.flow !== undefined ? since : this.arrivedAt) + ms;
  }

  start(): void {
    if (this.client.destroyed || this.client.closed) {
      // The client left while the call waited (auth, rate limits): its 'close' has been and gone.
      this.done = true;
      this.extras.flow?.release(false);
      this.ctx.metrics.request(this.backend, 'grpc', 'primary', GrpcStatus.CANCELLED, null, this.since);
      this.tap?.end(GrpcStatus.CANCELLED, 0, null);
      this.ctx.callEnded();
      return;
    }
    const overflow = this.admit();
    if (overflow) {
      this.done = true;
      this.extras.flow?.release(false);
      this.ctx.metrics.overflow(this.backend, 'grpc', overflow);
      this.ctx.metrics.request(this.backend, 'grpc', 'primary', GrpcStatus.UNAVAILABLE, null, this.since);
      answerTrailersOnly(
        this.client,
        GrpcStatus.UNAVAILABLE,
        overflowInfo(overflow, this.ctx.internalDetail ? `${this.up.name} (${this.backend.id})` : this.backend.id, this.backend.breaker),
        OVERLOADED,
      );
      this.tap?.end(GrpcStatus.UNAVAILABLE, 0, null);
      this.ctx.callEnded();
      return;
    }
    const c = this.client;
    c.on('close', this.onClientClose);
    const request = this.extras.request;
    if (request === undefined) {
      c.on('data', this.onClientData);
      c.once('end', this.onClientEnd);
    }
    if (this.backend.idleTimeoutMs > 0) c.setTimeout(this.backend.idleTimeoutMs, this.onIdle);
    if (this.clientDeadlineAt !== undefined) this.armDeadline(this.clientDeadlineAt, 'client');
    this.headers[':scheme'] = this.up.tls ? 'https' : 'http';
    if (request !== undefined) {
      // Read whole already (feedback, for its token): sent as one, and the request has ended.
      this.chunks = [...request];
      this.size = request.reduce((n, c) => n + c.length, 0);
      if (this.size > this.ctx.retryBufferBytes) this.keepForRetry = false;
      this.dispatch();
      this.onClientEnd();
      return;
    }
    this.dispatch();
  }

  // ---- attempts ------------------------------------------------------------------------------

  protected dispatch(): void {
    if (this.done) return;
    const now = performance.now();
    this.budgetHeader(now);
    this.attempts++;
    if (this.tap !== undefined) this.tap.attempt(this.headers);
    let opened: { stream: ClientHttp2Stream; session: PooledSession };
    try {
      // A retry prefers another endpoint than the attempt that failed.
      opened = this.up.request(this.headers, this.attempts > 1 ? this.attemptSession : undefined);
      if (this.tap !== undefined) this.tap.attempted(opened.session.target.host, opened.session.target.port);
    } catch (err) {
      this.fail(GrpcStatus.UNAVAILABLE, (w, full) => `could not open a stream to ${w}${full ? `: ${(err as Error).message}` : ''}`);
      return;
    }
    const s = opened.stream;
    this.attempt = s;
    this.attemptSession = opened.session;
    this.attemptError = undefined;
    this.sentAt = now;
    s.on('response', this.onResponse);
    s.on('data', this.onUpstreamData);
    s.on('trailers', this.onUpstreamTrailers);
    s.on('end', this.onUpstreamEnd);
    s.on('error', this.onUpstreamError);
    s.on('close', this.onUpstreamClose);
    if (this.chunks) for (const chunk of this.chunks) s.write(chunk);
    if (this.requestEnded) s.end();
    else if (this.client.isPaused()) this.client.resume();
    this.armTryTimer();
  }

  /**
   * The upstream sees the client's budget: its grpc-timeout passes unchanged (docs/routing.md#grpc-metadata-matching),
   * and a retry carries what is left of it. The route timeout is not imposed on the upstream: it
   * only bounds the wait for response headers (docs/routing.md#timeouts), so a long stream the route allows survives.
   */
  private budgetHeader(now: number): void {
    if (this.clientDeadlineAt === undefined || this.attempts === 0) return;
    this.headers['grpc-timeout'] = formatGrpcTimeout(this.clientDeadlineAt - now);
  }

  /** Stop listening to the current attempt and cancel it upstream (RST_STREAM CANCEL). */
  private dropAttempt(code: number = NGHTTP2_CANCEL): void {
    const s = this.attempt;
    if (!s) return;
    this.attempt = undefined;
    this.clearTryTimer();
    this.unlisten(s);
    if (!s.closed && !s.destroyed) s.close(code);
  }

  /** Take this call's handlers off an upstream stream (its errors are ignored from now on). */
  private unlisten(s: ClientHttp2Stream): void {
    s.off('response', this.onResponse);
    s.off('data', this.onUpstreamData);
    s.off('trailers', this.onUpstreamTrailers);
    s.off('end', this.onUpstreamEnd);
    s.off('error', this.onUpstreamError);
    s.off('close', this.onUpstreamClose);
    s.off('drain', this.resumeClient);
    s.on('error', ignore);
  }

  private onAttemptFailed(failure: Failure, detail: string, cause: string): void {
    this.dropAttempt();
    if (this.tap !== undefined) this.tap.attemptFailed(failure);
    if (this.replayNow(failure, this.keepForRetry)) return;
    if (this.mayRetry(failure)) return;
    if (failure === 'connect') this.fail(GrpcStatus.UNAVAILABLE, (w, full) => `could not connect to ${w}: ${full ? detail : cause}`);
    else if (failure === 'refused') this.fail(GrpcStatus.UNAVAILABLE, (w, full) => `${w} refused the stream: ${full ? detail : cause}`);
    else this.fail(GrpcStatus.UNAVAILABLE, (w, full) => `${w} reset the stream before answering: ${full ? detail : cause}`);
  }

  /** Retry under the route's policy (replayable, retries and breaker budget left); true if so. */
  private mayRetry(what: Failure | number): boolean {
    if (!this.retry(what, this.keepForRetry)) return false;
    // The client's further request bytes wait for the retry's stream.
    if (!this.requestEnded) this.client.pause();
    return true;
  }

  // ---- client side ---------------------------------------------------------------------------

  private readonly onClientData = (chunk: Buffer): void => {
    if (this.done) return;
    if (this.tap !== undefined) this.tap.received(chunk.length);
    if (this.keepForRetry || this.keepForMirror) this.keep(chunk);
    const s = this.attempt;
    if (s !== undefined && !s.write(chunk)) {
      this.client.pause();
      s.once('drain', this.resumeClient);
    }
  };

  private keep(chunk: Buffer): void {
    (this.chunks ??= []).push(chunk);
    this.size += chunk.length;
    if (this.keepForRetry && this.size > this.ctx.retryBufferBytes) this.keepForRetry = false;
    if (this.keepForMirror && this.size > this.ctx.mirrors.maxBodyBytes) {
      this.keepForMirror = false;
      this.ctx.mirrors.tooLarge(this.decision.mirrors);
    }
    if (!this.keepForRetry && !this.keepForMirror) this.chunks = undefined;
  }

  private readonly resumeClient = (): void => {
    if (!this.done && !this.retryPending) this.client.resume();
  };

  private readonly onClientEnd = (): void => {
    this.requestEnded = true;
    if (this.done) return;
    this.attempt?.end();
    const routeMs = this.backend.timeoutMs;
    if (!this.responseStarted && routeMs > 0) {
      // Time spent waiting for a flow control slot counts against it (docs/flow-control.md#timeouts).
      const waited = this.extras.flow?.waitedMs ?? 0;
      this.routeDeadlineAt = performance.now() + (waited > 0 ? Math.max(1, routeMs - waited) : routeMs);
      this.armDeadline(this.routeDeadlineAt, 'route');
    }
    if (this.keepForMirror) {
      this.keepForMirror = false;
      this.ctx.mirrors.send(this.decision.mirrors, { ...this.headers }, this.chunks ?? [], this.tap);
      if (!this.keepForRetry) this.chunks = undefined;
    }
  };

  /** The client reset the stream or its connection closed: cancel upstream at once. */
  private readonly onClientClose = (): void => {
    if (this.done) return;
    this.status = GrpcStatus.CANCELLED;
    this.dropAttempt();
    this.finish();
  };

  // ---- upstream side -------------------------------------------------------------------------

  private readonly onResponse = (headers: IncomingHttpHeaders, flags: number): void => {
    if (this.done) return;
    this.clearTryTimer();
    const httpStatus = Number(headers[':status']);
    if (this.tap !== undefined) this.tap.attemptStatus(httpStatus);
    if (httpStatus !== 200 && this.mayRetry(httpStatus)) {
      this.dropAttempt();
      return;
    }
    this.clearDeadline();
    this.responseStarted = true;
    this.httpStatus = httpStatus;
    this.upstreamSeconds = (performance.now() - this.sentAt) / 1000;
    this.keepForRetry = false;
    if (!this.keepForMirror) this.chunks = undefined;
    const c = this.client;
    if (c.destroyed || c.closed) return;
    const trailersOnly = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    if (!trailersOnly) c.once('wantTrailers', this.onWantTrailers);
    if (this.ctx.predictorHeader) headers['x-seldon-predictor'] = this.backend.origin.predictor;
    const token = this.extras.token;
    if (token !== undefined) {
      headers[ARM_HEADER] = token;
      if (!trailersOnly && httpStatus === 200) this.tagging = { chunks: [], size: 0 };
    }
    try {
      c.respond(headers, trailersOnly ? RESPOND_END_STREAM : RESPOND_WITH_TRAILERS);
    } catch (err) {
      // Headers Node will not send on (an upstream protocol violation); nothing reached the client.
      this.responseStarted = false;
      this.dropAttempt();
      this.fail(GrpcStatus.INTERNAL, (w, full) => `${w} answered with headers that cannot be forwarded${full ? `: ${(err as Error).message}` : ''}`);
      return;
    }
    if (trailersOnly) {
      // Trailers-only: the status is in these headers.
      this.status = answerStatus(headers, httpStatus);
      this.upstreamEnded = true;
      this.finish();
    }
  };

  private readonly onUpstreamData = (chunk: Buffer): void => {
    const c = this.client;
    if (this.done || c.destroyed) return;
    if (this.tap !== undefined) this.tap.sent(chunk.length);
    const t = this.tagging;
    if (t !== undefined) {
      t.chunks.push(chunk);
      t.size += chunk.length;
      if (t.size <= TAG_MAX_BYTES) return;
      // Larger than a tag is worth: passed on as it comes, the token in the metadata only.
      this.tagging = undefined;
      chunk = Buffer.concat(t.chunks, t.size);
    }
    if (!c.write(chunk)) {
      this.attempt?.pause();
      c.once('drain', this.resumeUpstream);
    }
  };

  private readonly resumeUpstream = (): void => {
    this.attempt?.resume();
  };

  private readonly onUpstreamTrailers = (trailers: IncomingHttpHeaders): void => {
    this.trailers = trailers;
  };

  private readonly onUpstreamEnd = (): void => {
    if (this.done || !this.responseStarted) return;
    // Node also ends the readable side of a stream its session lost; without trailers that is
    // not an answer but a failure, which 'close' reports.
    if (this.trailers === undefined && this.attempt?.destroyed) return;
    this.upstreamEnded = true;
    this.endResponse();
  };

  private readonly onUpstreamError = (err: Error & { code?: string }): void => {
    this.attemptError = err;
  };

  private readonly onUpstreamClose = (): void => {
    if (this.done || this.upstreamEnded) return;
    const s = this.attempt!;
    const ps = this.attemptSession!;
    if (this.responseStarted && this.trailers !== undefined && s.rstCode === NGHTTP2_NO_ERROR) {
      // Complete answer, then RST_STREAM(NO_ERROR): the upstream is done with our request half.
      this.upstreamEnded = true;
      this.endResponse();
      return;
    }
    let failure: Failure;
    /** What happened, in full (the log, --error-detail internal) and for the public. */
    let detail: string;
    let cause: string;
    if (!ps.connected) {
      failure = 'connect';
      // Node cancels streams queued on a session that failed to connect; the socket error is the cause.
      const e = ps.failure ?? ((this.attemptError?.cause as (Error & { code?: string }) | undefined) || this.attemptError);
      detail = e?.code ?? e?.message ?? 'connection failed';
      cause = publicCause(e);
    } else if (s.rstCode === NGHTTP2_REFUSED_STREAM) {
      failure = 'refused';
      detail = cause = 'REFUSED_STREAM (it was not processed)';
    } else {
      failure = 'reset';
      const rst = `${RST_NAMES[s.rstCode] ?? 'code'} (${s.rstCode})`;
      const lost = ps.session.destroyed || ps.session.closed;
      detail = lost ? `the connection closed${ps.failure ? `: ${ps.failure.code ?? ps.failure.message}` : ''}` : `RST_STREAM ${rst}`;
      cause = lost ? 'the connection closed' : `RST_STREAM ${rst}`;
    }
    if (!this.responseStarted) {
      this.onAttemptFailed(failure, detail, cause);
      return;
    }
    // Mid-answer: the status can no longer be the upstream's; say what happened in trailers.
    this.dropAttempt();
    this.fail(GrpcStatus.UNAVAILABLE, (w, full) => `${w} reset the stream after answering: ${full ? detail : cause}`);
  };

  /** The upstream's answer is complete: end the client's stream; its trailers follow. */
  private endResponse(): void {
    const c = this.client;
    if (c.destroyed || c.closed) {
      this.finish();
      return;
    }
    const t = this.tagging;
    if (t !== undefined) {
      this.tagging = undefined;
      const answer = Buffer.concat(t.chunks, t.size);
      // One whole uncompressed message gets the tag; anything else (a stream, compression) goes as it came.
      if (answer.length > 0) c.write(tagGrpcFrame(answer, this.extras.token!) ?? answer);
    }
    c.end();
  }

  private readonly onWantTrailers = (): void => {
    let t: OutgoingHttpHeaders | undefined = this.trailers;
    if (t === undefined) {
      // An upstream that ends a 200 gRPC answer without a status broke the protocol; say so.
      t =
        this.httpStatus === 200
          ? statusTrailers(
              GrpcStatus.INTERNAL,
              this.logged(GrpcStatus.INTERNAL, (w) => `${w} ended the stream without a grpc-status`),
            )
          : {};
    }
    this.status = answerStatus(t, this.httpStatus);
    try {
      this.client.sendTrailers(t);
    } catch {
      // The client went away meanwhile; 'close' accounts for it.
    }
    this.finish();
  };

  // ---- timeouts ------------------------------------------------------------------------------

  private armDeadline(at: number, why: 'client' | 'route'): void {
    if (at >= this.deadlineAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.deadlineAt = at;
    this.deadlineWhy = why;
    this.timer = setTimeout(this.onDeadline, Math.max(0, at - performance.now()));
  }

  private clearDeadline(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.deadlineAt = Infinity;
  }

  private readonly onDeadline = (): void => {
    if (this.done || this.responseStarted) return;
    this.ctx.metrics.timeout(this.backend, 'grpc');
    this.dropAttempt();
    this.fail(GrpcStatus.DEADLINE_EXCEEDED, (where) =>
      this.deadlineWhy === 'route'
        ? `${where} did not answer within the route timeout of ${this.backend.timeoutMs} ms`
        : `the client's deadline (grpc-timeout ${this.clientTimeout}) expired before ${where} answered`,
    );
  };

  protected onPerTryTimeout(): void {
    if (this.done || this.responseStarted) return;
    this.dropAttempt();
    if (this.tap !== undefined) this.tap.attemptFailed('per_try_timeout');
    // Retried as a 504 answer would be: when the policy's retry_on covers it.
    if (this.mayRetry(504)) return;
    this.ctx.metrics.timeout(this.backend, 'grpc');
    this.fail(GrpcStatus.DEADLINE_EXCEEDED, (w) => `${w} did not answer within the per-try timeout of ${this.backend.retry?.perTryTimeoutMs} ms`);
  }

  private readonly onIdle = (): void => {
    if (this.done) return;
    this.ctx.metrics.timeout(this.backend, 'grpc');
    this.dropAttempt();
    this.fail(GrpcStatus.DEADLINE_EXCEEDED, (w) => `no bytes in either direction for ${this.backend.idleTimeoutMs} ms on the call to ${w}`);
  };

  // ---- endings -------------------------------------------------------------------------------

  /**
   * The upstream as a message names it: with --error-detail internal (and in the log) its address
   * and backend (`upstream host:port (ns/name/predictor)`), else only the backend: no Service
   * names, ports or addresses reach the public.
   */
  private where(full: boolean): string {
    return full ? `upstream ${this.up.name} (${this.backend.id})` : `the upstream of ${this.backend.id}`;
  }

  /**
   * Log a failure of the gateway's in full (bounded by the log budget) and give the client's
   * message: in full with --error-detail internal, else without addresses or library text.
   */
  private logged(code: number, text: Message): string {
    const full = text(this.where(true), true);
    const log = this.ctx.log;
    const skipped = log === undefined ? undefined : this.ctx.logBudget.take();
    if (log !== undefined && skipped !== undefined) {
      const o = this.backend.origin;
      log.warn(
        { protocol: 'grpc', deployment: `${o.namespace}/${o.deployment}`, backend: this.backend.id, grpcStatus: code, problem: full, ...(skipped ? { notLogged: skipped } : {}) },
        'gRPC call failed',
      );
    }
    return this.ctx.internalDetail ? full : text(this.where(false), false);
  }

  /**
   * Last resort (grpc/proxy.ts): an unexpected error while handling the call ends the call, not
   * the process: INTERNAL (or, once answered, trailers or a reset), whatever state it was in.
   */
  abort(err: unknown): void {
    if (this.done) return;
    const detail = err instanceof Error ? err.message : String(err);
    try {
      this.dropAttempt();
      this.fail(GrpcStatus.INTERNAL, (w, full) => `the gateway failed while handling the call to ${w}${full ? `: ${detail}` : ''}`);
    } catch {
      if (!this.client.destroyed) this.client.close(NGHTTP2_INTERNAL_ERROR);
      if (!this.done) {
        this.done = true;
        this.tap?.end(GrpcStatus.INTERNAL, this.httpStatus, this.upstreamSeconds);
        this.ctx.callEnded();
      }
    }
  }

  /** End the call with a status of the gateway's: trailers-only, or trailers after headers. */
  private fail(code: number, text: Message): void {
    if (this.done) return;
    const message = this.logged(code, text);
    this.status = code;
    const c = this.client;
    if (!this.responseStarted) {
      answerTrailersOnly(c, code, message);
      this.finish();
      return;
    }
    if (c.destroyed || c.closed || c.writableNeedDrain) {
      // A client that is not reading would never get the trailers: reset its stream instead.
      if (!c.destroyed) c.close(NGHTTP2_CANCEL);
      this.finish();
      return;
    }
    this.trailers = statusTrailers(code, message);
    this.httpStatus = 200;
    c.end(); // -> wantTrailers -> finish
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.settle();
    this.extras.flow?.release(this.upstreamSeconds !== null);
    if (this.backend.idleTimeoutMs > 0 && !this.client.destroyed) this.client.setTimeout(0);
    // An upstream stream still open needs a word: cancelled if it never finished, NO_ERROR if it
    // answered while the client kept sending.
    const s = this.attempt;
    if (s !== undefined && !s.closed && !s.destroyed && !(this.upstreamEnded && s.writableEnded)) {
      s.close(this.upstreamEnded ? NGHTTP2_NO_ERROR : NGHTTP2_CANCEL);
    }
    stopReading(this.client);
    this.ctx.metrics.request(this.backend, 'grpc', 'primary', this.status, this.upstreamSeconds, this.since);
    if (this.tap !== undefined) this.tap.end(this.status, this.httpStatus, this.upstreamSeconds);
    this.ctx.callEnded();
    // The handlers would only find `done`: off they come, so the call is not kept alive by its
    // streams. Node 20 keeps a closed stream through young-generation collections until a full
    // one (load/README.md, gRPC), and all the call holds would be copied and promoted with it.
    if (s !== undefined) this.unlisten(s);
    const c = this.client;
    c.off('close', this.onClientClose);
    c.off('data', this.onClientData);
    c.off('end', this.onClientEnd);
    c.off('timeout', this.onIdle);
    c.off('drain', this.resumeUpstream);
  }
}
