/**
 * The way of a forwarded REST request's body to its upstream (the layer of the exchange between the
 * pipeline's adapter, rest/rest-request.ts, and the attempts and answer, rest/forwarded-exchange.ts):
 * which strategy its body takes (read already, whole from the lane, buffered for retries and hedges,
 * decoded, or streamed), its mirrors' copies, the route timer, which starts once the request has
 * been received in full (the exchange is its timer's entry, upstream/timeout-lists.ts), and where the
 * answer's body will go, decided as the request is admitted (the client's response, or its compressor).
 */
import type { Readable } from 'node:stream';
import type { RestRequest, RestResponse } from '../edge/rest-exchange.js';
import type { GatewayReason } from '../edge/errors.js';
import type { UpstreamFields } from '../edge/upstream-fields.js';
import { isSmall, readSmallBody } from '../edge/small-body.js';
import type { ForwardUpstream } from '../forward/forwarded.js';
import type { ResponseTap } from '../observe/observed-rest.js';
import type { TimeoutEntry, TimeoutList } from '../upstream/timeout-lists.js';
import type { UpstreamPool } from '../upstream/pools.js';
import { announcesBody, isWhole } from '../wire/message-body.js';
import type { Routed } from '../../routing/types.js';
import { RequestBody } from './request-body.js';
import { decodesFirst, type DecodeOwner, type DecodeRefusal } from './request-decoder.js';
import { RestPipelineRequest, type RestHost } from './rest-request.js';
import { CompressingAnswer, type AnswerOut } from './answer-encoder.js';
import type { RequestCoding } from '../../routing/compression/policy.js';
import type { Mirror } from '../../routing/types.js';
import { sendRouteError } from './route-answer.js';
import { TRANSLATED_HEADER, translationFor, v2ModelAnswer, type RestTranslation } from './rest-translation.js';
import { sendJson } from '../edge/http-answer.js';
import { TranslateRefusal } from '../translate/datatypes.js';

export abstract class ExchangeBody extends RestPipelineRequest implements TimeoutEntry, DecodeOwner {
  declare protected up: UpstreamPool;
  /** The upstream request's head: the client's fields as the model gets them (rest/rest-request.ts `forward`). */
  protected headers!: UpstreamFields;
  /** What goes upstream: the body whole (null: none), or streamed (the client's own stream on a plain route, else a `RequestBody` over it). */
  protected sendBody: Buffer | Readable | null = null;
  /** The body can be sent again (absent, or fully buffered). */
  protected replayable = true;
  /** The route timeout: the exchange is an entry of its duration's list (upstream/timeout-lists.ts), from the end of the request on. */
  timeoutNext: TimeoutEntry | null = null;
  timeoutPrev: TimeoutEntry | null = null;
  timeoutDue = -1;
  timeoutList: TimeoutList | null = null;
  private timed = false;
  /** Predictor header, access log, answer capture for comparison: set only when one applies. */
  protected tap: ResponseTap | undefined = undefined;
  /** Where the answer's body goes: the client's response, or on a route that compresses its compressor (rest/answer-encoder.ts), made as the request is admitted. */
  protected out: AnswerOut;
  /** The request translated for its model (rest/rest-translation.ts), or null: it goes as it came. */
  protected translation: RestTranslation | null = null;
  /** The path the model is asked: the decision's, or the translation's. */
  protected sendPath = '';
  /** The client's body as it came, kept beside a translated one: a fallback or a mirror of the client's protocol gets it. */
  protected clientBody: Buffer | null = null;

  constructor(proxy: RestHost, req: RestRequest, res: RestResponse, since: number, frontEnd: boolean) {
    super(proxy, req, res, since, frontEnd);
    this.out = res;
  }

  protected override begin(decision: Routed, up: ForwardUpstream): void {
    super.begin(decision, up);
    this.sendBody = null;
    this.replayable = true;
    this.timed = false;
    this.tap = undefined;
    this.out = this.res;
    this.translation = null;
    this.sendPath = decision.upstreamPath;
    this.clientBody = null;
  }

  /** `cause`: the library's words, for --error-detail internal only. */
  protected abstract fail(status: number, reason: GatewayReason, info: string, cause?: string): void;
  /** The route timeout ran out. */
  abstract timedOut(): void;
  /** The client's answer closed (ended, or its connection went) while the exchange was not done. */
  abstract responseClosed(): void;

  protected start(fields: UpstreamFields): void {
    this.headers = fields;
    const observe = this.proxy.deps.observe;
    if (observe !== undefined) this.tap = observe.begin(this.req, this.res, this.decision, fields, this.up.name, this);
    const res = this.res as Carrying;
    // Once per request, whatever path it takes (a translated one reads its body before admission): a fallback's forward finds it listening already.
    if (res[EXCHANGE] === undefined) {
      res[EXCHANGE] = this;
      res.once('close', responseClosed);
    }
    // All that translation costs a route without it: this check (null, decided when the route was compiled).
    if (this.backend.translate !== null) {
      const translation = translationFor(this.backend, this.req.method, this.decision.upstreamPath, this.proxy.deps.metadata);
      if (translation !== null) return this.translateFirst(translation);
      const own = v2ModelAnswer(this.backend, this.req.method, this.decision.upstreamPath);
      if (own !== undefined) return this.answerUnsent(own.status, own.body);
    }
    if (!this.admit(503)) return;
    // All that compression costs a request on a route without it: this check (null, decided when the route was compiled).
    const z = this.backend.compression;
    if (z !== null) {
      if (z.algorithms.length !== 0) this.out = new CompressingAnswer(z, this.req, this.res, this.metrics.compression, this.tap);
      if (z.decodeRequests && decodesFirst(this.req, this, fields, this.proxy.deps, this)) return;
    }
    const req = this.req;
    const body = req.body;
    const retryBuffer = this.proxy.deps.upstream.retryBufferBytes;
    const bodyHead = this.bodyHead;
    const read = this.body;
    if (bodyHead !== undefined && !isWhole(body)) {
      // Read in part already (feedback, for its token): too large to replay.
      this.retries.noRetries();
      if (this.decision.mirrors.length) this.proxy.deps.mirrors.tooLarge(this.decision.mirrors);
      this.streamBody(body, bodyHead, false);
      this.dispatch();
    } else if (read !== undefined) {
      // Read already (feedback, for its token; the body kept for a fallback's forward).
      if (read !== null && read.length > retryBuffer) this.retries.noRetries();
      this.dispatchWhole(read);
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

  /**
   * A request translated for its model: read whole (at most --max-body), translated once (what the model
   * gets at most --max-body too), then
   * admitted and sent as a whole body (retries and hedges resend it). What cannot be carried
   * unchanged is refused before admission: 400, nothing sent, counted as the gateway's answer.
   */
  private translateFirst(translation: RestTranslation): void {
    const limit = this.proxy.deps.maxBodyBytes ?? 0;
    const go = (body: Buffer | null): void => {
      if (this.done) return;
      this.tap?.translated(translation.label);
      let sent: Buffer;
      try {
        sent = translation.request(body);
      } catch (err) {
        if (!(err instanceof TranslateRefusal)) throw err;
        this.proxy.deps.metrics.translations.count(this.backend, translation.from, translation.to, 'refused');
        return this.refuseUnsent(400, 'BAD_REQUEST', err.message);
      }
      // What the model gets is bounded as a decoded body is: translation may grow it (FP32's `1` is a Seldon `1.0`).
      if (limit > 0 && sent.length > limit) {
        this.proxy.deps.metrics.translations.count(this.backend, translation.from, translation.to, 'refused');
        return this.refuseUnsent(413, 'PAYLOAD_TOO_LARGE', `the translated request body is ${sent.length} bytes, larger than ${limit}`);
      }
      if (!this.admit(503)) return;
      this.translation = translation;
      this.sendPath = translation.path;
      this.clientBody = body;
      // The model's answer is read to be translated: it must come unencoded (the client's coding is the gateway's to apply).
      this.headers.ownBody('application/json');
      const z = this.backend.compression;
      if (z !== null && z.algorithms.length !== 0) this.out = new CompressingAnswer(z, this.req, this.res, this.metrics.compression, this.tap);
      if (sent.length > this.proxy.deps.upstream.retryBufferBytes) this.retries.noRetries();
      this.dispatchWhole(sent);
      // Admitted and sent: its model's metadata is fetched now if due, beside this request (which never waits for it).
      if (translation.to === 'v2') this.proxy.deps.metadata?.wanted(this.backend, 'rest');
    };
    const read = this.body;
    const body = this.req.body;
    if (this.bodyHead !== undefined) return this.refuseUnsent(413, 'PAYLOAD_TOO_LARGE', 'the request body is too large to translate');
    if (read !== undefined) go(read);
    else if (isWhole(body)) go(body);
    else if (!announcesBody(this.req)) go(null);
    else
      readSmallBody(body, limit > 0 ? limit : Number.MAX_SAFE_INTEGER, (whole) => {
        if (whole !== null) go(whole);
        else this.refuseUnsent(413, 'PAYLOAD_TOO_LARGE', `the request body is larger than ${limit} bytes`);
      });
  }

  /** Answered by the gateway before admission (a v2 client's metadata or readiness of a Seldon model): nothing sent, counted as the gateway's own answer. */
  private answerUnsent(status: number, body: string): void {
    this.done = true;
    this.status = status;
    this.metrics.refused(this.backend, 'rest', status, this.since);
    this.tap?.end(status, null, false);
    sendJson(this.req, this.res, status, body, { ...this.corsHeaders, [TRANSLATED_HEADER]: 'v2->seldon' });
    this.ended(false);
  }

  /** Refused before admission (nothing was sent): answered, counted as the gateway's own answer, never the predictor's outcome. */
  private refuseUnsent(status: 400 | 413, reason: GatewayReason, info: string): void {
    if (this.done) return;
    this.done = true;
    this.status = status;
    this.metrics.refused(this.backend, 'rest', status, this.since);
    this.tap?.end(status, null, false);
    const close = this.proxy.draining || !this.req.complete;
    sendRouteError(this.req, this.res, status, reason, info, close ? { connection: 'close', ...this.corsHeaders } : this.corsHeaders, this.backend.mapping);
    this.ended(false);
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
  protected dispatchWhole(body: Buffer | null): void {
    this.sendBody = body;
    // The payload log keeps the client's message: a translated request's is the body before translation.
    const logged = this.translation !== null ? this.clientBody : body;
    if (logged !== null) this.tap?.requestBody?.(logged);
    this.startTimer();
    // This forward's: its first attempt may fall back at once (no endpoint), and the fallback's forward begins
    // on this object, without shadows; the primary's shadows still get their copy, untapped.
    const decision = this.decision;
    this.dispatch();
    const mirrors = decision.mirrors;
    if (mirrors.length === 0) return;
    const mirrorer = this.proxy.deps.mirrors;
    if (body !== null && body.length > mirrorer.maxBodyBytes) mirrorer.tooLarge(mirrors);
    else this.sendMirrors(mirrors, body, this.decision === decision ? this.tap : undefined);
  }

  /**
   * The mirrors' copies: each in its own model's protocol. A route whose mirrors translate nothing
   * sends the primary's body and path to all of them (one check per mirror); otherwise the client's
   * body is translated once per mirror that needs it.
   */
  private sendMirrors(mirrors: readonly Mirror[], body: Buffer | null, tap: ResponseTap | undefined): void {
    const mirrorer = this.proxy.deps.mirrors;
    const { decision, headers } = this;
    if (this.translation === null && !mirrors.some((m) => m.backend.translate !== null)) {
      mirrorer.send(mirrors, this.req.method, this.sendPath, headers, body, tap?.capture, tap);
      return;
    }
    const original = this.translation === null ? body : this.clientBody;
    for (const m of mirrors) {
      const t = translationFor(m.backend, this.req.method, decision.upstreamPath, this.proxy.deps.metadata);
      let sent = original;
      if (t !== null) {
        try {
          sent = t.request(original);
        } catch (err) {
          if (!(err instanceof TranslateRefusal)) throw err;
          // A copy its model could not take unchanged is not sent (the primary's answer is not the mirror's business).
          this.proxy.deps.metrics.translations.count(m.backend, t.from, t.to, 'refused');
          continue;
        }
      }
      mirrorer.send([m], this.req.method, t === null ? decision.upstreamPath : t.path, headers, sent, tap?.capture, tap);
    }
  }

  /**
   * Stream the body to the upstream (after `head`, chunks already read); with `copy`, mirrors
   * get the whole body once it has ended, without holding the primary.
   *
   * A body nothing else reads (no chunks read before, no mirror's copy, no payload log) goes as it
   * came: the upstream client reads the client's own stream, its chunks written as the socket handed
   * them over, and each socket's watermark is the other's backpressure. No stream between them: one
   * was a second set of buffers, pauses and 'data' events per chunk (load/README.md, `large`).
   * The client's stream is never destroyed on the upstream's account: the upstream client only
   * listens to it and lets go (upstream/http1-connection.ts `detachBody`).
   */
  private streamBody(stream: Readable, head: Buffer[], copy: boolean): void {
    const seen = this.tap?.requestBody;
    this.replayable = false;
    stream.once('end', () => this.startTimer());
    if (head.length === 0 && !copy && seen === undefined) {
      this.sendBody = stream;
      return;
    }
    const mirrors = this.decision.mirrors;
    const limit = this.proxy.deps.mirrors.maxBodyBytes;
    const copied = copy ? { limit, whole: (b: Buffer | null) => (b === null ? this.proxy.deps.mirrors.tooLarge(mirrors) : this.mirror(b)) } : undefined;
    this.sendBody = new RequestBody(this.req, stream, head, copied, seen);
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
    this.sendMirrors(this.decision.mirrors, body, this.tap);
  }

  /** The route timeout starts once the request has been received in full (docs/routing.md#timeouts-retries-and-circuit-breakers). */
  protected startTimer(): void {
    const ms = this.routeBudgetMs();
    if (ms > 0 && !this.done && !this.timed) {
      this.timed = true;
      this.proxy.timeouts.start(this, ms);
    }
  }

  /** The body goes again, whole and kept: not streamed, not over the retry buffer. */
  protected resendable(): boolean {
    const body = this.sendBody;
    return this.replayable && isWhole(body) && (body === null || body.length <= this.proxy.deps.upstream.retryBufferBytes);
  }
}

/** The client answer's 'close' listener, one for every exchange: the exchange rides on its answer (no closure per request). */
const EXCHANGE = Symbol('rest exchange');
type Carrying = RestResponse & { [EXCHANGE]?: ExchangeBody };
function responseClosed(this: Carrying): void {
  this[EXCHANGE]?.responseClosed();
}
