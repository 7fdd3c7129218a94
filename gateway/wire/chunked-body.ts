/**
 * A chunked request body (RFC 9112 §7.1) decoded as it streams in, for the HTTP/1.1 lane
 * (edge/http1-lane.ts). No I/O, no buffer of its own: each chunk's data goes on as slices of the
 * buffers it is fed (one per chunk per read, as llhttp hands `node:http` its body pieces), and its
 * state is a few numbers, whatever the body's size.
 *
 * It accepts exactly what llhttp, strict as `node:http` runs it, accepts, and fails with llhttp's
 * error code where llhttp fails (the lane answers each as Node's server answers that code,
 * edge/http1-edge.ts), so a chunked body reads the same on both servers
 * (test/gateway/edge/lane-chunked-body.test.ts feeds both the same seeded bytes):
 * - chunk size: hex digits, leading zeros free, at most 16 significant digits (llhttp's unsigned
 *   64 bits); nothing else on the line but `;` extensions: no whitespace, no `0x`, no sign;
 * - extensions: `;name[=value]`, the name a token (empty allowed), the value a token and/or one
 *   quoted string (quoted-pairs of HTAB, SP, VCHAR or obs-text), no whitespace anywhere; their
 *   names and values (quotes included) at most 16 KiB per chunk (Node's kMaxChunkExtensionsSize,
 *   HPE_CHUNK_EXTENSIONS_OVERFLOW, answered 413);
 * - CRLF after the size line and after each chunk's data, never a bare LF or CR;
 * - trailer fields: the head's field syntax (token name, colon at once, value of VCHAR, obs-text,
 *   SP and HTAB), names and values (leading whitespace not counted) under `maxTrailerBytes` in all
 *   (Node's header size limit, HPE_HEADER_OVERFLOW, 431); Content-Length or Transfer-Encoding
 *   among them is an error (as llhttp); `Connection: close` (or Proxy-Connection) ends the
 *   connection after this request (`closes`); every trailer is then dropped, as the gateway drops
 *   Node's (the model's request ends with `0\r\n\r\n`).
 */

/** llhttp's error code for a body it refuses (`node:http` reports it as the error's `code`). */
export class ChunkedBodyError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

/** The code a reader of the decoded data refuses a body with when it is over --max-body (not llhttp's: Node's server has no such limit). */
export const BODY_TOO_LARGE = 'BODY_TOO_LARGE';

/** Where the decoded data goes, one slice at a time. */
export interface ChunkSink {
  chunkData(slice: Buffer): void;
}

/** Node's kMaxChunkExtensionsSize: extension names and values of one chunk, in bytes. */
const MAX_EXTENSION_BYTES = 16 * 1024;

const enum S {
  SizeFirst,
  Size,
  SizeCr,
  SizeLf,
  ExtStart,
  ExtName,
  ExtValue,
  ExtQuoted,
  ExtQuotedPair,
  ExtQuotedDone,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  TrailerName,
  TrailerOws,
  TrailerValue,
  TrailerLf,
  EndLf,
  Done,
}

/** Bytes by class: 1 a token character (RFC 9110 tchar), 2 a field value character (VCHAR, obs-text, SP, HTAB). */
const TCHAR = 1;
const VALUE = 2;
const CLASS = new Uint8Array(256);
for (let c = 0x21; c <= 0xff; c++) if (c !== 0x7f) CLASS[c] = VALUE;
CLASS[0x20] = CLASS[0x09] = VALUE;
for (const c of "!#$%&'*+-.^_`|~") CLASS[c.charCodeAt(0)] = VALUE | TCHAR;
for (let c = 48; c <= 57; c++) CLASS[c] = VALUE | TCHAR;
for (let c = 65; c <= 90; c++) CLASS[c] = CLASS[c + 32] = VALUE | TCHAR;

/** The value of a hex digit, -1 for any other byte. */
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) HEX[65 + c] = HEX[97 + c] = 10 + c;

/** Trailer names the decoder reads (lower case); others are only checked and counted. */
const enum Name {
  Other,
  Connection,
}

export class ChunkedBody {
  private state = S.SizeFirst;
  /** Data bytes left in the current chunk (a float past 2^53: no client sends that much). */
  private left = 0;
  private digits = 0;
  private extensionBytes = 0;
  private trailerBytes = 0;
  /** The trailer field name read so far, lower case, up to 17 characters (the longest it looks for). */
  private name = '';
  private nameKind = Name.Other;
  /** The trailer line being read has an empty value (its CR came in the leading whitespace). */
  private emptyValue = false;
  /** A Connection trailer's value so far (bounded by `maxTrailerBytes`). */
  private connection = '';
  /** A trailer said `Connection: close`: nothing more is read on this connection. */
  closes = false;

  constructor(private readonly maxTrailerBytes: number) {}

  /** The body ended (its last chunk and trailers read). */
  get done(): boolean {
    return this.state === S.Done;
  }

  /**
   * Decode `buf` from `at`: its chunks' data to `sink`; returns where the body ended in `buf` (the
   * next request's first byte), or -1 when it has not ended yet. Throws ChunkedBodyError.
   */
  execute(buf: Buffer, at: number, sink: ChunkSink): number {
    const len = buf.length;
    let i = at;
    while (i < len) {
      const c = buf[i]!;
      switch (this.state) {
        case S.SizeFirst:
          if (HEX[c]! < 0) throw new ChunkedBodyError('HPE_INVALID_CHUNK_SIZE');
          this.left = HEX[c]!;
          this.digits = c === 48 ? 0 : 1;
          this.state = S.Size;
          i++;
          break;
        case S.Size: {
          const h = HEX[c]!;
          if (h >= 0) {
            if (this.digits > 0 || h > 0) this.digits++;
            // llhttp keeps the size in 64 bits unsigned: a 17th significant digit overflows it.
            if (this.digits > 16) throw new ChunkedBodyError('HPE_INVALID_CHUNK_SIZE');
            this.left = this.left * 16 + h;
            i++;
          } else if (c === 13) {
            this.state = S.SizeLf;
            i++;
          } else if (c === 59) {
            this.state = S.ExtStart;
            this.extensionBytes = 0;
            i++;
          } else throw new ChunkedBodyError(c === 10 ? 'HPE_CR_EXPECTED' : 'HPE_INVALID_CHUNK_SIZE');
          break;
        }
        case S.ExtStart:
          // After `;`: a name (maybe empty), never whitespace or the line's end.
          if (c === 32 || c === 13) throw new ChunkedBodyError('HPE_STRICT');
          this.state = S.ExtName;
          break;
        case S.ExtName:
          if ((CLASS[c]! & TCHAR) !== 0) {
            this.extension();
            i++;
          } else if (c === 61 /* = */) {
            this.state = S.ExtValue;
            i++;
          } else i = this.extensionEnd(c, i);
          break;
        case S.ExtValue:
          if ((CLASS[c]! & TCHAR) !== 0) {
            this.extension();
            i++;
          } else if (c === 34 /* " */) {
            this.extension();
            this.state = S.ExtQuoted;
            i++;
          } else i = this.extensionEnd(c, i);
          break;
        case S.ExtQuoted:
          if (c === 34) {
            this.extension();
            this.state = S.ExtQuotedDone;
          } else if (c === 92 /* \ */) {
            this.extension();
            this.state = S.ExtQuotedPair;
          } else if (c === 9 || c === 32 || c === 33 || (c >= 0x23 && c !== 0x7f)) this.extension();
          else throw new ChunkedBodyError('HPE_STRICT');
          i++;
          break;
        case S.ExtQuotedPair:
          if (c !== 9 && (c < 32 || c === 0x7f)) throw new ChunkedBodyError('HPE_STRICT');
          this.extension();
          this.state = S.ExtQuoted;
          i++;
          break;
        case S.ExtQuotedDone:
          if (c === 10) throw new ChunkedBodyError('HPE_CR_EXPECTED');
          if (c !== 59 && c !== 13) throw new ChunkedBodyError('HPE_STRICT');
          i = this.extensionEnd(c, i);
          break;
        case S.SizeLf:
          if (c !== 10) throw new ChunkedBodyError('HPE_STRICT');
          i++;
          if (this.left === 0) {
            this.state = S.TrailerStart;
            this.trailerBytes = 0;
          } else this.state = S.Data;
          break;
        case S.Data: {
          const left = this.left;
          const take = len - i < left ? len - i : left;
          this.left = left - take;
          if (this.left === 0) this.state = S.DataCr;
          sink.chunkData(i === 0 && take === len ? buf : buf.subarray(i, i + take));
          i += take;
          break;
        }
        case S.DataCr:
          if (c !== 13) throw new ChunkedBodyError(c === 10 ? 'HPE_CR_EXPECTED' : 'HPE_STRICT');
          this.state = S.DataLf;
          i++;
          break;
        case S.DataLf:
          if (c !== 10) throw new ChunkedBodyError('HPE_STRICT');
          this.state = S.SizeFirst;
          i++;
          break;
        case S.TrailerStart:
          if (c === 13) this.state = S.EndLf;
          else if ((CLASS[c]! & TCHAR) !== 0) {
            this.name = String.fromCharCode(c | 0x20);
            this.state = S.TrailerName;
            this.trailer();
          } else throw new ChunkedBodyError('HPE_INVALID_HEADER_TOKEN');
          i++;
          break;
        case S.TrailerName:
          if ((CLASS[c]! & TCHAR) !== 0) {
            if (this.name.length < 18) this.name += String.fromCharCode(c | 0x20);
            this.trailer();
          } else if (c === 58 /* : */) {
            this.trailerCheck();
            this.named();
          } else throw new ChunkedBodyError('HPE_INVALID_HEADER_TOKEN');
          i++;
          break;
        case S.TrailerOws:
          // Leading whitespace is no part of the value (nor counted); the value's first byte is read next round.
          if (c === 32 || c === 9) i++;
          else if (c === 13) {
            // An empty value: llhttp calls a CR without its LF here strict, not a missing LF.
            this.emptyValue = true;
            this.state = S.TrailerLf;
            i++;
          } else if (c === 10) throw new ChunkedBodyError('HPE_INVALID_HEADER_TOKEN');
          else this.state = S.TrailerValue;
          break;
        case S.TrailerValue:
          if (c === 13) {
            this.trailerCheck();
            this.state = S.TrailerLf;
          } else if ((CLASS[c]! & VALUE) !== 0) {
            this.trailer();
            if (this.nameKind === Name.Connection) this.connection += String.fromCharCode(c);
          } else throw new ChunkedBodyError(c === 10 ? 'HPE_CR_EXPECTED' : 'HPE_INVALID_HEADER_TOKEN');
          i++;
          break;
        case S.TrailerLf:
          if (c !== 10) throw new ChunkedBodyError(this.emptyValue ? 'HPE_STRICT' : 'HPE_LF_EXPECTED');
          this.emptyValue = false;
          if (this.nameKind === Name.Connection && /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i.test(this.connection)) this.closes = true;
          this.nameKind = Name.Other;
          this.connection = '';
          this.state = S.TrailerStart;
          i++;
          break;
        case S.EndLf:
          if (c !== 10) throw new ChunkedBodyError('HPE_STRICT');
          this.state = S.Done;
          return i + 1;
        case S.Done:
          return i;
      }
    }
    if (this.state === S.TrailerName || this.state === S.TrailerValue) this.trailerCheck();
    return this.state === S.Done ? i : -1;
  }

  /** One more byte of a chunk's extension names and values. */
  private extension(): void {
    if (++this.extensionBytes > MAX_EXTENSION_BYTES) throw new ChunkedBodyError('HPE_CHUNK_EXTENSIONS_OVERFLOW');
  }

  /** An extension's name or value ends at `c` (at `i`): the next one, the line's end, or an error. */
  private extensionEnd(c: number, i: number): number {
    if (c === 59) this.state = S.ExtStart;
    else if (c === 13) this.state = S.SizeLf;
    else throw new ChunkedBodyError(c === 10 ? 'HPE_CR_EXPECTED' : 'HPE_STRICT');
    return i + 1;
  }

  /** One more byte of a trailer's name or value, counted as Node counts a head's. */
  private trailer(): void {
    this.trailerBytes++;
  }

  /**
   * Node checks the count when llhttp hands it a name or a value: at its end, or at the end of a read
   * with one under way; a syntax error before then is the error (as here).
   */
  private trailerCheck(): void {
    if (this.trailerBytes >= this.maxTrailerBytes) throw new ChunkedBodyError('HPE_HEADER_OVERFLOW');
  }

  /** A trailer's name is whole: what it is to the decoder. */
  private named(): void {
    const name = this.name;
    if (name === 'content-length') throw new ChunkedBodyError('HPE_INVALID_CONTENT_LENGTH');
    if (name === 'transfer-encoding') throw new ChunkedBodyError('HPE_INVALID_TRANSFER_ENCODING');
    this.nameKind = name === 'connection' || name === 'proxy-connection' ? Name.Connection : Name.Other;
    this.state = S.TrailerOws;
  }
}
