/**
 * A model's answer head as the upstream client's parser read it (upstream/http1-response.ts): the
 * status, and its fields as offsets over the bytes it arrived in (wire/field-lines.ts), each with
 * its kind (what the client-bound head does with it). No string is made for a field unless
 * something reads it as one: the head sent back to the client is written from these ranges
 * (edge/answer-fields.ts). `headers` is the `[name, value, …]` list, made when first read.
 */
import { FIELD_STRIDE, KIND, NAME_END, NAME_START, VALUE_END, VALUE_START, fieldPairs, latin1, nameIs } from './field-lines.js';

/*
 * What a field of an answer is to the client-bound head (the kind slot of its field list).
 */
/** End to end: passed on as it came. */
export const ANSWER_OTHER = 0;
/** Content-Length: the gateway writes the answer's length where the first one stood (`ResponseHead.length`), the others go. */
export const ANSWER_CONTENT_LENGTH = 1;
/** Hop-by-hop (Connection, Keep-Alive, Proxy-Connection, Proxy-Authenticate, TE, Trailer, Transfer-Encoding, Upgrade): never passed on. */
export const ANSWER_HOP = 2;
/** Date: kept (the server side adds one only when the answer has none). */
export const ANSWER_DATE = 3;
/** x-seldon-predictor: the gateway's own with --predictor-header (replaced then), passed on otherwise. */
export const ANSWER_PREDICTOR = 4;
/** x-envoy-upstream-service-time: the gateway's own on every relayed answer (replaced then, as Envoy's router does). */
export const ANSWER_SERVICE_TIME = 5;

export class ResponseHead {
  private pairs: string[] | undefined;

  constructor(
    readonly status: number,
    /** The bytes the head is in. */
    readonly buf: Buffer,
    /** Where the reason phrase is in `buf` (an empty range: none). */
    readonly reasonStart: number,
    readonly reasonEnd: number,
    /** FIELD_STRIDE numbers per field, its kind an `ANSWER_*` code. */
    readonly fields: number[],
    /**
     * The Content-Length the client may be told, -1 for none: the body's length when Content-Length
     * frames it; on an answer to HEAD and on a 304, the model's value when it sent no
     * Transfer-Encoding (RFC 9110 §8.6 allows it there, and nginx passes it); never on a 204, a
     * chunked answer (the length the model put beside Transfer-Encoding is not the body's) or one
     * that runs until the connection closes.
     */
    readonly length: number,
    /** Its Connection field names other fields, which are hop-by-hop too (the client-bound head takes the list's path). */
    readonly listsFields: boolean,
  ) {}

  /** The reason phrase as sent ('' for none). */
  get reason(): string {
    return latin1(this.buf, this.reasonStart, this.reasonEnd);
  }

  /** `[name, value, …]` as received (names in their case, values without surrounding whitespace). */
  get headers(): string[] {
    return (this.pairs ??= fieldPairs(this.buf, this.fields));
  }

  /** The first field named `name` (lower case), or undefined. */
  field(name: string): string | undefined {
    const f = this.fields;
    for (let i = 0; i < f.length; i += FIELD_STRIDE) {
      if (f[i + NAME_END]! - f[i + NAME_START]! === name.length && nameIs(this.buf, f[i + NAME_START]!, f[i + NAME_END]!, name)) return latin1(this.buf, f[i + VALUE_START]!, f[i + VALUE_END]!);
    }
    return undefined;
  }

  /** Whether a field of `kind` is among its fields. */
  has(kind: number): boolean {
    const f = this.fields;
    for (let i = KIND; i < f.length; i += FIELD_STRIDE) if (f[i] === kind) return true;
    return false;
  }
}
