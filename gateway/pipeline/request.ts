/**
 * One request on its way through the pipeline (gateway/pipeline/chain.ts), whatever its protocol:
 * what the stages read and decide, and the few things only the protocol can do, which each
 * adapter implements (rest/rest-request.ts for HTTP/1.1 and HTTP/2 REST, grpc/grpc-request.ts for
 * gRPC). A stage reads and sets the fields and calls these methods; it never asks which protocol
 * it runs in.
 *
 * It is also what `match` reads (a `RouteRequest`, with `sticky` a method, no closure), and the
 * base of the forwarding core (forward/forwarded.ts), which reads the stages' decisions (answer
 * headers, token, flow slot, fallback) as its own fields: the proxy makes one object per request,
 * its protocol's codec (rest/forwarded-exchange.ts, grpc/call.ts), from arrival to finish.
 */
import type { Allow, Deny, Gatekeeper, PendingVerdict } from '../auth/gate.js';
import type { FlowSlot } from '../flow/controller.js';
import type { GatewayReason } from '../edge/errors.js';
import type { BanditEdge, FeedbackCredit, FeedbackReading } from '../steer/bandit-edge.js';
import type { StickyKeys } from '../steer/sticky-keys.js';
import type { StickySpec } from '../../routing/steering/sticky.js';
import type { Redirect } from '../../routing/emissary/mapping-policy.js';
import type { FallbackReason } from '../../routing/fallback/config.js';
import { authEditPlan, editedHeader, type AuthEditPlan, type AuthEdits } from '../../routing/policies/auth-edits.js';
import type { Backend, CorsPolicy, HeaderGetter, NotRouted, Protocol, RouteRequest, RouteTable, Routed } from '../../routing/types.js';

/** A refusal of the gateway's own, which each protocol renders (REST: the JSON error; gRPC: a trailers-only status). */
export interface Refusal {
  /** Which check refused it (flow-control, gate), for the decision record of a logged request. */
  readonly check: string;
  readonly status: number;
  readonly reason: GatewayReason;
  readonly message: string;
  /** Extra REST headers (`retry-after`); gRPC metadata. */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** A request sent to its predictor's fallback (docs/routing.md#fallback-models). */
export interface FellBack {
  readonly reason: FallbackReason;
  /** The predictor that fell back. */
  readonly from: Backend;
  /** The route timeout's remainder when it fell back (ms, 0: none): the fallback's own. */
  readonly budgetMs: number;
}

/** A request's body as the forwarding core kept it for retries: REST's whole body (null: none), gRPC's DATA. */
export type KeptBody = Buffer | null | readonly Buffer[];

/** Where a request goes once forwarding found its predictor cannot answer it (pipeline/fallback.ts `Fallbacks`). */
export interface FallbackSender {
  /** The send to the fallback, to run once the failed exchange is settled; undefined when it does not fall back (counted). `kept` undefined: its body was not kept. */
  afterError(r: PipelineRequest, kept: KeptBody | undefined): (() => void) | undefined;
  /** The send to the fallback of a request its upstream's breaker refused (`unavailable`), or undefined. */
  afterOverflow(r: PipelineRequest): (() => void) | undefined;
}

export abstract class PipelineRequest implements RouteRequest {
  /** The table it was matched on (the match stage's read of the route state). */
  table: RouteTable | undefined;
  /** Where it goes: set by the match stage, replaced by the gate (the front end's own match) and steering (a feedback's arm). */
  routed: Routed | undefined;
  /** REST: a sticky cookie minted while matching, to be set on the answer. */
  minted: string | undefined;
  /** A Mapping's hashing load balancer: the hash of this request's key (pipeline/balance-key.ts); undefined: not hashed. */
  balanceHash: number | undefined;
  /** Headers added to the model's answer, as name, value pairs (a sticky cookie, the auth service's, a hash cookie). */
  answerHeaders: readonly string[] | undefined;
  /** A bandit prediction's attribution token, carried by its answer (steer/answer-tag.ts). */
  token: string | undefined;
  /** A bandit feedback's effect, decided by steering and applied by `commit` once it is forwarded. */
  credit: FeedbackCredit | undefined;
  /** Where `credit` is applied. */
  bandits: BanditEdge | undefined;
  /** Its slot under flow control (pipeline/flow.ts): how long it waited for it. */
  flow: FlowSlot | undefined;
  /** Match found its predictor cannot take it now and its fallback covers why (pipeline/fallback.ts decides, after the gate). */
  fallbackDue: FallbackReason | undefined;
  /** It was sent to its predictor's fallback, and why (pipeline/fallback.ts): at most once. */
  fellBack: FellBack | undefined;
  /** Its predictor has a fallback: where a failed final attempt may go (set by match only then). */
  fallbacks: FallbackSender | undefined;
  /** The verified JWT's claims (set by the gate when its route checks one): a payload log samples by them. */
  claims: Readonly<Record<string, unknown>> | undefined;
  /** Told once when the forwarded request is over (`onEnded`). */
  private endListener: ((answered: boolean) => void) | undefined;
  /** The gate's header edits (the auth service's, then a JWT's claim headers): what the model receives. */
  authEdits: AuthEdits | undefined;
  /** Their plan, which the stages after the gate read the headers through. */
  private edits: AuthEditPlan | undefined;

  constructor(
    readonly kind: Protocol,
    readonly method: string,
    /** The raw request target, as `match` reads it. */
    readonly path: string,
    readonly host: string,
    /** When it reached the gateway (performance.now() ms): its duration counts from then. */
    readonly since: number,
    private readonly stickyKeys: StickyKeys | undefined,
    /**
     * The OAuth front end's (REST `/api/v0.1/*`, `/api/v1.0/*` while it is on; a gRPC call with
     * `oauth_token` and no route, found by the match stage): the gate routes it by its token.
     */
    public frontEnd: boolean,
  ) {}

  /**
   * A header as the stages read it (routing/types.ts HeaderGetter: every field of the name, joined
   * with `,`): after the gate, with its edits applied as the model receives them (the auth
   * service's headers set, appended or removed; a JWT's claim headers replacing the client's).
   */
  header(name: string): string | undefined {
    const e = this.edits;
    return e === undefined ? this.readHeader(name) : editedHeader(e, name, (n) => this.readHeader(n));
  }

  /** The gate's edits: what the stages after it read, and what the model receives (pipeline/gate.ts). */
  editHeaders(edits: AuthEdits): void {
    this.authEdits = edits;
    this.edits = authEditPlan(edits);
  }

  /** Its point under a sticky group's spec (steer/sticky-keys.ts); a REST request without a valid cookie gets one minted. */
  sticky(spec: StickySpec): number | undefined {
    const keys = this.stickyKeys;
    if (keys === undefined) return undefined;
    const header: HeaderGetter = (name) => this.header(name);
    return this.kind === 'rest' ? keys.point(spec, header, true, this) : keys.point(spec, header, false);
  }

  /** Apply the steering stage's decided effects: called once, when the request is forwarded (after every stage that can refuse). */
  commit(): void {
    const credit = this.credit;
    if (credit === undefined) return;
    this.credit = undefined;
    this.bandits!.commit(credit);
  }

  /**
   * Be told once when this request, forwarded, is over: its answer ended, it failed, the client
   * left, or the upstream's breaker refused it. For a stage that holds something for it until then
   * (flow control's slot); one listener. `answered`: the model answered it (only then does its time
   * say how fast the model is).
   */
  onEnded(listener: (answered: boolean) => void): void {
    this.endListener = listener;
  }

  /** Its forward is over for the model (told by the forwarding core; only the first call counts: it may tell the model's end, then its own). */
  ended(answered: boolean): void {
    const listener = this.endListener;
    if (listener === undefined) return;
    this.endListener = undefined;
    listener(answered);
  }

  /**
   * The forwarded request's final attempt failed in a way its predictor's fallback covers (`error`,
   * forward/forwarded.ts): the send to the fallback, to run once this exchange is settled, or undefined.
   */
  fallBackOnError(kept: KeptBody | undefined): (() => void) | undefined {
    return this.fallbacks?.afterError(this, kept);
  }

  /** The upstream's breaker refused it (forward/forwarded.ts `admit`): the send to its predictor's fallback, or undefined. */
  fallBackUnadmitted(): (() => void) | undefined {
    return this.fallbacks?.afterOverflow(this);
  }

  // ---- what the protocol does (the adapters) ----

  /** The client connection's address (a Mapping's `source_ip` hash). */
  abstract clientAddress(): string | undefined;
  /** Sent again (to a fallback) with the body kept of it: its next forward sends that. */
  abstract keepBody(kept: KeptBody): void;

  /** A header as the client sent it (every field of the name, joined with `,`). */
  protected abstract readHeader(name: string): string | undefined;
  /** The header fields as they arrived, name, value, name, value… (the Module's edge rules read the names). */
  abstract rawHeaderFields(): readonly string[];

  /** The peer is a trusted proxy (--trusted-proxies): its X-Forwarded-For names the client. */
  abstract peerTrusted(): boolean;

  /** The client connection's scheme (TLS: https). */
  abstract connectionScheme(): 'http' | 'https';

  /** Answered with a 301 to `location` (the Module's x_forwarded_proto_redirect), counted as unrouted. */
  abstract movedToHttps(location: string): void;

  /** No route matched: is it the OAuth front end's call (gRPC `oauth_token` metadata), which the gate routes? */
  abstract frontEndCall(gate: Gatekeeper | undefined): boolean;

  /** No route: the refusal, counted as unrouted. */
  abstract unrouted(d: NotRouted): void;

  /** CORS (REST only, its rule): an allowed preflight is answered here; true if it was. */
  abstract corsAnswered(policy: CorsPolicy): boolean;

  /** Its route is a redirect Mapping's (pipeline/redirect.ts): answered with it, counted and logged as the gateway's own answer. */
  abstract redirected(r: Redirect): void;

  /** The gate's verdict on this request (auth/gate.ts), now or once its stores have answered. */
  abstract askGate(gate: Gatekeeper): PendingVerdict;

  /** Allowed by the gate: the credential goes, the auth service's edits apply (`v.decision` is already `routed`). */
  abstract allowed(v: Allow): void;

  /** Refused by the gate, as the gate's verdict says. */
  abstract denied(v: Deny): void;

  /** Refused by the gateway itself (no gate in this process; flow control). */
  abstract refuse(r: Refusal): void;

  /** The client went away (while a stage waited): nothing more is done for it. */
  abstract gone(): boolean;

  /** Call `listener` once the client leaves (or the request's answer ends): flow control frees a waiting request's place. */
  abstract onGone(listener: () => void): void;

  /** Ms left at `now` before the client's own deadline (gRPC's grpc-timeout); Infinity without one. */
  deadlineMs(_now: number): number {
    return Infinity;
  }

  /** A bandit's feedback (REST `…/feedback`, gRPC `SendFeedback`)? */
  abstract isFeedback(): boolean;

  /** Read the feedback's body for its token (up to steer's FEEDBACK_MAX_BYTES); null when it has none or is too large. */
  abstract readFeedback(done: (reading: FeedbackReading | null) => void): void;

  /** Forward it: its forward begins, on this object (the forwarding core calls `commit` once the upstream's breaker admitted it). */
  abstract forward(): void;

  /** Something failed inside the gateway while a stage ran asynchronously: the request fails (502 / INTERNAL), never the process. */
  abstract failed(err: unknown): void;
}
