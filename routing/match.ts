/**
 * `match`: one request in, one routing decision out (SEMANTICS.md §5–§6).
 *
 * REST: the path (without query) is cut at each `/` from the longest end and looked up in the
 * prefix index; the first group in precedence order whose host and header constraints hold and
 * that has a non-shadow member wins. Odd (non-`/`-terminated) prefixes and regex routes exist
 * only through custom Mappings; when a table has any, candidates from every index are merged
 * by precedence. gRPC: generated routes are found by `namespace`+`seldon` metadata (the
 * namespace inferred when unambiguous), custom gRPC Mappings by path as for REST.
 *
 * Nothing is compiled or parsed per request; allocation is limited to the path slices and the
 * decision object.
 */
import { GRPC_PATH_MATCHER } from './compile.js';
import { comparePrecedence } from './table.js';
import type { Backend, Decision, HeaderGetter, Mirror, NotRouted, Picker, RouteGroup, RouteRequest, RouteTable } from './types.js';

const SLASH = 47;
const NO_MIRRORS: readonly Mirror[] = [];

function notRouted(status: number, reason: NotRouted['reason'], info: string): NotRouted {
  return { ok: false, status, reason, info };
}

/** True when the path has a `.` or `..` segment, raw or as `%2e` (SEMANTICS.md §5.1). */
export function hasDotSegment(path: string): boolean {
  if (path.indexOf('.') < 0 && path.indexOf('%') < 0) return false;
  for (const seg of path.replace(/%2e/gi, '.').split('/')) if (seg === '.' || seg === '..') return true;
  return false;
}

/** Host without port, lower-cased (`[::1]:80` → `[::1]`). */
export function hostOnly(host: string): string {
  const h = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '');
  return h.toLowerCase();
}

function constraintsHold(g: RouteGroup, req: RouteRequest): boolean {
  if (g.host !== null && hostOnly(req.host) !== g.host) return false;
  const headers = g.headers;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    const v = req.header(h.name);
    if (v === undefined) return false;
    if (h.kind === 'exact' ? v !== h.value : h.kind === 'regex' && !h.test(v)) return false;
  }
  return true;
}

function upstreamPath(backend: Backend, g: RouteGroup, path: string, query: string): string {
  if (backend.rewrite === null || g.path.kind !== 'prefix') return path + query;
  return backend.rewrite + path.slice(g.path.prefix.length) + query;
}

/** First group that accepts the request, then the weighted pick and the mirrors. */
function decide(
  groups: readonly RouteGroup[],
  req: RouteRequest,
  path: string,
  query: string,
  picker: Picker,
  eligible: ((b: Backend) => boolean) | undefined,
): Decision | undefined {
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i]!;
    if (g.members.length === 0 || !constraintsHold(g, req)) continue;
    const backend = picker.pick(g, eligible);
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
  if (table.restOddPrefixLengths.length === 0 && table.restRegex.length === 0) {
    // The common case: generated routes only, every prefix ends in `/`.
    for (let i = path.length - 1; i >= 0; i--) {
      if (path.charCodeAt(i) !== SLASH) continue;
      const groups = table.restByPrefix.get(path.slice(0, i + 1));
      if (!groups) continue;
      const d = decide(groups, req, path, query, picker, eligible);
      if (d) return d;
    }
  } else {
    const candidates: RouteGroup[] = [];
    prefixCandidates(table.restByPrefix, table.restOddPrefixLengths, path, candidates);
    for (const g of table.restRegex) if (g.path.kind === 'regex' && g.path.test(path)) candidates.push(g);
    candidates.sort(comparePrecedence);
    const d = decide(candidates, req, path, query, picker, eligible);
    if (d) return d;
  }
  return notRouted(404, 'NO_ROUTE', `no route for ${path}`);
}

function matchGrpc(table: RouteTable, req: RouteRequest, path: string, picker: Picker, eligible?: (b: Backend) => boolean): Decision {
  const seldon = req.header('seldon');
  let namespace = req.header('namespace');
  let generated: readonly RouteGroup[] | undefined;
  let ambiguity: string | undefined;
  if (seldon !== undefined && GRPC_PATH_MATCHER.kind === 'regex' && GRPC_PATH_MATCHER.test(path)) {
    if (namespace === undefined) {
      if (table.options.singleNamespace) namespace = table.options.namespace;
      else {
        const namespaces = table.grpcNamespaces.get(seldon);
        if (namespaces?.length === 1) namespace = namespaces[0];
        else if (namespaces && namespaces.length > 1) ambiguity = `seldon="${seldon}" is served in several namespaces (${namespaces.join(', ')}): send "namespace" metadata`;
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
    for (const g of table.grpcRegex) if (g.path.kind === 'regex' && g.path.test(path)) candidates.push(g);
    candidates.sort(comparePrecedence);
    d = decide(candidates, req, path, '', picker, eligible);
  }
  if (d) return d;
  if (ambiguity) return notRouted(404, 'NO_ROUTE', `no route for gRPC ${path}: ${ambiguity}`);
  const who = seldon === undefined ? 'no "seldon" metadata' : `seldon="${seldon}" namespace="${namespace ?? ''}"`;
  return notRouted(404, 'NO_ROUTE', `no route for gRPC ${path} with ${who}`);
}

/**
 * Route one request. `eligible` (optional) says whether a backend has a ready endpoint; members
 * that are not leave the pick while another member can take the request.
 */
export function match(table: RouteTable, req: RouteRequest, picker: Picker, eligible?: (b: Backend) => boolean): Decision {
  const raw = req.path;
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  if (path.charCodeAt(0) !== SLASH) return notRouted(400, 'BAD_REQUEST', `request path "${path}" does not start with "/"`);
  if (hasDotSegment(path)) return notRouted(400, 'BAD_REQUEST', `request path "${path}" has "." or ".." segments`);
  if (req.kind === 'grpc') return matchGrpc(table, req, path, picker, eligible);
  return matchRest(table, req, path, q < 0 ? '' : raw.slice(q), picker, eligible);
}

/** A header getter over a Node-style header record (values already lower-case keyed). */
export function headerGetter(headers: Readonly<Record<string, string | string[] | undefined>>): HeaderGetter {
  return (name) => {
    const v = headers[name];
    return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : v;
  };
}
