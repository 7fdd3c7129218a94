/**
 * Writing the gateway's own REST answers (the bodies are edge/errors.ts's): one home for every
 * error the gateway makes on REST, used by the REST proxy, the data plane's edge checks and the
 * rendering of the gate's refusals. Over HTTP/2 the response is edge/h2-exchange.ts's, which leaves out
 * what HTTP/2 cannot carry (the reason phrase, `connection`).
 */
import { STATUS_CODES } from '../wire/node-http.js';
import type { Socket } from 'node:net';
import { errorBody, type GatewayReason } from './errors.js';
import type { RestRequest, RestResponse } from './rest-exchange.js';
import { lingeringClose } from './lingering-close.js';

/**
 * Send a JSON answer the gateway made (no body for HEAD). Never throws: when an answer has
 * already begun (or cannot be written), the client's stream is reset instead; one already
 * complete (the edge's answer to a request whose body broke off) is left to go out.
 */
export function sendJson(req: RestRequest, res: RestResponse, status: number, body: string, extra?: Readonly<Record<string, string>>): void {
  sendWhole(req, res, status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...extra }, body);
}

/**
 * Send a whole answer the gateway made or relays (`headers` with its Content-Length; no body for
 * HEAD). Never throws; an answer already begun is reset instead (see `sendJson`).
 */
export function sendWhole(req: RestRequest, res: RestResponse, status: number, headers: Record<string, string | string[]> | string[], body: string | Buffer): void {
  if (res.headersSent || res.destroyed) {
    if (!res.writableEnded) res.destroy();
    return;
  }
  try {
    // The reason phrase is always given: a failed writeHead (an upstream's bad one) leaves its own behind.
    res.writeHead(status, STATUS_CODES[status] ?? 'Unknown', headers);
    if (req.method === 'HEAD') res.end();
    else res.end(body);
  } catch {
    res.destroy();
  }
}

/** Send a gateway-made error with its Seldon-style JSON body (`errorBody`); see `sendJson`. */
export function sendError(req: RestRequest, res: RestResponse, status: number, reason: GatewayReason, info: string, extra?: Readonly<Record<string, string>>): void {
  sendJson(req, res, status, errorBody(status, reason, info), extra);
}

/**
 * An answer written straight on a socket (before or outside HTTP parsing), then closed (lingering:
 * the client may be sending). To a HEAD request (`head`), without its body, as HEAD answers are.
 */
export function rawAnswer(socket: Socket, status: number, reason: GatewayReason, info: string, extra = '', head = false): void {
  const body = errorBody(status, reason, info);
  socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${head ? '' : body}`);
  lingeringClose(socket);
}
