/**
 * A bandit prediction's gRPC answer carrying its attribution token in its SeldonMessage
 * (steer/answer-tag.ts `tagGrpcFrame`), as a decorator of the answer a call writes: the answer's
 * DATA is held (up to the tag limit), then written tagged when it ends. One whole uncompressed
 * message gets the tag; anything else (a stream, compression, more than the limit) goes as it
 * came, the token in the initial metadata only.
 */
import { DEFAULT_TAG_MAX_BYTES as TAG_MAX_BYTES, tagGrpcFrame } from '../steer/answer-tag.js';

/** Where a call writes the upstream's answer: the client's stream, or a decorator of it. */
export interface CallAnswer {
  write(chunk: Buffer): void;
  /** The answer's DATA is complete (`last`: its last bytes); its trailers follow. */
  end(last?: Buffer): void;
}

export class TaggedGrpcAnswer implements CallAnswer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private passing = false;

  constructor(
    private readonly inner: CallAnswer,
    private readonly token: string,
  ) {}

  write(chunk: Buffer): void {
    if (this.passing) {
      this.inner.write(chunk);
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size <= TAG_MAX_BYTES) return;
    // Larger than a tag is worth: passed on as it comes.
    this.passing = true;
    this.inner.write(Buffer.concat(this.chunks, this.size));
  }

  end(): void {
    if (this.passing || this.size === 0) {
      this.inner.end();
      return;
    }
    const answer = Buffer.concat(this.chunks, this.size);
    this.inner.end(tagGrpcFrame(answer, this.token) ?? answer);
  }
}
