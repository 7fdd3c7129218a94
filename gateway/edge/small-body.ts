/**
 * Bodies small enough to be read whole before anything is done with them: a request sent upstream
 * in one write (REST), a feedback read for its token (REST and gRPC), a request described to the
 * external auth service.
 */
import type { Readable } from 'node:stream';
import type { RestRequest } from './rest-exchange.js';
import { joinPieces } from '../wire/message-body.js';

/**
 * A body this small (by Content-Length) is read whole before it is sent, as nginx buffers request
 * bodies: one write upstream instead of a stream, and a body that can be sent again after a
 * connect failure. Larger and chunked bodies stream. (The HTTP/1.1 lane reads bodies up to this whole.)
 */
export const SMALL_BODY_BYTES = 64 * 1024;

/** The request says it has a body of at most SMALL_BODY_BYTES (Content-Length, not chunked). */
export function isSmall(req: RestRequest): boolean {
  const cl = req.field('content-length');
  return cl !== undefined && req.field('transfer-encoding') === undefined && Number(cl) <= SMALL_BODY_BYTES;
}

/**
 * Read a body up to `limit` bytes: `done(body)` when it ended within it, else `done(null, chunks
 * read so far)` with the stream paused for whoever streams the rest.
 */
export function readSmallBody(req: Readable, limit: number, done: (body: Buffer | null, rest?: Buffer[]) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (c: Buffer): void => {
    chunks.push(c);
    size += c.length;
    if (size > limit) {
      req.off('data', onData);
      req.off('end', onEnd);
      req.pause();
      done(null, chunks);
    }
  };
  const onEnd = (): void => {
    req.off('data', onData);
    done(joinPieces(chunks, size));
  };
  req.on('data', onData);
  req.once('end', onEnd);
}
