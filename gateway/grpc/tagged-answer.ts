/**
 * A bandit prediction's gRPC answer carrying its attribution token in its SeldonMessage
 * (steer/answer-tag.ts `tagGrpcFrame`), as a decorator of the answer a call writes: the answer's
 * DATA is held (up to the tag limit), then written tagged when it ends. One whole uncompressed
 * message gets the tag; anything else (a stream, compression, more than the limit) goes as it
 * came, the token in the initial metadata only.
 */
import { HeldAnswer, tagGrpcFrame } from '../steer/answer-tag.js';

/** Where a call writes the upstream's answer: the client's stream, or a decorator of it. */
export interface CallAnswer {
  write(chunk: Buffer): void;
  /** The answer's DATA is complete (`last`: its last bytes); its trailers follow. */
  end(last?: Buffer): void;
}

export class TaggedGrpcAnswer implements CallAnswer {
  private readonly held = new HeldAnswer();

  constructor(
    private readonly inner: CallAnswer,
    private readonly token: string,
  ) {}

  write(chunk: Buffer): void {
    if (this.held.passing) {
      this.inner.write(chunk);
      return;
    }
    const all = this.held.hold(chunk);
    if (all !== undefined) this.inner.write(all);
  }

  end(): void {
    if (this.held.passing || this.held.empty) {
      this.inner.end();
      return;
    }
    const answer = this.held.whole();
    this.inner.end(tagGrpcFrame(answer, this.token) ?? answer);
  }
}
