/**
 * HTTP/1.1 field syntax (RFC 9110 §5, RFC 9112 §5), one definition for the gateway's parsers (the
 * upstream client's response parser, upstream/http1-response.ts, and the public side's request head
 * parser, edge/http1-request.ts) and for the heads it writes (the lane's answers, edge/http1-lane.ts,
 * and the upstream requests, upstream/http1-client.ts). All are strict in the same way.
 */

/** Token characters (RFC 9110 §5.6.2), as the inside of a character class. */
const TCHARS = "-!#$%&'*+.^_`|~0-9A-Za-z";
/** Field-value characters: visible ASCII, SP, HTAB and obs-text; no other control. */
const VCHARS = '\\t\\x20-\\x7e\\x80-\\xff';

/** A token: a field name, a Connection option. */
export const TOKEN = new RegExp(`^[${TCHARS}]+$`);

/** Finds a character a field name may not have. */
export const NOT_TOKEN_CHAR = new RegExp(`[^${TCHARS}]`);

/** Finds a character a field value (or a reason phrase) may not have. */
export const NOT_VALUE_CHAR = new RegExp(`[^${VCHARS}]`);

/** Header lines, each CRLF-terminated: token, colon, field value without controls (but HTAB). */
export const HEADER_BLOCK = new RegExp(`^(?:[${TCHARS}]+:[${VCHARS}]*\\r\\n)*$`);

/**
 * A field name that is Content-Length or Transfer-Encoding with `_` for `-`: not a framing field
 * in HTTP, but servers that map `_` to `-` (CGI-style environments) would frame a body by it, so
 * a request that has one is refused rather than forwarded (as nginx drops such names by default).
 */
export const FRAMING_LOOKALIKE = /^(?:content_length|transfer_encoding)$/i;

/** Token characters, by character code (the same set as TCHARS). */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = TCHAR[c + 32] = 1;

/** Whether a character code is a token character. */
export const isTchar = (c: number): boolean => c < 256 && TCHAR[c] === 1;

/** A field-value character (VCHARS): HTAB, SP, visible ASCII, obs-text. */
export const isVchar = (c: number): boolean => c === 9 || (c >= 0x20 && c !== 0x7f && c <= 0xff);

/**
 * Where a head ends in `buf` from `at`: the index of its empty line's CRLFCRLF, or -1. A loop over
 * the bytes: `buf.indexOf('\r\n\r\n')` encodes its needle on every call, twice the time for a
 * small head (65 against 132 ns; two heads per proxied request).
 */
export function headEnd(buf: Buffer, at: number): number {
  const n = buf.length - 3;
  for (let i = at; i < n; i++) if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  return -1;
}

/**
 * Whether `buf` from `at` up to `eol` is a status line (RFC 9112 §4): `HTTP/1.x SSS` (a status of
 * 100 to 999), then nothing or a space and a reason of field-value characters.
 */
export function isStatusLine(buf: Uint8Array, at: number, eol: number): boolean {
  if (eol - at < 12) return false;
  for (let i = 0; i < 7; i++) if (buf[at + i] !== HTTP_1_DOT.charCodeAt(i)) return false;
  const minor = buf[at + 7]!;
  const s0 = buf[at + 9]!;
  const s1 = buf[at + 10]!;
  const s2 = buf[at + 11]!;
  if ((minor !== 48 && minor !== 49) || buf[at + 8] !== 32 || s0 < 49 || s0 > 57 || s1 < 48 || s1 > 57 || s2 < 48 || s2 > 57) return false;
  if (eol === at + 12) return true;
  if (buf[at + 12] !== 32) return false;
  for (let i = at + 13; i < eol; i++) if (!isVchar(buf[i]!)) return false;
  return true;
}
const HTTP_1_DOT = 'HTTP/1.';

/** Whether a comma-separated header value lists `token` (lower case). */
export function lists(value: string, token: string): boolean {
  const lower = value.toLowerCase();
  if (lower === token) return true;
  if (!lower.includes(token)) return false;
  for (const t of lower.split(',')) if (t.trim() === token) return true;
  return false;
}

/**
 * `s` into `out` at `at`, one byte per character (latin1, as heads are written: the field checks
 * keep every character of a head under 0x100); the index after it. For the short strings of a head
 * a loop costs less than `out.latin1Write`'s call into C++, and a head encoded straight into its
 * buffer leaves no intermediate strings behind.
 */
export function putLatin1(out: Buffer, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) out[at + i] = s.charCodeAt(i);
  return at + s.length;
}
