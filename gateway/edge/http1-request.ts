/**
 * The request head parser of the gateway's own HTTP/1.1 server side (edge/http1-lane.ts). No I/O.
 *
 * It recognises one shape of request, the one the hot path serves, and says "other" for
 * everything else, without judging it: those bytes go to `node:http`, which accepts or refuses
 * them exactly as it always has. So the lane never answers a malformed request itself, and a
 * request it takes is one that `node:http` would read the same way (a subset of what it accepts):
 * - request line `METHOD SP origin-form SP HTTP/1.1` with GET, POST, PUT, PATCH, DELETE or
 *   OPTIONS, and a target of RFC 3986 path and query characters only;
 * - header lines as the upstream parser reads them (wire/field-lines.ts: token names, no
 *   controls but HTAB in values, CRLF only: no obs-fold, no bare LF, no space before the colon);
 * - exactly one Host, a valid one (routing/values/host.ts); at most one Content-Length, of digits, or
 *   else one `Transfer-Encoding: chunked` (that word alone; its body decoded by wire/chunked-body.ts); no Expect or
 *   Upgrade, nor a framing field's look-alike with `_` (http1-syntax.ts `FRAMING_LOOKALIKE`);
 *   Connection (and Proxy-Connection, which llhttp reads as Connection) options that are tokens
 *   (`close` is honoured);
 * - no HTAB in the value of a field that frames the request or the connection (Content-Length,
 *   Connection, Proxy-Connection): llhttp versions differ on it (Node 20's refuses
 *   `Content-Length: 5<HTAB>` and does not read `Connection: close<HTAB>` as close; Node 24's
 *   takes both), and the lane takes only what every supported `node:http` reads as it does;
 * - within the head byte and header count limits the `node:http` server has (over them it is
 *   `node:http` that answers 431).
 *
 * The head is read in one pass over its bytes into offsets (wire/field-lines.ts): the target and the
 * Host are the only strings made; each field is given its kind (`*_FIELD`), what the proxy does
 * with it on the way to the model (edge/upstream-fields.ts), so nothing compares names again.
 *
 * test/gateway/edge/http1-lane.test.ts checks that subset against llhttp itself, on seeded random heads.
 */
import { FIELD_STRIDE, KIND, NAME_END, NAME_START, VALUE_END, VALUE_START, fieldPairs, latin1, lengthDigits, nameIs, parseFieldLines } from '../wire/field-lines.js';
import { headEnd, isTchar } from '../wire/http1-syntax.js';
import { validHost } from '../../routing/values/host.js';

/*
 * What a field of a request is to the proxy (the kind slot of its field list, wire/field-lines.ts KIND);
 * the lane's kinds double as bits of `RequestHead.kinds`.
 */
/** End to end: forwarded as it came. */
export const OTHER_FIELD = 0;
export const HOST_FIELD = 1;
export const CONTENT_LENGTH_FIELD = 2;
/** Connection, Proxy-Connection: read here, never forwarded. */
export const CONNECTION_FIELD = 3;
/** Hop-by-hop (RFC 9110 §7.6.1), or a field the gateway sets itself (`x-envoy-*`, `x-seldon-predictor`): never forwarded. */
export const DROPPED_FIELD = 4;
/** X-Forwarded-For: kept from a trusted proxy (the peer appended), else replaced. */
export const FORWARDED_FOR_FIELD = 5;
/** X-Forwarded-Proto: kept from a trusted proxy, else replaced; never forwarded where it stands. */
export const FORWARDED_PROTO_FIELD = 6;
/** X-Request-Id: the client's, forwarded (the gateway makes one when there is none). */
export const REQUEST_ID_FIELD = 7;
/** Authorization: dropped when the gate took it as the gateway's own credential. */
export const AUTHORIZATION_FIELD = 8;
/**
 * Not a field's kind: the bit of `RequestHead.kinds` that says the body is chunked. A bit, not a
 * field of its own: a slot more on every head cost the floor request some 600 instructions
 * (load/README.md, instructions); the lane's hot path tests the bit, not the getter.
 */
export const CHUNKED_BODY = 1 << 30;

/** A request head the lane took: the request line's parts and its fields as offsets over `buf`. */
export class RequestHead {
  /** The fields as `[name, value, …]` strings, made when first read (the hot path reads them by offset). */
  private pairs: string[] | undefined;

  constructor(
    readonly method: string,
    /** The request target (origin-form), as sent. */
    readonly target: string,
    /** The bytes the head is in (from its first byte, `start`). */
    readonly buf: Buffer,
    readonly start: number,
    /** FIELD_STRIDE numbers per field (wire/field-lines.ts), its kind one of the `*_FIELD` codes. */
    readonly fields: number[],
    /** The Host header (exactly one: the parser says so). */
    readonly host: string,
    /** Bytes from the request line to the empty line, both included. */
    readonly size: number,
    /** The body's length in bytes (0: no body). */
    readonly contentLength: number,
    /** The client asked for the connection to close after this exchange. */
    readonly close: boolean,
    /** A Connection field lists other fields (hop-by-hop for this request): the proxy drops those too. */
    readonly listsFields: boolean,
    /** The kinds the fields have, one bit per kind, and CHUNKED_BODY. */
    readonly kinds: number,
  ) {}

  /** The body is chunked (`Transfer-Encoding: chunked`, alone): it streams in through wire/chunked-body.ts. */
  get chunkedBody(): boolean {
    return (this.kinds & CHUNKED_BODY) !== 0;
  }

  /** `[name, value, …]` as received (names in their case, values without surrounding whitespace). */
  get rawHeaders(): string[] {
    return (this.pairs ??= fieldPairs(this.buf, this.fields));
  }

  /**
   * The values of every field named `name` (lower case) joined with `,`, as routing reads a header
   * (routing/types.ts HeaderGetter); undefined when there is none. Only the value is made a string.
   */
  header(name: string): string | undefined {
    const f = this.fields;
    const buf = this.buf;
    let value: string | undefined;
    for (let i = 0; i < f.length; i += FIELD_STRIDE) {
      if (f[i + NAME_END]! - f[i + NAME_START]! !== name.length || !nameIs(buf, f[i + NAME_START]!, f[i + NAME_END]!, name)) continue;
      const v = latin1(buf, f[i + VALUE_START]!, f[i + VALUE_END]!);
      value = value === undefined ? v : `${value},${v}`;
    }
    return value;
  }
}

/** What a head is made as: `RequestHead`, or the lane's exchange, which is one (edge/lane-exchange.ts). */
export type HeadClass<H extends RequestHead> = new (...args: ConstructorParameters<typeof RequestHead>) => H;

export interface HeadLimits {
  /** The largest head, request line and headers (--max-header-bytes). */
  readonly maxHeadBytes: number;
  /** The most header lines (--max-headers). */
  readonly maxHeaders: number;
}

/** A head not here whole yet (and nothing seen so far rules the lane out). */
export const MORE = 'more';
/** Not a request the lane serves: `node:http` reads it (and everything after it on the connection). */
export const OTHER = 'other';

const REQUEST_LINE = /^(GET|POST|PUT|PATCH|DELETE|OPTIONS) (\/[-A-Za-z0-9._~!$&'()*+,;=:@/?%]*) HTTP\/1\.1$/;

/** The characters of a target REQUEST_LINE takes (RFC 3986 path and query), by byte. */
const TARGET_CHAR = new Uint8Array(256);
for (const c of "-._~!$&'()*+,;=:@/?%") TARGET_CHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TARGET_CHAR[c] = 1;
for (let c = 65; c <= 90; c++) TARGET_CHAR[c] = TARGET_CHAR[c + 32] = 1;

/** Whether `buf` has `text` at `at`. */
function bytesAre(buf: Uint8Array, at: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (buf[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** The method of a request line REQUEST_LINE takes, by the position of its first space (its length); undefined: none. */
function methodOf(buf: Uint8Array, at: number, length: number): string | undefined {
  switch (length) {
    case 3:
      return bytesAre(buf, at, 'GET') ? 'GET' : bytesAre(buf, at, 'PUT') ? 'PUT' : undefined;
    case 4:
      return bytesAre(buf, at, 'POST') ? 'POST' : undefined;
    case 5:
      return bytesAre(buf, at, 'PATCH') ? 'PATCH' : undefined;
    case 6:
      return bytesAre(buf, at, 'DELETE') ? 'DELETE' : undefined;
    case 7:
      return bytesAre(buf, at, 'OPTIONS') ? 'OPTIONS' : undefined;
    default:
      return undefined;
  }
}

/** Whether the field line whose name ends at `nameEnd` has an HTAB anywhere in its value (to its CR). */
function tabInValue(buf: Uint8Array, nameEnd: number): boolean {
  for (let i = nameEnd + 1; buf[i] !== 13; i++) if (buf[i] === 9) return true;
  return false;
}

/** Connection options: whether they say close, and whether they name other fields; null when one is not a token. */
function connectionOptions(buf: Uint8Array, start: number, end: number): number | null {
  let out = 0;
  let i = start;
  while (i <= end) {
    // One comma-separated element, without the whitespace around it.
    let s = i;
    while (s < end && (buf[s] === 32 || buf[s] === 9)) s++;
    let e = s;
    while (e < end && buf[e] !== 44) e++;
    const next = e + 1;
    while (e > s && (buf[e - 1] === 32 || buf[e - 1] === 9)) e--;
    if (e > s) {
      for (let j = s; j < e; j++) if (!isTchar(buf[j]!)) return null;
      if (nameIs(buf, s, e, 'close')) out |= CLOSES;
      else if (!nameIs(buf, s, e, 'keep-alive')) out |= LISTS;
    }
    i = next;
  }
  return out;
}
const CLOSES = 1;
const LISTS = 2;

/**
 * What a field is to the proxy, by its name (lengths first: most names decide nothing); OTHER for a
 * field the lane does not take (framing the lane leaves to `node:http`).
 */
function kindOf(buf: Uint8Array, s: number, e: number): number {
  switch (e - s) {
    case 2:
      return nameIs(buf, s, e, 'te') ? DROPPED_FIELD : OTHER_FIELD;
    case 4:
      return nameIs(buf, s, e, 'host') ? HOST_FIELD : OTHER_FIELD;
    case 6:
      return nameIs(buf, s, e, 'expect') ? REFUSED : OTHER_FIELD;
    case 7:
      return nameIs(buf, s, e, 'upgrade') ? REFUSED : nameIs(buf, s, e, 'trailer') ? DROPPED_FIELD : OTHER_FIELD;
    case 10:
      return nameIs(buf, s, e, 'connection') ? CONNECTION_FIELD : nameIs(buf, s, e, 'keep-alive') ? DROPPED_FIELD : OTHER_FIELD;
    case 12:
      return nameIs(buf, s, e, 'x-request-id') ? REQUEST_ID_FIELD : envoy(buf, s, e);
    case 13:
      return nameIs(buf, s, e, 'authorization') ? AUTHORIZATION_FIELD : envoy(buf, s, e);
    case 14:
      // Content_Length: refused by the edge checks (FRAMING_LOOKALIKE): `node:http` answers it.
      return nameIs(buf, s, e, 'content-length') ? CONTENT_LENGTH_FIELD : nameIs(buf, s, e, 'content_length') ? REFUSED : envoy(buf, s, e);
    case 15:
      return nameIs(buf, s, e, 'x-forwarded-for') ? FORWARDED_FOR_FIELD : envoy(buf, s, e);
    case 16:
      return nameIs(buf, s, e, 'proxy-connection') ? CONNECTION_FIELD : envoy(buf, s, e);
    case 17:
      if (nameIs(buf, s, e, 'transfer-encoding')) return TRANSFER_ENCODING;
      if (nameIs(buf, s, e, 'transfer_encoding')) return REFUSED;
      return nameIs(buf, s, e, 'x-forwarded-proto') ? FORWARDED_PROTO_FIELD : envoy(buf, s, e);
    case 18:
      return nameIs(buf, s, e, 'x-seldon-predictor') || nameIs(buf, s, e, 'proxy-authenticate') ? DROPPED_FIELD : envoy(buf, s, e);
    case 19:
      return nameIs(buf, s, e, 'proxy-authorization') ? DROPPED_FIELD : envoy(buf, s, e);
    default:
      return envoy(buf, s, e);
  }
}
const REFUSED = -1;
/** Transfer-Encoding: the lane takes `chunked` alone (then it is dropped, hop-by-hop, as Node's path drops it). */
const TRANSFER_ENCODING = -2;

/** `x-envoy-*` (any case): the gateway's own, never taken from a client. */
function envoy(buf: Uint8Array, s: number, e: number): number {
  return e - s > 8 && (buf[s]! | 0x20) === 120 && buf[s + 1] === 45 && nameIs(buf, s + 2, s + 8, 'envoy-') ? DROPPED_FIELD : OTHER_FIELD;
}

/**
 * Parse the request head starting at `at` in `buf`: the request line by hand (REQUEST_LINE's
 * grammar, which `incomplete` still uses) and the header lines in one pass over the bytes
 * (wire/field-lines.ts), each given its kind.
 */
export function parseRequestHead<H extends RequestHead = RequestHead>(buf: Buffer, at: number, limits: HeadLimits, Head: HeadClass<H> = RequestHead as HeadClass<H>): H | typeof MORE | typeof OTHER {
  const end = headEnd(buf, at);
  if (end < 0) return incomplete(buf, at, limits);
  const size = end + 4 - at;
  if (size > limits.maxHeadBytes) return OTHER;
  let eol = at;
  while (buf[eol] !== 13) eol++;
  // A bare CR in the request line: not the shape.
  if (buf[eol + 1] !== 10) return OTHER;
  let sp = at;
  while (sp < eol && buf[sp] !== 32) sp++;
  const method = sp < eol ? methodOf(buf, at, sp - at) : undefined;
  // `METHOD SP /target SP HTTP/1.1`: the target runs to the last 9 characters.
  const targetEnd = eol - 9;
  if (method === undefined || targetEnd <= sp + 1 || buf[sp + 1] !== 47 || !bytesAre(buf, targetEnd, ' HTTP/1.1')) return OTHER;
  for (let i = sp + 2; i < targetEnd; i++) if (TARGET_CHAR[buf[i]!] !== 1) return OTHER;
  const fields = parseFieldLines(buf, eol + 2, end + 2);
  if (fields === null || fields.length > limits.maxHeaders * FIELD_STRIDE) return OTHER;
  let host: string | undefined;
  let length = -1;
  let close = false;
  let lists = false;
  let kinds = 0;
  let chunked = false;
  for (let i = 0; i < fields.length; i += FIELD_STRIDE) {
    const s = fields[i + NAME_START]!;
    const e = fields[i + NAME_END]!;
    let kind = kindOf(buf, s, e);
    if (kind === OTHER_FIELD) continue;
    if (kind === REFUSED) return OTHER;
    if (kind === TRANSFER_ENCODING) {
      // One field, `chunked` alone (any case, no HTAB: llhttp versions differ on it); every other
      // spelling, a second field, or one beside Content-Length is Node's server's to judge.
      const vs = fields[i + VALUE_START]!;
      if (chunked || fields[i + VALUE_END]! - vs !== 7 || !nameIs(buf, vs, vs + 7, 'chunked') || tabInValue(buf, e)) return OTHER;
      chunked = true;
      kind = DROPPED_FIELD;
    }
    fields[i + KIND] = kind;
    kinds |= 1 << kind;
    const vs = fields[i + VALUE_START]!;
    const ve = fields[i + VALUE_END]!;
    switch (kind) {
      case HOST_FIELD:
        if (host !== undefined) return OTHER;
        host = latin1(buf, vs, ve);
        break;
      case CONTENT_LENGTH_FIELD:
        if (length >= 0 || tabInValue(buf, e)) return OTHER;
        length = lengthDigits(buf, vs, ve);
        if (length < 0) return OTHER;
        break;
      case CONNECTION_FIELD: {
        // Other options name hop-by-hop fields, which the proxy drops (edge/upstream-fields.ts).
        if (tabInValue(buf, e)) return OTHER;
        const o = connectionOptions(buf, vs, ve);
        if (o === null) return OTHER;
        if ((o & CLOSES) !== 0) close = true;
        if ((o & LISTS) !== 0) lists = true;
        break;
      }
    }
  }
  // An invalid Host is Node's server's to refuse (edge/refusals.ts): the lane never judges.
  if (host === undefined || !validHost(host)) return OTHER;
  if (chunked) {
    if (length >= 0) return OTHER;
    kinds |= CHUNKED_BODY;
  }
  return new Head(method, latin1(buf, sp + 1, targetEnd), buf, at, fields, host, size, length < 0 ? 0 : length, close, lists, kinds);
}

/**
 * No head end yet: wait for more, unless what is here already rules the lane out (a request
 * line of another shape, a bare LF, more than the head limit), so that `node:http` answers it
 * now rather than after the header timeout.
 */
function incomplete(buf: Buffer, at: number, limits: HeadLimits): typeof MORE | typeof OTHER {
  if (buf.length - at > limits.maxHeadBytes) return OTHER;
  const first = buf.indexOf(10, at);
  if (first < 0) return MORE;
  if (first === at || buf[first - 1] !== 13 || !REQUEST_LINE.test(buf.toString('latin1', at, first - 1))) return OTHER;
  for (let lf = buf.indexOf(10, first + 1); lf >= 0; lf = buf.indexOf(10, lf + 1)) if (buf[lf - 1] !== 13) return OTHER;
  return MORE;
}
