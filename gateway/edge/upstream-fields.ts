/**
 * The header fields of a request on its way to the model, by the rule of
 * edge/http-headers.ts `upstreamRequestHeaders` (end-to-end fields as they came, hop-by-hop and
 * the gateway's own dropped, the forwarding fields added), in one of two forms:
 *
 * - over the lane's head (edge/http1-request.ts `RequestHead`): the fields the client sent are
 *   ranges of the buffer they arrived in, each with its kind decided by the parser, and the head
 *   toward the model is written from those ranges (`writeFields`: consecutive lines that go as they
 *   came are one copy) with the forwarding fields after them. No string is made per field.
 * - a `[name, value, …]` list: what a request of Node's servers (a request the lane left, HTTP/2)
 *   carries, and what the lane's form becomes once something must read or edit the whole list
 *   (`list()`: tracing's context injected, the external auth service's edits, a mirror's copy).
 *
 * Both forms write the same bytes (test/gateway/edge/upstream-fields.unit.test.ts holds them
 * together). The upstream client (upstream/request-head.ts) writes the fast form through
 * `FieldWriter`, and a list as it always has.
 */
import { AUTHORIZATION_FIELD, CONTENT_LENGTH_FIELD, FORWARDED_FOR_FIELD, FORWARDED_PROTO_FIELD, HOST_FIELD, OTHER_FIELD, REQUEST_ID_FIELD, type RequestHead } from './http1-request.js';
import { forwardedFor, upstreamRequestHeaders, type ForwardInfo } from './http-headers.js';
import { REQUEST_ID_LENGTH, requestId, writeRequestId } from './request-id.js';
import { FIELD_STRIDE, KIND, NAME_END, NAME_START, VALUE_END, VALUE_START, endLines, latin1, nameIs, startLines, writeLine } from '../wire/field-lines.js';
import { putLatin1 as put } from '../wire/http1-syntax.js';
import { removeField, type FieldWriter } from '../wire/field-writer.js';
import type { ObservedUpstreamFields } from '../observe/rest-view.js';

/** Whether a field of `kind` goes upstream where it stands (forwarding fields are written after the rest). */
function forwarded(kind: number, stripAuthorization: boolean): boolean {
  return kind === OTHER_FIELD || kind === HOST_FIELD || kind === REQUEST_ID_FIELD || (kind === AUTHORIZATION_FIELD && !stripAuthorization);
}

export class UpstreamFields implements FieldWriter, ObservedUpstreamFields {
  /** The list form, once made (or as given). */
  private pairs: string[] | undefined;
  /** The fast form: the lane's head, and what the gateway adds after its fields. */
  private readonly head: RequestHead | undefined;
  private readonly strip: boolean;
  private forwardedForValue: string | undefined;
  private forwardedProto = '';
  private originalPath = '';
  /**
   * The client sent no request id: the gateway makes one, written into the first head toward the model
   * (`idIn` at `idAt`) and made a string only when something reads it (a log, a mirror's list).
   */
  private makesId = false;
  /** The gateway's id as a string, once read; '' until then. */
  private madeId = '';
  private idIn: Buffer | undefined;
  private idAt = 0;
  private bytes = -1;
  /** The body is the gateway's own, of this Content-Type (`ownBody`); '' while it is the client's. */
  private ownType = '';

  private constructor(head: RequestHead | undefined, pairs: string[] | undefined, strip: boolean) {
    this.head = head;
    this.pairs = pairs;
    this.strip = strip;
  }

  /** The fields of a request Node's servers read (a request the lane left, HTTP/2). */
  static ofList(raw: readonly string[], info: ForwardInfo): UpstreamFields {
    return new UpstreamFields(undefined, upstreamRequestHeaders(raw, info), info.stripAuthorization === true);
  }

  /** Fields as they go already (a mirror's copy of the primary's, with its `-shadow` Host). */
  static wrap(list: string[]): UpstreamFields {
    return new UpstreamFields(undefined, list, false);
  }

  /** The fields of a request the lane read. */
  static ofHead(head: RequestHead, info: ForwardInfo): UpstreamFields {
    const strip = info.stripAuthorization === true;
    // A Connection field naming other fields makes them hop-by-hop: rare enough to take the list's path.
    if (head.listsFields) return new UpstreamFields(undefined, upstreamRequestHeaders(head.rawHeaders, info), strip);
    const u = new UpstreamFields(head, undefined, strip);
    const trusted = info.trusted === true;
    const f = head.fields;
    const buf = head.buf;
    let xff: string | undefined;
    let proto: string | undefined;
    let hasId = false;
    if ((head.kinds & ((1 << FORWARDED_FOR_FIELD) | (1 << FORWARDED_PROTO_FIELD) | (1 << REQUEST_ID_FIELD))) !== 0) {
      for (let i = 0; i < f.length; i += FIELD_STRIDE) {
        const kind = f[i + KIND]!;
        if (kind === REQUEST_ID_FIELD) hasId = true;
        else if (!trusted) continue;
        else if (kind === FORWARDED_FOR_FIELD) {
          const v = latin1(buf, f[i + VALUE_START]!, f[i + VALUE_END]!);
          xff = xff === undefined ? v : `${xff}, ${v}`;
        } else if (kind === FORWARDED_PROTO_FIELD && proto === undefined) proto = latin1(buf, f[i + VALUE_START]!, f[i + VALUE_END]!);
      }
    }
    u.forwardedForValue = forwardedFor(xff, info.remoteAddress);
    u.forwardedProto = proto ?? info.proto;
    u.originalPath = info.originalPath;
    if (!hasId) u.makesId = true;
    return u;
  }

  /**
   * The body that goes is the gateway's own (a translated one), of `contentType`, read back whole: the
   * client's Content-Type and Accept-Encoding do not go (the answer must come unencoded to be read), and
   * `content-type` goes last.
   */
  ownBody(contentType: string): void {
    const list = this.pairs;
    if (list === undefined) {
      this.ownType = contentType;
      this.bytes = -1;
      return;
    }
    for (const name of CLIENT_BODY_FIELDS) removeField(list, name);
    list.push('content-type', contentType);
  }

  /** The list form: made from the lane's head the first time it is asked for; edits to it are what goes upstream. */
  list(): string[] {
    if (this.pairs !== undefined) return this.pairs;
    const head = this.head!;
    const f = head.fields;
    const buf = head.buf;
    const out: string[] = [];
    for (let i = 0; i < f.length; i += FIELD_STRIDE) {
      // The list keeps Content-Length as the list form does (the client writes its own framing from either).
      const kind = f[i + KIND]!;
      if (kind === CONTENT_LENGTH_FIELD || this.goes(kind, i)) out.push(latin1(buf, f[i + NAME_START]!, f[i + NAME_END]!), latin1(buf, f[i + VALUE_START]!, f[i + VALUE_END]!));
    }
    if (this.forwardedForValue !== undefined) out.push('x-forwarded-for', this.forwardedForValue);
    out.push('x-forwarded-proto', this.forwardedProto, 'x-envoy-original-path', this.originalPath);
    if (this.makesId) out.push('x-request-id', this.ownId());
    if (this.ownType !== '') out.push('content-type', this.ownType);
    this.bytes = -1;
    return (this.pairs = out);
  }

  /** A copy to edit apart (a traced shadow's, its own trace context in). */
  copy(): UpstreamFields {
    return UpstreamFields.wrap(this.list().slice());
  }

  /** The request's Content-Length, for its body streamed (the lane's over its whole-body size, edge/lane-body.ts); -1: none. */
  get declaredLength(): number {
    const length = this.head!.contentLength;
    return length > 0 ? length : -1;
  }

  /** What the upstream client writes: this (the fast form), or the list. */
  forClient(): FieldWriter | string[] {
    return this.pairs ?? this;
  }

  /** The request id the model gets (the client's, or the gateway's). */
  get requestId(): string | undefined {
    if (this.pairs !== undefined) return lastOf(this.pairs, 'x-request-id');
    if (this.makesId) return this.ownId();
    const head = this.head!;
    const f = head.fields;
    let id: string | undefined;
    for (let i = 0; i < f.length; i += FIELD_STRIDE) if (f[i + KIND] === REQUEST_ID_FIELD) id = latin1(head.buf, f[i + VALUE_START]!, f[i + VALUE_END]!);
    return id;
  }

  /** The last field named `name` (lower case), as the model gets it. */
  get(name: string): string | undefined {
    if (name === 'x-request-id') return this.requestId;
    return lastOf(this.list(), name);
  }

  // ---- FieldWriter: the fast form, written straight from the lane's buffer ----

  readonly hasHost = true;

  get fieldBytes(): number {
    if (this.bytes >= 0) return this.bytes;
    const head = this.head!;
    const f = head.fields;
    let n = 0;
    for (let i = 0; i < f.length; i += FIELD_STRIDE) {
      if (this.goes(f[i + KIND]!, i)) n += f[i + NAME_END]! - f[i + NAME_START]! + f[i + VALUE_END]! - f[i + VALUE_START]! + 4;
    }
    if (this.forwardedForValue !== undefined) n += 19 + this.forwardedForValue.length;
    n += 21 + this.forwardedProto.length + 25 + this.originalPath.length;
    if (this.makesId) n += 16 + REQUEST_ID_LENGTH;
    if (this.ownType !== '') n += 16 + this.ownType.length;
    return (this.bytes = n);
  }

  writeFields(out: Buffer, at: number): number {
    const head = this.head!;
    const f = head.fields;
    const buf = head.buf;
    startLines();
    for (let i = 0; i < f.length; i += FIELD_STRIDE) {
      if (this.goes(f[i + KIND]!, i)) at = writeLine(buf, f[i + NAME_START]!, f[i + NAME_END]!, f[i + VALUE_START]!, f[i + VALUE_END]!, out, at);
    }
    at = endLines(buf, out, at);
    if (this.forwardedForValue !== undefined) at = line(out, at, 'x-forwarded-for: ', this.forwardedForValue);
    at = line(out, at, 'x-forwarded-proto: ', this.forwardedProto);
    at = line(out, at, 'x-envoy-original-path: ', this.originalPath);
    if (this.makesId) {
      at = put(out, at, 'x-request-id: ');
      if (this.madeId !== '') at = put(out, at, this.madeId);
      else if (this.idIn !== undefined) at += this.idIn.copy(out, at, this.idAt, this.idAt + REQUEST_ID_LENGTH);
      else {
        // The first head: the id's characters go straight into it, and every later head (a retry's) copies them.
        this.idIn = out;
        this.idAt = at;
        at = writeRequestId(out, at);
      }
      out[at++] = 13;
      out[at++] = 10;
    }
    if (this.ownType !== '') at = line(out, at, 'content-type: ', this.ownType);
    return at;
  }

  /** Whether the client's field at `i` (of `kind`) goes upstream where it stands: `forwarded`, and not one about a body the gateway replaced. */
  private goes(kind: number, i: number): boolean {
    if (!forwarded(kind, this.strip)) return false;
    if (kind !== OTHER_FIELD || this.ownType === '') return true;
    const head = this.head!;
    const ns = head.fields[i + NAME_START]!;
    const ne = head.fields[i + NAME_END]!;
    return !((ne - ns === 12 && nameIs(head.buf, ns, ne, 'content-type')) || (ne - ns === 15 && nameIs(head.buf, ns, ne, 'accept-encoding')));
  }

  /** The gateway's own id as a string: read from the head it was written into, or made now (and written as this later). */
  private ownId(): string {
    if (this.madeId === '') this.madeId = this.idIn !== undefined ? this.idIn.toString('latin1', this.idAt, this.idAt + REQUEST_ID_LENGTH) : requestId();
    return this.madeId;
  }
}

/** The client's fields about its body that do not go with a body of the gateway's own. */
const CLIENT_BODY_FIELDS = ['content-type', 'accept-encoding'] as const;

function line(out: Buffer, at: number, name: string, value: string): number {
  at = put(out, at, name);
  at = put(out, at, value);
  out[at++] = 13;
  out[at++] = 10;
  return at;
}

/** The last `name` (lower case) of a raw header list (an upgrade's request id too, rest/upgrade-exchange.ts). */
export function lastOf(headers: readonly string[], name: string): string | undefined {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if (headers[i]!.length === name.length && headers[i]!.toLowerCase() === name) return headers[i + 1];
  }
  return undefined;
}
