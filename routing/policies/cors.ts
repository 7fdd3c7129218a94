/**
 * CORS policies (docs/routing.md#cors): a Mapping's `cors`, and the same fields in
 * `seldon.io/gateway-cors`, parsed into a `CorsPolicy` (its origin matcher compiled once). Pure.
 */
import { checkHeaderName, isObj, type Parsed } from '../values/syntax.js';
import { readList } from '../values/list.js';
import { readWholeNumber } from '../values/whole-number.js';
import type { CorsPolicy } from '../types.js';
import { validPort } from '../values/port.js';

const CORS_KEYS = new Set(['origins', 'methods', 'headers', 'credentials', 'exposed_headers', 'max_age']);
/** A serialised origin, lower case (RFC 6454): `scheme://host[:port]`, host a DNS name, IPv4 or [IPv6]; `*.` first: any subdomain. */
const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/(?:\*\.)?(?:[a-z0-9_-]+(?:\.[a-z0-9_-]+)*|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?$/;
/** What a `*.` may stand for: one or more DNS labels. */
const SUBDOMAINS = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;

/**
 * A list field: a YAML list of strings or one comma-separated string, as Ambassador takes both;
 * entries are trimmed, empty ones skipped, repeats dropped (an entry holding commas is split too).
 */
function corsList(raw: unknown, key: string): string[] | string {
  if (typeof raw !== 'string' && !Array.isArray(raw)) return `${key} must be a list or a comma-separated string`;
  const list = readList(raw);
  if (!list.ok) return `${key} has an entry that is not a string: ${list.error.slice(0, -' is not a string'.length)}`;
  return [...new Set(list.value)];
}

/** A list of methods or header names: tokens; `*` is allowed only alone (`starAlone`) or as a plain entry. */
function corsTokens(raw: unknown, key: string, starAlone: boolean, norm: (s: string) => string): string[] | string {
  const list = corsList(raw, key);
  if (typeof list === 'string') return list;
  const out: string[] = [];
  for (const t of list) {
    // Methods and header names are RFC 9110 tokens: the one reader of header names (values.ts), any case.
    if (checkHeaderName(t.toLowerCase()) !== undefined) return `${key}: "${t}" is not a valid ${key === 'methods' ? 'method' : 'header name'}`;
    const n = norm(t);
    if (!out.includes(n)) out.push(n);
  }
  if (starAlone && out.length > 1 && out.includes('*')) return `${key}: "*" (echo what the preflight asks for) must be the only entry`;
  return out;
}

/** An origin as configured → its normalised form, or why it can never match a browser's `Origin`. */
function corsOrigin(raw: string): string | { error: string } {
  const o = raw.toLowerCase();
  if (o === '*' || o === 'null') return o;
  const m = ORIGIN.exec(o);
  if (!m) {
    const why = /^[a-z][a-z0-9+.-]*:\/\/[^/]+\/.*$/.test(o) ? ' (an origin has no path, not even "/")' : '';
    return { error: `origins: "${raw}" is not an origin like https://app.example.com, https://*.example.com:8443, null or *${why}` };
  }
  if (m[1] !== undefined && validPort(m[1]) === null) return { error: `origins: "${raw}" has an invalid port (1..65535)` };
  return o;
}

/**
 * The origin test, precomputed: a set of exact origins, `*.` patterns (head and tail around the
 * `*`), and `*`. An `Origin` is compared in lower case. With credentials, `*` does not match the
 * opaque origin `null` (sandboxed frames, `file:`): it must be listed to be allowed.
 */
function originMatcher(origins: readonly string[], credentials: boolean): (origin: string) => boolean {
  const exact = new Set<string>();
  const wild: { head: string; tail: string }[] = [];
  let any = false;
  for (const o of origins) {
    if (o === '*') any = true;
    else if (o.includes('://*.')) {
      const star = o.indexOf('*');
      wild.push({ head: o.slice(0, star), tail: o.slice(star + 1) });
    } else exact.add(o);
  }
  return (origin) => {
    const o = origin.toLowerCase();
    if (exact.has(o)) return true;
    if (any) return !credentials || o !== 'null';
    for (const w of wild) {
      if (o.length > w.head.length + w.tail.length && o.startsWith(w.head) && o.endsWith(w.tail) && SUBDOMAINS.test(o.slice(w.head.length, o.length - w.tail.length))) return true;
    }
    return false;
  };
}

/**
 * Ambassador's Mapping `cors` block (`origins`, `methods`, `headers`, `credentials`,
 * `exposed_headers`, `max_age`) → a normalised `CorsPolicy`, or the first bad field. `where`
 * prefixes every message (`cors`, `seldon.io/gateway-cors`). An unknown key is a warning.
 */
export function parseCorsPolicy(raw: unknown, where: string): Parsed<{ policy: CorsPolicy; warnings: string[] }> {
  const bad = (error: string): Parsed<never> => ({ ok: false, error: `${where}: ${error}` });
  if (!isObj(raw)) return bad('must be a map of origins, methods, headers, credentials, exposed_headers, max_age');
  const warnings: string[] = [];
  for (const key of Object.keys(raw)) if (!CORS_KEYS.has(key)) warnings.push(`${where}: key "${key}" is not supported: ignored`);

  if (raw.origins === undefined || raw.origins === null) return bad('origins is required (the origins allowed, or "*")');
  const list = corsList(raw.origins, 'origins');
  if (typeof list === 'string') return bad(list);
  if (list.length === 0) return bad('origins is empty: no origin would be allowed');
  const origins: string[] = [];
  for (const entry of list) {
    const o = corsOrigin(entry);
    if (typeof o !== 'string') return bad(o.error);
    if (!origins.includes(o)) origins.push(o);
  }

  const tokens = (key: 'methods' | 'headers' | 'exposed_headers', norm: (s: string) => string): string[] | string =>
    raw[key] === undefined || raw[key] === null ? [] : corsTokens(raw[key], key, key !== 'exposed_headers', norm);
  const methods = tokens('methods', (s) => s.toUpperCase());
  if (typeof methods === 'string') return bad(methods);
  const headers = tokens('headers', (s) => s.toLowerCase());
  if (typeof headers === 'string') return bad(headers);
  const exposedHeaders = tokens('exposed_headers', (s) => s.toLowerCase());
  if (typeof exposedHeaders === 'string') return bad(exposedHeaders);

  let credentials = false;
  const c = raw.credentials;
  if (c === true || c === false) credentials = c;
  else if (typeof c === 'string' && /^(true|false)$/i.test(c.trim())) credentials = c.trim().toLowerCase() === 'true';
  else if (c !== undefined && c !== null) return bad(`credentials ${JSON.stringify(c)} is not true or false`);

  let maxAge: string | null = null;
  const a = raw.max_age;
  if (a !== undefined && a !== null) {
    const n = readWholeNumber(a);
    if (!n.ok) return bad(`max_age ${JSON.stringify(a)} is not a whole number of seconds`);
    maxAge = String(n.value);
  }

  const policy: CorsPolicy = {
    origins,
    allowsOrigin: originMatcher(origins, credentials),
    methods,
    headers,
    exposedHeaders,
    credentials,
    maxAge,
    text: { methods: methods.join(', '), headers: headers.join(', '), exposedHeaders: exposedHeaders.join(', ') },
  };
  return { ok: true, value: { policy, warnings } };
}
