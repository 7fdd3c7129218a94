/**
 * One connection of the upstream HTTP/1.1 client (http1-client.ts) and the request it carries: the
 * socket (TCP or TLS), the request written (head, then a buffered or streamed body), the answer read
 * with the response parser (http1-response.ts), the timer of each phase (connect, answer head, body
 * gaps, idle), and the connection given back to its pool, or closed, when the answer ends.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Readable } from 'node:stream';
import { Deadline } from '../timers/deadline.js';
import { ResponseParseError, ResponseParser, type ResponseHead, type ResponseSink } from './http1-response.js';
import { COPY_BODY_BYTES, UpstreamError, isStream, type UpstreamRequest } from './request-head.js';
import { BODY_SOCKET_HIGH_WATER_MARK } from '../wire/socket-buffers.js';
import { ReadBuffer, passesOn, tookWhole, type PassesOn } from '../wire/read-buffer.js';

/** The request in flight, as its handler holds it. */
export interface UpstreamAttempt {
  /** Give up on this request: its connection is closed, the handler hears `onError(err)`. */
  abort(err: Error): void;
  /** Read on after `onHeaders` or `onData` returned false. */
  resume(): void;
  /**
   * The body slice just handed to `onData` went on and nothing keeps it (it reached the kernel): the
   * connection may read its next bytes into the same memory. Not called: the slice is the handler's.
   */
  passed(chunk: Buffer): void;
}

export interface ResponseHandler {
  /** First, synchronously within `dispatch`. */
  onConnect(attempt: UpstreamAttempt): void;
  /**
   * The final head (interim 1xx answers are skipped), its fields as offsets over the bytes read
   * (wire/response-head.ts: valid while the call lasts, and while the handler holds it); false
   * pauses reading. `head.length` is the only Content-Length the answer may be passed on with (-1: none).
   */
  onHeaders(head: ResponseHead): boolean;
  /** A slice of the body; false pauses reading. */
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  onError(err: Error & { code?: string }): void;
}

/** Where a connection is dialled, and how its answers are bounded (the pool's options). */
export interface Dial {
  readonly host: string;
  readonly port: number;
  /** TLS to the upstream (servername, ca, rejectUnauthorized); absent: cleartext. */
  readonly tls?: tls.ConnectionOptions | undefined;
  readonly connectTimeoutMs: number;
  /** Largest answer head (status line and headers) accepted. */
  readonly maxHeadBytes: number;
}

/** What a connection needs of its pool (http1-client.ts `Http1Pool`). */
export interface PoolSide {
  readonly options: Dial;
  readonly keepAliveMs: number;
  /** A connection older than this (ms from its connect) is not reused; 0: no bound. */
  readonly maxLifetimeMs: number;
  /** The last TLS session, offered to the next connection (resumption). */
  tlsSession: Buffer | undefined;
  /** The connection is idle and may take another request. */
  release(c: Connection): void;
  /** The connection closed. */
  closed(c: Connection): void;
  /** Send `task` again on a new connection (its reused one was reset unanswered). */
  replay(task: Task): void;
  /** The request failed. */
  fail(task: Task, err: Error): void;
  /** The request's handler gave up on it. */
  abort(task: Task, err: Error): void;
  /** A request ended (answered or failed). */
  completed(): void;
}

/** A connection is closed this long before the server's announced idle timeout, so both never race. */
const KEEP_ALIVE_MARGIN_MS = 1000;

const ignore = (): void => undefined;
/**
 * Body chunks no larger than an HTTP/2 DATA frame (16 KiB: the gateway keeps Node's SETTINGS_MAX_FRAME_SIZE)
 * are gathered per turn of the loop (`onBodyData`). Not every chunk under a socket read: an HTTP/1.1
 * body's first read is the read less the head, and corking it held the whole body's writes to the
 * check phase, each read queued, none taken whole (load/README.md, large: 256 KiB requests).
 */
const GATHER_UP_TO = 16 * 1024;
const sendGathered = (c: { flushGathered(): void }): void => c.flushGathered();
const uncork = (socket: net.Socket): void => socket.uncork();

/** The server reset the connection: it closed it with bytes of ours unread. */
const isReset = (err: Error & { code?: string }): boolean => err.code === 'ECONNRESET' || err.code === 'EPIPE';

export const enum Phase {
  Connect,
  Head,
  Body,
  Idle,
}

export class Task implements UpstreamAttempt {
  conn: Connection | undefined;
  done = false;
  /** Sent again after a reset on a reused connection (once at most). */
  replayed = false;

  constructor(
    readonly pool: PoolSide,
    readonly req: UpstreamRequest,
    readonly handler: ResponseHandler,
    /** The request head (with a small buffered body after it: request-head.ts), written when a connection takes the task. */
    readonly head: Buffer,
    /** A stream body's declared length (-1: none, sent chunked). */
    readonly streamLength: number,
  ) {}

  abort(err: Error): void {
    this.pool.abort(this, err);
  }

  resume(): void {
    if (!this.done && this.conn !== undefined) this.conn.resumeReading();
  }

  passed(chunk: Buffer): void {
    this.conn?.passed(chunk);
  }
}

export class Connection implements ResponseSink {
  readonly socket: net.Socket;
  private readonly parser: ResponseParser;
  task: Task | undefined;
  connected = false;
  /** The request in flight has been written whole. */
  private written = false;
  /** The answer ended (within the current read); the connection is released once that read is parsed. */
  private ended = false;
  private paused = false;
  private phase = Phase.Connect;
  private readonly deadline = new Deadline(() => this.expired());
  private error: (Error & { code?: string }) | undefined;
  private body: Readable | undefined;
  private bodyLeft = -1;
  /** Small body chunks are being gathered (the socket corked) until the tick ends. */
  private gathering = false;
  /** Answers this connection carried to their end: it is a reused one once this is > 0. */
  private answered = 0;
  /** A byte of the current request's answer has arrived. */
  private heard = false;
  /** When the read being parsed arrived (performance.now() ms). */
  private readAt = 0;
  /** When it connected (performance.now() ms): its age, under the pool's `maxLifetimeMs`. */
  private connectedAt = 0;
  /**
   * What a cleartext socket reads into (`onread`, wire/read-buffer.ts): a buffer of its own while an answer
   * is in flight and its reads are large, read into again when a read's bytes were all `passed`; else the shared one.
   */
  private readonly reads = new ReadBuffer();
  /** The stream body being sent, when it is told which of its chunks went on whole (the lane's). */
  private bodyPasses: PassesOn | undefined;

  constructor(private readonly pool: PoolSide) {
    const o = pool.options;
    this.socket =
      o.tls !== undefined
        ? tls.connect({ ...o.tls, host: o.host, port: o.port, ALPNProtocols: ['http/1.1'], session: pool.tlsSession })
        : // A body's chunks pass without a pause each (wire/socket-buffers.ts); Node's Socket hands its options to Duplex, which its types do not say.
          net.connect({
            host: o.host,
            port: o.port,
            writableHighWaterMark: BODY_SOCKET_HIGH_WATER_MARK,
            onread: { buffer: () => this.reads.next(this.task !== undefined), callback: (n: number, buf: Buffer) => this.onOwnRead(n, buf) },
          } as net.NetConnectOpts);
    this.parser = new ResponseParser(this, o.maxHeadBytes);
    this.socket.setNoDelay(true);
    this.socket.once(o.tls !== undefined ? 'secureConnect' : 'connect', () => this.onConnected());
    if (o.tls !== undefined) {
      this.socket.on('session', (s: Buffer) => (pool.tlsSession = s));
      this.socket.on('data', (c: Buffer) => this.onRead(c));
    }
    this.socket.on('end', () => this.onSocketEnd());
    this.socket.on('error', (err: Error) => (this.error ??= err));
    this.socket.once('close', () => this.onClose());
    this.arm(Phase.Connect, o.connectTimeoutMs);
  }

  /** Send `task` on this connection (connected, or once it is). */
  start(task: Task): void {
    this.task = task;
    task.conn = this;
    this.written = false;
    this.ended = false;
    this.heard = false;
    this.parser.expect(task.req.method === 'HEAD');
    if (this.connected) this.write(task);
  }

  private onConnected(): void {
    this.connected = true;
    this.connectedAt = performance.now();
    if (this.task !== undefined) this.write(this.task);
    else this.pool.release(this);
  }

  private write(task: Task): void {
    const req = task.req;
    this.arm(Phase.Head, req.headersTimeout);
    const body = req.body;
    const head = task.head;
    const socket = this.socket;
    if (body === null || (Buffer.isBuffer(body) && body.length <= COPY_BODY_BYTES)) {
      // The body, if any, is in the head's buffer: one write.
      socket.write(head);
      this.written = true;
    } else if (Buffer.isBuffer(body)) {
      socket.cork();
      socket.write(head);
      socket.write(body);
      socket.uncork();
      this.written = true;
    } else {
      // The head leaves with the body's first bytes, which the stream hands over a tick later
      // (`resume`): one write, not two, and none held past that tick when no bytes are here yet.
      socket.cork();
      socket.write(head);
      this.bodyLeft = task.streamLength;
      this.streamBody(body);
      process.nextTick(uncork, socket);
    }
  }

  /** Copy a stream body to the socket (chunked unless its length was declared), with backpressure both ways. */
  private streamBody(body: Readable): void {
    this.body = body;
    this.bodyPasses = passesOn(body) ? body : undefined;
    // The stream may fail after this connection let go of it (the request was abandoned): that
    // error is nobody's to handle any more, and must not become an uncaught exception.
    if (!body.listeners('error').includes(ignore)) body.on('error', ignore);
    body.on('data', this.onBodyData);
    body.once('end', this.onBodyEnd);
    body.once('error', this.onBodyError);
    this.socket.on('drain', this.onDrain);
    body.resume();
  }

  private readonly onBodyData = (c: Buffer): void => {
    const socket = this.socket;
    let ok: boolean;
    // Chunks of a DATA frame's size (HTTP/2's 16 KiB frames, four to a read) leave together,
    // one writev per read, not one write each (load/README.md, large): the socket is corked until the
    // frames of this read have been handed over. Not to the next tick: Node runs the tick queue
    // between the DATA frames of one read, so only the loop's check phase comes after all of them.
    if (c.length <= GATHER_UP_TO && !this.gathering) {
      this.gathering = true;
      socket.cork();
      setImmediate(sendGathered, this);
    }
    if (this.bodyLeft >= 0) {
      if (c.length > this.bodyLeft) {
        this.failBody(new UpstreamError('UPSTREAM_INVALID_REQUEST', 'the request body is longer than its Content-Length'));
        return;
      }
      this.bodyLeft -= c.length;
      ok = socket.write(c);
      // Taken whole by the model's socket: the client's connection may read into that memory again.
      // (Only while this connection is the body's one reader: another listener may keep the chunk.)
      if (this.bodyPasses !== undefined && tookWhole(socket) && this.body?.listenerCount('data') === 1) this.bodyPasses.passed(c);
    } else {
      if (c.length === 0) return;
      socket.cork();
      socket.write(`${c.length.toString(16)}\r\n`, 'latin1');
      socket.write(c);
      ok = socket.write('\r\n', 'latin1');
      socket.uncork();
    }
    // Sending the body is progress too: the wait for the answer's head starts again.
    this.deadline.touch();
    if (!ok) this.body?.pause();
  };

  /** The chunks gathered since the first of this tick go out in one write. */
  flushGathered(): void {
    this.gathering = false;
    this.socket.uncork();
  }

  private readonly onBodyEnd = (): void => {
    if (this.bodyLeft > 0) {
      this.failBody(new UpstreamError('UPSTREAM_INVALID_REQUEST', 'the request body ended before its Content-Length'));
      return;
    }
    if (this.bodyLeft < 0) this.socket.write('0\r\n\r\n', 'latin1');
    this.detachBody();
    this.written = true;
  };

  private readonly onBodyError = (err: Error): void => {
    this.failBody(err);
  };

  private readonly onDrain = (): void => {
    this.body?.resume();
  };

  private failBody(err: Error): void {
    const task = this.task;
    this.detachBody();
    if (task !== undefined) this.pool.abort(task, err);
  }

  private detachBody(): void {
    const body = this.body;
    if (body === undefined) return;
    this.body = undefined;
    this.bodyPasses = undefined;
    body.off('data', this.onBodyData);
    body.off('end', this.onBodyEnd);
    body.off('error', this.onBodyError);
    this.socket.off('drain', this.onDrain);
  }

  /** A read into `buf` (`onread`): copied out when small, else handed on as views of the connection's own buffer. */
  private onOwnRead(n: number, buf: Buffer): boolean {
    this.onRead(this.reads.take(n, buf));
    return true; // pausing is the socket's own (pauseReading): the read stops there
  }

  /** `chunk` (a view of this connection's read buffer, or not) went on and is not kept. */
  passed(chunk: Buffer): void {
    this.reads.passed(chunk);
  }

  private onRead(chunk: Buffer): void {
    const task = this.task;
    if (task === undefined) {
      // Bytes nobody asked for: the connection's state is unknown.
      this.socket.destroy();
      return;
    }
    // One reading of the time for this read: its progress, and the phases its answer moves through.
    const now = (this.readAt = performance.now());
    this.deadline.touch(now);
    this.heard = true;
    try {
      this.parser.execute(chunk);
    } catch (err) {
      this.drop(task, err as Error);
      return;
    }
    if (this.ended) this.release();
  }

  // ---- ResponseSink: the parser's events, for the request in flight ----

  onHead(head: ResponseHead): void {
    const task = this.task!;
    this.arm(Phase.Body, task.req.bodyTimeout, this.readAt);
    if (!task.handler.onHeaders(head)) this.pauseReading();
  }

  onBody(chunk: Buffer): void {
    if (!this.task!.handler.onData(chunk)) this.pauseReading();
  }

  onEnd(): void {
    const task = this.task!;
    this.ended = true;
    this.answered++;
    task.done = true;
    this.pool.completed();
    task.handler.onComplete();
  }

  // ----

  private pauseReading(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
    // A reader that is slow to take the body is not an idle upstream.
    this.arm(this.phase, 0);
  }

  resumeReading(): void {
    if (!this.paused) return;
    this.paused = false;
    this.arm(Phase.Body, this.task?.req.bodyTimeout ?? 0);
    this.socket.resume();
  }

  /** The answer ended: keep the connection for the next request, or close it. */
  private release(): void {
    const task = this.task;
    this.task = undefined;
    if (task !== undefined) task.conn = undefined;
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
    const s = this.socket;
    const reusable = this.ended && this.written && this.parser.keepAlive && !this.parser.trailing && this.body === undefined && !s.destroyed && !s.readableEnded && s.writable;
    this.ended = false;
    if (!reusable) {
      this.detachBody();
      s.destroy();
      return;
    }
    const hint = this.parser.keepAliveHintMs;
    let idleMs = hint > 0 ? Math.min(hint - KEEP_ALIVE_MARGIN_MS, this.pool.keepAliveMs) : this.pool.keepAliveMs;
    // A bounded lifetime: idle, it closes when it reaches it; past it, it is not reused.
    const lifetime = this.pool.maxLifetimeMs;
    if (lifetime > 0) idleMs = Math.min(idleMs, this.connectedAt + lifetime - this.readAt);
    if (idleMs <= 0) {
      this.socket.destroy();
      return;
    }
    this.arm(Phase.Idle, idleMs, this.readAt);
    this.pool.release(this);
  }

  /** Abandon the request in flight (already failed by the caller) and close the connection. */
  abandon(): void {
    this.parser.stop();
    this.detachBody();
    this.task = undefined;
    this.socket.destroy();
  }

  /** Fail the request in flight with `err` and close the connection. */
  private drop(task: Task, err: Error): void {
    this.abandon();
    this.pool.fail(task, err);
  }

  private onSocketEnd(): void {
    // The server closed its side: an answer that runs until close ends here; an idle connection
    // is closed now, so no request is sent on it before its 'close' event.
    if (this.task === undefined) this.socket.destroy();
    else if (this.parser.untilClose) {
      this.parser.finish();
      this.release();
    }
  }

  private onClose(): void {
    this.deadline.clear();
    this.detachBody();
    const task = this.task;
    this.task = undefined;
    this.pool.closed(this);
    if (task === undefined || task.done) return;
    const err =
      this.error ??
      (this.parser.headStarted
        ? // Part of a head, then the close: the model answered something, not HTTP (never replayed: it ran the request).
          new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'the upstream closed the connection in the middle of the answer head')
        : new UpstreamError('UPSTREAM_CLOSED', this.parser.headParsed ? 'the upstream closed the connection before the answer ended' : 'the upstream closed the connection before answering'));
    if (this.answered > 0 && !this.heard && !task.replayed && isReset(err) && !isStream(task.req.body)) this.pool.replay(task);
    else this.pool.fail(task, err);
  }

  /** The phase and its timeout (0 ms: none), from `now` (performance.now() ms) when the caller has read it. */
  private arm(phase: Phase, ms: number, now = performance.now()): void {
    this.phase = phase;
    this.deadline.setAt(now, ms);
  }

  private expired(): void {
    if (this.socket.destroyed) return;
    const task = this.task;
    if (this.phase === Phase.Idle || task === undefined) {
      this.socket.destroy();
      return;
    }
    const err =
      this.phase === Phase.Connect
        ? new UpstreamError('UPSTREAM_CONNECT_TIMEOUT', `no connection within ${this.deadline.ms} ms`)
        : this.phase === Phase.Head
          ? new UpstreamError('UPSTREAM_HEADERS_TIMEOUT', `no answer within ${this.deadline.ms} ms`)
          : new UpstreamError('UPSTREAM_BODY_TIMEOUT', `the answer's body paused for ${this.deadline.ms} ms`);
    this.drop(task, err);
  }
}

/** The attempt of a request refused before it was sent: nothing to abort or resume. */
