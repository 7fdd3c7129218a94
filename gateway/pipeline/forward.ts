/**
 * Forward: the request goes to the proxy of its protocol (rest/forwarded-exchange.ts, grpc/call.ts), which
 * runs its attempts. The last stage: once the upstream's breaker admits the request, the exchange
 * commits what steering decided (`PipelineRequest.commit`).
 */
import type { PipelineRequest } from './request.js';
import type { Stage } from './stage.js';

export class ForwardStage implements Stage {
  run(r: PipelineRequest): void {
    r.forward();
  }
}
