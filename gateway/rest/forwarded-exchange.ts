/**
 * REST's codec of the forwarding core (forward/forwarded.ts): one REST request, made by the proxy
 * (rest/proxy.ts) as it arrives, which runs the pipeline (gateway/pipeline/chain.ts) as its adapter
 * (rest/rest-request.ts) and is proxied across its attempts once forwarded. The core decides
 * (admission, the timeout budget, replay, retry, the finish); the body's strategy and the route timer
 * are rest/exchange-body.ts's; this file translates each attempt over the HTTP/1.1 client, the answer streamed back (with
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
import type { ForwardUpstream } from '../forward/forwarded.js';
import { failureOutcome, httpOutcome } from '../forward/outcome.js';
import { upstreamNamed, type GatewayReason } from '../edge/errors.js';
import { isWhole } from '../wire/message-body.js';
import { AnswerFields } from '../edge/answer-fields.js';
import { corsResponseHeaders } from './cors.js';
import { RequestBody } from './request-body.js';
import type { Endpoint } from '../upstream/pools.js';
import type { ResponseHead } from '../upstream/http1-client.js';
import type { Routed } from '../../routing/types.js';
import { ARM_HEADER } from '../steer/bandit-edge.js';
import { AttemptAborted, RestAttempt, type AttemptOwner } from './attempt.js';
import { InFlight } from '../forward/in-flight.js';
import { classify, executedFailure, unansweredFailure } from './attempt-failure.js';
import { TaggedJsonAnswer, taggable, type AnswerSink } from './tagged-answer.js';
import { mappingAnswer, sendRouteError } from './route-answer.js';
import type { CompressingAnswer } from './answer-encoder.js';
import { ExchangeBody } from './exchange-body.js';
import { TranslatedAnswer } from './rest-translation.js';

/**
 * One REST request, the pipeline's and then the proxied one, across its attempts: each attempt is an object of its own
 * (rest/attempt.ts), the decisions are the core's (forward/forwarded.ts), the answer goes to the
 * client through `answer` (itself, or the token's decorator, rest/tagged-answer.ts), its body
 * written to `out` (the client's response, or its compressor, rest/answer-encoder.ts).
 */
export class Exchange extends ExchangeBody implements AttemptOwner, AnswerSink {
  /** The attempt in flight and, hedged, its rivals: made by its first forward (a request refused before it has none), kept for a fallback's. */
  private flight!: InFlight<RestAttempt>;
  /** What an attempt still in flight is cut for when the exchange ends: the route timeout, or the client (gone, or answered). */
  private cutBy: 'timeout' | 'client' = 'client';
  /** Where the model's answer is written: this exchange, or the token's decorator of it. */
  private answer: AnswerSink = this;
  /** The model's head, until its first body bytes or its end (`head`). */
  private pendingStatus = 0;
  private pendingHead: AnswerFields | undefined = undefined;
  /** Reads on from the upstream once the client took what was written: made at the exchange's first wait for 'drain', never per chunk. */
  private onDrain: (() => void) | undefined = undefined;

  protected override begin(decision: Routed, up: ForwardUpstream): void {
    super.begin(decision, up);
    // Cleared when a forward finishes: a fallback's forward reuses it.
    if (this.flight === undefined) this.flight = new InFlight();
    this.cutBy = 'client';
    this.answer = this;
    this.pendingStatus = 0;
    this.pendingHead = undefined;
  }

  protected answerOverflow(info: string): void {
    this.tap?.end(503, null, false);
    // The Module's suppress_envoy_headers: Envoy's router adds no x-envoy-overloaded either.
    const overloaded = this.proxy.rules?.suppressEnvoyHeaders === true ? undefined : { 'x-envoy-overloaded': 'true' };
    sendRouteError(this.req, this.res, 503, 'UPSTREAM_OVERFLOW', info, { ...overloaded, ...this.corsHeaders }, this.backend.mapping);
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
    const endpoint = this.up.pick(this.tried(), this.balanceHash);
    if (endpoint === undefined) {
      const invalid = this.up.invalid;
      if (invalid !== undefined) this.proxy.internalError('upstream', new Error(invalid), this.backend);
      this.fail(503, 'NO_HEALTHY_UPSTREAM', invalid !== undefined ? `${this.who()} has an address that cannot be dialled` : `${this.who()} has no ready endpoint`, invalid);
      return;
    }
    this.send(endpoint, false);
  }

  /** One more attempt beside the one in flight, to an endpoint not tried yet (the core found one). */
  protected sendHedge(): void {
    const endpoint = this.up.pick(this.tried(), this.balanceHash);
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
    endpoint.pool.dispatch(attempt.request(this.req.method, this.sendPath, this.headers.forClient(), this.sendBody, this.backend.idleTimeoutMs), attempt);
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
    if (statusCode >= 502 && statusCode <= 504 && this.toFallback(true, this.keptBody(), statusCode)) return true;
    this.relayed(a.sentAt, a.hedge);
    if (this.tap !== undefined && this.hedge !== undefined) this.tap.attemptWon(a.n);
    this.status = statusCode;
    // Framed by the gateway: the model's Content-Length only when it is the body's (docs/routing.md#answer-framing).
    const fields = AnswerFields.ofHead(answer);
    if (this.proxy.rules?.suppressEnvoyHeaders !== true) fields.serviceTime(this.serviceMs);
    const { answerHeaders, token, corsHeaders } = this;
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
    // A translated request's answer goes back in the client's protocol (rest/rest-translation.ts).
    const t = this.translation;
    if (t !== null && overridden === undefined) this.answer = new TranslatedAnswer(this.answer, t, (result) => this.metrics.translations.count(this.backend, t.from, t.to, result));
    this.answer.head(statusCode, fields);
    return true;
  }

  attemptData(a: RestAttempt, chunk: Buffer): boolean {
    const ok = this.answer.data(chunk);
    // Written straight to the client's socket, which took it whole (no tap, coding or decorator kept it):
    // the model's connection may read its next bytes into the same memory.
    if (this.answer === this && this.out === this.res && this.tap === undefined && this.res.holdsWrites?.() === false) a.passed(chunk);
    return ok;
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
    // A stream the upstream client has taken bytes of cannot go again (the client's own stream, or a RequestBody over it).
    const body = this.sendBody;
    const unread = isWhole(body) || !body.readableDidRead;
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
        sendRouteError(this.req, this.res, 502, 'UPSTREAM_BAD_RESPONSE', `${this.who()} answered with a response head the gateway cannot forward`, this.corsHeaders, this.backend.mapping);
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
    if (!ok) this.out.once('drain', (this.onDrain ??= () => this.flight.current?.resume()));
    return ok;
  }

  end(last?: Buffer): void {
    if (this.done || !this.writeHead()) return;
    // The model is done with it: its slot under flow control goes to the next waiting request
    // before this answer is written out (the model waits for the gateway's turnaround only).
    this.ended(true);
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
  protected fail(status: number, reason: GatewayReason, info: string, cause?: string): void {
    if (this.toFallback(status >= 502 && status <= 504, this.keptBody(), status)) return;
    this.status = status;
    const text = cause !== undefined && this.proxy.internalDetail ? `${info}: ${cause}` : info;
    if (status >= 500) this.proxy.upstreamFailure(this.up, this.backend, reason, cause);
    const close = this.proxy.draining || !this.req.complete;
    sendRouteError(this.req, this.res, status, reason, text, close ? { connection: 'close', ...this.corsHeaders } : this.corsHeaders, this.backend.mapping);
    this.finish();
  }

  /** What a fallback gets: the client's body as it came (a translated one is its model's alone). */
  private keptBody(): Buffer | null {
    return this.translation !== null ? this.clientBody : (this.sendBody as Buffer | null);
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
    if (this.sendBody instanceof RequestBody) this.sendBody.detach();
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
