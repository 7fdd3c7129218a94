/**
 * Flow control (docs/flow-control.md): the last stage before forward, for REST and gRPC alike. A
 * request to a backend without a `seldon.io/gateway-flow` policy passes with one property check.
 * One with a policy is admitted by the controller (gateway/flow/controller.ts): forwarded now or
 * once a slot frees, holding its slot until the forwarded request is over (`PipelineRequest.onEnded`:
 * its exchange or call settles, the breaker refuses it, the forward fails), or
 * refused: `503 OVERLOADED` with `x-envoy-overloaded: true` and `Retry-After` (REST), trailers-only
 * `UNAVAILABLE` with the same words and metadata (gRPC). A refusal reaches no model and is counted
 * as the request's answer but never as a predictor's outcome (`GatewayMetrics.refused`); steering's
 * effects are committed only by forward, so it spends no bandit credit.
 */
import type { FlowController, FlowExchange, FlowRefusal, FlowSlot } from '../flow/controller.js';
import type { Backend } from '../../routing/types.js';
import type { PipelineRequest } from './request.js';
import { continueWith, type Stage } from './stage.js';

/** A pipeline request as the flow controller sees it. */
class FlowRequest implements FlowExchange {
  readonly backend: Backend;
  constructor(
    private readonly r: PipelineRequest,
    private readonly next: Stage,
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
    r.onEnded((answered) => slot.release(answered));
    continueWith(this.next, r);
  }
}

export class FlowStage implements Stage {
  constructor(
    private readonly flow: FlowController | undefined,
    private readonly next: Stage,
  ) {}

  run(r: PipelineRequest): void {
    const flow = this.flow;
    if (flow === undefined || r.routed === undefined || r.routed.backend.flow === null) {
      this.next.run(r);
      return;
    }
    flow.admit(new FlowRequest(r, this.next));
  }
}
