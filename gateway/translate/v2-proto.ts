/**
 * The Open Inference Protocol's gRPC messages (`inference.GRPCInferenceService`, MLServer's
 * dataplane.proto) ⇄ the form the translation rules read and write (the request or answer as v2
 * JSON holds it), so both transports share one set of rules. Reading takes each tensor's elements
 * from its typed contents (the one field its datatype has: INT64 in `int64_contents`…) or from the
 * raw contents (raw-contents.ts); 64-bit integers stay exact (bigints beyond 2^53, never a
 * JavaScript number); BYTES elements are text (a SeldonMessage holds strings: bytes that are not
 * UTF-8 are refused). Writing uses the typed contents, FP16 and BF16 the raw contents (they have no
 * typed ones). What does not fit its shape or datatype is refused by the rules, never guessed. Pure.
 */
import { FIXED32, FIXED64, LEN, ProtoWriter, VARINT, readPackedFloats, readVarint64, walkFields, type WireField } from '../wire/protobuf.js';
import { TranslateRefusal, isDatatype, type Datatype, type Element } from './datatypes.js';
import { readRaw, writeRaw } from './raw-contents.js';
import { text } from './seldon-proto.js';
import type { V2Request } from './seldon-client.js';
import type { V2Form, V2Output } from './v2-client.js';
import { writeExact } from './json-exact.js';
import { NO_PARAMS, type Params, type SeldonAnswerParams } from './meta-params.js';

/** The field of InferTensorContents each datatype's elements are in (FP16, BF16: none, raw only). */
const CONTENTS: Readonly<Partial<Record<Datatype, number>>> = {
  BOOL: 1,
  INT8: 2,
  INT16: 2,
  INT32: 2,
  INT64: 3,
  UINT8: 4,
  UINT16: 4,
  UINT32: 4,
  UINT64: 5,
  FP32: 6,
  FP64: 7,
  BYTES: 8,
};

const malformed = (what: string, status: number): TranslateRefusal => new TranslateRefusal(`${what} is not a well-formed protobuf message`, status);

/** A whole number read from 64 bits: a number when it is safe, else a bigint (exact). */
const exact = (v: bigint): number | bigint => (v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v);

/** A tensor as read: what v2 JSON says of it, and its contents (`raw`: the raw contents' index, by order). */
interface ReadTensor {
  name: string;
  datatype: string;
  shape: (number | bigint)[];
  parameters: Record<string, unknown>;
  data: unknown[];
  contents: Buffer | undefined;
}

/** ModelInferRequest (inputs: 5, raw_input_contents: 7) or ModelInferResponse (outputs: 5, raw_output_contents: 6) → v2 JSON's form. */
export function readInferMessage(b: Buffer, answer: boolean, status: number, maxElements = Infinity): Record<string, unknown> {
  const what = answer ? 'the ModelInferResponse' : 'the ModelInferRequest';
  const out: Record<string, unknown> = {};
  const tensors: ReadTensor[] = [];
  const raw: Buffer[] = [];
  const rawField = answer ? 6 : 7;
  const ok = walkFields(b, 0, b.length, (f) => {
    if (f.wire !== LEN) return;
    const sub = b.subarray(f.start, f.end);
    if (f.field === 1) out.model_name = text(sub, 'model_name', status);
    else if (f.field === 2) out.model_version = text(sub, 'model_version', status);
    else if (f.field === 3) out.id = text(sub, 'id', status);
    else if (f.field === 4) readParameter(sub, (out.parameters ??= {}) as Record<string, unknown>, status);
    else if (f.field === 5) tensors.push(readTensor(sub, status));
    else if (f.field === rawField) raw.push(sub);
  });
  if (!ok) throw malformed(what, status);
  const key = answer ? 'outputs' : 'inputs';
  if (raw.length > 0 && raw.length !== tensors.length) throw new TranslateRefusal(`${what} has ${raw.length} raw contents for ${tensors.length} ${key}`, status);
  out[key] = tensors.map((t, i) => {
    const where = `${key}[${i}]`;
    if (isDatatype(t.datatype)) {
      // Decoded no further than the shape says, and no more than translate: each element is a SeldonMessage's
      // eight-byte double, so a message of one-byte elements would grow eightfold (413: RESOURCE_EXHAUSTED).
      const limit = t.shape.reduce<number>((n, d) => n * (typeof d === 'number' && d > 0 ? d : typeof d === 'number' ? 0 : Infinity), 1);
      if (limit > maxElements) {
        // Elements take a byte at least: contents too short to fill the shape do not match it (INVALID_ARGUMENT), nor does
        // a shape beyond 2^53; a real one too large to translate is RESOURCE_EXHAUSTED.
        const bytes = raw.length > 0 ? (raw[i]?.length ?? 0) : (t.contents?.length ?? 0);
        const shape = `[${t.shape.join(',')}]`;
        if (bytes < limit) throw new TranslateRefusal(`${where} has at most ${bytes} elements where its shape ${shape} holds ${Number.isSafeInteger(limit) ? limit : 'more than 2^53'}`, status);
        throw new TranslateRefusal(`${where}'s shape ${shape} holds ${limit} elements, more than the ${maxElements} a translated message holds`, status === 400 ? 413 : status);
      }
      const tooMany = (): TranslateRefusal => new TranslateRefusal(`${where} has more elements than its shape ${JSON.stringify(t.shape)} holds`, status);
      if (raw.length > 0) {
        if (t.contents !== undefined) throw new TranslateRefusal(`${where} has both contents and raw contents`, status);
        t.data = readRaw(t.datatype, raw[i]!, limit, tooMany).map((v, j) => (Buffer.isBuffer(v) ? text(v, `${where} element ${j}`, status) : v));
      } else if (t.contents !== undefined) t.data = readContents(t.contents, t.datatype, where, status, limit, tooMany);
    }
    return { name: t.name, datatype: t.datatype, shape: t.shape, parameters: t.parameters, data: t.data };
  });
  return out;
}

/** InferInputTensor / InferOutputTensor: name 1, datatype 2, shape 3 (int64), parameters 4, contents 5. */
function readTensor(b: Buffer, status: number): ReadTensor {
  const t: ReadTensor = { name: '', datatype: '', shape: [], parameters: {}, data: [], contents: undefined };
  const ok = walkFields(b, 0, b.length, (f) => {
    if (f.field === 1 && f.wire === LEN) t.name = text(b.subarray(f.start, f.end), 'a tensor name', status);
    else if (f.field === 2 && f.wire === LEN) t.datatype = text(b.subarray(f.start, f.end), 'a datatype', status);
    else if (f.field === 3) varints(b, f, (v) => t.shape.push(exact(BigInt.asIntN(64, v))), 'shape', status);
    else if (f.field === 4 && f.wire === LEN) readParameter(b.subarray(f.start, f.end), t.parameters, status);
    else if (f.field === 5 && f.wire === LEN) t.contents = b.subarray(f.start, f.end);
  });
  if (!ok) throw malformed('a tensor', status);
  return t;
}

/**
 * One map<string, InferParameter> entry, its value as JSON holds it (int64 exact; none set: null), an own
 * property whatever its key. InferParameter: bool 1, int64 2, string 3 (MLServer's dataplane.proto), and
 * Triton's later double 4 and uint64 5, read so that none is lost.
 */
function readParameter(b: Buffer, into: Record<string, unknown>, status: number): void {
  let key = '';
  let value: unknown = null;
  const ok = walkFields(b, 0, b.length, (e) => {
    if (e.field === 1 && e.wire === LEN) key = text(b.subarray(e.start, e.end), 'a parameter key', status);
    else if (e.field === 2 && e.wire === LEN)
      if (
        !walkFields(b, e.start, e.end, (p) => {
          if (p.field === 1 && p.wire === VARINT) value = readVarint64(b, p.start, p.end) !== 0n;
          else if (p.field === 2 && p.wire === VARINT) value = exact(BigInt.asIntN(64, readVarint64(b, p.start, p.end)!));
          else if (p.field === 3 && p.wire === LEN) value = text(b.subarray(p.start, p.end), 'a parameter', status);
          else if (p.field === 4 && p.wire === FIXED64) value = b.readDoubleLE(p.start);
          else if (p.field === 5 && p.wire === VARINT) value = exact(readVarint64(b, p.start, p.end)!);
        })
      )
        throw malformed('a parameter', status);
  });
  if (!ok) throw malformed('a parameter', status);
  Object.defineProperty(into, key, { value, enumerable: true, writable: true, configurable: true });
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * A parameter's value as an InferParameter, which holds a bool, an int64 or a string (MLServer's dataplane.proto:
 * no double): a whole number in int64's range goes as one (a double's `1.0` is that integer), anything else
 * (a fraction, `-0.0`, null, a map, a list) is refused (`status`), never rounded or dropped.
 */
function inferParameter(v: unknown, what: string, status: number): ProtoWriter {
  const w = new ProtoWriter();
  if (typeof v === 'boolean') return w.varint(1, v ? 1 : 0);
  if (typeof v === 'string') return w.string(3, v);
  const n = typeof v === 'bigint' ? v : typeof v === 'number' && Number.isInteger(v) && !Object.is(v, -0) ? BigInt(v) : null;
  if (n !== null && n >= INT64_MIN && n <= INT64_MAX) return w.varint(2, n);
  const shown = typeof v === 'bigint' ? v.toString() : Object.is(v, -0) ? '-0.0' : (JSON.stringify(v) ?? String(v));
  throw new TranslateRefusal(`${what} is ${shown.length > 40 ? `${shown.slice(0, 40)}…` : shown}, which a gRPC InferParameter (a bool, an int64 or a string) cannot hold`, status);
}

/** `params` as the message's map<string, InferParameter> field `field`, in order; `json`: written as their JSON text (Seldon's own maps and lists). */
function writeParams(w: ProtoWriter, field: number, params: Params | undefined, what: string, status: number, json = false): void {
  if (params === undefined) return;
  for (const [k, v] of params) {
    const p = json ? new ProtoWriter().string(3, writeExact(v)) : inferParameter(v, `${what}[${JSON.stringify(k)}]`, status);
    w.message(field, new ProtoWriter().string(1, k).message(2, p));
  }
}

/** Each varint of a repeated field, packed or not. */
function varints(b: Buffer, f: WireField, each: (v: bigint) => void, what: string, status: number): void {
  if (f.wire === VARINT) {
    each(readVarint64(b, f.start, f.end)!);
    return;
  }
  if (f.wire !== LEN) throw malformed(what, status);
  for (let i = f.start; i < f.end;) {
    const v = readVarint64(b, i, f.end);
    if (v === null) throw malformed(what, status);
    each(v);
    while (b[i]! >= 0x80) i++;
    i++;
  }
}

/** The typed contents of `dt`'s field; an element in another field is refused (it would be lost). */
function readContents(b: Buffer, dt: Datatype, where: string, status: number, limit: number, tooMany: () => Error): unknown[] {
  const field = CONTENTS[dt];
  if (field === undefined) throw new TranslateRefusal(`${where} is ${dt}, which only raw contents can carry`, status);
  const out: unknown[] = [];
  const ok = walkFields(b, 0, b.length, (f) => {
    if (f.field !== field) {
      if (f.field >= 1 && f.field <= 8) throw new TranslateRefusal(`${where} is ${dt} but has elements in contents field ${f.field}`, status);
      return;
    }
    // A packed number takes at most ten bytes: a field of more than that per element the shape has left holds too many.
    if (out.length >= limit || (field !== 8 && f.end - f.start > (limit - out.length) * 10)) throw tooMany();
    switch (field) {
      case 1:
        return varints(b, f, (v) => out.push(v !== 0n), where, status);
      case 2:
        return varints(b, f, (v) => out.push(Number(BigInt.asIntN(32, v))), where, status);
      case 3:
        return varints(b, f, (v) => out.push(exact(BigInt.asIntN(64, v))), where, status);
      case 4:
        return varints(b, f, (v) => out.push(Number(BigInt.asUintN(32, v))), where, status);
      case 5:
        return varints(b, f, (v) => out.push(exact(v)), where, status);
      case 6:
        if (f.wire === FIXED32) return void out.push(b.readFloatLE(f.start));
        if (f.wire !== LEN || (f.end - f.start) % 4 !== 0) throw malformed(where, status);
        return readPackedFloats(b, f.start, f.end, 4, out as number[]);
      case 7:
        if (f.wire === FIXED64) return void out.push(b.readDoubleLE(f.start));
        if (f.wire !== LEN || (f.end - f.start) % 8 !== 0) throw malformed(where, status);
        return readPackedFloats(b, f.start, f.end, 8, out as number[]);
      default:
        if (f.wire !== LEN) throw malformed(where, status);
        out.push(text(b.subarray(f.start, f.end), `${where} element ${out.length}`, status));
    }
  });
  if (!ok) throw malformed(where, status);
  if (out.length > limit) throw tooMany();
  return out;
}

// ---- writing ------------------------------------------------------------------------------------

/** One tensor's head and contents (typed; FP16 and BF16 return their raw contents to go beside the message). */
function writeTensor(name: string, shape: readonly number[], dt: Datatype, values: readonly Element[], contentType: string | undefined): { tensor: ProtoWriter; raw: Buffer | undefined } {
  const w = new ProtoWriter().string(1, name).string(2, dt).packedVarints(3, shape);
  if (contentType !== undefined) w.message(4, new ProtoWriter().string(1, 'content_type').message(2, new ProtoWriter().string(3, contentType)));
  const field = CONTENTS[dt];
  if (field === undefined) return { tensor: w, raw: writeRaw(dt, values) };
  const c = new ProtoWriter();
  if (field === 6 || field === 7) {
    // FP32: raw-contents.ts's rule (the nearest float32; a value that would vanish refused).
    if (field === 6) writeRaw('FP32', values);
    c.packedFloats(field, values as number[], field === 6 ? 4 : 8);
  } else if (field === 8) for (const v of values) c.string(8, String(v));
  else if (field === 1)
    c.packedVarints(
      1,
      values.map((v) => (v === true ? 1 : 0)),
    );
  else c.packedVarints(field, values as (number | bigint)[]);
  return { tensor: w.message(5, c), raw: undefined };
}

/** The ModelInferRequest a v2 model gets (`model`: its name; `version`: the version asked, none when null). */
export function writeInferRequest(r: V2Request, model: string, version: string | null = null): Buffer {
  const t = r.input;
  const { tensor, raw } = writeTensor(t.name, t.shape, t.datatype, t.values, t.contentType);
  const w = new ProtoWriter().string(1, model);
  if (version !== null) w.string(2, version);
  if (r.id !== undefined) w.string(3, r.id);
  writeParams(w, 4, r.parameters, 'meta.tags', 400);
  w.message(5, tensor);
  if (raw !== undefined) w.bytes(7, raw);
  return w.finish();
}

/** The ModelInferResponse a v2 client gets from a Seldon model's answer (`params`: its meta, meta-params.ts). */
export function writeInferResponse(o: V2Output, form: V2Form, params: SeldonAnswerParams = NO_PARAMS): Buffer {
  const { tensor, raw } = writeTensor(o.name, o.shape, o.datatype, o.values, o.contentType);
  const w = new ProtoWriter().string(1, form.modelName);
  if (form.modelVersion !== undefined) w.string(2, form.modelVersion);
  if (form.id !== undefined) w.string(3, form.id);
  writeParams(w, 4, params.tags, "the model's answer meta.tags", 502);
  writeParams(w, 4, params.fields, "the model's answer meta", 502, true);
  w.message(5, tensor);
  if (raw !== undefined) w.bytes(6, raw);
  return w.finish();
}

/** ModelMetadataRequest / ModelReadyRequest: the model's name (1) and version (2). */
export function readModelRef(b: Buffer): { name: string; version: string } {
  const ref = { name: '', version: '' };
  const ok = walkFields(b, 0, b.length, (f) => {
    if (f.wire !== LEN) return;
    const s = b.subarray(f.start, f.end).toString('utf8');
    if (f.field === 1) ref.name = s;
    else if (f.field === 2) ref.version = s;
  });
  if (!ok) throw new TranslateRefusal('the request is not a model metadata or readiness request', 400);
  return ref;
}

/** ModelMetadataResponse of a model served by Seldon's wrapper, as far as the gateway knows it: its name, platform `seldon`, no declared tensors. */
export function writeSeldonModelMetadata(name: string): Buffer {
  return new ProtoWriter().string(1, name).string(3, 'seldon').finish();
}

/** ModelReadyResponse: ready. */
export function writeModelReady(): Buffer {
  return new ProtoWriter().varint(1, 1).finish();
}

/** ModelMetadataRequest: the model's name and version (none: ''). */
export function writeModelMetadataRequest(name: string, version: string): Buffer {
  const w = new ProtoWriter().string(1, name);
  if (version !== '') w.string(2, version);
  return w.finish();
}

/**
 * ModelMetadataResponse (name 1, versions 2, platform 3, inputs 4: TensorMetadata {name 1, datatype 2,
 * shape 3}) → what v2 JSON says of it: `{name, platform, inputs: [{name, datatype}]}` (the pure reader,
 * routing/policies/model-metadata.ts, checks it). Each level is walked once, never deeper than the
 * inputs' own fields; a malformed message is a `TranslateRefusal`.
 */
export function readModelMetadataResponse(b: Buffer): { name: string; platform: string; inputs: { name: string; datatype: string }[] } {
  const out = { name: '', platform: '', inputs: [] as { name: string; datatype: string }[] };
  const ok = walkFields(b, 0, b.length, (f) => {
    if (f.wire !== LEN) return;
    const sub = b.subarray(f.start, f.end);
    if (f.field === 1) out.name = text(sub, 'name', 502);
    else if (f.field === 3) out.platform = text(sub, 'platform', 502);
    else if (f.field === 4) {
      const t = { name: '', datatype: '' };
      if (
        !walkFields(sub, 0, sub.length, (g) => {
          if (g.wire !== LEN) return;
          if (g.field === 1) t.name = text(sub.subarray(g.start, g.end), 'inputs.name', 502);
          else if (g.field === 2) t.datatype = text(sub.subarray(g.start, g.end), 'inputs.datatype', 502);
        })
      )
        throw malformed('the ModelMetadataResponse', 502);
      out.inputs.push(t);
    }
  });
  if (!ok) throw malformed('the ModelMetadataResponse', 502);
  return out;
}
