/**
 * A v2 client's inference request for a model served by Seldon's wrapper, REST JSON both ways: its
 * one input becomes a SeldonMessage (`data.tensor` for numbers, so the shape goes as it is;
 * `data.ndarray` for booleans and strings; `strData` / `binData` for one string of content type
 * `str` / `base64`), and the model's SeldonMessage answer a v2 answer. Pure.
 */
import { parseExact, writeExact, type ExactJson } from './json-exact.js';
import { isObj } from '../../routing/values/syntax.js';
import { TranslateRefusal, checkElements, inferDatatype, isFloat, isInteger, isNumeric, type Datatype, type Element } from './datatypes.js';
import { checkCount, checkShape, flatten } from './tensor.js';
import { JsonOut } from './json-out.js';
import { writeFlatInto, writeNestedInto } from './tensor-json.js';
import { isBase64, readV2Tensor } from './seldon-client.js';
import { allParams, asWritten, metaJson, paramsJson, seldonAnswerParams, v2RequestTags, type Params, type SeldonAnswerParams } from './meta-params.js';

/** What the answer's translation needs to know of the request. */
export interface V2Form {
  readonly modelName: string;
  readonly modelVersion: string | undefined;
  /** The request's `id`, echoed in the answer. */
  readonly id: string | undefined;
  /** The request's input: its datatype and shape (`sameDatatype`: an answer of its shape keeps its datatype). */
  readonly input?: { readonly datatype: Datatype; readonly shape: readonly number[] } | undefined;
}

export const DEFAULT_OUTPUT_NAME = 'output-0';

/** A v2 inference request (REST JSON) → the SeldonMessage's JSON. */
export function v2RequestToSeldon(body: Buffer, modelName: string, modelVersion?: string): { body: Buffer; form: V2Form } {
  let req: unknown;
  try {
    req = parseExact(body).value;
  } catch (err) {
    throw new TranslateRefusal(`the inference request is not valid JSON: ${(err as Error).message}`);
  }
  const params = isObj(req) ? req.parameters : undefined;
  // A parameter's number as the client wrote it (`1.0` is a float), read again only when one holds a number.
  const r = v2InferToSeldon(req, modelName, modelVersion, asWritten(body, 'parameters', params, 'parameters are', 400));
  return { body: writeSeldonRequestJson(r.message), form: r.form };
}

/** A SeldonMessage prediction as the rules make it (both transports write it). */
export type SeldonRequest = { readonly puid: string | undefined; /** `meta.tags`: the v2 request's parameters (meta-params.ts). */ readonly tags?: Params | undefined } & (
  | { readonly kind: 'strData' | 'binData'; /** binData: its base64 text. */ readonly text: string }
  | { readonly kind: 'tensor' | 'ndarray'; readonly shape: readonly number[]; readonly values: readonly Element[]; readonly float: boolean }
);

/** The SeldonMessage's JSON. */
export function writeSeldonRequestJson(m: SeldonRequest): Buffer {
  const meta = metaJson(m.puid, m.tags === undefined ? undefined : paramsJson(m.tags));
  if ('text' in m) return Buffer.from(`{"${m.kind}":${JSON.stringify(m.text)},"meta":${meta}}`);
  const out = new JsonOut().add('{"data":{"names":[],');
  // A float input's whole numbers go as `1.0`: the wrapper's numpy reads `1` as an integer.
  if (m.kind === 'tensor') {
    writeFlatInto(out.add(`"tensor":{"shape":${JSON.stringify(m.shape)},"values":`), m.values, m.float);
    out.add('}');
  } else writeNestedInto(out.add('"ndarray":'), m.values, m.shape);
  return out.add(`},"meta":${meta}}`).finish();
}

/** The rules of a v2 inference request (as JSON holds it; gRPC's reader gives the same form) → a SeldonMessage. */
export function v2InferToSeldon(
  req: unknown,
  modelName: string,
  modelVersion?: string,
  /** The request's parameters (`req.parameters`, or as `asWritten` read them). */
  params: unknown = isObj(req) ? req.parameters : undefined,
): { message: SeldonRequest; form: V2Form } {
  if (!isObj(req)) throw new TranslateRefusal('an inference request is a JSON object');
  if (req.id !== undefined && typeof req.id !== 'string') throw new TranslateRefusal('id must be a string');
  const id = req.id === '' ? undefined : (req.id as string | undefined);
  const tags = v2RequestTags(params);
  if (!Array.isArray(req.inputs) || req.inputs.length !== 1) throw new TranslateRefusal('a model served by Seldon takes one input: inputs must hold exactly one');
  const t = readV2Tensor(req.inputs[0], 'inputs[0]');
  const form = { modelName, modelVersion, id, input: { datatype: t.datatype, shape: t.shape } };
  if (t.datatype === 'BYTES' && t.values.length === 1 && (t.contentType === 'str' || t.contentType === 'base64')) {
    // MLServer's Base64Codec: the element is the bytes' base64 text; the Seldon model gets the bytes (binData). Text that is not base64 would reach it as other bytes, or none.
    if (t.contentType === 'base64' && !isBase64(t.values[0] as string)) throw new TranslateRefusal('inputs[0] has content_type base64 and its element is not base64');
    return { message: { kind: t.contentType === 'str' ? 'strData' : 'binData', puid: id, tags, text: t.values[0] as string }, form };
  }
  const kind = isNumeric(t.datatype) ? 'tensor' : 'ndarray';
  return { message: { kind, puid: id, tags, shape: t.shape, values: t.values, float: isFloat(t.datatype) }, form };
}

/** The v2 answer: model name, version, id and parameters (the Seldon answer's meta), then the one output (a `text` output's one string as it is). */
function v2Answer(form: V2Form, o: V2Output, answerParams: SeldonAnswerParams): Buffer {
  const version = form.modelVersion === undefined ? '' : `,"model_version":${JSON.stringify(form.modelVersion)}`;
  const all = allParams(answerParams);
  const id = `${form.id === undefined ? '' : `,"id":${JSON.stringify(form.id)}`}${all === undefined ? '' : `,"parameters":${paramsJson(all)}`}`;
  const params = o.contentType === undefined ? '' : `,"parameters":{"content_type":"${o.contentType}"}`;
  const out = new JsonOut().add(
    `{"model_name":${JSON.stringify(form.modelName)}${version}${id},"outputs":[{"name":${JSON.stringify(o.name)},"shape":${JSON.stringify(o.shape)},"datatype":"${o.datatype}"${params},"data":`,
  );
  if (o.kind === 'text') out.add(`[${JSON.stringify(o.values[0])}]`);
  // A float output is written as MLServer (Python) writes floats: `1.0`, and `-0.0`, whose sign a Python client's `json` keeps (`-0` reads as the integer 0).
  else writeFlatInto(out, o.values, isFloat(o.datatype));
  return out.add('}]}').finish();
}

/** A v2 error, `{"error": m}`. */
export const v2Error = (info: string): string => JSON.stringify({ error: info });

/**
 * The Seldon model's answer (status and body) → the v2 client's (same status). A Seldon error
 * `{"status":{"info":m}}` becomes `{"error": m}`; an answer the gateway cannot read is a refusal of status 502.
 */
export function seldonAnswerToV2(status: number, body: Buffer, form: V2Form): Buffer {
  if (status < 200 || status >= 300) {
    let info = body.toString('utf8');
    try {
      const e = JSON.parse(info) as unknown;
      if (isObj(e) && isObj(e.status) && typeof e.status.info === 'string') info = e.status.info;
    } catch {
      // Not JSON: the body's text is the error.
    }
    return Buffer.from(v2Error(info));
  }
  let parsed: ExactJson;
  try {
    parsed = parseExact(body);
  } catch {
    throw new TranslateRefusal("the model's SeldonMessage answer is not JSON", 502);
  }
  const byValues = seldonMessageToV2Output(parsed.value, () => parsed.floats);
  const o = sameDatatype(byValues, form) ?? byValues;
  const meta = isObj(parsed.value) ? parsed.value.meta : undefined;
  return v2Answer(form, o, seldonAnswerParams(asWritten(body, 'meta', meta, "the model's answer meta is", 502)));
}

/** The one output of a v2 answer to a Seldon model's answer; `text`: one string, written as it is. */
export interface V2Output {
  readonly kind: 'text' | 'values';
  readonly name: string;
  readonly shape: readonly number[];
  readonly datatype: Datatype;
  readonly values: readonly Element[];
  readonly contentType: string | undefined;
}

/** The rules of a Seldon model's answer (as JSON holds it; gRPC's reader gives the same form, `binData` as its base64 text) → one v2 output; what cannot be read is a refusal of status 502. */
export function seldonMessageToV2Output(msg: unknown, floats: () => boolean): V2Output {
  if (!isObj(msg)) throw new TranslateRefusal("the model's answer is not a SeldonMessage", 502);
  const text = (s: string, ct: string): V2Output => ({ kind: 'text', name: DEFAULT_OUTPUT_NAME, shape: [1], datatype: 'BYTES', values: [s], contentType: ct });
  if (typeof msg.strData === 'string') return text(msg.strData, 'str');
  if (typeof msg.binData === 'string') return text(msg.binData, 'base64');
  // Its long integers (bigints, json-exact.ts) as their digits: JSON.stringify alone throws on them.
  if (msg.jsonData !== undefined) return text(writeExact(msg.jsonData), 'json');
  const data = msg.data;
  let shape: number[];
  let values: Element[];
  try {
    if (!isObj(data)) throw new TranslateRefusal('it holds no data');
    if (isObj(data.tensor)) {
      shape = checkShape(data.tensor.shape, 'data.tensor.shape');
      if (!Array.isArray(data.tensor.values)) throw new TranslateRefusal('data.tensor.values is not a list');
      values = data.tensor.values as Element[];
      checkCount(values.length, shape, 'data.tensor.values');
    } else if (data.ndarray !== undefined) ({ shape, values } = flatten(data.ndarray, 'data.ndarray'));
    else throw new TranslateRefusal('its data holds neither tensor nor ndarray');
    const datatype = inferDatatype(values, floats);
    // Checked as a v2 client's input is: a number JSON.parse made Infinity would be written null.
    checkElements(datatype, values);
    return { kind: 'values', name: DEFAULT_OUTPUT_NAME, shape, datatype, values, contentType: undefined };
  } catch (err) {
    if (err instanceof TranslateRefusal && err.status === 502) throw err;
    throw new TranslateRefusal(`the model's answer cannot be translated: ${(err as Error).message}`, 502);
  }
}

/**
 * The answer of a Seldon model to a v2 client in the request's own datatype, when the gateway can
 * say so without changing a value: the answer is one numeric tensor of the request's shape (an
 * elementwise model, whose numpy keeps its input's dtype: what MLServer's NumpyCodec would answer the
 * same model with), the request's datatype is numeric, and every element is one of that datatype
 * (datatypes.ts: whole and in range for an integer type, in range for a float one; gRPC's writer
 * then also refuses a float its binary field cannot hold exactly). Null: the answer keeps the datatype
 * its values give (a Seldon answer has none of its own: the wrapper's numpy made it float64 or int64),
 * never a value refused or rounded for the sake of a datatype. `doubles`: the answer's numbers are
 * doubles (gRPC's SeldonMessage), each exactly the value it holds, so a whole one beyond 2^53 is that
 * whole number (JSON's text beyond 2^53 with a fraction or exponent is not known exactly).
 */
export function sameDatatype(o: V2Output, form: V2Form, doubles = false): V2Output | null {
  const input = form.input;
  if (input === undefined || o.kind !== 'values' || o.datatype === input.datatype || !isNumeric(input.datatype) || !isNumeric(o.datatype)) return null;
  if (o.shape.length !== input.shape.length || o.shape.some((d, i) => d !== input.shape[i])) return null;
  let values = o.values;
  if (doubles && isInteger(input.datatype) && values.some(unsafeWhole)) values = values.map((v) => (unsafeWhole(v) ? BigInt(v as number) : v));
  // A double float32 would round: the answer stays FP64 (the model's own value, never rounded for a datatype).
  if (doubles && input.datatype === 'FP32' && values.some((v) => typeof v === 'number' && Math.fround(v) !== v)) return null;
  try {
    checkElements(input.datatype, values);
  } catch (err) {
    if (err instanceof TranslateRefusal) return null;
    throw err;
  }
  return { ...o, datatype: input.datatype, values };
}

const unsafeWhole = (v: Element): boolean => typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v);
