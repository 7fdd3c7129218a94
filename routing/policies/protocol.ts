/**
 * `seldon.io/gateway-protocol` (docs/protocol-translation.md): the protocol a predictor's model
 * speaks and the client protocols the gateway translates for it. Pure: read at compile time into a
 * frozen `TranslatePolicy` on each predictor's backends (null: no annotation, nothing translated,
 * the common case, which the request path tests with one property check).
 *
 * Fields (YAML or JSON, each optional):
 * - `speaks`: `seldon` or `v2`, the protocol of the predictor's model; default the deployment's
 *   `spec.protocol` (`v2` and `kfserving` mean v2, `seldon` or none Seldon's; `tensorflow` needs it said);
 * - `accept`: the client protocols served besides the model's own (`seldon`, `v2`); default both;
 * - `modelName`: the model's v2 name; default the predictor graph's root node name, as Seldon Core
 *   names MLServer models;
 * - `datatype`: the v2 datatype of a translated input; default the model's metadata, else by the values;
 * - `names`: the names a Seldon client's answer carries; default the wrapper's (`t:0…` for rank 2 or more).
 *
 * A deployment's annotation applies to each predictor; a predictor's own overrides it field by field.
 * A bad value degrades the deployment: the predictors it covers are served untranslated.
 */
import { parseFieldsDocument, predictorOverrides, type Parsed, type PredictorOverrides } from '../values/syntax.js';
import { readList } from '../values/list.js';

export const PROTOCOL_ANNOTATION = 'seldon.io/gateway-protocol';

/** The Open Inference Protocol's datatypes (gateway/translate/datatypes.ts checks elements against them). */
export const V2_DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'BF16', 'FP32', 'FP64', 'BYTES'] as const;
export type V2Datatype = (typeof V2_DATATYPES)[number];

export type WireProtocol = 'seldon' | 'v2';

/** A predictor's translation, compiled once. */
export interface TranslatePolicy {
  readonly speaks: WireProtocol;
  /** Client protocols translated for it (never its own). */
  readonly accept: readonly WireProtocol[];
  readonly modelName: string;
  /** The model version a Seldon client's translated request asks (`/v2/models/<m>/versions/<v>/infer`, gRPC `model_version`), its metadata read from that version's; null: none named. */
  readonly modelVersion: string | null;
  readonly datatype: V2Datatype | null;
  readonly names: readonly string[] | null;
  /** As /routes shows it: `speaks v2 (model iris), accepts seldon`. */
  readonly text: string;
}

const FIELDS = ['speaks', 'accept', 'modelName', 'modelVersion', 'datatype', 'names'] as const;
const PROTOCOLS: readonly WireProtocol[] = ['seldon', 'v2'];
/** A v2 model name goes into a path segment: what MLServer and Triton names are made of. */
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/;
/** Whether `s`, a path segment as sent (not decoded), is a v2 model name or version: never `.`, `..`, an encoded byte or a separator. */
export const isModelSegment = (s: string): boolean => MODEL_NAME.test(s);
const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

export interface ProtocolFields {
  speaks?: WireProtocol;
  accept?: readonly WireProtocol[];
  modelName?: string;
  modelVersion?: string;
  datatype?: V2Datatype;
  names?: readonly string[];
}

/** One annotation value (YAML or JSON) → the fields it sets. */
export function parseProtocolFields(raw: string): Parsed<ProtocolFields> {
  const fail = (error: string): Parsed<ProtocolFields> => ({ ok: false, error: `${PROTOCOL_ANNOTATION}: ${error}` });
  const parsed = parseFieldsDocument(raw, FIELDS);
  if (!parsed.ok) return fail(parsed.error);
  const doc = parsed.value;
  const out: ProtocolFields = {};
  if (doc.speaks !== undefined) {
    if (!PROTOCOLS.includes(doc.speaks as WireProtocol)) return fail(`speaks must be seldon or v2, not ${show(doc.speaks)}`);
    out.speaks = doc.speaks as WireProtocol;
  }
  if (doc.accept !== undefined) {
    const list = readList(doc.accept);
    if (!list.ok || list.value.some((p) => !PROTOCOLS.includes(p as WireProtocol))) return fail(`accept must list seldon and/or v2, not ${show(doc.accept)}`);
    out.accept = PROTOCOLS.filter((p) => list.value.includes(p));
  }
  if (doc.modelName !== undefined) {
    if (typeof doc.modelName !== 'string' || !MODEL_NAME.test(doc.modelName)) return fail(`modelName must be a model name (letters, digits, ".", "_", "-"), not ${show(doc.modelName)}`);
    out.modelName = doc.modelName;
  }
  if (doc.modelVersion !== undefined) {
    // Triton's versions are numbers (YAML reads `modelVersion: 2` as one), MLServer's any name: a path segment either way.
    const v = typeof doc.modelVersion === 'number' && Number.isSafeInteger(doc.modelVersion) && doc.modelVersion >= 0 ? String(doc.modelVersion) : doc.modelVersion;
    if (typeof v !== 'string' || !MODEL_NAME.test(v)) return fail(`modelVersion must be a version (letters, digits, ".", "_", "-"), not ${show(doc.modelVersion)}`);
    out.modelVersion = v;
  }
  if (doc.datatype !== undefined) {
    if (!(V2_DATATYPES as readonly unknown[]).includes(doc.datatype)) return fail(`datatype must be one of ${V2_DATATYPES.join(', ')}, not ${show(doc.datatype)}`);
    out.datatype = doc.datatype as V2Datatype;
  }
  if (doc.names !== undefined) {
    if (!Array.isArray(doc.names) || doc.names.some((n) => typeof n !== 'string')) return fail(`names must be a list of strings, not ${show(doc.names)}`);
    out.names = Object.freeze([...(doc.names as string[])]);
  }
  return { ok: true, value: out };
}

/** A deployment's protocol annotation, read once: each predictor's fields, its own over the deployment's. */
export interface ProtocolAnnotations {
  readonly warnings: readonly string[];
  /** Predictor `predictor`'s policy (`graphName`: its graph's root node name); null: untranslated. */
  of(predictor: string, own: unknown, graphName: string, warn: (msg: string) => void): TranslatePolicy | null;
}

/** `seldon.io/gateway-protocol` of a deployment (`raw`; absent: undefined) whose `spec.protocol` is `protocol`. */
export function protocolAnnotations(raw: string | undefined, protocol: unknown): ProtocolAnnotations {
  const fields: PredictorOverrides<ProtocolFields> = predictorOverrides(PROTOCOL_ANNOTATION, raw, parseProtocolFields, (f) => f, 'served untranslated');
  const spec = typeof protocol === 'string' && protocol !== '' ? protocol : 'seldon';
  const specSpeaks: WireProtocol | null = spec === 'seldon' ? 'seldon' : spec === 'v2' || spec === 'kfserving' ? 'v2' : null;
  return {
    warnings: fields.warnings,
    of(predictor, own, graphName, warn) {
      // Nothing said, on the deployment or the predictor: nothing changes.
      if (raw === undefined && own === undefined) return null;
      const f = fields.of(predictor, own, warn);
      if (f === null) return null;
      const speaks = f.speaks ?? specSpeaks;
      if (speaks === null) {
        warn(`predictor "${predictor}": ${PROTOCOL_ANNOTATION}: spec.protocol ${show(spec)} is neither seldon nor v2, so speaks must be said: served untranslated`);
        return null;
      }
      const accept = (f.accept ?? PROTOCOLS).filter((p) => p !== speaks);
      if (accept.length === 0) return null;
      const modelName = f.modelName ?? graphName;
      if (!MODEL_NAME.test(modelName)) {
        warn(`predictor "${predictor}": ${PROTOCOL_ANNOTATION}: the graph's name ${show(modelName)} is not a model name; set modelName: served untranslated`);
        return null;
      }
      const modelVersion = f.modelVersion ?? null;
      const datatype = f.datatype ?? null;
      const names = f.names ?? null;
      const text = `speaks ${speaks} (model ${modelName}${modelVersion === null ? '' : ` version ${modelVersion}`}), accepts ${accept.join(',')}${datatype === null ? '' : `, datatype ${datatype}`}${names === null ? '' : `, names ${names.join(',')}`}`;
      return Object.freeze({ speaks, accept: Object.freeze(accept), modelName, modelVersion, datatype, names, text });
    },
  };
}
