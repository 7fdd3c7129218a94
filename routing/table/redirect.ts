/**
 * Where a redirect Mapping (`host_redirect`, routing/emissary/mapping-policy.ts `Redirect`) sends a request,
 * as Envoy's route redirect computes it: `<scheme>://<host><path><query>`. The scheme is `https` when
 * the Mapping's service says so, else the request's; the path is `path_redirect` (the whole path),
 * or `prefix_redirect` in place of what the route matched (the whole path on an exact or regex
 * route, as Envoy's prefix rewrite does there), or `regex_redirect` applied, else the request's
 * (dot segments resolved as the match resolved them); the query always goes with it (no
 * `strip_query`).
 */
import type { Redirect } from '../emissary/mapping-policy.js';
import { normalised } from './match.js';
import type { CompileOptions, RouteGroup } from '../types.js';

/** The Location of a request for `target` (its raw request target) redirected on `group`'s route. */
export function redirectLocation(r: Redirect, group: RouteGroup, target: string, scheme: 'http' | 'https', options?: Pick<CompileOptions, 'mergeSlashes'>): string {
  const q = target.indexOf('?');
  const query = q < 0 ? '' : target.slice(q);
  const raw = q < 0 ? target : target.slice(0, q);
  // The path as the match read it (its table's options: the Module's merge_slashes).
  const p = normalised(raw, 'rest', true, options);
  // The request was routed, so its path was one `match` took.
  const path = typeof p === 'string' ? p : raw;
  let to = path;
  if (r.path !== null) to = r.path;
  else if (r.prefix !== null) {
    const m = group.path;
    const matched = m.kind === 'prefix' ? m.prefix.length : m.kind === 'iprefix' ? m.source.length : path.length;
    to = r.prefix + path.slice(matched);
  } else if (r.regex !== null) to = r.regex.apply(path);
  // The authority is the configured one, whatever the path: a pattern that matched after the first `/` keeps
  // it (the substitution starts with `/`, mapping-policy.ts), and a path that still does not is made one.
  if (to.charCodeAt(0) !== 47) to = `/${to}`;
  return `${r.scheme ?? scheme}://${r.host}${to}${query}`;
}
