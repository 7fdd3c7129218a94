/**
 * Seldon's gRPC SeldonMessage (prediction.proto) ⇄ the form the translation rules read and write
 * (seldon-client.ts, v2-client.ts: the message as JSON holds it), so both transports share one set of
 * rules. Reading: `binData` becomes its base64 text, `data.ndarray` and `jsonData` plain arrays and
 * objects (nested at most MAX_VALUE_DEPTH deep), every number a double (gRPC's tensor and Value hold
 * doubles: numpy's float64). Writing: a value a double cannot hold exactly (INT64 2^53 + 1) is a
 * refusal, never rounded. Pure.
 */
import { LEN, FIXED64, VARINT, ProtoWriter, readPackedFloats, readVarint, readVarint64, walkFields } from '../wire/protobuf.js';
import { TranslateRefusal, type Element } from './datatypes.js';
import type { SeldonAnswer } from './seldon-client.js';
import { checkNesting, elementCount } from './tensor.js';
import { writeDefaultNames } from './default-names.js';
import { ECHOED_META_FIELDS, metaMessage, protoMetaEcho, type MetaEcho } from './meta-echo.js';
import type { SeldonRequest } from './v2-client.js';

/** Deepest nesting of lists and structs read from a message (an ndarray is at most 32 deep: MAX_RANK; tensor.ts says so of a deeper one). */
export const MAX_VALUE_DEPTH = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A protobuf string or BYTES element as text; bytes that are not UTF-8 are refused (`status`: 400 for a request, 502 for an answer). */
export function text(b: Uint8Array, what: string, status: number): string {
  try {
    return utf8.decode(b);
  } catch {
    throw new TranslateRefusal(`${what} is not UTF-8 text`, status);
  }
}

const malformed = (what: string, status: number): TranslateRefusal => new TranslateRefusal(`${what} is not a well-formed protobuf message`, status);

/** A SeldonMessage's bytes → the message as JSON holds it (`status`: a refusal's). */
export function readSeldonMessage(b: Buffer, status: number): Record<string, unknown> {
  const msg: Record<string, unknown> = {};
  const oneof = (key: string, v: unknown): void => {
    for (const k of ['data', 'binData', 'strData', 'jsonData', 'customData']) delete msg[k];
    msg[key] = v;
  };
  const ok = walkFields(b, 0, b.length, (f) => {
    if (f.wire !== LEN) return;
    const sub = b.subarray(f.start, f.end);
    if (f.field === 2) msg.meta = readMeta(sub, status);
    else if (f.field === 3) oneof('data', readDefaultData(sub, status));
    else if (f.field === 4) oneof('binData', sub.toString('base64'));
    else if (f.field === 5) oneof('strData', text(sub, 'strData', status));
    else if (f.field === 6) oneof('jsonData', readValue(sub, 0, status));
    else if (f.field === 7) oneof('customData', true);
  });
  if (!ok) throw malformed('the SeldonMessage', status);
  return msg;
}

/** The request `Meta`'s puid, and (`echo`) the fields the wrapper's answer echoes (meta-echo.ts). */
function readMeta(b: Buffer, status: number): Record<string, unknown> {
  const meta: Record<string, unknown> = {};
  const echoed: { field: number; payload: Buffer }[] = [];
  const ok = walkFields(b, 0, b.length, (f) => {
    if (f.wire !== LEN) return;
    if (f.field === 1) meta.puid = text(b.subarray(f.start, f.end), 'meta.puid', status);
    else if (ECHOED_META_FIELDS.includes(f.field)) echoed.push({ field: f.field, payload: b.subarray(f.start, f.end) });
  });
  if (!ok) throw malformed('meta', status);
  const echo = protoMetaEcho(echoed);
  if (echo !== undefined) Object.defineProperty(meta, PROTO_ECHO, { value: echo });
  return meta;
}

/** Where a gRPC request's `meta` keeps its echo: a symbol, so no JSON member (a REST client's `meta`) can stand for it. */
const PROTO_ECHO = Symbol('echoed Meta fields');

/** The echo `readSeldonMessage` found in a message's `meta`. */
export const protoEchoOf = (msg: Record<string, unknown>): MetaEcho | undefined => {
  const meta = msg.meta as Record<symbol, MetaEcho | undefined> | undefined;
  return meta?.[PROTO_ECHO];
};

function readDefaultData(b: Buffer, status: number): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  const names: string[] = [];
  const ok = walkFields(b, 0, b.length, (f) => {
    if (f.wire !== LEN) return;
    const sub = b.subarray(f.start, f.end);
    if (f.field === 1) names.push(text(sub, 'data.names', status));
    else if (f.field >= 2 && f.field <= 4) {
      delete data.tensor;
      delete data.ndarray;
      delete data.tftensor;
      if (f.field === 2) data.tensor = readTensor(sub, status);
      else if (f.field === 3) data.ndarray = readList(sub, 0, status);
      else data.tftensor = true;
    }
  });
  if (!ok) throw malformed('data', status);
  data.names = names;
  return data;
}

/** Tensor: shape (1, packed int32), values (2, packed double); each also read unpacked, as protobuf requires. */
function readTensor(b: Buffer, status: number): { shape: number[]; values: number[] } {
  const shape: number[] = [];
  const values: number[] = [];
  // int32: a negative one is written as ten bytes, two's complement.
  const int32 = (u: bigint | null): number => {
    if (u === null) throw malformed('data.tensor.shape', status);
    return Number(BigInt.asIntN(32, u));
  };
  const ok = walkFields(b, 0, b.length, (f) => {
    if (f.field === 1 && f.wire === VARINT) shape.push(int32(readVarint64(b, f.start, f.end)));
    else if (f.field === 1 && f.wire === LEN) {
      for (let i = f.start; i < f.end;) {
        const v = readVarint(b, i, f.end);
        if (v === null) throw malformed('data.tensor.shape', status);
        shape.push(int32(readVarint64(b, i, f.end)));
        i = v.next;
      }
    } else if (f.field === 2 && f.wire === FIXED64) values.push(b.readDoubleLE(f.start));
    else if (f.field === 2 && f.wire === LEN) {
      if ((f.end - f.start) % 8 !== 0) throw malformed('data.tensor.values', status);
      readPackedFloats(b, f.start, f.end, 8, values);
    }
  });
  if (!ok) throw malformed('data.tensor', status);
  return { shape, values };
}

/** google.protobuf.ListValue → an array (values: 1). */
function readList(b: Buffer, depth: number, status: number): unknown[] {
  if (depth >= MAX_VALUE_DEPTH) throw new TranslateRefusal(`lists are nested deeper than ${MAX_VALUE_DEPTH} levels`, status);
  const out: unknown[] = [];
  if (!walkFields(b, 0, b.length, (f) => f.field === 1 && f.wire === LEN && out.push(readValue(b.subarray(f.start, f.end), depth + 1, status)))) throw malformed('a ListValue', status);
  return out;
}

/** google.protobuf.Value → its JSON value: null (1), number (2), string (3), bool (4), struct (5), list (6). */
function readValue(b: Buffer, depth: number, status: number): unknown {
  let v: unknown = null;
  const ok = walkFields(b, 0, b.length, (f) => {
    if (f.field === 1) v = null;
    else if (f.field === 2 && f.wire === FIXED64) v = b.readDoubleLE(f.start);
    else if (f.field === 3 && f.wire === LEN) v = text(b.subarray(f.start, f.end), 'a string value', status);
    else if (f.field === 4 && f.wire === VARINT) v = readVarint(b, f.start, f.end)!.value !== 0;
    else if (f.field === 5 && f.wire === LEN) v = readStruct(b.subarray(f.start, f.end), depth, status);
    else if (f.field === 6 && f.wire === LEN) v = readList(b.subarray(f.start, f.end), depth, status);
  });
  if (!ok) throw malformed('a Value', status);
  return v;
}

/** google.protobuf.Struct → an object (fields: 1, map entries of key 1, value 2). */
function readStruct(b: Buffer, depth: number, status: number): Record<string, unknown> {
  if (depth >= MAX_VALUE_DEPTH) throw new TranslateRefusal(`structs are nested deeper than ${MAX_VALUE_DEPTH} levels`, status);
  const out: Record<string, unknown> = {};
  const ok = walkFields(b, 0, b.length, (f) => {
    if (f.field !== 1 || f.wire !== LEN) return;
    let key = '';
    let value: unknown = null;
    const entry = b.subarray(f.start, f.end);
    if (
      !walkFields(entry, 0, entry.length, (e) => {
        if (e.field === 1 && e.wire === LEN) key = text(entry.subarray(e.start, e.end), 'a struct key', status);
        else if (e.field === 2 && e.wire === LEN) value = readValue(entry.subarray(e.start, e.end), depth + 1, status);
      })
    )
      throw malformed('a Struct', status);
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  });
  if (!ok) throw malformed('a Struct', status);
  return out;
}

// ---- writing ------------------------------------------------------------------------------------

/** `v` as a double, exactly: a bigint a double cannot hold is refused (`status`), never rounded. */
function double(v: Element, at: number, status: number): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') {
    const n = Number(v);
    if (BigInt(n) !== v) throw new TranslateRefusal(`element ${at} is ${v}, which a SeldonMessage (doubles) cannot hold exactly`, status);
    return n;
  }
  throw new TranslateRefusal(`element ${at} is not a number: a SeldonMessage tensor holds numbers`, status);
}

/** One element as a google.protobuf.Value. */
function valueOf(v: Element, at: number, status: number): ProtoWriter {
  const w = new ProtoWriter();
  if (typeof v === 'string') return w.string(3, v);
  if (typeof v === 'boolean') return w.varint(4, v ? 1 : 0);
  return w.double(2, double(v, at, status));
}

/** `values` nested by `shape` as a ListValue (rank 0 has none: a gRPC ndarray is a list). */
function listOf(values: readonly Element[], shape: readonly number[], status: number): ProtoWriter {
  if (shape.length === 0) throw new TranslateRefusal('a rank-0 tensor has no SeldonMessage ndarray form over gRPC (ndarray is a list)', status);
  checkNesting(values.length, shape, status);
  let at = 0;
  const level = (d: number): ProtoWriter => {
    const list = new ProtoWriter();
    for (let i = 0; i < shape[d]!; i++) {
      if (d === shape.length - 1) {
        list.message(1, valueOf(values[at]!, at, status));
        at++;
      } else list.message(1, new ProtoWriter().message(6, level(d + 1)));
    }
    return list;
  };
  return level(0);
}

function shapeOf(shape: readonly number[], status: number): readonly number[] {
  for (const d of shape) if (d > 0x7fffffff) throw new TranslateRefusal(`the shape ${JSON.stringify(shape)} does not fit a SeldonMessage tensor (int32 dimensions)`, status);
  return shape;
}

function tensorOf(shape: readonly number[], values: readonly Element[], status: number): ProtoWriter {
  if (values.length !== elementCount(shape)) throw new TranslateRefusal(`${values.length} elements do not fill the shape ${JSON.stringify(shape)}`, status);
  const doubles: number[] = new Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    doubles[i] = typeof v === 'number' ? v : double(v, i, status);
  }
  return new ProtoWriter().packedVarints(1, shapeOf(shape, status)).packedFloats(2, doubles, 8);
}

function binData(b64: string, status: number): Buffer {
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.toString('base64') !== b64) throw new TranslateRefusal('the bytes are not base64', status);
  return bytes;
}

/**
 * A SeldonMessage (to a Seldon model: `status` 400; the wrapper's answer to a Seldon client: 502) as its bytes.
 * `meta` is always there, empty without a puid: the wrapper's answers (`construct_response`) and the
 * official client's requests always set it, and a client can tell a message without it (`HasField`).
 */
export function writeSeldonMessage(m: SeldonRequest | SeldonAnswer, status: number): Buffer {
  const w = new ProtoWriter();
  w.message(2, metaMessage(m.puid, 'echo' in m ? m.echo : undefined));
  if ('text' in m) return m.kind === 'strData' ? w.string(5, m.text).finish() : w.bytes(4, binData(m.text, status)).finish();
  if (m.kind === 'jsonData') {
    const struct = new ProtoWriter();
    for (const o of m.outputs) struct.message(1, new ProtoWriter().string(1, o.name).message(2, new ProtoWriter().message(6, listOf(o.values, o.shape, status))));
    return w.message(6, new ProtoWriter().message(5, struct)).finish();
  }
  if (!('shape' in m)) throw new TranslateRefusal('nothing to write', status);
  const data = new ProtoWriter();
  if ('names' in m) {
    if (typeof m.names === 'number') data.fields(writeDefaultNames(m.names, false));
    else for (const n of m.names) data.string(1, n);
  }
  if (m.kind === 'tensor') data.message(2, tensorOf(m.shape, m.values, status));
  else data.message(3, listOf(m.values, m.shape, status));
  return w.message(3, data).finish();
}
