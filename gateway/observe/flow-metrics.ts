/**
 * Flow control's metrics (docs/flow-control.md#seen-and-explained), computed from the controller's
 * state when metrics are read, never on a request. Every predictor under flow control has every
 * series, at 0 too (an alert needs the series to exist):
 *
 * - `seldon_gateway_flow_limit`, `seldon_gateway_flow_inflight`, `seldon_gateway_flow_queued`
 *   {namespace,deployment,predictor}: this process's limit (summed over workers: the gateway's),
 *   requests at the model, requests waiting (held ones while at zero included).
 * - `seldon_gateway_flow_refused_total{namespace,deployment,predictor,priority}`: requests flow
 *   control refused (at once, displaced, or timed out in the queue), by priority class.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { PRIORITIES } from '../../routing/flow/queue.js';
import type { MetricsJson } from './observed.js';

/** One predictor under flow control, as metrics and the admin page see it. */
export interface FlowStats {
  readonly namespace: string;
  readonly deployment: string;
  readonly predictor: string;
  readonly concurrency: number | 'adaptive';
  readonly limit: number;
  readonly inflight: number;
  readonly queued: number;
  /** Refusals since the start, by priority class (critical, standard, sheddable). */
  readonly refused: readonly number[];
}

export function registerFlowMetrics(registry: Registry, stats: () => readonly FlowStats[]): void {
  const labelNames = ['namespace', 'deployment', 'predictor'];
  const gauge = (name: string, help: string, value: (s: FlowStats) => number): void => {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of stats()) this.set({ namespace: s.namespace, deployment: s.deployment, predictor: s.predictor }, value(s));
      },
    });
  };
  gauge('seldon_gateway_flow_limit', 'Requests a predictor under flow control may have at its model at once (seldon.io/gateway-flow); 0 while it has no ready endpoint.', (s) => s.limit);
  gauge('seldon_gateway_flow_inflight', 'Requests under flow control sent to the model and not yet answered.', (s) => s.inflight);
  gauge('seldon_gateway_flow_queued', 'Requests waiting for a slot under flow control, including those held while the predictor has no ready endpoint.', (s) => s.queued);
  new Counter({
    name: 'seldon_gateway_flow_refused_total',
    help: 'Requests flow control refused with 503 OVERLOADED (at once, displaced by a higher priority, or timed out waiting), by priority class.',
    labelNames: [...labelNames, 'priority'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of stats()) {
        for (let p = 0; p < PRIORITIES.length; p++) {
          const labels = { namespace: s.namespace, deployment: s.deployment, predictor: s.predictor, priority: PRIORITIES[p]! };
          // inc(0) creates the series at 0.
          this.inc(labels, s.refused[p] ?? 0);
        }
      }
    },
  });
}

/** The flow metric names, for gathering them from every process. */
export const FLOW_METRICS = ['seldon_gateway_flow_limit', 'seldon_gateway_flow_inflight', 'seldon_gateway_flow_queued', 'seldon_gateway_flow_refused_total'] as const;

/** One protected predictor summed over the processes: what the admin page shows. */
export interface FlowView {
  limit: number;
  inflight: number;
  queued: number;
  /** By priority class: critical, standard, sheddable. */
  refused: [number, number, number];
}

/** Gathered flow metrics (one entry per process) → each predictor's view, keyed `ns/deployment/predictor`. */
export function flowViews(gathered: readonly MetricsJson[]): Map<string, FlowView> {
  const out = new Map<string, FlowView>();
  for (const process of gathered) {
    for (const m of process) {
      for (const v of m.values) {
        const l = v.labels;
        const key = `${l.namespace}/${l.deployment}/${l.predictor}`;
        let view = out.get(key);
        if (view === undefined) out.set(key, (view = { limit: 0, inflight: 0, queued: 0, refused: [0, 0, 0] }));
        if (m.name === 'seldon_gateway_flow_limit') view.limit += v.value;
        else if (m.name === 'seldon_gateway_flow_inflight') view.inflight += v.value;
        else if (m.name === 'seldon_gateway_flow_queued') view.queued += v.value;
        else {
          const p = PRIORITIES.indexOf(l.priority as (typeof PRIORITIES)[number]);
          if (p >= 0) view.refused[p] = view.refused[p]! + v.value;
        }
      }
    }
  }
  return out;
}
