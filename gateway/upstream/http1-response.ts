/**
 * The HTTP/1.1 response parser of the upstream client (http1-client.ts): bytes in, a head and
 * body slices out. No I/O; one parser per connection, reset for each request.
 *
 * Strict by design (RFC 9112): this parses answers from the gateway's own upstreams, and an
 * answer it cannot frame exactly is refused (a 502 for the client), never guessed at.
 * - Head: status line `HTTP/1.x SSS [reason]`, then `name: value` lines ending in CRLF; a name
 *   must be a token, a value has no control character but HTAB (obs-fold, bare LF, a space
 *   before the colon: refused). Status line and headers together at most `maxHeadBytes`.
 * - Interim answers (1xx) are skipped; a 101 is refused (the gateway asks for no upgrade).
 * - Body length (RFC 9112 §6.3): none after HEAD, 204 and 304; else chunked when
 *   Transfer-Encoding is present; else Content-Length (one field, digits); else until close.
 *   A bodiless answer whose head announces a body (Content-Length over 0, Transfer-Encoding)
 *   ends its connection: what the model sends after it is no answer to a next request.
 * - Transfer-Encoding (on any answer, bodiless ones too) must be exactly `chunked`, in an HTTP/1.1 answer:
 *   any other coding (`gzip, chunked`, `identity`, `gzip`, chunked twice) is refused, since the
 *   gateway decodes chunked only and would pass the rest on unlabelled (nginx ≥ 1.23 and
 *   haproxy refuse them too), and an HTTP/1.0 answer with it has faulty framing (RFC 9112 §6.1).
 *   With Content-Length beside it, the answer is refused (§6.3 item 3: "ought to be handled as an error").
 * - The head reports `length`, the only Content-Length the gateway may pass on (docs/routing.md,
 *   "Answer framing"); the model's own Content-Length fields are never forwarded as they are.
 * - Chunked: hex size (leading zeros ignored, at most 2^52, no whitespace after it), extensions
 *   read to their grammar (`;name[=token|"quoted"]`, no whitespace, as llhttp) and dropped, trailers read and dropped
 *   (bounded by `maxHeadBytes`).
 * Body slices share the socket's buffers (no copy).
 */

import { HEADER_BLOCK, headEnd, isStatusLine, lists } from '../wire/http1-syntax.js';
import { FIELD_STRIDE, KIND, NAME_END, NAME_START, VALUE_END, VALUE_START, latin1, lengthDigits, nameIs, parseFieldLines } from '../wire/field-lines.js';
import { ANSWER_CONTENT_LENGTH, ANSWER_HOP, ResponseHead } from '../wire/response-head.js';
import { KEEP_ALIVE, answerKind, keepAliveHint, namesFields } from './answer-head-fields.js';

export { ResponseHead };

export type ParseFailure = 'UPSTREAM_BAD_RESPONSE' | 'UPSTREAM_HEADERS_OVERFLOW';

export class ResponseParseError extends Error {
  constructor(
    readonly code: ParseFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface ResponseSink {
  onHead(head: ResponseHead): void;
  onBody(chunk: Buffer): void;
  onEnd(): void;
}

const enum Mode {
  Head,
  Length,
  Chunked,
  UntilClose,
  Done,
}

const enum Chunk {
  Size,
  SizeTail,
  /** Chunk extensions (RFC 9112 §7.1.1), read to their grammar as llhttp reads them, and dropped. */
  ExtName,
  ExtNameMore,
  ExtValue,
  ExtToken,
  ExtQuoted,
  ExtEscape,
  ExtQuotedEnd,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerLine,
  TrailerLf,
}

/** Where a trailer line is: nothing yet, its name, its value. */
const enum Trailer {
  Empty,
  Name,
  Value,
}

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
/** The start of a field line: token characters, then perhaps a colon and value characters. */
const PARTIAL_FIELD_LINE = /^[-!#$%&'*+.^_`|~0-9A-Za-z]*(?::[\t\x20-\x7e\x80-\xff]*)?$/;
/** The largest chunk size read (2^52, so sizes stay exact integers). */
const MAX_CHUNK_SIZE = 2 ** 52;
const MAX_EXTENSION_BYTES = 4096;

/** Token characters (RFC 9110 §5.6.2), by byte. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = TCHAR[c + 32] = 1;

/** qdtext and quoted-pair characters of a quoted string (RFC 9110 §5.6.4): HTAB, SP, visible ASCII, obs-text. */
const quotable = (c: number): boolean => c === 9 || (c >= 32 && c !== 127);

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

export class ResponseParser {
  private mode = Mode.Done;
  /** Head bytes received so far when a head spans reads. */
  private partial: Buffer | null = null;
  private noBody = false;
  private remaining = 0;
  private chunkState = Chunk.Size;
  private sizeDigits = 0;
  private extensionBytes = 0;
  private trailerBytes = 0;
  private trailerPart = Trailer.Empty;
  /** The trailer field name being read, lower case (its first 20 characters). */
  private trailerName = '';
  /** The request was abandoned while its answer was being read: parse nothing more. */
  private stopped = false;
  /** The connection may carry another request after this answer. */
  keepAlive = false;
  /** The server's `Keep-Alive: timeout=N`, in ms (0: none given). */
  keepAliveHintMs = 0;
  /** Bytes received after the answer ended (the connection cannot be reused). */
  trailing = false;

  constructor(
    private readonly sink: ResponseSink,
    private readonly maxHeadBytes: number,
  ) {}

  /** Expect the answer to a new request (`head`: a HEAD request, whose answer has no body). */
  expect(head: boolean): void {
    this.mode = Mode.Head;
    this.stopped = false;
    this.partial = null;
    this.noBody = head;
    this.keepAlive = false;
    this.keepAliveHintMs = 0;
    this.trailing = false;
  }

  /** Stop parsing this answer (its request was abandoned); the connection will not be reused. */
  stop(): void {
    this.stopped = true;
    this.mode = Mode.Done;
  }

  get done(): boolean {
    return this.mode === Mode.Done;
  }

  /** True while the body runs until the connection closes (its end is then the answer's end). */
  get untilClose(): boolean {
    return this.mode === Mode.UntilClose;
  }

  /** True while part of a head has arrived (and not the rest). */
  get headStarted(): boolean {
    return this.mode === Mode.Head && this.partial !== null && this.partial.length > 0;
  }

  /** True once a final head was parsed. */
  get headParsed(): boolean {
    return this.mode !== Mode.Head && this.mode !== Mode.Done;
  }

  /** Feed received bytes; throws ResponseParseError on an answer that cannot be framed. */
  execute(data: Buffer): void {
    let buf = data;
    let at = 0;
    while (at < buf.length && !this.stopped) {
      switch (this.mode) {
        case Mode.Head: {
          if (this.partial !== null) {
            buf = Buffer.concat([this.partial, buf.subarray(at)]);
            at = 0;
            this.partial = null;
          }
          const end = headEnd(buf, at);
          if (end < 0) {
            if (buf.length - at > this.maxHeadBytes) throw new ResponseParseError('UPSTREAM_HEADERS_OVERFLOW', `response head over ${this.maxHeadBytes} bytes`);
            this.partialHead(buf, at);
            this.partial = buf.subarray(at);
            return;
          }
          if (end + 4 - at > this.maxHeadBytes) throw new ResponseParseError('UPSTREAM_HEADERS_OVERFLOW', `response head over ${this.maxHeadBytes} bytes`);
          this.head(buf, at, end);
          at = end + 4;
          break;
        }
        case Mode.Length: {
          const take = Math.min(this.remaining, buf.length - at);
          this.remaining -= take;
          const slice = at === 0 && take === buf.length ? buf : buf.subarray(at, at + take);
          at += take;
          this.sink.onBody(slice);
          if (this.remaining === 0 && !this.stopped) this.end();
          break;
        }
        case Mode.Chunked:
          at = this.chunked(buf, at);
          break;
        case Mode.UntilClose:
          this.sink.onBody(at === 0 ? buf : buf.subarray(at));
          return;
        case Mode.Done:
          this.trailing = true;
          return;
      }
    }
  }

  /** The connection closed: that ends an answer that runs until close (any other is cut short). */
  finish(): void {
    if (this.mode === Mode.UntilClose) this.end();
  }

  /**
   * Part of a head: the lines already whole must be right (and no LF bare), so that a model's
   * broken head is refused as it arrives, not when it times out or closes.
   */
  private partialHead(buf: Buffer, at: number): void {
    for (let lf = buf.indexOf(10, at); lf >= 0; lf = buf.indexOf(10, lf + 1)) if (lf === at || buf[lf - 1] !== 13) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'a bare LF in the head');
    const text = buf.toString('latin1', at);
    const last = text.lastIndexOf('\r\n');
    if (last < 0) return;
    // The line coming: a name so far, or a name, a colon and a value so far.
    if (!PARTIAL_FIELD_LINE.test(text.slice(last + 2).replace(/\r$/, ''))) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'invalid header line');
    const eol = text.indexOf('\r\n');
    if (!STATUS_LINE.test(text.slice(0, eol))) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', `invalid status line ${JSON.stringify(text.slice(0, Math.min(eol, 64)))}`);
    if (!HEADER_BLOCK.test(text.slice(eol + 2, last + 2))) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'invalid header line');
  }

  /**
   * Parse a head (status line and header lines, each ending in CRLF, from `at` to the empty line at
   * `end`) and choose the body's framing. One pass over the bytes: the status line by hand
   * (http1-syntax.ts isStatusLine: STATUS_LINE's grammar, which partialHead still uses), the field
   * lines into offsets (wire/field-lines.ts), each given its kind for the client-bound head
   * (wire/response-head.ts); only the values that decide the framing are read as text.
   */
  private head(buf: Buffer, at: number, end: number): void {
    let eol = at;
    while (buf[eol] !== 13) eol++;
    if (buf[eol + 1] !== 10 || !isStatusLine(buf, at, eol)) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', `invalid status line ${JSON.stringify(latin1(buf, at, Math.min(eol, at + 64)))}`);
    const fields = parseFieldLines(buf, eol + 2, end + 2);
    if (fields === null) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'invalid header line');
    const status = (buf[at + 9]! - 48) * 100 + (buf[at + 10]! - 48) * 10 + (buf[at + 11]! - 48);
    const http10 = buf[at + 7] === 48;
    let length = -1;
    let te: string | undefined;
    let connection: string | undefined;
    for (let i = 0; i < fields.length; i += FIELD_STRIDE) {
      const ns = fields[i + NAME_START]!;
      const ne = fields[i + NAME_END]!;
      const kind = answerKind(buf, ns, ne);
      if (kind === 0) continue;
      fields[i + KIND] = kind;
      if (kind !== ANSWER_HOP && kind !== ANSWER_CONTENT_LENGTH) continue;
      const vs = fields[i + VALUE_START]!;
      const ve = fields[i + VALUE_END]!;
      switch (ne - ns) {
        case 14: {
          // One field of digits, as llhttp reads it: a list or a repeat (even of one value) is refused.
          if (length >= 0) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'more than one Content-Length');
          length = lengthDigits(buf, vs, ve);
          if (length < 0) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', `invalid Content-Length ${JSON.stringify(latin1(buf, vs, Math.min(ve, vs + 32)))}`);
          break;
        }
        case 17:
          if (nameIs(buf, ns, ne, 'transfer-encoding')) te = te === undefined ? latin1(buf, vs, ve) : `${te}, ${latin1(buf, vs, ve)}`;
          break;
        case 10:
          if (!nameIs(buf, ns, ne, 'connection')) this.keepAliveHintMs = keepAliveHint(buf, vs, ve);
          // The value nearly every model sends, read without a string; any other, as text.
          else if (connection === undefined && nameIs(buf, vs, ve, 'keep-alive')) connection = KEEP_ALIVE;
          else connection = connection === undefined ? latin1(buf, vs, ve) : `${connection}, ${latin1(buf, vs, ve)}`;
          break;
      }
    }
    if (status < 200) {
      if (status === 101) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'switched protocols, which the gateway did not ask for');
      return; // interim: the final answer follows
    }
    this.keepAlive = connection === undefined ? !http10 : connection === KEEP_ALIVE || (!lists(connection, 'close') && (!http10 || lists(connection, 'keep-alive')));
    const bodiless = this.noBody || status === 204 || status === 304;
    // A bodiless answer whose head announces a body: bytes the model may still send for it would be
    // read as the next request's answer, so the connection is not reused.
    if (bodiless && (length > 0 || te !== undefined)) this.keepAlive = false;
    if (te !== undefined) {
      // Both framings: "ought to be handled as an error" (RFC 9112 §6.3 item 3), and llhttp, Envoy
      // and haproxy refuse it: whatever the model meant, the client gets no guess.
      if (length >= 0) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'both Content-Length and Transfer-Encoding');
      // Judged on a bodiless answer too (HEAD, 204, 304), as llhttp judges it: a head that frames
      // no body it could have had is no head to pass on.
      if (http10) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'Transfer-Encoding in an HTTP/1.0 answer');
      if (te.trim().toLowerCase() !== 'chunked') throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', `Transfer-Encoding ${JSON.stringify(te.slice(0, 64))}: the gateway decodes chunked only`);
    }
    // The length the client may be told (ResponseHead.length): none beside Transfer-Encoding, none on a 204.
    const told = te !== undefined || status === 204 ? -1 : length;
    this.mode = Mode.Length; // the head is parsed: a body may follow (framing set below)
    this.sink.onHead(new ResponseHead(status, buf, eol > at + 12 ? at + 13 : eol, eol, fields, told, connection !== undefined && connection !== KEEP_ALIVE && namesFields(connection)));
    if (this.stopped) return;
    if (bodiless) {
      this.end();
    } else if (te !== undefined) {
      this.mode = Mode.Chunked;
      this.chunkState = Chunk.Size;
      this.remaining = 0;
      this.sizeDigits = 0;
      this.extensionBytes = 0;
      this.trailerBytes = 0;
    } else if (length > 0) {
      this.mode = Mode.Length;
      this.remaining = length;
    } else if (length === 0) {
      this.end();
    } else {
      this.mode = Mode.UntilClose;
      this.keepAlive = false;
    }
  }

  private end(): void {
    this.mode = Mode.Done;
    this.sink.onEnd();
  }

  /** One byte of chunk extensions: `;name[=token|"quoted"]`, repeated, up to the line's CR. */
  private extension(c: number): void {
    const bad = (): never => {
      throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'invalid chunk extension');
    };
    switch (this.chunkState) {
      case Chunk.ExtName:
        if (TCHAR[c] !== 1) bad();
        this.chunkState = Chunk.ExtNameMore;
        return;
      case Chunk.ExtNameMore:
      case Chunk.ExtToken:
        if (TCHAR[c] === 1) return;
        if (c === 59) this.chunkState = Chunk.ExtName;
        else if (c === 13) this.chunkState = Chunk.SizeLf;
        else if (c === 61 && this.chunkState === Chunk.ExtNameMore) this.chunkState = Chunk.ExtValue;
        else bad();
        return;
      case Chunk.ExtValue:
        if (c === 34) this.chunkState = Chunk.ExtQuoted;
        else if (TCHAR[c] === 1) this.chunkState = Chunk.ExtToken;
        else bad();
        return;
      case Chunk.ExtQuoted:
        if (c === 34) this.chunkState = Chunk.ExtQuotedEnd;
        else if (c === 92) this.chunkState = Chunk.ExtEscape;
        else if (!quotable(c)) bad();
        return;
      case Chunk.ExtEscape:
        if (!quotable(c)) bad();
        this.chunkState = Chunk.ExtQuoted;
        return;
      case Chunk.ExtQuotedEnd:
        if (c === 59) this.chunkState = Chunk.ExtName;
        else if (c === 13) this.chunkState = Chunk.SizeLf;
        else bad();
        return;
    }
  }

  /** Decode chunked framing from `at`; returns where it stopped (the end, or just after the last chunk). */
  private chunked(buf: Buffer, at: number): number {
    const len = buf.length;
    let i = at;
    while (i < len) {
      switch (this.chunkState) {
        case Chunk.Size: {
          const c = buf[i]!;
          const h = hexValue(c);
          if (h >= 0) {
            this.sizeDigits++;
            this.remaining = this.remaining * 16 + h;
            // Leading zeros are no size; a size past exact integers (4 PiB) is no body a model sends.
            if (this.remaining > MAX_CHUNK_SIZE) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'chunk size too large');
            i++;
            break;
          }
          if (this.sizeDigits === 0) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'invalid chunk size');
          this.chunkState = Chunk.SizeTail;
          break;
        }
        case Chunk.SizeTail: {
          // The size ends the line, or extensions follow; no whitespace (llhttp, strict).
          const c = buf[i]!;
          if (c === 13) this.chunkState = Chunk.SizeLf;
          else if (c === 59) this.chunkState = Chunk.ExtName;
          else throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'invalid chunk size');
          i++;
          break;
        }
        case Chunk.ExtName:
        case Chunk.ExtNameMore:
        case Chunk.ExtValue:
        case Chunk.ExtToken:
        case Chunk.ExtQuoted:
        case Chunk.ExtEscape:
        case Chunk.ExtQuotedEnd: {
          if (++this.extensionBytes > MAX_EXTENSION_BYTES) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'chunk extensions too long');
          this.extension(buf[i]!);
          i++;
          break;
        }
        case Chunk.SizeLf:
          if (buf[i] !== 10) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'invalid chunk size line');
          i++;
          this.extensionBytes = 0;
          this.sizeDigits = 0;
          if (this.remaining === 0) {
            this.chunkState = Chunk.TrailerLine;
            this.trailerPart = Trailer.Empty;
            this.trailerName = '';
          } else this.chunkState = Chunk.Data;
          break;
        case Chunk.Data: {
          const take = Math.min(this.remaining, len - i);
          this.remaining -= take;
          const slice = buf.subarray(i, i + take);
          i += take;
          if (this.remaining === 0) this.chunkState = Chunk.DataCr;
          this.sink.onBody(slice);
          if (this.stopped) return i;
          break;
        }
        case Chunk.DataCr:
          if (buf[i] !== 13) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'chunk data longer than its size');
          i++;
          this.chunkState = Chunk.DataLf;
          break;
        case Chunk.DataLf:
          if (buf[i] !== 10) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'chunk data longer than its size');
          i++;
          this.chunkState = Chunk.Size;
          break;
        case Chunk.TrailerLine: {
          // Trailer fields, read to the field-line grammar (as the head's) and dropped, up to the
          // head limit; an empty line ends the message.
          const c = buf[i]!;
          i++;
          if (c === 13) {
            if (this.trailerPart === Trailer.Name) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'invalid trailer line');
            this.chunkState = Chunk.TrailerLf;
          } else if (this.trailerPart === Trailer.Value ? !quotable(c) : c === 58 ? this.trailerPart !== Trailer.Name : TCHAR[c] !== 1) {
            throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'invalid trailer line');
          } else if (this.trailerPart !== Trailer.Value) {
            if (c !== 58) {
              this.trailerPart = Trailer.Name;
              if (this.trailerName.length < 20) this.trailerName += String.fromCharCode(c | 0x20);
            } else {
              // A length has no place in a trailer (llhttp refuses it there too; the trailer is dropped either way).
              if (this.trailerName === 'content-length') throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', `${this.trailerName} in the trailer`);
              this.trailerPart = Trailer.Value;
              this.trailerName = '';
            }
          }
          if (++this.trailerBytes > this.maxHeadBytes) throw new ResponseParseError('UPSTREAM_HEADERS_OVERFLOW', `response trailers over ${this.maxHeadBytes} bytes`);
          break;
        }
        case Chunk.TrailerLf:
          if (buf[i] !== 10) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'invalid trailer line');
          i++;
          if (this.trailerPart === Trailer.Empty) {
            this.end();
            return i;
          }
          this.trailerPart = Trailer.Empty;
          this.chunkState = Chunk.TrailerLine;
          break;
      }
    }
    return i;
  }
}
