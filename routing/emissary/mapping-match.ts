/**
 * What a custom Mapping matches (docs/routing.md#mapping-keys): its path (`prefix`, `prefix_regex`,
 * `prefix_exact`, `case_sensitive`), its header constraints with `method` as `:method` and `host` /
 * `host_regex` / `hostname` as `:authority` (Emissary's own representation, so they group and order as
 * headers do), its query parameter constraints, and its `precedence`. Pure; each parser returns the
 * value or why the Mapping is dropped.
 */
import { compileFullMatch, checkHeaderName, isObj, type HeaderConstraint, type RegexBudget } from '../values/syntax.js';
import { Dropped, isDrop, type Out } from './mapping-policy.js';
import { MAX_INT32, readWholeNumber } from '../values/whole-number.js';
import type { PathMatcher, QueryConstraint } from '../types.js';

type Obj = Record<string, unknown>;

export interface MappingMatch {
  readonly path: PathMatcher;
  readonly headers: HeaderConstraint[];
  readonly query: QueryConstraint[];
  readonly rank: number;
}

function bool(m: Obj, key: string): Out<boolean | undefined> {
  const v = m[key];
  if (v === undefined || typeof v === 'boolean') return v;
  return new Dropped(`${key} must be true or false`);
}

/** The path matcher; `rewrite` is read by the caller (a regex or exact Mapping may use it too). */
function pathOf(m: Obj, regexes: RegexBudget): Out<PathMatcher> {
  if (typeof m.prefix !== 'string' || !m.prefix.startsWith('/')) {
    // A regex need not start with `/` in Emissary, but every path does: one that cannot match drops here.
    if (!(m.prefix_regex === true && typeof m.prefix === 'string' && m.prefix !== '')) return new Dropped('prefix must be a path starting with "/"');
  }
  const prefix = m.prefix as string;
  const regex = bool(m, 'prefix_regex');
  const exact = bool(m, 'prefix_exact');
  const cs = bool(m, 'case_sensitive');
  for (const v of [regex, exact, cs]) if (isDrop(v)) return v;
  const caseSensitive = cs !== false;
  if (regex === true) {
    if (exact === true) return new Dropped('prefix_regex and prefix_exact cannot both be true');
    // Envoy's `case_sensitive` does not apply to a safe_regex match: the pattern decides (`(?i)` in it).
    const test = compileFullMatch(prefix, regexes);
    if (!test.ok) return new Dropped(`prefix: ${test.error}`);
    return { kind: 'regex', source: prefix, test: test.value };
  }
  if (exact === true) {
    if (caseSensitive) return { kind: 'exact', source: prefix, test: (p) => p === prefix };
    const lower = prefix.toLowerCase();
    return { kind: 'exact', source: prefix, test: (p) => p.length === lower.length && p.toLowerCase() === lower, ignoreCase: true };
  }
  if (caseSensitive) return { kind: 'prefix', prefix };
  const lower = prefix.toLowerCase();
  return { kind: 'iprefix', source: prefix, test: (p) => p.length >= lower.length && p.slice(0, lower.length).toLowerCase() === lower };
}

function headerMap(m: Obj, key: 'headers' | 'regex_headers', regexes: RegexBudget, out: HeaderConstraint[]): Out<string | null> {
  const raw = m[key];
  if (raw === undefined) return null;
  if (!isObj(raw)) return new Dropped(`${key} must be a map`);
  let authority: string | null = null;
  for (const [rawName, v] of Object.entries(raw)) {
    const name = rawName.trim().toLowerCase();
    if (name === ':authority' && key === 'headers' && typeof v === 'string') {
      // Emissary: an exact `:authority` header is the Mapping's host (which `host` then overrides).
      authority = v;
      continue;
    }
    const bad = name.startsWith(':') ? (name === ':method' ? undefined : `the pseudo-header "${name}" cannot be matched (use host or method)`) : checkHeaderName(name);
    if (bad) return new Dropped(`${key}: ${bad}`);
    const c = constraintOf(key === 'regex_headers' ? key : null, 'headers', name, v, regexes);
    if (isDrop(c)) return c;
    out.push(c);
  }
  return authority;
}

/**
 * One entry of `headers` / `regex_headers` or `query_parameters` / `regex_query_parameters` (`regexKey` set when
 * it is the regex map's): a value (a YAML number as its text) or `true` for presence, or a non-empty RE2 pattern.
 */
function constraintOf(regexKey: string | null, plainKey: string, name: string, v: unknown, regexes: RegexBudget): Out<QueryConstraint> {
  if (regexKey !== null) {
    if (typeof v !== 'string' || v === '') return new Dropped(`${regexKey}.${name} must be a non-empty pattern`);
    const test = compileFullMatch(v, regexes);
    if (!test.ok) return new Dropped(`${regexKey}.${name}: ${test.error}`);
    return { kind: 'regex', name, pattern: v, test: test.value };
  }
  if (v === true) return { kind: 'presence', name };
  if (typeof v === 'string' || typeof v === 'number') return { kind: 'exact', name, value: String(v) };
  return new Dropped(`${plainKey}.${name} must be a string or true`);
}

/** `host` (exact or `host_regex`), `hostname` (a glob, which wins), or an exact `:authority` header. */
function authorityOf(m: Obj, fromHeaders: string | null, regexes: RegexBudget, out: HeaderConstraint[]): Out<void> {
  const hostRegex = bool(m, 'host_regex');
  if (isDrop(hostRegex)) return hostRegex;
  if (m.hostname !== undefined) {
    if (typeof m.hostname !== 'string' || m.hostname.trim() === '') return new Dropped('hostname must be a non-empty string');
    // As written: Emissary makes it an `:authority` header matcher, which compares case.
    const glob = m.hostname.trim();
    if (glob === '*') return;
    const star = glob.indexOf('*');
    if (star < 0) {
      out.push({ kind: 'exact', name: ':authority', value: glob });
      return;
    }
    // Envoy's globs: one `*`, first (a suffix) or last (a prefix); `foo.*.com` matches nothing there.
    if (glob.indexOf('*', star + 1) >= 0 || (star !== 0 && star !== glob.length - 1)) return new Dropped(`hostname "${m.hostname}": a * may only start or end the glob`);
    out.push({ kind: 'glob', name: ':authority', value: glob });
    return;
  }
  const host = m.host !== undefined ? m.host : fromHeaders;
  if (host === null || host === undefined) {
    if (hostRegex === true) return new Dropped('host_regex needs host');
    return;
  }
  if (typeof host !== 'string' || host.trim() === '') return new Dropped('host must be a non-empty string');
  if (hostRegex === true && m.host !== undefined) {
    const test = compileFullMatch(host.trim(), regexes);
    if (!test.ok) return new Dropped(`host: ${test.error}`);
    out.push({ kind: 'regex', name: ':authority', pattern: host.trim(), test: test.value });
    return;
  }
  // An exact Host with a `*` can match nothing (Emissary refuses it too).
  if (host.includes('*')) return new Dropped(`host "${host}" is an exact match and cannot contain * (use hostname for a glob)`);
  out.push({ kind: 'exact', name: ':authority', value: host.trim() });
}

function methodOf(m: Obj, regexes: RegexBudget, out: HeaderConstraint[]): Out<void> {
  const re = bool(m, 'method_regex');
  if (isDrop(re)) return re;
  if (m.method === undefined) return re === true ? new Dropped('method_regex needs method') : undefined;
  if (typeof m.method !== 'string' || m.method.trim() === '') return new Dropped('method must be a non-empty string');
  const method = m.method.trim();
  if (re === true) {
    const test = compileFullMatch(method, regexes);
    if (!test.ok) return new Dropped(`method: ${test.error}`);
    out.push({ kind: 'regex', name: ':method', pattern: method, test: test.value });
  } else out.push({ kind: 'exact', name: ':method', value: method });
}

function queryOf(m: Obj, regexes: RegexBudget): Out<QueryConstraint[]> {
  const out: QueryConstraint[] = [];
  for (const key of ['query_parameters', 'regex_query_parameters'] as const) {
    const raw = m[key];
    if (raw === undefined) continue;
    if (!isObj(raw)) return new Dropped(`${key} must be a map`);
    for (const [name, v] of Object.entries(raw)) {
      if (name === '' || /[&=#\s]/.test(name)) return new Dropped(`${key}: "${name}" is not a query parameter name`);
      const c = constraintOf(key === 'regex_query_parameters' ? key : null, 'query_parameters', name, v, regexes);
      if (isDrop(c)) return c;
      out.push(c);
    }
  }
  return out;
}

export function parseMappingMatch(m: Obj, regexes: RegexBudget): Out<MappingMatch> {
  const path = pathOf(m, regexes);
  if (isDrop(path)) return path;
  const headers: HeaderConstraint[] = [];
  const fromHeaders = headerMap(m, 'headers', regexes, headers);
  if (isDrop(fromHeaders)) return fromHeaders;
  const fromRegex = headerMap(m, 'regex_headers', regexes, headers);
  if (isDrop(fromRegex)) return fromRegex;
  const a = authorityOf(m, fromHeaders, regexes, headers);
  if (isDrop(a)) return a;
  const me = methodOf(m, regexes, headers);
  if (isDrop(me)) return me;
  const query = queryOf(m, regexes);
  if (isDrop(query)) return query;
  let rank = 0;
  if (m.precedence !== undefined) {
    const n = readWholeNumber(m.precedence, { min: -MAX_INT32 });
    if (!n.ok) return new Dropped(`precedence "${String(m.precedence)}" is not a whole number`);
    rank = n.value;
  }
  return { path, headers, query, rank };
}

/**
 * Whether a request's query (`?a=1&b`, or '') satisfies every constraint: the first occurrence of each
 * name, its value as sent (no decoding); a name without `=` is present with an empty value.
 */
export function queryHolds(constraints: readonly QueryConstraint[], query: string): boolean {
  for (let i = 0; i < constraints.length; i++) {
    const c = constraints[i]!;
    const v = queryValue(query, c.name);
    if (v === undefined) return false;
    if (c.kind === 'exact' ? v !== c.value : c.kind === 'regex' && !c.test(v)) return false;
  }
  return true;
}

function queryValue(query: string, name: string): string | undefined {
  let i = query.charCodeAt(0) === 63 ? 1 : 0; // '?'
  while (i < query.length) {
    let end = query.indexOf('&', i);
    if (end < 0) end = query.length;
    const eq = query.indexOf('=', i);
    const nameEnd = eq >= 0 && eq < end ? eq : end;
    if (nameEnd - i === name.length && query.startsWith(name, i)) return nameEnd === end ? '' : query.slice(nameEnd + 1, end);
    i = end + 1;
  }
  return undefined;
}
