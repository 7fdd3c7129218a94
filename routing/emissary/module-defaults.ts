/**
 * The ambassador Module's `defaults` (Emissary's irresource.py `lookup_default`, irhttpmapping.py): the
 * values a Mapping takes for the keys it does not set itself. Emissary looks such a key up in
 * `defaults.httpmapping.<key>`, else `defaults.<key>`, for the Mapping keys it defaults:
 * add_request_headers, add_response_headers, remove_request_headers, remove_response_headers and
 * stats_name. A Mapping that sets the key keeps its own (even `{}` or `[]`).
 *
 * Read here once, with the Mapping's own parser (a bad value refuses the Module, never a Mapping);
 * any other key under `defaults` refuses the Module with its reason. `stats_name` names Envoy's
 * statistics: accepted and, as a Mapping's own, changes nothing here.
 */
import { isObj, RegexBudget } from '../values/syntax.js';
import { isDrop, parseMappingPolicy, type MappingDefaults, type MappingPolicy } from './mapping-policy.js';

/** The Mapping keys Emissary defaults from the Module (IRHTTPMapping.AllowedKeys marked True, and the two header additions). */
export const DEFAULTED_KEYS = ['add_request_headers', 'remove_request_headers', 'add_response_headers', 'remove_response_headers', 'stats_name'] as const;
/** The defaulted keys that change what a model or client receives (the header edits). */
const APPLIED_KEYS = ['add_request_headers', 'remove_request_headers', 'add_response_headers', 'remove_response_headers'] as const satisfies readonly (keyof MappingDefaults)[];
type AppliedKey = (typeof APPLIED_KEYS)[number];
export type { MappingDefaults };

/** The lookup class of an HTTP Mapping (irhttpmapping.py `default_class`). */
const CLASS = 'httpmapping';

const show = (v: unknown): string => JSON.stringify(v) ?? String(v);
const isDefaulted = (k: string): boolean => (DEFAULTED_KEYS as readonly string[]).includes(k);

/** `defaults` → the values Mappings take, and what they do (the Module's report line); or why it refuses the Module. */
export function readModuleDefaults(v: unknown): { readonly defaults: MappingDefaults; readonly why: string } | string {
  if (!isObj(v)) return `${show(v)} is not a map (of ${CLASS}: {key: value} and key: value)`;
  for (const [k, val] of Object.entries(v)) {
    if (k === CLASS) {
      if (!isObj(val)) return `${CLASS}: ${show(val)} is not a map of Mapping keys`;
      const other = Object.keys(val).find((key) => !isDefaulted(key));
      if (other !== undefined) return `${CLASS}.${other}: not a key Emissary defaults for a Mapping (only ${DEFAULTED_KEYS.join(', ')})`;
    } else if (!isDefaulted(k)) {
      return isObj(val) ? `${k}: defaults for resources other than Mappings (${CLASS}) are not read` : `${k}: not a key Emissary defaults for a Mapping (only ${DEFAULTED_KEYS.join(', ')})`;
    }
  }
  const cls = isObj(v[CLASS]) ? v[CLASS] : {};
  // Emissary's lookup: the class's key when present, else the top-level key.
  const lookup = (key: string): { at: string; value: unknown } | undefined =>
    Object.hasOwn(cls, key) ? { at: `${CLASS}.${key}`, value: cls[key] } : Object.hasOwn(v, key) ? { at: key, value: v[key] } : undefined;
  const defaults: Partial<Record<AppliedKey, unknown>> = {};
  for (const key of APPLIED_KEYS) {
    const found = lookup(key);
    if (found === undefined) continue;
    // The Mapping's own parser: a value a Mapping could not carry refuses the Module.
    const parsed = parseMappingPolicy({ [key]: found.value }, new RegexBudget(), new Set());
    if (isDrop(parsed)) return `${found.at}: ${parsed.why}`;
    defaults[key] = found.value;
  }
  const stats = lookup('stats_name');
  if (stats !== undefined && typeof stats.value !== 'string') return `${stats.at}: ${show(stats.value)} is not a string`;
  const applied = Object.keys(defaults);
  const why =
    (applied.length > 0 ? `${applied.join(', ')}: of every Mapping (custom and Seldon's) that does not set the key itself` : 'no header edit is defaulted') +
    (stats !== undefined ? "; stats_name names Envoy's statistics: changes nothing here, as a Mapping's own" : '');
  return { defaults, why };
}

/** A Mapping document with the defaults of the keys it does not set itself (it keeps its own, even `{}` or `[]`). */
export function withMappingDefaults(doc: Readonly<Record<string, unknown>>, d: MappingDefaults | undefined): Readonly<Record<string, unknown>> {
  if (d === undefined) return doc;
  let out: Record<string, unknown> | null = null;
  for (const key of APPLIED_KEYS) {
    if (!Object.hasOwn(d, key) || Object.hasOwn(doc, key)) continue;
    out ??= { ...doc };
    out[key] = d[key];
  }
  return out ?? doc;
}

/** The defaults as the policy of a Mapping that sets no key of its own (Seldon's generated routes); null without any. */
export function mappingDefaultsPolicy(d: MappingDefaults | undefined): MappingPolicy | null {
  if (d === undefined || Object.keys(d).length === 0) return null;
  const parsed = parseMappingPolicy(withMappingDefaults({}, d), new RegexBudget(), new Set());
  // Checked when the Module was read: a value that no longer parses gives no policy rather than a guess.
  return isDrop(parsed) ? null : parsed;
}
