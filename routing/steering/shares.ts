/**
 * Steering: a deployment's weights set at run time instead of by `traffic` (docs/rollouts.md,
 * docs/bandits.md). The table says which deployments are steered and how (`DeploymentSteering`,
 * from their annotations); the gateway decides their live shares (a rollout's step, a bandit's
 * shares) and hands each data plane a `SteerOverride` per deployment; `steerGroup` turns a group of
 * the table into the group a request is picked from. Pure: no I/O, no clock. The steering specs
 * themselves are in `spec.ts` and `sticky.ts`.
 *
 * A group may hold members of several deployments (the legacy pattern, docs/routing.md): an
 * override moves shares only among the deployment's own members, within the share the group
 * gives that deployment, so the others keep theirs.
 */
import type { Mirror, RouteGroup, WeightedBackend } from '../types.js';
import { cumulativeOf } from '../values/weights.js';

/** The cookie `sticky: cookie` sets when the client has none. */
export const STICKY_COOKIE = 'seldon-gateway-sticky';

/** A deployment's live shares, as the gateway decided them. */
export interface SteerOverride {
  /** Percent of the deployment's own traffic per listed predictor; the others share what is left by their configured split. */
  readonly percents: ReadonlyMap<string, number>;
  /** Predictors that get a copy of this percent of the requests (a rollout's mirror phase). */
  readonly mirrors: ReadonlyMap<string, number>;
  /** The predictor a sticky point meets first (the canary: as its share grows, clients only move to it). */
  readonly lead: string | null;
}

const deploymentOf = (m: WeightedBackend): string => `${m.backend.origin.namespace}/${m.backend.origin.deployment}`;

/**
 * The group as a request sees it under `overrides` (by deployment key). Members of a deployment
 * without an override keep their percents. For one with: its members' total share T stays T;
 * listed predictors get `percent × T / 100`; unlisted ones share the rest in proportion to their
 * configured percents (equally when those are all 0).
 */
export function steerGroup(group: RouteGroup, overrides: ReadonlyMap<string, SteerOverride>): RouteGroup {
  const members = group.members;
  const percents = members.map((m) => m.percent);
  const extraMirrors: Mirror[] = [];
  let lead = -1;
  const done = new Set<string>();
  for (const m of members) {
    const dep = deploymentOf(m);
    if (done.has(dep)) continue;
    done.add(dep);
    const o = overrides.get(dep);
    if (!o) continue;
    const own: number[] = [];
    members.forEach((x, i) => deploymentOf(x) === dep && own.push(i));
    const total = own.reduce((s, i) => s + members[i]!.percent, 0);
    let listed = 0;
    const rest: number[] = [];
    for (const i of own) {
      const p = o.percents.get(members[i]!.backend.origin.predictor);
      if (p === undefined) rest.push(i);
      else listed += percents[i] = Math.max(0, Math.min(100, p)) * (total / 100);
    }
    const left = Math.max(0, total - listed);
    const restConfigured = rest.reduce((s, i) => s + members[i]!.percent, 0);
    for (const i of rest) percents[i] = restConfigured > 0 ? (members[i]!.percent / restConfigured) * left : left / rest.length;
    if (o.lead !== null) for (const i of own) if (members[i]!.backend.origin.predictor === o.lead) lead = i;
    for (const [pred, percent] of o.mirrors) {
      const i = own.find((j) => members[j]!.backend.origin.predictor === pred);
      if (i !== undefined && percent > 0) extraMirrors.push({ backend: members[i]!.backend, percent });
    }
  }
  const order = members.map((_, i) => i);
  if (lead > 0) {
    order.splice(order.indexOf(lead), 1);
    order.unshift(lead);
  }
  const steered: WeightedBackend[] = order.map((i) => ({ backend: members[i]!.backend, percent: percents[i]! }));
  return {
    ...group,
    members: steered,
    cumulative: cumulativeOf(steered.map((m) => m.percent)),
    mirrors: extraMirrors.length ? [...group.mirrors, ...extraMirrors] : group.mirrors,
  };
}

/** A point in [0, 1) for a sticky value: FNV-1a (32 bits), so one value always lands on one place. */
export function stickyPoint(value: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    h ^= value.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // A final avalanche (murmur3's), so values differing in their last character spread too.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

/** A short stable hash of a JSON value (keys sorted), naming a run: FNV-1a 64 bits, hex. */
export function runHash(value: unknown): string {
  const text = stableJson(value);
  let h1 = 0x811c9dc5;
  let h2 = 0x9e3779b9;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}
