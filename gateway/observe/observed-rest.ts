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
 * a refusal), so every REST request gets its line.
 */
import type { Attributes } from '@opentelemetry/api';
import { announcesBody, isWhole, type RestRequest, type RestResponse } from '../edge/exchange.js';
import { clientSubject } from '../edge/tls.js';
import { answeredFields, routedFields, type AccessLog } from './access-log.js';
import type { PrimaryCapture, ShadowComparer } from './shadow-compare.js';
import { RAW_HEADERS, incomingTraceId, originAttributes, routedAttributes, shadowAttributes, type CallTrace, type Tracing } from './tracing.js';
import type { Backend, Routed } from '../../routing/types.js';

/** The answer header naming the predictor that served a request. */
export const PREDICTOR_HEADER = 'x-seldon-predictor';

/** A shadow copy being traced: the headers to send it with (its own copy) and its end. */
export interface ShadowStart {
  readonly headers: string[];
  end(status: number, failed: boolean): void;
}

/** What an exchange tells its tap. */
export interface ResponseTap {
  /** The primary's answer, captured for comparison with this request's mirrors. */
  readonly capture: PrimaryCapture | undefined;
  /** An attempt is about to be dispatched to `address` (`host:port`) with `headers` (the upstream request's; trace context goes in). */
  attempt(address: string, headers: string[]): void;
  /** The attempt's answer head arrived (whether it is then retried or passed on). */
  attemptStatus(status: number): void;
  /** The attempt failed without an answer: connect, reset, idle, per_try_timeout… */
  attemptFailed(error: string): void;
  /** A shadow of `backend` is about to be sent with `headers`; when traced, what to send instead. */
  shadow(backend: Backend, headers: string[]): ShadowStart | undefined;
  /** The upstream answer's head is about to be sent; `headers` (client-bound) may be added to. */
  head(status: number, headers: string[], raw: readonly string[]): void;
  /** A chunk of the answer sent to the client. */
  body(chunk: Buffer): void;
  /** The exchange ended: the status counted in metrics; `complete`, a whole upstream answer was sent. */
  end(status: number, upstreamSeconds: number | null, complete: boolean): void;
}

/** Replace any `x-seldon-predictor` the upstream sent with the gateway's own. */
export function setPredictorHeader(headers: string[], predictor: string): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if (headers[i]!.length === PREDICTOR_HEADER.length && headers[i]!.toLowerCase() === PREDICTOR_HEADER) headers.splice(i, 2);
  }
  headers.push(PREDICTOR_HEADER, predictor);
}

function requestId(headers: readonly string[]): string | undefined {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if (headers[i]!.length === 12 && headers[i]!.toLowerCase() === 'x-request-id') return headers[i + 1];
  }
  return undefined;
}

/** A header's value as one text: repeated fields joined with `, ` (as HTTP combines them). */
export const headerText = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v.join(', ') : v);

/** `address:port` as Envoy writes a peer (`[v6]:port`). */
export function peerAddress(address: string | undefined, port: number | undefined): string | undefined {
  if (address === undefined) return undefined;
  return `${address.includes(':') ? `[${address}]` : address}:${port ?? 0}`;
}

/** `host:port` → host and port (for span attributes). */
export function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

/** The host of a Host header or :authority, without its port. */
function hostOf(authority: string | undefined): string | undefined {
  if (authority === undefined) return undefined;
  if (authority.startsWith('[')) return authority.slice(1, authority.indexOf(']'));
  const i = authority.indexOf(':');
  return i < 0 ? authority : authority.slice(0, i);
}

/**
 * How many body bytes a request brought: its Content-Length once it arrived whole (null when it
 * did not: the client went away, or the answer came first); a body of unknown length (chunked,
 * or HTTP/2 without Content-Length) is counted as it is handed over (whoever reads it, whenever).
 */
class BodyBytes {
  private counted = 0;
  private readonly chunked: boolean;

  constructor(private readonly req: RestRequest) {
    this.chunked = req.headers['content-length'] === undefined;
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
    return this.req.complete ? Number(this.req.headers['content-length'] ?? 0) : null;
  }
}

/** HTTP/1.1, HTTP/1.0 or HTTP/2, as Envoy's %PROTOCOL% says. */
const protocolOf = (req: RestRequest): string => (req.httpVersionMajor === 2 ? 'HTTP/2' : `HTTP/${req.httpVersion}`);

/** A request that may carry a body (HTTP/2 says so only by sending DATA: assume it may). */
const hasBody = (req: RestRequest): boolean => announcesBody(req) || req.httpVersionMajor === 2;

/** The header alone: no per-request state. */
class HeaderTap implements ResponseTap {
  readonly capture = undefined;
  constructor(private readonly predictor: string) {}
  attempt(): void {}
  attemptStatus(): void {}
  attemptFailed(): void {}
  shadow(): undefined {
    return undefined;
  }
  head(_status: number, headers: string[]): void {
    setPredictorHeader(headers, this.predictor);
  }
  body(): void {}
  end(): void {}
}

/** The route as OpenTelemetry's `http.route`: the prefix (or regex) the request matched. */
function routeOf(decision: Routed): string {
  const p = decision.group.path;
  return p.kind === 'prefix' ? p.prefix : p.source;
}

class RequestTap implements ResponseTap {
  private readonly startedAt = performance.now();
  private readonly startTime = Date.now();
  private attempts = 0;
  private address: string | undefined;
  private bytesSent = 0;
  private readonly received: BodyBytes | undefined;

  constructor(
    private readonly req: RestRequest,
    private readonly res: RestResponse,
    private readonly decision: Routed,
    private readonly predictorHeader: boolean,
    readonly capture: PrimaryCapture | undefined,
    private readonly log: AccessLog | undefined,
    private readonly trace: CallTrace<string[]> | undefined,
    private readonly upstreamHeaders: readonly string[],
    private readonly upstream: string,
  ) {
    if (log !== undefined && hasBody(req)) this.received = new BodyBytes(req);
    const span = trace?.span;
    if (span !== undefined) {
      const url = req.url;
      const q = url.indexOf('?');
      const route = routeOf(decision);
      span.updateName(`${req.method} ${route}`);
      span.setAttributes({
        'http.request.method': req.method,
        'url.path': q < 0 ? url : url.slice(0, q),
        'url.scheme': (req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http',
        'http.route': route,
        'network.protocol.version': req.httpVersion,
        'client.address': req.socket.remoteAddress ?? '',
        ...routedAttributes(decision, upstream, requestId(upstreamHeaders)),
      });
      const host = hostOf(req.headers.host);
      if (host !== undefined) span.setAttribute('server.address', host);
      const ua = req.headers['user-agent'];
      if (ua !== undefined) span.setAttribute('user_agent.original', ua);
    }
  }

  attempt(address: string, headers: string[]): void {
    this.attempts++;
    this.address = address;
    const t = this.trace;
    if (t === undefined || t.span === undefined) return;
    const { host, port } = hostPort(address);
    const attributes: Attributes = { 'http.request.method': this.req.method, 'server.address': host, 'server.port': port, 'network.peer.address': host, 'seldon.upstream': this.upstream };
    t.attempt(headers, `${this.req.method} upstream`, attributes);
  }

  attemptStatus(status: number): void {
    this.trace?.attemptStatus(status);
  }

  attemptFailed(error: string): void {
    this.trace?.attemptFailed(error);
  }

  shadow(backend: Backend, headers: string[]): ShadowStart | undefined {
    const t = this.trace;
    if (t === undefined || t.span === undefined) return undefined;
    const copy = headers.slice();
    const span = t.shadow(copy, `${this.req.method} shadow`, { 'http.request.method': this.req.method, ...shadowAttributes(backend) }, false);
    return span === undefined ? undefined : { headers: copy, end: (status, failed) => span.end(status, failed) };
  }

  head(status: number, headers: string[], raw: readonly string[]): void {
    if (this.predictorHeader) setPredictorHeader(headers, this.decision.backend.origin.predictor);
    this.capture?.head(status, raw);
  }

  body(chunk: Buffer): void {
    this.bytesSent += chunk.length;
    this.capture?.data(chunk);
  }

  end(status: number, upstreamSeconds: number | null, complete: boolean): void {
    this.capture?.end(complete);
    const t = this.trace;
    if (t !== undefined) t.end(status, undefined);
    const log = this.log;
    if (log === undefined) return;
    const req = this.req;
    log.write({
      startTime: this.startTime,
      clientAddress: peerAddress(req.socket.remoteAddress, req.socket.remotePort),
      forwardedFor: headerText(req.headers['x-forwarded-for']),
      method: req.method,
      authority: req.headers.host,
      path: log.path(req.url),
      protocol: protocolOf(req),
      responseCode: status,
      grpcStatus: undefined,
      bytesReceived: this.received === undefined ? 0 : this.received.bytes,
      // A gateway-made answer (no upstream answered): its body, by its Content-Length.
      bytesSent: upstreamSeconds === null ? (req.method === 'HEAD' || !this.res.headersSent ? 0 : this.res.bodyBytes) : this.bytesSent,
      durationMs: performance.now() - this.startedAt,
      ...routedFields(this.decision, this.upstream, this.address, this.attempts, upstreamSeconds),
      requestId: requestId(this.upstreamHeaders),
      traceId: t !== undefined ? t.traceId : incomingTraceId(req.headers),
      userAgent: req.headers['user-agent'],
      peerSubject: clientSubject(req.socket),
    });
  }
}

export interface RestObserveOptions {
  readonly predictorHeader: boolean;
  readonly accessLog: AccessLog | undefined;
  readonly comparer: ShadowComparer | undefined;
  /** Compare every mirror's answers (--shadow-compare); otherwise only mirrors of steered predictors (a rollout's mirror phase). */
  readonly compareAll?: boolean;
  readonly tracing?: Tracing | undefined;
}

const steeredMirror = (m: { readonly backend: Backend }): boolean => m.backend.steered;

export class RestObserve {
  private readonly headerTaps = new WeakMap<Backend, HeaderTap>();

  constructor(readonly options: RestObserveOptions) {}

  /** Whether any option needs a `RestObserve` at all. */
  static needed(o: RestObserveOptions): boolean {
    return o.predictorHeader || o.accessLog !== undefined || o.comparer !== undefined || o.tracing !== undefined;
  }

  /** The tap for one routed request (`upstreamHeaders`: what the upstream will get), or undefined when this request needs none. */
  begin(req: RestRequest, res: RestResponse, decision: Routed, upstreamHeaders: string[], upstream: string): ResponseTap | undefined {
    const { predictorHeader, accessLog, comparer, tracing } = this.options;
    const mirrors = decision.mirrors;
    const capture = comparer !== undefined && mirrors.length > 0 && (this.options.compareAll !== false || mirrors.some(steeredMirror)) ? comparer.capture(decision.backend) : undefined;
    const logged = accessLog !== undefined && accessLog.sampled();
    if (capture === undefined && !logged && tracing === undefined) {
      if (!predictorHeader) return undefined;
      let tap = this.headerTaps.get(decision.backend);
      if (!tap) this.headerTaps.set(decision.backend, (tap = new HeaderTap(decision.backend.origin.predictor)));
      return tap;
    }
    const trace = tracing?.begin(req.headers, upstreamHeaders, RAW_HEADERS);
    return new RequestTap(req, res, decision, predictorHeader, capture, logged ? accessLog : undefined, trace, upstreamHeaders, upstream);
  }

  /**
   * A request the gateway answers itself (no route, a refusal, a preflight): logged (and traced)
   * once its answer is sent. `backend`, when the route is known.
   */
  answered(req: RestRequest, res: RestResponse, backend?: Backend): void {
    const { accessLog, tracing } = this.options;
    const logged = accessLog !== undefined && accessLog.sampled();
    if (!logged && tracing === undefined) return;
    const startedAt = performance.now();
    const startTime = Date.now();
    const trace = tracing?.begin(req.headers, [], RAW_HEADERS);
    const span = trace?.span;
    const url = req.url;
    if (span !== undefined) {
      const q = url.indexOf('?');
      span.updateName(req.method);
      span.setAttributes({ 'http.request.method': req.method, 'url.path': q < 0 ? url : url.slice(0, q), 'client.address': req.socket.remoteAddress ?? '' });
      if (backend !== undefined) span.setAttributes(originAttributes(backend));
    }
    const received = logged && hasBody(req) ? new BodyBytes(req) : undefined;
    res.once('close', () => {
      const status = res.headersSent ? res.statusCode : 499;
      trace?.end(status, undefined);
      if (!logged) return;
      accessLog!.write({
        startTime,
        clientAddress: peerAddress(req.socket?.remoteAddress, req.socket?.remotePort),
        forwardedFor: headerText(req.headers['x-forwarded-for']),
        method: req.method,
        authority: req.headers.host,
        path: accessLog!.path(url),
        protocol: protocolOf(req),
        responseCode: status,
        grpcStatus: undefined,
        bytesReceived: received === undefined ? 0 : received.bytes,
        bytesSent: req.method === 'HEAD' || !res.headersSent ? 0 : res.bodyBytes,
        durationMs: performance.now() - startedAt,
        ...answeredFields(backend),
        requestId: headerText(req.headers['x-request-id']),
        traceId: trace !== undefined ? trace.traceId : incomingTraceId(req.headers),
        userAgent: req.headers['user-agent'],
        peerSubject: clientSubject(req.socket),
      });
    });
  }
}
