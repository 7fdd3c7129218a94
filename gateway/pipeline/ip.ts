/**
 * The ambassador Module's `ip_allow` / `ip_deny` (pipeline/ip-policy.ts), before anything else a request
 * meets, as Envoy's RBAC filter runs before the router: a request it refuses gets 403 and nothing
 * after it runs (no match, no count, no model). In the chain only when the gateway reads a Module
 * (--ambassador-module); without a policy in it, one property check.
 */
import type { IpFilter } from './ip-policy.js';
import type { PipelineRequest, Refusal } from './request.js';
import type { Stage } from './stage.js';

/** The refusal of a client the policy leaves out (an upgrade's too, rest/upgrade-exchange.ts). */
export const IP_REFUSAL: Refusal = { check: 'ip', status: 403, reason: 'FORBIDDEN', message: 'RBAC: access denied (ip_allow / ip_deny of the ambassador Module)' };

export class IpStage implements Stage {
  constructor(
    private readonly filter: IpFilter,
    private readonly next: Stage,
  ) {}

  run(r: PipelineRequest): void {
    const policy = this.filter.policy;
    if (policy !== undefined && !policy.admits(r.clientAddress(), r.peerTrusted(), r.header('x-forwarded-for'))) {
      r.refuse(IP_REFUSAL);
      return;
    }
    this.next.run(r);
  }
}
