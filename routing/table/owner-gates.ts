/**
 * The gate of a route to a Service another deployment makes (docs/routing.md#custom-ambassador-config):
 * a Service of an OAuth- or JWT-gated deployment applies that deployment's gate (its JWT policy
 * included), whoever's route it is; a
 * Service two gated deployments claim, a gate no token passes; a Service whose routes the external
 * auth service checks, that check.
 */
import type { RouteSpec } from '../compile/deployment.js';
import { deploymentKeyOf } from './route-group.js';
import { CONFLICTED_AUTH_DEPLOYMENT, type Backend, type Gate, type RateLimit } from '../types.js';

/** The gate of a route to a Service that several OAuth-gated deployments claim: no token is any of theirs (fail closed). */
function conflictedGate(own: Gate | null, external: boolean): Gate {
  return { auth: { namespace: '', deployment: CONFLICTED_AUTH_DEPLOYMENT }, rateLimits: own?.rateLimits ?? NO_LIMITS, external: external || (own?.external ?? false), jwt: own?.jwt ?? null };
}

/** The owner's gate, with the route's own rate limits kept as well. */
function ownersGate(owner: Gate, own: Gate | null, external: boolean): Gate {
  const checked = external || owner.external || (own?.external ?? false);
  // The owner's JWT policy is the Services' boundary; the route's own applies where the owner has none.
  const jwt = owner.jwt ?? own?.jwt ?? null;
  if ((!own || own.rateLimits.length === 0) && checked === owner.external && jwt === owner.jwt) return owner;
  const limits = [...owner.rateLimits];
  for (const l of own?.rateLimits ?? NO_LIMITS) if (!limits.some((x) => x.key === l.key)) limits.push(l);
  return { auth: owner.auth, rateLimits: limits, external: checked, jwt };
}

/** A route's own gate with the external check a Service's owner imposes on it. */
function externallyCheckedGate(own: Gate | null): Gate {
  return own === null ? { auth: null, rateLimits: NO_LIMITS, external: true, jwt: null } : { ...own, external: true };
}

const NO_LIMITS: readonly RateLimit[] = [];

/**
 * A spec's backend as served. `owners`: Service key → OAuth-gated deployment key → its gate;
 * `checkedBy`: Service key → deployments whose routes the external auth service checks and that make it.
 */
export function servedBackend(s: RouteSpec, owners: ReadonlyMap<string, ReadonlyMap<string, Gate>>, checkedBy: ReadonlyMap<string, ReadonlySet<string>>): Backend {
  if (s.target === null) return s.backend;
  const gated = owners.get(s.target);
  const self = deploymentKeyOf(s.backend);
  // A Service another deployment makes, whose routes the external auth service checks: so is this route (a Mapping's bypass_auth covers its own deployment's Services only).
  const checkers = checkedBy.get(s.target);
  const external = checkers !== undefined && !(s.backend.gate?.external ?? false) && (checkers.size > 1 || !checkers.has(self));
  let gate: Gate;
  if (!gated || (gated.size === 1 && gated.has(self))) {
    if (!external) return s.backend;
    gate = externallyCheckedGate(s.backend.gate);
  } else if (gated.size === 1) gate = ownersGate(gated.values().next().value!, s.backend.gate, external);
  else gate = conflictedGate(s.backend.gate, external);
  // Every other field as compiled (a spread keeps the compiled object's shape and any field added to Backend).
  return { ...s.backend, gate };
}
