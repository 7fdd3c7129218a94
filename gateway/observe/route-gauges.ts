/**
 * The route table as two gauges the alert rules need beside the traffic counters, computed when
 * metrics are read (computed-series.ts `ComputedSeries`), never on a request:
 *
 * - `routeWeights`: each predictor's percent of its deployment's traffic in a weighted split, as
 *   the pick uses it now: the configured weights, or, for a deployment a rollout or a bandit steers,
 *   its live shares (routing/steering/shares.ts `steerGroup`, with the overrides the steering controller
 *   last sent the data planes), so that "canary split drift" compares the observed split with what
 *   the gateway is doing, not with what the manifest said before a rollout moved it. Percent of the
 *   deployment's own members of the group (the decision record's `why.weights`): in a group shared
 *   by several deployments (the legacy pattern) each deployment's traffic is counted on its own, as
 *   the alert divides it. Only deployments with two or more members in a split (a lone member
 *   always gets all of its deployment's traffic there); when one predictor has different percents
 *   in two splits of one protocol (say a header route beside the weighted one), its weight is
 *   ambiguous and left out. Recomputed only when the table or the live shares are other ones.
 * - `readyEndpointCounts`: the ready endpoints of each routed backend's Service, as the
 *   EndpointSlice watcher knows them, so that "no ready endpoints" fires before requests fail.
 *   Backends whose Service the watcher does not know (not a cluster Service, no slices seen, or
 *   endpoint routing off) are left out. One series per predictor and kind (REST and gRPC reach the
 *   same pods); a predictor with two Services (its explainer's) counts the one with fewer, which is
 *   what some of its requests meet. Recomputed only after the table or some endpoints changed.
 *
 * Series are keyed by their labels, as `GaugeSeries` (labels in the gauges' label order).
 */
import type { GaugeSeries } from './computed-series.js';
import { steerGroup, type SteerOverride } from '../../routing/steering/shares.js';
import type { RouteGroup, RouteTable, WeightedBackend } from '../../routing/types.js';

/** Four decimals, as the admin page's and the decision record's percents. */
const round4 = (n: number): number => Math.round(n * 10_000) / 10_000;

/** Each deployment's members of a group, by `namespace/name`. */
function byDeployment(group: RouteGroup): Map<string, WeightedBackend[]> {
  const out = new Map<string, WeightedBackend[]>();
  for (const m of group.members) {
    const key = `${m.backend.origin.namespace}/${m.backend.origin.deployment}`;
    const list = out.get(key);
    if (list === undefined) out.set(key, [m]);
    else list.push(m);
  }
  return out;
}

/**
 * namespace, deployment, predictor, protocol → percent in force, for the table `table()` returns
 * with the live shares `overrides()` returns; undefined while both are the same objects.
 */
export function routeWeights(table: () => RouteTable, overrides: () => ReadonlyMap<string, SteerOverride>): () => ReadonlyMap<string, GaugeSeries> | undefined {
  let lastTable: RouteTable | undefined;
  let lastOverrides: ReadonlyMap<string, SteerOverride> | undefined;
  return () => {
    const t = table();
    const live = overrides();
    if (t === lastTable && live === lastOverrides) return undefined;
    lastTable = t;
    lastOverrides = live;
    const byKey = new Map<string, GaugeSeries | null>();
    for (const configured of t.groups) {
      const g = configured.steered && live.size > 0 ? steerGroup(configured, live) : configured;
      for (const members of byDeployment(g).values()) {
        if (members.length < 2) continue;
        const total = members.reduce((sum, m) => sum + m.percent, 0);
        for (const { backend, percent } of members) {
          const o = backend.origin;
          const value = round4(total > 0 ? (percent / total) * 100 : 100 / members.length);
          const key = `${g.kind} ${o.namespace}/${o.deployment}/${o.predictor}`;
          const seen = byKey.get(key);
          if (seen === undefined) byKey.set(key, { labels: [o.namespace, o.deployment, o.predictor, g.kind], value });
          else if (seen !== null && seen.value !== value) byKey.set(key, null);
        }
      }
    }
    const out = new Map<string, GaugeSeries>();
    for (const [key, s] of byKey) if (s !== null) out.set(key, s);
    return out;
  };
}

/**
 * What the gauge reads of the EndpointSlice watcher (source/kubernetes/endpoints.ts): how many
 * endpoints a Service port has ready (undefined: unknown), and when some Services' endpoints changed.
 */
export interface WatchedEndpoints {
  endpointsOf(service: string, namespace: string, port: 'http' | 'grpc'): { readonly length: number } | undefined;
  onChange(listener: (services: ReadonlySet<string>) => void): () => void;
}

/** namespace, deployment, predictor, kind → ready endpoints of its Service; undefined while neither the table nor any endpoint changed. */
export function readyEndpointCounts(table: () => RouteTable, endpoints: WatchedEndpoints): () => ReadonlyMap<string, GaugeSeries> | undefined {
  let last: RouteTable | undefined;
  let changed = true;
  endpoints.onChange(() => (changed = true));
  return () => {
    const t = table();
    if (t === last && !changed) return undefined;
    last = t;
    changed = false;
    const out = new Map<string, GaugeSeries>();
    for (const g of t.groups) {
      for (const [members, kind] of [
        [g.members, 'primary'],
        [g.mirrors, 'shadow'],
      ] as const) {
        for (const { backend } of members) {
          const svc = backend.upstream.service;
          if (svc?.portName === undefined) continue;
          const ready = endpoints.endpointsOf(svc.name, svc.namespace, svc.portName)?.length;
          if (ready === undefined) continue;
          const o = backend.origin;
          const key = `${kind} ${o.namespace}/${o.deployment}/${o.predictor}`;
          const seen = out.get(key);
          if (seen === undefined || ready < seen.value) out.set(key, { labels: [o.namespace, o.deployment, o.predictor, kind], value: ready });
        }
      }
    }
    return out;
  };
}
