/**
 * The gateway's own HTTP/1.1 server side for the hot path ("the lane"), in front of `node:http`.
 *
 * Why: `node:http`'s server side (its streams, IncomingMessage and ServerResponse objects, their
 * events and its corked writes) cost as much CPU per proxied request as all of the gateway's own
 * work together (load/README.md, "The public side is the lever left"). The lane reads a request
 * head with a strict parser (edge/http1-request.ts), takes the whole body from the socket's
 * reads, hands the proxy a `LaneRequest` and a `LaneResponse` (its adapter of the REST exchange,
 * edge/exchange.ts) in place of Node's two objects, and writes each answer in one socket write
 * when it can.
 *
 * What it serves, and what it leaves: it takes a connection from the listener and serves its
 * requests while each one is of the simple shape the parser recognises, has a body of at most
 * `maxBodyBytes` (read whole before it is served, as nginx buffers small bodies) and goes to the
 * proxy or the OAuth front end (`route`). At the first request that is not (a malformed one, chunked, `Expect`,
 * HTTP/1.0, HEAD, a larger body, the gateway's own routes), it gives the connection to
 * `node:http` at that request's first byte, unread: from there `node:http` serves it as it
 * always has, parse errors and their answers included. Nothing is read twice or lost.
 *
 * Its answers are framed as `node:http` frames them, byte for byte: the given headers in order,
 * then `Date`, then `Connection: keep-alive` and `Keep-Alive: timeout=N` (or `Connection:
 * close`), then `Transfer-Encoding: chunked` when there is no Content-Length
 * (test/gateway/edge/http1-lane.test.ts compares the two). Its timeouts are the server's: the keep-alive
 * timeout between requests, --client-header-timeout for a head and --client-request-timeout for a
 * whole request (answered 408 as `node:http`'s are, by `timedOut`).
 */
import { STATUS_CODES, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Deadline } from './deadline.js';
import type { RestRequest, RestResponse } from './exchange.js';
import { MORE, OTHER, parseRequestHead, type HeadLimits, type RequestHead } from './http1-request.js';
import { lists, NOT_VALUE_CHAR, TOKEN } from '../wire/http1-syntax.js';
import { lingeringClose } from './lingering-close.js';

export interface LaneOptions extends HeadLimits {
  /** The largest body the lane reads whole before serving (larger: `node:http` streams it). */
  readonly maxBodyBytes: number;
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
  /** A request was not received within its timeout: answer it (408) and close. */
  timedOut(socket: Socket): void;
}

/** Serves one request the lane read. */
export type LaneHandler = (req: LaneRequest, res: LaneResponse) => void;

/** Why a connection went to `node:http` (seldon_gateway_http1_handoffs_total). */
export type HandOffReason = 'request_shape' | 'large_body' | 'gateway_route';

/**
 * Header fields `node:http` keeps only the first of in `headers` (its `matchKnownFields`); the
 * others repeated are joined with `, ` (`cookie` with `; `, `set-cookie` kept as a list).
 */
const FIRST_ONLY = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

/** A request the lane read: its head as parsed and its whole body. */
export class LaneRequest implements RestRequest {
  readonly httpVersion = '1.1';
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor = 1;
  /** The body arrived whole before the request was served. */
  readonly complete = true;
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: string[];
  /** The Host header (exactly one: the parser says so). */
  readonly host: string;
  private built: IncomingHttpHeaders | undefined;

  constructor(
    head: RequestHead,
    /** The body (null: none). */
    readonly body: Buffer | null,
    readonly socket: Socket,
  ) {
    this.method = head.method;
    this.url = head.target;
    this.rawHeaders = head.rawHeaders;
    this.host = head.host;
  }

  /** The headers by lower-case name, combined as `node:http` combines them (built when first read). */
  get headers(): IncomingHttpHeaders {
    if (this.built !== undefined) return this.built;
    const h: Record<string, string | string[]> = {};
    const raw = this.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      const value = raw[i + 1]!;
      const had = h[name];
      if (had === undefined) h[name] = name === 'set-cookie' ? [value] : value;
      else if (name === 'set-cookie') (had as string[]).push(value);
      else if (!FIRST_ONLY.has(name)) h[name] = `${had as string}${name === 'cookie' ? '; ' : ', '}${value}`;
    }
    return (this.built = h as IncomingHttpHeaders);
  }
}

/** An HTTP date, as `node:http` writes it, made at most once a second. */
let dateSecond = 0;
let dateText = '';
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/** A header error as `node:http` throws it (the proxy falls back on the standard reason phrase, then a 502). */
function invalid(code: string, what: string): Error {
  return Object.assign(new TypeError(`Invalid ${what}`), { code });
}

/** One header line, checked as `node:http` checks it (it throws the same codes). */
function headerLine(name: string, value: string): string {
  if (!TOKEN.test(name)) throw invalid('ERR_INVALID_HTTP_TOKEN', `header name ${JSON.stringify(name)}`);
  if (NOT_VALUE_CHAR.test(value)) throw invalid('ERR_INVALID_CHAR', `character in header content ${JSON.stringify(name)}`);
  return `${name}: ${value}\r\n`;
}

/** What the answer's own fields already say, of what the server would add. */
const DATE = 1;
const CONNECTION = 2;
const CLOSE = 4;
const FRAMED = 8;
const LENGTH = 16;
function meaning(name: string, value: string): number {
  switch (name.length) {
    case 4:
      return name.toLowerCase() === 'date' ? DATE : 0;
    case 10:
      return name.toLowerCase() !== 'connection' ? 0 : lists(value, 'close') ? CONNECTION | CLOSE : CONNECTION;
    case 14:
      return name.toLowerCase() === 'content-length' ? FRAMED | LENGTH : 0;
    case 17:
      return name.toLowerCase() === 'transfer-encoding' ? FRAMED : 0;
    default:
      return 0;
  }
}

/** A Content-Length value as a number (-1: not one plain decimal). */
function lengthOf(value: string): number {
  return /^\d{1,15}$/.test(value) ? Number(value) : -1;
}

type Listener = () => void;

/**
 * The answer to one `LaneRequest`, written as `node:http` writes ServerResponse's.
 * The head is kept until the first body bytes or the end, so that a whole answer (head and a
 * body read in one piece) leaves in one socket write.
 *
 * Its framing never lies to the client: a 204's or 304's body is not sent (as `node:http` drops
 * it), and an answer given a Content-Length that its body would overrun or fall short of is cut
 * instead (the client would read the next answer as the rest of this one, or this one's rest as
 * the next). The proxy gives only lengths that hold (docs/routing.md#answer-framing); this is the
 * last guard.
 */
export class LaneResponse implements RestResponse {
  statusCode = 200;
  headersSent = false;
  destroyed = false;
  /** Body bytes sent (without chunk framing). */
  bodyBytes = 0;
  private ended = false;
  private chunked = false;
  /** The status has no body (204, 304, 1xx): writes are dropped. */
  private bodiless = false;
  /** The Content-Length the head was given (-1: none). */
  private declared = -1;
  /** Head and body pieces not written yet (until the end, or the next tick). */
  private pending: (string | Buffer)[] | null = null;
  private flushQueued = false;
  private closeListeners: Listener[] | null = null;
  private closed = false;
  /** The connection closes after this answer. */
  last: boolean;

  constructor(
    private readonly connection: LaneConnection,
    close: boolean,
  ) {
    this.last = close;
  }

  writeHead(status: number, reason?: string | OutgoingHttpHeaders | readonly string[], headers?: OutgoingHttpHeaders | readonly string[]): this {
    if (this.headersSent) throw invalid('ERR_HTTP_HEADERS_SENT', 'writeHead after the head was sent');
    let text: string;
    if (typeof reason === 'string') text = reason;
    else {
      headers = reason;
      text = STATUS_CODES[status] ?? 'unknown';
    }
    if (NOT_VALUE_CHAR.test(text)) throw invalid('ERR_INVALID_CHAR', 'character in statusMessage');
    // Shutting down since the request came in: this answer closes its connection too.
    if (this.connection.closing) this.last = true;
    let head = `HTTP/1.1 ${status} ${text}\r\n`;
    let seen = 0;
    let declared = -1;
    if (Array.isArray(headers)) {
      for (let i = 0; i < headers.length; i += 2) {
        const name = headers[i] as string;
        const value = String(headers[i + 1]);
        head += headerLine(name, value);
        const m = meaning(name, value);
        if ((m & LENGTH) !== 0) declared = lengthOf(value);
        seen |= m;
      }
    } else if (headers !== undefined) {
      for (const name of Object.keys(headers)) {
        const value = (headers as OutgoingHttpHeaders)[name];
        if (value === undefined) continue;
        for (const v of Array.isArray(value) ? value : [value]) {
          const text = String(v);
          head += headerLine(name, text);
          const m = meaning(name, text);
          if ((m & LENGTH) !== 0) declared = lengthOf(text);
          seen |= m;
        }
      }
    }
    if ((seen & CLOSE) !== 0) this.last = true;
    const date = (seen & DATE) !== 0;
    const connection = (seen & CONNECTION) !== 0;
    const framed = (seen & FRAMED) !== 0;
    if (!date) head += `Date: ${httpDate()}\r\n`;
    if (!connection) head += this.last ? 'Connection: close\r\n' : `Connection: keep-alive\r\nKeep-Alive: timeout=${this.connection.keepAliveSeconds}\r\n`;
    const bodiless = status === 204 || status === 304 || (status >= 100 && status < 200);
    if (!framed && !bodiless) {
      this.chunked = true;
      head += 'Transfer-Encoding: chunked\r\n';
    }
    this.bodiless = bodiless;
    this.declared = bodiless ? -1 : declared;
    this.statusCode = status;
    this.headersSent = true;
    this.pending = [`${head}\r\n`];
    return this;
  }

  write(chunk: Buffer | string): boolean {
    if (this.ended || this.destroyed) return false;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (data.length === 0 || this.bodiless) return true;
    if (this.declared >= 0 && this.bodyBytes + data.length > this.declared) {
      this.destroy();
      return false;
    }
    this.bodyBytes += data.length;
    const pending = this.pending;
    if (pending !== null) {
      if (this.chunked) pending.push(`${data.length.toString(16)}\r\n`, data, '\r\n');
      else pending.push(data);
      if (!this.flushQueued) {
        this.flushQueued = true;
        process.nextTick(flushLater, this);
      }
      return true;
    }
    const socket = this.connection.socket;
    if (!this.chunked) return socket.write(data);
    socket.cork();
    socket.write(`${data.length.toString(16)}\r\n`, 'latin1');
    socket.write(data);
    const ok = socket.write('\r\n', 'latin1');
    socket.uncork();
    return ok;
  }

  end(chunk?: Buffer | string): this {
    if (this.ended || this.destroyed) return this;
    if (chunk !== undefined) this.write(chunk);
    else if (!this.headersSent) this.writeHead(this.statusCode);
    if (this.destroyed) return this;
    if (this.bodyBytes < this.declared) {
      this.destroy();
      return this;
    }
    this.ended = true;
    if (this.chunked) (this.pending ??= []).push('0\r\n\r\n');
    this.flush();
    this.connection.answered(this);
    process.nextTick(closeLater, this);
    return this;
  }

  /** The whole answer has been written (as ServerResponse's). */
  get writableEnded(): boolean {
    return this.ended;
  }

  /**
   * Cut the connection (the answer cannot be completed). What was written goes out first, as
   * `node:http` writes it at once: the client reads an answer cut short (its framing says so),
   * never a connection closed with nothing, which a client may take as unanswered and send again.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.flush();
    this.connection.socket.destroy();
  }

  once(event: 'close' | 'drain', listener: Listener): this {
    if (event === 'drain') this.connection.socket.once('drain', listener);
    else if (this.closed) process.nextTick(listener);
    else (this.closeListeners ??= []).push(listener);
    return this;
  }

  /** Write what is pending, in one socket write. */
  flush(): void {
    const pending = this.pending;
    if (pending === null) return;
    this.pending = null;
    const socket = this.connection.socket;
    if (socket.destroyed) return;
    if (pending.length === 1) {
      const only = pending[0]!;
      if (typeof only === 'string') socket.write(only, 'latin1');
      else socket.write(only);
      return;
    }
    let size = 0;
    // A latin1 string has as many bytes as characters.
    for (const p of pending) size += p.length;
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    for (const p of pending) at += typeof p === 'string' ? out.write(p, at, 'latin1') : p.copy(out, at);
    socket.write(out);
  }

  /** The answer ended, or its connection closed first: once. */
  emitClose(): void {
    if (this.closed) return;
    this.closed = true;
    const listeners = this.closeListeners;
    this.closeListeners = null;
    if (listeners !== null) for (const l of listeners) l();
  }
}

function flushLater(res: LaneResponse): void {
  res.flush();
}

function closeLater(res: LaneResponse): void {
  res.emitClose();
}

/** Bytes read ahead of the request in flight (pipelined) before the lane stops reading the socket. */
const READ_AHEAD_BYTES = 1024 * 1024;

const enum Wait {
  /** Between requests: the keep-alive timeout. */
  Idle,
  /** Part of a request is here: its head and body timeouts. */
  Request,
  /** A request is being served: no timeout of the lane's (the route's own apply). */
  Serving,
}

class LaneConnection {
  /** Bytes read and not yet served, from `at`. */
  private buf: Buffer | null = null;
  private at = 0;
  private res: LaneResponse | undefined;
  private wait = Wait.Idle;
  /** When the request being received started (its first byte), in performance.now() ms. */
  private started = 0;
  private readonly deadline: Deadline;
  readonly keepAliveSeconds: number;
  private gone = false;
  /** Answers are waiting in the socket's buffer for the client to read them. */
  private unread = false;

  constructor(
    private readonly lane: Http1Lane,
    readonly socket: Socket,
  ) {
    this.keepAliveSeconds = Math.floor(lane.options.keepAliveTimeoutMs / 1000);
    this.deadline = new Deadline(() => this.expired());
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.once('close', this.onClose);
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
      this.started = performance.now();
      this.deadline.set(this.lane.options.headerTimeoutMs);
    }
    const options = this.lane.options;
    const head = parseRequestHead(buf, this.at, options);
    if (head === MORE) return;
    if (head === OTHER) return this.handOff('request_shape');
    if (head.contentLength > options.maxBodyBytes) return this.handOff('large_body');
    const handler = options.route(head.target);
    if (handler === undefined) return this.handOff('gateway_route');
    const end = this.at + head.size + head.contentLength;
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
    const res = new LaneResponse(this, head.close);
    this.res = res;
    handler(new LaneRequest(head, body, this.socket), res);
  }

  /** The answer in flight ended: close the connection, or go on to the next request. */
  answered(res: LaneResponse): void {
    if (this.res !== res) return;
    this.res = undefined;
    if (res.last) {
      this.gone = true;
      // The answer goes out, then what the client may still send is read and dropped for a while
      // (closed at once, the client's system could drop the answer unread).
      lingeringClose(this.socket);
      return;
    }
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
    if (this.wait === Wait.Request) {
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
    const res = this.res;
    this.res = undefined;
    res?.emitClose();
  };
}

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
