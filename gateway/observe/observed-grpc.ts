/**
 * Optional per-call observation on the gRPC hot path: the access log (`--access-log`) and
 * tracing (`--otlp-endpoint`). The proxy's calls hold a `GrpcObserve` only when one of them is on
 * (the predictor header is a plain flag of the call context); `begin` returns a tap only for a
 * call that is logged or traced. The call tells its tap each attempt (before it is sent, so its
 * trace context goes in the upstream headers; then the address it went to; its answer or
 * failure), the bytes each way, each shadow, and the end. `answered` covers calls the gateway
 * answers itself (no route, a refusal). The access log and tracing are the shared tap's
 * (observe/request-tap.ts); this file reads a call for them.
 */
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Attributes } from '@opentelemetry/api';
import { clientSubject } from './peer-subject.js';
import type { AccessLog } from './access-log.js';
import { LogLine, RequestTap, answeredEnd, headerText, hostOf, peerAddress, type Arrival, type AttemptTap, type SpanNames, type TapProtocol } from './request-tap.js';
import { originAttributes } from './span-attributes.js';
import { HEADER_OBJECT, headerObjectFields, incomingTraceId } from './trace-context.js';
import type { CallTrace, Tracing } from './tracing.js';
import type { Backend, Routed } from '../../routing/types.js';
import type { LogSubject, PayloadLogger, RefusedRequest, RequestRecorder } from './payload-tap.js';

/** What a gRPC call tells its tap: its attempts and shadows (observe/request-tap.ts), the bytes each way, its end. */
export interface CallTap extends AttemptTap<Record<string, unknown>> {
  /** Request bytes from the client, response bytes to it (as the client received them). */
  received(chunk: Buffer): void;
  sent(chunk: Buffer): void;
  /** The call is translated from the client's protocol to its model's (docs/protocol-translation.md). */
  translated(label: string): void;
  /** The call is over: the gRPC status the client got, the :status sent (0: none), time to the upstream's headers. */
  end(grpcStatus: number, httpStatus: number, upstreamSeconds: number | null): void;
}

/** gRPC's carrier: an HTTP/2 header object. */
const GRPC_PROTOCOL: TapProtocol<Record<string, unknown>> = {
  get: (h, name) => headerText(h[name] as string | string[] | undefined),
  copy: (h) => ({ ...h }),
  grpc: true,
};

/** `/pkg.Service/Method` → `pkg.Service/Method` (OpenTelemetry's RPC span name), service and method. */
function rpcOf(path: string): { name: string; service: string; method: string } {
  const name = path.startsWith('/') ? path.slice(1) : path;
  const i = name.lastIndexOf('/');
  return { name, service: i < 0 ? name : name.slice(0, i), method: i < 0 ? '' : name.slice(i + 1) };
}

function socketOf(stream: ServerHttp2Stream): Socket | undefined {
  return stream.session?.socket as Socket | undefined;
}

/** `traced`: the gateway traces this call (its trace id is the one logged, not the client's). */
function arrival(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, log: AccessLog, traced: boolean): Arrival {
  const socket = socketOf(stream);
  return new LogLine(
    performance.now(),
    Date.now(),
    peerAddress(socket?.remoteAddress, socket?.remotePort),
    headerText(headers['x-forwarded-for']),
    'POST',
    headers[':authority'] ?? headerText(headers.host),
    log.path(headers[':path'] ?? ''),
    'HTTP/2',
    headerText(headers['user-agent']),
    clientSubject(socket),
    traced ? undefined : incomingTraceId(headerObjectFields(headers)),
  );
}

/** The RPC server span's attributes (OpenTelemetry's RPC conventions); `routed`: with the connection's. */
function rpcAttributes(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rpc: ReturnType<typeof rpcOf>, routed: boolean): Attributes {
  const a: Attributes = { 'rpc.system': 'grpc', 'rpc.service': rpc.service, 'rpc.method': rpc.method };
  if (!routed) return a;
  a['network.protocol.name'] = 'http';
  a['network.protocol.version'] = '2';
  a['client.address'] = socketOf(stream)?.remoteAddress ?? '';
  const host = hostOf(headers[':authority']);
  if (host !== undefined) a['server.address'] = host;
  const ua = headerText(headers['user-agent']);
  if (ua !== undefined) a['user_agent.original'] = ua;
  return a;
}

function grpcSpans(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): SpanNames {
  const rpc = rpcOf(headers[':path'] ?? '');
  return { server: rpc.name, serverAttributes: rpcAttributes(stream, headers, rpc, true), attempt: rpc.name, shadow: `${rpc.name} shadow`, clientAttributes: { 'rpc.system': 'grpc' } };
}

/** A routed call's tap: the shared one, with the bytes each way. */
class GrpcCallTap extends RequestTap<Record<string, unknown>> implements CallTap {
  private bytesIn = 0;
  private bytesOut = 0;

  constructor(
    private readonly stream: ServerHttp2Stream,
    /** The call's headers: the upstream's too (the call rewrites them in place). */
    headers: IncomingHttpHeaders,
    decision: Routed,
    upstream: string,
    log: AccessLog | undefined,
    trace: CallTrace<Record<string, unknown>> | undefined,
    recorder: RequestRecorder | undefined,
  ) {
    super(
      GRPC_PROTOCOL,
      headers,
      decision,
      upstream,
      log && arrival(stream, headers, log, trace !== undefined),
      log,
      trace,
      trace?.span !== undefined ? grpcSpans(stream, headers) : undefined,
      recorder,
    );
  }

  received(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    this.recorder?.requestBody(chunk);
  }

  sent(chunk: Buffer): void {
    this.bytesOut += chunk.length;
    this.recorder?.responseBody(chunk);
  }

  end(grpcStatus: number, httpStatus: number, upstreamSeconds: number | null): void {
    const responseCode = httpStatus > 0 ? httpStatus : this.stream.headersSent ? 200 : 0;
    this.finish(responseCode, grpcStatus, this.bytesIn, this.bytesOut, upstreamSeconds);
  }
}

export interface GrpcObserveOptions {
  readonly accessLog: AccessLog | undefined;
  readonly tracing: Tracing | undefined;
  /** Payload and decision logging (--log-sinks): the routes with a `seldon.io/gateway-log` policy. */
  readonly payload?: PayloadLogger | undefined;
}

export class GrpcObserve {
  constructor(readonly options: GrpcObserveOptions) {}

  /** Whether any option needs a `GrpcObserve` at all. */
  static needed(o: GrpcObserveOptions): boolean {
    return o.accessLog !== undefined || o.tracing !== undefined || o.payload !== undefined;
  }

  /**
   * The tap of one routed call, taken as it arrives (`headers`: the client's, which become the
   * upstream's; `subject`: what the pipeline decided, for payload logging); undefined when it needs none.
   */
  begin(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, decision: Routed, upstream: string, subject?: LogSubject): CallTap | undefined {
    const { accessLog, tracing } = this.options;
    const logged = accessLog !== undefined && accessLog.sampled();
    // A route without a logging policy pays this one property check.
    const recorder = decision.backend.log !== null && subject !== undefined ? this.options.payload?.begin('grpc', decision, subject) : undefined;
    if (!logged && tracing === undefined && recorder === undefined) return undefined;
    const trace = tracing?.begin(headers, headers as Record<string, unknown>, HEADER_OBJECT);
    return new GrpcCallTap(stream, headers, decision, upstream, logged ? accessLog : undefined, trace, recorder);
  }

  /**
   * A call the gateway answers itself (no route, a refusal) with `grpcStatus`, now; `backend` when
   * the route is known; `refused`, a refusal of a logged predictor's call (its decision record).
   */
  answered(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, grpcStatus: number, backend?: Backend, refused?: RefusedRequest): void {
    const { accessLog, tracing } = this.options;
    if (refused !== undefined) this.options.payload?.refused('grpc', refused);
    const logged = accessLog !== undefined && accessLog.sampled();
    if (!logged && tracing === undefined) return;
    const a = logged ? arrival(stream, headers, accessLog!, tracing !== undefined) : undefined;
    const trace = tracing?.begin(headers, {}, HEADER_OBJECT);
    const span = trace?.span;
    if (span !== undefined) {
      const rpc = rpcOf(headers[':path'] ?? '');
      span.updateName(rpc.name);
      span.setAttributes(rpcAttributes(stream, headers, rpc, false));
      if (backend !== undefined) span.setAttributes(originAttributes(backend));
    }
    answeredEnd(accessLog, a, trace, { responseCode: stream.headersSent ? 200 : 0, grpcStatus, bytesReceived: 0, bytesSent: 0 }, headerText(headers['x-request-id']), backend);
  }
}
