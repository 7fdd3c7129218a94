/**
 * Optional per-request observation on the REST hot path: the `x-seldon-predictor` answer header
 * (`--predictor-header`), the access log (`--access-log`), tracing (`--otlp-endpoint`) and the
 * capture of the primary's answer for shadow comparison (`--shadow-compare`, requests that mirror).
 *
 * The proxy holds one `RestObserve` only when one of these is on; without it an exchange does no
 * extra work. `begin` returns a tap only when the request needs one: a shared per-backend tap for
 * the header alone, a per-request one when this request is logged, traced or its answer captured.
 * The exchange tells its tap each attempt (address, answer or failure), each shadow, the answer's
 * head and body, and the end; `answered` covers requests the gateway answers itself (no route,
 * a refusal), so every REST request gets its line. The access log and tracing are the shared
 * tap's (observe/request-tap.ts); this file reads a REST request for them and adds the answer's
 * predictor header and capture.
 */
import type { Attributes } from '@opentelemetry/api';
import type { ObservedAnswerFields, ObservedRequest, ObservedResponse, ObservedUpstreamFields } from './rest-view.js';
import { announcesBody, isWhole } from '../wire/message-body.js';
import { clientSubject } from './peer-subject.js';
import type { AccessLog } from './access-log.js';
import { LogLine, RequestTap, answeredEnd, hostOf, peerAddress, type Arrival, type AttemptTap, type SpanNames, type TapProtocol } from './request-tap.js';
import type { PrimaryCapture, ShadowComparer } from './shadow-compare.js';
import { originAttributes } from './span-attributes.js';
import { RAW_HEADERS, incomingTraceId, type HeaderWriter } from './trace-context.js';
import type { CallTrace, Tracing } from './tracing.js';
import type { ResponseHead } from '../wire/response-head.js';
import type { Backend, Routed } from '../../routing/types.js';
import type { LogSubject, PayloadLogger, RefusedRequest, RequestRecorder } from './payload-tap.js';

/** The answer header naming the predictor that served a request. */
export const PREDICTOR_HEADER = 'x-seldon-predictor';

/** What an exchange tells its tap: its attempts and shadows (observe/request-tap.ts), and the answer. */
export interface ResponseTap extends AttemptTap<ObservedUpstreamFields> {
  /** The primary's answer, captured for comparison with this request's mirrors. */
  readonly capture: PrimaryCapture | undefined;
  /** The upstream answer's head is about to be sent; `fields` (client-bound) may be added to; `raw`, as the model sent it. */
  head(status: number, fields: ObservedAnswerFields, raw: ResponseHead): void;
  /** A chunk of the answer sent to the client. */
  body(chunk: Buffer): void;
  /** Set when the request body is logged: told each piece of it as the client sent it. */
  readonly requestBody?: ((chunk: Buffer) => void) | undefined;
  /** The request body was decoded for the model (docs/edge.md#compression): its coding, its bytes plain and as the client sent them. */
  requestDecoded(coding: string, identity: number, encoded: number): void;
  /** The request is translated from the client's protocol to its model's (docs/protocol-translation.md). */
  translated(label: string): void;
  /** The answer goes compressed in `coding` (undefined: it does not after all); the request's end then waits for `answerEncoded`. */
  answerEncoding(coding: string | undefined): void;
  /** The compressed answer is over (whole, or cut): its bytes as the model sent them and as the client got them. */
  answerEncoded(identity: number, encoded: number): void;
  /** The exchange ended: the status counted in metrics; `complete`, a whole upstream answer was sent. */
  end(status: number, upstreamSeconds: number | null, complete: boolean): void;
}

/**
 * How many body bytes a request brought: its Content-Length once it arrived whole (null when it
 * did not: the client went away, or the answer came first); a body of unknown length (chunked,
 * or HTTP/2 without Content-Length) is counted as it is handed over (whoever reads it, whenever).
 */
class BodyBytes {
  private counted = 0;
  private readonly chunked: boolean;

  constructor(private readonly req: ObservedRequest) {
    this.chunked = req.field('content-length') === undefined;
    const body = req.body;
    if (!this.chunked || isWhole(body)) return;
    // Bytes already parsed and waiting (a gated request's verdict took a while): nothing read them yet.
    this.counted = body.readableLength;
    if (req.complete) return;
    const push = body.push;
    body.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
      if (chunk !== null && chunk !== undefined) this.counted += (chunk as Buffer).length;
      return push.call(body, chunk, encoding);
    };
  }

  get bytes(): number | null {
    if (this.chunked) return this.counted;
    return this.req.complete ? Number(this.req.field('content-length') ?? 0) : null;
  }
}

/** HTTP/1.1, HTTP/1.0 or HTTP/2, as Envoy's %PROTOCOL% says. */
const protocolOf = (req: ObservedRequest): string => (req.httpVersionMajor === 2 ? 'HTTP/2' : req.httpVersion === '1.1' ? 'HTTP/1.1' : `HTTP/${req.httpVersion}`);

/** A request that may carry a body (HTTP/2 says so only by sending DATA: assume it may). */
const hasBody = (req: ObservedRequest): boolean => announcesBody(req) || req.httpVersionMajor === 2;

/** The header alone: no per-request state. */
class HeaderTap implements ResponseTap {
  readonly capture = undefined;
  constructor(private readonly predictor: string) {}
  attempt(): void {}
  attempted(): void {}
  attemptStatus(): void {}
  attemptFailed(): void {}
  attemptLost(): void {}
  attemptWon(): void {}
  shadow(): undefined {
    return undefined;
  }
  head(_status: number, fields: ObservedAnswerFields): void {
    fields.setPredictor(this.predictor);
  }
  body(): void {}
  requestDecoded(): void {}
  translated(): void {}
  answerEncoding(): void {}
  answerEncoded(): void {}
  end(): void {}
}

/** The route as OpenTelemetry's `http.route`: the prefix (or regex) the request matched. */
function routeOf(decision: Routed): string {
  const p = decision.group.path;
  return p.kind === 'prefix' ? p.prefix : p.source;
}

/** REST's carrier: the upstream request's fields (edge/upstream-fields.ts), edited as their list when a trace context goes in. */
const REST_PROTOCOL: TapProtocol<ObservedUpstreamFields> = {
  get: (h, name) => h.get(name),
  copy: (h) => h.copy(),
  grpc: false,
};
const FIELDS_WRITER: HeaderWriter<ObservedUpstreamFields> = {
  strip: (h) => RAW_HEADERS.strip(h.list()),
  set: (h, name, value) => RAW_HEADERS.set(h.list(), name, value),
};

/** What the access log reads of a REST request as it arrives. `traced`: the gateway's trace id is the one logged. */
function arrival(req: ObservedRequest, log: AccessLog, traced: boolean): Arrival {
  return new LogLine(
    performance.now(),
    Date.now(),
    clientAddressOf(req),
    req.field('x-forwarded-for'),
    req.method,
    req.field('host'),
    log.path(req.url),
    protocolOf(req),
    req.field('user-agent'),
    clientSubject(req.socket),
    traced ? undefined : incomingTraceId(req),
  );
}

/** Each client connection's `address:port`, made once per connection (the key: the request's `connectionKey`). */
const clientAddresses = new WeakMap<object, string | undefined>();
function clientAddressOf(req: ObservedRequest): string | undefined {
  const key = req.connectionKey;
  let a = clientAddresses.get(key);
  if (a === undefined) {
    a = peerAddress(req.socket?.remoteAddress, req.socket?.remotePort);
    if (a !== undefined) clientAddresses.set(key, a);
  }
  return a;
}

/** The HTTP server span's attributes (OpenTelemetry's HTTP conventions). */
function httpAttributes(req: ObservedRequest, route: string | undefined): Attributes {
  const url = req.url;
  const q = url.indexOf('?');
  const a: Attributes = { 'http.request.method': req.method, 'url.path': q < 0 ? url : url.slice(0, q), 'client.address': req.socket?.remoteAddress ?? '' };
  if (route === undefined) return a;
  a['url.scheme'] = (req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http';
  a['http.route'] = route;
  a['network.protocol.version'] = req.httpVersion;
  const host = hostOf(req.headers.host);
  if (host !== undefined) a['server.address'] = host;
  const ua = req.headers['user-agent'];
  if (ua !== undefined) a['user_agent.original'] = ua;
  return a;
}

function restSpans(req: ObservedRequest, decision: Routed): SpanNames {
  const route = routeOf(decision);
  const method = req.method;
  return { server: `${method} ${route}`, serverAttributes: httpAttributes(req, route), attempt: `${method} upstream`, shadow: `${method} shadow`, clientAttributes: { 'http.request.method': method } };
}

/** An answer being compressed: its coding, and the exchange's end (status -1: not yet) held until its compressed tail has gone. */
interface Compressing {
  readonly coding: string;
  endStatus: number;
  endSeconds: number | null;
}

/** A routed REST request's tap: the shared one, with the answer's head and body (predictor header, comparison). */
class RestTap extends RequestTap<ObservedUpstreamFields> implements ResponseTap {
  private bytesSent = 0;
  private readonly received: BodyBytes | undefined;
  /** Made only for an answer being compressed: its coding, and the exchange's end held until its compressed tail has gone. */
  private compressing: Compressing | undefined = undefined;

  constructor(
    private readonly req: ObservedRequest,
    private readonly res: ObservedResponse,
    decision: Routed,
    private readonly predictorHeader: boolean,
    readonly capture: PrimaryCapture | undefined,
    log: AccessLog | undefined,
    trace: CallTrace<ObservedUpstreamFields> | undefined,
    upstreamHeaders: ObservedUpstreamFields,
    upstream: string,
    recorder: RequestRecorder | undefined,
  ) {
    super(REST_PROTOCOL, upstreamHeaders, decision, upstream, log && arrival(req, log, trace !== undefined), log, trace, trace?.span !== undefined ? restSpans(req, decision) : undefined, recorder);
    if (log !== undefined && hasBody(req)) this.received = new BodyBytes(req);
    if (recorder !== undefined) this.requestBody = (chunk) => recorder.requestBody(chunk);
  }

  readonly requestBody: ((chunk: Buffer) => void) | undefined;

  head(status: number, fields: ObservedAnswerFields, raw: ResponseHead): void {
    if (this.predictorHeader) fields.setPredictor(this.decision.backend.origin.predictor);
    this.capture?.head(status, raw.headers);
    this.recorder?.responseType(fields.get('content-type'));
  }

  body(chunk: Buffer): void {
    this.bytesSent += chunk.length;
    this.capture?.data(chunk);
    this.recorder?.responseBody(chunk);
  }

  requestDecoded(coding: string, identity: number, encoded: number): void {
    this.coded('request', { encoding: coding, identityBytes: identity, encodedBytes: encoded });
    this.recorder?.coded('request', coding);
  }

  answerEncoding(coding: string | undefined): void {
    this.compressing = coding === undefined ? undefined : { coding, endStatus: -1, endSeconds: null };
    this.recorder?.coded('response', coding);
  }

  answerEncoded(identity: number, encoded: number): void {
    const c = this.compressing;
    if (c === undefined) return;
    this.compressing = undefined;
    this.coded('response', { encoding: c.coding, identityBytes: identity, encodedBytes: encoded });
    // The client's bytes are the compressed ones.
    this.bytesSent = encoded;
    if (c.endStatus >= 0) this.over(c.endStatus, c.endSeconds);
  }

  end(status: number, upstreamSeconds: number | null, complete: boolean): void {
    this.capture?.end(complete);
    const c = this.compressing;
    if (c !== undefined) {
      // Its line and events once the compressed tail has gone too (its size is the client's bytes).
      c.endStatus = status;
      c.endSeconds = upstreamSeconds;
      return;
    }
    this.over(status, upstreamSeconds);
  }

  private over(status: number, upstreamSeconds: number | null): void {
    const req = this.req;
    this.finish(
      status,
      undefined,
      this.received === undefined ? 0 : this.received.bytes,
      // A gateway-made answer (no upstream answered): its body, by its Content-Length.
      upstreamSeconds === null ? (req.method === 'HEAD' || !this.res.headersSent ? 0 : this.res.bodyBytes) : this.bytesSent,
      upstreamSeconds,
    );
  }
}

export interface RestObserveOptions {
  readonly predictorHeader: boolean;
  readonly accessLog: AccessLog | undefined;
  readonly comparer: ShadowComparer | undefined;
  /** Compare every mirror's answers (--shadow-compare); otherwise only mirrors of steered predictors (a rollout's mirror phase). */
  readonly compareAll?: boolean;
  readonly tracing?: Tracing | undefined;
  /** Payload and decision logging (--log-sinks): the routes with a `seldon.io/gateway-log` policy. */
  readonly payload?: PayloadLogger | undefined;
}

const steeredMirror = (m: { readonly backend: Backend }): boolean => m.backend.steered;

/** An upgrade's end, for its access log line: the status the client got, bytes from and to the client after the heads, the model's request id. */
export type UpgradeEnd = (status: number, received: number, sent: number, requestId: string | undefined) => void;

export class RestObserve {
  private readonly headerTaps = new WeakMap<Backend, HeaderTap>();

  constructor(readonly options: RestObserveOptions) {}

  /** Whether any option needs a `RestObserve` at all. */
  static needed(o: RestObserveOptions): boolean {
    return o.predictorHeader || o.accessLog !== undefined || o.comparer !== undefined || o.tracing !== undefined || o.payload !== undefined;
  }

  /**
   * The tap for one routed request (`upstreamHeaders`: what the upstream will get; `subject`: what
   * the pipeline decided, for payload logging), or undefined when this request needs none.
   */
  begin(req: ObservedRequest, res: ObservedResponse, decision: Routed, upstreamHeaders: ObservedUpstreamFields, upstream: string, subject?: LogSubject): ResponseTap | undefined {
    const { predictorHeader, accessLog, comparer, tracing } = this.options;
    const mirrors = decision.mirrors;
    const capture = comparer !== undefined && mirrors.length > 0 && (this.options.compareAll !== false || mirrors.some(steeredMirror)) ? comparer.capture(decision.backend) : undefined;
    const logged = accessLog !== undefined && accessLog.sampled();
    // A route without a logging policy pays this one property check.
    const recorder = decision.backend.log !== null && subject !== undefined ? this.options.payload?.begin('rest', decision, subject) : undefined;
    if (capture === undefined && !logged && tracing === undefined && recorder === undefined) {
      if (!predictorHeader) return undefined;
      let tap = this.headerTaps.get(decision.backend);
      if (!tap) this.headerTaps.set(decision.backend, (tap = new HeaderTap(decision.backend.origin.predictor)));
      return tap;
    }
    const trace = tracing?.begin(req.headers, upstreamHeaders, FIELDS_WRITER);
    return new RestTap(req, res, decision, predictorHeader, capture, logged ? accessLog : undefined, trace, upstreamHeaders, upstream, recorder);
  }

  /**
   * An upgrade request (rest/upgrade-exchange.ts), logged (and traced) once its connection is over:
   * the tunnel's end, or the answer that ended the upgrade. The returned end is told the status the
   * client got, the bytes each way after the heads and the request id the model got; undefined when
   * nothing observes it. `backend`: its route, when one serves it.
   */
  upgrade(req: ObservedRequest, backend: Backend | undefined): UpgradeEnd | undefined {
    const o = this.unforwarded(req, backend);
    if (o === undefined) return undefined;
    const { a, trace } = o;
    return (status, received, sent, requestId) =>
      answeredEnd(this.options.accessLog, a, trace, { responseCode: status, grpcStatus: undefined, bytesReceived: received, bytesSent: sent }, requestId ?? req.field('x-request-id'), backend);
  }

  /**
   * A request the gateway answers itself (no route, a refusal, a preflight): logged (and traced)
   * once its answer is sent. `backend`, when the route is known; `refused`, a refusal of a logged
   * predictor's request (its decision record).
   */
  answered(req: ObservedRequest, res: ObservedResponse, backend?: Backend, refused?: RefusedRequest): void {
    if (refused !== undefined) this.options.payload?.refused('rest', refused);
    const o = this.unforwarded(req, backend);
    if (o === undefined) return;
    const { a, trace } = o;
    const received = a !== undefined && hasBody(req) ? new BodyBytes(req) : undefined;
    res.once('close', () => {
      const sent = res.headersSent;
      answeredEnd(
        this.options.accessLog,
        a,
        trace,
        {
          responseCode: sent ? res.statusCode : 499,
          grpcStatus: undefined,
          bytesReceived: received === undefined ? 0 : received.bytes,
          bytesSent: req.method === 'HEAD' || !sent ? 0 : res.bodyBytes,
        },
        req.field('x-request-id'),
        backend,
      );
    });
  }

  /**
   * The start of a request's observation that is not forwarded as a request (`answered`, `upgrade`):
   * its access log line's arrival (`a`, undefined when not sampled) and its server span, named by
   * the method; undefined when nothing observes it.
   */
  private unforwarded(req: ObservedRequest, backend: Backend | undefined): { a: Arrival | undefined; trace: CallTrace<string[]> | undefined } | undefined {
    const { accessLog, tracing } = this.options;
    const logged = accessLog !== undefined && accessLog.sampled();
    if (!logged && tracing === undefined) return undefined;
    const a = logged ? arrival(req, accessLog!, tracing !== undefined) : undefined;
    const trace = tracing?.begin(req.headers, [], RAW_HEADERS);
    const span = trace?.span;
    if (span !== undefined) {
      span.updateName(req.method);
      span.setAttributes(httpAttributes(req, undefined));
      if (backend !== undefined) span.setAttributes(originAttributes(backend));
    }
    return { a, trace };
  }
}
