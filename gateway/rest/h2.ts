/**
 * REST over HTTP/2 (h2c by prior knowledge; h2 by TLS ALPN, on the same server): the HTTP/2
 * server's streams that are not gRPC become requests of the one REST path — the same edge checks,
 * routing, gate, proxy, mirrors, metrics and taps as HTTP/1.1 (process/data-plane.ts `serve`),
 * and the model is still reached over HTTP/1.1.
 *
 * Node's HTTP/2 compatibility API (Http2ServerRequest / Http2ServerResponse) already presents a
 * stream as the request and response the REST path reads and writes. The subclasses here close the
 * gaps between an HTTP/2 exchange and the HTTP/1.1 message the proxy forwards, so rest/proxy.ts has
 * no second code path:
 *
 * - request head: pseudo-header fields never go upstream; `:authority` is the Host (RFC 9113
 *   §8.3.1; a Host field naming another authority is a 400), `cookie` fields are joined with "; "
 *   (§8.2.3), `:method` and `:path` are the method and the target;
 * - request body: one without content-length is, to the REST path, what a chunked HTTP/1.1 body is
 *   (streamed, counted against --max-body); `complete` means END_STREAM arrived, as
 *   IncomingMessage's does, and a stream reset before it never passes for the end of the body (so
 *   the model never gets a cut body framed as whole);
 * - answers: connection-specific fields (Connection, Keep-Alive, Transfer-Encoding, Upgrade,
 *   Proxy-Connection, TE) are not sent and the reason phrase is dropped (HTTP/2 has neither, and
 *   Node would warn); a field Node writes once only keeps its first value (it throws on two); an answer cut short is RST_STREAM INTERNAL_ERROR (a plain destroy resets with
 *   NO_ERROR, which a client takes for a complete answer); an answer that is complete while the
 *   client is still sending is followed by RST_STREAM NO_ERROR, which tells it to stop (§8.1);
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
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { GatewayReason } from '../edge/errors.js';
import { sendError } from '../edge/http-answer.js';
import { h2RequestHeaders } from '../edge/http-headers.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { EdgeConfig } from '../config.js';

const { NGHTTP2_NO_ERROR, NGHTTP2_INTERNAL_ERROR, NGHTTP2_CANCEL } = http2.constants;
const ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';
const NO_OPTIONS = {};
const ignore = (): void => undefined;

/** Response fields HTTP/2 forbids (RFC 9113 §8.2.2): never written, whoever set them. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings']);
const CONNECTION_SPECIFIC_LENGTHS = new Set([...CONNECTION_SPECIFIC].map((n) => n.length));
const connectionSpecific = (name: string): boolean => CONNECTION_SPECIFIC_LENGTHS.has(name.length) && CONNECTION_SPECIFIC.has(name.toLowerCase());
/**
 * Fields Node's HTTP/2 writes once only (it throws on a second): a model's repeated one (two
 * Content-Types) goes with its first value rather than cost the whole answer.
 */
const SINGLE_VALUE = new Set([
  'access-control-allow-credentials', 'access-control-max-age', 'access-control-request-method', 'age', 'authorization',
  'content-encoding', 'content-language', 'content-length', 'content-location', 'content-md5', 'content-range', 'content-type',
  'date', 'dnt', 'etag', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'range', 'referer', 'retry-after',
  'tk', 'upgrade-insecure-requests', 'user-agent', 'x-content-type-options',
]);

/** The connection's addresses, read once when the stream arrives: they outlive the stream (the access log reads them after it closed). */
export interface H2Peer {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly remoteFamily: string | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  readonly encrypted: boolean | undefined;
}

function peerOf(socket: Socket | undefined): H2Peer {
  return {
    remoteAddress: socket?.remoteAddress,
    remotePort: socket?.remotePort,
    remoteFamily: socket?.remoteFamily,
    localAddress: socket?.localAddress,
    localPort: socket?.localPort,
    encrypted: (socket as { encrypted?: boolean } | undefined)?.encrypted,
  };
}

/** Node's `socket` of a compatibility request: a stand-in whose operations act on the stream. */
const compatSocket = Object.getOwnPropertyDescriptor(http2.Http2ServerRequest.prototype, 'socket')!.get!;

/** An HTTP/2 request as the REST path reads an IncomingMessage. */
export class H2Request extends http2.Http2ServerRequest {
  /** END_STREAM arrived: the whole body has been received. */
  received = false;
  /** The `socket` handed out (made on first use). */
  socketView: Socket | undefined;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[], readonly peer: H2Peer) {
    super(stream, headers, NO_OPTIONS, rawHeaders);
  }

  /**
   * The body's end, as the stream reports it. A stream closed by a reset also ends its readable
   * side: that is not the end of the body, and is never passed on as one (the request is
   * destroyed when it closes instead: `H2Rest.watch`).
   */
  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk === null) {
      const s = this.stream;
      if (s.aborted || (s.closed && s.rstCode !== NGHTTP2_NO_ERROR)) return false;
      this.received = true;
    }
    return super.push(chunk, encoding);
  }

  /** Node's reader asserts its stream is open: a request read after its stream closed has nothing more to give. */
  override _read(size: number): void {
    if (!this.stream.closed && !this.stream.destroyed) super._read(size);
  }
}

// Accessors over properties of the base class's declared type, so not declarable in the class body:
// - `complete`: Node's is true once the stream closed, reset or not; IncomingMessage's (which the
//   REST path reads) means the body arrived whole;
// - `socket`: Node's stand-in (destroy, 'close' act on the stream), with the peer's addresses as
//   they were when the stream arrived (Node's answers undefined once the stream has closed).
Object.defineProperties(H2Request.prototype, {
  complete: {
    get(this: H2Request): boolean {
      return this.received || this.stream.endAfterHeaders;
    },
  },
  socket: {
    get(this: H2Request): Socket {
      const peer = this.peer;
      return (this.socketView ??= new Proxy(compatSocket.call(this) as Socket, {
        get: (target, prop) => (typeof prop === 'string' && Object.hasOwn(peer, prop) ? peer[prop as keyof H2Peer] : Reflect.get(target, prop)),
      }));
    },
  },
});

/** An HTTP/2 answer as the REST path writes a ServerResponse. */
export class H2Response extends http2.Http2ServerResponse {
  /** HTTP/2 has no reason phrase (it is dropped) and no connection-specific fields (removed). */
  override writeHead(statusCode: number, headers?: OutgoingHttpHeaders | readonly string[]): this;
  override writeHead(statusCode: number, statusMessage: string, headers?: OutgoingHttpHeaders | readonly string[]): this;
  override writeHead(statusCode: number, a?: string | OutgoingHttpHeaders | readonly string[], b?: OutgoingHttpHeaders | readonly string[]): this {
    const given = typeof a === 'string' ? b : a;
    if (given === undefined) return super.writeHead(statusCode);
    try {
      if (isFlat(given)) {
        let kept: string[] | undefined;
        let once: Set<string> | undefined;
        for (let i = 0; i < given.length; i += 2) {
          const name = given[i]!.toLowerCase();
          let drop = connectionSpecific(name);
          if (!drop && SINGLE_VALUE.has(name)) {
            drop = once?.has(name) === true;
            (once ??= new Set()).add(name);
          }
          if (drop) kept ??= given.slice(0, i);
          else kept?.push(given[i]!, given[i + 1]!);
        }
        // Node's compatibility API takes the flat [name, value, …] form too (the types say objects only).
        return super.writeHead(statusCode, (kept ?? given) as unknown as OutgoingHttpHeaders);
      }
      let copy: OutgoingHttpHeaders | undefined;
      for (const name in given) if (connectionSpecific(name)) delete (copy ??= { ...given })[name];
      return super.writeHead(statusCode, copy ?? given);
    } catch (err) {
      // Node keeps the fields it took before it threw: the next head (the gateway's 502) starts clean.
      for (const name of this.getHeaderNames()) this.removeHeader(name);
      throw err;
    }
  }

  /** A cut answer: RST_STREAM INTERNAL_ERROR (destroy() would reset with NO_ERROR, a clean end to the client). */
  override destroy(err?: Error): this {
    if (!this.stream.closed) this.stream.close(NGHTTP2_INTERNAL_ERROR);
    else if (!this.stream.destroyed) this.stream.destroy(err);
    return this;
  }
}

// ServerResponse.destroyed, which the REST path checks (Node's class, a legacy Stream, has none).
Object.defineProperty(H2Response.prototype, 'destroyed', {
  get(this: H2Response): boolean {
    return this.stream.destroyed;
  },
});

const isFlat = (h: OutgoingHttpHeaders | readonly string[]): h is readonly string[] => Array.isArray(h);

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
  readonly serve: (req: IncomingMessage, res: ServerResponse) => void;
  /** Connections REST is not served on (--grpc-port: gRPC only): their non-gRPC streams get the 404. */
  readonly grpcOnly?: ((socket: Socket) => boolean) | undefined;
  /** The access-log / tracing tap of answers the gateway makes itself (observe/observed-rest.ts). */
  readonly answered?: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  /** A bug caught here: counted and logged (rest/proxy.ts `internalError`), the stream fails alone. */
  readonly failed?: ((err: Error) => void) | undefined;
}

/** What the REST path reads of a request: checked at compile time against the subclass (`rest`). */
type RestReads = Pick<IncomingMessage, 'method' | 'url' | 'headers' | 'rawHeaders' | 'complete' | 'socket' | 'httpVersionMajor' | 'httpVersionMinor'>;
/** What it reads of a response besides writing to it. */
type RestWrites = Pick<ServerResponse, 'headersSent' | 'destroyed' | 'statusCode'>;

/**
 * The one place an HTTP/2 exchange is handed to the REST path, typed as HTTP/1.1's objects: the
 * compatibility objects with the subclasses above provide what that path uses (`RestReads`,
 * `RestWrites`, the stream methods of both, and `writeHead` with a flat header list).
 */
function rest(req: H2Request & RestReads, res: H2Response & RestWrites): [IncomingMessage, ServerResponse] {
  return [req as unknown as IncomingMessage, res as unknown as ServerResponse];
}

/** The HTTP/2 server's non-gRPC streams, as REST requests (wired into grpc/proxy.ts's `rest` dependency by the data plane). */
export class H2Rest {
  constructor(private readonly deps: H2RestDeps) {}

  /** A stream whose content-type is not gRPC's. Nothing thrown here leaves: it fails this stream only. */
  readonly stream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[]): void => {
    if (stream.destroyed || stream.closed) return;
    let exchange: [IncomingMessage, ServerResponse] | undefined;
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
      const h2req = new H2Request(stream, headers, raw, peerOf(stream.session?.socket as Socket | undefined));
      const h2res = new H2Response(stream);
      this.watch(stream, h2req, h2res);
      const [req, res] = (exchange = rest(h2req, h2res));
      if ('problem' in refused) return this.refuse(req, res, refused.status, refused.reason, refused.label, refused.problem, refused.extra);
      if (headSize(method, path, raw) > this.deps.edge.maxHeaderBytes) {
        return this.refuse(req, res, 431, 'HEADERS_TOO_LARGE', 'headers_too_large', 'the request head is larger than the gateway accepts');
      }
      const expect = headers.expect;
      if (expect !== undefined) {
        if (expect.toLowerCase() !== '100-continue') return this.refuse(req, res, 417, 'BAD_REQUEST', 'bad_request', `Expect "${expect}" is not supported: only 100-continue is`);
        h2res.writeContinue();
      }
      this.deps.serve(req, res);
    } catch (err) {
      this.deps.failed?.(err as Error);
      if (exchange !== undefined) sendError(exchange[0], exchange[1], 502, 'INTERNAL_ERROR', 'the gateway failed to handle this request');
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

  private refuse(req: IncomingMessage, res: ServerResponse, status: number, reason: GatewayReason, label: string, info: string, extra?: Record<string, string>): void {
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
      else sendError(...rest(req, res), 408, 'REQUEST_TIMEOUT', 'the request was not received in time');
    }, ms);
    timer.unref();
    stream.once('close', () => clearTimeout(timer));
  }
}
