/**
 * A REST request's body as the gateway holds it, and whether a head announces one (RFC 9112 §6.3):
 * one definition for the exchange interface (edge/rest-exchange.ts) and everything that reads a
 * request through it (the codecs, the refusals, the auth service's request, the access log's count).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';

/**
 * The request body: whole, read before the request was served (the lane's; null: none), or the
 * stream it arrives on (Node's and HTTP/2's, the request's own Readable; it may turn out empty).
 */
export type RestBody = Buffer | null | Readable;

/** The body arrived whole before the request was served (or there is none): nothing to stream. */
export const isWhole = (body: RestBody): body is Buffer | null => body === null || Buffer.isBuffer(body);

/** Whether a request's head announces a body (Transfer-Encoding, or a Content-Length other than 0). */
export const announcesBody = (req: { readonly headers: IncomingHttpHeaders }): boolean =>
  req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
