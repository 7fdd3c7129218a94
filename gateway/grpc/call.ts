/**
 * gRPC's codec of the forwarding core (forward/forwarded.ts): one gRPC call, made by the proxy (grpc/proxy.ts)
 * as its stream arrives, which runs the pipeline as its adapter (grpc/grpc-request.ts) and, forwarded, is
 * proxied across its attempts (its start and client's half: grpc/call-start.ts), a
 * transparent stream proxy between the client's HTTP/2 stream and a stream on a pooled upstream session.
 * The core decides (admission, the timeout budget, replay, retry, hedging, the finish); this file translates
 * frames: request headers, DATA frames, response headers and trailers pass unchanged (`:scheme` follows the
 * upstream, `grpc-timeout` passes with what is left of it). The client's `grpc-timeout` runs from arrival
 * and the route timeout from the end of the request, until the response headers; then the idle timeout.
 * Request chunks are kept for a replay up to the retry buffer (grpc/kept-request.ts), never replayed once a
 * response byte reached the client. docs/architecture.md says where a retry and a hedge are decided.
 */
import http2, { type IncomingHttpHeaders } from 'node:http2';
import type { ForwardUpstream } from '../forward/forwarded.js';
import { failureOutcome, grpcOutcome, httpOutcome, type OutcomeKind } from '../forward/outcome.js';
import { GrpcStatus } from '../edge/errors.js';
import type { Routed } from '../../routing/types.js';
import { RESPOND_END_STREAM, RESPOND_WITH_TRAILERS, answerTrailersOnly, statusTrailers, stopReading } from './answer.js';
import { answerMetadata } from './metadata.js';
import { GrpcAttempt, type Failure, type GrpcAttemptOwner } from './attempt.js';
import { answerStatus } from './mirror.js';
import { failureMessage, type Message } from './call-context.js';
import { TaggedGrpcAnswer, type CallAnswerChain } from './tagged-answer.js';
import { awaitClientDrain, awaitTrailersWanted, stopListening } from './client-stream.js';
import { CallStart } from './call-start.js';
import { TranslatedGrpcAnswer, type GrpcTranslation } from './grpc-translation.js';
import { streamFull } from '../wire/h2-settings.js';

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_FLAG_END_STREAM, NGHTTP2_INTERNAL_ERROR } = http2.constants;

/** One gRPC call across its attempts (grpc/attempt.ts); its answer goes through `answer`, itself or the token's decorator (grpc/tagged-answer.ts). */
export class GrpcCall extends CallStart implements GrpcAttemptOwner, CallAnswerChain {
  /** Where the upstream's answer is written: this call, or the token's decorator of it. */
  private answer: CallAnswerChain = this;

  protected override begin(decision: Routed, up: ForwardUpstream): void {
    super.begin(decision, up);
    this.answer = this;
  }

  // ---- attempts ------------------------------------------------------------------------------

  /** Send the next attempt (the first, a replay or a retry). */
  dispatch(): void {
    if (!this.done) this.send(false);
  }

  /** One more stream beside the one in flight, to an endpoint not tried yet (the core found one), with the whole request. */
  protected sendHedge(): void {
    this.send(true);
  }

  /** An attempt with the chunks kept; a hedge's request has ended (the core sends one only then). */
  private send(hedge: boolean): void {
    const attempt = this.open(hedge);
    if (attempt === undefined) return;
    this.flight.sent(attempt, hedge);
    const s = attempt.stream;
    this.kept.writeTo(s);
    if (this.requestEnded) s.end();
    else if (this.stream.isPaused()) this.stream.resume();
  }

  /** A stream for the next attempt (a hedge: beside one in flight); undefined when none could be opened (the call failed, unless a hedge's). */
  private open(hedge: boolean): GrpcAttempt | undefined {
    // The upstream sees the client's budget (docs/routing.md#grpc-metadata-matching): its
    // grpc-timeout as sent, on a retry or hedge what is left of it. The route timeout only bounds the wait
    // for response headers (docs/routing.md#timeouts), so a long stream the route allows survives.
    if (this.attempts > 0) {
      const left = this.deadline.remaining();
      if (left !== undefined) this.headers['grpc-timeout'] = left;
    }
    this.attempts++;
    if (this.tap !== undefined) this.tap.attempt(this.headers, hedge);
    try {
      // A retry, replay or hedge goes to an endpoint this call has not tried, while one is left.
      const opened = this.up.request(this.headers, this.tried(), this.balanceHash);
      const n = this.tryOn(opened.session.target.health);
      if (this.tap !== undefined) this.tap.attempted(opened.session.target.host, opened.session.target.port);
      return new GrpcAttempt(this, opened.stream, opened.session, this.backend, this.clock, n, hedge);
    } catch (err) {
      // A hedge that cannot open leaves the attempt in flight to answer.
      if (!hedge) this.fail(GrpcStatus.UNAVAILABLE, (w, full) => `could not open a stream to ${w}${full ? `: ${(err as Error).message}` : ''}`);
      return undefined;
    }
  }

  /** Done with attempt `a` (the one in flight unless named) before it answered: cancelled upstream (RST_STREAM CANCEL); `kind`: what it says of its endpoint. */
  private dropAttempt(kind: OutcomeKind = 'none', a: GrpcAttempt | undefined = this.flight.current): void {
    if (a === undefined) return;
    this.flight.leave(a);
    if (!a.answered) this.outcome(a.session.target, kind, a.sentAt);
    a.drop();
  }

  /** Done with every attempt in flight (the call is cut: client gone, deadline, idle, a fault). */
  protected dropAll(kind: OutcomeKind = 'none'): void {
    while (this.flight.current !== undefined) this.dropAttempt(kind);
  }

  /** Hedged: `a`'s answer wins; every other stream in flight is cancelled (RST_STREAM CANCEL). */
  private win(a: GrpcAttempt): void {
    for (const o of this.flight.win(a)) {
      this.lost(o.session.target, o.sentAt, o.hedge);
      if (this.tap !== undefined) this.tap.attemptLost(o.n);
      o.drop();
    }
  }

  private attemptFailed(a: GrpcAttempt, failure: Failure, detail: string, cause: string): void {
    // Hedged: a failure while another attempt is in flight is this attempt's alone; the other is awaited.
    const raced = this.flight.racing(a);
    this.dropAttempt(failureOutcome(failure), a);
    if (this.tap !== undefined) this.tap.attemptFailed(failure, a.n);
    if (raced) return;
    if (this.retried(this.afterFailure(failure, this.kept.forRetry))) return;
    if (failure === 'connect') this.fail(GrpcStatus.UNAVAILABLE, (w, full) => `could not connect to ${w}: ${full ? detail : cause}`);
    else if (failure === 'refused') this.fail(GrpcStatus.UNAVAILABLE, (w, full) => `${w} refused the stream: ${full ? detail : cause}`);
    else this.fail(GrpcStatus.UNAVAILABLE, (w, full) => `${w} reset the stream before answering: ${full ? detail : cause}`);
  }

  /** What the core decided after a failed attempt: true when another attempt follows. */
  private retried(next: 'replay' | 'retry' | undefined): boolean {
    // The client's further request bytes wait for the retry's stream.
    if (next === 'retry' && !this.requestEnded) this.stream.pause();
    return next !== undefined;
  }

  // ---- what the attempt in flight reports --------------------------------------------------
  // (a dropped attempt, and the last one once the call is over, is detached: nothing of it gets here)

  attemptDrained(): void {
    if (!this.retries.pending) this.stream.resume();
  }

  attemptResponse(a: GrpcAttempt, headers: IncomingHttpHeaders, flags: number): void {
    const httpStatus = Number(headers[':status']);
    if (this.tap !== undefined) this.tap.attemptStatus(httpStatus, a.n);
    const trailersOnly = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    // A trailers-only answer carries its gRPC status in these headers: endpoint health and retry_grpc_on read it now.
    const grpcStatus = trailersOnly && httpStatus === 200 ? answerStatus(headers, httpStatus) : undefined;
    if (this.flight.racing(a)) {
      // Hedged: an answer the policy would retry is this attempt's failure, and the other is awaited; any other answer wins.
      if ((grpcStatus !== undefined || httpStatus !== 200) && this.retriable(httpStatus, grpcStatus)) {
        a.answered = true;
        this.outcome(a.session.target, grpcStatus !== undefined ? grpcOutcome(grpcStatus) : httpOutcome(httpStatus), a.sentAt);
        this.dropAttempt('none', a);
        return;
      }
      this.win(a);
    }
    if (grpcStatus !== undefined || httpStatus !== 200) {
      a.answered = true;
      this.outcome(a.session.target, grpcStatus !== undefined ? grpcOutcome(grpcStatus) : httpOutcome(httpStatus), a.sentAt);
      if (this.retryAnswer(httpStatus, this.kept.forRetry, grpcStatus)) {
        this.retries.retryLater();
        this.retried('retry');
        this.dropAttempt();
        return;
      }
      const code = grpcStatus ?? answerStatus(headers, httpStatus);
      if (this.toFallback(code === GrpcStatus.UNAVAILABLE, this.fallbackRequest(), code)) return;
    }
    this.deadline.clear();
    this.responseStarted = true;
    this.httpStatus = httpStatus;
    this.relayed(a.sentAt, a.hedge);
    if (this.tap !== undefined && this.hedge !== undefined && this.hedge.sent > 0) this.tap.attemptWon(a.n);
    this.kept.answered();
    const c = this.stream;
    if (c.destroyed || c.closed) return;
    if (!trailersOnly) awaitTrailersWanted(c);
    answerMetadata(headers, this.backend, this, this.proxy.predictorHeader, this.proxy.suppressEnvoyHeaders === true ? undefined : this.serviceMs, this.proxy.server.value);
    const token = this.token;
    // A bandit's token goes into a SeldonMessage: the client's, so beneath a translation's decorator.
    if (token !== undefined && !trailersOnly && httpStatus === 200) this.answer = this.answer.tagged(token);
    // A translated call's answer edits its head (grpc-translation.ts); the call's own answer, itself, edits nothing: no check for translation here.
    this.answer.editHead(headers, trailersOnly, httpStatus);
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
      this.ended(true);
      this.finish();
    }
  }

  /** The request was translated (call-start.ts): the answer goes through the translation's decorator from now on. */
  protected translating(t: GrpcTranslation): void {
    this.answer = new TranslatedGrpcAnswer(this.answer, t, {
      trailers: () => this.trailers,
      badAnswer: (message) => {
        this.trailers = statusTrailers(
          GrpcStatus.INTERNAL,
          failureMessage(this.proxy, this.up.name, this.backend, GrpcStatus.INTERNAL, (w) => `${w}: ${message}`),
        );
      },
      failure: (text) => failureMessage(this.proxy, this.up.name, this.backend, GrpcStatus.INTERNAL, text),
      counted: (result) => this.metrics.translations.count(this.backend, t.from, t.to, result),
    });
  }

  attemptData(_a: GrpcAttempt, chunk: Buffer): void {
    if (this.stream.destroyed) return;
    this.answer.write(chunk);
  }

  attemptTrailers(a: GrpcAttempt, trailers: IncomingHttpHeaders): void {
    this.trailers = trailers;
    if (!a.answered) {
      a.answered = true;
      this.outcome(a.session.target, grpcOutcome(answerStatus(trailers, this.httpStatus)), a.sentAt);
    }
  }

  attemptEnd(a: GrpcAttempt): void {
    if (!this.responseStarted) return;
    // Node also ends the readable side of a stream its session lost; without trailers that is
    // not an answer but a failure, which 'close' reports.
    if (this.trailers === undefined && a.stream.destroyed) return;
    this.upstreamEnded = true;
    // The model is done with it: its slot under flow control goes to the next waiting call before
    // this answer's end is written out.
    this.ended(true);
    this.endResponse();
  }

  attemptClose(a: GrpcAttempt): void {
    if (this.upstreamEnded) return;
    if (this.responseStarted && this.trailers !== undefined && a.stream.rstCode === NGHTTP2_NO_ERROR) {
      // Complete answer, then RST_STREAM(NO_ERROR): the upstream is done with our request half.
      this.upstreamEnded = true;
      this.endResponse();
      return;
    }
    const { failure, detail, cause } = a.ending();
    if (!this.responseStarted) {
      this.attemptFailed(a, failure, detail, cause);
      return;
    }
    // Mid-answer: the status can no longer be the upstream's; say what happened in trailers.
    this.dropAttempt();
    this.fail(GrpcStatus.UNAVAILABLE, (w, full) => `${w} reset the stream after answering: ${full ? detail : cause}`);
  }

  attemptExpired(a: GrpcAttempt): void {
    if (this.responseStarted) return;
    const raced = this.flight.racing(a);
    this.dropAttempt('local', a);
    if (this.tap !== undefined) this.tap.attemptFailed('per_try_timeout', a.n);
    if (raced) return;
    if (this.retried(this.afterFailure('per-try-timeout', this.kept.forRetry))) return;
    this.metrics.timeout(this.backend, 'grpc');
    this.fail(GrpcStatus.DEADLINE_EXCEEDED, (w) => `${w} did not answer within the per-try timeout of ${this.backend.retry?.perTryTimeoutMs} ms`);
  }

  // ---- the answer, to the client (CallAnswer) ------------------------------------------------

  write(chunk: Buffer): void {
    // Counted as the client receives it: a bandit's tagged answer as tagged.
    if (this.tap !== undefined) this.tap.sent(chunk);
    if (streamFull(this.stream.write(chunk), this.stream)) {
      // The client is slower than the model: read on from the upstream once it took what was written.
      this.flight.current?.stream.pause();
      awaitClientDrain(this.stream);
    }
  }

  upstreamResumed(): void {
    this.flight.current?.stream.resume();
  }

  end(last?: Buffer): void {
    if (last !== undefined && last.length > 0) {
      if (this.tap !== undefined) this.tap.sent(last);
      this.stream.write(last);
    }
    this.stream.end();
  }

  /** The answer as it came: its head is the model's (answerMetadata's edits aside). */
  editHead(): void {}

  tagged(token: string): CallAnswerChain {
    return new TaggedGrpcAnswer(this, token);
  }

  /** The upstream's answer is complete: end the client's stream; its trailers follow. */
  private endResponse(): void {
    const c = this.stream;
    if (c.destroyed || c.closed) {
      this.finish();
      return;
    }
    this.answer.end();
  }

  trailersWanted(): void {
    // An upstream that ends a 200 gRPC answer without a status broke the protocol; say so.
    const t =
      this.trailers ??
      (this.httpStatus === 200
        ? statusTrailers(
            GrpcStatus.INTERNAL,
            failureMessage(this.proxy, this.up.name, this.backend, GrpcStatus.INTERNAL, (w) => `${w} ended the stream without a grpc-status`),
          )
        : {});
    this.status = answerStatus(t, this.httpStatus);
    try {
      this.stream.sendTrailers(t);
    } catch {
      // The client went away meanwhile; 'close' accounts for it.
    }
    this.finish();
  }

  // ---- timeouts ------------------------------------------------------------------------------

  protected callDeadlineExpired(why: 'client' | 'route'): void {
    if (this.done || this.responseStarted) return;
    // The route's timeout is the endpoint's failure; the client's own deadline says nothing of it.
    this.timedOut(why === 'route' ? 'local' : 'none', (where) =>
      why === 'route'
        ? `${where} did not answer within the route timeout of ${this.backend.timeoutMs} ms`
        : `the client's deadline (grpc-timeout ${this.deadline.clientTimeout}) expired before ${where} answered`,
    );
  }

  protected callIdle(): void {
    if (!this.done) this.timedOut('local', (w) => `no bytes in either direction for ${this.backend.idleTimeoutMs} ms on the call to ${w}`);
  }

  private timedOut(kind: OutcomeKind, text: Message): void {
    this.metrics.timeout(this.backend, 'grpc');
    this.dropAll(kind);
    this.fail(GrpcStatus.DEADLINE_EXCEEDED, text);
  }

  // ---- endings -------------------------------------------------------------------------------

  abort(err: unknown): void {
    if (this.done) return;
    const detail = err instanceof Error ? err.message : String(err);
    try {
      this.dropAll();
      this.fail(GrpcStatus.INTERNAL, (w, full) => `the gateway failed while handling the call to ${w}${full ? `: ${detail}` : ''}`);
    } catch {
      if (!this.stream.destroyed) this.stream.close(NGHTTP2_INTERNAL_ERROR);
      if (this.done) return;
      this.done = true;
      this.status = GrpcStatus.INTERNAL;
      this.tap?.end(GrpcStatus.INTERNAL, this.httpStatus, this.upstreamSeconds);
      this.settle();
    }
  }

  /** End the call with a status of the gateway's: trailers-only, or trailers after headers. */
  private fail(code: number, text: Message): void {
    if (this.done || (!this.responseStarted && this.toFallback(code === GrpcStatus.UNAVAILABLE, this.fallbackRequest(), code))) return;
    const message = failureMessage(this.proxy, this.up.name, this.backend, code, text);
    this.status = code;
    const c = this.stream;
    if (!this.responseStarted) {
      answerTrailersOnly(c, code, message, undefined, this.proxy.server.value);
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

  protected endUnanswered(): void {
    this.tap = undefined;
    this.finish();
  }

  protected finish(): void {
    if (this.done) return;
    this.done = true;
    this.deadline.clear();
    if (this.backend.idleTimeoutMs > 0 && !this.stream.destroyed) this.stream.setTimeout(0);
    // An upstream stream still open needs a word: cancelled if it never finished, NO_ERROR if it
    // answered while the client kept sending.
    const { current: a, rivals } = this.flight.clear();
    a?.closeAfter(this.upstreamEnded);
    // Other attempts still in flight (none once an answer won): cancelled.
    for (const o of rivals) {
      if (!o.answered) this.outcome(o.session.target, 'none', o.sentAt);
      o.drop();
    }
    stopReading(this.stream);
    if (this.tap !== undefined) this.tap.end(this.status, this.httpStatus, this.upstreamSeconds);
    this.settle();
    // Off come the listeners (they would only find `done`): a closed stream kept until a full collection must not keep the call.
    a?.detach();
    stopListening(this.stream);
  }
}
