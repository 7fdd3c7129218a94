/**
 * What Seldon's wrapper echoes of a request's `meta` in its answer (seldon_core/utils.py
 * `construct_response_json` and `construct_response`): `tags`, `metrics` and `requestPath`, each when
 * not empty. A Seldon client's prediction translated for a v2 model gets them back as the wrapper
 * would have given them: over REST as the client wrote them (numbers as their source text, keys sorted
 * as Flask sorts them), over gRPC as the fields it sent (tags 2, requestPath 4, metrics 5 of `Meta`).
 */
import { isObj } from '../../routing/values/syntax.js';
import { ProtoWriter } from '../wire/protobuf.js';
import { TranslateRefusal } from './datatypes.js';
import { isRawJSON, memberText, rawJSON } from './json-exact.js';

/** The echoed members: JSON texts by name (REST), or `Meta`'s encoded fields (gRPC). */
export type MetaEcho = { readonly json: EchoJson } | { readonly proto: Buffer };

interface EchoJson {
  readonly metrics: string | undefined;
  readonly requestPath: string | undefined;
  readonly tags: string | undefined;
}

/** Every number as its source text: `1.0` stays `1.0`, 9007199254740993 stays itself. */
const sourceNumbers = (_key: string, v: unknown, context?: { source?: string }): unknown => (typeof v === 'number' && context?.source !== undefined ? rawJSON(context.source) : v);
/** Objects with their keys sorted (Flask's `sort_keys`); own properties only, so `__proto__` is a key like any. */
const sortedKeys = (_key: string, v: unknown): unknown => {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || isRawJSON(v)) return v;
  const o = v as Record<string, unknown>;
  return Object.fromEntries(
    Object.keys(o)
      .sort()
      .map((k) => [k, o[k]]),
  );
};

/**
 * The echo of a REST SeldonMessage's `meta` (`body`, already parsed whole as `msg`): undefined when it
 * holds none of the three. A member of another type than the wrapper's (`tags` and `requestPath` maps,
 * `metrics` a list) is refused, as the wrapper's own parse refuses it.
 */
export function restMetaEcho(body: Buffer, msg: unknown): MetaEcho | undefined {
  const meta = isObj(msg) ? msg.meta : undefined;
  if (!isObj(meta) || (meta.tags === undefined && meta.metrics === undefined && meta.requestPath === undefined)) return undefined;
  const text = memberText(body, 'meta');
  if (text === undefined) return undefined;
  let exact: Record<string, unknown>;
  try {
    exact = JSON.parse(text, sourceNumbers) as Record<string, unknown>;
  } catch {
    // A reviver walks as deep as the text nests, on the stack: JSON.parse alone read it, this cannot.
    throw new TranslateRefusal('meta is nested too deeply to be written back');
  }
  const member = (name: 'tags' | 'metrics' | 'requestPath', list: boolean): string | undefined => {
    const v = exact[name];
    if (v === undefined || v === null) return undefined;
    if (list ? !Array.isArray(v) : !isObj(v)) throw new TranslateRefusal(`meta.${name} must be ${list ? 'a list' : 'a map'}`);
    if (list ? (v as unknown[]).length === 0 : Object.keys(v).length === 0) return undefined;
    try {
      return JSON.stringify(v, sortedKeys);
    } catch {
      // Nested deeper than a stack: JSON.parse reads it, JSON.stringify cannot write it.
      throw new TranslateRefusal(`meta.${name} is nested too deeply to be written back`);
    }
  };
  const json = { metrics: member('metrics', true), requestPath: member('requestPath', false), tags: member('tags', false) };
  return json.metrics === undefined && json.requestPath === undefined && json.tags === undefined ? undefined : { json };
}

/** `Meta`'s field numbers the wrapper echoes: tags, requestPath, metrics. */
export const ECHOED_META_FIELDS: readonly number[] = [2, 4, 5];

/** A gRPC `Meta`'s echoed fields (`fields`: field number and payload, in the order read), written in field order. */
export function protoMetaEcho(fields: readonly { field: number; payload: Buffer }[]): MetaEcho | undefined {
  if (fields.length === 0) return undefined;
  const w = new ProtoWriter();
  for (const n of ECHOED_META_FIELDS) for (const f of fields) if (f.field === n) w.bytes(n, f.payload);
  return { proto: w.finish() };
}

/** The answer's `meta` JSON, keys sorted: metrics, puid, requestPath, tags. */
export function metaJson(puid: string | undefined, echo: MetaEcho | undefined): string {
  const json = echo !== undefined && 'json' in echo ? echo.json : undefined;
  if (json === undefined) return puid === undefined ? '{}' : `{"puid":${JSON.stringify(puid)}}`;
  const parts: string[] = [];
  if (json.metrics !== undefined) parts.push(`"metrics":${json.metrics}`);
  if (puid !== undefined) parts.push(`"puid":${JSON.stringify(puid)}`);
  if (json.requestPath !== undefined) parts.push(`"requestPath":${json.requestPath}`);
  if (json.tags !== undefined) parts.push(`"tags":${json.tags}`);
  return `{${parts.join(',')}}`;
}

/** The answer's `Meta` message: the puid, then the echoed fields. */
export function metaMessage(puid: string | undefined, echo: MetaEcho | undefined): ProtoWriter {
  const w = puid === undefined ? new ProtoWriter() : new ProtoWriter().string(1, puid);
  return echo !== undefined && 'proto' in echo ? w.fields(echo.proto) : w;
}
