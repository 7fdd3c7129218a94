/**
 * The start of a forwarded gRPC call and its client's half (the layer of the call between the pipeline's
 * adapter, grpc/grpc-request.ts, and the attempts and answer, grpc/call.ts): the call's state, afresh
 * for each forward (`begin`; a fallback's forward begins again on the same call), its admission, the
 * client's request chunks (kept for a replay and the mirrors, grpc/kept-request.ts) and its deadlines
 * (grpc/call-deadline.ts: the client's grpc-timeout from arrival, the route timeout from the end of the
 * request until the response headers).
 */
import type { OutgoingHttpHeaders } from 'node:http2';
import { GrpcStatus } from '../edge/errors.js';
import type { ForwardUpstream } from '../forward/forwarded.js';
import { InFlight } from '../forward/in-flight.js';
import type { OutcomeKind } from '../forward/outcome.js';
import type { CallTap } from '../observe/observed-grpc.js';
import type { GrpcUpstream } from '../upstream/grpc-sessions.js';
import type { Routed } from '../../routing/types.js';
import { answerTrailersOnly } from './answer.js';
import type { GrpcAttempt } from './attempt.js';
import { CallDeadline, type DeadlineOwner } from './call-deadline.js';
import { listenToClient, stopListening, type ClientStreamOwner } from './client-stream.js';
import { GrpcPipelineRequest } from './grpc-request.js';
import { KeptRequest } from './kept-request.js';
import { upstreamMetadata } from './metadata.js';
import { joinPieces } from '../wire/message-body.js';
import { TranslateRefusal } from '../translate/datatypes.js';
import { GrpcTranslation, MAX_TRANSLATED_MESSAGE, TRANSLATED_METADATA, grpcTranslationFor } from './grpc-translation.js';
import { MESSAGE_HEAD, framesOneMessage } from '../wire/grpc-message.js';
import { RESPOND_WITH_TRAILERS } from './answer.js';

const OVERLOADED = { 'x-envoy-overloaded': 'true' } as const;
/** The Module's suppress_envoy_headers: a breaker's refusal without x-envoy-overloaded. */
const NO_FIELDS = {} as const;

export abstract class CallStart extends GrpcPipelineRequest implements DeadlineOwner, ClientStreamOwner {
  declare protected up: GrpcUpstream;
  /** The client's grpc-timeout and the route timeout, before the response headers. */
  protected deadline!: CallDeadline;
  /** The attempt in flight and, hedged, its rivals: made by its first forward (a request refused before it has none), kept for a fallback's. */
  protected flight!: InFlight<GrpcAttempt>;
  protected attempts = 0;
  /** Request chunks kept for replay and mirrors. */
  protected kept!: KeptRequest;
  protected requestEnded = false;
  protected responseStarted = false;
  protected upstreamEnded = false;
  protected trailers: OutgoingHttpHeaders | undefined = undefined;
  protected httpStatus = 0;
  /** Access log and tracing: set only when one applies to this call. */
  protected tap: CallTap | undefined = undefined;
  /** The call translated for its model (grpc/grpc-translation.ts), or null: it goes as it came. */
  protected translation: GrpcTranslation | null = null;
  /** The client's request as it came, kept beside a translated one: a fallback or a mirror of the client's protocol gets it. */
  protected clientRequest: readonly Buffer[] | undefined = undefined;
  /** The request message being read whole to be translated by `t`, before the call is admitted: its chunks and their size. */
  private reading: { readonly t: GrpcTranslation; readonly chunks: Buffer[]; size: number } | null = null;
  /** The client's stream is listened to already (it was, to read the message to translate). */
  private listening = false;

  protected override begin(decision: Routed, up: ForwardUpstream): void {
    super.begin(decision, up);
    // Cleared when a forward finishes: a fallback's forward reuses it.
    if (this.flight === undefined) this.flight = new InFlight();
    this.status = GrpcStatus.CANCELLED;
    this.attempts = 0;
    this.requestEnded = false;
    this.responseStarted = false;
    this.upstreamEnded = false;
    this.trailers = undefined;
    this.httpStatus = 0;
    this.translation = null;
    this.clientRequest = undefined;
    this.reading = null;
    this.listening = false;
    const ctx = this.proxy;
    // Taken as forwarding begins, before its headers become the upstream's.
    this.tap = ctx.observe?.begin(this.stream, this.headers, decision, this.up.name, this);
    upstreamMetadata(this.headers, this.peer, decision.backend);
    // A Mapping's `rewrite` (Emissary's default `/` included) names the method the model is called with.
    if (this.headers[':path'] !== decision.upstreamPath) this.headers[':path'] = decision.upstreamPath;
    this.kept = new KeptRequest(ctx.retryBufferBytes, decision.mirrors, ctx.mirrors);
    // After waiting under flow control, the client's deadline runs from the call's arrival, the wait included.
    this.deadline = new CallDeadline(this, this.clock, this.headers['grpc-timeout'], this.flow !== undefined ? this.since : undefined);
  }

  /** Done with every attempt in flight (the call is cut: client gone, deadline, idle, a fault). */
  protected abstract dropAll(kind?: OutcomeKind): void;
  /** The call is over: its attempts closed, its client's stream let go, counted and settled. */
  protected abstract finish(): void;
  /** The client's deadline or the route timeout ran out (the message read, the call forwarded). */
  protected abstract callDeadlineExpired(why: 'client' | 'route'): void;
  /** No bytes either way for the idle timeout (the message read, the call forwarded). */
  protected abstract callIdle(): void;
  abstract upstreamResumed(): void;
  abstract trailersWanted(): void;
  /** The request was translated by `t`: its answer will be translated back. */
  protected abstract translating(t: GrpcTranslation): void;

  protected who(): string {
    return this.proxy.internalDetail ? `${this.up.name} (${this.backend.id})` : this.backend.id;
  }

  protected answerOverflow(info: string): void {
    answerTrailersOnly(this.stream, GrpcStatus.UNAVAILABLE, info, this.proxy.suppressEnvoyHeaders === true ? NO_FIELDS : OVERLOADED, this.proxy.server.value);
    this.tap?.end(GrpcStatus.UNAVAILABLE, 0, null);
  }

  protected start(): void {
    const client = this.stream;
    if (client.destroyed || client.closed) {
      // The client left while the call waited (auth, rate limits): its 'close' has been and gone. Counted, nothing went upstream.
      this.done = true;
      this.letGo();
      this.tap?.end(this.status, 0, null);
      this.settle();
      return;
    }
    // All that translation costs a route without it: this check (null, decided when the route was compiled).
    if (this.backend.translate !== null) {
      if (!this.admitTranslating()) return;
    } else if (!this.admit(GrpcStatus.UNAVAILABLE)) return;
    const request = this.request;
    if (this.listening) this.listening = false;
    else listenToClient(client, this, request === undefined, this.backend.idleTimeoutMs);
    this.deadline.startClient();
    this.headers[':scheme'] = this.up.tls ? 'https' : 'http';
    if (request !== undefined) {
      // Read whole already (feedback, for its token; kept for a fallback's forward): sent as one, and the request has ended.
      // The payload log keeps the client's message: a translated call's is the one before translation.
      if (this.tap !== undefined) for (const chunk of this.translation !== null ? this.clientRequest! : request) this.tap.received(chunk);
      this.kept.whole(request);
      this.dispatch();
      this.clientEnded();
      return;
    }
    this.dispatch();
  }

  /**
   * The admission of a call on a translating route: its request is translated first (which starts the
   * call again once it is), then admitted; a v2 model's metadata is fetched now if due, beside this call
   * (which never waits for it). False: the call goes no further here.
   */
  private admitTranslating(): boolean {
    const t = this.translation;
    if (t === null) {
      const first = grpcTranslationFor(this.backend, this.decision.upstreamPath, this.proxy.metadata);
      if (first !== null) {
        this.translateFirst(first);
        return false;
      }
    }
    if (!this.admit(GrpcStatus.UNAVAILABLE)) {
      this.letGo();
      return false;
    }
    if (t !== null && t.to === 'v2') this.proxy.metadata?.wanted(this.backend, 'grpc', String(this.headers[':authority'] ?? ''));
    return true;
  }

  // ---- client side ---------------------------------------------------------------------------

  clientData(chunk: Buffer): void {
    if (this.done) return;
    if (this.reading !== null) return this.readChunk(chunk);
    if (this.tap !== undefined) this.tap.received(chunk);
    this.kept.keep(chunk);
    // The upstream is slower than the client: it reads on once the attempt took what was written.
    const a = this.flight.current;
    if (a !== undefined && !a.write(chunk)) this.stream.pause();
  }

  clientEnded(): void {
    if (this.reading !== null) return this.readEnded();
    this.requestEnded = true;
    if (this.done) return;
    this.flight.current?.stream.end();
    if (!this.responseStarted) this.deadline.startRoute(this.routeBudgetMs());
    if (this.kept.forMirror) {
      this.sendMirrors();
      this.kept.mirrored();
    }
  }

  /**
   * The mirrors' copies: each in its own model's protocol. A route whose mirrors translate nothing
   * sends the primary's message and method to all of them (one check per mirror); otherwise the
   * client's message is translated once per mirror that needs it.
   */
  private sendMirrors(): void {
    const mirrors = this.decision.mirrors;
    const mirrorer = this.proxy.mirrors;
    if (this.translation === null && !mirrors.some((m) => m.backend.translate !== null)) {
      mirrorer.send(mirrors, { ...this.headers }, this.kept.chunks ?? [], this.tap);
      return;
    }
    const original = Buffer.concat(this.clientRequest ?? this.kept.chunks ?? []);
    const path = this.decision.upstreamPath;
    for (const m of mirrors) {
      const t = grpcTranslationFor(m.backend, path, this.proxy.metadata);
      let body: Buffer = original;
      if (t !== null && t.own === undefined) {
        try {
          body = t.request(original);
        } catch (err) {
          if (!(err instanceof TranslateRefusal)) throw err;
          // A copy its model could not take unchanged is not sent (the primary's answer is not the mirror's business).
          this.metrics.translations.count(m.backend, t.from, t.to, 'refused');
          continue;
        }
      }
      mirrorer.send([m], { ...this.headers, ':path': t !== null && t.own === undefined ? t.path : path }, [body], this.tap);
    }
  }

  /** What a fallback gets: the client's request as it came (a translated one is its model's alone). */
  protected fallbackRequest(): readonly Buffer[] {
    return this.clientRequest ?? this.kept.chunks ?? [];
  }

  /**
   * A call translated for its model: its request read whole (at most MAX_TRANSLATED_MESSAGE),
   * translated once, then admitted and sent whole (retries and hedges resend it). What cannot be
   * carried unchanged is refused before admission: INVALID_ARGUMENT, nothing sent, counted as the
   * gateway's answer.
   */
  private translateFirst(t: GrpcTranslation): void {
    if (this.request !== undefined) return this.translated(t, Buffer.concat(this.request));
    // Read on the call's own listeners, which the forward then keeps: a client that stops sending
    // mid-message is cut at the route's idle timeout, as a forwarded call is; one that trickles it,
    // a byte now and then, at the route's timeout: the message is read within it.
    this.reading = { t, chunks: [], size: 0 };
    this.listening = true;
    listenToClient(this.stream, this, true, this.backend.idleTimeoutMs);
    // The client's deadline runs from its arrival, the read included.
    this.deadline.startClient();
    this.deadline.startRoute(this.routeBudgetMs());
  }

  private readChunk(chunk: Buffer): void {
    const r = this.reading!;
    r.chunks.push(chunk);
    r.size += chunk.length;
    if (r.size <= MAX_TRANSLATED_MESSAGE + MESSAGE_HEAD) return;
    this.readDone();
    this.stream.pause();
    this.refuseUnsent(GrpcStatus.RESOURCE_EXHAUSTED, `the request message is larger than ${MAX_TRANSLATED_MESSAGE} bytes, too large to translate`);
  }

  private readEnded(): void {
    const { t, chunks, size } = this.reading!;
    const whole = joinPieces(chunks, size);
    this.readDone();
    // Its read's deadline is over: the forward's run from here (the client's from arrival, the route's from the request's end).
    this.deadline.clear();
    // A message cut short may be its client gone (Node ends each stream of a session that closes before it
    // says 'close'): decided once that had its turn, so a call its client left is counted so, not refused.
    if (!framesOneMessage(whole)) setImmediate(() => this.translated(t, whole));
    else this.translated(t, whole);
  }

  private readDone(): void {
    this.reading = null;
  }

  deadlineExpired(why: 'client' | 'route'): void {
    if (this.reading === null) return this.callDeadlineExpired(why);
    this.readDone();
    this.refuseUnsent(
      GrpcStatus.DEADLINE_EXCEEDED,
      why === 'route'
        ? `the request message was not read within the route timeout of ${this.routeBudgetMs()} ms to be translated`
        : `the client's deadline (grpc-timeout ${this.deadline.clientTimeout}) expired while its message was read to be translated`,
    );
  }

  idle(): void {
    if (this.reading === null) return this.callIdle();
    this.readDone();
    this.refuseUnsent(GrpcStatus.DEADLINE_EXCEEDED, `no request bytes for ${this.backend.idleTimeoutMs} ms while the message was read to be translated`);
  }

  /** The client's whole request message translated for its model; then admitted and sent (or refused: nothing sent). */
  private translated(t: GrpcTranslation, whole: Buffer): void {
    if (this.done) return;
    if (t.own !== undefined) return this.answerOwn(t, whole);
    this.tap?.translated(t.label);
    let sent: Buffer;
    try {
      sent = t.request(whole);
    } catch (err) {
      if (!(err instanceof TranslateRefusal)) throw err;
      this.metrics.translations.count(this.backend, t.from, t.to, 'refused');
      return this.refuseUnsent(err.status === 413 ? GrpcStatus.RESOURCE_EXHAUSTED : GrpcStatus.INVALID_ARGUMENT, err.message);
    }
    this.translation = t;
    this.translating(t);
    this.clientRequest = [whole];
    this.request = [sent];
    this.headers[':path'] = t.path;
    // The model's answer is read to be translated: it must come uncompressed.
    delete this.headers['grpc-accept-encoding'];
    delete this.headers['grpc-encoding'];
    // The message the model gets is not the client's: a length the client sent does not describe it.
    delete this.headers['content-length'];
    this.start();
  }

  /** Refused before admission (nothing was sent): answered, counted as the gateway's own answer, never the predictor's outcome. */
  private refuseUnsent(code: number, message: string): void {
    if (this.done) return;
    this.done = true;
    this.status = code;
    this.letGo();
    this.metrics.refused(this.backend, 'grpc', code, this.since);
    this.tap?.end(code, 0, null);
    answerTrailersOnly(this.stream, code, message, undefined, this.proxy.server.value);
    this.ended(false);
  }

  /** A v2 client's `ModelMetadata` / `ModelReady` of a Seldon model, answered by the gateway: nothing sent, counted as its own answer. */
  private answerOwn(t: GrpcTranslation, whole: Buffer): void {
    let answer: Buffer;
    try {
      answer = t.ownAnswer(whole);
    } catch (err) {
      if (!(err instanceof TranslateRefusal)) throw err;
      return this.refuseUnsent(err.status === 404 ? GrpcStatus.NOT_FOUND : GrpcStatus.INVALID_ARGUMENT, err.message);
    }
    this.done = true;
    this.status = GrpcStatus.OK;
    this.letGo();
    this.metrics.refused(this.backend, 'grpc', GrpcStatus.OK, this.since);
    this.tap?.end(GrpcStatus.OK, 200, null);
    this.ended(false);
    const c = this.stream;
    if (c.destroyed || c.closed) return;
    const server = this.proxy.server.value;
    c.respond({ ':status': 200, 'content-type': 'application/grpc', [TRANSLATED_METADATA]: t.label, ...(server === undefined ? {} : { server }) }, RESPOND_WITH_TRAILERS);
    c.once('wantTrailers', () => c.sendTrailers({ 'grpc-status': '0' }));
    c.end(answer);
  }

  /** Answered before admission: the read's timers and the listeners let go (a stream kept until a full collection must not keep the call). */
  private letGo(): void {
    this.deadline.clear();
    const c = this.stream;
    if (!this.listening) return;
    this.listening = false;
    if (this.backend.idleTimeoutMs > 0 && !c.destroyed) c.setTimeout(0);
    stopListening(c);
  }

  /** The client reset the stream or its connection closed: cancel upstream at once. */
  clientClosed(): void {
    if (this.done) return;
    if (this.reading !== null) {
      // Gone while its message was read: start's first check settles the call, nothing sent.
      this.readDone();
      return this.start();
    }
    this.status = GrpcStatus.CANCELLED;
    this.dropAll();
    this.finish();
  }

  /** The client's half has ended, its chunks kept, and no answer has begun: it can go again whole. */
  protected resendable(): boolean {
    return this.requestEnded && this.kept.forRetry && !this.responseStarted;
  }
}
