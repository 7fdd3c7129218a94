/**
 * `seldon_gateway_fallbacks_total{namespace,deployment,predictor,protocol,reason,to,result}`
 * (docs/routing.md#fallback-models): requests a predictor's fallback took, by the predictor that fell
 * back, why, where they went (`predictor/<name>`, `deployment/<ns>/<name>`, `target/<NAME>`) and
 * what came of it: `answered` (forwarded to the fallback, whatever it answered), `refused` (the
 * fallback's own refusal, or it had no member to send it to), `skipped` (`error` with a body the
 * gateway did not keep, so it could not go again). Counted only where a fallback is
 * configured; its series go with their deployment (observe/series-reaper.ts).
 */
import { Counter, type Registry } from 'prom-client';
import type { FallbackReason } from '../../routing/fallback/config.js';
import type { Backend, Protocol } from '../../routing/types.js';

export type FallbackResult = 'answered' | 'refused' | 'skipped';

export class FallbackMetrics {
  readonly fallbacks: Counter;

  constructor(registry: Registry) {
    this.fallbacks = new Counter({
      name: 'seldon_gateway_fallbacks_total',
      help: "Requests sent to a predictor's fallback (seldon.io/gateway-fallback), by the predictor that fell back, why (unavailable, overload, cold, error), where to, and whether the fallback took it (answered), refused it, or it was skipped (error with a body too large to keep).",
      labelNames: ['namespace', 'deployment', 'predictor', 'protocol', 'reason', 'to', 'result'],
      registers: [registry],
    });
  }

  /** One request of `from` fell back for `reason`, with this result. */
  count(from: Backend, protocol: Protocol, reason: FallbackReason, result: FallbackResult): void {
    const o = from.origin;
    this.fallbacks.labels(o.namespace, o.deployment, o.predictor, protocol, reason, from.fallback!.label, result).inc();
  }
}
