/**
 * Where endpoint health's ejections are told (docs/routing.md#endpoint-health): counted
 * (`seldon_gateway_upstream_ejections_total`, `seldon_gateway_upstream_ejected_endpoints`), logged
 * once per ejection with the address and the reason, and handed to `posted` (a Warning Event on the
 * SeldonDeployment, rate-limited by its poster). One `HealthSettings` per upstream, labelled by the
 * first backend that names it.
 */
import type { Logger } from 'pino';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { Ejection } from '../../routing/health/endpoints.js';
import type { Backend } from '../../routing/types.js';
import type { UpstreamConfig } from '../config/upstream.js';
import type { Clock } from './clock.js';
import type { HealthSettings } from './endpoints.js';

/** An ejection as the control plane posts it (a Warning Event). */
export interface EjectionNotice {
  readonly namespace: string;
  readonly deployment: string;
  readonly predictor: string;
  readonly address: string;
  readonly message: string;
}

export function ejectionMessage(address: string, predictor: string, e: Ejection, now: number): string {
  const why =
    e.reason === 'local_origin'
      ? 'failed without an answer (refused, reset or timed out) too many times in a row'
      : `answered server errors on ${Math.round((e.rate ?? 0) * 100)}% of its recent requests where the other endpoints answered ${Math.round((e.peerRate ?? 0) * 100)}%`;
  return `endpoint ${address} of predictor ${predictor} ejected for ${Math.round((e.until - now) / 1000)} s: it ${why}`;
}

export function healthReporter(o: {
  readonly upstream: Pick<UpstreamConfig, 'outlierDetection' | 'outlier'>;
  readonly metrics: GatewayMetrics;
  readonly log?: Logger | undefined;
  readonly clock?: Clock | undefined;
  readonly posted?: ((notice: EjectionNotice) => void) | undefined;
}): (backend: Backend) => HealthSettings {
  const now = (): number => (o.clock ?? performance).now();
  return (backend) => {
    const { namespace, deployment, predictor } = backend.origin;
    /** Each endpoint ejected now, with its ejection: its series go when it is back or leaves (one owner: this upstream's settings). */
    const out = new Map<string, Ejection>();
    const over = (address: string): boolean => {
      const e = out.get(address);
      if (e === undefined) return false;
      out.delete(address);
      o.metrics.ejectedEndpoints.labels(namespace, deployment, predictor).dec();
      o.metrics.ejectedUntil.remove(namespace, deployment, predictor, address, e.reason);
      return true;
    };
    const outlier = backend.outlier;
    return {
      policy: outlier ? { ...o.upstream.outlier, ...outlier } : o.upstream.outlier,
      // The annotation decides when it is there (`off`: null; fields or `on`: on), else --outlier-detection.
      eject: outlier !== undefined ? outlier !== null : o.upstream.outlierDetection,
      clock: o.clock,
      ejected(address, e) {
        const t = now();
        // A new ejection of an address still counted out (its return not yet run) replaces the old one.
        over(address);
        o.metrics.ejections.labels(namespace, deployment, predictor, e.reason).inc();
        o.metrics.ejectedEndpoints.labels(namespace, deployment, predictor).inc();
        o.metrics.ejectedUntil.labels(namespace, deployment, predictor, address, e.reason).set(Math.round(Date.now() / 1000 + (e.until - t) / 1000));
        out.set(address, e);
        const message = ejectionMessage(address, predictor, e, t);
        o.log?.warn({ namespace, deployment, predictor, address, reason: e.reason, ejectedForMs: Math.round(e.until - t) }, message);
        o.posted?.({ namespace, deployment, predictor, address, message });
      },
      returned(address, e) {
        if (out.get(address) !== e) return;
        over(address);
        o.log?.info({ namespace, deployment, predictor, address }, `endpoint ${address} of predictor ${predictor} back from ejection, on probation`);
      },
      retired(address) {
        over(address);
      },
    };
  };
}
