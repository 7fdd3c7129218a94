/**
 * One proxied REST request across its attempts, once the pipeline (gateway/pipeline/chain.ts)
 * has forwarded it: the body strategy, the route timeout, the retries (upstream/attempts.ts's
 * state), the answer streamed back (with a bandit's token, steer/answer-tag.ts) and every error
 * the gateway makes as a Seldon-style JSON body (edge/http-answer.ts).
 *
 * Per request: one header copy, one dispatch. The body is buffered only when the route can retry
 * (up to `retryBufferBytes`) or mirrors (teed up to the shadow limit while it streams to the
 * primary). Timeouts, retries and breaker answers follow
 * docs/routing.md#timeouts-retries-and-circuit-breakers.
 */
import { STATUS_CODES } from 'node:http';
import type { Readable } from 'node:stream';
import { overflowInfo } from '../upstream/breaker.js';
import type { FlowSlot } from '../flow/controller.js';
import type { AttemptFailure } from '../upstream/retry-policy.js';
import { Attempts } from '../upstream/attempts.js';
import type { GatewayReason } from '../edge/errors.js';
import { announcesBody, isWhole, type RestRequest, type RestResponse } from '../edge/exchange.js';
import { sendError } from '../edge/http-answer.js';
import { clientResponseHeaders, shadowHost } from '../edge/http-headers.js';
import { isSmall, readSmallBody } from '../edge/small-body.js';
import { corsResponseHeaders } from './cors.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { Authorized } from '../auth/ext-auth-subject.js';
import type { ResponseTap, RestObserve } from '../observe/observed-rest.js';
import { RequestBody } from './request-body.js';
import type { RestMirrors } from './mirrors.js';
import type { Endpoint, Upstreams, UpstreamPool } from '../upstream/pools.js';
import type { ResponseHandler, UpstreamAttempt } from '../upstream/http1-client.js';
import type { Backend, Routed } from '../../routing/types.js';
import { ARM_HEADER } from '../steer/bandit-edge.js';
import { DEFAULT_TAG_MAX_BYTES as TAG_MAX_BYTES, tagJsonAnswer } from '../steer/answer-tag.js';
import type { UpstreamConfig } from '../config.js';

/** What an exchange uses of the REST proxy's dependencies. */
export interface ExchangeDeps {
  readonly upstreams: Upstreams;
  readonly mirrors: RestMirrors;
  readonly metrics: GatewayMetrics;
  /** The retry buffer and the largest upstream response head accepted (status line and headers; larger: 502). */
  readonly upstream: Pick<UpstreamConfig, 'retryBufferBytes' | 'maxResponseHeaderBytes'>;
  /** When --predictor-header, --access-log, --otlp-endpoint or --shadow-compare is on: the per-request tap. */
  readonly observe?: RestObserve | undefined;
}

/** What an exchange asks of the REST proxy (rest/proxy.ts). */
export interface ExchangeHost {
  readonly deps: ExchangeDeps;
  /** Shutting down: answers carry `connection: close`. */
  readonly draining: boolean;
  /** --error-detail internal: error answers also name upstream addresses and causes. */
  readonly internalDetail: boolean;
  upstreamName(up: UpstreamPool, backend: Backend): string;
  upstreamFailure(up: UpstreamPool, backend: Backend, reason: GatewayReason, cause: string | undefined): void;
  internalError(where: string, err: Error, backend?: Backend): void;
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
  /** Apply what steering decided (a feedback's credit): called once the upstream's breaker admitted the request. */
  commit?(): void;
  /** Its slot under flow control (gateway/flow/), held until the exchange settles. */
  readonly flow?: FlowSlot | undefined;
}

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

class AttemptAborted extends Error {
  constructor(readonly why: 'timeout' | 'per-try-timeout' | 'client') {
    super(why);
  }
}

/**
 * One proxied request, across its attempts (the retry state is the shared one of
 * upstream/attempts.ts). It is the upstream client's handler of each attempt.
 */
export class Exchange extends Attempts<UpstreamPool> implements ResponseHandler {
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
    private readonly proxy: ExchangeHost,
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
    this.extras.commit?.();
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
    readSmallBody(req, this.proxy.deps.upstream.retryBufferBytes, (body, read) => {
      if (body !== null) {
        this.dispatchWhole(body);
        return;
      }
      // Too large to replay: stream what we have plus the rest, without retries.
      this.retriesLeft = 0;
      if (this.decision.mirrors.length) this.proxy.deps.mirrors.tooLarge(this.decision.mirrors);
      this.streamBody(req, read!, false);
      this.dispatch();
    });
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
