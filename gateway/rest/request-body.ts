/**
 * The request body as the upstream client (upstream/http1-client.ts) reads it when something else
 * reads it too: chunks read before (a retry buffer that overflowed, a feedback's token, the auth
 * service's start), the mirrors' copy, the payload log. A plain route has none of these: the upstream
 * client reads the request's own stream (rest/exchange-body.ts `streamBody`).
 *
 * Why a stream of its own then: the other readers would race the client for the bytes of the
 * request's stream. So this is the only reader of the request, pulled with backpressure; it starts
 * with the chunks read before, keeps a copy for mirrors up to a limit, and tells the payload log each
 * piece. Destroying it only detaches it from the request (destroying an `IncomingMessage` would
 * destroy its socket, cutting the answer being written): what becomes of the rest of the request
 * body is the proxy's decision.
 */
import { Readable } from 'node:stream';
import type { RestRequest } from '../edge/rest-exchange.js';
import { joinPieces } from '../wire/message-body.js';

export interface BodyCopy {
  /** Largest body kept; a larger one is dropped and `whole` is called with null. */
  readonly limit: number;
  /** Called once the request body has ended: the whole body, or null when it was over the limit. */
  readonly whole: (body: Buffer | null) => void;
}

export class RequestBody extends Readable {
  private readonly copied: Buffer[] | undefined;
  private copiedBytes = 0;
  private over = false;

  constructor(
    /** The request, for `complete`. */
    private readonly request: RestRequest,
    /** Its body as it streams. */
    private readonly req: Readable,
    head: readonly Buffer[] = [],
    private readonly copy?: BodyCopy,
    /** Told each piece of the body as it is read (payload logging). */
    private readonly seen?: ((chunk: Buffer) => void) | undefined,
  ) {
    super({ highWaterMark: 64 * 1024 });
    if (copy) this.copied = [];
    for (const c of head) {
      this.keep(c);
      this.push(c);
    }
    req.on('data', this.onData);
    req.once('end', this.onEnd);
    req.once('error', this.onError);
    req.once('close', this.onClose);
    // Nothing flows until the client reads (`_read`): the request stays paused until then.
    req.pause();
  }

  private keep(c: Buffer): void {
    this.seen?.(c);
    if (this.copied === undefined || this.over) return;
    this.copiedBytes += c.length;
    if (this.copiedBytes > this.copy!.limit) {
      this.over = true;
      this.copied.length = 0;
    } else this.copied.push(c);
  }

  private readonly onData = (c: Buffer): void => {
    this.keep(c);
    if (!this.push(c)) this.req.pause();
  };

  private readonly onEnd = (): void => {
    this.push(null);
    if (this.copy) this.copy.whole(this.over ? null : joinPieces(this.copied!, this.copiedBytes));
  };

  private readonly onError = (err: Error): void => {
    this.destroy(err);
  };

  /** The client went away before the body ended. */
  private readonly onClose = (): void => {
    if (!this.request.complete) this.destroy(new Error('the client closed the connection before the request body ended'));
  };

  override _read(): void {
    this.req.resume();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.detach();
    cb(err);
  }

  /** Stop reading the request (it stays paused; the caller decides how to end it). */
  detach(): void {
    this.req.off('data', this.onData);
    this.req.off('end', this.onEnd);
    this.req.off('error', this.onError);
    this.req.off('close', this.onClose);
  }
}
