/**
 * The edge policy of Node's HTTP/1.1 server (and of the lane's timeouts, answered the same way):
 * what it does before a request reaches the REST path and what it answers itself.
 *
 * - requests are served one at a time per connection, none after an answer that closes it
 *   (edge/http1-serial.ts), an absolute-form target as its origin form;
 * - a parse error (llhttp's), a head over --max-header-size, a request slower than
 *   --client-request-timeout: the gateway's JSON answer (400, 431, 413, 408), placed by the
 *   pipeline, then the connection closes; anything else Node reports ends the connection;
 * - CONNECT: 405 (this is a reverse proxy).
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { GatewayReason } from './errors.js';
import { rawAnswer, sendError } from './http-answer.js';
import { Http1Serial } from './http1-serial.js';
import { isLingering, lingeringClose } from './lingering-close.js';
import type { NodeRequest, NodeResponse } from './node-exchange.js';
import type { LaneExchange } from './lane-exchange.js';
import { BODY_TOO_LARGE } from '../wire/chunked-body.js';

const CLIENT_ERRORS: Record<string, [number, GatewayReason, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'HEADERS_TOO_LARGE', 'headers_too_large', 'the request head is larger than the gateway accepts'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'REQUEST_TIMEOUT', 'request_timeout', 'the request was not received in time'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'PAYLOAD_TOO_LARGE', 'body_too_large', 'chunk extensions are too large'],
  // The lane's chunked body over --max-body (edge/http1-lane.ts), as edge/refusals.ts answers Node's.
  [BODY_TOO_LARGE]: [413, 'PAYLOAD_TOO_LARGE', 'body_too_large', 'the request body is larger than --max-body'],
};

/**
 * An absolute-form request target (`POST http://host/seldon/...`, RFC 9112 §3.2.2) is served as
 * its origin form, with the target's authority as the Host (the received Host is ignored).
 */
export function absoluteForm(req: NodeRequest): void {
  // The rest as sent (a fragment too, which routing refuses as in an origin-form target).
  const m = /^https?:\/\/([^/?#]*)(.*)/is.exec(req.url);
  if (m === null) return;
  const authority = m[1]!.slice(m[1]!.lastIndexOf('@') + 1);
  const path = m[2]!;
  req.url = path.startsWith('/') ? path : `/${path}`;
  const raw = req.rawHeaders;
  let replaced = false;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') {
      if (replaced) {
        raw.splice(i, 2);
        i -= 2;
      } else raw[i + 1] = authority;
      replaced = true;
    }
  }
  if (!replaced) raw.push('Host', authority);
  req.headers.host = authority;
}

export interface Http1EdgeDeps {
  readonly metrics: GatewayMetrics;
  /** A request in its turn, in origin form: the data plane's entry to the REST path. */
  readonly serve: (req: NodeRequest, res: NodeResponse) => void;
}

export class Http1Edge {
  /** Node's server's requests, one at a time per connection, none after an answer that closes it. */
  private readonly pipelines: Http1Serial;

  constructor(private readonly deps: Http1EdgeDeps) {
    this.pipelines = new Http1Serial({
      serve: (req, res) => {
        if (req.url.charCodeAt(0) !== 47 /* / */) absoluteForm(req);
        deps.serve(req, res);
      },
      // The request's own exchange (the proxy's, fastify's) logs it and sees its answer close. No
      // Date: the answer reads as the lane's and the bare socket's (rawAnswer) do.
      respond: (req, res, r) => {
        res.sendDate = false;
        sendError(req, res, r.status, r.reason, r.info, { connection: 'close' });
      },
      answer: (socket, r) => rawAnswer(socket, r.status, r.reason, r.info, r.extra, this.pipelines.headBroke(socket)),
    });
  }

  /** `node:http`'s 'request' listener. */
  get request(): (req: NodeRequest, res: NodeResponse) => void {
    return this.pipelines.request;
  }

  /**
   * Node's parser refused what it read (or a request timed out): the edge's answer, then the
   * connection closes. Where the answer goes (the request being served, after the answers before
   * it, or the bare socket now) is the pipeline's call (edge/http1-serial.ts).
   */
  readonly clientError = (err: Error & { code?: string }, socket: Socket): void => {
    // Its lingering close reads and drops the rest: the parser's end-of-input error is no request's.
    if (isLingering(socket)) return;
    if (err.code === 'HPE_CLOSED_CONNECTION') {
      // Bytes after `Connection: close`: nothing to serve or answer; an answer still coming goes first.
      if (!this.pipelines.refuse(socket, null)) lingeringClose(socket);
      return;
    }
    const known = err.code ? CLIENT_ERRORS[err.code] : undefined;
    if (known === undefined && err.code?.startsWith('HPE_') !== true) {
      socket.destroy();
      return;
    }
    const [status, reason, label, info] = known ?? [400, 'BAD_REQUEST', 'bad_request', `malformed request (${err.code})`];
    this.deps.metrics.clientErrors.labels(label).inc();
    const refusal = { status, reason, info };
    if (this.pipelines.refuse(socket, refusal)) return;
    if (socket.writable) rawAnswer(socket, status, reason, info, '', this.pipelines.headBroke(socket));
    else socket.destroy();
  };

  /**
   * A request the lane was receiving was not received in time: answered as Node's server answers its
   * own. One being served while its body streamed in (`served`) is answered on its own exchange
   * (whose close aborts the model's request), or cut when its answer has begun, as Node's is
   * (edge/http1-serial.ts `refuse`).
   */
  readonly timedOut = (socket: Socket, served?: LaneExchange): void => {
    if (served === undefined) {
      this.clientError(Object.assign(new Error('request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), socket);
      return;
    }
    this.bodyRefused(socket, 'ERR_HTTP_REQUEST_TIMEOUT', served);
  };

  /**
   * The lane refused a streaming body as Node's parser refuses it (llhttp's `code`: a malformed
   * chunked body; over --max-body), or it was not received in time: answered as `clientError` and
   * edge/http1-serial.ts `refuse` answer that code. A request being served (`served`) is answered on
   * its own exchange (whose close aborts the model's request), or cut when its answer has begun; one
   * answered already (a 404 before its body was read) gets no second answer: the connection closes.
   */
  readonly bodyRefused = (socket: Socket, code: string, served?: LaneExchange): void => {
    const [status, reason, label, info] = CLIENT_ERRORS[code] ?? [400, 'BAD_REQUEST', 'bad_request', `malformed request (${code})`];
    this.deps.metrics.clientErrors.labels(label).inc();
    if (served === undefined) socket.destroySoon();
    else if (served.headersSent) socket.destroy();
    else {
      // No Date, as `respond` above answers Node's.
      served.sendDate = false;
      sendError(served, served, status, reason, info, { connection: 'close' });
    }
  };

  /**
   * `node:http`'s 'connect' listener: a reverse proxy tunnels nothing. Answered as a parse error
   * is, after the answers to the requests before it, and not at all behind one that closed the
   * connection (Node's parser reads ahead: the CONNECT may come behind a refusal already sent).
   */
  readonly connect = (_req: IncomingMessage, socket: Socket): void => {
    if (isLingering(socket)) return;
    this.deps.metrics.clientErrors.labels('method_not_allowed').inc();
    const refusal = { status: 405, reason: 'METHOD_NOT_ALLOWED', info: 'CONNECT is not allowed: this is a reverse proxy', extra: 'allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n' } as const;
    if (!this.pipelines.refuse(socket, refusal)) rawAnswer(socket, refusal.status, refusal.reason, refusal.info, refusal.extra);
  };
}
