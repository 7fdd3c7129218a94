/**
 * What a custom Mapping does to a request and its answer besides choosing a route
 * (docs/routing.md#custom-ambassador-config): the request's headers, Host and path on the way to the model,
 * the answer's headers and error bodies on the way back, a redirect instead of a model, and how its upstream
 * is balanced and connected. Parsed here, purely; the gateway applies it (`Backend.mapping`). Each parser
 * returns the value or why the Mapping is dropped: a key whose value the gateway cannot honour exactly drops
 * its Mapping, never a looser meaning.
 */
import { CONNECTION_SPECIFIC_FIELDS, compileFullMatch, checkHeaderName, isObj, type RegexBudget } from '../values/syntax.js';
import { parseDuration } from '../values/duration.js';
import { readWholeNumber } from '../values/whole-number.js';
import { authContextExtensionsOf, type AuthContextExtensions } from './auth-context.js';
import { RE2JS } from 're2js';

/** One `add_*_headers` entry: `append` false replaces any value the message has (Envoy's `append: false`). */
export interface HeaderAddition {
  readonly name: string;
  readonly value: string;
  readonly append: boolean;
}

/** Removals first, then additions, as Envoy applies a route's header edits. */
export interface HeaderEdits {
  /** Lower-case names. */
  readonly remove: readonly string[];
  readonly add: readonly HeaderAddition[];
}

/** `regex_rewrite` / `regex_redirect`: every match of `pattern` in the path replaced by `substitution` (`\1` groups). */
export interface RegexRewrite {
  readonly pattern: string;
  readonly substitution: string;
  readonly apply: (path: string) => string;
}

export type RedirectStatus = 301 | 302 | 303 | 307 | 308;

/**
 * `host_redirect: true`: the gateway answers with a redirect to the Mapping's `service` as host, and no
 * request reaches a model. The path is the request's, or `path_redirect` (the whole path), or the matched
 * prefix replaced by `prefix_redirect`, or `regex_redirect` applied; the query is kept.
 */
export interface Redirect {
  /** The `service` as `host[:port]` (its scheme dropped). */
  readonly host: string;
  /** `https` when the service was written `https://…`; else the request's scheme. */
  readonly scheme: 'https' | null;
  readonly path: string | null;
  readonly prefix: string | null;
  readonly regex: RegexRewrite | null;
  readonly status: RedirectStatus;
}

/**
 * `error_response_overrides`: an answer (the model's or the gateway's own) with `status` gets this body and
 * content type instead, as Envoy's local reply mapper does; `%RESPONSE_CODE%` in the body is the status.
 */
export interface ErrorOverride {
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
}

export type HashOn =
  { readonly kind: 'header'; readonly name: string } | { readonly kind: 'cookie'; readonly name: string; readonly ttlMs: number | null; readonly path: string | null } | { readonly kind: 'source_ip' };

/** `load_balancer`: how an attempt picks among the upstream's endpoints. */
export type LoadBalancer = { readonly policy: 'round_robin' } | { readonly policy: 'least_request' } | { readonly policy: 'ring_hash' | 'maglev'; readonly hashOn: HashOn };

/** `connect_timeout_ms`, `cluster_idle_timeout_ms`, `cluster_max_connection_lifetime_ms`; null: the gateway's default. */
export interface ConnectionPolicy {
  readonly connectTimeoutMs: number | null;
  readonly idleTimeoutMs: number | null;
  readonly maxLifetimeMs: number | null;
}

export interface MappingPolicy {
  readonly requestHeaders: HeaderEdits | null;
  readonly responseHeaders: HeaderEdits | null;
  /** `host_rewrite`: the Host the model receives. */
  readonly hostRewrite: string | null;
  /** `auto_host_rewrite: true`: the model receives the host name of the Mapping's service (no port) as Host. */
  readonly autoHostRewrite: boolean;
  readonly regexRewrite: RegexRewrite | null;
  readonly redirect: Redirect | null;
  /** Empty with `bypass_error_response_overrides: true` (the Module's overrides do not apply either). */
  readonly errorOverrides: readonly ErrorOverride[];
  readonly bypassErrorOverrides: boolean;
  readonly loadBalancer: LoadBalancer | null;
  readonly connection: ConnectionPolicy | null;
  /** `allow_upgrade` (and `use_websocket: true` as `websocket`), lower case. */
  readonly upgrades: readonly string[];
  /** `tls: <name>`: the upstream TLS context the operator defined by that name (--upstream-tls-context). */
  readonly tlsContext: string | null;
  /** `cluster_tag`: Emissary's cluster of its own (its connections, its circuit breaker), apart from other Mappings to the same service. */
  readonly clusterTag: string | null;
  /** `auth_context_extensions`: sent in the gRPC auth service's CheckRequest (routing/emissary/auth-context.ts). */
  readonly authContextExtensions: AuthContextExtensions | null;
}

/** What the ambassador Module gives every route that sets none of its own (`CompileOptions.defaultErrorOverrides`, `.defaultLoadBalancer`). */
export interface RouteDefaults {
  readonly errorOverrides: readonly ErrorOverride[] | undefined;
  readonly loadBalancer: LoadBalancer | undefined;
}

/** The ambassador Module's `defaults` of a Mapping's header edits, as written, after Emissary's precedence (routing/emissary/module-defaults.ts reads them); a key absent has none. */
export type MappingDefaults = Readonly<Partial<Record<'add_request_headers' | 'remove_request_headers' | 'add_response_headers' | 'remove_response_headers', unknown>>>;

/** A policy that changes nothing: what a route's own keys and the Module's defaults are laid over. */
export const NO_POLICY: MappingPolicy = Object.freeze({
  requestHeaders: null,
  responseHeaders: null,
  hostRewrite: null,
  autoHostRewrite: false,
  regexRewrite: null,
  redirect: null,
  errorOverrides: [],
  bypassErrorOverrides: false,
  loadBalancer: null,
  connection: null,
  upgrades: [],
  tlsContext: null,
  clusterTag: null,
  authContextExtensions: null,
});

/**
 * A route's policy with the Module's defaults where its Mapping has none of its own, as Emissary applies
 * them: the Module's overrides unless the Mapping lists its own (which replace them whole) or bypasses them,
 * the Module's balancer unless the Mapping names one. `p` null (a generated route, a Mapping with no policy
 * key): a policy of the defaults alone, or null when the Module sets neither (the route pays nothing).
 */
export function withRouteDefaults(p: MappingPolicy | null, d: RouteDefaults): MappingPolicy | null {
  const overrides = d.errorOverrides;
  const lb = d.loadBalancer;
  if (overrides === undefined && lb === undefined) return p;
  const base = p ?? NO_POLICY;
  const takeOverrides = overrides !== undefined && !base.bypassErrorOverrides && base.errorOverrides.length === 0;
  const takeLb = lb !== undefined && base.loadBalancer === null;
  if (!takeOverrides && !takeLb) return p;
  return { ...base, errorOverrides: takeOverrides ? overrides : base.errorOverrides, loadBalancer: takeLb ? lb : base.loadBalancer };
}

/** Emissary's `add_linkerd_headers` field (irhttpmapping.py): the service Linkerd's sidecar is to route to. */
export const LINKERD_DST_OVERRIDE = 'l5d-dst-override';

/**
 * `p` with `l5d-dst-override: <hostPort>` added to what the model receives, as Emissary adds it for
 * `add_linkerd_headers: true` (the Mapping's, else the Module's): the service's host and port as
 * Emissary qualifies them. It replaces a value the client sent and one the Mapping's own
 * `add_request_headers` names (Emissary writes it over that one): a client must not pick the
 * service its request is routed to inside the mesh.
 */
export function withLinkerdHeader(p: MappingPolicy | null, hostPort: string): MappingPolicy {
  const base = p ?? NO_POLICY;
  const own = base.requestHeaders ?? { remove: [], add: [] };
  const add = [...own.add.filter((a) => a.name !== LINKERD_DST_OVERRIDE), { name: LINKERD_DST_OVERRIDE, value: hostPort, append: false }];
  return { ...base, requestHeaders: { remove: own.remove, add } };
}

type Obj = Record<string, unknown>;
/** Why a Mapping is dropped: a value the gateway cannot honour with Emissary's meaning. */
export class Dropped {
  constructor(readonly why: string) {}
}
export type Out<T> = T | Dropped;
const drop = (why: string): Dropped => new Dropped(why);
export const isDrop = (v: unknown): v is Dropped => v instanceof Dropped;

/** Header values must be a single line: no CR, LF or NUL reaches a message head. */
const BAD_VALUE = /[\r\n\0]/;

/** A field that frames the message or belongs to one connection (and Host, which Envoy lets no route edit): an edit of it could desynchronise a connection. */
const framingField = (name: string, key: string): string | undefined =>
  name === 'content-length' || CONNECTION_SPECIFIC_FIELDS.has(name) || (name === 'host' && key.endsWith('request_headers'))
    ? `"${name}" is the message's framing or its connection's own field, not editable`
    : undefined;

function headerAdditions(raw: unknown, key: string): Out<HeaderAddition[]> {
  if (!isObj(raw)) return drop(`${key} must be a map of name to value`);
  const out: HeaderAddition[] = [];
  for (const [rawName, v] of Object.entries(raw)) {
    const name = rawName.trim().toLowerCase();
    const bad = checkHeaderName(name) ?? framingField(name, key);
    if (bad) return drop(`${key}: ${bad}`);
    let value: unknown = v;
    let append = true;
    if (isObj(v)) {
      value = v.value;
      if (v.append !== undefined) {
        if (typeof v.append !== 'boolean') return drop(`${key}.${name}.append must be true or false`);
        append = v.append;
      }
    }
    if (typeof value === 'number' || typeof value === 'boolean') value = String(value);
    if (typeof value !== 'string') return drop(`${key}.${name} must be a string or {value, append}`);
    if (BAD_VALUE.test(value)) return drop(`${key}.${name} has a line break or NUL`);
    if (/%[A-Z_]+(\(.*?\))?%/.test(value)) return drop(`${key}.${name}: Envoy's %…% substitutions are not supported`);
    out.push({ name, value, append });
  }
  return out;
}

function headerRemovals(raw: unknown, key: string): Out<string[]> {
  const list = typeof raw === 'string' ? [raw] : Array.isArray(raw) ? raw : null;
  if (list === null) return drop(`${key} must be a list of header names`);
  const out: string[] = [];
  for (const n of list) {
    if (typeof n !== 'string') return drop(`${key} must be a list of header names`);
    const name = n.trim().toLowerCase();
    const bad = checkHeaderName(name) ?? framingField(name, key);
    if (bad) return drop(`${key}: ${bad}`);
    out.push(name);
  }
  return out;
}

function edits(m: Obj, addKey: string, removeKey: string): Out<HeaderEdits | null> {
  if (m[addKey] === undefined && m[removeKey] === undefined) return null;
  const add = m[addKey] === undefined ? [] : headerAdditions(m[addKey], addKey);
  if (isDrop(add)) return add;
  const remove = m[removeKey] === undefined ? [] : headerRemovals(m[removeKey], removeKey);
  if (isDrop(remove)) return remove;
  return { add, remove };
}

/** An RE2 substitution (`\1`…`\9` for groups) applied to every match, as Envoy's `regex_rewrite`. */
export function regexRewrite(raw: unknown, key: string, regexes: RegexBudget): Out<RegexRewrite> {
  if (!isObj(raw) || typeof raw.pattern !== 'string' || raw.pattern === '') return drop(`${key} needs a pattern`);
  const substitution = raw.substitution === undefined ? '' : raw.substitution;
  if (typeof substitution !== 'string') return drop(`${key}.substitution must be a string`);
  // The budget counts and sizes it as every regex here; the full-match test itself is not used.
  const checked = compileFullMatch(raw.pattern, regexes);
  if (!checked.ok) return drop(`${key}: ${checked.error}`);
  const re = RE2JS.compile(raw.pattern);
  // RE2's substitution syntax is `\N`; RE2JS's replaceAll takes `$N`.
  const replacement = substitution.replace(/\$/g, '\\$').replace(/\\([0-9])/g, '$$$1');
  const pattern = raw.pattern;
  return { pattern, substitution, apply: (path) => re.matcher(path).replaceAll(replacement) };
}

const REDIRECT_CODES: readonly number[] = [301, 302, 303, 307, 308];

function redirectOf(m: Obj, service: string, regexes: RegexBudget): Out<Redirect | null> {
  const keys = ['path_redirect', 'prefix_redirect', 'regex_redirect', 'redirect_response_code'];
  if (m.host_redirect !== true) {
    if (m.host_redirect !== undefined && m.host_redirect !== false) return drop('host_redirect must be true or false');
    const stray = keys.find((k) => m[k] !== undefined);
    // Emissary reads these only beside host_redirect: alone they would change nothing there either.
    return stray ? drop(`${stray} needs host_redirect: true`) : null;
  }
  let scheme: 'https' | null = null;
  let host = service.trim();
  if (host.startsWith('https://')) {
    scheme = 'https';
    host = host.slice(8);
  } else if (host.startsWith('http://')) host = host.slice(7);
  // Nothing a URL parser reads as the end of the authority or as credentials (`\` is `/` to browsers).
  if (host === '' || /[/\\\s?#@]/.test(host)) return drop(`host_redirect: service "${service}" is not a host[:port]`);
  // path_redirect wins over prefix_redirect, which wins over regex_redirect (Emissary's order).
  const str = (k: string): Out<string | null> => {
    const v = m[k];
    if (v === undefined) return null;
    if (typeof v !== 'string' || !v.startsWith('/') || BAD_VALUE.test(v)) return drop(`${k} must be a path starting with "/"`);
    return v;
  };
  const path = str('path_redirect');
  if (isDrop(path)) return path;
  const prefix = path === null ? str('prefix_redirect') : null;
  if (isDrop(prefix)) return prefix;
  let regex: RegexRewrite | null = null;
  if (path === null && prefix === null && m.regex_redirect !== undefined) {
    const r = regexRewrite(m.regex_redirect, 'regex_redirect', regexes);
    if (isDrop(r)) return r;
    // A substitution that does not start with `/` can end the Location's authority (`…example.com@evil.com`).
    if (!r.substitution.startsWith('/')) return drop(`regex_redirect.substitution "${r.substitution}" must start with "/": the redirect's path follows its host`);
    regex = r;
  }
  let status: RedirectStatus = 301;
  if (m.redirect_response_code !== undefined) {
    const read = readWholeNumber(m.redirect_response_code);
    if (!read.ok || !REDIRECT_CODES.includes(read.value)) return drop(`redirect_response_code ${String(m.redirect_response_code)} is not one of ${REDIRECT_CODES.join(', ')}`);
    status = read.value as RedirectStatus;
  }
  return { host: host.toLowerCase(), scheme, path, prefix, regex, status };
}

/** The Envoy command operators an override body may use here: the answer's status, nothing else. */
const FORMAT_OPERATOR = /%([A-Z_]+)(\([^)]*\))?(:[0-9]+)?%/g;

function formatText(v: unknown, where: string): Out<string> {
  if (typeof v !== 'string') return drop(`${where} must be a string`);
  for (const op of v.matchAll(FORMAT_OPERATOR)) if (op[1] !== 'RESPONSE_CODE') return drop(`${where}: the command operator %${op[1]}% is not supported (only %RESPONSE_CODE%)`);
  return v;
}

/** `error_response_overrides` (Emissary's Module and Mapping keys): `on_status_code` 400..599 and a `body`. */
export function errorOverrides(raw: unknown, key = 'error_response_overrides'): Out<ErrorOverride[]> {
  if (!Array.isArray(raw)) return drop(`${key} must be a list`);
  const out: ErrorOverride[] = [];
  for (const [i, e] of raw.entries()) {
    const where = `${key}[${i}]`;
    if (!isObj(e)) return drop(`${where} must be a map`);
    const read = readWholeNumber(e.on_status_code, { min: 400, max: 599 });
    if (!read.ok) return drop(`${where}.on_status_code must be a status from 400 to 599`);
    const status = read.value;
    if (out.some((o) => o.status === status)) return drop(`${where}: status ${status} is overridden twice`);
    const body = e.body;
    if (!isObj(body)) return drop(`${where}.body must be a map`);
    const formats = ['text_format', 'json_format', 'text_format_source'].filter((k) => body[k] !== undefined);
    if (formats.length !== 1) return drop(`${where}.body needs exactly one of text_format, json_format`);
    if (formats[0] === 'text_format_source') return drop(`${where}.body.text_format_source (a file on the gateway) is not supported`);
    let text: string;
    let contentType: string;
    if (formats[0] === 'text_format') {
      const t = formatText(body.text_format, `${where}.body.text_format`);
      if (isDrop(t)) return t;
      text = t;
      contentType = 'text/plain';
    } else {
      if (!isObj(body.json_format)) return drop(`${where}.body.json_format must be a map`);
      for (const [k, v] of Object.entries(body.json_format)) {
        if (typeof v === 'string') {
          const t = formatText(v, `${where}.body.json_format.${k}`);
          if (isDrop(t)) return t;
        }
      }
      // Envoy writes the JSON object on one line, ending with a newline.
      text = `${JSON.stringify(body.json_format)}\n`;
      contentType = 'application/json';
    }
    if (body.content_type !== undefined) {
      if (typeof body.content_type !== 'string' || BAD_VALUE.test(body.content_type) || body.content_type.trim() === '') return drop(`${where}.body.content_type must be a media type`);
      contentType = body.content_type.trim();
    }
    out.push({ status, body: text, contentType });
  }
  return out;
}

/** Emissary accepts exactly these shapes (irhttpmapping.py `validate_load_balancer`); anything else invalidates the Mapping there too. */
export function loadBalancerOf(raw: unknown): Out<LoadBalancer> {
  if (!isObj(raw)) return drop('load_balancer must be a map');
  const policy = raw.policy;
  const keys = Object.keys(raw);
  if (policy === 'round_robin' || policy === 'least_request') {
    if (keys.length !== 1) return drop(`load_balancer: ${policy} takes no other key`);
    return { policy };
  }
  if (policy !== 'ring_hash' && policy !== 'maglev') return drop(`load_balancer.policy "${String(policy)}" is not one of round_robin, least_request, ring_hash, maglev`);
  if (keys.length !== 2) return drop(`load_balancer: ${policy} needs exactly one of header, cookie, source_ip`);
  if (raw.header !== undefined) {
    const name = typeof raw.header === 'string' ? raw.header.trim().toLowerCase() : '';
    const bad = checkHeaderName(name);
    if (bad) return drop(`load_balancer.header: ${bad}`);
    return { policy, hashOn: { kind: 'header', name } };
  }
  if (raw.cookie !== undefined) {
    const c = raw.cookie;
    if (!isObj(c) || typeof c.name !== 'string' || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(c.name)) return drop('load_balancer.cookie needs a valid name');
    let ttlMs: number | null = null;
    if (c.ttl !== undefined) {
      ttlMs = parseDuration(c.ttl);
      if (ttlMs === null) return drop(`load_balancer.cookie.ttl "${String(c.ttl)}" is not a duration like 10s or 1h`);
    }
    let path: string | null = null;
    if (c.path !== undefined) {
      if (typeof c.path !== 'string' || !c.path.startsWith('/') || /[;\s]/.test(c.path)) return drop('load_balancer.cookie.path must be a path');
      path = c.path;
    }
    return { policy, hashOn: { kind: 'cookie', name: c.name, ttlMs, path } };
  }
  if (raw.source_ip !== undefined) {
    if (raw.source_ip !== true) return drop('load_balancer.source_ip must be true');
    return { policy, hashOn: { kind: 'source_ip' } };
  }
  return drop(`load_balancer: ${policy} needs exactly one of header, cookie, source_ip`);
}

function wholeMs(m: Obj, key: string): Out<number | null> {
  const v = m[key];
  if (v === undefined) return null;
  const n = readWholeNumber(v);
  return n.ok ? n.value : drop(`${key}: ${n.error} of ms`);
}

function upgradesOf(m: Obj): Out<string[]> {
  const out: string[] = [];
  if (m.allow_upgrade !== undefined) {
    if (!Array.isArray(m.allow_upgrade)) return drop('allow_upgrade must be a list');
    for (const u of m.allow_upgrade) {
      if (typeof u !== 'string') return drop('allow_upgrade must be a list of protocol names');
      const name = u.trim().toLowerCase();
      if (name !== 'websocket') return drop(`allow_upgrade "${u}": only websocket is relayed`);
      if (!out.includes(name)) out.push(name);
    }
  }
  if (m.use_websocket !== undefined) {
    if (typeof m.use_websocket !== 'boolean') return drop('use_websocket must be true or false');
    if (m.use_websocket && !out.includes('websocket')) out.push('websocket');
  }
  return out;
}

/**
 * The policy keys of one Mapping, or why it is dropped. `tlsContexts` are the names the operator defined
 * (--upstream-tls-context); `service` is the Mapping's raw `service`, the redirect's target.
 */
export function parseMappingPolicy(m: Obj, regexes: RegexBudget, tlsContexts: ReadonlySet<string>): Out<MappingPolicy | null> {
  const requestHeaders = edits(m, 'add_request_headers', 'remove_request_headers');
  if (isDrop(requestHeaders)) return requestHeaders;
  const responseHeaders = edits(m, 'add_response_headers', 'remove_response_headers');
  if (isDrop(responseHeaders)) return responseHeaders;
  let hostRewrite: string | null = null;
  if (m.host_rewrite !== undefined) {
    if (typeof m.host_rewrite !== 'string' || m.host_rewrite.trim() === '' || /[\s/@?#]/.test(m.host_rewrite.trim())) return drop('host_rewrite must be a host[:port]');
    hostRewrite = m.host_rewrite.trim();
  }
  if (m.auto_host_rewrite !== undefined && typeof m.auto_host_rewrite !== 'boolean') return drop('auto_host_rewrite must be true or false');
  const autoHostRewrite = m.auto_host_rewrite === true;
  if (hostRewrite !== null && autoHostRewrite) return drop('host_rewrite and auto_host_rewrite: true cannot both be set');
  let regex: RegexRewrite | null = null;
  if (m.regex_rewrite !== undefined) {
    const r = regexRewrite(m.regex_rewrite, 'regex_rewrite', regexes);
    if (isDrop(r)) return r;
    regex = r;
  }
  const redirect = redirectOf(m, typeof m.service === 'string' ? m.service : '', regexes);
  if (isDrop(redirect)) return redirect;
  if (m.bypass_error_response_overrides !== undefined && typeof m.bypass_error_response_overrides !== 'boolean') return drop('bypass_error_response_overrides must be true or false');
  const bypassErrorOverrides = m.bypass_error_response_overrides === true;
  let overrides: ErrorOverride[] = [];
  if (m.error_response_overrides !== undefined) {
    const o = errorOverrides(m.error_response_overrides);
    if (isDrop(o)) return o;
    overrides = bypassErrorOverrides ? [] : o;
  }
  let loadBalancer: LoadBalancer | null = null;
  if (m.load_balancer !== undefined) {
    const lb = loadBalancerOf(m.load_balancer);
    if (isDrop(lb)) return lb;
    loadBalancer = lb;
  }
  const connect = wholeMs(m, 'connect_timeout_ms');
  if (isDrop(connect)) return connect;
  const idle = wholeMs(m, 'cluster_idle_timeout_ms');
  if (isDrop(idle)) return idle;
  const lifetime = wholeMs(m, 'cluster_max_connection_lifetime_ms');
  if (isDrop(lifetime)) return lifetime;
  const connection = connect === null && idle === null && lifetime === null ? null : { connectTimeoutMs: connect, idleTimeoutMs: idle, maxLifetimeMs: lifetime };
  const upgrades = upgradesOf(m);
  if (isDrop(upgrades)) return upgrades;
  let tlsContext: string | null = null;
  if (m.tls !== undefined && m.tls !== true && m.tls !== false) {
    if (typeof m.tls !== 'string' || !tlsContexts.has(m.tls)) {
      const known = [...tlsContexts].sort();
      return drop(`tls "${String(m.tls)}" names no upstream TLS context (--upstream-tls-context defines ${known.length ? known.join(', ') : 'none'})`);
    }
    tlsContext = m.tls;
  }
  const clusterTag = m.cluster_tag === undefined ? null : m.cluster_tag;
  if (clusterTag !== null && (typeof clusterTag !== 'string' || clusterTag === '')) return drop(`cluster_tag ${JSON.stringify(clusterTag)} is not a name`);
  const contextExtensions = authContextExtensionsOf(m.auth_context_extensions);
  if (contextExtensions !== null && 'error' in contextExtensions) return drop(contextExtensions.error);
  const nothing =
    contextExtensions === null &&
    requestHeaders === null &&
    responseHeaders === null &&
    hostRewrite === null &&
    !autoHostRewrite &&
    regex === null &&
    redirect === null &&
    overrides.length === 0 &&
    !bypassErrorOverrides &&
    loadBalancer === null &&
    connection === null &&
    upgrades.length === 0 &&
    tlsContext === null &&
    clusterTag === null;
  if (nothing) return null;
  return {
    requestHeaders,
    responseHeaders,
    hostRewrite,
    autoHostRewrite,
    regexRewrite: regex,
    redirect,
    errorOverrides: overrides,
    bypassErrorOverrides,
    loadBalancer,
    connection,
    upgrades,
    tlsContext,
    clusterTag,
    authContextExtensions: contextExtensions,
  };
}
