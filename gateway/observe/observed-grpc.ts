/**
 * Optional per-call observation on the gRPC hot path: the access log (`--access-log`) and
 * tracing (`--otlp-endpoint`). The proxy's calls hold a `GrpcObserve` only when one of them is on
 * (the predictor header is a plain flag of the call context); `begin` returns a tap only for a
 * call that is logged or traced. The call tells its tap each attempt (before it is sent, so its
 * trace context goes in the upstream headers; then the address it went to; its answer or
 * failure), the bytes each way, each shadow, and the end. `answered` covers calls the gateway
 * answers itself (no route, a refusal).
 */
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { clientSubject } from '../edge/tls.js';
import { answeredFields, routedFields, type AccessEntry, type AccessLog } from './access-log.js';
import { headerText, peerAddress } from './observed-rest.js';
import { HEADER_OBJECT, incomingTraceId, originAttributes, routedAttributes, shadowAttributes, type CallTrace, type ShadowSpan, type Tracing } from './tracing.js';
import type { Backend, Routed } from '../../routing/types.js';

/** What a gRPC call tells its tap. */
export interface CallTap {
  /** An attempt is about to be sent with `headers` (the upstream request's; trace context goes in). */
  attempt(headers: IncomingHttpHeaders): void;
  /** The attempt's stream is open, on `host:port`. */
  attempted(host: string, port: number): void;
  /** The attempt's response headers (:status) arrived. */
  attemptStatus(httpStatus: number): void;
  /** The attempt failed without an answer: connect, refused, reset, per_try_timeout. */
  attemptFailed(error: string): void;
  /** Request bytes from the client, response bytes to it. */
  received(bytes: number): void;
  sent(bytes: number): void;
  /** A shadow copy of `backend` is about to be sent with `headers` (its own copy): trace context goes in. */
  shadow(backend: Backend, headers: Record<string, unknown>): ShadowSpan | undefined;
  /** The call is over: the gRPC status the client got, the :status sent (0: none), time to the upstream's headers. */
  end(grpcStatus: number, httpStatus: number, upstreamSeconds: number | null): void;
}

/** `/pkg.Service/Method` → `pkg.Service/Method` (OpenTelemetry's RPC span name), service and method. */
function rpcOf(path: string): { name: string; service: string; method: string } {
  const name = path.startsWith('/') ? path.slice(1) : path;
  const i = name.lastIndexOf('/');
  return { name, service: i < 0 ? name : name.slice(0, i), method: i < 0 ? '' : name.slice(i + 1) };
}

function socketOf(stream: ServerHttp2Stream): Socket | undefined {
  return stream.session?.socket as Socket | undefined;
}

/** What the access log reads of a call's request, taken when it arrives (before the call rewrites its headers). */
interface Arrival {
  readonly startedAt: number;
  readonly startTime: number;
  readonly clientAddress: string | undefined;
  readonly forwardedFor: string | undefined;
  readonly authority: string | undefined;
  readonly path: string;
  readonly userAgent: string | undefined;
  readonly peerSubject: string | undefined;
  readonly incomingTraceId: string | undefined;
}

/** `traced`: the gateway traces this call (its trace id is the one logged, not the client's). */
function arrival(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, log: AccessLog, traced: boolean): Arrival {
  const socket = socketOf(stream);
  return {
    startedAt: performance.now(),
    startTime: Date.now(),
    clientAddress: peerAddress(socket?.remoteAddress, socket?.remotePort),
    forwardedFor: headerText(headers['x-forwarded-for']),
    authority: headers[':authority'] ?? headerText(headers.host),
    path: log.path(headers[':path'] ?? ''),
    userAgent: headerText(headers['user-agent']),
    peerSubject: clientSubject(socket),
    incomingTraceId: traced ? undefined : incomingTraceId(headers),
  };
}

/** The access-log fields a call's arrival decides, with its duration so far; the trace id is the gateway's when it traces the call. */
function arrived(
  a: Arrival,
  trace: { readonly traceId: string } | undefined,
): Pick<AccessEntry, 'startTime' | 'clientAddress' | 'forwardedFor' | 'method' | 'authority' | 'path' | 'protocol' | 'durationMs' | 'traceId' | 'userAgent' | 'peerSubject'> {
  return {
    startTime: a.startTime,
    clientAddress: a.clientAddress,
    forwardedFor: a.forwardedFor,
    method: 'POST',
    authority: a.authority,
    path: a.path,
    protocol: 'HTTP/2',
    durationMs: performance.now() - a.startedAt,
    traceId: trace !== undefined ? trace.traceId : a.incomingTraceId,
    userAgent: a.userAgent,
    peerSubject: a.peerSubject,
  };
}

class GrpcCallTap implements CallTap {
  private attempts = 0;
  private address: string | undefined;
  private bytesIn = 0;
  private bytesOut = 0;
  private readonly arrived: Arrival | undefined;
  private readonly rpc: string;

  constructor(
    private readonly stream: ServerHttp2Stream,
    /** The call's headers: the upstream's too (the call rewrites them in place). */
    private readonly headers: IncomingHttpHeaders,
    private readonly decision: Routed,
    private readonly upstream: string,
    private readonly log: AccessLog | undefined,
    private readonly trace: CallTrace<Record<string, unknown>> | undefined,
  ) {
    if (log !== undefined) this.arrived = arrival(stream, headers, log, trace !== undefined);
    const rpc = rpcOf(headers[':path'] ?? '');
    this.rpc = rpc.name;
    const span = trace?.span;
    if (span !== undefined) {
      const socket = socketOf(stream);
      span.updateName(rpc.name);
      span.setAttributes({
        'rpc.system': 'grpc',
        'rpc.service': rpc.service,
        'rpc.method': rpc.method,
        'network.protocol.name': 'http',
        'network.protocol.version': '2',
        'client.address': socket?.remoteAddress ?? '',
        ...routedAttributes(decision, upstream, undefined),
      });
      const authority = headers[':authority'];
      if (authority !== undefined) span.setAttribute('server.address', authority.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''));
      const ua = headerText(headers['user-agent']);
      if (ua !== undefined) span.setAttribute('user_agent.original', ua);
    }
  }

  attempt(headers: IncomingHttpHeaders): void {
    this.attempts++;
    const t = this.trace;
    if (t === undefined || t.span === undefined) return;
    // The upstream's headers: the request id the gateway added, when the client sent none (as REST's span has it).
    const id = this.attempts === 1 ? headerText(headers['x-request-id'] as string | string[] | undefined) : undefined;
    if (id !== undefined) t.span.setAttribute('seldon.request_id', id);
    t.attempt(headers, this.rpc, { 'rpc.system': 'grpc', 'seldon.upstream': this.upstream });
  }

  attempted(host: string, port: number): void {
    this.address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.trace?.attemptAttributes({ 'server.address': host, 'server.port': port, 'network.peer.address': host });
  }

  attemptStatus(httpStatus: number): void {
    this.trace?.attemptStatus(httpStatus);
  }

  attemptFailed(error: string): void {
    this.trace?.attemptFailed(error);
  }

  received(bytes: number): void {
    this.bytesIn += bytes;
  }

  sent(bytes: number): void {
    this.bytesOut += bytes;
  }

  shadow(backend: Backend, headers: Record<string, unknown>): ShadowSpan | undefined {
    const t = this.trace;
    if (t === undefined || t.span === undefined) return undefined;
    return t.shadow(headers, `${this.rpc} shadow`, { 'rpc.system': 'grpc', ...shadowAttributes(backend) }, true);
  }

  end(grpcStatus: number, httpStatus: number, upstreamSeconds: number | null): void {
    const responseCode = httpStatus > 0 ? httpStatus : this.stream.headersSent ? 200 : 0;
    const t = this.trace;
    if (t !== undefined) t.end(responseCode, grpcStatus);
    const log = this.log;
    const a = this.arrived;
    if (log === undefined || a === undefined) return;
    log.write({
      ...arrived(a, t),
      responseCode,
      grpcStatus,
      bytesReceived: this.bytesIn,
      bytesSent: this.bytesOut,
      ...routedFields(this.decision, this.upstream, this.address, this.attempts, upstreamSeconds),
      requestId: headerText(this.headers['x-request-id']),
    });
  }
}

export interface GrpcObserveOptions {
  readonly accessLog: AccessLog | undefined;
  readonly tracing: Tracing | undefined;
}

export class GrpcObserve {
  constructor(readonly options: GrpcObserveOptions) {}

  /** Whether any option needs a `GrpcObserve` at all. */
  static needed(o: GrpcObserveOptions): boolean {
    return o.accessLog !== undefined || o.tracing !== undefined;
  }

  /** The tap of one routed call, taken as it arrives (`headers`: the client's, which become the upstream's); undefined when it needs none. */
  begin(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, decision: Routed, upstream: string): CallTap | undefined {
    const { accessLog, tracing } = this.options;
    const logged = accessLog !== undefined && accessLog.sampled();
    if (!logged && tracing === undefined) return undefined;
    const trace = tracing?.begin(headers, headers as Record<string, unknown>, HEADER_OBJECT);
    return new GrpcCallTap(stream, headers, decision, upstream, logged ? accessLog : undefined, trace);
  }

  /** A call the gateway answers itself (no route, a refusal) with `grpcStatus`, now; `backend` when the route is known. */
  answered(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, grpcStatus: number, backend?: Backend): void {
    const { accessLog, tracing } = this.options;
    const logged = accessLog !== undefined && accessLog.sampled();
    if (!logged && tracing === undefined) return;
    const a = logged ? arrival(stream, headers, accessLog!, tracing !== undefined) : undefined;
    const trace = tracing?.begin(headers, {}, HEADER_OBJECT);
    const span = trace?.span;
    if (span !== undefined) {
      const rpc = rpcOf(headers[':path'] ?? '');
      span.updateName(rpc.name);
      span.setAttributes({ 'rpc.system': 'grpc', 'rpc.service': rpc.service, 'rpc.method': rpc.method });
      if (backend !== undefined) span.setAttributes(originAttributes(backend));
    }
    trace?.end(200, grpcStatus);
    if (a === undefined) return;
    accessLog!.write({
      ...arrived(a, trace),
      responseCode: stream.headersSent ? 200 : 0,
      grpcStatus,
      bytesReceived: 0,
      bytesSent: 0,
      ...answeredFields(backend),
      requestId: headerText(headers['x-request-id']),
    });
  }
}
