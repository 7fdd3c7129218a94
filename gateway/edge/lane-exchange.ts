/**
 * The request and the response objects of the gateway's own HTTP/1.1 server side (edge/http1-lane.ts),
 * which the proxy is handed in place of `node:http`'s IncomingMessage and ServerResponse: the head as
 * parsed with its body (whole, or streaming in: edge/lane-body.ts), and an answer written as
 * `node:http` writes it, byte for byte.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { STATUS_CODES } from '../wire/node-http.js';
import type { Socket } from 'node:net';
import type { RestRequest, RestResponse } from './rest-exchange.js';
import { RequestHead } from './http1-request.js';
import type { ForwardInfo } from './http-headers.js';
import { UpstreamFields } from './upstream-fields.js';
import { withServer } from './server-name.js';
import { headerText } from '../observe/request-tap.js';
import { NOT_VALUE_CHAR, putLatin1 as put, TOKEN } from '../wire/http1-syntax.js';
import { CLOSE, CONNECTION, DATE, FRAMED, LENGTH, lengthOf, meaning } from './answer-field-meaning.js';
import { FIELD_STRIDE, NAME_END, NAME_START, VALUE_END, VALUE_START, copyRange, latin1, nameIs } from '../wire/field-lines.js';
import type { AnswerFields } from './answer-fields.js';
import type { RestBody } from '../wire/message-body.js';

/** What an answer needs of its connection (edge/http1-lane.ts). */
export interface LaneOwner {
  readonly socket: Socket;
  /** The keep-alive timeout, told in `Keep-Alive: timeout=N`. */
  readonly keepAliveSeconds: number;
  /** The server is shutting down: answers close their connections. */
  readonly closing: boolean;
  /** The answer in flight ended. */
  answered(res: LaneExchange): void;
}

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

/** How `node:http` combines a repeated field into `headers` (edge/rest-exchange.ts `RestRequest.field`). */
function combined(name: string, had: string | undefined, value: string): string {
  if (had === undefined) return value;
  if (FIRST_ONLY.has(name)) return had;
  return `${had}${name === 'cookie' ? '; ' : ', '}${value}`;
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

/** One header field, checked as `node:http` checks it (it throws the same codes). */
function checkHeader(name: string, value: string): void {
  if (!TOKEN.test(name)) throw invalid('ERR_INVALID_HTTP_TOKEN', `header name ${JSON.stringify(name)}`);
  if (NOT_VALUE_CHAR.test(value)) throw invalid('ERR_INVALID_CHAR', `character in header content ${JSON.stringify(name)}`);
}

/** A Content-Length body up to this size is gathered behind its head in one buffer (larger: head, then the body as it comes). */
const GATHER_BYTES = 64 * 1024;

/** The `Connection: keep-alive` and `Keep-Alive` lines for a timeout, made once per value. */
let keepAliveSeconds = -1;
let keepAliveLines = '';
function keepAlive(seconds: number): string {
  if (seconds !== keepAliveSeconds) {
    keepAliveSeconds = seconds;
    keepAliveLines = `Connection: keep-alive\r\nKeep-Alive: timeout=${seconds}\r\n`;
  }
  return keepAliveLines;
}

type Listener = (this: unknown) => void;

const TE_CHUNKED = 'Transfer-Encoding: chunked\r\n';

/**
 * Pending pieces up to this size are joined into one buffer for their write; larger ones are written
 * as they are, corked into one writev: copying the first 64 KiB chunk of a large answer behind its head
 * was that answer's one copy (load/README.md, large).
 */
const COPY_PENDING_BYTES = 16 * 1024;

/**
 * One request the lane read and its answer: the request as parsed (its head over the bytes it came
 * in, edge/http1-request.ts, and its whole body) and the answer written as `node:http` writes
 * ServerResponse's, in one object (the proxy is handed it as both halves of the exchange).
 *
 * The head is kept until the first body bytes or the end, so that a whole answer (head and a
 * body read in one piece) leaves in one socket write. The head is encoded into a buffer as it is
 * given, with room behind it for a Content-Length body of up to GATHER_BYTES: a head built as a
 * string (a `+=` per header, copied again into the write's buffer) left about 1 KB of intermediate
 * strings per REST answer (`npm run bench -- alloc`).
 *
 * Its framing never lies to the client: a 204's or 304's body is not sent (as `node:http` drops
 * it), and an answer given a Content-Length that its body would overrun or fall short of is cut
 * instead (the client would read the next answer as the rest of this one, or this one's rest as
 * the next). The proxy gives only lengths that hold (docs/routing.md#answer-framing); this is the
 * last guard.
 */
export class LaneExchange extends RequestHead implements RestRequest, RestResponse {
  // ---- the request ----
  readonly httpVersion = '1.1';
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor = 1;
  /** The whole request has been received: at once for a body read whole, at its end for one that streams (edge/lane-body.ts). */
  complete = true;
  /** The body, whole (null: none) or streaming in; set with the connection (`serve`). */
  body: RestBody = null;
  socket!: Socket;
  private connection!: LaneOwner;
  private built: IncomingHttpHeaders | undefined;

  // ---- the answer ----
  statusCode = 200;
  headersSent = false;
  /** As `node:http`'s, false for the edge's own refusals (edge/http1-edge.ts); true on the prototype: no slot per exchange. */
  declare sendDate: boolean;
  destroyed = false;
  /** Body bytes sent (without chunk framing). */
  bodyBytes = 0;
  private ended = false;
  private chunked = false;
  /** The status has no body (204, 304, 1xx): writes are dropped. */
  private bodiless = false;
  /** The Content-Length the head was given (-1: none). */
  private declared = -1;
  /** The head and the body gathered behind it (a Content-Length body of up to GATHER_BYTES), not written yet; `gathered` bytes of it filled. */
  private gather: Buffer | null = null;
  private gathered = 0;
  /** Otherwise the head and body pieces not written yet (until the end, or the next tick). */
  private pending: (string | Buffer)[] | null = null;
  private flushQueued = false;
  /** 'close' listeners: the first (usually the only one: the exchange's) in a field, any others after it. */
  private closeListener: Listener | null = null;
  private closeListeners: Listener[] | null = null;
  private closed = false;
  /** The connection closes after this answer. */
  last = false;
  /** The Module's `server_name` (edge/server-name.ts): set only when there is one (declared: no slot otherwise). */
  declare serverName: string | undefined;

  /** When its first byte was read (performance.now() ms). */
  arrivedAt = 0;

  /** The lane serves it: its connection, socket and body, and when its first byte was read. */
  serve(connection: LaneOwner, body: RestBody, arrivedAt: number): this {
    this.connection = connection;
    this.socket = connection.socket;
    this.body = body;
    this.last = this.close;
    this.arrivedAt = arrivedAt;
    return this;
  }

  get url(): string {
    return this.target;
  }

  get connectionKey(): object {
    return this.socket;
  }

  /** The headers by lower-case name, combined as `node:http` combines them (built when first read). */
  get headers(): IncomingHttpHeaders {
    if (this.built !== undefined) return this.built;
    const h: Record<string, string | string[]> = {};
    const f = this.fields;
    const buf = this.buf;
    for (let i = 0; i < f.length; i += FIELD_STRIDE) {
      const name = latin1(buf, f[i + NAME_START]!, f[i + NAME_END]!).toLowerCase();
      const value = latin1(buf, f[i + VALUE_START]!, f[i + VALUE_END]!);
      const had = h[name];
      if (name === 'set-cookie') {
        if (had === undefined) h[name] = [value];
        else (had as string[]).push(value);
      } else h[name] = combined(name, had as string | undefined, value);
    }
    return (this.built = h as IncomingHttpHeaders);
  }

  field(name: string): string | undefined {
    if (this.built !== undefined) return headerText(this.built[name]);
    const f = this.fields;
    const buf = this.buf;
    let value: string | undefined;
    for (let i = 0; i < f.length; i += FIELD_STRIDE) {
      if (f[i + NAME_END]! - f[i + NAME_START]! !== name.length || !nameIs(buf, f[i + NAME_START]!, f[i + NAME_END]!, name)) continue;
      const v = latin1(buf, f[i + VALUE_START]!, f[i + VALUE_END]!);
      // set-cookie is a list in `headers`, read as one text joined with ', ' (as every other).
      value = name === 'set-cookie' ? (value === undefined ? v : `${value}, ${v}`) : combined(name, value, v);
      if (value !== undefined && FIRST_ONLY.has(name)) return value;
    }
    return value;
  }

  upstreamFields(info: ForwardInfo): UpstreamFields {
    return UpstreamFields.ofHead(this, info);
  }

  writeHead(status: number, reason?: string | OutgoingHttpHeaders | readonly string[], headers?: OutgoingHttpHeaders | readonly string[]): this {
    let text: string;
    if (typeof reason === 'string') text = reason;
    else {
      headers = reason;
      text = STATUS_CODES[status] ?? 'unknown';
    }
    let pairs: readonly string[];
    if (Array.isArray(headers)) pairs = headers as readonly string[];
    else {
      const flat: string[] = [];
      if (headers !== undefined) {
        for (const name of Object.keys(headers)) {
          const value = (headers as OutgoingHttpHeaders)[name];
          if (value === undefined) continue;
          for (const v of Array.isArray(value) ? value : [value]) flat.push(name, String(v));
        }
      }
      pairs = flat;
    }
    return this.head(status, text, undefined, pairs);
  }

  writeAnswerHead(status: number, fields: AnswerFields, reason?: string): this {
    // The model's head written from its bytes (its reason phrase too, unless another is given); a Server field of its own to replace: as a list.
    if (fields.fast && (this.serverName === undefined || fields.get('server') === undefined)) return this.head(status, reason ?? null, fields, fields.added);
    return this.head(status, reason ?? fields.head!.reason, undefined, fields.list());
  }

  /**
   * Encode the head: the status line (`text`, or null: the model's own reason, from `fields`), the
   * model's fields as they came (`fields`, the fast form) and then `pairs`, then what the server
   * adds (Date, Connection, Keep-Alive, Transfer-Encoding). First the checks, what the fields say and
   * the head's size; then the head is encoded, with room for a small body behind it.
   */
  private head(status: number, text: string | null, fields: AnswerFields | undefined, pairs: readonly string[]): this {
    if (this.headersSent) throw invalid('ERR_HTTP_HEADERS_SENT', 'writeHead after the head was sent');
    const server = this.serverName;
    if (server !== undefined) pairs = withServer(pairs, server) as string[];
    if (text !== null && NOT_VALUE_CHAR.test(text)) throw invalid('ERR_INVALID_CHAR', 'character in statusMessage');
    // Shutting down since the request came in: this answer closes its connection too.
    if (this.connection.closing) this.last = true;
    const statusText = String(status);
    const model = fields?.head;
    let size = 12 + statusText.length + (text !== null ? text.length : model!.reasonEnd - model!.reasonStart);
    let seen = 0;
    let declared = -1;
    if (fields !== undefined) {
      // The model's fields passed its parser's checks; what they say: a Date, and a length when one goes on.
      size += fields.fieldBytes;
      if (fields.hasDate) seen |= DATE;
      if (model!.length >= 0) {
        seen |= FRAMED | LENGTH;
        declared = model!.length;
      }
    }
    for (let i = 0; i < pairs.length; i += 2) {
      const name = pairs[i]!;
      const value = String(pairs[i + 1]);
      checkHeader(name, value);
      size += name.length + value.length + 4;
      const m = meaning(name, value);
      if ((m & LENGTH) !== 0) declared = lengthOf(value);
      seen |= m;
    }
    if ((seen & CLOSE) !== 0) this.last = true;
    const date = (seen & DATE) === 0 && this.sendDate ? httpDate() : undefined;
    const connection = (seen & CONNECTION) !== 0 ? undefined : this.last ? 'Connection: close\r\n' : keepAlive(this.connection.keepAliveSeconds);
    const bodiless = status === 204 || status === 304 || (status >= 100 && status < 200);
    const chunked = (seen & FRAMED) === 0 && !bodiless;
    if (date !== undefined) size += date.length + 8;
    if (connection !== undefined) size += connection.length;
    if (chunked) size += TE_CHUNKED.length;
    size += 2;
    this.chunked = chunked;
    this.bodiless = bodiless;
    this.declared = bodiless ? -1 : declared;
    const gather = this.declared > 0 && this.declared <= GATHER_BYTES;
    const out = Buffer.allocUnsafe(gather ? size + this.declared : size);
    let at = put(out, 0, 'HTTP/1.1 ');
    at = put(out, at, statusText);
    out[at++] = 32;
    at = text !== null ? put(out, at, text) : copyRange(model!.buf, model!.reasonStart, model!.reasonEnd, out, at);
    out[at++] = 13;
    out[at++] = 10;
    if (fields !== undefined) at = fields.writeFields(out, at);
    for (let i = 0; i < pairs.length; i += 2) {
      at = put(out, at, pairs[i]!);
      out[at++] = 58;
      out[at++] = 32;
      at = put(out, at, String(pairs[i + 1]));
      out[at++] = 13;
      out[at++] = 10;
    }
    if (date !== undefined) at = put(out, put(out, put(out, at, 'Date: '), date), '\r\n');
    if (connection !== undefined) at = put(out, at, connection);
    if (chunked) at = put(out, at, TE_CHUNKED);
    out[at++] = 13;
    out[at++] = 10;
    this.statusCode = status;
    this.headersSent = true;
    if (gather) {
      this.gather = out;
      this.gathered = at;
    } else this.pending = [out];
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
    const gather = this.gather;
    if (gather !== null) {
      data.copy(gather, this.gathered);
      this.gathered += data.length;
      // Whole (its Content-Length reached): it leaves now, in one write, with no tick to wait for
      // an end that can add nothing. Otherwise what came in this tick leaves at the next.
      if (this.bodyBytes === this.declared) this.flush();
      else if (!this.flushQueued) {
        this.flushQueued = true;
        process.nextTick(flushLater, this);
      }
      return true;
    }
    const pending = this.pending;
    if (pending !== null) {
      if (this.chunked) pending.push(`${data.length.toString(16)}\r\n`, data, '\r\n');
      else pending.push(data);
      if (this.bodyBytes === this.declared) {
        // The whole answer is here (its Content-Length is reached): it leaves now, in one write,
        // with no tick to wait for an end that can add nothing (a nextTick per REST answer saved).
        this.flush();
      } else if (!this.flushQueued) {
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

  holdsWrites(): boolean {
    return this.pending !== null || this.connection.socket.writableLength > 0;
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
    // Once the answer is whole its connection is no longer the exchange's to cut, as `node:http`
    // detaches a finished ServerResponse from its socket: a refusal answered on this exchange (a
    // malformed chunked body's 400) must reach the client even when the upstream attempt fails after it.
    if (this.destroyed || this.ended) return;
    this.destroyed = true;
    this.flush();
    this.connection.socket.destroy();
  }

  once(event: 'close' | 'drain', listener: Listener): this {
    if (event === 'drain') this.connection.socket.once('drain', listener);
    else if (this.closed) process.nextTick(callOn, listener, this);
    else if (this.closeListener === null) this.closeListener = listener;
    else (this.closeListeners ??= []).push(listener);
    return this;
  }

  /** Write what is pending, in one socket write. */
  flush(): void {
    const gather = this.gather;
    if (gather !== null) {
      this.gather = null;
      const socket = this.connection.socket;
      if (!socket.destroyed) socket.write(this.gathered === gather.length ? gather : gather.subarray(0, this.gathered));
      return;
    }
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
    if (size > COPY_PENDING_BYTES) {
      // A large piece (a model's body chunk behind the head) goes as it is, in one writev: no copy.
      socket.cork();
      for (const p of pending) {
        if (typeof p === 'string') socket.write(p, 'latin1');
        else socket.write(p);
      }
      socket.uncork();
      return;
    }
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    for (const p of pending) at += typeof p === 'string' ? out.write(p, at, 'latin1') : p.copy(out, at);
    socket.write(out);
  }

  /** The answer ended, or its connection closed first: once. */
  emitClose(): void {
    if (this.closed) return;
    this.closed = true;
    const first = this.closeListener;
    const listeners = this.closeListeners;
    this.closeListener = null;
    this.closeListeners = null;
    // Called on this answer, as an emitter calls its listeners (a shared listener finds its exchange on it).
    if (first !== null) first.call(this);
    if (listeners !== null) for (const l of listeners) l.call(this);
  }
}

LaneExchange.prototype.sendDate = true;

function flushLater(res: LaneExchange): void {
  res.flush();
}

function closeLater(res: LaneExchange): void {
  res.emitClose();
}

function callOn(listener: Listener, res: LaneExchange): void {
  listener.call(res);
}
