/**
 * A REST request's body as the gateway holds it, and whether a head announces one (RFC 9112 §6.3):
 * one definition for the exchange interface (edge/rest-exchange.ts) and everything that reads a
 * request through it (the codecs, the refusals, the auth service's request, the access log's count).
 */
import type { Readable } from 'node:stream';

/**
 * The request body: whole, read before the request was served (the lane's up to 64 KiB; null: none), or the
 * stream it arrives on (Node's and HTTP/2's, the request's own Readable; the lane's `LaneBody` for a larger
 * one; it may turn out empty).
 */
export type RestBody = Buffer | null | Readable;

/** The body arrived whole before the request was served (or there is none): nothing to stream. */
export const isWhole = (body: RestBody): body is Buffer | null => body === null || Buffer.isBuffer(body);

/** Whether a request's head announces a body (Transfer-Encoding, or a Content-Length other than 0); read by name (`RestRequest.field`), no header object built. */
export function announcesBody(req: { field(name: string): string | undefined }): boolean {
  if (req.field('transfer-encoding') !== undefined) return true;
  const length = req.field('content-length');
  return length !== undefined && length !== '0';
}

/**
 * Bytes kept from the pieces they arrived in: one piece is itself, shared, not copied; more are joined
 * in the one copy a kept body costs (a retry's buffer, the mirrors', the payload log's; the pieces an
 * answer's compressor was busy for).
 */
export const joinPieces = (pieces: readonly Buffer[], size: number): Buffer => (pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, size));
