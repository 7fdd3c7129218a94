/**
 * REST requests refused before routing, whichever HTTP version brought them (Node's HTTP/1.1
 * server's and HTTP/2's; the lane's parser takes none of these shapes): TRACE, a repeated,
 * missing or invalid Host (routing/values/host.ts), a framing field's look-alike, more header lines than --max-headers-count, a
 * Transfer-Encoding other than chunked, a body over --max-body. Each is answered with the
 * gateway's JSON error and `connection: close`, and counted.
 */
import type { EdgeConfig } from '../config/edge.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { GatewayReason } from './errors.js';
import type { RestRequest, RestResponse } from './rest-exchange.js';
import { isWhole } from '../wire/message-body.js';
import { sendError } from './http-answer.js';
import { FRAMING_LOOKALIKE } from '../wire/http1-syntax.js';
import { INVALID_HOST, validHost } from '../../routing/values/host.js';

export class EdgeRefusals {
  constructor(
    private readonly limits: Pick<EdgeConfig, 'maxHeadersCount' | 'maxBodyBytes'>,
    private readonly metrics: GatewayMetrics,
  ) {}

  /**
   * Requests refused before routing: repeated Host, a Transfer-Encoding not ending in chunked,
   * a framing field's look-alike, TRACE, a body over --max-body (by Content-Length at once, or as
   * a chunked body streams).
   */
  refused(req: RestRequest, res: RestResponse): boolean {
    const refuse = (status: number, reason: GatewayReason, label: string, info: string, extra?: Record<string, string>): true => {
      this.metrics.clientErrors.labels(label).inc();
      sendError(req, res, status, reason, info, { connection: 'close', ...extra });
      return true;
    };
    if (req.method === 'TRACE') return refuse(405, 'METHOD_NOT_ALLOWED', 'method_not_allowed', 'TRACE is not allowed', { allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' });
    const raw = req.rawHeaders;
    let hosts = 0;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      if (name.length === 4 && name.toLowerCase() === 'host' && ++hosts > 1) return refuse(400, 'BAD_REQUEST', 'bad_request', 'more than one Host header');
      if ((name.length === 14 || name.length === 17) && FRAMING_LOOKALIKE.test(name)) {
        return refuse(400, 'BAD_REQUEST', 'bad_request', `a "${name}" header is refused: a server that reads "_" as "-" would frame the body by it`);
      }
    }
    if (hosts === 0 && req.httpVersionMinor === 1) return refuse(400, 'BAD_REQUEST', 'bad_request', 'an HTTP/1.1 request needs a Host header');
    // RFC 9112 §3.2: an invalid Host is a 400, never routed nor forwarded (HTTP/2's :authority is `host` here).
    const host = req.host;
    if ((hosts > 0 || host !== '') && !validHost(host)) return refuse(400, 'BAD_REQUEST', 'bad_request', INVALID_HOST);
    // Node's parser stops keeping header lines past maxHeadersCount (set one over the limit): refuse, never truncate.
    if (raw.length / 2 > this.limits.maxHeadersCount) {
      return refuse(431, 'HEADERS_TOO_LARGE', 'headers_too_large', `the request has more than ${this.limits.maxHeadersCount} header lines`);
    }
    const te = req.headers['transfer-encoding'];
    if (te !== undefined) {
      if (!/(?:^|,)[ \t]*chunked[ \t]*$/i.test(te)) return refuse(400, 'BAD_REQUEST', 'bad_request', `Transfer-Encoding "${te}" does not end in chunked`);
      // Like Envoy and nginx: a transfer coding other than chunked is not implemented (never forwarded as if plain).
      if (!/^[ \t]*chunked[ \t]*$/i.test(te)) return refuse(501, 'NOT_IMPLEMENTED', 'not_implemented', `Transfer-Encoding "${te}" is not implemented: only chunked is`);
    }
    const max = this.limits.maxBodyBytes;
    if (max === 0) return false;
    const cl = req.headers['content-length'];
    if (cl !== undefined) return Number(cl) > max ? refuse(413, 'PAYLOAD_TOO_LARGE', 'body_too_large', `the request body (${cl} bytes) is larger than ${max} bytes`) : false;
    const body = req.body;
    if (te !== undefined && !isWhole(body)) {
      // A chunked body is counted as Node's parser hands it over; over the limit, it is answered
      // 413 (unless an answer has started: then it is cut) and nothing more of it is passed on,
      // not even its end: what was already streamed to the model never arrives whole (the
      // upstream request is aborted when the answer closes). The rest is read and dropped.
      let size = 0;
      let over = false;
      const push = body.push;
      body.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
        if (over) return true;
        if (chunk !== null && chunk !== undefined) {
          size += (chunk as Buffer).length;
          if (size > max) {
            over = true;
            if (res.headersSent) res.destroy();
            else refuse(413, 'PAYLOAD_TOO_LARGE', 'body_too_large', `the request body is larger than ${max} bytes`);
            return true;
          }
        }
        return push.call(body, chunk, encoding);
      };
    }
    return false;
  }
}
