/**
 * `seldon.io/gateway-compression` (docs/edge.md#compression) and the values the flags share with
 * it: a deployment's compression over the gateway's (--compress and its companions), field by
 * field. Pure: read at compile time into the frozen `CompressionPolicy` of the deployment's REST
 * backends (routing/compression/policy.ts; null: nothing compressed or decoded, the common case).
 *
 * Fields (YAML or JSON, each optional; `off` or `none`: nothing compressed or decoded):
 * `algorithms` (a list of zstd, br, gzip, in the deployment's order of preference: an annotation
 * with it compresses without --compress), `level` (a map `{gzip: 9, br: 5}`), `minLength`,
 * `types` (media types, replacing the list), `decodeRequests` (true/false). A bad value degrades
 * the deployment: it is served as without the annotation (the gateway's settings), and the compile
 * says why.
 */
import { CODINGS, LEVEL_RANGE, compressionPolicy, type Coding, type CompressionPolicy, type CompressionSettings } from './policy.js';
import { isObj, parseFieldsDocument, type Parsed } from '../values/syntax.js';
import { readWholeNumber } from '../values/whole-number.js';
import { readList } from '../values/list.js';

export const COMPRESSION_ANNOTATION = 'seldon.io/gateway-compression';

const FIELDS = ['algorithms', 'level', 'minLength', 'types', 'decodeRequests'] as const;
const MEDIA_TYPE = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i;
const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

/** A list of codings (`zstd,br,gzip`), each once; an error names the bad one. */
export function parseAlgorithms(list: readonly unknown[]): Parsed<Coding[]> {
  const out: Coding[] = [];
  for (const a of list) {
    const name = typeof a === 'string' ? a.trim().toLowerCase() : a;
    if (!CODINGS.includes(name as Coding)) return { ok: false, error: `${show(a)} is not one of ${CODINGS.join(', ')}` };
    if (!out.includes(name as Coding)) out.push(name as Coding);
  }
  return { ok: true, value: out };
}

/** Levels per coding: `gzip=6,br=4` (the flag's form) or a mapping (the annotation's); each within its coding's range. */
export function parseLevels(v: unknown): Parsed<Partial<Record<Coding, number>>> {
  let entries: [string, unknown][];
  if (typeof v === 'string') {
    entries = [];
    const parts = readList(v);
    for (const part of parts.ok ? parts.value : []) {
      const eq = part.indexOf('=');
      if (eq < 0) return { ok: false, error: `"${part.trim()}" is not <coding>=<level>` };
      const text = part.slice(eq + 1).trim();
      entries.push([part.slice(0, eq), /^[0-9]+$/.test(text) ? Number(text) : text]);
    }
  } else if (isObj(v)) entries = Object.entries(v);
  else return { ok: false, error: `${show(v)} is not a map of levels like {gzip: 6, br: 4}` };
  const out: Partial<Record<Coding, number>> = {};
  for (const [k, n] of entries) {
    const coding = k.trim().toLowerCase() as Coding;
    if (!CODINGS.includes(coding)) return { ok: false, error: `${show(k)} is not one of ${CODINGS.join(', ')}` };
    const [lo, hi] = LEVEL_RANGE[coding];
    const w = readWholeNumber(n, { min: lo, max: hi });
    if (!w.ok) return { ok: false, error: `${coding}'s level must be a whole number from ${lo} to ${hi}, not ${show(n)}` };
    out[coding] = w.value;
  }
  return { ok: true, value: out };
}

/** Media types (`type/subtype`, lower case, no parameters), at least one. */
export function parseTypes(list: readonly unknown[]): Parsed<string[]> {
  if (list.length === 0) return { ok: false, error: 'the list of media types is empty' };
  const out: string[] = [];
  for (const t of list) {
    if (typeof t !== 'string' || !MEDIA_TYPE.test(t.trim())) return { ok: false, error: `${show(t)} is not a media type like application/json` };
    out.push(t.trim().toLowerCase());
  }
  return { ok: true, value: out };
}

/** One annotation value (YAML or JSON) → the settings it sets, or `off`. */
export function parseCompressionFields(raw: string): Parsed<CompressionSettings | 'off'> {
  const fail = (error: string): Parsed<CompressionSettings | 'off'> => ({ ok: false, error: `${COMPRESSION_ANNOTATION}: ${error}` });
  const text = raw.trim();
  if (text === 'off' || text === 'none') return { ok: true, value: 'off' };
  const parsed = parseFieldsDocument(text, FIELDS);
  if (!parsed.ok) return fail(parsed.error);
  const doc = parsed.value;
  const out: CompressionSettings = {};
  if (doc.algorithms !== undefined && doc.algorithms !== null) {
    const list = readList(doc.algorithms);
    if (!list.ok) return fail(`algorithms: ${show(doc.algorithms)} is not a list`);
    const a = parseAlgorithms(list.value);
    if (!a.ok) return fail(`algorithms: ${a.error}`);
    out.algorithms = a.value;
  }
  if (doc.level !== undefined && doc.level !== null) {
    const l = parseLevels(doc.level);
    if (!l.ok) return fail(`level: ${l.error}`);
    out.levels = l.value as Record<Coding, number>;
  }
  if (doc.minLength !== undefined && doc.minLength !== null) {
    const m = doc.minLength;
    const w = readWholeNumber(m);
    if (!w.ok) return fail(`minLength must be a whole number of bytes, not ${show(m)}`);
    out.minLength = w.value;
  }
  if (doc.types !== undefined && doc.types !== null) {
    const list = readList(doc.types);
    const t = list.ok ? parseTypes(list.value) : { ok: false as const, error: `${show(doc.types)} is not a list` };
    if (!t.ok) return fail(`types: ${t.error}`);
    out.types = t.value;
  }
  if (doc.decodeRequests !== undefined && doc.decodeRequests !== null) {
    if (typeof doc.decodeRequests !== 'boolean') return fail(`decodeRequests must be true or false, not ${show(doc.decodeRequests)}`);
    out.decodeRequests = doc.decodeRequests;
  }
  return { ok: true, value: out };
}

/**
 * A deployment's policy: its annotation `raw` (absent: undefined) over the gateway's settings
 * `global`, field by field (levels coding by coding). A bad value: the gateway's settings, and a
 * warning saying why.
 */
export function compressionAnnotation(raw: string | undefined, global: CompressionSettings | undefined): { policy: CompressionPolicy | null; warning?: string } {
  const base = global ?? {};
  if (raw === undefined) return { policy: compressionPolicy(base) };
  const p = parseCompressionFields(raw);
  if (!p.ok) return { policy: compressionPolicy(base), warning: `${p.error}: served with the gateway's compression settings` };
  if (p.value === 'off') return { policy: null };
  const own = p.value;
  return { policy: compressionPolicy({ ...base, ...own, levels: { ...base.levels, ...own.levels } as Record<Coding, number> }) };
}
