/**
 * The gateway's own HTTP/1.1 server side for the hot path ("the lane"), in front of `node:http`.
 *
 * Why: `node:http`'s server side (its streams, IncomingMessage and ServerResponse objects, their events and its
 * corked writes) cost as much CPU per proxied request as all of the gateway's own work together (`npm run bench --
 * floor`). The lane reads a request head with a strict parser (edge/http1-request.ts), takes the whole body from the
 * socket's reads, hands the proxy a `LaneExchange` (its adapter of the REST exchange, edge/rest-exchange.ts: the
 * request and its answer in one object) in place of Node's two objects, and writes each answer in one socket write
 * when it can.
 *
 * What it serves, and what it leaves: it takes a connection from the listener and serves its requests while each one
 * is of the simple shape the parser recognises, has a Content-Length body within --max-body (one of at most
 * `maxBodyBytes` read whole before it is served, as nginx buffers small bodies; a larger one served at its head and
 * streamed as it comes, edge/lane-body.ts) or a chunked one (served at its head, decoded as it streams by
 * wire/chunked-body.ts, refused as llhttp refuses it: `bodyRefused`) and goes to the proxy or the OAuth front end
 * (`route`). At the first request that is not (a malformed one, another Transfer-Encoding, `Expect`, HTTP/1.0, HEAD,
 * a body over --max-body, the gateway's own routes), it gives the connection to `node:http` at that request's first
 * byte, unread: from there `node:http` serves it as it always has, parse errors and their answers included. Nothing
 * is read twice or lost.
 *
 * Its answers are framed as `node:http` frames them, byte for byte: the given headers in order, then `Date`, then
 * `Connection: keep-alive` and `Keep-Alive: timeout=N` (or `Connection: close`), then `Transfer-Encoding: chunked`
 * when there is no Content-Length (test/gateway/edge/http1-lane.test.ts compares the two). Its timeouts are the
 * server's: the keep-alive timeout between requests, --client-header-timeout for a head and --client-request-timeout
 * for a whole request (answered 408 as `node:http`'s are, by `timedOut`).
 */
import type { Socket } from 'node:net';
import { Deadline } from '../timers/deadline.js';
import { CHUNKED_BODY, MORE, OTHER, parseRequestHead, type HeadLimits } from './http1-request.js';
import { LaneExchange, type LaneOwner } from './lane-exchange.js';
import { LaneBody, type BodySource } from './lane-body.js';
import { BODY_TOO_LARGE, ChunkedBody, ChunkedBodyError, type ChunkSink } from '../wire/chunked-body.js';
import { lingeringClose } from './lingering-close.js';
import { ReadBuffer, readInto } from '../wire/read-buffer.js';

export interface LaneOptions extends HeadLimits {
  /** The largest body the lane reads whole before serving (larger: served at once, the body streamed as it comes, edge/lane-body.ts). */
  readonly maxBodyBytes: number;
  /** --max-body (0: none): a larger Content-Length goes to `node:http`, whose edge checks answer it 413 (edge/refusals.ts). */
  readonly bodyLimitBytes: number;
  /** Idle time allowed between requests, in ms (`node:http`'s keepAliveTimeout). */
  readonly keepAliveTimeoutMs: number;
  /** --client-header-timeout: from a request's first byte to the end of its head. */
  readonly headerTimeoutMs: number;
  /** --client-request-timeout: from a request's first byte to the end of its body (0: none). */
  readonly requestTimeoutMs: number;
  /** Who serves a request to this target (the proxy, the OAuth front end); undefined: not the lane (the gateway's own routes). */
  route(target: string): LaneHandler | undefined;
  /** `node:http` takes the connection from here (its unread bytes are back on the socket), and why. */
  handOff(socket: Socket, reason: HandOffReason): void;
  /** A request was not received within its timeout: answer it (408) and close. `served`: being served already, its body streaming (the answer is its own, or a cut). */
  timedOut(socket: Socket, served?: LaneExchange): void;
  /**
   * A chunked body turned out malformed (`code`: llhttp's error code for it) or over --max-body
   * (`BODY_TOO_LARGE`): answer it as Node's server answers that error, and close. `served`: the
   * exchange, when its answer is still to come (undefined: answered already, the body was being dropped).
   */
  bodyRefused(socket: Socket, code: string, served?: LaneExchange): void;
}

/** Serves one request the lane read. */
export type LaneHandler = (req: LaneExchange, res: LaneExchange) => void;

/** Why a connection went to `node:http` (seldon_gateway_http1_handoffs_total). */
export type HandOffReason = 'request_shape' | 'large_body' | 'gateway_route';

/** Bytes read ahead of the request in flight (pipelined) before the lane stops reading the socket. */
const READ_AHEAD_BYTES = 1024 * 1024;

const enum Wait {
  /** Between requests: the keep-alive timeout. */
  Idle,
  /** Part of a request is here: its head and body timeouts. */
  Request,
  /** A request is being served: no timeout of the lane's (the route's own apply). */
  Serving,
  /** A request is being served while its body still streams in: the request timeout. */
  Body,
}

class LaneConnection implements LaneOwner, BodySource, ChunkSink {
  /** Bytes read and not yet served, from `at`. */
  private buf: Buffer | null = null;
  private at = 0;
  private res: LaneExchange | undefined;
  private wait = Wait.Idle;
  /** When the request being received started (its first byte), in performance.now() ms. */
  private started = 0;
  private readonly deadline: Deadline;
  readonly keepAliveSeconds: number;
  private gone = false;
  /** Answers are waiting in the socket's buffer for the client to read them. */
  private unread = false;
  /** The body streaming in (edge/lane-body.ts), and how many of its bytes are still to come. */
  private body: LaneBody | null = null;
  private bodyLeft = 0;
  /** The socket is paused because the body's reader is not taking it. */
  private bodyFull = false;
  /** A chunked body still coming (read and handed on, or dropped once answered), and its decoded bytes so far. */
  private chunks: ChunkedBody | null = null;
  private chunkedBytes = 0;
  /** A chunked body's trailer said `Connection: close`: the connection closes once this request is answered. */
  private closeAfterAnswer = false;
  /** What a cleartext socket reads into (wire/read-buffer.ts): its own buffer while a body streams in, else a shared one. */
  private readonly reads = new ReadBuffer();

  constructor(
    private readonly lane: Http1Lane,
    readonly socket: Socket,
  ) {
    this.keepAliveSeconds = Math.floor(lane.options.keepAliveTimeoutMs / 1000);
    this.deadline = new Deadline(() => this.expired());
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.once('close', this.onClose);
    // TLS sockets (and any Node whose internals differ) keep Node's reads, a new 64 KiB buffer each.
    readInto(socket, () => this.reads.next(this.body !== null), this.onRead);
  }

  /** A read into `buf` (wire/read-buffer.ts `readInto`): the lane's, unless the socket's stream still holds earlier bytes or the lane let it go. */
  private readonly onRead = (n: number, buf: Buffer): boolean => {
    const chunk = this.reads.take(n, buf);
    // In order behind what the stream holds (the listener's first bytes, put back); after a hand-off or
    // close, to whoever reads the socket now (lingering close's reader): there, the chunk is theirs.
    if (this.gone || this.socket.readableLength > 0) return this.socket.push(chunk);
    this.onData(chunk);
    return true; // the lane stops reading with `pause()` (which stops such a socket's reads)
  };

  /** A chunk of the streamed body went on whole (edge/lane-body.ts). */
  passed(chunk: Buffer): void {
    this.reads.passed(chunk);
  }

  get closing(): boolean {
    return this.lane.closing;
  }

  get idle(): boolean {
    return this.res === undefined && this.buf === null && !this.unread;
  }

  readonly onData = (chunk: Buffer): void => {
    // Closing (after `Connection: close`, a timeout): nothing more is served, so nothing more is kept.
    if (this.gone) return;
    if (this.bodyLeft > 0 || this.chunks !== null) {
      const dropping = this.body === null;
      chunk = this.chunks !== null ? this.toChunked(chunk) : this.toBody(chunk);
      if (this.gone) return;
      if (dropping && this.bodyLeft === 0 && this.chunks === null) {
        // The unread rest of an answered request's body is gone by: the next request, as after any answer.
        if (chunk.length > 0) {
          this.buf = chunk;
          this.at = 0;
        }
        return this.afterAnswer();
      }
      if (chunk.length === 0) return;
    }
    const buf = this.buf;
    if (buf === null) {
      this.buf = chunk;
      this.at = 0;
    } else {
      this.buf = Buffer.concat([buf.subarray(this.at), chunk]);
      this.at = 0;
    }
    if (this.res === undefined && !this.unread) this.next();
    else if (this.buf.length > READ_AHEAD_BYTES) this.socket.pause();
  };

  /** Serve the next request in the buffer, or wait for it. */
  next(): void {
    if (this.gone) return;
    const buf = this.buf;
    if (buf === null) return this.waitIdle();
    if (this.wait !== Wait.Request) {
      this.wait = Wait.Request;
      const now = performance.now();
      this.started = now;
      this.deadline.setAt(now, this.lane.options.headerTimeoutMs);
    }
    const options = this.lane.options;
    const head = parseRequestHead(buf, this.at, options, LaneExchange);
    if (head === MORE) return;
    if (head === OTHER) return this.handOff('request_shape');
    const limit = options.bodyLimitBytes;
    if (limit > 0 && head.contentLength > limit) return this.handOff('large_body');
    const handler = options.route(head.target);
    if (handler === undefined) return this.handOff('gateway_route');
    if ((head.kinds & CHUNKED_BODY) !== 0) return this.stream(head, handler, buf);
    const end = this.at + head.size + head.contentLength;
    if (head.contentLength > options.maxBodyBytes) return this.stream(head, handler, buf);
    if (buf.length < end) {
      // The head is here, the body is coming: the request timeout covers the rest.
      const ms = options.requestTimeoutMs;
      if (ms > 0) this.deadline.set(Math.max(1, this.started + ms - performance.now()));
      else this.deadline.stop();
      return;
    }
    const body = head.contentLength === 0 ? null : buf.subarray(this.at + head.size, end);
    if (end === buf.length) this.buf = null;
    else this.at = end;
    this.wait = Wait.Serving;
    this.deadline.stop();
    const x = head.serve(this, body, this.started);
    this.res = x;
    handler(x, x);
  }

  /** Serve a request whose body is too large to read whole, or chunked (`head`, parsed from `buf`) now, its body streaming as it comes: what is here first, the rest from the socket's reads (`toBody`, `toChunked`); the request timeout still covers it. */
  private stream(head: LaneExchange, handler: LaneHandler, buf: Buffer): void {
    const from = this.at + head.size;
    const body = new LaneBody(this);
    this.body = body;
    if (head.chunkedBody) {
      this.chunks = new ChunkedBody(this.lane.options.maxHeadBytes);
      this.chunkedBytes = 0;
    } else this.bodyLeft = head.contentLength;
    this.buf = null;
    const ms = this.lane.options.requestTimeoutMs;
    this.wait = Wait.Body;
    if (ms > 0) this.deadline.set(Math.max(1, this.started + ms - performance.now()));
    else this.deadline.stop();
    const x = head.serve(this, body, this.started);
    x.complete = false;
    this.res = x;
    if (head.chunkedBody) {
      // Served at its head, then its first bytes decoded, as Node's server does (a route that
      // answers at once, a 404, has answered before the body is judged: then it is only dropped).
      handler(x, x);
      if (buf.length > from) this.onData(buf.subarray(from));
      return;
    }
    if (buf.length > from) {
      // The body's first bytes (and, when all of it is here, what follows: the next request).
      const rest = this.toBody(buf.subarray(from));
      if (rest.length > 0) {
        this.buf = rest;
        this.at = 0;
      }
    }
    handler(x, x);
  }

  /** Hand the body its part of `chunk` (none once it is answered: dropped); what is left over (the next request's bytes) is returned. */
  private toBody(chunk: Buffer): Buffer {
    const body = this.body;
    const left = this.bodyLeft;
    let rest: Buffer = EMPTY;
    if (chunk.length > left) {
      rest = chunk.subarray(left);
      chunk = chunk.subarray(0, left);
    }
    this.bodyLeft = left - chunk.length;
    if (this.bodyLeft === 0) {
      if (body !== null && chunk.length > 0) body.push(chunk);
      this.bodyEnded(body, rest);
    } else if (body !== null && !body.push(chunk) && !this.bodyFull) {
      this.bodyFull = true;
      this.socket.pause();
    }
    return rest;
  }

  /** The whole request is here: the body ends (unless it was answered already), the route's own timeouts from here. */
  private bodyEnded(body: LaneBody | null, rest: Buffer): void {
    this.body = null;
    this.wait = Wait.Serving;
    this.deadline.stop();
    if (body === null) return;
    this.res!.complete = true;
    body.push(null);
    if (rest.length > READ_AHEAD_BYTES) this.socket.pause();
    else if (this.bodyFull) {
      this.bodyFull = false;
      this.socket.resume();
    }
  }

  /**
   * Decode `chunk` of a chunked body (wire/chunked-body.ts): its data to the body (`chunkData`;
   * none once it is answered: dropped); what is left over after the body's end (the next request's
   * bytes) is returned. A malformed body, or one over --max-body, is refused: the connection is done.
   */
  private toChunked(chunk: Buffer): Buffer {
    const chunks = this.chunks!;
    let end: number;
    try {
      end = chunks.execute(chunk, 0, this);
    } catch (err) {
      if (!(err instanceof ChunkedBodyError)) throw err;
      this.refuseBody(err.code);
      return EMPTY;
    }
    if (this.gone || end < 0) return EMPTY;
    this.chunks = null;
    const rest = end === chunk.length ? EMPTY : chunk.subarray(end);
    if (chunks.closes) {
      // A trailer said `Connection: close`: nothing after this request is served (llhttp reads no
      // more), yet its answer says what its head said, as Node's server decides that at the head.
      if (this.res !== undefined) this.closeAfterAnswer = true;
      else {
        this.gone = true;
        this.deadline.clear();
        lingeringClose(this.socket);
        return EMPTY;
      }
    }
    this.bodyEnded(this.body, rest);
    return rest;
  }

  /** A chunked body's data, a slice of a socket read: to the body's reader, and counted against --max-body. */
  chunkData(slice: Buffer): void {
    const body = this.body;
    // Dropped once answered: counted no more (as Node's server drops an unread body).
    if (body === null) return;
    const limit = this.lane.options.bodyLimitBytes;
    if (limit > 0 && (this.chunkedBytes += slice.length) > limit) {
      // Nothing past the limit goes on, not even the end: the model's request is aborted.
      throw new ChunkedBodyError(BODY_TOO_LARGE);
    }
    if (!body.push(slice) && !this.bodyFull) {
      this.bodyFull = true;
      this.socket.pause();
    }
  }

  /** The chunked body is refused (`code`): its reader hears an error, the model an aborted request; the client its answer, then the close. */
  private refuseBody(code: string): void {
    this.gone = true;
    this.chunks = null;
    this.deadline.clear();
    this.abortBody(`the request body is refused (${code})`);
    this.lane.options.bodyRefused(this.socket, code, this.res);
  }

  /** The body's reader wants more: read the socket again. */
  bodyWanted(): void {
    if (!this.bodyFull || this.body === null || this.gone) return;
    this.bodyFull = false;
    this.socket.resume();
  }

  /** The body stops short (the client went, the request timed out): its reader hears an error, the model an aborted request. */
  private abortBody(why: string): void {
    const body = this.body;
    if (body === null) return;
    this.body = null;
    body.destroy(new Error(why));
  }

  /** The answer in flight ended: close the connection, or go on to the next request. */
  answered(res: LaneExchange): void {
    if (this.res !== res) return;
    this.res = undefined;
    // Answered before its body ended: nobody reads the rest (a reader still attached hears no end).
    this.body = null;
    if (res.last || this.closeAfterAnswer) {
      this.gone = true;
      this.bodyLeft = 0;
      this.deadline.clear();
      // The answer goes out, then what the client may still send is read and dropped for a while
      // (closed at once, the client's system could drop the answer unread).
      lingeringClose(this.socket);
      return;
    }
    if (this.bodyLeft > 0 || this.chunks !== null) {
      // The rest of the body, its length known or its chunks decoded, is read and dropped (within the request timeout),
      // as `node:http` and nginx discard an unread body; then the next request.
      if (this.bodyFull) {
        this.bodyFull = false;
        this.socket.resume();
      }
      return;
    }
    this.afterAnswer();
  }

  /** An answer is done and its request read whole: the next request, once the client reads its answers. */
  private afterAnswer(): void {
    if (this.socket.writableNeedDrain) {
      // The client is not reading its answers: serve nothing more until it does (a pipelining
      // client cannot make the gateway hold answers without bound), for as long as a keep-alive lasts.
      this.unread = true;
      this.waitIdle();
      this.socket.once('drain', this.onDrain);
      return;
    }
    this.proceed();
  }

  private readonly onDrain = (): void => {
    this.unread = false;
    this.proceed();
  };

  /** Go on to the next request, or wait for one. */
  private proceed(): void {
    if (this.gone) return;
    if (this.socket.isPaused()) this.socket.resume();
    if (this.buf === null) this.waitIdle();
    else process.nextTick(nextLater, this);
  }

  private waitIdle(): void {
    this.wait = Wait.Idle;
    this.deadline.set(this.lane.options.keepAliveTimeoutMs);
  }

  private expired(): void {
    if (this.socket.destroyed) return;
    if (this.wait === Wait.Body) {
      // The body did not arrive within the request timeout: the exchange is answered 408 (or cut),
      // the model's request aborted; the rest of an answered one's: the connection closes.
      this.gone = true;
      this.abortBody('the request body was not received in time');
      const res = this.res;
      if (res !== undefined) this.lane.options.timedOut(this.socket, res);
      else this.socket.destroySoon();
    } else if (this.wait === Wait.Request) {
      this.gone = true;
      this.lane.options.timedOut(this.socket);
    } else if (this.wait === Wait.Idle) this.socket.destroy();
  }

  /** Give the connection to `node:http` at the current request's first byte. */
  private handOff(reason: HandOffReason): void {
    this.gone = true;
    this.deadline.clear();
    this.lane.forget(this);
    const socket = this.socket;
    socket.off('data', this.onData);
    socket.off('close', this.onClose);
    socket.pause();
    const rest = this.buf === null ? null : this.buf.subarray(this.at);
    this.buf = null;
    if (rest !== null && rest.length > 0) socket.unshift(rest);
    this.lane.options.handOff(socket, reason);
    socket.resume();
  }

  /** Shutting down: an idle connection closes now, a busy one after its answer (which says so). */
  close(): void {
    if (this.idle) {
      this.gone = true;
      this.socket.destroySoon();
    }
  }

  private readonly onClose = (): void => {
    this.gone = true;
    this.deadline.clear();
    this.lane.forget(this);
    this.abortBody('the client closed the connection before the request body ended');
    const res = this.res;
    this.res = undefined;
    res?.emitClose();
  };
}

const EMPTY = Buffer.alloc(0);

function nextLater(c: LaneConnection): void {
  c.next();
}

export class Http1Lane {
  private readonly connections = new Set<LaneConnection>();
  /** Shutting down: answers say `Connection: close`. */
  closing = false;

  constructor(readonly options: LaneOptions) {}

  /** Serve a connection whose first bytes are back on the socket (the listener sniffed them). */
  connection(socket: Socket): void {
    this.connections.add(new LaneConnection(this, socket));
  }

  forget(c: LaneConnection): void {
    this.connections.delete(c);
  }

  /** Graceful shutdown: from now on every answer closes its connection; idle ones close now. */
  drain(): void {
    this.closing = true;
    this.closeIdle();
  }

  closeIdle(): void {
    for (const c of this.connections) c.close();
  }

  get size(): number {
    return this.connections.size;
  }
}
