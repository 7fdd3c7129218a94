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

/** The value without leading and trailing SP and HTAB (only those: obs-text is content). */
export function trimOws(s: string, from: number, to: number): string {
  while (from < to && (s.charCodeAt(from) === 32 || s.charCodeAt(from) === 9)) from++;
  while (to > from && (s.charCodeAt(to - 1) === 32 || s.charCodeAt(to - 1) === 9)) to--;
  return s.slice(from, to);
}

/** The lines of a header block that passed HEADER_BLOCK, as `[name, value, …]` (names as sent, values trimmed). */
export function headerList(block: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < block.length;) {
    const lineEnd = block.indexOf('\r\n', i);
    const colon = block.indexOf(':', i);
    out.push(block.slice(i, colon), trimOws(block, colon + 1, lineEnd));
    i = lineEnd + 2;
  }
  return out;
}

/** Whether a comma-separated header value lists `token` (lower case). */
export function lists(value: string, token: string): boolean {
  const lower = value.toLowerCase();
  if (lower === token) return true;
  if (!lower.includes(token)) return false;
  for (const t of lower.split(',')) if (t.trim() === token) return true;
  return false;
}
