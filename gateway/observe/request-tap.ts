/**
 * The one access-log and tracing tap of a request, REST and gRPC alike: its attempts (each a
 * client span, its address and answer or failure), its shadows' spans, and its end (the server
 * span's end and the access-log line). The protocols (observe/observed-rest.ts, observed-grpc.ts)
 * only read what arrived (`Arrival`), name and describe the server span, and count body bytes;
 * the rest is here, once.
 */
import type { Attributes } from '@opentelemetry/api';
import { answeredInto, routedInto, type AccessEntry, type AccessLog } from './access-log.js';
import type { CodedBodies, CodedBody } from './access-line.js';
import { routedAttributes, shadowAttributes } from './span-attributes.js';
import type { CallTrace, ShadowSpan } from './tracing.js';
import type { Backend, Routed } from '../../routing/types.js';
import type { RequestRecorder } from './payload-tap.js';

/**
 * A logged request's access-log line in the making, one object from arrival to end: what arrived,
 * set as it arrives (before the gateway rewrites its headers); how it ended and where it went, set
 * when it ends (`ended`, access-log.ts `routedInto`). Then it is written as it is.
 */
export class LogLine implements AccessEntry {
  responseCode = 0;
  grpcStatus: number | undefined = undefined;
  bytesReceived: number | null = 0;
  bytesSent = 0;
  durationMs = 0;
  upstreamMs: number | null = null;
  upstreamHost: string | undefined = undefined;
  upstreamCluster: string | undefined = undefined;
  namespace: string | undefined = undefined;
  deployment: string | undefined = undefined;
  predictor: string | undefined = undefined;
  retries = 0;
  hedges = 0;
  shadows = 0;
  requestId: string | undefined = undefined;
  traceId: string | undefined = undefined;
  fallback: string | undefined = undefined;
  /** Made only for a request whose body the gateway decoded or whose answer it compressed. */
  coded: CodedBodies | undefined = undefined;
  /** Set only for a request translated between protocols: `<client>-><model>`. */
  translated: string | undefined = undefined;

  constructor(
    /** performance.now() at arrival: the duration counts from it. */
    readonly startedAt: number,
    readonly startTime: number,
    readonly clientAddress: string | undefined,
    readonly forwardedFor: string | undefined,
    readonly method: string,
    readonly authority: string | undefined,
    readonly path: string,
    readonly protocol: string,
    readonly userAgent: string | undefined,
    readonly peerSubject: string | undefined,
    /** The trace id the client's context carries (logged when the gateway does not trace the request itself). */
    readonly incomingTraceId: string | undefined,
  ) {}
}

/** What the access log reads of a request as it arrives: its line, made then. */
export type Arrival = LogLine;

/** How a request ended, as its access-log line and server span say it. */
export type Ending = Pick<AccessEntry, 'responseCode' | 'grpcStatus' | 'bytesReceived' | 'bytesSent'>;

/** What the tap needs of one protocol's header carrier: reading it, copying it for a traced shadow, and how statuses are judged. */
export interface TapProtocol<C> {
  /** Read a header of the carrier (the request id). */
  get(carrier: C, name: string): string | undefined;
  /** A copy of the carrier, for a traced shadow (its own trace context goes in). */
  copy(carrier: C): C;
  /** gRPC: shadows and the end are judged by gRPC status. */
  readonly grpc: boolean;
}

/** A header's value as one text: repeated fields joined with `, ` (as HTTP combines them). */
export const headerText = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v.join(', ') : v);

/** `address:port` as Envoy writes a peer (`[v6]:port`). */
export function peerAddress(address: string | undefined, port: number | undefined): string | undefined {
  if (address === undefined) return undefined;
  return `${address.includes(':') ? `[${address}]` : address}:${port ?? 0}`;
}

/** The host of a Host header or :authority, without its port. */
export function hostOf(authority: string | undefined): string | undefined {
  if (authority === undefined) return undefined;
  if (authority.startsWith('[')) return authority.slice(1, authority.indexOf(']'));
  const i = authority.indexOf(':');
  return i < 0 ? authority : authority.slice(0, i);
}

/** What a request's spans are called and the protocol's attributes on them (the `seldon.*` ones are the tap's). */
export interface SpanNames {
  readonly server: string;
  readonly serverAttributes: Attributes;
  readonly attempt: string;
  readonly shadow: string;
  /** On each attempt's and shadow's span. */
  readonly clientAttributes: Attributes;
}

/** A shadow copy being traced: the headers to send it with (the tap's copy, with its trace context) and its end. */
export interface TracedShadow<C> extends ShadowSpan {
  readonly carrier: C;
}

/**
 * What the forwarding codecs tell a request's tap of its attempts and shadows (`C`: their header
 * carrier). Attempts are numbered from 0 in the order sent; `n` names one when a hedge has several
 * in flight (absent: the one sent last).
 */
export interface AttemptTap<C> {
  /** An attempt is about to be sent with `carrier` (the upstream request's headers: its trace context goes in); `hedge`: beside one still in flight. */
  attempt(carrier: C, hedge?: boolean): void;
  /** The attempt goes to `host:port` (a pod endpoint or the Service). */
  attempted(host: string, port: number): void;
  /** The attempt's answer head arrived, with its HTTP status (whether it is then retried or passed on). */
  attemptStatus(status: number, n?: number): void;
  /** The attempt failed without an answer: connect, refused, reset, idle, per_try_timeout… */
  attemptFailed(error: string, n?: number): void;
  /** Hedged: attempt `n` was cut, another's answer won. */
  attemptLost(n: number): void;
  /** Hedged (hedges were sent): attempt `n`'s answer is the client's. */
  attemptWon(n: number): void;
  /** A shadow of `backend` is about to be sent with `carrier`; when traced, its copy to send instead. */
  shadow(backend: Backend, carrier: C): TracedShadow<C> | undefined;
}

/** The line of a request that ended: how it ended (where it went is set apart: access-log.ts `routedInto`, `answeredInto`). */
function ended(
  line: LogLine,
  trace: CallTrace<unknown> | undefined,
  responseCode: number,
  grpcStatus: number | undefined,
  bytesReceived: number | null,
  bytesSent: number,
  requestId: string | undefined,
): LogLine {
  line.responseCode = responseCode;
  line.grpcStatus = grpcStatus;
  line.bytesReceived = bytesReceived;
  line.bytesSent = bytesSent;
  line.durationMs = performance.now() - line.startedAt;
  line.requestId = requestId;
  line.traceId = trace !== undefined ? trace.traceId : line.incomingTraceId;
  return line;
}

/**
 * A request the gateway answered itself (no route, a refusal, a preflight), over: its span ends,
 * its line is written (`log`/`arrival` undefined: not logged). `requestId`: the client's;
 * `backend`, when the route is known.
 */
export function answeredEnd(
  log: AccessLog | undefined,
  arrival: Arrival | undefined,
  trace: CallTrace<unknown> | undefined,
  e: Ending,
  requestId: string | undefined,
  backend: Backend | undefined,
): void {
  trace?.end(e.responseCode, e.grpcStatus);
  if (log !== undefined && arrival !== undefined) log.write(answeredInto(ended(arrival, trace, e.responseCode, e.grpcStatus, e.bytesReceived, e.bytesSent, requestId), backend));
}

/** The tap of one routed request; the protocol's tap extends it with what only it sees. */
export class RequestTap<C> implements AttemptTap<C> {
  private attempts = 0;
  private hedges = 0;
  /**
   * The address of the attempt sent last, then of the one that won: as `host`, `port` (made a
   * string only when the line is written), or (hedged) as the string `addresses` holds.
   */
  private address: string | undefined;
  private host: string | undefined;
  private port = 0;
  /** Hedged: each attempt's address, by its number (made at the first hedge). */
  private addresses: (string | undefined)[] | undefined;
  /** The attempt about to be sent is a hedge. */
  private hedging = false;

  constructor(
    private readonly protocol: TapProtocol<C>,
    /** The upstream request's headers (the gateway's request id is in them by the end). */
    private readonly carrier: C,
    protected readonly decision: Routed,
    /** The upstream as the route names it (`host:port`). */
    private readonly upstream: string,
    /** What arrived, when this request is logged. */
    private readonly arrival: Arrival | undefined,
    private readonly log: AccessLog | undefined,
    protected readonly trace: CallTrace<C> | undefined,
    /** Read only when the request is traced. */
    private readonly names: SpanNames | undefined,
    /** When the request's payloads and decision are logged (gateway/payload-log/). */
    protected readonly recorder: RequestRecorder | undefined = undefined,
  ) {
    const span = trace?.span;
    if (span !== undefined && names !== undefined) {
      span.updateName(names.server);
      span.setAttributes(names.serverAttributes);
      span.setAttributes(routedAttributes(decision, upstream, undefined));
    }
  }

  attempt(carrier: C, hedge = false): void {
    this.attempts++;
    this.hedging = hedge;
    if (hedge) {
      this.hedges++;
      if (this.addresses === undefined) {
        this.addresses = new Array<string | undefined>(this.attempts - 1);
        this.addresses[this.attempts - 2] = this.upstreamAddress();
      }
    }
    const t = this.trace;
    const names = this.names;
    if (t === undefined || t.span === undefined || names === undefined) return;
    t.attempt(carrier, names.attempt, { ...names.clientAttributes, 'seldon.upstream': this.upstream }, hedge);
  }

  /** The address of the attempt sent last (or that won), `[v6]:port` as Envoy writes it. */
  private upstreamAddress(): string | undefined {
    return this.address ?? peerAddress(this.host, this.port);
  }

  attempted(host: string, port: number): void {
    this.recorder?.attempted(host, port, this.hedging);
    this.host = host;
    this.port = port;
    this.address = undefined;
    if (this.addresses !== undefined) this.addresses.push((this.address = peerAddress(host, port)));
    this.trace?.attemptAttributes({ 'server.address': host, 'server.port': port, 'network.peer.address': host });
  }

  attemptStatus(status: number, n?: number): void {
    this.recorder?.attemptStatus(status, n);
    this.trace?.attemptStatus(status, n);
  }

  attemptFailed(error: string, n?: number): void {
    this.recorder?.attemptFailed(error, n);
    this.trace?.attemptFailed(error, n);
  }

  attemptLost(n: number): void {
    this.recorder?.attemptLost(n);
    this.trace?.attemptLost(n);
  }

  attemptWon(n: number): void {
    this.recorder?.attemptWon(n);
    // The line's upstream_host is where the answer came from.
    if (this.addresses !== undefined) this.address = this.addresses[n];
  }

  shadow(backend: Backend, carrier: C): TracedShadow<C> | undefined {
    this.recorder?.shadow(backend.origin.predictor);
    const t = this.trace;
    const names = this.names;
    if (t === undefined || t.span === undefined || names === undefined) return undefined;
    const copy = this.protocol.copy(carrier);
    const span = t.shadow(copy, names.shadow, { ...names.clientAttributes, ...shadowAttributes(backend) }, this.protocol.grpc);
    return span === undefined ? undefined : { carrier: copy, end: (status, failed) => span.end(status, failed) };
  }

  /** The request is translated from the client's protocol to its model's (`label`: `seldon->v2`): on its line and its payload log's events. */
  translated(label: string): void {
    if (this.arrival !== undefined) this.arrival.translated = label;
    this.recorder?.translated(label);
  }

  /** A body the gateway decoded (`request`) or compressed (`response`): on the line, when the request is logged. */
  protected coded(direction: keyof CodedBodies, body: CodedBody): void {
    const line = this.arrival;
    if (line !== undefined) (line.coded ??= { request: undefined, response: undefined })[direction] = body;
  }

  /**
   * The request is over (the status sent, 499 when the client went first; gRPC's status; body bytes
   * in, null when a Content-Length body did not arrive whole, and out): its span ends and its line is
   * written. `upstreamSeconds`: null when no upstream answered.
   */
  protected finish(responseCode: number, grpcStatus: number | undefined, bytesReceived: number | null, bytesSent: number, upstreamSeconds: number | null): void {
    // The request id the upstream got (the client's, or the one the gateway made).
    const requestId = this.protocol.get(this.carrier, 'x-request-id');
    this.recorder?.end(responseCode, grpcStatus, upstreamSeconds, requestId);
    const t = this.trace;
    if (t !== undefined) {
      if (t.span !== undefined && requestId !== undefined) t.span.setAttribute('seldon.request_id', requestId);
      t.end(responseCode, grpcStatus);
    }
    const log = this.log;
    const line = this.arrival;
    if (log !== undefined && line !== undefined) {
      ended(line, t, responseCode, grpcStatus, bytesReceived, bytesSent, requestId);
      log.write(routedInto(line, this.decision, this.upstream, this.upstreamAddress(), this.attempts, upstreamSeconds, this.hedges));
    }
  }
}
