/**
 * The flow stage: the last step before a routed request is forwarded (after match, CORS, the gate
 * and steering's decision), for REST and gRPC alike. A request to a backend without a flow policy
 * goes straight on (one null check). One with a policy is admitted by the controller
 * (gateway/flow/controller.ts): forwarded now or once a slot frees, holding its slot until its
 * exchange settles, or refused with the same words in both protocols:
 *
 * - REST: `503` with `x-envoy-overloaded: true`, `Retry-After: <s>` and the JSON error body of
 *   reason `OVERLOADED` (edge/errors.ts);
 * - gRPC: trailers-only `UNAVAILABLE` with that message, `x-envoy-overloaded: true` and `retry-after`.
 *
 * A refusal reaches no model and counts nowhere but `seldon_gateway_flow_refused_total`: not in
 * the request counters rollouts read, no bandit token or credit (steering's effects are committed
 * only by forward).
 */
import type { ServerHttp2Stream, IncomingHttpHeaders } from 'node:http2';
import type { Backend } from '../../routing/types.js';
import type { RestRequest, RestResponse } from '../edge/exchange.js';
import { sendError } from '../edge/http-answer.js';
import { GrpcStatus } from '../edge/errors.js';
import { answerTrailersOnly } from '../grpc/answer.js';
import { parseGrpcTimeout } from '../grpc/timeout.js';
import type { FlowController, FlowExchange, FlowRefusal, FlowSlot } from './controller.js';

/** The headers of a flow refusal, REST and gRPC. */
export function refusalHeaders(r: FlowRefusal): Record<string, string> {
  return { 'x-envoy-overloaded': 'true', 'retry-after': String(r.retryAfterS) };
}

class RestFlowExchange implements FlowExchange {
  constructor(
    readonly backend: Backend,
    private readonly req: RestRequest,
    private readonly res: RestResponse,
    private readonly go: (slot: FlowSlot) => void,
  ) {}
  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return Array.isArray(v) ? v.join(',') : v;
  }
  deadlineMs(): number {
    return Infinity;
  }
  onGone(listener: () => void): void {
    this.res.once('close', listener);
  }
  refuse(r: FlowRefusal): void {
    sendError(this.req, this.res, 503, 'OVERLOADED', r.message, this.req.complete ? refusalHeaders(r) : { ...refusalHeaders(r), connection: 'close' });
  }
  forward(slot: FlowSlot): void {
    if (this.res.destroyed || this.res.writableEnded) {
      slot.release(false);
      return;
    }
    this.go(slot);
  }
}

class GrpcFlowExchange implements FlowExchange {
  constructor(
    readonly backend: Backend,
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    /** When the call arrived (performance.now() ms): its grpc-timeout runs from then. */
    private readonly since: number,
    private readonly go: (slot: FlowSlot) => void,
  ) {}
  header(name: string): string | undefined {
    const v = this.headers[name];
    return Array.isArray(v) ? v.join(',') : v;
  }
  deadlineMs(now: number): number {
    const ms = parseGrpcTimeout(this.header('grpc-timeout'));
    return ms === undefined ? Infinity : ms - (now - this.since);
  }
  onGone(listener: () => void): void {
    this.stream.once('close', listener);
  }
  refuse(r: FlowRefusal): void {
    answerTrailersOnly(this.stream, GrpcStatus.UNAVAILABLE, r.message, refusalHeaders(r));
  }
  forward(slot: FlowSlot): void {
    if (this.stream.destroyed || this.stream.closed) {
      slot.release(false);
      return;
    }
    this.go(slot);
  }
}

/** REST, to a backend with a flow policy (the caller checks `backend.flow !== null`: others pay nothing): `go` sends it with its slot. */
export function restFlowStage(flow: FlowController, backend: Backend, req: RestRequest, res: RestResponse, go: (slot: FlowSlot) => void): void {
  flow.admit(new RestFlowExchange(backend, req, res, go));
}

/** gRPC: as `restFlowStage`, for a call on `stream` that arrived at `since`. */
export function grpcFlowStage(flow: FlowController, backend: Backend, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, since: number, go: (slot: FlowSlot) => void): void {
  flow.admit(new GrpcFlowExchange(backend, stream, headers, since, go));
}
