/**
 * The REST hot path: match, then stream the request to the chosen upstream over a pooled
 * keep-alive connection (upstream/http1-client.ts, raw headers) and stream the answer back.
 *
 * Per request: one `match`, one header copy, one dispatch. The body is buffered only when the
 * route can retry (up to `retryBufferBytes`) or mirrors (teed up to the shadow limit while it
 * streams to the primary). Timeouts, retries and breaker answers follow docs/routing.md#timeouts-retries-and-circuit-breakers (the
 * retry state is upstream/attempts.ts, shared with gRPC); every error the gateway makes has a
 * Seldon-style JSON body (edge/http-answer.ts). A gated route (`backend.gate`) asks the gate
 * (auth/gate.ts) for a verdict and renders it here: a refusal as that JSON, an allowance proxied.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { overflowInfo } from '../upstream/breaker.js';
import type { AttemptFailure } from '../upstream/retry-policy.js';
import { Attempts } from '../upstream/attempts.js';
import type { GatewayReason } from '../edge/errors.js';
import { announcesBody, isWhole, type RestRequest, type RestResponse } from '../edge/exchange.js';
import { sendError, sendJson } from '../edge/http-answer.js';
import { clientResponseHeaders, headerGetter, schemeOf, shadowHost, upstreamRequestHeaders } from '../edge/http-headers.js';
import { corsRequest, corsResponseHeaders } from './cors.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { GateVerdict, Gatekeeper } from '../auth/gate.js';
import { applyEdits, type Authorized } from '../ext-auth/subject.js';
import { sendRawDenial, withAllowance } from './ext-auth-answer.js';
import type { ResponseTap, RestObserve } from '../observe/observed-rest.js';
import { LogBudget } from '../observe/log-budget.js';
import { RequestBody, readSmallBody } from './request-body.js';
import type { RouteState } from '../process/route-state.js';
import type { RestMirrors } from './mirrors.js';
import type { Endpoint, Upstreams, UpstreamPool } from '../upstream/pools.js';
import type { ResponseHandler, UpstreamAttempt } from '../upstream/http1-client.js';
import { match } from '../../routing/match.js';
import type { Backend, Decision, Picker, Routed } from '../../routing/types.js';
import { StickyKeys, StickyRouteRequest } from '../steer/sticky.js';
import { ARM_HEADER, isFeedbackPath, type BanditEdge, type BanditOf } from '../steer/bandit-edge.js';
import { tagJsonAnswer, tokenFromFeedbackJson } from '../steer/answer-tag.js';
import type { UpstreamConfig } from '../config/upstream.js';
import type { FlowController, FlowSlot } from '../flow/controller.js';
import { restFlowStage } from '../flow/stage.js';

export interface RestProxyDeps {
  readonly state: RouteState;
  readonly picker: Picker;
  readonly upstreams: Upstreams;
  readonly mirrors: RestMirrors;
  readonly metrics: GatewayMetrics;
  /** The retry buffer and the largest upstream response head accepted (status line and headers; larger: 502). */
  readonly upstream: Pick<UpstreamConfig, 'retryBufferBytes' | 'maxResponseHeaderBytes'>;
  /** With endpoint routing: members without a ready endpoint leave the weighted pick. */
  readonly eligible?: ((backend: Backend) => boolean) | undefined;
  /** public: error answers name the deployment and reason only; internal: upstream addresses and causes too. */
  readonly errorDetail?: 'public' | 'internal';
  readonly log?: Logger | undefined;
  /** Auth and rate limits, for routes that have them (`backend.gate`), and the OAuth front end. */
  readonly gate?: Gatekeeper | undefined;
  /** Whether a peer may set X-Forwarded-For/-Proto (--trusted-proxies); default: none may. */
  readonly trusts?: ((socket: Socket) => boolean) | undefined;
  /** When --predictor-header, --access-log, --otlp-endpoint or --shadow-compare is on: the per-request tap. */
  readonly observe?: RestObserve | undefined;
  /** Sticky assignment's keys (gateway/steer/sticky.ts); without them sticky cookies are neither read nor set. */
  readonly sticky?: StickyKeys | undefined;
  /** Bandits: tokens on answers, feedback to its arm (gateway/steer/bandit-edge.ts). */
  readonly bandits?: BanditEdge | undefined;
  /** Flow control (gateway/flow/), for backends with a `seldon.io/gateway-flow` policy. */
  readonly flow?: FlowController | undefined;
}

/** What the gateway adds to one exchange beyond proxying it. */
export interface ExchangeExtras {
  /** Headers added to the model's answer (a new sticky cookie), as name, value pairs. */
  readonly answerHeaders?: readonly string[] | undefined;
  /** A bandit's attribution token: on the answer's header, and in its JSON `meta.tags` when it fits. */
  readonly token?: string | undefined;
  /** The body, already read (feedback read for its token). */
  readonly body?: Buffer | null | undefined;
  /** The start of a body read in part (feedback too large to read for a token): the rest streams after it. */
  readonly bodyHead?: Buffer[] | undefined;
  /** The external auth service's edits of the request (auth/ext-auth.ts). */
  readonly authorized?: Authorized | undefined;
  /** When the request reached the gateway (performance.now() ms): its duration is counted from then. */
  readonly since?: number | undefined;
  /** Its slot under flow control (gateway/flow/), held until the exchange settles. */
  readonly flow?: FlowSlot | undefined;
}

const NO_EXTRAS: ExchangeExtras = {};

/** A deferred answer head while a bandit's answer is read whole to carry its token. */
interface Tagging {
  readonly status: number;
  readonly statusText: string;
  readonly headers: string[];
  readonly chunks: Buffer[];
  size: number;
}

/** The value of header `name` (lower case) in a name, value array. */
function valueOf(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.length === name.length && headers[i]!.toLowerCase() === name) return headers[i + 1];
  return undefined;
}

const JSON_TYPE = /^application\/(?:[\w.+-]*\+)?json\b/i;

const TRUST_NONE = (): boolean => false;

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UPSTREAM_CONNECT_TIMEOUT',
  'ECONNABORTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
]);

type Failure = Exclude<AttemptFailure, number>;

function classify(err: Error & { code?: string }): Failure {
  if (err.code === 'UPSTREAM_HEADERS_TIMEOUT' || err.code === 'UPSTREAM_BODY_TIMEOUT') return 'idle';
  if (err.code && CONNECT_CODES.has(err.code)) return 'connect';
  return 'reset';
}

/**
 * A body this small (by Content-Length) is read whole before it is sent, as nginx buffers request
 * bodies: one write upstream instead of a stream, and a body that can be sent again after a
 * connect failure. Larger and chunked bodies stream. (The HTTP/1.1 lane reads bodies up to this whole.)
 */
export const SMALL_BODY_BYTES = 64 * 1024;
const isSmall = (req: RestRequest): boolean => {
  const cl = req.headers['content-length'];
  return cl !== undefined && req.headers['transfer-encoding'] === undefined && Number(cl) <= SMALL_BODY_BYTES;
};

/** Largest bandit answer read whole to carry its token in `meta.tags` (larger ones carry the header alone). */
export const TAG_MAX_BYTES = 64 * 1024;
/** Largest feedback body read for its token (a Seldon Feedback echoes a prediction answer). */
const FEEDBACK_MAX_BYTES = 1024 * 1024;

class AttemptAborted extends Error {
  constructor(readonly why: 'timeout' | 'per-try-timeout' | 'client') {
    super(why);
  }
}

/**
 * One proxied request, across its attempts (the retry state is the shared one of
 * upstream/attempts.ts). It is the upstream client's handler of each attempt.
 */
class Exchange extends Attempts<UpstreamPool> implements ResponseHandler {
  private body: Buffer | RequestBody | null = null;
  /** The body can be sent again (absent, or fully buffered). */
  private replayable = true;
  /** The endpoint of the attempt in flight (its outstanding count includes us). */
  private endpoint: Endpoint | undefined;
  /** The endpoint of the last failed attempt: the next one prefers another. */
  private failedEndpoint: Endpoint | undefined;
  private attempt: UpstreamAttempt | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sentAt = 0;
  private upstreamSeconds: number | null = null;
  private status = 0;
  private discard = false;
  private done = false;
  /** Predictor header, access log, answer capture for comparison: set only when one applies. */
  private tap: ResponseTap | undefined;
  /** A bandit's answer being read whole to carry its token. */
  private tagging: Tagging | undefined;

  constructor(
    private readonly proxy: RestProxy,
    private readonly req: RestRequest,
    private readonly res: RestResponse,
    private readonly decision: Routed,
    private readonly headers: string[],
    private readonly extras: ExchangeExtras,
  ) {
    super(decision.backend, proxy.deps.upstreams.for(decision.backend), proxy.deps.metrics, 'rest');
  }

  start(): void {
    const observe = this.proxy.deps.observe;
    if (observe !== undefined) this.tap = observe.begin(this.req, this.res, this.decision, this.headers, this.up.name);
    const overflow = this.admit();
    if (overflow) {
      this.done = true;
      this.extras.flow?.release(false);
      this.proxy.deps.metrics.overflow(this.backend, 'rest', overflow);
      this.proxy.deps.metrics.request(this.backend, 'rest', 'primary', 503, null, this.extras.since);
      this.tap?.end(503, null, false);
      sendError(this.req, this.res, 503, 'UPSTREAM_OVERFLOW', overflowInfo(overflow, this.proxy.upstreamName(this.up, this.backend), this.backend.breaker), { 'x-envoy-overloaded': 'true' });
      return;
    }
    this.res.once('close', () => {
      if (this.done) return;
      // The edge answered the request itself (its body broke off: malformed framing, too slow):
      // that answer's status; otherwise the client went away.
      this.status = this.res.writableEnded ? this.res.statusCode : 499;
      this.finish();
      this.abortUpstream(new AttemptAborted('client'));
    });
    const req = this.req;
    const body = req.body;
    if (this.extras.bodyHead !== undefined && !isWhole(body)) {
      // Read in part already (feedback, for its token): too large to replay.
      this.retriesLeft = 0;
      if (this.decision.mirrors.length) this.proxy.deps.mirrors.tooLarge(this.decision.mirrors);
      this.streamBody(body, this.extras.bodyHead, false);
      this.dispatch();
    } else if (this.extras.body !== undefined) {
      // Read already (feedback, for its token).
      if (this.extras.body !== null && this.extras.body.length > this.proxy.deps.upstream.retryBufferBytes) this.retriesLeft = 0;
      this.dispatchWhole(this.extras.body);
    } else if (isWhole(body)) {
      // Read whole before it was served (the lane's); one over the retry buffer is still not retried.
      if (body !== null && body.length > this.proxy.deps.upstream.retryBufferBytes) this.retriesLeft = 0;
      this.dispatchWhole(body);
    } else if (!announcesBody(req)) {
      this.dispatchWhole(null);
    } else if (this.backend.retry || isSmall(req)) {
      this.bufferThenDispatch(body);
    } else {
      this.streamBody(body, [], this.decision.mirrors.length > 0);
      this.dispatch();
    }
  }

  /** The whole body is here (or there is none): the route timeout starts, the primary and the mirrors go. */
  private dispatchWhole(body: Buffer | null): void {
    this.body = body;
    this.startTimer();
    this.dispatch();
    const mirrors = this.decision.mirrors;
    if (mirrors.length === 0) return;
    if (body !== null && body.length > this.proxy.deps.mirrors.maxBodyBytes) this.proxy.deps.mirrors.tooLarge(mirrors);
    else this.mirror(body);
  }

  /**
   * Stream the body to the upstream (after `head`, chunks already read); with `copy`, mirrors
   * get the whole body once it has ended, without holding the primary.
   */
  private streamBody(stream: Readable, head: Buffer[], copy: boolean): void {
    const mirrors = this.decision.mirrors;
    const limit = this.proxy.deps.mirrors.maxBodyBytes;
    this.body = new RequestBody(this.req, stream, head, copy ? { limit, whole: (b) => (b === null ? this.proxy.deps.mirrors.tooLarge(mirrors) : this.mirror(b)) } : undefined);
    this.replayable = false;
    stream.once('end', () => this.startTimer());
  }

  /** Routes that retry, and small bodies, are read first (up to the retry buffer) so they can be replayed. */
  private bufferThenDispatch(req: Readable): void {
    const limit = this.proxy.deps.upstream.retryBufferBytes;
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      chunks.push(c);
      size += c.length;
      if (size > limit) {
        // Too large to replay: stream what we have plus the rest, without retries.
        req.off('data', onData);
        req.off('end', onEnd);
        this.retriesLeft = 0;
        if (this.decision.mirrors.length) this.proxy.deps.mirrors.tooLarge(this.decision.mirrors);
        this.streamBody(req, chunks, false);
        this.dispatch();
      }
    };
    const onEnd = (): void => {
      req.off('data', onData);
      this.dispatchWhole(Buffer.concat(chunks, size));
    };
    req.on('data', onData);
    req.once('end', onEnd);
  }

  private mirror(body: Buffer | null): void {
    const host = this.req.host;
    const headers = this.headers.slice();
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i]!.length === 4 && headers[i]!.toLowerCase() === 'host') headers[i + 1] = shadowHost(host);
    }
    this.proxy.deps.mirrors.send(this.decision.mirrors, this.req.method, this.decision.upstreamPath, headers, body, this.tap?.capture, this.tap);
  }

  /** The route timeout starts once the request has been received in full (docs/routing.md#timeouts-retries-and-circuit-breakers). */
  private startTimer(): void {
    const ms = this.backend.timeoutMs;
    // Time spent waiting for a flow control slot counts against it (docs/flow-control.md#timeouts).
    const waited = this.extras.flow?.waitedMs ?? 0;
    if (ms > 0 && !this.done && !this.timer) this.timer = setTimeout(() => this.onTimeout(), waited > 0 ? Math.max(1, ms - waited) : ms);
  }

  private onTimeout(): void {
    if (this.done) return;
    this.proxy.deps.metrics.timeout(this.backend, 'rest');
    if (this.res.headersSent) {
      this.res.destroy();
      this.finish();
    } else {
      this.fail(504, 'UPSTREAM_TIMEOUT', `${this.who()} did not answer within ${this.backend.timeoutMs} ms`);
    }
    this.abortUpstream(new AttemptAborted('timeout'));
  }

  private abortUpstream(err: AttemptAborted): void {
    const a = this.attempt;
    this.attempt = undefined;
    a?.abort(err);
  }

  protected dispatch(): void {
    if (this.done) return;
    this.discard = false;
    this.sentAt = performance.now();
    this.armTryTimer();
    const endpoint = this.up.pick(this.failedEndpoint);
    if (endpoint === undefined) {
      const invalid = this.up.invalid;
      if (invalid !== undefined) this.proxy.internalError('upstream', new Error(invalid), this.backend);
      this.fail(503, 'NO_HEALTHY_UPSTREAM', invalid !== undefined ? `${this.who()} has an address that cannot be dialled` : `${this.who()} has no ready endpoint`, invalid);
      return;
    }
    this.endpoint = endpoint;
    endpoint.outstanding++;
    if (this.tap !== undefined) this.tap.attempt(endpoint.address, this.headers);
    const idle = this.backend.idleTimeoutMs;
    endpoint.pool.dispatch(
      {
        method: this.req.method,
        path: this.decision.upstreamPath,
        headers: this.headers,
        body: this.body,
        headersTimeout: idle,
        bodyTimeout: idle,
      },
      this,
    );
  }

  protected onPerTryTimeout(): void {
    this.abortUpstream(new AttemptAborted('per-try-timeout'));
  }

  // ---- the upstream client's handler (raw headers: no header objects are built) ----

  onConnect(attempt: UpstreamAttempt): void {
    if (this.done) attempt.abort(new AttemptAborted('client'));
    else this.attempt = attempt;
  }

  onHeaders(statusCode: number, rawHeaders: string[], statusText: string, length: number): boolean {
    if (this.done) return true;
    this.clearTryTimer();
    if (this.tap !== undefined) this.tap.attemptStatus(statusCode);
    if (this.retryDecided(statusCode, this.replayable)) {
      // Read and drop this answer; the retry is sent once it has ended.
      this.discard = true;
      return true;
    }
    this.upstreamSeconds = (performance.now() - this.sentAt) / 1000;
    this.status = statusCode;
    // Framed by the gateway: the model's Content-Length only when it is the body's (docs/routing.md#answer-framing).
    const headers = clientResponseHeaders(rawHeaders, length);
    const { answerHeaders, token } = this.extras;
    if (answerHeaders !== undefined) headers.push(...answerHeaders);
    if (token !== undefined) headers.push(ARM_HEADER, token);
    if (this.backend.cors !== null) corsResponseHeaders(headers, this.backend.cors, this.req);
    // Draining, or the model answered before the whole request body arrived (it will not be
    // forwarded, and the client may still be sending it): this connection ends with the answer.
    if (this.proxy.draining || !this.req.complete) headers.push('connection', 'close');
    if (this.tap !== undefined) this.tap.head(statusCode, headers, rawHeaders);
    if (token !== undefined && this.taggable(statusCode, headers)) {
      // The token goes into the JSON answer too: it is read whole (it is small), then written.
      this.tagging = { status: statusCode, statusText, headers, chunks: [], size: 0 };
      return true;
    }
    return this.writeHead(statusCode, statusText, headers);
  }

  /** A bandit answer that can carry its token in its body: a 2xx JSON answer, not encoded, not said to be over the limit. */
  private taggable(status: number, headers: readonly string[]): boolean {
    if (status < 200 || status >= 300 || this.req.method === 'HEAD') return false;
    const type = valueOf(headers, 'content-type');
    const encoding = valueOf(headers, 'content-encoding');
    const length = valueOf(headers, 'content-length');
    return type !== undefined && JSON_TYPE.test(type) && (encoding === undefined || encoding.toLowerCase() === 'identity') && (length === undefined || Number(length) <= TAG_MAX_BYTES);
  }

  /** The answer's head to the client; false when it cannot be written (the 502 was sent instead). */
  private writeHead(statusCode: number, statusText: string, headers: string[]): boolean {
    try {
      this.res.writeHead(statusCode, statusText, headers);
    } catch {
      // A reason phrase Node will not write (obs-text that is not valid UTF-8): the standard one.
      try {
        this.res.writeHead(statusCode, STATUS_CODES[statusCode] ?? 'Unknown', headers);
      } catch (err) {
        // A header Node will not write either: the answer cannot be passed on as it is.
        this.status = 502;
        this.proxy.internalError('response_head', err as Error, this.backend);
        sendError(this.req, this.res, 502, 'UPSTREAM_BAD_RESPONSE', `${this.who()} answered with a response head the gateway cannot forward`);
        this.finish();
        this.abortUpstream(new AttemptAborted('client'));
        return true;
      }
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.discard || this.done) return true;
    if (this.tap !== undefined) this.tap.body(chunk);
    const t = this.tagging;
    if (t !== undefined) {
      t.chunks.push(chunk);
      t.size += chunk.length;
      if (t.size <= TAG_MAX_BYTES) return true;
      // Longer than it said: passed on as it comes, with the token in the header only.
      this.tagging = undefined;
      if (!this.writeHead(t.status, t.statusText, t.headers)) return true;
      return this.res.write(Buffer.concat(t.chunks, t.size));
    }
    const ok = this.res.write(chunk);
    // The client is slower than the model: read on from the upstream once it took what was written.
    if (!ok) this.res.once('drain', () => this.attempt?.resume());
    return ok;
  }

  onComplete(): void {
    if (this.done) return;
    if (this.discard) {
      this.failedEndpoint = this.endpoint;
      this.releaseEndpoint();
      this.retryLater();
      return;
    }
    const t = this.tagging;
    if (t !== undefined) {
      this.tagging = undefined;
      const body = Buffer.concat(t.chunks, t.size);
      const tagged = tagJsonAnswer(body, this.extras.token!) ?? body;
      // Read whole, it is sent with its length (a chunked answer too).
      let length = false;
      for (let i = 0; i < t.headers.length; i += 2) {
        if (t.headers[i]!.toLowerCase() === 'content-length') {
          t.headers[i + 1] = String(tagged.length);
          length = true;
        }
      }
      if (!length) t.headers.push('content-length', String(tagged.length));
      if (!this.writeHead(t.status, t.statusText, t.headers)) return;
      this.res.end(tagged);
      this.finish(true);
      return;
    }
    this.res.end();
    this.finish(true);
  }

  onError(err: Error & { code?: string }): void {
    this.clearTryTimer();
    if (this.tap !== undefined && !this.done) this.tap.attemptFailed(err instanceof AttemptAborted ? err.why : (err.code ?? classify(err)));
    this.failedEndpoint = this.endpoint;
    this.releaseEndpoint();
    if (this.done) return;
    if (this.res.headersSent) {
      // Bytes already reached the client: nothing to retry or rewrite, reset its stream.
      this.res.destroy();
      this.finish();
      return;
    }
    if (this.discard) {
      // The answer being dropped for a retry broke off: the retry decided stands.
      this.retryLater();
      return;
    }
    if (err instanceof AttemptAborted && err.why === 'per-try-timeout') {
      // Any retry policy retries a per-try timeout, whatever its retry_on.
      if (this.retry(null, this.replayable)) return;
      this.fail(504, 'UPSTREAM_TIMEOUT', `${this.who()} did not answer within the per-try timeout of ${this.backend.retry?.perTryTimeoutMs} ms`);
      return;
    }
    if (err.code === 'UPSTREAM_HEADERS_OVERFLOW') {
      // The upstream answered, with a head over the limit: the request was executed, never retry it.
      this.fail(502, 'UPSTREAM_BAD_RESPONSE', `${this.who()} answered with response headers larger than ${this.proxy.deps.upstream.maxResponseHeaderBytes} bytes`);
      return;
    }
    if (err.code === 'UPSTREAM_BAD_RESPONSE') {
      // An answer that is not HTTP the gateway can frame: executed too, never retried.
      this.fail(502, 'UPSTREAM_BAD_RESPONSE', `${this.who()} answered with a response the gateway cannot parse`, err.message);
      return;
    }
    if (err.code === 'UPSTREAM_INVALID_REQUEST') {
      this.proxy.internalError('upstream_request', err, this.backend);
      this.fail(502, 'INTERNAL_ERROR', `the gateway failed to forward this request to ${this.backend.id}`);
      return;
    }
    const failure = classify(err);
    const unread = this.body instanceof RequestBody ? !this.body.started : true;
    if (this.replayNow(failure, this.replayable || unread)) return;
    if (this.retry(failure, this.replayable)) return;
    const cause = err.code ?? err.message;
    if (failure === 'idle') {
      this.proxy.deps.metrics.timeout(this.backend, 'rest');
      this.fail(504, 'UPSTREAM_TIMEOUT', `${this.who()} was idle for ${this.backend.idleTimeoutMs} ms`);
    } else if (failure === 'connect') {
      this.fail(503, 'UPSTREAM_CONNECT_FAILURE', `could not connect to ${this.who()}`, cause);
    } else {
      this.fail(503, 'UPSTREAM_RESET', `${this.who()} closed or reset the connection before answering`, cause);
    }
  }

  /** The upstream as error answers name it: the deployment's backend, its address only with --error-detail internal. */
  private who(): string {
    return this.proxy.upstreamName(this.up, this.backend);
  }

  /** `cause`: the library's words, for --error-detail internal only. */
  private fail(status: number, reason: GatewayReason, info: string, cause?: string): void {
    this.status = status;
    const text = cause !== undefined && this.proxy.internalDetail ? `${info}: ${cause}` : info;
    if (status >= 500) this.proxy.upstreamFailure(this.up, this.backend, reason, cause);
    const close = this.proxy.draining || !this.req.complete;
    sendError(this.req, this.res, status, reason, text, close ? { connection: 'close' } : undefined);
    this.finish();
  }

  /**
   * The answer is decided while the client is still sending its body (an early answer, an error):
   * stop forwarding it and discard the rest while the answer goes out; its `connection: close`
   * then ends the connection with a lingering close (edge/lingering-close.ts), whose budgets cut
   * a client that keeps sending.
   */
  private abandonBody(): void {
    if (this.body instanceof RequestBody) this.body.detach();
    const body = this.req.body;
    if (isWhole(body) || body.destroyed) return;
    body.removeAllListeners('data');
    body.resume();
  }

  private releaseEndpoint(): void {
    if (this.endpoint) this.endpoint.outstanding--;
    this.endpoint = undefined;
  }

  /** `complete`: the whole upstream answer reached the client. */
  private finish(complete = false): void {
    if (this.done) return;
    this.done = true;
    if (!this.req.complete) this.abandonBody();
    this.releaseEndpoint();
    if (this.timer) clearTimeout(this.timer);
    this.settle();
    this.extras.flow?.release(this.upstreamSeconds !== null);
    this.proxy.deps.metrics.request(this.backend, 'rest', 'primary', this.status, this.upstreamSeconds, this.extras.since);
    if (this.tap !== undefined) this.tap.end(this.status, this.upstreamSeconds, complete);
  }
}

export class RestProxy {
  private shuttingDown = false;
  /** --error-detail internal: error answers also name upstream addresses and causes. */
  readonly internalDetail: boolean;
  /** Whether a peer may set X-Forwarded-For/-Proto (--trusted-proxies). */
  readonly trusts: (socket: Socket) => boolean;

  constructor(readonly deps: RestProxyDeps) {
    this.internalDetail = deps.errorDetail === 'internal';
    this.trusts = deps.trusts ?? TRUST_NONE;
  }

  /** Shutting down: responses carry `connection: close`. */
  get draining(): boolean {
    return this.shuttingDown;
  }

  /** From now on, answers close their connection (graceful shutdown). */
  drain(): void {
    this.shuttingDown = true;
  }

  /** An upstream as error answers name it: `<deployment backend>`, plus its address with --error-detail internal. */
  upstreamName(up: UpstreamPool, backend: Backend): string {
    return this.internalDetail ? `upstream ${up.name} of ${backend.id}` : `upstream of ${backend.id}`;
  }

  /** Upstream failures and caught bugs can repeat at request rate: their log lines are bounded, as gRPC's are. */
  private readonly failureLog = new LogBudget();
  private readonly bugLog = new LogBudget();

  /** What error answers leave out goes to the log (bounded; the skipped count rides on the next line). */
  upstreamFailure(up: UpstreamPool, backend: Backend, reason: GatewayReason, cause: string | undefined): void {
    const log = this.deps.log;
    const skipped = log === undefined ? undefined : this.failureLog.take();
    if (skipped === undefined) return;
    log!.warn({ protocol: 'rest', deployment: backend.id, upstream: up.name, reason, cause, ...(skipped ? { notLogged: skipped } : {}) }, 'upstream failure');
  }

  /** Something inside the gateway failed a request: counted and logged, never a process exit. */
  internalError(where: string, err: Error, backend?: Backend): void {
    const o = backend?.origin;
    this.deps.metrics.internalErrors.labels('rest', o?.namespace ?? '', o?.deployment ?? '').inc();
    const skipped = this.deps.log === undefined ? undefined : this.bugLog.take();
    if (skipped === undefined) return;
    this.deps.log!.error(
      { protocol: 'rest', where, deployment: backend?.id, err: { message: err.message, stack: err.stack }, ...(skipped ? { notLogged: skipped } : {}) },
      'unexpected error while handling a REST request: the request fails, the gateway keeps serving',
    );
  }

  /** Last resort: nothing a request does may throw out of the proxy and end the process. */
  handle(req: RestRequest, res: RestResponse): void {
    try {
      this.route(req, res);
    } catch (err) {
      this.internalError('request', err as Error);
      sendError(req, res, 502, 'INTERNAL_ERROR', 'the gateway failed to handle this request', { connection: 'close' });
    }
  }

  private route(req: RestRequest, res: RestResponse): void {
    const since = performance.now();
    const url = req.url;
    const table = this.deps.state.current;
    const request = new StickyRouteRequest('rest', req.method, url, req.host, headerGetter(req.rawHeaders), this.deps.sticky);
    const decision = match(table, request, this.deps.picker, this.deps.eligible);
    const minted = request.minted;
    const answerHeaders = minted === undefined ? undefined : ['set-cookie', StickyKeys.setCookie(minted)];
    if (decision.ok && decision.backend.steered) {
      const bandit = this.deps.bandits?.of(table, decision.backend);
      if (bandit !== undefined) {
        this.bandit(req, res, decision, bandit, answerHeaders, since);
        return;
      }
    }
    this.routed(req, res, decision, answerHeaders, NO_EXTRAS, since);
  }

  /**
   * A bandit's request: a prediction gets a token for its answer; feedback is read for the token
   * of the answer it is about, and goes to the arm that gave that answer (gateway/steer/bandit-edge.ts).
   */
  private bandit(req: RestRequest, res: RestResponse, decision: Routed, bandit: BanditOf, answerHeaders: readonly string[] | undefined, since: number): void {
    const bandits = this.deps.bandits!;
    if (!isFeedbackPath(decision.upstreamPath)) {
      this.routed(req, res, decision, answerHeaders, { token: bandits.token(bandit, decision.backend) }, since);
      return;
    }
    const attribute = (body: Buffer | null): void => {
      const reading = body === null ? null : tokenFromFeedbackJson(body);
      const routed = bandits.feedback(bandit, decision, reading?.token ? { token: reading.token, reward: reading.reward } : null);
      this.routed(req, res, routed, answerHeaders, { body }, since);
    };
    const body = req.body;
    if (isWhole(body)) attribute(body);
    else if (!announcesBody(req)) attribute(null);
    else
      readSmallBody(body, FEEDBACK_MAX_BYTES, (body, rest) => {
        if (rest === undefined) attribute(body);
        // Too large to be read for a token: forwarded as drawn, its body streamed on.
        else {
          bandits.feedback(bandit, decision, null);
          this.routed(req, res, decision, answerHeaders, { bodyHead: rest }, since);
        }
      });
  }

  private routed(req: RestRequest, res: RestResponse, decision: Decision, answerHeaders: readonly string[] | undefined, extras: ExchangeExtras, since: number): void {
    const table = this.deps.state.current;
    if (!decision.ok) {
      this.deps.metrics.unroutedRequest('rest', decision.reason, decision.status, since);
      this.deps.observe?.answered(req, res);
      sendError(req, res, decision.status, decision.reason, decision.info, this.draining ? { connection: 'close' } : undefined);
      return;
    }
    // CORS first (as Envoy's filter precedes ext_authz): an allowed preflight is answered here.
    if (decision.backend.cors !== null && corsRequest(req, res, decision.backend.cors, this.draining)) {
      this.deps.observe?.answered(req, res, decision.backend);
      return;
    }
    if (decision.backend.gate !== null) {
      const gate = this.deps.gate;
      if (gate === undefined) {
        this.deps.observe?.answered(req, res, decision.backend);
        sendError(req, res, 503, 'AUTH_BACKEND_UNAVAILABLE', `route of ${decision.backend.id} needs auth or rate limits, which this process does not serve`);
      } else this.render(req, res, gate.rest(req, decision, table, since, extras.bodyHead !== undefined ? null : extras.body), decision.backend, { ...extras, answerHeaders, since });
      return;
    }
    this.forward(req, res, decision, false, { ...extras, answerHeaders, since });
  }

  /** The OAuth front end (`/api/v0.1/*`, `/api/v1.0/*` with a bearer token while it is active): the gate routes it. */
  frontEnd(req: RestRequest, res: RestResponse): void {
    const gate = this.deps.gate;
    if (gate === undefined) {
      this.handle(req, res);
      return;
    }
    const since = performance.now();
    try {
      this.render(req, res, gate.api(req, since), undefined, { since });
    } catch (err) {
      this.internalError('request', err as Error);
      sendError(req, res, 502, 'INTERNAL_ERROR', 'the gateway failed to handle this request', { connection: 'close' });
    }
  }

  /** The gate's verdict, now or once its stores have answered. */
  private render(req: RestRequest, res: RestResponse, verdict: GateVerdict | Promise<GateVerdict>, backend?: Backend, extras: ExchangeExtras = NO_EXTRAS): void {
    if (verdict instanceof Promise) void verdict.then((v) => this.answer(req, res, v, backend, extras));
    else this.answer(req, res, verdict, backend, extras);
  }

  /** Allowed: proxy it, unless the client went away while the checks ran. Denied: the refusal, as JSON. */
  private answer(req: RestRequest, res: RestResponse, v: GateVerdict, backend: Backend | undefined, extras: ExchangeExtras = NO_EXTRAS): void {
    if (v.allow) {
      if (!res.destroyed && !req.socket.destroyed) this.forward(req, res, v.decision, v.strip.includes('authorization'), v.external === undefined ? extras : withAllowance(extras, v.external));
      return;
    }
    this.deps.observe?.answered(req, res, backend);
    if (v.raw !== undefined) sendRawDenial(req, res, { ...v, raw: v.raw });
    else if (v.body !== undefined) sendJson(req, res, v.status, v.body, v.headers);
    // A body the client is still sending is not read for a refusal: the connection closes after it (lingering).
    else sendError(req, res, v.status, v.reason, v.message, req.complete ? v.headers : { ...v.headers, connection: 'close' });
  }

  /** Proxy a routed request (also after the gate); `stripAuthorization` drops the client's credential. */
  private forward(req: RestRequest, res: RestResponse, decision: Routed, stripAuthorization: boolean, extras: ExchangeExtras = NO_EXTRAS): void {
    const flow = this.deps.flow;
    if (decision.backend.flow !== null && flow !== undefined && extras.flow === undefined) {
      restFlowStage(flow, decision.backend, req, res, (slot) => this.forward(req, res, decision, stripAuthorization, { ...extras, flow: slot }));
      return;
    }
    try {
      const headers = upstreamRequestHeaders(req.rawHeaders, {
        remoteAddress: req.socket.remoteAddress,
        proto: schemeOf(req.socket),
        originalPath: req.url,
        trusted: this.trusts(req.socket),
        stripAuthorization,
      });
      if (extras.authorized !== undefined) applyEdits(headers, extras.authorized);
      new Exchange(this, req, res, decision, headers, extras).start();
    } catch (err) {
      extras.flow?.release(false);
      this.internalError('request', err as Error, decision.backend);
      sendError(req, res, 502, 'INTERNAL_ERROR', `the gateway failed to forward this request to ${decision.backend.id}`, { connection: 'close' });
    }
  }
}
