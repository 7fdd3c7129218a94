/**
 * REST over HTTP/2 (h2c by prior knowledge; h2 by TLS ALPN, on the same server): the HTTP/2
 * server's streams that are not gRPC become requests of the one REST path — the same edge checks,
 * routing, gate, proxy, mirrors, metrics and taps as HTTP/1.1 (process/data-plane.ts `serve`),
 * and the model is still reached over HTTP/1.1.
 *
 * Each stream becomes an exchange of edge/h2-exchange.ts (`H2Request`, `H2Response`: the REST
 * exchange's HTTP/2 adapter, edge/rest-exchange.ts), so rest/proxy.ts has no second code path. Here:
 *
 * - request head: pseudo-header fields never go upstream; `:authority` is the Host (RFC 9113
 *   §8.3.1; a Host field naming another authority is a 400), `cookie` fields are joined with "; "
 *   (§8.2.3), `:method` and `:path` are the method and the target;
 * - request body: one without content-length is, to the REST path, what a chunked HTTP/1.1 body is
 *   (streamed, counted against --max-body); a request whose stream closes before its body ended
 *   is destroyed, as IncomingMessage is;
 * - answers: one that is complete while the client is still sending is followed by RST_STREAM
 *   NO_ERROR, which tells it to stop (§8.1);
 * - the edge limits HTTP/1.1 gets from Node's parser: the head size (--max-header-size, counted
 *   as the HTTP/1.1 head it becomes: 431), --client-request-timeout (408), CONNECT (405),
 *   `Expect` (100 Continue, or 417).
 *
 * Requests with connection-specific fields, a `te` other than "trailers", upper-case field names or
 * a content-length that is not one number never get here: nghttp2 resets such a stream
 * (PROTOCOL_ERROR), RFC 9113 §8.2 makes them malformed; so it does when DATA contradicts the
 * content-length (beyond it, Node 24's nghttp2 ends the whole session with GOAWAY). Fields whose
 * value holds CR, LF or NUL or surrounding whitespace, or whose name is not a token, are malformed
 * too (§8.2.1), but nghttp2 hands them to Node's on-invalid-header callback, which ignores them,
 * and Node offers no way to see or change that: such a request arrives here without those fields,
 * and is served without them (they never reach the model; nginx and haproxy reset the stream).
 * Rapid-reset protection, SETTINGS and GOAWAY on drain are the server's (grpc/proxy.ts), for REST
 * streams too.
 */
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { GatewayReason } from '../edge/errors.js';
import type { RestRequest, RestResponse } from '../edge/rest-exchange.js';
import { H2Request, H2Response, peerOf } from '../edge/h2-exchange.js';
import { sendError } from '../edge/http-answer.js';
import { h2RequestHeaders } from '../edge/http-headers.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { EdgeConfig } from '../config/edge.js';

const { NGHTTP2_NO_ERROR, NGHTTP2_INTERNAL_ERROR, NGHTTP2_CANCEL } = http2.constants;
const ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';
const ignore = (): void => undefined;

/**
 * The Host an HTTP/1.1 request made of this one carries: `:authority` (RFC 9113 §8.3.1), or a
 * single Host field without it; a problem (a 400) when they name different authorities.
 * (nghttp2 already resets a stream with neither, or with two Host fields.)
 */
export function h2Host(headers: IncomingHttpHeaders, raw: readonly string[]): { host: string } | { problem: string } {
  const authority = headers[':authority'];
  let host: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i] !== 'host') continue;
    if (host !== undefined) return { problem: 'more than one Host header' };
    host = raw[i + 1]!;
  }
  if (authority === undefined || authority === '') {
    return host === undefined || host === '' ? { problem: 'an HTTP/2 request needs :authority (or a Host header)' } : { host };
  }
  if (host !== undefined && normalAuthority(host, headers[':scheme']) !== normalAuthority(authority, headers[':scheme'])) {
    return { problem: 'the Host header names another authority than :authority' };
  }
  return { host: authority };
}

/** Scheme-based normalisation (RFC 3986 §6.2.2, §6.2.3): case, and the scheme's default port. */
function normalAuthority(a: string, scheme: string | undefined): string {
  const lower = a.toLowerCase();
  const dflt = scheme === 'https' ? ':443' : ':80';
  return lower.endsWith(dflt) ? lower.slice(0, -dflt.length) : lower;
}

/** The size of the HTTP/1.1 head this request becomes (request line, header lines): what --max-header-size bounds. */
function headSize(method: string, path: string, raw: readonly string[]): number {
  let n = method.length + path.length + 13;
  for (let i = 0; i < raw.length; i += 2) n += raw[i]!.length + raw[i + 1]!.length + 4;
  return n;
}

export interface H2RestDeps {
  readonly edge: Pick<EdgeConfig, 'maxHeaderBytes' | 'clientRequestTimeoutMs'>;
  readonly metrics: GatewayMetrics;
  /** Where a request goes once it is one of the REST path: the data plane's entry, shared with HTTP/1.1. */
  readonly serve: (req: H2Request, res: H2Response) => void;
  /** Connections REST is not served on (--grpc-port: gRPC only): their non-gRPC streams get the 404. */
  readonly grpcOnly?: ((socket: Socket) => boolean) | undefined;
  /** The access-log / tracing tap of answers the gateway makes itself (observe/observed-rest.ts). */
  readonly answered?: ((req: RestRequest, res: RestResponse) => void) | undefined;
  /** A bug caught here: counted and logged (rest/proxy.ts `internalError`), the stream fails alone. */
  readonly failed?: ((err: Error) => void) | undefined;
}

/** The HTTP/2 server's non-gRPC streams, as REST requests (wired into grpc/proxy.ts's `rest` dependency by the data plane). */
export class H2Rest {
  constructor(private readonly deps: H2RestDeps) {}

  /** A stream whose content-type is not gRPC's. Nothing thrown here leaves: it fails this stream only. */
  readonly stream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[]): void => {
    if (stream.destroyed || stream.closed) return;
    let req: H2Request | undefined;
    let res: H2Response | undefined;
    try {
      const method = headers[':method'] ?? 'GET';
      const path = headers[':path'] ?? '';
      const refused = this.refused(stream, headers, rawHeaders, method, path);
      const host = 'host' in refused ? refused.host : '';
      const raw = h2RequestHeaders(rawHeaders, host);
      headers.host = host;
      // A body without content-length: to the REST path (proxy, --max-body, fastify), a chunked one.
      // The field is in the header object only, never in the raw headers that go upstream.
      if (!stream.endAfterHeaders && headers['content-length'] === undefined) headers['transfer-encoding'] = 'chunked';
      req = new H2Request(stream, headers, raw, peerOf(stream.session?.socket as Socket | undefined));
      res = new H2Response(stream);
      this.watch(stream, req, res);
      if ('problem' in refused) return this.refuse(req, res, refused.status, refused.reason, refused.label, refused.problem, refused.extra);
      if (headSize(method, path, raw) > this.deps.edge.maxHeaderBytes) {
        return this.refuse(req, res, 431, 'HEADERS_TOO_LARGE', 'headers_too_large', 'the request head is larger than the gateway accepts');
      }
      const expect = headers.expect;
      if (expect !== undefined) {
        if (expect.toLowerCase() !== '100-continue') return this.refuse(req, res, 417, 'BAD_REQUEST', 'bad_request', `Expect "${expect}" is not supported: only 100-continue is`);
        res.writeContinue();
      }
      this.deps.serve(req, res);
    } catch (err) {
      this.deps.failed?.(err as Error);
      if (req !== undefined && res !== undefined) sendError(req, res, 502, 'INTERNAL_ERROR', 'the gateway failed to handle this request');
      else if (!stream.closed) stream.close(NGHTTP2_INTERNAL_ERROR);
    }
  };

  /** Refusals decided from the head alone (the Host rule, CONNECT, --grpc-port); else the Host to use. */
  private refused(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    raw: readonly string[],
    method: string,
    path: string,
  ): { host: string } | { problem: string; status: number; reason: GatewayReason; label: string; extra?: Record<string, string> } {
    if (method === 'CONNECT') return { problem: 'CONNECT is not allowed: this is a reverse proxy', status: 405, reason: 'METHOD_NOT_ALLOWED', label: 'method_not_allowed', extra: { allow: ALLOW } };
    const socket = stream.session?.socket as Socket | undefined;
    if (socket !== undefined && this.deps.grpcOnly?.(socket) === true) {
      return { problem: `no route for ${path}: this port serves gRPC only (content-type application/grpc); send REST to the public port`, status: 404, reason: 'NO_ROUTE', label: '' };
    }
    const h = h2Host(headers, raw);
    return 'host' in h ? h : { problem: h.problem, status: 400, reason: 'BAD_REQUEST', label: 'bad_request' };
  }

  private refuse(req: RestRequest, res: RestResponse, status: number, reason: GatewayReason, label: string, info: string, extra?: Record<string, string>): void {
    if (label !== '') this.deps.metrics.clientErrors.labels(label).inc();
    // Answered from the head on arrival: its duration is the answer's own.
    else this.deps.metrics.unroutedRequest('rest', reason, status, performance.now());
    this.deps.answered?.(req, res);
    sendError(req, res, status, reason, info, extra);
  }

  /**
   * Per stream: once the answer has gone out while the client is still sending, RST_STREAM
   * NO_ERROR (it stops sending; RFC 9113 §8.1); a request whose stream closes before its body
   * ended is destroyed with an 'aborted' error, as IncomingMessage is when its client goes away
   * mid-body (after 'close', so the answer's 'close' counts it 499 and aborts the upstream
   * request first); --client-request-timeout until the body ends.
   */
  private watch(stream: ServerHttp2Stream, req: H2Request, res: H2Response): void {
    stream.once('finish', () => {
      if (!stream.closed && !req.received && !stream.endAfterHeaders) stream.close(NGHTTP2_NO_ERROR);
    });
    // Readers of the body may come and go (the proxy's body stream, fastify): the error never goes unheard.
    req.on('error', ignore);
    req.once('close', () => {
      if (!req.received && !stream.endAfterHeaders && !req.destroyed) req.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    });
    const ms = this.deps.edge.clientRequestTimeoutMs;
    if (ms <= 0 || stream.endAfterHeaders) return;
    const timer = setTimeout(() => {
      if (req.received || stream.closed) return;
      this.deps.metrics.clientErrors.labels('request_timeout').inc();
      if (res.headersSent) stream.close(NGHTTP2_CANCEL);
      else sendError(req, res, 408, 'REQUEST_TIMEOUT', 'the request was not received in time');
    }, ms);
    timer.unref();
    stream.once('close', () => clearTimeout(timer));
  }
}
