/**
 * What the external auth check is told about a request (ext-auth/policy.ts `CheckSubject`), from a
 * REST request or a gRPC call as the proxies hold them, and what an allowed request then carries.
 *
 * The body: without include_body nothing of it is read before the decision (a denied request's
 * body is never read at all). With it, up to max_bytes are read (the HTTP/1.1 lane has small
 * bodies whole already); a body that ends within them is checked whole, a longer one by its first
 * max_bytes with allow_partial, else refused with 413 before the auth service is asked. What was
 * read is handed on with the allowance, so the model still gets the whole body.
 */
import type { IncomingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import type { RestRequest } from '../edge/rest-exchange.js';
import { announcesBody, isWhole } from '../wire/message-body.js';
import { schemeOf, upstreamRequestHeaders } from '../edge/http-headers.js';
import { readSmallBody } from '../edge/small-body.js';
import type { CheckSubject } from './policy.js';
import type { ExtAuthConfig } from '../config/ext-auth.js';

/** The body as read for the check: whole (`body`), or its start with the rest still to stream (`head`). */
export interface ReadBody {
  readonly body?: Buffer | null | undefined;
  readonly head?: Buffer[] | undefined;
}

export type Subject = { readonly subject: CheckSubject; readonly read: ReadBody } | { readonly tooLarge: true };

const declared = (v: string | string[] | undefined): number => {
  const s = Array.isArray(v) ? v[0] : v;
  return s !== undefined && /^\d{1,15}$/.test(s) ? Number(s) : -1;
};

/** Lower-case names (the auth service matches names; HTTP's are case-insensitive). */
function lowerNames(h: string[]): string[] {
  for (let i = 0; i < h.length; i += 2) h[i] = h[i]!.toLowerCase();
  return h;
}

/** `x-forwarded-host`: what the client asked for, as Envoy adds it for the auth service (oauth2-proxy builds its redirects from it). */
function withForwardedHost(h: string[], host: string): string[] {
  for (let i = 0; i < h.length; i += 2) if (h[i] === 'x-forwarded-host') return h;
  if (host !== '') h.push('x-forwarded-host', host);
  return h;
}

/**
 * The check of a REST request; the body read as include_body says (`preread`: a body read already, for a bandit's feedback).
 * `path`: the path as routed (the decision's `originalPath ?? req.url`, as the model's x-envoy-original-path): Envoy's
 * ext_authz sends the request's :path after the connection manager normalised it (dot segments resolved, slashes merged
 * only with merge_slashes), so the auth service judges the path that was routed, never `/public/../admin`. (Envoy's
 * router adds x-envoy-original-path after ext_authz, so its check has none; ours carries what the model will get.)
 */
export function restSubject(req: RestRequest, path: string, config: ExtAuthConfig, trusted: boolean, preread: Buffer | null | undefined, done: (s: Subject) => void): void {
  const socket = req.socket;
  const rawHeaders = req.rawHeaders;
  const headers = upstreamRequestHeaders(rawHeaders, { remoteAddress: socket.remoteAddress, proto: schemeOf(socket), originalPath: path, trusted });
  // Proxy-Authorization is hop-by-hop to a model, but Ambassador sends it to the auth service.
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === 'proxy-authorization') headers.push('proxy-authorization', rawHeaders[i + 1]!);
  const host = req.host;
  const base = {
    protocol: 'rest' as const,
    method: req.method,
    path,
    host,
    scheme: schemeOf(socket),
    httpVersion: `HTTP/${req.httpVersion}`,
    remoteAddress: socket.remoteAddress,
    remotePort: socket.remotePort,
    localAddress: socket.localAddress,
    localPort: socket.localPort,
    headers: withForwardedHost(lowerNames(headers), host),
  };
  const limit = config.includeBody;
  const stream = req.body;
  const size = isWhole(stream) ? (stream?.length ?? 0) : declared(req.headers['content-length']);
  const whole = (body: Buffer | null, read: ReadBody): void => {
    if (limit === undefined || body === null) return done({ subject: { ...base, body: null, partial: false, size }, read });
    if (body.length <= limit.maxBytes) return done({ subject: { ...base, body, partial: false, size }, read });
    if (!limit.allowPartial) return done({ tooLarge: true });
    done({ subject: { ...base, body: body.subarray(0, limit.maxBytes), partial: true, size }, read });
  };
  if (preread !== undefined) return whole(preread, {});
  if (isWhole(stream)) return whole(stream, {});
  if (limit === undefined || !announcesBody(req)) return whole(null, {});
  readSmallBody(stream, limit.maxBytes, (body, rest) => {
    if (rest === undefined) return whole(body, { body });
    // Longer than max_bytes: checked by its start; the rest streams to the model once allowed.
    const head = Buffer.concat(rest);
    if (!limit.allowPartial) return done({ tooLarge: true });
    done({ subject: { ...base, body: head.subarray(0, limit.maxBytes), partial: true, size }, read: { head: rest } });
  });
}

/** The check of a gRPC call (its messages are not read: a call's body is a stream of them). */
export function grpcSubject(headers: IncomingHttpHeaders, rawHeaders: readonly string[], socket: Socket | undefined, trusted: boolean): CheckSubject {
  const forwarded = upstreamRequestHeaders(withoutPseudo(rawHeaders), { remoteAddress: socket?.remoteAddress, proto: schemeOf(socket), originalPath: headers[':path'] ?? '/', trusted });
  const host = headers[':authority'] ?? headers.host ?? '';
  return {
    protocol: 'grpc',
    method: 'POST',
    path: headers[':path'] ?? '/',
    host,
    scheme: schemeOf(socket),
    httpVersion: 'HTTP/2',
    remoteAddress: socket?.remoteAddress,
    remotePort: socket?.remotePort,
    localAddress: socket?.localAddress,
    localPort: socket?.localPort,
    headers: withForwardedHost(lowerNames(forwarded), host),
    body: null,
    partial: false,
    size: -1,
  };
}

function withoutPseudo(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!raw[i]!.startsWith(':')) out.push(raw[i]!, raw[i + 1]!);
  return out;
}
