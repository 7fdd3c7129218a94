/**
 * Flow control (docs/flow-control.md): the last stage before forward, for REST and gRPC alike. A
 * request to a backend without a `seldon.io/gateway-flow` policy passes with one property check.
 * One with a policy is admitted by the controller (gateway/flow/controller.ts): forwarded now or
 * once a slot frees, holding its slot until the forwarded request is over (`PipelineRequest.onEnded`:
 * its exchange or call settles, the breaker refuses it, the forward fails), or
 * refused: `503 OVERLOADED` with `x-envoy-overloaded: true` and `Retry-After` (REST), trailers-only
 * `UNAVAILABLE` with the same words and metadata (gRPC). A refusal reaches no model and is counted
 * as the request's answer but never as a predictor's outcome (`GatewayMetrics.refused`); steering's
 * effects are committed only by forward, so it spends no bandit credit. A predictor whose fallback
 * covers `overload` sends the request there instead of refusing it (pipeline/fallback.ts).
 */
import type { FlowController, FlowExchange, FlowRefusal, FlowSlot } from '../flow/controller.js';
import type { Backend } from '../../routing/types.js';
import type { PipelineRequest } from './request.js';
import type { Fallbacks } from './fallback.js';
import { continueWith, type Stage } from './stage.js';

/** A pipeline request as the flow controller sees it. */
class FlowRequest implements FlowExchange {
  readonly backend: Backend;
  constructor(
    private readonly r: PipelineRequest,
    private readonly next: Stage,
    private readonly fallbacks: Fallbacks | undefined,
  ) {
    this.backend = r.routed!.backend;
  }
  header(name: string): string | undefined {
    return this.r.header(name);
  }
  deadlineMs(now: number): number {
    return this.r.deadlineMs(now);
  }
  onGone(listener: () => void): void {
    this.r.onGone(listener);
  }
  refuse(f: FlowRefusal): void {
    const r = this.r;
    const fb = this.backend.fallback;
    // Overloaded with a fallback for it: sent there instead (pipeline/fallback.ts); a fallback's own refusal is the answer.
    if (fb !== null && fb.overload && f.clientDeadline !== true && !r.gone() && this.fallbacks?.reroute(r, 'overload') === true) return;
    this.fallbacks?.settled(r, false);
    if (f.clientDeadline === true) {
      r.refuse({ check: 'flow-control', status: 504, reason: 'UPSTREAM_TIMEOUT', message: f.message });
      return;
    }
    r.refuse({ check: 'flow-control', status: 503, reason: 'OVERLOADED', message: f.message, headers: { 'x-envoy-overloaded': 'true', 'retry-after': String(f.retryAfterS) } });
  }
  forward(slot: FlowSlot): void {
    const r = this.r;
    if (r.gone()) {
      slot.release(false);
      return;
    }
    r.flow = slot;
    this.fallbacks?.settled(r, true);
    r.onEnded((answered) => slot.release(answered));
    continueWith(this.next, r);
  }
}

export class FlowStage implements Stage {
  constructor(
    private readonly flow: FlowController | undefined,
    private readonly next: Stage,
    private readonly fallbacks?: Fallbacks | undefined,
  ) {}

  run(r: PipelineRequest): void {
    const flow = this.flow;
    if (flow === undefined || r.routed === undefined || r.routed.backend.flow === null) {
      this.next.run(r);
      return;
    }
    flow.admit(new FlowRequest(r, this.next, this.fallbacks));
  }
}
