/**
 * CORS (REST's rule, rest/cors.ts): on a route with a CORS policy, an allowed preflight is
 * answered here, before the gate (as Envoy's CORS filter precedes ext_authz); other requests go
 * on and get the policy's headers on their answer. gRPC has no such rule: its adapter answers none.
 */
import type { PipelineRequest } from './request.js';
import type { Stage } from './stage.js';

export class CorsStage implements Stage {
  constructor(private readonly next: Stage) {}

  run(r: PipelineRequest): void {
    const policy = r.routed?.backend.cors;
    if (policy != null && r.corsAnswered(policy)) return;
    this.next.run(r);
  }
}
