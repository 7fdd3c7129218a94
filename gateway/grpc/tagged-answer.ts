/**
 * A bandit prediction's gRPC answer carrying its attribution token in its SeldonMessage
 * (steer/answer-tag.ts `tagGrpcFrame`), as a decorator of the answer a call writes: the answer's
 * DATA is held (up to the tag limit), then written tagged when it ends. One whole uncompressed
 * message gets the tag; anything else (a stream, compression, more than the limit) goes as it
 * came, the token in the initial metadata only.
 */
import type { IncomingHttpHeaders } from 'node:http2';
import { HeldAnswer, tagGrpcFrame } from '../steer/answer-tag.js';

/** Where a call writes the upstream's answer: the client's stream, or a decorator of it. */
export interface CallAnswer {
  write(chunk: Buffer): void;
  /** The answer's DATA is complete (`last`: its last bytes); its trailers follow. */
  end(last?: Buffer): void;
}

/** The call's answer as the call holds it: itself, or its decorators, which also edit the answer's head and take a token. */
export interface CallAnswerChain extends CallAnswer {
  /** The answer's head is about to go to the client: a decorator edits it (a translation says so); the call itself edits nothing. */
  editHead(headers: IncomingHttpHeaders, trailersOnly: boolean, httpStatus: number): void;
  /** This answer with a bandit's token put into the client's SeldonMessage: a decorator beneath any that writes that message. */
  tagged(token: string): CallAnswerChain;
}

export class TaggedGrpcAnswer implements CallAnswerChain {
  private readonly held = new HeldAnswer();

  constructor(
    private readonly inner: CallAnswer,
    private readonly token: string,
  ) {}

  editHead(): void {}

  tagged(): CallAnswerChain {
    return this;
  }

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
