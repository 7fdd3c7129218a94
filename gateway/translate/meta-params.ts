/**
 * A SeldonMessage's `meta` ⇄ the Open Inference Protocol's `parameters`, on the messages as JSON holds
 * them (docs/protocol-translation.md#meta-and-parameters). `meta.tags` and a v2 message's parameters are
 * both free maps a model reads and writes: each goes into the other, key by key, value as it is. What
 * has no place on the other side is refused, never dropped: a tag a v2 server would read as its own
 * parameter (`content_type`, `headers`: MLServer's `Parameters`), and a request's `routing`, `requestPath` and
 * `metrics` (what Seldon's executor and wrapper write into answers; a v2 request has no field for them). A Seldon answer's
 * `requestPath`, `routing` and `metrics` go into the v2 answer's parameters under their own names. Maps are
 * `Map`s: a key `__proto__` is a key like any other. Over REST, numbers are kept as their source text
 * (json-exact.ts `exactMember`: `1.0` stays a float) where a map holds one (`asWritten`). Pure.
 */
import { isObj } from '../../routing/values/syntax.js';
import { TranslateRefusal } from './datatypes.js';
import { exactMember, isRawJSON, writeExact } from './json-exact.js';

/** A parameter map or `meta.tags`, in order, own keys only. */
export type Params = ReadonlyMap<string, unknown>;

/** The v2 parameters MLServer reads as its own (`Parameters.content_type`, `headers`, which it overwrites with the HTTP headers). */
const RESERVED = new Set(['content_type', 'headers']);
/** What Seldon's executor and wrapper write into an answer's `meta` beside the model's tags. */
export const ANSWER_META = ['requestPath', 'routing', 'metrics'] as const;
const META_FIELDS = new Set<string>(['puid', 'tags', ...ANSWER_META]);

/** Deepest nesting of lists and objects in a tag or parameter (gRPC's reader reads a Value as deep: seldon-proto.ts MAX_VALUE_DEPTH). */
export const MAX_META_DEPTH = 64;

/** Whether `v` nests more than `limit` lists and objects (walked no deeper than that). */
function tooDeep(v: unknown, limit: number, depth = 0): boolean {
  if (typeof v !== 'object' || v === null || isRawJSON(v)) return false;
  if (depth >= limit) return true;
  for (const x of Array.isArray(v) ? v : Object.values(v)) if (tooDeep(x, limit, depth + 1)) return true;
  return false;
}

/** Throw unless `v` nests at most MAX_META_DEPTH lists and objects (`JSON.stringify` of 10,000 levels overflows the stack). */
function checkDepth(v: unknown, what: string, status: number): void {
  if (tooDeep(v, MAX_META_DEPTH)) throw new TranslateRefusal(`${what} nests lists and objects deeper than ${MAX_META_DEPTH} levels`, status);
}

/** The own entries of the map `v`, each value checked for depth (absent, null or empty: none, nothing made). */
function mapOf(v: unknown, what: string, status: number): Map<string, unknown> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw new TranslateRefusal(`${what} must be an object`, status);
  const keys = Object.keys(v);
  if (keys.length === 0) return undefined;
  const out = new Map<string, unknown>();
  for (const k of keys) {
    checkDepth(v[k], `${what}[${JSON.stringify(k)}]`, status);
    out.set(k, v[k]);
  }
  return out;
}

/**
 * Whether a map read by JSON.parse holds a number, whose source text only `exactMember` keeps (`1.0` is a float;
 * JSON.parse makes it 1); one nested deeper than MAX_META_DEPTH says yes, and the exact read refuses it.
 */
function needsSource(v: unknown, depth = 0): boolean {
  if (typeof v === 'number') return true;
  if (typeof v !== 'object' || v === null) return false;
  if (depth > MAX_META_DEPTH) return true;
  for (const x of Array.isArray(v) ? v : Object.values(v)) if (needsSource(x, depth + 1)) return true;
  return false;
}

/**
 * The member `key` of `body` as JSON.parse read it (`parsed`), or, when `probe` (the part of it carried: by
 * default all of it) holds a number, the member read again with its numbers as written (json-exact.ts
 * `exactMember`: `1.0` stays a float). One too deep to read so is refused (`status`, `what` saying what) before
 * the reviver's walk, which recurses on the stack: deeper than the member, a map in it and one level beyond a
 * tag's own bound (mapOf says that one).
 */
export function asWritten(body: Buffer, key: string, parsed: unknown, what: string, status: number, probe: unknown = parsed): unknown {
  if (!needsSource(probe)) return parsed;
  if (tooDeep(parsed, MAX_META_DEPTH + 3)) throw new TranslateRefusal(`${what} nested too deeply to be written back`, status);
  try {
    return exactMember(body, key);
  } catch {
    throw new TranslateRefusal(`${what} nested too deeply to be written back`, status);
  }
}

/** A SeldonMessage's `meta` JSON: its puid, then its tags' JSON (`tags`) when it has some. */
export function metaJson(puid: string | undefined, tags: string | undefined): string {
  const p = puid === undefined ? '' : `"puid":${JSON.stringify(puid)}`;
  return tags === undefined ? `{${p}}` : `{${p}${p === '' ? '' : ','}"tags":${tags}}`;
}

/** Nothing to carry: absent, null, `{}` or `[]` (protobuf cannot tell an empty map or list from none). */
const isEmpty = (v: unknown): boolean => v === undefined || v === null || (Array.isArray(v) ? v.length === 0 : isObj(v) && Object.keys(v).length === 0);

const orNone = (m: Map<string, unknown> | undefined): Params | undefined => (m === undefined || m.size === 0 ? undefined : m);

/**
 * A Seldon client's request `meta` → its puid (the v2 `id`) and its tags (the v2 request's parameters).
 * Refused (400): a field a SeldonMessage's meta has not; a non-empty `routing`, `requestPath` or `metrics`
 * (Seldon's executor never reads them from a prediction, its wrapper echoes the last two into its answer
 * and writes `routing` only there: a v2 model has nowhere to read them); a tag named as a parameter the
 * v2 server reads as its own.
 */
export function seldonRequestMeta(meta: unknown): { puid: string | undefined; tags: Params | undefined } {
  if (meta === undefined || meta === null) return { puid: undefined, tags: undefined };
  if (!isObj(meta)) throw new TranslateRefusal('meta must be an object');
  for (const k of Object.keys(meta)) {
    if (!META_FIELDS.has(k)) throw new TranslateRefusal(`meta.${k} is not a field of a SeldonMessage's meta`);
    if ((ANSWER_META as readonly string[]).includes(k) && !isEmpty(meta[k]))
      throw new TranslateRefusal(`meta.${k} is written by Seldon's executor into answers, and a v2 request has no field for it: send the request without it`);
  }
  if (meta.puid !== undefined && typeof meta.puid !== 'string') throw new TranslateRefusal('meta.puid must be a string');
  const tags = mapOf(meta.tags, 'meta.tags', 400);
  for (const k of tags?.keys() ?? []) if (RESERVED.has(k)) throw new TranslateRefusal(`meta.tags[${JSON.stringify(k)}] would be read by the v2 server as its own parameter ${k}: rename the tag`);
  return { puid: meta.puid === '' ? undefined : meta.puid, tags };
}

/** A v2 client's request `parameters` → the Seldon request's `meta.tags`: every one but `content_type` (the request's codec, which the translation is). */
export function v2RequestTags(params: unknown): Params | undefined {
  const m = mapOf(params, 'parameters', 400);
  m?.delete('content_type');
  return orNone(m);
}

/**
 * The tags of the Seldon answer to a v2 model's answer: the request's, then the answer's parameters but
 * `content_type` (its codec's), each replacing a tag of its name, as the wrapper's `construct_response`
 * merges the request's tags with the model's. An answer's parameters that are not a map: 502.
 */
export function v2AnswerTags(requestTags: Params | undefined, params: unknown): Params | undefined {
  const own = mapOf(params, "the model's answer parameters", 502);
  if (own === undefined) return requestTags;
  const m = new Map(requestTags ?? []);
  for (const [k, v] of own) if (k !== 'content_type') m.set(k, v);
  return orNone(m);
}

/** The v2 answer's parameters from a Seldon answer's `meta`: its tags, then its `requestPath`, `routing`, `metrics` (non-empty). */
export interface SeldonAnswerParams {
  readonly tags: Params | undefined;
  /** Seldon's own fields, each under its name (gRPC: as their JSON text; an InferParameter holds no map or list). */
  readonly fields: Params | undefined;
}

/** An answer whose meta carries nothing but its puid (the common one): shared, nothing made. */
export const NO_PARAMS: SeldonAnswerParams = { tags: undefined, fields: undefined };

/**
 * A Seldon model's answer `meta` → the v2 answer's parameters. Refused (502): a meta or tags that are not
 * maps, a field a SeldonMessage's meta has not, a tag named as a parameter a v2 client reads as the
 * server's own, a tag named as a non-empty field of Seldon's beside it.
 */
export function seldonAnswerParams(meta: unknown): SeldonAnswerParams {
  if (meta === undefined || meta === null) return NO_PARAMS;
  if (!isObj(meta)) throw new TranslateRefusal("the model's answer meta is not an object", 502);
  let fields: Map<string, unknown> | undefined;
  for (const k of Object.keys(meta)) {
    if (!META_FIELDS.has(k)) throw new TranslateRefusal(`the model's answer meta.${k} is not a field of a SeldonMessage's meta`, 502);
    if (k !== 'puid' && k !== 'tags' && !isEmpty(meta[k])) {
      checkDepth(meta[k], `the model's answer meta.${k}`, 502);
      (fields ??= new Map()).set(k, meta[k]);
    }
  }
  const tags = mapOf(meta.tags, "the model's answer meta.tags", 502);
  for (const k of tags?.keys() ?? []) {
    if (RESERVED.has(k)) throw new TranslateRefusal(`the model's answer meta.tags[${JSON.stringify(k)}] would be read by a v2 client as the server's parameter ${k}`, 502);
    if (fields?.has(k) === true) throw new TranslateRefusal(`the model's answer has both meta.${k} and a tag named ${k}: a v2 answer has one parameter of that name`, 502);
  }
  // In the order the answer's `parameters` are written: its tags, then Seldon's fields.
  return tags === undefined && fields === undefined ? NO_PARAMS : { tags, fields };
}

/** Both of a Seldon answer's parameter maps in the order written, tags first. */
export const allParams = (p: SeldonAnswerParams): Params | undefined => (p.fields === undefined ? p.tags : p.tags === undefined ? p.fields : new Map([...p.tags, ...p.fields]));

/** `params` as a JSON object, in order, long integers as their digits. */
export function paramsJson(params: Params): string {
  let out = '{';
  for (const [k, v] of params) out += `${out.length > 1 ? ',' : ''}${JSON.stringify(k)}:${writeExact(v)}`;
  return `${out}}`;
}

/** Python's order of strings (code points), which `json.dumps(sort_keys=True)` sorts by; JavaScript's `<` compares UTF-16 units. */
function byCodePoint(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < x.length && i < y.length; i++) if (x[i] !== y[i]) return x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
  return x.length - y.length;
}

/** `v` as JSON with every object's keys sorted, as Flask writes the wrapper's answer (depth checked when read). */
export function sortedJson(v: unknown): string {
  if (typeof v !== 'object' || v === null || isRawJSON(v)) return writeExact(v);
  if (Array.isArray(v)) return `[${v.map(sortedJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort(byCodePoint)
    .map((k) => `${JSON.stringify(k)}:${sortedJson(o[k])}`)
    .join(',')}}`;
}

/** `tags` as the wrapper's answer writes them (Flask): keys sorted, nested ones too. */
export const sortedParamsJson = (tags: Params): string =>
  `{${[...tags.keys()]
    .sort(byCodePoint)
    .map((k) => `${JSON.stringify(k)}:${sortedJson(tags.get(k))}`)
    .join(',')}}`;
