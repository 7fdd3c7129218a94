/**
 * The header fields of a model's answer on its way back to the client, by the rule of
 * edge/http-headers.ts `clientResponseHeaders` (hop-by-hop fields dropped, the answer's own
 * Content-Length where the model's first one stood, the gateway's own fields after them), in one of
 * two forms:
 *
 * - over the model's head as the upstream client read it (wire/response-head.ts): the fields are
 *   ranges of the bytes they arrived in, each with its kind, and the lane writes them from those
 *   ranges (`writeFields`: consecutive lines that go as they came are one copy), the fields the
 *   gateway adds (`add`: a sticky cookie, a bandit's token, CORS, `connection: close`, the
 *   predictor) after them. No string is made per field.
 * - a `[name, value, …]` list: what the other servers write (Node's HTTP/1.1, HTTP/2), and what the
 *   fast form becomes when something must edit the whole list (`list()`: a bandit's tagged body and
 *   its new length, CORS fields replacing the model's).
 *
 * Both forms give the client the same bytes (test/gateway/edge/answer-fields.unit.test.ts).
 */
import { clientResponseHeaders } from './http-headers.js';
import { removeField } from '../wire/field-writer.js';
import { FIELD_STRIDE, KIND, NAME_END, NAME_START, VALUE_END, VALUE_START, copyRange, endLines, latin1, nameIs, startLines, writeLine } from '../wire/field-lines.js';
import { ANSWER_CONTENT_LENGTH, ANSWER_PREDICTOR, ANSWER_DATE, ANSWER_SERVICE_TIME, type ResponseHead } from '../wire/response-head.js';
import type { ObservedAnswerFields } from '../observe/rest-view.js';

const PREDICTOR = 'x-seldon-predictor';
/** How long the upstream took, in whole ms (Envoy's router field): set on every relayed answer, so kept as a number, written as digits. */
export const SERVICE_TIME_HEADER = 'x-envoy-upstream-service-time';
const SERVICE_TIME_LINE = Buffer.from(`${SERVICE_TIME_HEADER}: `, 'latin1');

export class AnswerFields implements ObservedAnswerFields {
  /** The list form, once made (or as given). */
  private pairs: string[] | undefined;
  /** The fields the gateway adds after the model's (fast form). */
  private extra: string[] | undefined;
  /** The model's own x-seldon-predictor fields go (the gateway sets its own). */
  private dropPredictor = false;
  /** The fast form's `x-envoy-upstream-service-time` (ms), written after the model's fields; -1: none. */
  private serviceMs = -1;
  /** The body is the gateway's own (`ownBody`): the model's fields that describe its body do not go (fast form). */
  private bodyOwn = false;

  private constructor(
    /** The model's head (its reason phrase; the fast form's bytes), or undefined (a list made by the gateway). */
    readonly head: ResponseHead | undefined,
    pairs: string[] | undefined,
  ) {
    this.pairs = pairs;
  }

  /** The fields of a model's answer, from its head. */
  static ofHead(head: ResponseHead): AnswerFields {
    // A Connection naming other fields makes them hop-by-hop: rare enough to take the list's path.
    return new AnswerFields(head, head.listsFields ? clientResponseHeaders(head.headers, head.length) : undefined);
  }

  /** Fields as a list already. */
  static ofList(list: string[]): AnswerFields {
    return new AnswerFields(undefined, list);
  }

  /** Written from the model's bytes (the lane's fast path); false once it is a list. */
  get fast(): boolean {
    return this.pairs === undefined;
  }

  /** A field the gateway adds after the model's. */
  add(name: string, value: string): void {
    if (this.pairs !== undefined) this.pairs.push(name, value);
    else (this.extra ??= []).push(name, value);
  }

  /** `x-envoy-upstream-service-time` (whole ms) in place of any the model sent, the first field the gateway adds: no string made in the fast form. */
  serviceTime(ms: number): void {
    if (this.pairs !== undefined) {
      removeField(this.pairs, SERVICE_TIME_HEADER);
      this.pairs.push(SERVICE_TIME_HEADER, String(ms));
    } else this.serviceMs = ms;
  }

  /** The gateway's `x-seldon-predictor` in place of any the model sent (--predictor-header). */
  setPredictor(predictor: string): void {
    if (this.pairs !== undefined) {
      removeField(this.pairs, PREDICTOR);
      this.pairs.push(PREDICTOR, predictor);
      return;
    }
    const extra = this.extra;
    if (extra !== undefined) removeField(extra, PREDICTOR);
    this.dropPredictor = true;
    this.add(PREDICTOR, predictor);
  }

  /**
   * The body is the gateway's own, written whole (a translated answer): the model's fields that describe its
   * body (Content-Length, Content-Type, Content-Encoding, Transfer-Encoding, ETag) do not go, whoever added them;
   * `contentType` and `length` go after the fields added so far.
   */
  ownBody(contentType: string, length: number): void {
    const list = this.pairs ?? this.extra;
    if (list !== undefined) for (const name of BODY_FIELDS) removeField(list, name);
    if (this.pairs === undefined) this.bodyOwn = true;
    this.add('content-type', contentType);
    this.add('content-length', String(length));
  }

  /** The list form: made the first time it is asked for; edits to it are what the client gets. */
  list(): string[] {
    if (this.pairs !== undefined) return this.pairs;
    const head = this.head!;
    const out = clientResponseHeaders(head.headers, head.length);
    if (this.bodyOwn) for (const name of BODY_FIELDS) removeField(out, name);
    if (this.dropPredictor) removeField(out, PREDICTOR);
    if (this.serviceMs >= 0) {
      removeField(out, SERVICE_TIME_HEADER);
      out.push(SERVICE_TIME_HEADER, String(this.serviceMs));
    }
    this.serviceMs = -1;
    if (this.extra !== undefined) out.push(...this.extra);
    this.extra = undefined;
    return (this.pairs = out);
  }

  /** The first field named `name` (lower case) the client gets. */
  get(name: string): string | undefined {
    if (this.pairs !== undefined) return firstOf(this.pairs, name);
    const head = this.head!;
    const f = head.fields;
    const buf = head.buf;
    for (let i = 0; i < f.length; i += FIELD_STRIDE) {
      const kind = f[i + KIND]!;
      if (!this.goes(kind, head, i)) continue;
      if (f[i + NAME_END]! - f[i + NAME_START]! === name.length && nameIs(buf, f[i + NAME_START]!, f[i + NAME_END]!, name)) {
        return kind === ANSWER_CONTENT_LENGTH ? String(head.length) : latin1(buf, f[i + VALUE_START]!, f[i + VALUE_END]!);
      }
    }
    if (this.serviceMs >= 0 && name === SERVICE_TIME_HEADER) return String(this.serviceMs);
    return this.extra === undefined ? undefined : firstOf(this.extra, name);
  }

  // ---- the fast form, for the lane (edge/lane-exchange.ts) ----

  /** The fields the gateway added, `[name, value, …]` (fast form; the lane checks and writes them). */
  get added(): readonly string[] {
    return this.extra ?? NONE;
  }

  /** The model sent a Date (fast form). */
  get hasDate(): boolean {
    return this.head!.has(ANSWER_DATE);
  }

  /** Bytes `writeFields` writes: the model's fields that go on and the service time, without the added ones. */
  get fieldBytes(): number {
    const head = this.head!;
    const f = head.fields;
    let n = this.serviceMs >= 0 ? SERVICE_TIME_LINE.length + decimalDigits(this.serviceMs) + 2 : 0;
    for (let i = 0; i < f.length; i += FIELD_STRIDE) {
      const kind = f[i + KIND]!;
      if (!this.goes(kind, head, i)) continue;
      // A Content-Length goes as the answer's length in decimal (the model's leading zeros do not).
      const value = kind === ANSWER_CONTENT_LENGTH ? decimalDigits(head.length) : f[i + VALUE_END]! - f[i + VALUE_START]!;
      n += f[i + NAME_END]! - f[i + NAME_START]! + value + 4;
    }
    return n;
  }

  /** Write the model's fields that go on (`name: value` CRLF each), then the service time, into `out` at `at`; the index after. */
  writeFields(out: Buffer, at: number): number {
    const head = this.head!;
    const f = head.fields;
    const buf = head.buf;
    startLines();
    for (let i = 0; i < f.length; i += FIELD_STRIDE) {
      const kind = f[i + KIND]!;
      if (!this.goes(kind, head, i)) continue;
      const ns = f[i + NAME_START]!;
      const ne = f[i + NAME_END]!;
      const vs = f[i + VALUE_START]!;
      const ve = f[i + VALUE_END]!;
      if (kind === ANSWER_CONTENT_LENGTH && ve - vs !== decimalDigits(head.length)) {
        // The model's value with leading zeros: the length in decimal instead.
        at = endLines(buf, out, at);
        at = copyRange(buf, ns, ne, out, at);
        out[at++] = 58;
        out[at++] = 32;
        at = putDecimal(out, at, head.length);
        out[at++] = 13;
        out[at++] = 10;
        continue;
      }
      at = writeLine(buf, ns, ne, vs, ve, out, at);
    }
    at = endLines(buf, out, at);
    if (this.serviceMs < 0) return at;
    at += SERVICE_TIME_LINE.copy(out, at);
    at = putDecimal(out, at, this.serviceMs);
    out[at++] = 13;
    out[at++] = 10;
    return at;
  }

  /**
   * Whether a field of the model's goes on: not a hop-by-hop one, not its predictor when the
   * gateway sets its own, its Content-Length only when the answer may be told one (its value is
   * then that length: the parser took it from that one field).
   */
  private kept(kind: number, length: number): boolean {
    if (kind === 0 || kind === ANSWER_DATE) return true;
    if (kind === ANSWER_CONTENT_LENGTH) return length >= 0 && !this.bodyOwn;
    if (kind === ANSWER_PREDICTOR) return !this.dropPredictor;
    if (kind === ANSWER_SERVICE_TIME) return this.serviceMs < 0;
    return false;
  }

  /** Whether the model's field at `i` (of `kind`) goes on: `kept`, and not one that describes a body the gateway replaced. */
  private goes(kind: number, head: ResponseHead, i: number): boolean {
    if (!this.kept(kind, head.length)) return false;
    return kind !== 0 || !this.bodyOwn || !describesBody(head.buf, head.fields[i + NAME_START]!, head.fields[i + NAME_END]!);
  }
}

const NONE: readonly string[] = [];

/** The fields that describe an answer's body (its framing aside, which is the gateway's anyway). */
const BODY_FIELDS = ['content-length', 'content-type', 'content-encoding', 'transfer-encoding', 'etag'] as const;

/** A model's field among BODY_FIELDS that its parser leaves as an ordinary one (Content-Type, Content-Encoding, ETag). */
function describesBody(buf: Uint8Array, start: number, end: number): boolean {
  const n = end - start;
  return (n === 12 && nameIs(buf, start, end, 'content-type')) || (n === 16 && nameIs(buf, start, end, 'content-encoding')) || (n === 4 && nameIs(buf, start, end, 'etag'));
}

/** How many digits `n` (a whole number) has in decimal. */
function decimalDigits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/** `n` (a whole number) in decimal into `out` at `at`; the index after. */
function putDecimal(out: Buffer, at: number, n: number): number {
  const end = at + decimalDigits(n);
  for (let i = end - 1; i >= at; i--) {
    out[i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  return end;
}

/** The first `name` (lower case) of a raw header list. */
function firstOf(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.length === name.length && headers[i]!.toLowerCase() === name) return headers[i + 1];
  return undefined;
}
