/**
 * Whether a Host (HTTP/1.1) or `:authority` (HTTP/2, gRPC) value is one a server may act on: RFC 9112 §3.2
 * says a request whose Host is invalid gets 400. Valid is RFC 3986 §3.2.2's `uri-host [":" port]` as Envoy's
 * header validator (UHV, `validateHostHeader`) reads it:
 *
 * - an IP-literal `[…]` of hex digits, `:` and `.` (an IPv6 address, IPv4 tail allowed), or a reg-name
 *   (an IPv4 address is one) of unreserved characters, `%HH` and the sub-delims but `,`;
 * - then nothing, or `:` and a port of 1 to 5 digits, 1 to 65535;
 * - no userinfo (`user@host`: RFC 9110 §4.2.4, a host disguised for phishing), nothing empty.
 *
 * `,` is RFC 3986's and Envoy's but refused here: no DNS name has one, and `a,b` is what two Host lines
 * look like once a proxy joins them (RFC 9110 §5.3), which RFC 9112 §3.2 refuses too.
 *
 * One pass over the characters through a table, no allocation: every request with a Host pays it.
 */

const REG_NAME = new Uint8Array(128);
for (let c = 48; c <= 57; c++) REG_NAME[c] = 1;
for (let c = 65; c <= 90; c++) REG_NAME[c] = REG_NAME[c + 32] = 1;
for (const c of "-._~!$&'()*+;=") REG_NAME[c.charCodeAt(0)] = 1;
const IP_LITERAL = new Uint8Array(128);
for (const c of '0123456789abcdefABCDEF:.') IP_LITERAL[c.charCodeAt(0)] = 1;

const COLON = 58;
const PERCENT = 37;
const OPEN = 91;
const CLOSE = 93;

const isHex = (c: number): boolean => (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 102);

/** `host[:port]` valid as above. */
export function validHost(host: string): boolean {
  const n = host.length;
  if (n === 0) return false;
  let i = 0;
  if (host.charCodeAt(0) === OPEN) {
    let colons = 0;
    for (i = 1; i < n; i++) {
      const c = host.charCodeAt(i);
      if (c === CLOSE) break;
      if (c >= 128 || IP_LITERAL[c] !== 1) return false;
      if (c === COLON) colons++;
    }
    // `[` without its `]`, `[]`, or no colon: not an IPv6 address.
    if (i === n || colons < 2) return false;
    i++;
  } else {
    for (; i < n; i++) {
      const c = host.charCodeAt(i);
      if (c === COLON) break;
      if (c === PERCENT) {
        if (i + 2 >= n || !isHex(host.charCodeAt(i + 1)) || !isHex(host.charCodeAt(i + 2))) return false;
        i += 2;
      } else if (c >= 128 || REG_NAME[c] !== 1) return false;
    }
    if (i === 0) return false;
  }
  if (i === n) return true;
  if (host.charCodeAt(i) !== COLON) return false;
  return validPort(host, i + 1);
}

/** 1 to 5 digits from `from` to the end, 1 to 65535. */
function validPort(host: string, from: number): boolean {
  const n = host.length;
  if (from === n || n - from > 5) return false;
  let port = 0;
  for (let i = from; i < n; i++) {
    const d = host.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    port = port * 10 + d;
  }
  return port >= 1 && port <= 65535;
}

/** The 400's info for an invalid Host or :authority (the value is not echoed back). */
export const INVALID_HOST = 'the Host (or :authority) is not a valid host[:port] (RFC 9112 section 3.2, RFC 3986 section 3.2.2)';
