/**
 * The route table as two gauges the alert rules need beside the traffic counters, computed when
 * metrics are read (computed-series.ts `ComputedSeries`), never on a request:
 *
 * - `routeWeights`: each predictor's configured percent in its deployment's weighted split, so
 *   that "canary split drift" compares the observed split with what was asked for. Only splits of
 *   two or more members (a lone member always gets everything); when one predictor has different
 *   percents in two splits of one protocol (say a header route beside the weighted one), its
 *   weight is ambiguous and left out. Recomputed only when the table is another one.
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
import type { RouteTable } from '../../routing/types.js';

/** namespace, deployment, predictor, protocol → percent, for the table `table()` returns; undefined while it is the same table. */
export function routeWeights(table: () => RouteTable): () => ReadonlyMap<string, GaugeSeries> | undefined {
  let last: RouteTable | undefined;
  return () => {
    const t = table();
    if (t === last) return undefined;
    last = t;
    const byKey = new Map<string, GaugeSeries | null>();
    for (const g of t.groups) {
      if (g.members.length < 2) continue;
      for (const { backend, percent } of g.members) {
        const o = backend.origin;
        const key = `${g.kind} ${o.namespace}/${o.deployment}/${o.predictor}`;
        const seen = byKey.get(key);
        if (seen === undefined) byKey.set(key, { labels: [o.namespace, o.deployment, o.predictor, g.kind], value: percent });
        else if (seen !== null && seen.value !== percent) byKey.set(key, null);
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
