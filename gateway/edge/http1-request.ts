/**
 * The request head parser of the gateway's own HTTP/1.1 server side (edge/http1-lane.ts). No I/O.
 *
 * It recognises one shape of request, the one the hot path serves, and says "other" for
 * everything else, without judging it: those bytes go to `node:http`, which accepts or refuses
 * them exactly as it always has. So the lane never answers a malformed request itself, and a
 * request it takes is one that `node:http` would read the same way (a subset of what it accepts):
 * - request line `METHOD SP origin-form SP HTTP/1.1` with GET, POST, PUT, PATCH, DELETE or
 *   OPTIONS, and a target of RFC 3986 path and query characters only;
 * - header lines as the upstream parser reads them (wire/http1-syntax.ts: token names, no
 *   controls but HTAB in values, CRLF only: no obs-fold, no bare LF, no space before the colon);
 * - exactly one Host; at most one Content-Length, of digits; no Transfer-Encoding, Expect or
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
 * test/gateway/edge/http1-lane.test.ts checks that subset against llhttp itself, on seeded random heads.
 */
import { headEnd, headerLines, TOKEN, trimOws } from '../wire/http1-syntax.js';

export interface RequestHead {
  readonly method: string;
  /** The request target (origin-form), as sent. */
  readonly target: string;
  /** `[name, value, …]` as received (names in their case, values without surrounding whitespace). */
  readonly rawHeaders: string[];
  readonly host: string;
  /** Bytes from the request line to the empty line, both included. */
  readonly size: number;
  /** The body's length in bytes (0: no body). */
  readonly contentLength: number;
  /** The client asked for the connection to close after this exchange. */
  readonly close: boolean;
}

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
const DIGITS = /^\d{1,15}$/;
/** A framing field's line with an HTAB in its value (see the header: llhttp versions read it differently). */
const FRAMING_TAB = /(?:^|\n)(?:content-length|connection|proxy-connection):[^\r]*\t/i;

/** The characters of a target REQUEST_LINE takes (RFC 3986 path and query), by character code. */
const TARGET_CHAR = new Uint8Array(128);
for (const c of "-._~!$&'()*+,;=:@/?%") TARGET_CHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TARGET_CHAR[c] = 1;
for (let c = 65; c <= 90; c++) TARGET_CHAR[c] = TARGET_CHAR[c + 32] = 1;

/** The method of a request line REQUEST_LINE takes, by the position of its first space (its length); undefined: none. */
function methodOf(text: string, sp: number): string | undefined {
  switch (sp) {
    case 3:
      return text.startsWith('GET') ? 'GET' : text.startsWith('PUT') ? 'PUT' : undefined;
    case 4:
      return text.startsWith('POST') ? 'POST' : undefined;
    case 5:
      return text.startsWith('PATCH') ? 'PATCH' : undefined;
    case 6:
      return text.startsWith('DELETE') ? 'DELETE' : undefined;
    case 7:
      return text.startsWith('OPTIONS') ? 'OPTIONS' : undefined;
    default:
      return undefined;
  }
}

/**
 * Parse the request head starting at `at` in `buf`. The request line is read by hand (REQUEST_LINE's
 * grammar, which `incomplete` still uses) and the header lines in one pass (http1-syntax.ts
 * headerLines): no match arrays or block copy, and the method is the constant string.
 */
export function parseRequestHead(buf: Buffer, at: number, limits: HeadLimits): RequestHead | typeof MORE | typeof OTHER {
  const end = headEnd(buf, at);
  if (end < 0) return incomplete(buf, at, limits);
  const size = end + 4 - at;
  if (size > limits.maxHeadBytes) return OTHER;
  const text = buf.toString('latin1', at, end + 2);
  const eol = text.indexOf('\r\n');
  const sp = text.indexOf(' ');
  const method = sp > 0 && sp < eol ? methodOf(text, sp) : undefined;
  // `METHOD SP /target SP HTTP/1.1`: the target runs to the last 9 characters.
  const targetEnd = eol - 9;
  if (method === undefined || targetEnd <= sp + 1 || text.charCodeAt(sp + 1) !== 47 || !text.startsWith(' HTTP/1.1', targetEnd)) return OTHER;
  for (let i = sp + 2; i < targetEnd; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || TARGET_CHAR[c] !== 1) return OTHER;
  }
  const rawHeaders = headerLines(text, eol + 2);
  if (rawHeaders === null) return OTHER;
  if (text.includes('\t', eol) && FRAMING_TAB.test(text.slice(eol + 2))) return OTHER;
  if (rawHeaders.length / 2 > limits.maxHeaders) return OTHER;
  let host: string | undefined;
  let length = -1;
  let close = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    const n = name.length;
    // Only the names that decide anything are looked at (by length first).
    if (n !== 4 && n !== 6 && n !== 7 && n !== 10 && n !== 14 && n !== 16 && n !== 17) continue;
    switch (name.toLowerCase()) {
      case 'host':
        if (host !== undefined) return OTHER;
        host = value;
        break;
      case 'content-length':
        if (length >= 0 || !DIGITS.test(value)) return OTHER;
        length = Number(value);
        break;
      case 'connection':
      case 'proxy-connection': {
        // Other options name hop-by-hop fields, which the proxy drops (edge/http-headers.ts).
        for (const token of value.toLowerCase().split(',')) {
          const t = trimOws(token, 0, token.length);
          if (t === 'close') close = true;
          else if (t !== '' && !TOKEN.test(t)) return OTHER;
        }
        break;
      }
      case 'transfer-encoding':
      case 'expect':
      case 'upgrade':
      // Refused by the edge checks (FRAMING_LOOKALIKE): `node:http` answers them.
      case 'content_length':
      case 'transfer_encoding':
        return OTHER;
    }
  }
  if (host === undefined) return OTHER;
  return { method, target: text.slice(sp + 1, targetEnd), rawHeaders, host, size, contentLength: length < 0 ? 0 : length, close };
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
