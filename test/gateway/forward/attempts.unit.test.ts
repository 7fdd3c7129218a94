/**
 * One attempt of a REST exchange and of a gRPC call, and a call's deadlines, without sockets and
 * without sleeping: the time is a clock the test moves (fake-clock.ts). An attempt owns its
 * endpoint's count or its stream, its per-try timer and its callbacks; once its request is done
 * with it, nothing it reports gets through.
 */
import { EventEmitter } from 'node:events';
import http2, { type ClientHttp2Stream } from 'node:http2';
import { describe, expect, it } from 'vitest';
import { CallDeadline } from '../../../gateway/grpc/call-deadline.js';
import { GrpcAttempt, type GrpcAttemptOwner } from '../../../gateway/grpc/attempt.js';
import type { PooledSession } from '../../../gateway/upstream/grpc-sessions.js';
import { AttemptAborted, RestAttempt, type AttemptOwner } from '../../../gateway/rest/attempt.js';
import type { Endpoint } from '../../../gateway/upstream/pools.js';
import type { UpstreamAttempt } from '../../../gateway/upstream/http1-client.js';
import type { Backend } from '../../../routing/types.js';
import { ResponseHead } from '../../../gateway/wire/response-head.js';
import { STREAM_BUFFER_BYTES } from '../../../gateway/wire/h2-settings.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;

function backend(perTryTimeoutMs: number): Backend {
  return { id: 'ns/dep/pred', retry: perTryTimeoutMs > 0 ? { retryOn: '5xx', numRetries: 1, perTryTimeoutMs } : null } as unknown as Backend;
}

// ---- REST ----

/** An answer head with no fields, as the upstream client reports it. */
function answerHead(status: number, reason: string, length: number): ResponseHead {
  const line = Buffer.from(`HTTP/1.1 ${status} ${reason}\r\n`, 'latin1');
  return new ResponseHead(status, line, 13, line.length - 2, [], length, false);
}

class RestOwner implements AttemptOwner {
  readonly heard: string[] = [];
  attemptHeaders(_a: RestAttempt, head: ResponseHead): boolean {
    this.heard.push(`headers ${head.status}`);
    return true;
  }
  attemptData(_a: RestAttempt, chunk: Buffer): boolean {
    this.heard.push(`data ${chunk.toString()}`);
    return true;
  }
  attemptComplete(): void {
    this.heard.push('complete');
  }
  attemptFailed(_a: RestAttempt, err: Error): void {
    this.heard.push(`failed ${err.message}`);
  }
}

/** The upstream client's handle of an attempt: records what the attempt asks of it. */
class Handle {
  aborted: string[] = [];
  readonly errors: Error[] = [];
  resumed = 0;
  abort(err: Error): void {
    this.aborted.push(err.message);
    this.errors.push(err);
  }
  resume(): void {
    this.resumed++;
  }
}

const endpoint = (): Endpoint => ({ outstanding: 0 }) as unknown as Endpoint;

describe('a REST attempt', () => {
  it("counts in its endpoint's outstanding requests while it runs, released once", () => {
    const ep = endpoint();
    const a = new RestAttempt(new RestOwner(), ep, backend(0), new FakeClock());
    expect(ep.outstanding).toBe(1);
    a.end();
    a.end();
    expect(ep.outstanding).toBe(0);
  });

  it('its per-try timeout cuts it upstream when it runs out, not before, and the answer stops it', () => {
    const clock = new FakeClock();
    const timedOut = new RestAttempt(new RestOwner(), endpoint(), backend(100), clock);
    const handle = new Handle();
    timedOut.onConnect(handle as unknown as UpstreamAttempt);
    clock.advance(99);
    expect(handle.aborted).toEqual([]);
    clock.advance(1);
    expect(handle.aborted).toEqual(['per-try-timeout']);

    const answered = new RestAttempt(new RestOwner(), endpoint(), backend(100), clock);
    const other = new Handle();
    answered.onConnect(other as unknown as UpstreamAttempt);
    answered.onHeaders(answerHead(200, 'OK', 2));
    clock.advance(1_000);
    expect(other.aborted).toEqual([]);
    expect(clock.timers).toBe(0);
  });

  it('passes what the upstream reports to its exchange, until the exchange is done with it', () => {
    const owner = new RestOwner();
    const a = new RestAttempt(owner, endpoint(), backend(0), new FakeClock());
    a.onHeaders(answerHead(200, 'OK', 2));
    a.onData(Buffer.from('ok'));
    a.end();
    a.onData(Buffer.from('late'));
    a.onComplete();
    a.onError(new Error('late reset'));
    expect(owner.heard).toEqual(['headers 200', 'data ok']);
  });

  it('an answer being dropped for a retry does not reach the exchange; its end does', () => {
    const owner = new RestOwner();
    const a = new RestAttempt(owner, endpoint(), backend(0), new FakeClock());
    a.onHeaders(answerHead(503, 'Service Unavailable', 0));
    a.discard = true;
    a.onData(Buffer.from('dropped'));
    a.onComplete();
    expect(owner.heard).toEqual(['headers 503', 'complete']);
  });

  it('connected after its exchange ended: cut at once', () => {
    const a = new RestAttempt(new RestOwner(), endpoint(), backend(0), new FakeClock());
    a.end();
    const handle = new Handle();
    a.onConnect(handle as unknown as UpstreamAttempt);
    expect(handle.aborted).toEqual(['client']);
    // One error per reason, the same each time: a cut makes no object.
    expect(AttemptAborted.BY.timeout.why).toBe('timeout');
    const again = new RestAttempt(new RestOwner(), endpoint(), backend(0), new FakeClock());
    again.end();
    const other = new Handle();
    again.onConnect(other as unknown as UpstreamAttempt);
    expect(other.errors[0]).toBe(handle.errors[0]);
  });
});

// ---- gRPC ----

class GrpcOwner implements GrpcAttemptOwner {
  readonly heard: string[] = [];
  attemptResponse(_a: GrpcAttempt, headers: Record<string, unknown>): void {
    this.heard.push(`response ${String(headers[':status'])}`);
  }
  attemptData(_a: GrpcAttempt, chunk: Buffer): void {
    this.heard.push(`data ${chunk.length}`);
  }
  attemptTrailers(): void {
    this.heard.push('trailers');
  }
  attemptEnd(): void {
    this.heard.push('end');
  }
  attemptClose(): void {
    this.heard.push('close');
  }
  attemptExpired(): void {
    this.heard.push('expired');
  }
  attemptDrained(): void {
    this.heard.push('drained');
  }
}

/** An upstream HTTP/2 stream as far as an attempt uses one. */
class Stream extends EventEmitter {
  closed = false;
  destroyed = false;
  rstCode = 0;
  closedWith: number | undefined;
  full = false;
  /** What Node's stream holds when it answers false to a write: at the gateway's mark (`streamFull`). */
  get writableLength(): number {
    return this.full ? STREAM_BUFFER_BYTES : 0;
  }
  write(): boolean {
    return !this.full;
  }
  close(code: number): void {
    this.closedWith = code;
    this.closed = true;
  }
}

function grpcAttempt(o: { perTryMs?: number; connected?: boolean; failure?: Error & { code?: string }; lost?: boolean } = {}) {
  const owner = new GrpcOwner();
  const stream = new Stream();
  const clock = new FakeClock();
  const session = { connected: o.connected ?? true, failure: o.failure, session: { destroyed: o.lost ?? false, closed: false } } as unknown as PooledSession;
  const a = new GrpcAttempt(owner, stream as unknown as ClientHttp2Stream, session, backend(o.perTryMs ?? 0), clock);
  return { owner, stream, clock, a };
}

describe('a gRPC attempt', () => {
  it("passes its stream's events to its call; dropped, it is cancelled upstream and nothing more gets through", () => {
    const { owner, stream, a } = grpcAttempt();
    stream.emit('response', { ':status': 200 }, 0);
    stream.emit('data', Buffer.alloc(5));
    stream.emit('trailers', { 'grpc-status': '0' });
    a.drop();
    expect(stream.closedWith).toBe(NGHTTP2_CANCEL);
    stream.emit('data', Buffer.alloc(5));
    stream.emit('end');
    stream.emit('close');
    // Its errors are ignored from now on (an 'error' without a listener would throw).
    stream.emit('error', new Error('late'));
    expect(owner.heard).toEqual(['response 200', 'data 5', 'trailers']);
  });

  it('its per-try timeout is reported to the call when it runs out; the response headers stop it', () => {
    const expired = grpcAttempt({ perTryMs: 50 });
    expired.clock.advance(49);
    expect(expired.owner.heard).toEqual([]);
    expired.clock.advance(1);
    expect(expired.owner.heard).toEqual(['expired']);
    const answered = grpcAttempt({ perTryMs: 50 });
    answered.stream.emit('response', { ':status': 200 }, 0);
    answered.clock.advance(1_000);
    expect(answered.owner.heard).toEqual(['response 200']);
  });

  it('a full upstream stream says so, and reports when it drained', () => {
    const { owner, stream, a } = grpcAttempt();
    stream.full = true;
    expect(a.write(Buffer.alloc(1))).toBe(false);
    stream.emit('drain');
    expect(owner.heard).toEqual(['drained']);
  });

  it('says why its stream closed: the connection never came, the stream was refused, or it was reset', () => {
    const refusedConnection = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    expect(grpcAttempt({ connected: false, failure: refusedConnection }).a.ending()).toEqual({ failure: 'connect', detail: 'ECONNREFUSED', cause: 'connection refused' });
    const refused = grpcAttempt();
    refused.stream.rstCode = NGHTTP2_REFUSED_STREAM;
    expect(refused.a.ending()).toMatchObject({ failure: 'refused' });
    const reset = grpcAttempt();
    reset.stream.rstCode = 2;
    expect(reset.a.ending()).toEqual({ failure: 'reset', detail: 'RST_STREAM INTERNAL_ERROR (2)', cause: 'RST_STREAM INTERNAL_ERROR (2)' });
    expect(grpcAttempt({ lost: true }).a.ending()).toEqual({ failure: 'reset', detail: 'the connection closed', cause: 'the connection closed' });
  });
});

describe("a gRPC call's deadline", () => {
  const owner = () => {
    const expired: string[] = [];
    return { expired, deadlineExpired: (why: 'client' | 'route') => expired.push(why) };
  };

  it("the client's grpc-timeout counts from arrival; the route timeout from the end of the request; the first to end wins", () => {
    const clock = new FakeClock();
    const o = owner();
    const d = new CallDeadline(o, clock, '300m');
    d.startClient();
    clock.advance(100);
    d.startRoute(500);
    clock.advance(199);
    expect(o.expired).toEqual([]);
    clock.advance(1);
    expect(o.expired).toEqual(['client']);
  });

  it('a shorter route timeout ends the call first; a retry carries what is left of the client budget', () => {
    const clock = new FakeClock();
    const o = owner();
    const d = new CallDeadline(o, clock, '1S');
    d.startClient();
    clock.advance(250);
    expect(d.remaining()).toBe('750m');
    d.startRoute(100);
    clock.advance(100);
    expect(o.expired).toEqual(['route']);
  });

  it('cleared at the response headers: nothing expires; without a grpc-timeout nothing goes upstream', () => {
    const clock = new FakeClock();
    const o = owner();
    const d = new CallDeadline(o, clock, undefined);
    d.startClient();
    d.startRoute(100);
    d.clear();
    clock.advance(10_000);
    expect(o.expired).toEqual([]);
    expect(d.remaining()).toBeUndefined();
    expect(clock.timers).toBe(0);
  });
});
