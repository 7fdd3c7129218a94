/**
 * REST's codec of the forwarding core (forward/forwarded.ts): one proxied REST request across its
 * attempts, once the pipeline (gateway/pipeline/chain.ts) has forwarded it. The core decides
 * (admission, the timeout budget, replay, retry, the finish); this file translates: the body
 * strategy, the route timer, each attempt over the HTTP/1.1 client, the answer streamed back (with
 * a bandit's token, steer/answer-tag.ts) and every error the gateway makes as a Seldon-style JSON
 * body (edge/http-answer.ts).
 *
 * Per request: one header copy, one dispatch. The body is buffered only when the route can retry
 * or hedge (up to `retryBufferBytes`) or mirrors (teed up to the shadow limit while it streams to
 * the primary). Timeouts, retries and breaker answers follow
 * docs/routing.md#timeouts-retries-and-circuit-breakers.
 *
 * Hedging (docs/routing.md#hedged-requests; the core decides when): a hedge is one more attempt
 * beside the one in flight (forward/in-flight.ts holds them all). The first answer head that is not one the
 * route's policy retries wins: the others are cut (their connection closed, as HTTP/1.1 cannot
 * cancel a request otherwise) and the winner's bytes go on unchanged. A failure, or an answer the
 * policy retries, while another attempt is in flight is that attempt's alone (its answer read and
 * dropped); the last one's is the request's, under the retry rule as without hedging.
 */
import { STATUS_CODES } from '../wire/node-http.js';
import type { Readable } from 'node:stream';
import { ForwardedRequest } from '../forward/forwarded.js';
import { failureOutcome, httpOutcome } from '../forward/outcome.js';
import type { TimeoutEntry, TimeoutList } from '../upstream/timeout-lists.js';
import { upstreamNamed, type GatewayReason } from '../edge/errors.js';
import type { RestRequest, RestResponse } from '../edge/rest-exchange.js';
import { announcesBody, isWhole } from '../wire/message-body.js';
import { AnswerFields } from '../edge/answer-fields.js';
import type { UpstreamFields } from '../edge/upstream-fields.js';
import { isSmall, readSmallBody } from '../edge/small-body.js';
import { corsResponseHeaders } from './cors.js';
import type { ResponseTap } from '../observe/observed-rest.js';
import { RequestBody } from './request-body.js';
import type { Endpoint, UpstreamPool } from '../upstream/pools.js';
import type { ResponseHead } from '../upstream/http1-client.js';
import type { Routed } from '../../routing/types.js';
import { ARM_HEADER } from '../steer/bandit-edge.js';
import { AttemptAborted, RestAttempt, type AttemptOwner } from './attempt.js';
import { InFlight } from '../forward/in-flight.js';
import { classify, executedFailure, unansweredFailure } from './attempt-failure.js';
import type { ExchangeExtras, ExchangeHost } from './exchange-deps.js';
import { TaggedJsonAnswer, taggable, type AnswerSink } from './tagged-answer.js';
import { mappingAnswer, sendRouteError } from './route-answer.js';
import { CompressingAnswer, type AnswerOut } from './answer-encoder.js';
import type { RequestCoding } from '../../routing/compression.js';
import { decodesFirst, type DecodeOwner, type DecodeRefusal } from './request-decoder.js';

/**
 * One proxied request, across its attempts: each attempt is an object of its own
 * (rest/attempt.ts), the decisions are the core's (forward/forwarded.ts), the answer goes to the
 * client through `answer` (itself, or the token's decorator, rest/tagged-answer.ts), its body
 * written to `out` (the client's response, or its compressor, rest/answer-encoder.ts).
 */
export class Exchange extends ForwardedRequest implements AttemptOwner, AnswerSink, TimeoutEntry, DecodeOwner {
  declare protected readonly up: UpstreamPool;
  private body: Buffer | RequestBody | null = null;
  /** The body can be sent again (absent, or fully buffered). */
  private replayable = true;
  /** The attempt in flight and, hedged, its rivals. */
  private readonly flight = new InFlight<RestAttempt>();
  /** The route timeout: the exchange is an entry of its duration's list (upstream/timeout-lists.ts), from the end of the request on. */
  timeoutNext: TimeoutEntry | null = null;
  timeoutPrev: TimeoutEntry | null = null;
  timeoutDue = -1;
  timeoutList: TimeoutList | null = null;
  private timed = false;
  /** What an attempt still in flight is cut for when the exchange ends: the route timeout, or the client (gone, or answered). */
  private cutBy: 'timeout' | 'client' = 'client';
  /** Where the model's answer is written: this exchange, or the token's decorator of it. */
  private answer: AnswerSink = this;
  /** The model's head, until its first body bytes or its end (`head`). */
  private pendingStatus = 0;
  private pendingHead: AnswerFields | undefined;
  /** Predictor header, access log, answer capture for comparison: set only when one applies. */
  private tap: ResponseTap | undefined;
  /** Where the answer's body goes: the client's response, or its compressor (rest/answer-encoder.ts). */
  private out: AnswerOut;

  constructor(
    private readonly proxy: ExchangeHost,
    private readonly req: RestRequest,
    private readonly res: RestResponse,
    decision: Routed,
    private readonly headers: UpstreamFields,
    protected override readonly extras: ExchangeExtras,
  ) {
    super(proxy.deps.metrics, 'rest', decision, proxy.deps.upstreams.for(decision.backend), extras, extras.since, proxy.deps.clock);
    this.out = res;
  }

  protected answerOverflow(info: string): void {
    this.tap?.end(503, null, false);
    sendRouteError(this.req, this.res, 503, 'UPSTREAM_OVERFLOW', info, { 'x-envoy-overloaded': 'true', ...this.extras.corsHeaders }, this.backend.mapping);
  }

  start(): void {
    const observe = this.proxy.deps.observe;
    if (observe !== undefined) this.tap = observe.begin(this.req, this.res, this.decision, this.headers, this.up.name, this.extras);
    if (!this.admit(503)) return;
    (this.res as Carrying)[EXCHANGE] = this;
    this.res.once('close', responseClosed);
    // All that compression costs a request on a route without it: this check (null, decided when the route was compiled).
    const z = this.backend.compression;
    if (z !== null) {
      if (z.algorithms.length !== 0) this.out = new CompressingAnswer(z, this.req, this.res, this.metrics.compression, this.tap);
      if (z.decodeRequests && decodesFirst(this.req, this.extras, this.headers, this.proxy.deps, this)) return;
    }
    const req = this.req;
    const body = req.body;
    const retryBuffer = this.proxy.deps.upstream.retryBufferBytes;
    if (this.extras.bodyHead !== undefined && !isWhole(body)) {
      // Read in part already (feedback, for its token): too large to replay.
      this.retries.noRetries();
      if (this.decision.mirrors.length) this.proxy.deps.mirrors.tooLarge(this.decision.mirrors);
      this.streamBody(body, this.extras.bodyHead, false);
      this.dispatch();
    } else if (this.extras.body !== undefined) {
      // Read already (feedback, for its token).
      if (this.extras.body !== null && this.extras.body.length > retryBuffer) this.retries.noRetries();
      this.dispatchWhole(this.extras.body);
    } else if (isWhole(body)) {
      // Read whole before it was served (the lane's); one over the retry buffer is still not retried.
      if (body !== null && body.length > retryBuffer) this.retries.noRetries();
      this.dispatchWhole(body);
    } else if (!announcesBody(req)) {
      this.dispatchWhole(null);
    } else if (this.backend.retry || this.backend.hedge !== null || isSmall(req)) {
      this.bufferThenDispatch(body);
    } else {
      this.streamBody(body, [], this.decision.mirrors.length > 0);
      this.dispatch();
    }
  }

  /** The body decoded (rest/request-decoder.ts): it goes, to the mirrors and the payload log too; or the refusal. */
  decodedBody(plain: Buffer | null, refusal: DecodeRefusal | null, coding: RequestCoding, encodedBytes: number): void {
    if (this.done) return;
    if (plain === null) return this.fail(refusal!.status, refusal!.reason, refusal!.info);
    this.tap?.requestDecoded(coding, plain.length, encodedBytes);
    if (plain.length > this.proxy.deps.upstream.retryBufferBytes) this.retries.noRetries();
    this.dispatchWhole(plain);
  }

  /** The whole body is here (or there is none): the route timeout starts, the primary and the mirrors go. */
  private dispatchWhole(body: Buffer | null): void {
    this.body = body;
    if (body !== null) this.tap?.requestBody?.(body);
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
    const copied = copy ? { limit, whole: (b: Buffer | null) => (b === null ? this.proxy.deps.mirrors.tooLarge(mirrors) : this.mirror(b)) } : undefined;
    this.body = new RequestBody(this.req, stream, head, copied, this.tap?.requestBody);
    this.replayable = false;
    stream.once('end', () => this.startTimer());
  }

  /** Routes that retry or hedge, and small bodies, are read first (up to the retry buffer) so they can be replayed. */
  private bufferThenDispatch(req: Readable): void {
    readSmallBody(req, this.proxy.deps.upstream.retryBufferBytes, (body, read) => {
      if (body !== null) {
        this.dispatchWhole(body);
        return;
      }
      // Too large to replay: stream what we have plus the rest, without retries.
      this.retries.noRetries();
      if (this.decision.mirrors.length) this.proxy.deps.mirrors.tooLarge(this.decision.mirrors);
      this.streamBody(req, read!, false);
      this.dispatch();
    });
  }

  private mirror(body: Buffer | null): void {
    this.proxy.deps.mirrors.send(this.decision.mirrors, this.req.method, this.decision.upstreamPath, this.headers, body, this.tap?.capture, this.tap);
  }

  /** The route timeout starts once the request has been received in full (docs/routing.md#timeouts-retries-and-circuit-breakers). */
  private startTimer(): void {
    const ms = this.routeBudgetMs();
    if (ms > 0 && !this.done && !this.timed) {
      this.timed = true;
      this.proxy.timeouts.start(this, ms);
    }
  }

  /** The route timeout ran out. */
  timedOut(): void {
    if (this.done) return;
    this.cutBy = 'timeout';
    this.metrics.timeout(this.backend, 'rest');
    if (this.res.headersSent) {
      this.res.destroy();
      this.finish();
    } else {
      this.fail(504, 'UPSTREAM_TIMEOUT', `${this.who()} did not answer within ${this.backend.timeoutMs} ms`);
    }
  }

  /** The client's answer closed (ended, or its connection went) while the exchange was not done. */
  responseClosed(): void {
    if (this.done) return;
    // The edge answered the request itself (its body broke off: malformed framing, too slow):
    // that answer's status; otherwise the client went away.
    this.status = this.res.writableEnded ? this.res.statusCode : 499;
    this.finish();
  }

  /** Send the next attempt (the first, a replay or a retry). */
  dispatch(): void {
    if (this.done) return;
    // A retry or replay goes to an endpoint this request has not tried, while one is left.
    const endpoint = this.up.pick(this.tried(), this.extras.balanceHash);
    if (endpoint === undefined) {
      const invalid = this.up.invalid;
      if (invalid !== undefined) this.proxy.internalError('upstream', new Error(invalid), this.backend);
      this.fail(503, 'NO_HEALTHY_UPSTREAM', invalid !== undefined ? `${this.who()} has an address that cannot be dialled` : `${this.who()} has no ready endpoint`, invalid);
      return;
    }
    this.send(endpoint, false);
  }

  /** The body goes again, whole and kept: not streamed, not over the retry buffer. */
  protected resendable(): boolean {
    const body = this.body;
    return this.replayable && !(body instanceof RequestBody) && (body === null || body.length <= this.proxy.deps.upstream.retryBufferBytes);
  }

  /** One more attempt beside the one in flight, to an endpoint not tried yet (the core found one). */
  protected sendHedge(): void {
    const endpoint = this.up.pick(this.tried(), this.extras.balanceHash);
    if (endpoint === undefined) return;
    this.send(endpoint, true);
  }

  private send(endpoint: Endpoint, hedge: boolean): void {
    const n = this.tryOn(endpoint.health);
    const attempt = new RestAttempt(this, endpoint, this.backend, this.clock, n, hedge);
    this.flight.sent(attempt, hedge);
    const tap = this.tap;
    if (tap !== undefined) {
      tap.attempt(this.headers, hedge);
      tap.attempted(endpoint.host, endpoint.port);
    }
    endpoint.pool.dispatch(attempt.request(this.req.method, this.decision.upstreamPath, this.headers.forClient(), this.body, this.backend.idleTimeoutMs), attempt);
  }

  /** The attempt failed or its answer was dropped: the next one prefers another endpoint. */
  private dropAttempt(a: RestAttempt): void {
    a.end();
    this.flight.leave(a);
  }

  /** Hedged: `a`'s answer wins; every other attempt in flight is cut (its connection closed before its answer). */
  private win(a: RestAttempt): void {
    for (const o of this.flight.win(a)) {
      o.end();
      this.lost(o.endpoint, o.sentAt, o.hedge);
      this.tap?.attemptLost(o.n);
      o.abort(AttemptAborted.BY.lost);
    }
  }

  // ---- what the attempt in flight reports ----

  attemptHeaders(a: RestAttempt, answer: ResponseHead): boolean {
    const statusCode = answer.status;
    if (this.tap !== undefined) this.tap.attemptStatus(statusCode, a.n);
    this.outcome(a.endpoint, httpOutcome(statusCode), a.sentAt);
    if (this.flight.racing(a)) {
      // Hedged: an answer the policy would retry is this attempt's failure, and the other is
      // awaited (this answer is read and dropped by the client); any other answer wins.
      if (this.retriable(statusCode)) {
        this.dropAttempt(a);
        return true;
      }
      this.win(a);
    }
    if (this.retryAnswer(statusCode, this.replayable)) {
      // Read and drop this answer; the retry is sent once it has ended.
      a.discard = true;
      return true;
    }
    if (statusCode >= 502 && statusCode <= 504 && this.fellBack(true, this.body as Buffer | null, statusCode)) return true;
    this.relayed(a.sentAt, a.hedge);
    if (this.tap !== undefined && this.hedge !== undefined) this.tap.attemptWon(a.n);
    this.status = statusCode;
    // Framed by the gateway: the model's Content-Length only when it is the body's (docs/routing.md#answer-framing).
    const fields = AnswerFields.ofHead(answer);
    fields.serviceTime(this.serviceMs);
    const { answerHeaders, token, corsHeaders } = this.extras;
    if (answerHeaders !== undefined) for (let i = 0; i < answerHeaders.length; i += 2) fields.add(answerHeaders[i]!, answerHeaders[i + 1]!);
    if (token !== undefined) fields.add(ARM_HEADER, token);
    if (corsHeaders !== undefined) corsResponseHeaders(fields.list(), corsHeaders);
    // Draining, or the model answered before the whole request body arrived (it will not be
    // forwarded, and the client may still be sending it): this connection ends with the answer.
    if (this.proxy.draining || !this.req.complete) fields.add('connection', 'close');
    // A custom Mapping's answer edits, and its error override's body in place of the model's.
    const mapping = this.backend.mapping;
    const overridden = mapping === null ? undefined : mappingAnswer(statusCode, fields, mapping, this, this.req.method === 'HEAD');
    if (this.tap !== undefined) this.tap.head(statusCode, fields, answer);
    if (overridden !== undefined) this.answer = overridden;
    // A bandit's token goes into the JSON answer too, when it can carry it.
    else if (token !== undefined && taggable(this.req.method, statusCode, fields)) this.answer = new TaggedJsonAnswer(this, token);
    this.answer.head(statusCode, fields);
    return true;
  }

  attemptData(_a: RestAttempt, chunk: Buffer): boolean {
    return this.answer.data(chunk);
  }

  attemptComplete(a: RestAttempt): void {
    if (a.discard) {
      this.dropAttempt(a);
      this.retries.retryLater();
      return;
    }
    this.answer.end();
  }

  attemptFailed(a: RestAttempt, err: Error & { code?: string }): void {
    if (this.tap !== undefined) this.tap.attemptFailed(err instanceof AttemptAborted ? err.why : (err.code ?? classify(err)), a.n);
    const bad = err.code === 'UPSTREAM_HEADERS_OVERFLOW' || err.code === 'UPSTREAM_BAD_RESPONSE';
    if (!a.discard) this.outcome(a.endpoint, bad ? 'error' : err instanceof AttemptAborted ? 'local' : failureOutcome(classify(err)), a.sentAt);
    // Hedged: a failure while another attempt is in flight is this attempt's alone; the other is awaited.
    const raced = this.flight.racing(a);
    this.dropAttempt(a);
    if (raced) return;
    if (this.res.headersSent) {
      // Bytes already reached the client: nothing to retry or rewrite, reset its stream.
      this.res.destroy();
      this.finish();
      return;
    }
    if (a.discard) {
      // The answer being dropped for a retry broke off: the retry decided stands.
      this.retries.retryLater();
      return;
    }
    if (err instanceof AttemptAborted && err.why === 'per-try-timeout') {
      if (this.afterFailure('per-try-timeout', this.replayable) !== undefined) return;
      this.metrics.timeout(this.backend, 'rest');
      this.fail(504, 'UPSTREAM_TIMEOUT', `${this.who()} did not answer within the per-try timeout of ${this.backend.retry?.perTryTimeoutMs} ms`);
      return;
    }
    const executed = executedFailure(err, a.answered, this.who(), this.proxy.deps.upstream.maxResponseHeaderBytes);
    if (executed !== undefined) {
      if (executed.internal) this.proxy.internalError('upstream_request', err, this.backend);
      this.fail(executed.status, executed.reason, executed.internal ? `the gateway failed to forward this request to ${this.backend.id}` : executed.info, executed.cause);
      return;
    }
    const failure = classify(err);
    const unread = this.body instanceof RequestBody ? !this.body.started : true;
    if (this.afterFailure(failure, this.replayable, this.replayable || unread) !== undefined) return;
    if (failure === 'idle') this.metrics.timeout(this.backend, 'rest');
    const f = unansweredFailure(failure, this.who(), this.backend.idleTimeoutMs, err.code ?? err.message);
    this.fail(f.status, f.reason, f.info, f.cause);
  }

  // ---- the answer, to the client (AnswerSink) ----

  /**
   * The model's head waits for its first body bytes (or its end): an answer whose body the
   * gateway cannot frame (bad chunked framing right after the head) is then a 502, where a head
   * already written would leave the client a connection closed with nothing.
   */
  head(statusCode: number, fields: AnswerFields): boolean {
    this.pendingStatus = statusCode;
    this.pendingHead = fields;
    return true;
  }

  /** Write the head held back; false when it cannot be (then the exchange answered 502 itself). */
  private writeHead(): boolean {
    const h = this.pendingHead;
    if (h === undefined) return true;
    this.pendingHead = undefined;
    const status = this.pendingStatus;
    // The client's response, or on a route that compresses, the answer that decides its coding now.
    try {
      this.out.writeAnswerHead(status, h);
    } catch {
      // A reason phrase Node will not write (obs-text that is not valid UTF-8): the standard one.
      try {
        this.out.writeAnswerHead(status, h, STATUS_CODES[status] ?? 'Unknown');
      } catch (err) {
        // A header Node will not write either: the answer cannot be passed on as it is.
        if (this.out !== this.res) (this.out as CompressingAnswer).unused();
        this.status = 502;
        this.proxy.internalError('response_head', err as Error, this.backend);
        sendRouteError(this.req, this.res, 502, 'UPSTREAM_BAD_RESPONSE', `${this.who()} answered with a response head the gateway cannot forward`, this.extras.corsHeaders, this.backend.mapping);
        this.finish();
        return false;
      }
    }
    return true;
  }

  data(chunk: Buffer): boolean {
    if (this.done || !this.writeHead()) return true;
    // Told as the client receives it (a bandit's tagged answer as tagged), before any compression.
    if (this.tap !== undefined) this.tap.body(chunk);
    const ok = this.out.write(chunk);
    // The client is slower than the model: read on from the upstream once it took what was written.
    if (!ok) this.out.once('drain', () => this.flight.current?.resume());
    return ok;
  }

  end(last?: Buffer): void {
    if (this.done || !this.writeHead()) return;
    // The model is done with it: its slot under flow control goes to the next waiting request
    // before this answer is written out (the model waits for the gateway's turnaround only).
    this.extras.ended?.(true);
    if (last === undefined) this.out.end();
    else {
      if (this.tap !== undefined) this.tap.body(last);
      this.out.end(last);
    }
    this.finish(true);
  }

  // ---- endings ----

  /** The exchange is over with `a` in flight (`complete`: its answer reached the client whole): cut unless complete. */
  private cut(a: RestAttempt, complete: boolean): void {
    a.end();
    if (complete) return;
    // Cut before its answer: the route timeout is the endpoint's failure; the client's leaving is not.
    if (!a.answered) this.outcome(a.endpoint, this.cutBy === 'timeout' ? 'local' : 'none', a.sentAt);
    a.abort(AttemptAborted.BY[this.cutBy]);
  }

  /** The upstream as error answers name it (edge/errors.ts): the deployment's backend, its address only with --error-detail internal. */
  protected who(): string {
    return upstreamNamed(this.up.name, this.backend, this.proxy.internalDetail);
  }

  /** `cause`: the library's words, for --error-detail internal only. */
  private fail(status: number, reason: GatewayReason, info: string, cause?: string): void {
    if (this.fellBack(status >= 502 && status <= 504, this.body as Buffer | null, status)) return;
    this.status = status;
    const text = cause !== undefined && this.proxy.internalDetail ? `${info}: ${cause}` : info;
    if (status >= 500) this.proxy.upstreamFailure(this.up, this.backend, reason, cause);
    const close = this.proxy.draining || !this.req.complete;
    sendRouteError(this.req, this.res, status, reason, text, close ? { connection: 'close', ...this.extras.corsHeaders } : this.extras.corsHeaders, this.backend.mapping);
    this.finish();
  }

  protected endUnanswered(): void {
    this.tap = undefined;
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

  /** `complete`: the whole upstream answer reached the client. Attempts still in flight are cut. */
  private finish(complete = false): void {
    if (this.done) return;
    this.done = true;
    if (!this.req.complete) this.abandonBody();
    const { current, rivals } = this.flight.clear();
    if (current !== undefined) this.cut(current, complete);
    for (const o of rivals) this.cut(o, false);
    this.proxy.timeouts.stop(this);
    if (this.tap !== undefined) this.tap.end(this.status, this.upstreamSeconds, complete);
    this.settle();
  }
}

/** The client answer's 'close' listener, one for every exchange: the exchange rides on its answer (no closure per request). */
const EXCHANGE = Symbol('rest exchange');
type Carrying = RestResponse & { [EXCHANGE]?: Exchange };
function responseClosed(this: Carrying): void {
  this[EXCHANGE]?.responseClosed();
}
