/**
 * A request body the HTTP/1.1 lane (edge/http1-lane.ts) streams rather than reads whole: a
 * Content-Length body over the lane's whole-body size, or a chunked one (its data decoded by
 * wire/chunked-body.ts), handed on as the client's socket reads it.
 *
 * Why a `Readable`: whatever reads a request body that streams (the upstream client through
 * rest/request-body.ts, a retry buffer, the mirrors' copy, the payload log, a decoder, the
 * --max-body count of edge/refusals.ts) reads Node's IncomingMessage, a `Readable`; this is one
 * too, so each feature keeps its one rule for when it keeps a body (rest/exchange-body.ts `start`).
 *
 * Each chunk is a view of the socket's read (wire/read-buffer.ts): no copy, no join. The upstream
 * client says which chunks it wrote on whole (`passed`), so the socket may read into that memory
 * again. Backpressure is the socket's: when this stream holds more than its high-water mark (its
 * reader paused), the lane stops reading the socket (`push` is false) until it is read again (`_read`).
 */
import { Readable } from 'node:stream';
import type { PassesOn } from '../wire/read-buffer.js';

/** What the body needs of its connection: to read the socket again once its reader wants more. */
export interface BodySource {
  bodyWanted(): void;
  /** `chunk` went on whole and nothing keeps it (wire/read-buffer.ts `PassesOn`). */
  passed(chunk: Buffer): void;
}

/** Bytes held unread before the socket is paused (one socket read). */
const HIGH_WATER_BYTES = 64 * 1024;

export class LaneBody extends Readable implements PassesOn {
  constructor(private readonly source: BodySource) {
    super({ highWaterMark: HIGH_WATER_BYTES });
    // An abort (the client went, the request timed out) with nobody reading any more: not an
    // uncaught exception; a reader that listens hears it.
    this.on('error', ignore);
  }

  override _read(): void {
    this.source.bodyWanted();
  }

  passed(chunk: Buffer): void {
    this.source.passed(chunk);
  }
}

function ignore(): void {}
