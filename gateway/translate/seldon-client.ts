/**
 * A Seldon client's prediction for a model that speaks the Open Inference Protocol (v2), REST JSON
 * both ways: the SeldonMessage becomes one v2 input, and the model's v2 answer becomes the answer
 * Seldon's Python wrapper would have written (seldon_core/utils.py `construct_response_json`: the
 * answer mirrors the request's form, keys sorted as Flask writes them). Pure: bytes in, text out;
 * anything it cannot carry unchanged is a `TranslateRefusal`.
 */
import { parseExact, type ExactJson } from './json-exact.js';
import { isObj } from '../../routing/values/syntax.js';
import { TranslateRefusal, checkElements, inferDatatype, isDatatype, isFloat, isNumeric, jsonText, type Datatype, type Element } from './datatypes.js';
import { MAX_EMPTY_LISTS, checkCount, checkShape, flatten } from './tensor.js';
import { notNumbersFrom } from './number-lists.js';
import { JsonOut } from './json-out.js';
import { smallTensorDoc, writeFlatInto, writeNestedInto } from './tensor-json.js';
import { defaultNameCount, writeDefaultNames } from './default-names.js';
import { asWritten, metaJson, paramsJson, seldonRequestMeta, sortedParamsJson, v2AnswerTags, type Params } from './meta-params.js';

/** What the answer's translation needs to know of the request. */
export interface SeldonForm {
  readonly kind: 'tensor' | 'ndarray' | 'strData' | 'binData';
  /** `meta.puid`: the v2 `id`, echoed in the answer's `meta` as the wrapper does. */
  readonly puid: string | undefined;
  /** `meta.tags`: the v2 request's parameters, echoed in the answer's tags as the wrapper does. */
  readonly tags?: Params | undefined;
}

/** What the translation knows of the model's input. */
export interface V2Input {
  /** The input's name (the model's metadata; else `input-0`). */
  readonly name: string;
  /** The datatype to send: the annotation's, else the model's metadata; null: by the values. */
  readonly datatype: Datatype | null;
}

export const DEFAULT_INPUT_NAME = 'input-0';

function parseJson(body: Buffer, what: string): ExactJson {
  try {
    return parseExact(body);
  } catch (err) {
    throw new TranslateRefusal(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

/** A SeldonMessage prediction (REST JSON) → the v2 inference request's JSON, and the form its answer takes. */
export function seldonRequestToV2(body: Buffer, input: V2Input): { body: Buffer; form: SeldonForm } {
  const parsed = parseJson(body, 'the SeldonMessage');
  // A tag's number as the client wrote it (`1.0` is a float): its meta read again from the text, only when a tag holds a number.
  const meta = isObj(parsed.value) ? parsed.value.meta : undefined;
  const exact = isObj(meta) ? asWritten(body, 'meta', meta, 'meta is', 400, meta.tags) : meta;
  const r = seldonMessageToV2(exact === meta ? parsed.value : { ...(parsed.value as Record<string, unknown>), meta: exact }, () => parsed.floats, input);
  return { body: writeV2RequestJson(r.request), form: r.form };
}

/** A v2 inference request of one input, as the rules make it (both transports write it). */
export interface V2Request {
  readonly id: string | undefined;
  /** The request's `parameters`: the SeldonMessage's `meta.tags` (meta-params.ts). */
  readonly parameters?: Params | undefined;
  readonly input: V2Tensor;
}

/** The v2 request's JSON. */
export function writeV2RequestJson(r: V2Request): Buffer {
  const id = r.id === undefined ? '' : `"id":${JSON.stringify(r.id)},`;
  const t = r.input;
  const small = smallTensorDoc(t.values, null, false);
  const parameters = r.parameters === undefined ? '' : `"parameters":${paramsJson(r.parameters)},`;
  if (small !== undefined) {
    const input = { name: t.name, shape: t.shape, datatype: t.datatype, parameters: t.contentType === undefined ? undefined : { content_type: t.contentType }, data: small };
    if (parameters !== '') return Buffer.from(`{${id}${parameters}"inputs":${JSON.stringify([input])}}`);
    return Buffer.from(JSON.stringify(r.id === undefined ? { inputs: [input] } : { id: r.id, inputs: [input] }));
  }
  const params = t.contentType === undefined ? '' : `"parameters":{"content_type":"${t.contentType}"},`;
  const out = new JsonOut().add(`{${id}${parameters}"inputs":[{"name":${JSON.stringify(t.name)},"shape":${JSON.stringify(t.shape)},"datatype":"${t.datatype}",${params}"data":`);
  writeFlatInto(out, t.values);
  return out.add('}]}').finish();
}

/**
 * The rules of a Seldon prediction → one v2 input, on the message as JSON holds it (`msg`; gRPC's
 * reader, translate/grpc-messages.ts, gives the same form: `binData` as its base64 text). `floats`:
 * whether some number was written as a float (numpy's float64), asked only when that decides the datatype.
 */
export function seldonMessageToV2(msg: unknown, floats: () => boolean, input: V2Input): { request: V2Request; form: SeldonForm } {
  if (!isObj(msg)) throw new TranslateRefusal('a SeldonMessage is a JSON object');
  const { puid, tags } = seldonRequestMeta(msg.meta);

  if (typeof msg.strData === 'string' || typeof msg.binData === 'string') {
    const bin = typeof msg.binData === 'string';
    const text = (bin ? msg.binData : msg.strData) as string;
    if (bin && !isBase64(text)) throw new TranslateRefusal('binData is not base64');
    if (input.datatype !== null && input.datatype !== 'BYTES') throw new TranslateRefusal(`${bin ? 'binData' : 'strData'} is bytes, and the model's input is ${input.datatype}`);
    const contentType = bin ? 'base64' : 'str';
    return {
      request: { id: puid, parameters: tags, input: { name: input.name, shape: [1], datatype: 'BYTES', values: [text], contentType } },
      form: { kind: bin ? 'binData' : 'strData', puid, tags },
    };
  }
  if (msg.jsonData !== undefined) throw new TranslateRefusal('jsonData has no Open Inference Protocol form: send data.tensor, data.ndarray, strData or binData');
  const data = msg.data;
  if (!isObj(data)) throw new TranslateRefusal('a SeldonMessage prediction needs data (tensor or ndarray), strData or binData');
  let shape: number[];
  let values: Element[];
  let kind: SeldonForm['kind'];
  if (data.tensor !== undefined) {
    const t = data.tensor;
    if (!isObj(t)) throw new TranslateRefusal('data.tensor must be an object with shape and values');
    shape = checkShape(t.shape, 'data.tensor.shape');
    if (!Array.isArray(t.values)) throw new TranslateRefusal('data.tensor.values must be a list of numbers');
    values = t.values as Element[];
    const from = notNumbersFrom(values);
    if (from >= 0) tensorNumbers(values, from);
    checkCount(values.length, shape, 'data.tensor.values');
    kind = 'tensor';
  } else if (data.ndarray !== undefined) {
    ({ shape, values } = flatten(data.ndarray, 'data.ndarray'));
    kind = 'ndarray';
  } else if (data.tftensor !== undefined) {
    throw new TranslateRefusal('data.tftensor is not translated: send data.tensor or data.ndarray');
  } else throw new TranslateRefusal('data holds neither tensor nor ndarray');
  const datatype = input.datatype ?? inferDatatype(values, floats);
  checkElements(datatype, values);
  return { request: { id: puid, parameters: tags, input: { name: input.name, shape, datatype, values, contentType: undefined } }, form: { kind, puid, tags } };
}

/** Throw unless each of `values` from `from` is a number or a bigint (a list of numbers alone never comes here: number-lists.ts). */
function tensorNumbers(values: readonly unknown[], from: number): void {
  for (let i = from; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'number' && typeof v !== 'bigint') throw new TranslateRefusal(`data.tensor.values holds ${jsonText(v) ?? 'a non-number'} at ${i}: tensor values are numbers`);
  }
}

/** Throw if one of `values` from `from` is a list (a flat `data` is ragged); a list of numbers alone never comes here. */
function noListAmong(values: readonly unknown[], from: number, what: string): void {
  for (let i = from; i < values.length; i++) if (Array.isArray(values[i])) throw new TranslateRefusal(`${what}.data is ragged: a list beside a value`);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Base64 text as MLServer's Base64Codec and Seldon's `binData` hold bytes (standard alphabet, padded). */
export const isBase64 = (s: string): boolean => s.length % 4 === 0 && BASE64.test(s);

/** One v2 output as sent, checked: its elements fill its shape and are of its datatype. */
export interface V2Tensor {
  readonly name: string;
  readonly shape: number[];
  readonly datatype: Datatype;
  readonly values: Element[];
  readonly contentType: string | undefined;
}

/** A v2 input or output object, checked (`data` flat or nested by the shape, as kserve/rest-proxy reads it). */
export function readV2Tensor(t: unknown, what: string): V2Tensor {
  if (!isObj(t)) throw new TranslateRefusal(`${what} must be an object`);
  if (typeof t.name !== 'string') throw new TranslateRefusal(`${what}.name must be a string`);
  if (!isDatatype(t.datatype)) throw new TranslateRefusal(`${what}.datatype must be a v2 datatype, not ${jsonText(t.datatype) ?? 'absent'}`);
  const shape = checkShape(t.shape, `${what}.shape`);
  if (!Array.isArray(t.data)) throw new TranslateRefusal(`${what}.data must be a list`);
  // `at`: a load that saw flat lists and nested ones would box the flat (number-lists.ts).
  const nested = Array.isArray(t.data.at(0));
  let values: Element[];
  if (nested) {
    const flat = flatten(t.data, `${what}.data`);
    // Written nested, the nesting must be the shape (or the shape's all but a leading batch of one).
    if (JSON.stringify(flat.shape) !== JSON.stringify(shape)) throw new TranslateRefusal(`${what}.data is nested as ${JSON.stringify(flat.shape)}, not as its shape ${JSON.stringify(shape)}`);
    values = flat.values;
  } else {
    values = t.data as Element[];
    const from = notNumbersFrom(values);
    if (from >= 0) noListAmong(values, from, what);
  }
  checkCount(values.length, shape, `${what}.data`);
  checkElements(t.datatype, values);
  return { name: t.name, shape, datatype: t.datatype, values, contentType: contentTypeOf(t.parameters, what) };
}

/**
 * A tensor's `content_type`, the one parameter of its own a SeldonMessage's form carries (`strData`, `binData`);
 * any other has no place in one and is refused (docs/protocol-translation.md#meta-and-parameters).
 */
function contentTypeOf(params: unknown, what: string): string | undefined {
  if (params === undefined || params === null) return undefined;
  if (!isObj(params)) throw new TranslateRefusal(`${what}.parameters must be an object`);
  for (const k of Object.keys(params))
    if (k !== 'content_type') throw new TranslateRefusal(`${what}.parameters[${JSON.stringify(k)}] has no place in a SeldonMessage: a tensor's one parameter there is content_type`);
  const ct = params.content_type;
  if (ct !== undefined && typeof ct !== 'string') throw new TranslateRefusal(`${what}.parameters.content_type must be a string`);
  return ct;
}

/** Below this many default names, a list of strings is cheaper than a buffer written by hand. */
const FEW_NAMES = 64;
/** The few default names, each count's list made once and shared (never changed): a small answer's names were a tenth of its writing. */
const FEW_DEFAULT_NAMES: (readonly string[])[] = [];
const defaultNames = (n: number): readonly string[] => (FEW_DEFAULT_NAMES[n] ??= Array.from({ length: n }, (_, i) => `t:${i}`));

/** An answer's names: the annotation's, or a count, the wrapper's default names `t:0…t:n-1` (default-names.ts), written without a string each. */
export type AnswerNames = readonly string[] | number;

/** The `meta` of a translated answer: the request's puid, as the wrapper echoes it, and the answer's tags (keys sorted, as Flask writes them). */
const metaOf = (a: SeldonAnswer): string => metaJson(a.puid, a.tags === undefined ? undefined : sortedParamsJson(a.tags));

/** A Seldon-style error, as the wrapper's: `{"status":{"code":…,"info":…,"status":"FAILURE"}}` (edge/errors.ts `errorBody` is the gateway's own, with its `reason`; translate/ imports no edge/). */
export function seldonError(code: number, info: string): string {
  return JSON.stringify({ status: { code, info, status: 'FAILURE' } });
}

/** The answer Seldon's wrapper would write, as the rules make it (both transports write it). */
export type SeldonAnswer = { readonly puid: string | undefined; /** `meta.tags` (meta-params.ts `v2AnswerTags`). */ readonly tags?: Params | undefined } & (
  | { readonly kind: 'jsonData'; readonly outputs: readonly V2Tensor[] }
  | { readonly kind: 'strData' | 'binData'; /** binData: its base64 text. */ readonly text: string }
  | {
      readonly kind: 'tensor' | 'ndarray';
      readonly names: AnswerNames;
      readonly shape: readonly number[];
      readonly values: readonly Element[];
      /** A float datatype: its whole numbers are floats (`1.0`). */
      readonly float: boolean;
    }
);

/**
 * The model's v2 answer (status and body) → the Seldon client's (same status). An error `{"error": m}`
 * becomes a Seldon-style error; an answer the gateway cannot read is a refusal of status 502.
 */
export function v2AnswerToSeldon(status: number, body: Buffer, form: SeldonForm, names: readonly string[] | null): Buffer {
  if (status < 200 || status >= 300) {
    let info = body.toString('utf8');
    try {
      const e = JSON.parse(info) as unknown;
      if (isObj(e) && typeof e.error === 'string') info = e.error;
    } catch {
      // Not JSON: the body's text is the info.
    }
    return Buffer.from(seldonError(status, info));
  }
  let parsed: { value: unknown };
  try {
    parsed = parseExact(body);
  } catch {
    throw new TranslateRefusal('the model answered with a body that is not JSON', 502);
  }
  const params = isObj(parsed.value) ? parsed.value.parameters : undefined;
  // A parameter's number as the model wrote it (`1.0` is a float), read again only when one holds a number.
  return writeSeldonAnswerJson(v2OutputsToSeldon(parsed.value, form, names, asWritten(body, 'parameters', params, "the model's answer parameters are", 502)));
}

/**
 * The rules of a v2 answer (as JSON holds it; gRPC's reader gives the same form) → the wrapper's answer; what
 * cannot be read is a refusal of status 502. `params`: the answer's parameters (`ans.parameters`, or as
 * `asWritten` read them).
 */
export function v2OutputsToSeldon(ans: unknown, form: SeldonForm, names: readonly string[] | null, params: unknown = isObj(ans) ? ans.parameters : undefined): SeldonAnswer {
  if (!isObj(ans) || !Array.isArray(ans.outputs) || ans.outputs.length === 0) throw new TranslateRefusal('the model answered without outputs', 502);
  let outputs: V2Tensor[];
  try {
    outputs = ans.outputs.map((o, i) => readV2Tensor(o, `outputs[${i}]`));
  } catch (err) {
    throw new TranslateRefusal(`the model's answer cannot be translated: ${(err as Error).message}`, 502);
  }
  const puid = form.puid;
  const tags = v2AnswerTags(form.tags, params);
  // Several outputs and one SeldonMessage: each output by its name, nested by its shape.
  if (outputs.length > 1) return { kind: 'jsonData', puid, tags, outputs };
  const o = outputs[0]!;
  if ((form.kind === 'strData' || form.kind === 'binData') && o.datatype === 'BYTES' && o.values.length === 1) {
    const s = o.values[0] as string;
    if (form.kind === 'strData') return { kind: 'strData', puid, tags, text: s };
    return { kind: 'binData', puid, tags, text: o.contentType === 'base64' ? s : Buffer.from(s, 'utf8').toString('base64') };
  }
  // Numbers answer a tensor with a tensor; booleans and strings are an ndarray (numpy: not np.number).
  const kind = form.kind === 'tensor' && isNumeric(o.datatype) ? 'tensor' : 'ndarray';
  const count = defaultNameCount(o.shape);
  // An empty answer's shape may name more columns than it has elements ([0, 1e9]): never that many names.
  if (names === null && count > Math.max(o.values.length, MAX_EMPTY_LISTS))
    throw new TranslateRefusal(`the shape ${JSON.stringify(o.shape)} of ${o.values.length} elements would carry ${count} names`, 502);
  // The annotation's names stand for the model's class names, which the wrapper gives only an answer of rank 2 or more (`client_class_names`).
  return { kind, puid, tags, names: names !== null && o.shape.length >= 2 ? names : count, shape: o.shape, values: o.values, float: isFloat(o.datatype) };
}

/** The wrapper's answer as its JSON, keys sorted as Flask writes them. */
export function writeSeldonAnswerJson(a: SeldonAnswer): Buffer {
  const meta = metaOf(a);
  if (a.kind === 'jsonData') {
    const out = new JsonOut().add('{"jsonData":{');
    a.outputs.forEach((o, i) => {
      out.add(`${i > 0 ? ',' : ''}${JSON.stringify(o.name)}:`);
      writeNestedInto(out, o.values, o.shape, isFloat(o.datatype));
    });
    return out.add(`},"meta":${meta}}`).finish();
  }
  if ('text' in a) return Buffer.from(a.kind === 'strData' ? `{"meta":${meta},"strData":${JSON.stringify(a.text)}}` : `{"binData":${JSON.stringify(a.text)},"meta":${meta}}`);
  const small = a.kind === 'tensor' ? smallTensorDoc(a.values, null, a.float) : smallTensorDoc(a.values, a.shape, a.float);
  if (small !== undefined && (typeof a.names !== 'number' || a.names < FEW_NAMES)) {
    const names = typeof a.names === 'number' ? defaultNames(a.names) : a.names;
    const data = a.kind === 'tensor' ? { names, tensor: { shape: a.shape, values: small } } : { names, ndarray: small };
    return Buffer.from(`{"data":${JSON.stringify(data)},"meta":${meta}}`);
  }
  const out = new JsonOut().add('{"data":{"names":');
  if (typeof a.names !== 'number') out.add(JSON.stringify(a.names));
  else if (a.names < FEW_NAMES) out.add(JSON.stringify(defaultNames(a.names)));
  else out.addBytes(writeDefaultNames(a.names, true));
  // A float output's whole numbers are written `1.0`, as the wrapper (Python) writes them: `1` would reach the client as an integer.
  if (a.kind === 'tensor') {
    writeFlatInto(out.add(`,"tensor":{"shape":${JSON.stringify(a.shape)},"values":`), a.values, a.float);
    return out.add(`}},"meta":${meta}}`).finish();
  }
  writeNestedInto(out.add(',"ndarray":'), a.values, a.shape, a.float);
  return out.add(`},"meta":${meta}}`).finish();
}
