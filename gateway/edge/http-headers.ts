/**
 * Header copying for the REST proxy, on Node's flat raw-header arrays (`[name, value, …]`) so
 * that no header object is built per request. Hop-by-hop headers are dropped both ways.
 *
 * Clients cannot forge the gateway's own headers: `x-seldon-predictor` and every `x-envoy-*` are
 * dropped from requests, and `x-forwarded-for` / `x-forwarded-proto` from a peer that is not a
 * trusted proxy (`--trusted-proxies`, `--trust-forwarded-headers`, the ambassador Module's
 * xff_num_trusted_hops) are replaced by the peer's address and the gateway's scheme; a trusted proxy's
 * are kept (the peer appended to the first, unless the Module says use_remote_address: false).
 */
import { requestId } from './request-id.js';
import type { IncomingHttpHeaders } from 'node:http2';
import type { HeaderGetter } from '../../routing/types.js';
import type { EdgeRules } from '../../routing/emissary/edge-rules.js';

/** RFC 9110 hop-by-hop headers, plus those the gateway owns and sets itself. */
const REQUEST_DROP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'x-forwarded-proto',
  'x-envoy-original-path',
  'x-seldon-predictor',
]);
const RESPONSE_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const DROP_LENGTHS = new Set([...REQUEST_DROP, ...RESPONSE_DROP, 'x-forwarded-for', 'x-request-id', 'content-length'].map((h) => h.length));

/** Lower-cased name when it could be one we treat specially, else undefined (no allocation). */
function special(name: string): string | undefined {
  return DROP_LENGTHS.has(name.length) ? name.toLowerCase() : undefined;
}

/** The header names a `Connection` value lists (besides close and keep-alive), added to `into`. */
function connectionNames(value: string, into: Set<string> | undefined): Set<string> | undefined {
  // Nearly every answer says just one of the two (models send `Connection: keep-alive`): no list to split.
  const only = value.length === 10 || value.length === 5 ? value.toLowerCase() : '';
  if (only === 'keep-alive' || only === 'close') return into;
  for (const t of value.split(',')) {
    const n = t.trim().toLowerCase();
    if (n && n !== 'close' && n !== 'keep-alive') (into ??= new Set()).add(n);
  }
  return into;
}

/** Names listed in `Connection: a, b` are hop-by-hop too. */
function connectionListed(raw: readonly string[]): Set<string> | undefined {
  let out: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') out = connectionNames(raw[i + 1]!, out);
  }
  return out;
}

export interface ForwardInfo {
  /** Client address, appended to x-forwarded-for. */
  readonly remoteAddress: string | undefined;
  readonly proto: 'http' | 'https';
  /** Original request path (before rewrite), for x-envoy-original-path. */
  readonly originalPath: string;
  /** The peer is a trusted proxy: keep its x-forwarded-for (appended to) and x-forwarded-proto. */
  readonly trusted?: boolean;
  /** Drop the client's Authorization (the gateway's own bearer token, checked at the gate). */
  readonly stripAuthorization?: boolean;
}

/** The scheme a client connection used, for X-Forwarded-Proto: `https` over TLS (edge/tls.ts), else `http`. */
export function schemeOf(socket: object | null | undefined): 'http' | 'https' {
  return (socket as { encrypted?: unknown } | null | undefined)?.encrypted === true ? 'https' : 'http';
}

/** `x-envoy-*`, any case, without allocating for other names. */
function isEnvoyHeader(name: string): boolean {
  return name.length > 8 && name.charCodeAt(1) === 45 && (name.charCodeAt(0) | 0x20) === 120 && name.slice(2, 8).toLowerCase() === 'envoy-';
}

/** The same rule for HTTP/2 (gRPC) header objects, whose names are lower-case: drop the gateway's own. */
export function dropInternalHeaders(headers: Record<string, unknown>): void {
  for (const name in headers) if (name === 'x-seldon-predictor' || isEnvoyHeader(name)) delete headers[name];
}

/**
 * An HTTP/2 request's header list as the HTTP/1.1 request it becomes (rest/h2.ts): `host` first
 * (the authority the caller decided, RFC 9113 §8.3.1), then every field in order without the
 * pseudo-header fields and Host fields, the `cookie` fields joined with "; " into the first one
 * (§8.2.3). HTTP/2 field names are lower case already (nghttp2 refuses others).
 */
export function h2RequestHeaders(raw: readonly string[], host: string): string[] {
  const out: string[] = ['host', host];
  let cookie = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 58 /* : */ || name === 'host') continue;
    if (name === 'cookie') {
      if (cookie >= 0) {
        out[cookie] = `${out[cookie]!}; ${raw[i + 1]!}`;
        continue;
      }
      cookie = out.length + 1;
    }
    out.push(name, raw[i + 1]!);
  }
  return out;
}

/**
 * X-Forwarded-For as it goes upstream (REST and gRPC): a trusted proxy's own list (`given`: only
 * from a trusted proxy), with the peer's address appended; from anyone else, the peer's alone.
 */
export function forwardedFor(given: string | undefined, peer: string | undefined): string | undefined {
  if (!peer) return given;
  return given === undefined ? peer : `${given}, ${peer}`;
}

/** A gRPC client connection's address, whether it may set x-forwarded-for/-proto, and its scheme. */
export interface Peer {
  readonly address: string | undefined;
  readonly trusted: boolean;
  /** The client connection's scheme (TLS: https); absent: http. */
  readonly proto?: 'http' | 'https';
  /** The ambassador Module's edge keys (routing/emissary/edge-rules.ts), with the listener's port; absent without them. */
  readonly rules?: EdgeRules;
  readonly localPort?: number | undefined;
}

/**
 * X-Forwarded-For and X-Forwarded-Proto on a gRPC call's header object, by the rule of
 * `upstreamRequestHeaders`: from a peer that is not a trusted proxy the client's own are replaced
 * by its address and the scheme; a trusted proxy's are kept, its address appended.
 */
export function forwardHeaderObject(headers: IncomingHttpHeaders, { address, trusted, proto: scheme, rules }: Peer): void {
  const xff = headers['x-forwarded-for'];
  const proto = headers['x-forwarded-proto'];
  // use_remote_address: false: a trusted peer's list goes as sent.
  const value = forwardedFor(trusted && typeof xff === 'string' && xff !== '' ? xff : undefined, trusted && rules?.appendPeer === false ? undefined : address);
  if (value === undefined) delete headers['x-forwarded-for'];
  else headers['x-forwarded-for'] = value;
  headers['x-forwarded-proto'] = trusted && typeof proto === 'string' && proto !== '' ? proto : (scheme ?? 'http');
}

/** Headers for the upstream request: end-to-end ones unchanged, forwarding headers added. */
export function upstreamRequestHeaders(raw: readonly string[], info: ForwardInfo, hostOverride?: string): string[] {
  const out: string[] = [];
  const listed = connectionListed(raw);
  let xff: string | undefined;
  let proto: string | undefined;
  let hasRequestId = false;
  const trusted = info.trusted === true;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const s = special(name);
    if (s !== undefined) {
      if (s === 'x-forwarded-proto' && trusted && proto === undefined) proto = raw[i + 1]!;
      if (REQUEST_DROP.has(s)) continue;
      if (s === 'x-forwarded-for') {
        if (trusted) xff = xff === undefined ? raw[i + 1]! : `${xff}, ${raw[i + 1]!}`;
        continue;
      }
      if (s === 'x-request-id') hasRequestId = true;
    }
    if (isEnvoyHeader(name)) continue;
    if (info.stripAuthorization && name.length === 13 && name.toLowerCase() === 'authorization') continue;
    if (listed?.has(name.toLowerCase())) continue;
    if (hostOverride !== undefined && name.length === 4 && name.toLowerCase() === 'host') {
      out.push(name, hostOverride);
      continue;
    }
    out.push(name, raw[i + 1]!);
  }
  xff = forwardedFor(xff, info.remoteAddress);
  if (xff !== undefined) out.push('x-forwarded-for', xff);
  out.push('x-forwarded-proto', proto ?? info.proto, 'x-envoy-original-path', info.originalPath);
  if (!hasRequestId) out.push('x-request-id', requestId());
  return out;
}

/**
 * A request header's value as routing reads it (routing/types.ts HeaderGetter): the values of
 * every field named `name` (lower case), joined with `,`, from the raw list, without building
 * a header object; undefined when absent.
 */
export function rawHeaderValue(raw: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === name.length && (n === name || n.toLowerCase() === name)) value = value === undefined ? raw[i + 1]! : `${value},${raw[i + 1]!}`;
  }
  return value;
}

/** `match`'s header lookup over a raw list: a REST request's, or a gRPC call's metadata (names lower case there). */
export function headerGetter(raw: readonly string[]): HeaderGetter {
  return (name) => rawHeaderValue(raw, name);
}

/**
 * Upstream response headers for the client, hop-by-hop removed (with those its `Connection` lists).
 *
 * The answer's framing is the gateway's to write (RFC 9112 §6.3): `length` is the Content-Length
 * the upstream parser allows (http1-response.ts `ResponseHead.length`, -1: none). It goes where
 * the model's first Content-Length was, the model's others are dropped, and with -1 none is
 * kept: beside Transfer-Encoding (which is dropped too: the body is forwarded de-chunked and
 * framed anew, chunked or HTTP/2 DATA), on a 204, on an answer that runs until close. A length
 * forwarded beside a body it does not describe would make the client read the next answer on
 * its connection as part of this one, or this one's rest as the next.
 */
export function clientResponseHeaders(raw: readonly string[], length: number): string[] {
  const out: string[] = [];
  let listed: Set<string> | undefined;
  let framed = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const s = special(name);
    if (s !== undefined) {
      if (RESPONSE_DROP.has(s)) {
        if (s === 'connection') listed = connectionNames(raw[i + 1]!, listed);
        continue;
      }
      if (s === 'content-length') {
        if (length >= 0 && !framed) out.push(name, String(length));
        framed = true;
        continue;
      }
    }
    out.push(name, raw[i + 1]!);
  }
  if (listed === undefined) return out;
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!listed.has(out[i]!.toLowerCase())) kept.push(out[i]!, out[i + 1]!);
  return kept;
}

/** `-shadow` inserted before any `:port`, as Envoy does (`a.com:8080` → `a.com-shadow:8080`). */
export function shadowHost(host: string): string {
  const m = /^(.*?)(:\d+)?$/.exec(host);
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return `${host.slice(0, end + 1)}-shadow${host.slice(end + 1)}`;
  }
  return `${m![1]}-shadow${m![2] ?? ''}`;
}
