/**
 * The endpoints ejected now, from every process's `seldon_gateway_upstream_endpoint_ejected_until_seconds`
 * (upstream/health-reports.ts sets it, removes it when the endpoint is back): what /routes lists per
 * deployment. Each worker ejects on its own: an endpoint out in any worker is listed once, with the
 * latest time it is back and how many workers have it out.
 */
import { EJECTED_UNTIL_METRIC } from './metrics.js';
import type { MetricsJson } from './observed.js';

export interface EjectedEndpointJson {
  readonly predictor: string;
  readonly address: string;
  readonly reason: string;
  /** When it is back (ISO 8601). */
  readonly until: string;
  /** Workers that have it out. */
  readonly workers: number;
}

export const EJECTION_METRICS = [EJECTED_UNTIL_METRIC] as const;

/** Gathered metrics (one entry per process) → the ejected endpoints of each deployment, keyed `ns/name`. */
export function ejectedEndpoints(gathered: readonly MetricsJson[], nowMs = Date.now()): Map<string, EjectedEndpointJson[]> {
  const byEndpoint = new Map<string, { deployment: string; predictor: string; address: string; reason: string; until: number; workers: number }>();
  for (const process of gathered) {
    for (const m of process) {
      if (m.name !== EJECTED_UNTIL_METRIC) continue;
      for (const v of m.values) {
        const l = v.labels;
        if (v.value * 1000 <= nowMs) continue;
        const key = `${l.namespace}/${l.deployment}/${l.predictor}/${l.address}`;
        const seen = byEndpoint.get(key);
        if (seen === undefined)
          byEndpoint.set(key, { deployment: `${l.namespace}/${l.deployment}`, predictor: String(l.predictor), address: String(l.address), reason: String(l.reason), until: v.value, workers: 1 });
        else {
          seen.workers++;
          if (v.value > seen.until) Object.assign(seen, { until: v.value, reason: String(l.reason) });
        }
      }
    }
  }
  const out = new Map<string, EjectedEndpointJson[]>();
  for (const e of byEndpoint.values()) {
    let list = out.get(e.deployment);
    if (list === undefined) out.set(e.deployment, (list = []));
    list.push({ predictor: e.predictor, address: e.address, reason: e.reason, until: new Date(e.until * 1000).toISOString(), workers: e.workers });
  }
  return out;
}
