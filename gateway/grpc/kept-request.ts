/**
 * A gRPC call's request chunks, kept by reference while something may send them again: a replay or retry
 * (up to the retry buffer, until the answer begins) and the call's mirrors (up to their bound, until the
 * client's half ends). Complete while either still wants them; dropped when neither does.
 */
import type { Mirror } from '../../routing/types.js';

/** Where a call's mirrors go: their bound, and what is said when a request passes it. */
interface MirrorSender {
  readonly maxBodyBytes: number;
  tooLarge(mirrors: readonly Mirror[]): void;
}

export class KeptRequest {
  chunks: Buffer[] | undefined = undefined;
  private size = 0;

  /** Whole enough to send again. */
  forRetry: boolean;
  /** Whole enough for the mirrors. */
  forMirror: boolean;

  constructor(
    private readonly retryBufferBytes: number,
    private readonly mirrors: readonly Mirror[],
    private readonly sender: MirrorSender,
  ) {
    this.forRetry = retryBufferBytes > 0;
    this.forMirror = mirrors.length > 0;
  }

  /** A request read whole already (feedback, for its token). */
  whole(request: readonly Buffer[]): void {
    this.chunks = [...request];
    this.size = request.reduce((n, c) => n + c.length, 0);
    if (this.size > this.retryBufferBytes) this.forRetry = false;
  }

  /** One more chunk from the client. */
  keep(chunk: Buffer): void {
    if (!this.forRetry && !this.forMirror) return;
    (this.chunks ??= []).push(chunk);
    this.size += chunk.length;
    if (this.forRetry && this.size > this.retryBufferBytes) this.forRetry = false;
    if (this.forMirror && this.size > this.sender.maxBodyBytes) {
      this.forMirror = false;
      this.sender.tooLarge(this.mirrors);
    }
    if (!this.forRetry && !this.forMirror) this.chunks = undefined;
  }

  /** The mirrors took their copy. */
  mirrored(): void {
    this.forMirror = false;
    if (!this.forRetry) this.chunks = undefined;
  }

  /** The answer began: nothing goes again. */
  answered(): void {
    this.forRetry = false;
    if (!this.forMirror) this.chunks = undefined;
  }

  /** Each kept chunk, in order, to `write`. */
  writeTo(s: { write(chunk: Buffer): unknown }): void {
    const c = this.chunks;
    if (c !== undefined) for (const chunk of c) s.write(chunk);
  }
}
