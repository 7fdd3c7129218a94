/**
 * The REST proxy: each request (HTTP/1.1, or HTTP/2 through rest/h2.ts) becomes a
 * `RestPipelineRequest` (rest/rest-request.ts) and runs the request pipeline
 * (gateway/pipeline/chain.ts: match, sticky, CORS, redirect, gate, steer, flow, forward); a forwarded request
 * is proxied by its exchange (rest/forwarded-exchange.ts) over a pooled keep-alive connection
 * (upstream/http1-client.ts, raw headers), its answer streamed back.
 *
 * What stays here is what every exchange shares: draining, how upstreams are named in error
 * answers, the bounded failure and bug logs, and the last resort that keeps a thrown error from
 * ending the process.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { GatewayReason } from '../edge/errors.js';
import type { RestRequest, RestResponse } from '../edge/rest-exchange.js';
import { sendError } from '../edge/http-answer.js';
import type { Gatekeeper } from '../auth/gate.js';
import { LogBudget } from '../observe/log-budget.js';
import { requestPipeline } from '../pipeline/chain.js';
import type { FallbackDeps } from '../pipeline/fallback.js';
import type { Stage } from '../pipeline/stage.js';
import type { UpstreamPool } from '../upstream/pools.js';
import type { Backend, Picker } from '../../routing/types.js';
import type { LiveTable } from '../../routing/table/live.js';
import type { StickyKeys } from '../steer/sticky-keys.js';
import type { BanditEdge } from '../steer/bandit-edge.js';
import type { ExchangeDeps } from './exchange-deps.js';
import type { FlowController } from '../flow/controller.js';
import { Exchange } from './forwarded-exchange.js';
import { Timeouts } from '../upstream/timeout-lists.js';
import { REAL_CLOCK } from '../upstream/clock.js';
import type { IpFilter } from '../pipeline/ip-policy.js';
import type { EdgeRules } from '../../routing/emissary/edge-rules.js';

export interface RestProxyDeps extends ExchangeDeps {
  readonly state: LiveTable;
  readonly picker: Picker;
  /** With endpoint routing: members without a ready endpoint leave the weighted pick. */
  readonly eligible?: ((backend: Backend) => boolean) | undefined;
  /** public: error answers name the deployment and reason only; internal: upstream addresses and causes too. */
  readonly errorDetail?: 'public' | 'internal';
  readonly log?: Logger | undefined;
  /** Auth and rate limits, for routes that have them (`backend.gate`), and the OAuth front end. */
  readonly gate?: Gatekeeper | undefined;
  /** Whether a peer may set X-Forwarded-For/-Proto (--trusted-proxies); default: none may. */
  readonly trusts?: ((socket: Socket) => boolean) | undefined;
  /** Sticky assignment's keys (gateway/steer/sticky-keys.ts); without them sticky cookies are neither read nor set. */
  readonly sticky?: StickyKeys | undefined;
  /** Bandits: tokens on answers, feedback to its arm (gateway/steer/bandit-edge.ts). */
  readonly bandits?: BanditEdge | undefined;
  /** Flow control (gateway/flow/), for backends with a `seldon.io/gateway-flow` policy. */
  readonly flow?: FlowController | undefined;
  /** Fallbacks (pipeline/fallback.ts), with the REST upstreams' `unready`. */
  readonly fallback?: FallbackDeps | undefined;
  /** The ambassador Module's ip_allow / ip_deny (pipeline/ip.ts); undefined: no such stage. */
  readonly ipFilter?: IpFilter | undefined;
  /** The ambassador Module's edge keys (routing/emissary/edge-rules.ts); undefined: none of their code runs. */
  readonly rules?: EdgeRules | undefined;
}

const TRUST_NONE = (): boolean => false;

export class RestProxy {
  private shuttingDown = false;
  /** --error-detail internal: error answers also name upstream addresses and causes. */
  readonly internalDetail: boolean;
  /** Whether a peer may set X-Forwarded-For/-Proto (--trusted-proxies). */
  readonly trusts: (socket: Socket) => boolean;
  /** The ambassador Module's edge keys (routing/emissary/edge-rules.ts); undefined without them. */
  readonly rules: EdgeRules | undefined;

  /** The request pipeline (gateway/pipeline/chain.ts), REST's instance. */
  private readonly pipeline: Stage;
  /** Every exchange's route timeout, in a list per duration. */
  readonly timeouts: Timeouts;

  constructor(readonly deps: RestProxyDeps) {
    this.timeouts = new Timeouts(deps.clock ?? REAL_CLOCK);
    this.internalDetail = deps.errorDetail === 'internal';
    this.trusts = deps.trusts ?? TRUST_NONE;
    this.rules = deps.rules;
    this.pipeline = requestPipeline(deps);
  }

  /** Shutting down: responses carry `connection: close`. */
  get draining(): boolean {
    return this.shuttingDown;
  }

  /** From now on, answers close their connection (graceful shutdown). */
  drain(): void {
    this.shuttingDown = true;
  }

  /** Upstream failures and caught bugs can repeat at request rate: their log lines are bounded, as gRPC's are. */
  private readonly failureLog = new LogBudget();
  private readonly bugLog = new LogBudget();

  /** What error answers leave out goes to the log (bounded; the skipped count rides on the next line). */
  upstreamFailure(up: UpstreamPool, backend: Backend, reason: GatewayReason, cause: string | undefined): void {
    const log = this.deps.log;
    const skipped = log === undefined ? undefined : this.failureLog.take();
    if (skipped === undefined) return;
    const o = backend.origin;
    // The fields gRPC's failures are logged with (grpc/call-context.ts): the deployment as ns/name, the backend beside it.
    log!.warn(
      { protocol: 'rest', deployment: `${o.namespace}/${o.deployment}`, backend: backend.id, upstream: up.name, reason, cause, ...(skipped ? { notLogged: skipped } : {}) },
      'upstream failure',
    );
  }

  /** Something inside the gateway failed a request: counted and logged, never a process exit. */
  internalError(where: string, err: Error, backend?: Backend): void {
    const o = backend?.origin;
    this.deps.metrics.internalErrors.labels('rest', o?.namespace ?? '', o?.deployment ?? '').inc();
    const skipped = this.deps.log === undefined ? undefined : this.bugLog.take();
    if (skipped === undefined) return;
    this.deps.log!.error(
      {
        protocol: 'rest',
        where,
        deployment: o ? `${o.namespace}/${o.deployment}` : undefined,
        backend: backend?.id,
        err: { message: err.message, stack: err.stack },
        ...(skipped ? { notLogged: skipped } : {}),
      },
      'unexpected error while handling a REST request: the request fails, the gateway keeps serving',
    );
  }

  /** Last resort: nothing a request does may throw out of the proxy and end the process. */
  handle(req: RestRequest, res: RestResponse): void {
    this.run(req, res, false);
  }

  /** The OAuth front end (`/api/v0.1/*`, `/api/v1.0/*` with a bearer token while it is active): the gate routes it. */
  frontEnd(req: RestRequest, res: RestResponse): void {
    this.run(req, res, this.deps.gate !== undefined);
  }

  private run(req: RestRequest, res: RestResponse, frontEnd: boolean): void {
    try {
      this.pipeline.run(new Exchange(this, req, res, req.arrivedAt ?? performance.now(), frontEnd));
    } catch (err) {
      this.internalError('request', err as Error);
      sendError(req, res, 502, 'INTERNAL_ERROR', 'the gateway failed to handle this request', { connection: 'close' });
    }
  }
}
