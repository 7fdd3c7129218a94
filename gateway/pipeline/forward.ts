/**
 * Forward: the request's forward begins (its protocol's codec, rest/forwarded-exchange.ts or grpc/call.ts,
 * is the request itself), which runs its attempts. The last stage: once the upstream's breaker admits
 * the request, the forwarding core commits what steering decided (`PipelineRequest.commit`). A Mapping's hashing load balancer reads the
 * request's key here (pipeline/balance-key.ts).
 */
import { hashRequest } from './balance-key.js';
import type { PipelineRequest } from './request.js';
import type { Stage } from './stage.js';

export class ForwardStage implements Stage {
  run(r: PipelineRequest): void {
    // A Mapping that hashes its upstream's pick (ring_hash, maglev) reads its key once, for every attempt.
    const mapping = r.routed!.backend.mapping;
    if (mapping !== null) {
      const lb = mapping.loadBalancer;
      if (lb !== null && (lb.policy === 'ring_hash' || lb.policy === 'maglev')) hashRequest(r, lb.hashOn);
    }
    r.forward();
  }
}
