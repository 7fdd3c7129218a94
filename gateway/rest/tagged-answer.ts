/**
 * A bandit prediction's answer carrying its attribution token in its JSON `meta.tags`
 * (steer/answer-tag.ts), as a decorator of the answer an exchange writes: the head is held and
 * the body read whole (it is small), then written tagged, with its length. An answer longer than
 * it said passes on as it comes, the token in its header only. Only a 2xx JSON answer, not
 * encoded and not said to be over the limit, is tagged (`taggable`).
 */
import { DEFAULT_TAG_MAX_BYTES as TAG_MAX_BYTES, HeldAnswer, tagJsonAnswer } from '../steer/answer-tag.js';
import type { AnswerFields } from '../edge/answer-fields.js';

/** Where an exchange writes the model's answer: the client's response, or a decorator of it. */
export interface AnswerSink {
  /** The answer's head; false when it cannot be written (the gateway answered 502 instead). */
  head(statusCode: number, fields: AnswerFields): boolean;
  /** A body chunk; false: the client is slower than the model (read on after its 'drain'). */
  data(chunk: Buffer): boolean;
  /** The answer is complete (`last`: its last bytes). */
  end(last?: Buffer): void;
}

const JSON_TYPE = /^application\/(?:[\w.+-]*\+)?json\b/i;

/** An answer that can carry its token in its body: a 2xx JSON answer, not encoded, not said to be over the limit. */
export function taggable(method: string, status: number, fields: AnswerFields): boolean {
  if (status < 200 || status >= 300 || method === 'HEAD') return false;
  const type = fields.get('content-type');
  const encoding = fields.get('content-encoding');
  const length = fields.get('content-length');
  return type !== undefined && JSON_TYPE.test(type) && (encoding === undefined || encoding.toLowerCase() === 'identity') && (length === undefined || Number(length) <= TAG_MAX_BYTES);
}

export class TaggedJsonAnswer implements AnswerSink {
  private status = 0;
  private fields: AnswerFields | undefined;
  private readonly held = new HeldAnswer();

  constructor(
    private readonly inner: AnswerSink,
    private readonly token: string,
  ) {}

  head(statusCode: number, fields: AnswerFields): boolean {
    this.status = statusCode;
    this.fields = fields;
    return true;
  }

  data(chunk: Buffer): boolean {
    if (this.held.passing) return this.inner.data(chunk);
    const all = this.held.hold(chunk);
    if (all === undefined) return true;
    // Longer than it said: passed on as it comes, with the token in the header only.
    if (!this.inner.head(this.status, this.fields!)) return true;
    return this.inner.data(all);
  }

  end(): void {
    if (this.held.passing) {
      this.inner.end();
      return;
    }
    const body = this.held.whole();
    const tagged = tagJsonAnswer(body, this.token) ?? body;
    // Read whole, it is sent with its length (a chunked answer too).
    const h = this.fields!.list();
    let length = false;
    for (let i = 0; i < h.length; i += 2) {
      if (h[i]!.toLowerCase() === 'content-length') {
        h[i + 1] = String(tagged.length);
        length = true;
      }
    }
    if (!length) h.push('content-length', String(tagged.length));
    if (this.inner.head(this.status, this.fields!)) this.inner.end(tagged);
  }
}
