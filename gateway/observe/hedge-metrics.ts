/**
 * Hedging's metrics (docs/routing.md#hedged-requests), counted by the forwarding core
 * (gateway/forward/hedge.ts) on hedged routes only: a route without the annotation never reaches
 * this file.
 *
 * - `seldon_gateway_hedges_total{namespace,deployment,predictor,protocol,result}`: each hedge sent,
 *   once its request ended: `won` (the client got its answer) or `lost`; and each one that was due
 *   and not sent, by why: `budget` (none left, routing/hedge/budget.ts), `no_endpoint` (no other
 *   ready endpoint), `body` (larger than the gateway keeps, or still streaming), `flow` (flow
 *   control had no free slot: a hedge never waits for one).
 * - `seldon_gateway_hedge_delay_seconds{namespace,deployment,predictor,protocol}`: the delay in force,
 *   set each time an upstream computes it (at most every 100 ms while its requests come, never per
 *   request); workers' values averaged.
 *
 * Both are the series reaper's (observe/series-reaper.ts) once their predictor leaves the table.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { HedgeHeld } from '../../routing/hedge/delay.js';
import type { Backend, Protocol } from '../../routing/types.js';

export type HedgeResult = 'won' | 'lost' | HedgeHeld;

export class HedgeMetrics {
  readonly hedges: Counter;
  readonly delay: Gauge;

  constructor(registry: Registry) {
    this.hedges = new Counter({
      name: 'seldon_gateway_hedges_total',
      help: 'Hedged requests (seldon.io/gateway-hedge): hedges sent, by whether the client got their answer (won) or the first attempt’s (lost), and hedges due but not sent, by why: budget (the extra attempts allowed were spent), no_endpoint (no other ready endpoint), body (larger than the gateway keeps, or still streaming), flow (flow control had no free slot).',
      labelNames: ['namespace', 'deployment', 'predictor', 'protocol', 'result'],
      registers: [registry],
    });
    this.delay = new Gauge({
      name: 'seldon_gateway_hedge_delay_seconds',
      help: "The delay after which a hedged predictor's request gets its next attempt, as last computed from its recent latency (workers averaged).",
      labelNames: ['namespace', 'deployment', 'predictor', 'protocol'],
      aggregator: 'average',
      registers: [registry],
    });
  }

  /** `n` hedges of `b`'s requests with this result. */
  count(b: Backend, protocol: Protocol, result: HedgeResult, n = 1): void {
    const o = b.origin;
    this.hedges.labels(o.namespace, o.deployment, o.predictor, protocol, result).inc(n);
  }

  /** The delay in force for `b` (ms); null: none yet (its series goes). */
  delayIs(b: Backend, protocol: Protocol, ms: number | null): void {
    const o = b.origin;
    if (ms === null) this.delay.remove(o.namespace, o.deployment, o.predictor, protocol);
    else this.delay.labels(o.namespace, o.deployment, o.predictor, protocol).set(ms / 1000);
  }
}
