/**
 * Envoy's external authorization messages on the wire (envoy.service.auth.v3, the protocol
 * OPA-Envoy and Authorino serve): a `CheckRequest` written, a `CheckResponse` read, by hand from
 * the published field numbers, with the protobuf wire helpers of wire/protobuf.ts. Only what
 * the gateway sends or acts on is encoded or decoded; unknown fields are skipped.
 *
 * Field numbers (envoy/service/auth/v3/external_auth.proto, attribute_context.proto,
 * envoy/config/core/v3/base.proto, address.proto, envoy/type/v3/http_status.proto, google/rpc/status.proto):
 * - CheckRequest: attributes 1. AttributeContext: source 1, destination 2, request 4,
 *   context_extensions 10 (map: key 1, value 2).
 *   Peer: address 1 (Address: socket_address 1; SocketAddress: address 2, port_value 3).
 *   Request: time 1 (Timestamp: seconds 1, nanos 2), http 2. HttpRequest: id 1, method 2,
 *   headers 3 (map: key 1, value 2), path 4, host 5, scheme 6, size 9, protocol 10, body 11, raw_body 12.
 * - CheckResponse: status 1 (Status: code 1, message 2), denied_response 2, ok_response 3.
 *   DeniedHttpResponse: status 1 (HttpStatus: code 1), headers 2, body 3.
 *   OkHttpResponse: headers 2, headers_to_remove 5, response_headers_to_add 6.
 *   HeaderValueOption: header 1 (HeaderValue: key 1, value 2, raw_value 3), append 2 (BoolValue: value 1), append_action 3.
 */
import type { AuthContextExtensions } from '../../routing/emissary/auth-context.js';
import type { AuthHeaderEdit } from '../../routing/policies/auth-edits.js';
import { LEN, ProtoWriter, VARINT, readVarint, walkFields } from '../wire/protobuf.js';

/** What a check describes: the request as the gateway received it. */
export interface CheckAttributes {
  readonly sourceAddress: string | undefined;
  readonly sourcePort: number | undefined;
  readonly destinationAddress: string | undefined;
  readonly destinationPort: number | undefined;
  readonly id: string;
  readonly method: string;
  /** Lower-case names, values of repeated headers joined with `,` (as Envoy merges them). */
  readonly headers: ReadonlyMap<string, string>;
  readonly path: string;
  readonly host: string;
  readonly scheme: string;
  /** Bytes of the body (its Content-Length), -1 when unknown. */
  readonly size: number;
  /** `HTTP/1.1`, `HTTP/2`. */
  readonly protocol: string;
  /** The body sent with the check (include_body), or null. */
  readonly body: Buffer | null;
  readonly timeMs: number;
  /** The route's `auth_context_extensions`, or none. */
  readonly contextExtensions?: AuthContextExtensions | undefined;
}

export type CheckResult =
  | { readonly ok: true; readonly headers: readonly AuthHeaderEdit[]; readonly remove: readonly string[]; readonly responseHeaders: readonly AuthHeaderEdit[] }
  | { readonly ok: false; readonly grpcCode: number; readonly message: string; readonly status: number; readonly headers: readonly AuthHeaderEdit[]; readonly body: Buffer };

/** A Peer (Address → SocketAddress: address, port_value), or null without an address. */
function peer(address: string | undefined, port: number | undefined): ProtoWriter | null {
  if (address === undefined) return null;
  const socket = new ProtoWriter().string(2, address);
  if (port !== undefined) socket.varint(3, port);
  return new ProtoWriter().message(1, new ProtoWriter().message(1, socket));
}

/** A map<string, string> entry (key 1, value 2). */
const entry = (k: string, v: string): ProtoWriter => new ProtoWriter().string(1, k).string(2, v);

/** A string is valid UTF-8 when it survives a round trip: `body` must be, else the bytes go as `raw_body`. */
function isUtf8(b: Buffer): boolean {
  return Buffer.from(b.toString('utf8'), 'utf8').equals(b);
}

/** The serialized `CheckRequest` for these attributes. */
export function encodeCheckRequest(a: CheckAttributes): Buffer {
  const http = new ProtoWriter();
  if (a.id !== '') http.string(1, a.id);
  http.string(2, a.method);
  for (const [k, v] of a.headers) http.message(3, entry(k, v));
  // size is an int64: -1 (unknown) is ten bytes of two's complement, as proto3 writes it.
  http.string(4, a.path).string(5, a.host).string(6, a.scheme).varint(9, a.size).string(10, a.protocol);
  if (a.body !== null && a.body.length > 0) http.bytes(isUtf8(a.body) ? 11 : 12, a.body);
  const seconds = Math.floor(a.timeMs / 1000);
  const time = new ProtoWriter().varint(1, seconds).varint(2, (a.timeMs - seconds * 1000) * 1_000_000);
  const attributes = new ProtoWriter();
  const source = peer(a.sourceAddress, a.sourcePort);
  const destination = peer(a.destinationAddress, a.destinationPort);
  if (source !== null) attributes.message(1, source);
  if (destination !== null) attributes.message(2, destination);
  attributes.message(4, new ProtoWriter().message(1, time).message(2, http));
  for (const [k, v] of a.contextExtensions ?? []) attributes.message(10, entry(k, v));
  return new ProtoWriter().message(1, attributes).finish();
}

/** A decoding failure: the auth service answered something that is not a CheckResponse. */
export class MalformedCheckResponse extends Error {}

const utf8 = (b: Buffer, start: number, end: number): string => b.toString('utf8', start, end);

/** Each field of the message in b[start, end): throws on malformed bytes. */
function fields(b: Buffer, start: number, end: number, visit: (field: number, wire: number, s: number, e: number) => void): void {
  if (!walkFields(b, start, end, (f) => visit(f.field, f.wire, f.start, f.end))) throw new MalformedCheckResponse('a CheckResponse that is not a well-formed protobuf message');
}

function varintAt(b: Buffer, s: number, e: number): number {
  return readVarint(b, s, e)?.value ?? 0;
}

function headerOption(b: Buffer, start: number, end: number): AuthHeaderEdit | null {
  let name = '';
  let value = '';
  let rawValue: string | undefined;
  let append: boolean | undefined;
  fields(b, start, end, (field, wire, s, e) => {
    if (field === 1 && wire === LEN) {
      fields(b, s, e, (f2, w2, s2, e2) => {
        if (w2 !== LEN) return;
        if (f2 === 1) name = utf8(b, s2, e2).toLowerCase();
        else if (f2 === 2) value = utf8(b, s2, e2);
        else if (f2 === 3) rawValue = b.toString('latin1', s2, e2);
      });
    } else if (field === 2 && wire === LEN) {
      append = false;
      fields(b, s, e, (f2, w2, s2, e2) => {
        if (f2 === 1 && w2 === VARINT) append = varintAt(b, s2, e2) !== 0;
      });
    }
  });
  if (name === '') return null;
  // The proto says `append` defaults to false here: a header the auth service sets replaces the
  // client's (a forged identity header never survives beside it). APPEND_IF_EXISTS_OR_ADD (0) is
  // the enum's default, so only an explicit BoolValue true appends.
  return { name, value: rawValue ?? value, append: append === true };
}

/** HTTP status of a denial without one of its own: 401 for UNAUTHENTICATED, else 403 (as Envoy). */
const deniedStatus = (grpcCode: number): number => (grpcCode === 16 ? 401 : 403);

/** The decision in a serialized `CheckResponse`. */
export function decodeCheckResponse(b: Buffer): CheckResult {
  let code = 0;
  let message = '';
  let denied: { start: number; end: number } | undefined;
  let ok: { start: number; end: number } | undefined;
  fields(b, 0, b.length, (field, wire, s, e) => {
    if (wire !== LEN) return;
    if (field === 1) {
      fields(b, s, e, (f2, w2, s2, e2) => {
        if (f2 === 1 && w2 === VARINT) code = varintAt(b, s2, e2);
        else if (f2 === 2 && w2 === LEN) message = utf8(b, s2, e2);
      });
    } else if (field === 2) denied = { start: s, end: e };
    else if (field === 3) ok = { start: s, end: e };
  });
  if (code === 0) {
    const headers: AuthHeaderEdit[] = [];
    const remove: string[] = [];
    const responseHeaders: AuthHeaderEdit[] = [];
    if (ok !== undefined) {
      fields(b, ok.start, ok.end, (field, wire, s, e) => {
        if (wire !== LEN) return;
        if (field === 2) {
          const h = headerOption(b, s, e);
          if (h) headers.push(h);
        } else if (field === 5) remove.push(utf8(b, s, e).toLowerCase());
        else if (field === 6) {
          const h = headerOption(b, s, e);
          if (h) responseHeaders.push(h);
        }
      });
    }
    return { ok: true, headers, remove, responseHeaders };
  }
  let status = 0;
  const headers: AuthHeaderEdit[] = [];
  let body = Buffer.alloc(0);
  if (denied !== undefined) {
    fields(b, denied.start, denied.end, (field, wire, s, e) => {
      if (field === 1 && wire === LEN) {
        fields(b, s, e, (f2, w2, s2, e2) => {
          if (f2 === 1 && w2 === VARINT) status = varintAt(b, s2, e2);
        });
      } else if (field === 2 && wire === LEN) {
        const h = headerOption(b, s, e);
        if (h) headers.push(h);
      } else if (field === 3 && wire === LEN) body = Buffer.from(b.subarray(s, e));
    });
  }
  // An HttpStatus outside what HTTP can say is the auth service's mistake: the default denial.
  const valid = status >= 200 && status <= 599;
  return { ok: false, grpcCode: code, message, status: valid ? status : deniedStatus(code), headers, body };
}
