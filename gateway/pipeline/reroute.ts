/**
 * Where a request goes once the external auth service has edited its headers: Envoy's ext_authz
 * clears the route cache when it changed them (Emissary sets `clear_route_cache`), and the router
 * takes the route found again. One rule for a request (pipeline/gate.ts) and an upgrade
 * (rest/upgrade-gate.ts): the same route keeps its pick (Envoy's weighted pick is stable per
 * request); another route is where it goes (the auth service is not asked again: its filter ran);
 * no route is that answer (404); a redirect route answers with its redirect; a route whose own gate
 * asks more than the external check (OAuth, a JWT, rate limits) is refused rather than reached
 * without it.
 */
import type { Decision, NotRouted, Routed } from '../../routing/types.js';
import type { Refusal } from './request.js';

export type AfterAuth =
  | { readonly to: 'same' }
  | { readonly to: 'none'; readonly unrouted: NotRouted }
  | { readonly to: 'other' | 'redirect'; readonly routed: Routed }
  | { readonly to: 'refused'; readonly routed: Routed; readonly refusal: Refusal };

const SAME: AfterAuth = { to: 'same' };

/**
 * The second match, on the table of the first. `probe`: which route matches, without effects (no
 * draw); `match`: the match proper, only when the route changed.
 */
export function matchAgain(before: Routed, probe: () => Decision, match: () => Decision): AfterAuth {
  const found = probe();
  if (found.ok && found.group === before.group) return SAME;
  const again = found.ok ? match() : found;
  if (!again.ok) return { to: 'none', unrouted: again };
  if (again.group === before.group) return SAME;
  const backend = again.backend;
  const mapping = backend.mapping;
  if (mapping !== null && mapping.redirect !== null) return { to: 'redirect', routed: again };
  const gate = backend.gate;
  if (gate !== null && (gate.auth !== null || gate.jwt !== null || gate.rateLimits.length > 0))
    return {
      to: 'refused',
      routed: again,
      refusal: {
        check: 'gate',
        status: 403,
        reason: 'FORBIDDEN',
        message: `the external auth service's headers route this request to ${backend.id}, whose own checks (OAuth, JWT, rate limits) it has not passed`,
      },
    };
  return { to: 'other', routed: again };
}
