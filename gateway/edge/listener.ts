/**
 * The public port: HTTP/1.1, cleartext HTTP/2 (h2c with prior knowledge) and, with TLS on, TLS
 * on one listener, told apart per connection by its first bytes:
 *
 * - `0x16` (a TLS handshake record): with TLS on, the socket goes to the TLS termination
 *   (edge/tls.ts); once secured it is served by its ALPN protocol, `h2` by the HTTP/2 server
 *   (gRPC, REST over HTTP/2), `http/1.1` or none by the HTTP/1.1 server. Without TLS it is
 *   closed: a handshake cannot be answered in cleartext.
 * - the HTTP/2 preface (`PRI * …`): the HTTP/2 server;
 * - anything else: HTTP/1.1 (the gateway's lane, edge/http1-lane.ts, in front of `node:http`'s
 *   server, or that server alone).
 *
 * With TLS on, cleartext is served only with --tls-allow-cleartext. Otherwise HTTP/1.1 is
 * answered 400 (as nginx does, "plain HTTP request sent to HTTPS port", with the gateway's JSON
 * body) or, with --tls-redirect-cleartext, redirected to https://; h2c gets gRPC UNAVAILABLE
 * (or 400) saying the port takes TLS. Each is one answer, then the connection is closed.
 *
 * The first bytes are put back on the socket: the HTTP/2 session and the TLS socket read them
 * from the socket's buffer themselves, so those sockets are not resumed here.
 */
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createHttpServer } from '../wire/node-http.js';
import http2, { type Http2Server, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { errorBody, GrpcStatus } from './errors.js';
import type { TlsTermination } from './tls.js';

const PREFACE_START = 'PRI';
/** The content type of a TLS handshake record (RFC 8446 §5.1): the first byte of every ClientHello. */
const TLS_HANDSHAKE = 0x16;
const ignore = (): void => undefined;

export interface ListenerOptions {
  /** TLS on this port (--tls-cert / --tls-dir); absent: cleartext only. */
  readonly tls?: TlsTermination | undefined;
  /** A connection refused before any server took it (counted by the caller): `tls_on_cleartext_port`. */
  readonly refused?: ((reason: 'tls_on_cleartext_port') => void) | undefined;
  /** --client-header-timeout: how long the cleartext answers on a TLS port wait for a request head. */
  readonly headerTimeoutMs?: number | undefined;
  /** What an accepted connection's first bytes said it speaks (for the connection metrics). */
  readonly spoke?: ((socket: net.Socket, protocol: 'http1' | 'http2' | 'tls') => void) | undefined;
}

/** Who takes an HTTP/1.1 connection (its first bytes back on the socket, or a secured TLS socket). */
export type Http1Target = (socket: net.Socket) => void;

/** Where one kind of connection goes. */
interface Targets {
  readonly http1: Http1Target;
  readonly http2: Http2Server;
}

const serverTarget =
  (server: HttpServer): Http1Target =>
  (socket) =>
    server.emit('connection', socket);

export function sniffingServer(http1: Http1Target, http2: Http2Server, onConnection?: (socket: net.Socket) => void, options: ListenerOptions = {}): net.Server {
  const termination = options.tls;
  // The servers cleartext connections go to: the serving ones, or (TLS on) ones that only answer.
  let cleartext: Targets = { http1, http2 };
  if (termination !== undefined) {
    const c = termination.config;
    cleartext = {
      http1: c.redirectCleartext
        ? serverTarget(cleartextAnswers('redirect', options.headerTimeoutMs))
        : c.allowCleartext
          ? http1
          : serverTarget(cleartextAnswers('refuse', options.headerTimeoutMs, () => termination.plaintext())),
      http2: c.allowCleartext ? http2 : h2cAnswers(() => termination.plaintext()),
    };
    termination.server.on('secureConnection', (socket: TLSSocket) => {
      // Refused by the client-certificate check (edge/tls.ts, which listens first).
      if (socket.destroyed) return;
      if (socket.alpnProtocol === 'h2') http2.emit('connection', socket);
      else http1(socket);
    });
  }
  // Never listens itself: the caller (data-plane.ts) accepts and emits 'connection' on it.
  return net.createServer((socket) => {
    onConnection?.(socket);
    socket.on('error', () => socket.destroy());
    const first = (chunk: Buffer): void => {
      if (chunk[0] === TLS_HANDSHAKE) {
        if (termination === undefined) {
          options.refused?.('tls_on_cleartext_port');
          socket.destroy();
          return;
        }
        options.spoke?.(socket, 'tls');
        socket.pause();
        socket.unshift(chunk);
        // From here the handshake timeout (--client-header-timeout, idle) bounds it, then the
        // server that takes the secured socket; the raw socket's own timer would cut idle keep-alive.
        socket.setTimeout(0);
        socket.setNoDelay(true);
        termination.server.emit('connection', socket);
        return;
      }
      if (chunk.length < PREFACE_START.length && PREFACE_START.startsWith(chunk.toString('latin1'))) {
        // Too short to tell: wait for more.
        socket.once('data', (more: Buffer) => first(Buffer.concat([chunk, more])));
        return;
      }
      socket.pause();
      socket.unshift(chunk);
      if (chunk.toString('latin1', 0, 3) === PREFACE_START) {
        options.spoke?.(socket, 'http2');
        cleartext.http2.emit('connection', socket);
      } else {
        options.spoke?.(socket, 'http1');
        cleartext.http1(socket);
        socket.resume();
      }
    };
    socket.once('data', first);
  });
}

/**
 * Cleartext HTTP/1.1 on a TLS port: each request is answered (400 JSON, or a redirect to the
 * same host and path over https) and the connection closed. The redirect keeps the Host as the
 * client sent it, port included: the port that answered also takes TLS.
 */
function cleartextAnswers(mode: 'refuse' | 'redirect', headerTimeoutMs = 60_000, counted?: () => void): HttpServer {
  const server = createHttpServer(
    { requireHostHeader: false, headersTimeout: headerTimeoutMs, requestTimeout: headerTimeoutMs, connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headerTimeoutMs / 4))) },
    (req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      const target = mode === 'redirect' ? httpsLocation(req) : undefined;
      if (target !== undefined) {
        // 301 whatever the method: Envoy's https_redirect (Emissary's insecure action Redirect) leaves
        // RedirectAction.response_code at its default, MOVED_PERMANENTLY.
        res.writeHead(301, { location: target, 'content-length': 0, connection: 'close' });
        res.end();
        return;
      }
      counted?.();
      const info = mode === 'redirect' ? 'the plain HTTP request was sent to a TLS port, without a Host to redirect to: use https://' : 'the plain HTTP request was sent to a TLS port: use https://';
      const body = errorBody(400, 'BAD_REQUEST', info);
      res.writeHead(400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
      res.end(req.method === 'HEAD' ? undefined : body);
    },
  );
  // Never listens itself: 'listening' starts Node's header and request timeout checks (an unref'd interval).
  server.emit('listening');
  return server;
}

/** A Host header that can go into a URL as is: a DNS name or address, an optional port. */
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?)*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/** `https://<host><path>` for a cleartext request, or undefined when it names no usable host. */
export function httpsLocation(req: Pick<IncomingMessage, 'url' | 'headers'>): string | undefined {
  let host = req.headers.host;
  let path = req.url ?? '/';
  // Absolute form (`GET http://host/path`): its authority is the host (RFC 9112 §3.2.2).
  const absolute = /^https?:\/\/([^/?#]*)(.*)$/i.exec(path);
  if (absolute) {
    host = absolute[1]!.slice(absolute[1]!.lastIndexOf('@') + 1);
    path = absolute[2] || '/';
  }
  if (host === undefined || !HOST.test(host) || !path.startsWith('/') || path.startsWith('//')) return undefined;
  return `https://${host.toLowerCase()}${path}`;
}

/** Cleartext HTTP/2 on a TLS port: every stream is told to use TLS (gRPC UNAVAILABLE, else 400), then the session ends. */
function h2cAnswers(counted: () => void): Http2Server {
  const server = http2.createServer();
  server.on('sessionError', ignore);
  server.on('session', (session) => {
    session.on('error', ignore);
    counted();
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on('error', ignore);
    stream.resume();
    const info = 'this port takes TLS: connect with TLS (gRPC: channel credentials such as grpc.credentials.createSsl)';
    if (String(headers['content-type'] ?? '').startsWith('application/grpc')) {
      // Trailers-only (the message is plain ASCII: no percent-encoding needed).
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(GrpcStatus.UNAVAILABLE), 'grpc-message': info }, { endStream: true });
    } else {
      const body = errorBody(400, 'BAD_REQUEST', info);
      stream.respond({ ':status': 400, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      stream.end(headers[':method'] === 'HEAD' ? undefined : body);
    }
    // GOAWAY once this stream is done: one answer per connection.
    stream.session?.close();
  });
  return server;
}
