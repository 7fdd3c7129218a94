/**
 * The ambassador Module's edge keys as requests meet them (`EdgeRules`, decided at start by
 * gateway/config/ambassador-module.ts `moduleEdge`; a proxy without them runs none of this): the
 * client's address counted in X-Forwarded-For, a Host's port equal to the listener's dropped, escaped
 * slashes refused, plain HTTP redirected by X-Forwarded-Proto. Pure: the gateway's stages call these.
 */

/**
 * What the ambassador Module's edge keys ask of the listeners, decided at start. The client's address
 * is one rule with --trusted-proxies: a trusted peer's X-Forwarded-For is kept, and the client is
 * its `clientHops`th entry from the right (the peer when the list is shorter); anyone else's is replaced.
 */
export interface EdgeRules {
  /** From a trusted peer, the client is this many X-Forwarded-For entries from the right (1 without xff_num_trusted_hops). */
  readonly clientHops: number;
  /** false (use_remote_address: false): X-Forwarded-For goes to the model as sent, the peer not appended. */
  readonly appendPeer: boolean;
  /** preserve_external_request_id: false: a client's x-request-id is replaced by the gateway's own. */
  readonly replaceRequestId: boolean;
  /** strip_matching_host_port: a Host's port equal to the listener's is dropped before matching and towards the model. */
  readonly stripMatchingHostPort: boolean;
  /** reject_requests_with_escaped_slashes: a path with %2F or %5C (any case) gets 400. */
  readonly rejectEscapedSlashes: boolean;
  /** x_forwarded_proto_redirect: a request whose X-Forwarded-Proto (as the model would get it) is not https gets a 301 to https. */
  readonly httpsRedirect: boolean;
  /**
   * suppress_envoy_headers: none of the x-envoy-* headers Envoy's router adds: x-envoy-original-path to the model,
   * x-envoy-upstream-service-time and a breaker's x-envoy-overloaded to the client (absent: false).
   */
  readonly suppressEnvoyHeaders?: boolean;
  /** headers_with_underscores_action: REJECT_REQUEST: a request with a header name holding `_` gets 400, as Envoy's codec refuses it (absent: false). */
  readonly rejectUnderscoreHeaders?: boolean;
}

/** Whether a header name in `raw` (name, value, name, value…) holds an underscore (Envoy's `headers_with_underscores_action`). */
export function hasUnderscoredName(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.includes('_')) return true;
  return false;
}

/** The refusal's words, one text for every path that gives it. */
export const UNDERSCORE_REFUSAL = 'a header name holds an underscore: refused (headers_with_underscores_action: REJECT_REQUEST)';

/**
 * The client's address in an X-Forwarded-For list as a trusted peer sent it: the `hops`th entry from
 * the right (Envoy's xff_num_trusted_hops), trimmed and read by `forwardedAddress`; undefined when the list
 * is shorter (the peer is the client then).
 */
export function clientFromForwarded(xff: string | undefined, hops: number): string | undefined {
  if (xff === undefined) return undefined;
  let end = xff.length;
  for (let n = 1; ; n++) {
    const comma = xff.lastIndexOf(',', end - 1);
    if (n === hops) {
      const entry = xff.slice(comma + 1, end).trim();
      return entry === '' ? undefined : forwardedAddress(entry);
    }
    if (comma < 0) return undefined;
    end = comma;
  }
}

/** `host` without its `:port` when that port is `port` (the listener's), as Envoy's strip_matching_host_port; else as sent. */
export function stripMatchingPort(host: string, port: number | undefined): string {
  const colon = host.lastIndexOf(':');
  // An IPv6 literal's colons are inside its brackets.
  if (colon < 0 || port === undefined || host.indexOf(']', colon) >= 0) return host;
  return host.slice(colon + 1) === String(port) ? host.slice(0, colon) : host;
}

/** The path (up to its query) has `%2F` or `%5C`, any case: Envoy's path_with_escaped_slashes_action REJECT_REQUEST refuses it. */
export function hasEscapedSlash(target: string): boolean {
  const q = target.indexOf('?');
  const end = q < 0 ? target.length : q;
  for (let i = target.indexOf('%'); i >= 0 && i + 2 < end; i = target.indexOf('%', i + 1)) {
    const hi = target.charCodeAt(i + 1);
    const lo = target.charCodeAt(i + 2) | 0x20;
    if ((hi === 0x32 && lo === 0x66) || (hi === 0x35 && lo === 0x63)) return true;
  }
  return false;
}

/**
 * The address in one X-Forwarded-For entry, in the forms proxies write: `1.2.3.4`, `1.2.3.4:5678` (Azure's
 * gateways), `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:443`; the entry as it is otherwise (not an
 * address: the caller decides). Without a port or brackets, the entry itself (no new string).
 */
export function forwardedAddress(entry: string): string {
  if (entry.charCodeAt(0) === 91 /* [ */) {
    const close = entry.indexOf(']');
    if (close < 0) return entry;
    const rest = entry.length - close - 1;
    return rest === 0 || (entry.charCodeAt(close + 1) === 58 /* : */ && allDigits(entry, close + 2)) ? entry.slice(1, close) : entry;
  }
  const colon = entry.indexOf(':');
  // One colon after a dotted address: IPv4 with a port. Two or more: IPv6, as it is.
  if (colon < 0 || entry.indexOf(':', colon + 1) >= 0 || entry.lastIndexOf('.', colon) < 0 || !allDigits(entry, colon + 1)) return entry;
  return entry.slice(0, colon);
}

/** One or more digits from `from` to the end. */
function allDigits(s: string, from: number): boolean {
  if (from >= s.length) return false;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}
