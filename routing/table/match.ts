/**
 * `match`: one request in, one routing decision out (docs/routing.md#urls-and-prefixes, docs/routing.md#grpc-metadata-matching, docs/routing.md#precedence-and-no-match).
 *
 * REST: the path (without query) is cut at each `/` from the longest end and looked up in the
 * prefix index; the first group in precedence order whose host and header constraints hold and
 * that has a non-shadow member wins. Odd (non-`/`-terminated) prefixes and regex routes exist
 * only through custom Mappings; when a table has any, candidates from every index are merged
 * by precedence. gRPC: generated routes are found by `namespace`+`seldon` metadata, custom gRPC
 * Mappings by path as for REST. A call without `namespace` means AMBASSADOR_NAMESPACE in
 * single-namespace mode; cluster-wide it is refused (tenant isolation), unless the custom config
 * scope is `cluster` (Ambassador's behaviour), where it means the one namespace serving that
 * `seldon` value. No message ever names a namespace the caller did not send.
 *
 * Path hygiene comes first (`checkPath`), on the path without its query: `.` and `..` segments are
 * resolved (Envoy's normalize_path; one that only `%2f`/`%5c` delimit is a 400), a raw backslash or a
 * fragment (`#`, Envoy's http_reject_path_with_fragment) is a 400; runs of `/` are merged only when the
 * ambassador Module's `merge_slashes: true` is in the table's options (Envoy's default keeps them), and the
 * REST decision and the forwarded path both use the resulting path, as does x-envoy-original-path.
 * Prefixes still match bytes (no percent-decoding), so an encoded name never reaches a route.
 * `matchDeployment` routes the OAuth front end: one deployment's own routes, path unchanged.
 *
 * Nothing is compiled or parsed per request; allocation is limited to the path slices and the
 * decision object.
 */
import { GRPC_PATH_MATCHER } from '../compile/deployment.js';
import { comparePrecedence } from './route-group.js';
import { queryHolds } from '../emissary/mapping-match.js';
import type { Backend, CompileOptions, Decision, HeaderGetter, Mirror, NotRouted, Picker, RouteGroup, RouteRequest, RouteTable } from '../types.js';

const SLASH = 47;
const BACKSLASH = 92;
const DOT = 46;
const PERCENT = 37;
const COLON = 58;
const STAR = 42;
const HASH = 35;
const NO_MIRRORS: readonly Mirror[] = [];
/** Where a path's `/` are (matchRest's scratch: matching never yields, so one is enough). */
const slashes: number[] = [];
/**
 * The request's one draw in [0, 1), once it met a group that passes some requests on; -1 before (`match`
 * resets it: matching never yields). Envoy draws one random value per request for every route's fraction.
 */
let drawn = -1;

function notRouted(status: number, reason: NotRouted['reason'], info: string): NotRouted {
  return { ok: false, status, reason, info };
}

/** Envoy's http_reject_path_with_fragment (its default): a target with `#` is a 400, routed nowhere. */
const MERGED: Pick<CompileOptions, 'mergeSlashes'> = { mergeSlashes: true };
const FRAGMENT = notRouted(400, 'BAD_REQUEST', 'the request target has a fragment ("#"): refused');

/** `checkPath` results. */
export const PATH_OK = 0;
export const PATH_MERGE_SLASHES = 1;
export const PATH_DOT_SEGMENT = 2;
export const PATH_BACKSLASH = 3;
export const PATH_FRAGMENT = 4;

/**
 * One pass over a path (no query), no allocation: PATH_DOT_SEGMENT when a segment is `.` or `..`,
 * counting `%2e` as a dot and `%2f`/`%5c` as separators (so `..%2f` is caught too); PATH_BACKSLASH
 * for a raw `\` (some servers take it for `/`); PATH_FRAGMENT for a `#` (a fragment is never sent to a
 * server: RFC 9112 §3.2); else PATH_MERGE_SLASHES when it has `//`, else PATH_OK.
 */
export function checkPath(path: string): number {
  const n = path.length;
  let merge = false;
  // Dots (raw or %2e) in the current segment so far; -1 once it has anything else.
  let dots = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? path.charCodeAt(i) : SLASH;
    let sep = false;
    let dot = false;
    if (c === SLASH) {
      sep = true;
      if (i + 1 < n && path.charCodeAt(i + 1) === SLASH) merge = true;
    } else if (c === DOT) dot = true;
    else if (c === PERCENT && i + 2 < n) {
      const hi = path.charCodeAt(i + 1);
      const lo = path.charCodeAt(i + 2) | 0x20;
      if (hi === 0x32 && lo === 0x65)
        dot = true; // %2e
      else if ((hi === 0x32 && lo === 0x66) || (hi === 0x35 && lo === 0x63)) sep = true; // %2f, %5c
      if (dot || sep) i += 2;
    } else if (c === BACKSLASH) return PATH_BACKSLASH;
    else if (c === HASH) return PATH_FRAGMENT;
    if (sep) {
      if (dots === 1 || dots === 2) return PATH_DOT_SEGMENT;
      dots = 0;
    } else if (dot) {
      if (dots >= 0) dots++;
    } else dots = -1;
  }
  return merge ? PATH_MERGE_SLASHES : PATH_OK;
}

/** `.`, `%2e` (either case) alone, or two of them: a dot segment. */
function dotCount(segment: string): number {
  const n = segment.length;
  if (n === 0 || n > 6) return 0;
  let dots = 0;
  for (let i = 0; i < n;) {
    if (segment.charCodeAt(i) === DOT) i++;
    else if (segment.charCodeAt(i) === PERCENT && segment.charCodeAt(i + 1) === 0x32 && (segment.charCodeAt(i + 2) | 0x20) === 0x65) i += 3;
    else return 0;
    dots++;
  }
  return dots <= 2 ? dots : 0;
}

/** RFC 3986 §5.2.4 on an absolute path whose segments are split by raw `/` only. */
export function removeDotSegments(path: string): string {
  const input = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < input.length; i++) {
    const seg = input[i]!;
    const dots = dotCount(seg);
    const last = i === input.length - 1;
    if (dots === 1) {
      if (last) out.push('');
    } else if (dots === 2) {
      out.pop();
      if (last) out.push('');
    } else out.push(seg);
  }
  return `/${out.join('/')}`;
}

/**
 * The path to decide on (dot segments resolved, slashes merged when asked), or the 400 for it. `options` (a
 * table's) is read only for a path with `//`: `mergeSlashes: true` (the ambassador Module's) merges them;
 * else they stay as sent, as Envoy's default.
 */
export function normalised(path: string, kind: RouteRequest['kind'], resolveDots = true, options?: Pick<CompileOptions, 'mergeSlashes'>): string | NotRouted {
  if (path.charCodeAt(0) !== SLASH) return notRouted(400, 'BAD_REQUEST', `request path "${path}" does not start with "/"`);
  const p = checkPath(path);
  if (p === PATH_OK) return path;
  if (p === PATH_DOT_SEGMENT && !resolveDots) return notRouted(400, 'BAD_REQUEST', `request path "${path}" has "." or ".." segments`);
  if (p === PATH_DOT_SEGMENT) {
    // Envoy's normalize_path: `.` and `..` segments resolved (RFC 3986), then routed. A dot segment that
    // only an encoded `/` or `\` delimits stays a 400: the model may decode it into a traversal.
    const resolved = removeDotSegments(path);
    const again = checkPath(resolved);
    if (again === PATH_DOT_SEGMENT) return notRouted(400, 'BAD_REQUEST', `request path "${path}" has "." or ".." segments between encoded separators`);
    return again === PATH_MERGE_SLASHES && kind === 'rest' && options?.mergeSlashes === true ? resolved.replace(/\/{2,}/g, '/') : resolved;
  }
  if (p === PATH_BACKSLASH) return notRouted(400, 'BAD_REQUEST', `request path "${path}" has a backslash`);
  if (p === PATH_FRAGMENT) return FRAGMENT;
  // gRPC routes on metadata and forwards :path unchanged; only REST decides on (and forwards) the merged form.
  return kind === 'rest' && options?.mergeSlashes === true ? path.replace(/\/{2,}/g, '/') : path;
}

/** Host without port, lower-cased (`[::1]:80` → `[::1]`). */
export function hostOnly(host: string): string {
  const h = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '');
  return h.toLowerCase();
}

/**
 * A constraint's value in the request: `:method` and `:authority` are the request's own, `:authority` as sent
 * (Emissary makes `host`, `hostname` and `host_regex` an Envoy header matcher on it, which compares case and port).
 */
function valueOf(req: RouteRequest, name: string): string | undefined {
  if (name.charCodeAt(0) !== COLON) return req.header(name);
  return name === ':method' ? req.method : name === ':authority' ? req.host : undefined;
}

function constraintsHold(g: RouteGroup, req: RouteRequest, query: string): boolean {
  if (g.host !== null && hostOnly(req.host) !== g.host) return false;
  const headers = g.headers;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    const v = valueOf(req, h.name);
    if (v === undefined) return false;
    if (h.kind === 'exact') {
      if (v !== h.value) return false;
    } else if (h.kind === 'regex') {
      if (!h.test(v)) return false;
    } else if (h.kind === 'glob' && !globHolds(h.value, v)) return false;
  }
  return g.query.length === 0 || queryHolds(g.query, query);
}

/** A `hostname` glob as Emissary writes it for Envoy: `*.example.com` a `suffix_match`, `foo.*` a `prefix_match` (case as sent). */
function globHolds(glob: string, host: string): boolean {
  if (glob.charCodeAt(0) === STAR) return host.endsWith(glob.slice(1));
  return host.startsWith(glob.slice(0, -1));
}

function upstreamPath(backend: Backend, g: RouteGroup, path: string, query: string): string {
  const regex = backend.mapping?.regexRewrite;
  if (regex) return regex.apply(path) + query;
  if (backend.rewrite === null) return path + query;
  // `prefix_exact` and `prefix_regex` replace the whole path (Envoy's prefix_rewrite on a path or safe_regex match).
  const matched = g.path.kind === 'prefix' ? g.path.prefix.length : g.path.kind === 'iprefix' ? g.path.source.length : path.length;
  const rewrite = backend.rewrite;
  // A rewrite the matched prefix ends with (a Seldon route's `/` after `/seldon/ns/name/`): one slice of the
  // path, neither a concatenation nor the flat copy writing one takes.
  const from = matched - rewrite.length;
  if (query === '' && from >= 0 && path.startsWith(rewrite, from)) return path.slice(from);
  return rewrite + path.slice(matched) + query;
}

/** First group that accepts the request, then the weighted pick and the mirrors. */
function decide(groups: readonly RouteGroup[], req: RouteRequest, path: string, query: string, picker: Picker, eligible: ((b: Backend) => boolean) | undefined): Decision | undefined {
  for (let i = 0; i < groups.length; i++) {
    let g = groups[i]!;
    if (g.members.length === 0 || !constraintsHold(g, req, query)) continue;
    let point: number | undefined;
    const passOn = g.passOn;
    if (passOn !== undefined && passOn > 0) {
      // Emissary's weights under 100: the rest falls through to the next route (Envoy's runtime_fraction).
      const stay = 100 - passOn;
      if (picker.draw === undefined) {
        if (!picker.mirror(stay)) continue;
      } else {
        if (drawn < 0) drawn = picker.draw();
        if (drawn * 100 >= stay) continue;
        point = (drawn * 100) / stay;
      }
    } else if (drawn >= 0) point = drawn;
    if (g.steered) {
      // A rollout or bandit sets these shares at run time (routing/steering/shares.ts).
      g = picker.steer(g);
      if (g.sticky !== null && req.sticky) point = req.sticky(g.sticky);
    }
    const backend = picker.pick(g, eligible, point);
    if (!backend) {
      const ids = g.members.map((m) => m.backend.id).join(', ');
      return notRouted(503, 'NO_HEALTHY_UPSTREAM', `no healthy upstream for ${ids}`);
    }
    let mirrors = NO_MIRRORS;
    if (g.mirrors.length > 0) mirrors = g.mirrors.filter((m) => picker.mirror(m.percent));
    return { ok: true, group: g, backend, upstreamPath: upstreamPath(backend, g, path, query), mirrors };
  }
  return undefined;
}

/** Every prefix-index hit for `path`, longest first. */
function prefixCandidates(index: ReadonlyMap<string, readonly RouteGroup[]>, oddLengths: readonly number[], path: string, out: RouteGroup[]): void {
  for (let i = path.length - 1; i >= 0; i--) {
    if (path.charCodeAt(i) !== SLASH) continue;
    const groups = index.get(path.slice(0, i + 1));
    if (groups) out.push(...groups);
  }
  for (const len of oddLengths) {
    if (len > path.length) continue;
    const groups = index.get(path.slice(0, len));
    if (groups) out.push(...groups);
  }
}

function matchRest(table: RouteTable, req: RouteRequest, path: string, query: string, picker: Picker, eligible?: (b: Backend) => boolean): Decision {
  if (table.restOddPrefixLengths.length === 0 && table.restRegex.length === 0 && table.restRanked !== true) {
    // The common case: generated routes only, every prefix ends in `/`. The path is cut only where
    // a prefix could end (after as many `/` as some prefix has), longest first.
    const depths = table.restPrefixDepths;
    const max = depths.length > 0 ? depths[0]! : 0;
    let found = 0;
    for (let i = 0; i < path.length && found < max; i++) if (path.charCodeAt(i) === SLASH) slashes[found++] = i;
    for (let j = 0; j < depths.length; j++) {
      const depth = depths[j]!;
      if (depth > found) continue;
      const groups = table.restByPrefix.get(path.slice(0, slashes[depth - 1]! + 1));
      if (!groups) continue;
      const d = decide(groups, req, path, query, picker, eligible);
      if (d) return d;
    }
  } else {
    const candidates: RouteGroup[] = [];
    prefixCandidates(table.restByPrefix, table.restOddPrefixLengths, path, candidates);
    for (const g of table.restRegex) if (g.path.kind !== 'prefix' && g.path.test(path)) candidates.push(g);
    candidates.sort(comparePrecedence);
    const d = decide(candidates, req, path, query, picker, eligible);
    if (d) return d;
  }
  return notRouted(404, 'NO_ROUTE', `no route for ${path}${whyNotServed(table, restDeployment(table, path))}`);
}

/** The deployment a `/seldon/<ns>/<name>/` (or single-namespace `/seldon/<name>/`) path names, as `ns/name`. */
function restDeployment(table: RouteTable, path: string): string | undefined {
  if (!path.startsWith('/seldon/')) return undefined;
  const [a, b] = path.slice('/seldon/'.length).split('/', 2);
  if (!a) return undefined;
  const twoSegments = b ? `${a}/${b}` : undefined;
  if (twoSegments && table.deployments.has(twoSegments)) return twoSegments;
  return table.options.singleNamespace ? `${table.options.namespace}/${a}` : twoSegments;
}

/**
 * On a miss only: when the request names a deployment the table rejected, its reasons (as /routes
 * shows them), so the client learns why its deployment is not served.
 */
function whyNotServed(table: RouteTable, key: string | undefined): string {
  if (key === undefined) return '';
  const r = table.deployments.get(key) ?? (key.endsWith('-explainer') ? table.deployments.get(key.slice(0, -'-explainer'.length)) : undefined);
  return r?.state === 'rejected' ? `: deployment ${r.namespace}/${r.name} is rejected: ${r.reasons.join('; ')}` : '';
}

function matchGrpc(table: RouteTable, req: RouteRequest, path: string, picker: Picker, eligible?: (b: Backend) => boolean): Decision {
  const seldon = req.header('seldon');
  const sent = req.header('namespace');
  let namespace = sent;
  let generated: readonly RouteGroup[] | undefined;
  let ambiguity: string | undefined;
  if (seldon !== undefined && GRPC_PATH_MATCHER.kind === 'regex' && GRPC_PATH_MATCHER.test(path)) {
    if (namespace === undefined) {
      if (table.options.singleNamespace) namespace = table.options.namespace;
      else if (table.options.customConfigScope === 'cluster') {
        // Ambassador's global behaviour: the one namespace serving that name, if there is one.
        const namespaces = table.grpcNamespaces.get(seldon);
        if (namespaces?.length === 1) namespace = namespaces[0];
        else if (namespaces && namespaces.length > 1) ambiguity = `seldon="${seldon}" is served in more than one namespace: send "namespace" metadata`;
      } else {
        // Tenant isolation: which tenant a call without a namespace means cannot be known, and
        // guessing lets another namespace capture it (a same-named deployment, or the victim's
        // absence); so the call needs its namespace.
        ambiguity = `send "namespace" metadata with "seldon" (calls without it are routed only in single-namespace mode)`;
      }
    }
    if (namespace !== undefined) generated = table.grpcByIdentity.get(`${namespace}\u0000${seldon}`);
  }
  const custom = table.grpcByPrefix.size > 0 || table.grpcRegex.length > 0;
  let d: Decision | undefined;
  if (!custom) {
    if (generated) d = decide(generated, req, path, '', picker, eligible);
  } else {
    const candidates: RouteGroup[] = generated ? [...generated] : [];
    prefixCandidates(table.grpcByPrefix, table.grpcOddPrefixLengths, path, candidates);
    for (const g of table.grpcRegex) if (g.path.kind !== 'prefix' && g.path.test(path)) candidates.push(g);
    candidates.sort(comparePrecedence);
    d = decide(candidates, req, path, '', picker, eligible);
  }
  if (d) return d;
  if (ambiguity) return notRouted(404, 'NO_ROUTE', `no route for gRPC ${path}: ${ambiguity}`);
  const who = seldon === undefined ? 'no "seldon" metadata' : sent === undefined ? `seldon="${seldon}" and no "namespace" metadata` : `seldon="${seldon}" namespace="${sent}"`;
  return notRouted(404, 'NO_ROUTE', `no route for gRPC ${path} with ${who}${whyNotServed(table, seldon !== undefined && sent !== undefined ? `${sent}/${seldon}` : undefined)}`);
}

/**
 * Route one request. `eligible` (optional) says whether a backend has a ready endpoint; members
 * that are not leave the pick while another member can take the request.
 */
export function match(table: RouteTable, req: RouteRequest, picker: Picker, eligible?: (b: Backend) => boolean): Decision {
  const raw = req.path;
  const q = raw.indexOf('?');
  const sent = q < 0 ? raw : raw.slice(0, q);
  const path = normalised(sent, req.kind, true, table.options);
  if (typeof path !== 'string') return path;
  drawn = -1;
  if (req.kind === 'grpc') return matchGrpc(table, req, path, picker, eligible);
  const query = q < 0 ? '' : raw.slice(q);
  if (q >= 0 && raw.indexOf('#', q) >= 0) return FRAGMENT;
  const d = matchRest(table, req, path, query, picker, eligible);
  // x-envoy-original-path is the path Envoy routed on (normalize_path ran first); a new string only when it differs.
  return d.ok && path !== sent ? { ...d, originalPath: path + query } : d;
}

/**
 * The OAuth front end (docs/routing.md#oauth-front-end): route a request to the deployment `key` (`ns/name`)
 * through its own routes: its predictors, weights and shadows, no header constraints, the path
 * forwarded unchanged (after the same path hygiene as `match`).
 */
export function matchDeployment(table: RouteTable, key: string, req: RouteRequest, picker: Picker, eligible?: (b: Backend) => boolean): Decision {
  const raw = req.path;
  const q = raw.indexOf('?');
  // The OAuth front end is Seldon's API, not an Envoy route: it refuses dot segments (gateway/auth/gate.ts `api`)
  // and merges runs of `/` whatever the Module says.
  const path = normalised(q < 0 ? raw : raw.slice(0, q), req.kind, false, MERGED);
  if (typeof path !== 'string') return path;
  if (q >= 0 && raw.indexOf('#', q) >= 0) return FRAGMENT;
  const own = table.ownRoutes.get(key);
  const g = req.kind === 'grpc' ? own?.grpc : own?.rest;
  if (!g) {
    const r = table.deployments.get(key);
    const why = !r
      ? 'no longer exists'
      : r.state === 'rejected' || r.state === 'skipped'
        ? `is ${r.state}: ${r.reasons.join('; ')}`
        : `has no generated ${req.kind === 'grpc' ? 'gRPC' : 'REST'} route`;
    return notRouted(404, 'NO_ROUTE', `no route for ${path}: deployment ${key} ${why}`);
  }
  drawn = -1;
  const d = decide([g], req, path, q < 0 ? '' : raw.slice(q), picker, eligible);
  if (!d) return notRouted(404, 'NO_ROUTE', `no route for ${path}: deployment ${key} has only shadow predictors`);
  // decide() applied the prefix rewrite; the front end forwards the path as it came.
  return d.ok ? { ...d, upstreamPath: q < 0 ? path : path + raw.slice(q) } : d;
}

/** A header getter over a Node-style header record (values already lower-case keyed). */
export function headerGetter(headers: Readonly<Record<string, string | string[] | undefined>>): HeaderGetter {
  return (name) => {
    const v = headers[name];
    return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : v;
  };
}
