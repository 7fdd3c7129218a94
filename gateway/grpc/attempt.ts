/**
 * One attempt of a gRPC call (grpc/call.ts): a stream on a pooled upstream session
 * (upstream/grpc-sessions.ts), its per-try timer, and its listeners, which report to the call with the
 * attempt itself. Once the call is done with it (`drop`: failed, lost to a hedge, or cut; `detach`),
 * its listeners are off: the call only hears from the attempts in flight, and a closed stream does
 * not keep it alive.
 */
import http2, { type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { AttemptBase } from '../forward/attempt-base.js';
import type { Clock } from '../upstream/clock.js';
import type { AttemptFailure } from '../forward/retry-rule.js';
import type { Backend } from '../../routing/types.js';
import type { PooledSession } from '../upstream/grpc-sessions.js';
import { streamFull } from '../wire/h2-settings.js';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;
const ignore = (): void => undefined;

const RST_NAMES = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
];

/** A socket error as the public may see it: what happened, without addresses or library text. */
function publicCause(e: (Error & { code?: string }) | undefined): string {
  const code = e?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'connection reset';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'name not resolved';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
    case undefined:
      return 'connection failed';
    default:
      return /CERT|SSL|TLS|SELF_SIGNED|HOSTNAME/i.test(code) ? 'TLS handshake failed' : 'connection failed';
  }
}

export type Failure = Exclude<AttemptFailure, number>;

/** Why an attempt's stream closed before it answered: the failure, in full (the log, --error-detail internal) and for the public. */
export interface AttemptEnding {
  readonly failure: Failure;
  readonly detail: string;
  readonly cause: string;
}

/** What an attempt reports to its call. */
export interface GrpcAttemptOwner {
  attemptResponse(a: GrpcAttempt, headers: IncomingHttpHeaders, flags: number): void;
  attemptData(a: GrpcAttempt, chunk: Buffer): void;
  attemptTrailers(a: GrpcAttempt, trailers: IncomingHttpHeaders): void;
  attemptEnd(a: GrpcAttempt): void;
  attemptClose(a: GrpcAttempt): void;
  /** Its per-try timeout ran out. */
  attemptExpired(a: GrpcAttempt): void;
  /** It took the request bytes it had refused: the client may send more. */
  attemptDrained(a: GrpcAttempt): void;
}

export class GrpcAttempt extends AttemptBase {
  /** Its outcome (a status) is known and was told to its endpoint. */
  answered = false;
  private error: (Error & { code?: string }) | undefined;

  constructor(
    private readonly owner: GrpcAttemptOwner,
    readonly stream: ClientHttp2Stream,
    readonly session: PooledSession,
    backend: Backend,
    clock: Clock,
    n = 0,
    hedge = false,
  ) {
    super(clock, n, hedge);
    (stream as Carrying)[ATTEMPT] = this;
    for (const [event, listener] of LISTENERS) stream.on(event, listener);
    this.startTryTimer(backend, GrpcAttempt.expired);
  }

  private static expired(this: void, a: GrpcAttempt): void {
    a.owner.attemptExpired(a);
  }

  /** The call is over with this stream still open: cancelled if it never finished, NO_ERROR if it answered while the client kept sending. */
  closeAfter(upstreamEnded: boolean): void {
    const s = this.stream;
    if (!s.closed && !s.destroyed && !(upstreamEnded && s.writableEnded)) s.close(upstreamEnded ? http2.constants.NGHTTP2_NO_ERROR : http2.constants.NGHTTP2_CANCEL);
  }

  /** A request chunk upstream; false when the stream is full (`attemptDrained` follows). */
  write(chunk: Buffer): boolean {
    if (!streamFull(this.stream.write(chunk), this.stream)) return true;
    this.stream.once('drain', onDrain);
    return false;
  }

  /** The call is done with it before it answered: listeners off, and the stream cancelled upstream (RST_STREAM `code`). */
  drop(code: number = NGHTTP2_CANCEL): void {
    this.detach();
    const s = this.stream;
    if (!s.closed && !s.destroyed) s.close(code);
  }

  /** Listeners off (its errors are ignored from now on): nothing it does reaches the call any more. */
  detach(): void {
    this.stopTimer();
    const s = this.stream;
    for (const [event, listener] of LISTENERS) s.off(event, listener);
    s.off('drain', onDrain);
    s.on('error', ignore);
    (s as Carrying)[ATTEMPT] = undefined;
  }

  /** Why its stream closed before its answer ended (read on 'close'). */
  ending(): AttemptEnding {
    const s = this.stream;
    const ps = this.session;
    if (!ps.connected) {
      // Node cancels streams queued on a session that failed to connect; the socket error is the cause.
      const e = ps.failure ?? ((this.error?.cause as (Error & { code?: string }) | undefined) || this.error);
      return { failure: 'connect', detail: e?.code ?? e?.message ?? 'connection failed', cause: publicCause(e) };
    }
    if (s.rstCode === NGHTTP2_REFUSED_STREAM) return { failure: 'refused', detail: 'REFUSED_STREAM (it was not processed)', cause: 'REFUSED_STREAM (it was not processed)' };
    const rst = `${RST_NAMES[s.rstCode] ?? 'code'} (${s.rstCode})`;
    const lost = ps.session.destroyed || ps.session.closed;
    return {
      failure: 'reset',
      detail: lost ? `the connection closed${ps.failure ? `: ${ps.failure.code ?? ps.failure.message}` : ''}` : `RST_STREAM ${rst}`,
      cause: lost ? 'the connection closed' : `RST_STREAM ${rst}`,
    };
  }

  // ---- what its stream says (the listeners below, shared by every attempt, call these) ----

  response(headers: IncomingHttpHeaders, flags: number): void {
    this.stopTimer();
    this.owner.attemptResponse(this, headers, flags);
  }

  data(chunk: Buffer): void {
    this.owner.attemptData(this, chunk);
  }

  trailers(trailers: IncomingHttpHeaders): void {
    this.owner.attemptTrailers(this, trailers);
  }

  ended(): void {
    this.owner.attemptEnd(this);
  }

  failed(err: Error & { code?: string }): void {
    this.error = err;
  }

  closed(): void {
    this.owner.attemptClose(this);
  }

  drained(): void {
    this.owner.attemptDrained(this);
  }
}

/**
 * The stream's listeners, one set for every attempt: the attempt rides on its stream (`ATTEMPT`),
 * so listening costs no closure per attempt (there were seven).
 */
const ATTEMPT = Symbol('grpc attempt');
type Carrying = ClientHttp2Stream & { [ATTEMPT]?: GrpcAttempt | undefined };

function onResponse(this: Carrying, headers: IncomingHttpHeaders, flags: number): void {
  this[ATTEMPT]?.response(headers, flags);
}
function onData(this: Carrying, chunk: Buffer): void {
  this[ATTEMPT]?.data(chunk);
}
function onTrailers(this: Carrying, trailers: IncomingHttpHeaders): void {
  this[ATTEMPT]?.trailers(trailers);
}
function onEnd(this: Carrying): void {
  this[ATTEMPT]?.ended();
}
function onError(this: Carrying, err: Error & { code?: string }): void {
  this[ATTEMPT]?.failed(err);
}
function onClose(this: Carrying): void {
  this[ATTEMPT]?.closed();
}
/** What an attempt listens to on its stream, from its start until it is detached (and `drain` while a write waits). */
const LISTENERS: readonly (readonly [string, Parameters<ClientHttp2Stream['off']>[1]])[] = [
  ['response', onResponse],
  ['data', onData],
  ['trailers', onTrailers],
  ['end', onEnd],
  ['error', onError],
  ['close', onClose],
];

function onDrain(this: Carrying): void {
  this[ATTEMPT]?.drained();
}
