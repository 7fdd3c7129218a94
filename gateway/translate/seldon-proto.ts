/**
 * Seldon's gRPC SeldonMessage (prediction.proto) ⇄ the form the translation rules read and write
 * (seldon-client.ts, v2-client.ts: the message as JSON holds it), so both transports share one set of
 * rules. Reading: `binData` becomes its base64 text, `data.ndarray` and `jsonData` plain arrays and
 * objects (nested at most MAX_VALUE_DEPTH deep), every number a double (gRPC's tensor and Value hold
 * doubles: numpy's float64). Writing: a value a double cannot hold exactly (INT64 2^53 + 1) is a
 * refusal, never rounded. Pure.
 */
import { LEN, FIXED32, FIXED64, VARINT, ProtoWriter, readPackedFloats, readVarint, readVarint64, walkFields } from '../wire/protobuf.js';
import { TranslateRefusal, type Element } from './datatypes.js';
import type { SeldonAnswer } from './seldon-client.js';
import { checkNesting, elementCount } from './tensor.js';
import { writeDefaultNames } from './default-names.js';
import type { SeldonRequest } from './v2-client.js';
import type { Params } from './meta-params.js';

/** Deepest nesting of lists and structs read from a message (an ndarray is at most 32 deep: MAX_RANK; tensor.ts says so of a deeper one). */
export const MAX_VALUE_DEPTH = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Up to this many bytes, ASCII text is read byte by byte: a name, a datatype or a puid costs less so than the decoder's call. */
const SHORT_TEXT = 64;

/** A protobuf string or BYTES element as text; bytes that are not UTF-8 are refused (`status`: 400 for a request, 502 for an answer). */
export function text(b: Uint8Array, what: string, status: number): string {
  if (b.length <= SHORT_TEXT) {
    let s = '';
    let i = 0;
    for (; i < b.length && b[i]! < 0x80; i++) s += String.fromCharCode(b[i]!);
    if (i === b.length) return s;
  }
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

/** An own property, whatever its key (`__proto__` included): never a prototype set. */
const put = (o: Record<string, unknown>, key: string, value: unknown): void => void Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });

/** Meta: puid 1, tags 2 (map<string, Value>), routing 3 (map<string, int32>), requestPath 4 (map<string, string>), metrics 5 (Metric). */
function readMeta(b: Buffer, status: number): Record<string, unknown> {
  const meta: Record<string, unknown> = {};
  const map = (key: string): Record<string, unknown> => (meta[key] ??= {}) as Record<string, unknown>;
  const ok = walkFields(b, 0, b.length, (f) => {
    if (f.wire !== LEN) return;
    const sub = b.subarray(f.start, f.end);
    if (f.field === 1) meta.puid = text(sub, 'meta.puid', status);
    else if (f.field === 2) mapEntry(sub, `meta.tags`, status, (k, v) => put(map('tags'), k, v === undefined ? null : readValue(v, 1, status)));
    else if (f.field === 3) mapEntry(sub, `meta.routing`, status, (k, v, n) => put(map('routing'), k, n === null ? 0 : Number(BigInt.asIntN(32, n))));
    else if (f.field === 4) mapEntry(sub, `meta.requestPath`, status, (k, v) => put(map('requestPath'), k, v === undefined ? '' : text(v, 'meta.requestPath', status)));
    else if (f.field === 5) ((meta.metrics ??= []) as unknown[]).push(readMetric(sub, status));
  });
  if (!ok) throw malformed('meta', status);
  return meta;
}

/** One map entry (key 1, value 2): its key, and its value's bytes (a LEN value) or number (a varint value). */
function mapEntry(b: Buffer, what: string, status: number, each: (key: string, value: Buffer | undefined, n: bigint | null) => void): void {
  let key = '';
  let value: Buffer | undefined;
  let n: bigint | null = null;
  const ok = walkFields(b, 0, b.length, (e) => {
    if (e.field === 1 && e.wire === LEN) key = text(b.subarray(e.start, e.end), `a key of ${what}`, status);
    else if (e.field === 2 && e.wire === LEN) value = b.subarray(e.start, e.end);
    else if (e.field === 2 && e.wire === VARINT) n = readVarint64(b, e.start, e.end);
  });
  if (!ok) throw malformed(what, status);
  each(key, value, n);
}

const METRIC_TYPES = ['COUNTER', 'GAUGE', 'TIMER'];

/** Metric: key 1, type 2 (enum), value 3 (float), tags 4 (map<string, string>), as protobuf's JSON mapping names them. */
function readMetric(b: Buffer, status: number): Record<string, unknown> {
  const m: Record<string, unknown> = { key: '', type: 'COUNTER', value: 0 };
  const ok = walkFields(b, 0, b.length, (f) => {
    if (f.field === 1 && f.wire === LEN) m.key = text(b.subarray(f.start, f.end), 'a metric key', status);
    else if (f.field === 2 && f.wire === VARINT) {
      const t = Number(BigInt.asIntN(32, readVarint64(b, f.start, f.end)!));
      m.type = METRIC_TYPES[t] ?? t;
    } else if (f.field === 3 && f.wire === FIXED32) m.value = b.readFloatLE(f.start);
    else if (f.field === 4 && f.wire === LEN)
      mapEntry(b.subarray(f.start, f.end), 'a metric tags', status, (k, v) => put((m.tags ??= {}) as Record<string, unknown>, k, v === undefined ? '' : text(v, 'a metric tag', status)));
  });
  if (!ok) throw malformed('a metric', status);
  return m;
}

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
    put(out, key, value);
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

/** A JSON value (a tag's: its nesting bounded when read, meta-params.ts) as a google.protobuf.Value; a number a double cannot hold exactly is refused. */
function jsonValue(v: unknown, what: string, status: number): ProtoWriter {
  if (v === null) return new ProtoWriter().varint(1, 0);
  if (typeof v === 'number' || typeof v === 'bigint') {
    if (typeof v === 'bigint' && BigInt(Number(v)) !== v) throw new TranslateRefusal(`${what} is ${v}, which a SeldonMessage (doubles) cannot hold exactly`, status);
    return new ProtoWriter().double(2, Number(v));
  }
  if (typeof v === 'string' || typeof v === 'boolean') return valueOf(v, 0, status);
  if (Array.isArray(v)) {
    const list = new ProtoWriter();
    v.forEach((x, i) => list.message(1, jsonValue(x, `${what}[${i}]`, status)));
    return new ProtoWriter().message(6, list);
  }
  const struct = new ProtoWriter();
  for (const [k, x] of Object.entries(v as object)) struct.message(1, new ProtoWriter().string(1, k).message(2, jsonValue(x, `${what}[${JSON.stringify(k)}]`, status)));
  return new ProtoWriter().message(5, struct);
}

/** Meta: the puid, then the tags (map<string, Value>, in order). */
function metaOf(puid: string | undefined, tags: Params | undefined, status: number): ProtoWriter {
  const w = new ProtoWriter();
  if (puid !== undefined) w.string(1, puid);
  if (tags !== undefined) for (const [k, v] of tags) w.message(2, new ProtoWriter().string(1, k).message(2, jsonValue(v, `meta.tags[${JSON.stringify(k)}]`, status)));
  return w;
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
  w.message(2, metaOf(m.puid, m.tags, status));
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
