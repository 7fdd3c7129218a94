/**
 * The request pipeline: the stages every request runs through, REST (HTTP/1.1 and HTTP/2) and
 * gRPC alike, in this order (docs/architecture.md#the-request-pipeline):
 *
 *   [escaped slashes] → [ip] → [https redirect] → match → sticky → CORS → redirect → gate → fallback → steer → flow control → forward
 *
 * (ip: the ambassador Module's ip_allow / ip_deny, in the chain only with --ambassador-module; escaped
 * slashes and https redirect: its reject_requests_with_escaped_slashes and x_forwarded_proto_redirect,
 * in the chain only when it sets them: pipeline/edge-rules.ts.)
 *
 * Each stage is built around the one after it (Traefik's `NewX(next)`); the order is this list
 * and nowhere else. A stage that refuses answers the request and stops it: nothing after it runs,
 * so nothing after it counts, credits or reaches a model. Steering only decides; its effects are
 * committed by forward (after the upstream's breaker admits the request), so every stage that can
 * refuse, flow control included, sits before them.
 *
 * Flow control (pipeline/flow.ts) sits between steer and forward: it may refuse
 * (`request.refuse({ status: 503, reason, message, headers })`) or hold the request and run `next`
 * later (`continueWith(next, request)` after checking `request.gone()`). It sees the final decision
 * (`request.routed`: a feedback's arm already chosen), nothing has been committed yet, and
 * `request.onEnded(release)` tells it once the forwarded request is over (answered, failed, the
 * client gone, the breaker's refusal), to free its slot.
 */
import type { BanditEdge } from '../steer/bandit-edge.js';
import type { FlowController } from '../flow/controller.js';
import { CorsStage } from './cors.js';
import { FallbackStage, Fallbacks } from './fallback.js';
import { FlowStage } from './flow.js';
import { IpStage } from './ip.js';
import { EscapedSlashStage, HttpsRedirectStage, UnderscoreHeaderStage } from './edge-rules.js';
import type { EdgeRules } from '../../routing/emissary/edge-rules.js';
import type { IpFilter } from './ip-policy.js';
import { ForwardStage } from './forward.js';
import { GateStage } from './gate.js';
import { MatchStage, RouteMatcher, type MatchDeps } from './match.js';
import { RedirectStage } from './redirect.js';
import { SteerStage } from './steer.js';
import { StickyStage } from './sticky-cookie.js';
import type { Stage } from './stage.js';

export interface PipelineDeps extends MatchDeps {
  /** Bandits: tokens on answers, feedback credited to its arm (steer/bandit-edge.ts). */
  readonly bandits?: BanditEdge | undefined;
  /** Flow control of backends with a `seldon.io/gateway-flow` policy (gateway/flow/). */
  readonly flow?: FlowController | undefined;
  /** The Module's ip_allow / ip_deny (pipeline/ip-policy.ts); undefined without --ambassador-module (no stage at all). */
  readonly ipFilter?: IpFilter | undefined;
  /** The Module's edge keys (routing/emissary/edge-rules.ts); undefined without them (no stage at all). */
  readonly rules?: EdgeRules | undefined;
}

/** A stage made around the next one. */
type Link = (next: Stage) => Stage;

/** The stages in order, first to last (the last, forward, ends the list). */
function stages(d: PipelineDeps): Link[] {
  // One per pipeline: the fallback stage sends requests on from steering, flow control sends overloaded ones there.
  const fallbacks = d.fallback === undefined ? undefined : new Fallbacks(d.fallback, d.picker, d.eligible);
  // One per pipeline: the match stage's, and the gate's second match after the auth service edited the headers.
  const matcher = new RouteMatcher(d, fallbacks);
  const ip = d.ipFilter;
  const rules = d.rules;
  return [
    ...(rules?.rejectUnderscoreHeaders === true ? [(next: Stage): Stage => new UnderscoreHeaderStage(next)] : []),
    ...(rules?.rejectEscapedSlashes === true ? [(next: Stage): Stage => new EscapedSlashStage(next)] : []),
    ...(ip !== undefined ? [(next: Stage): Stage => new IpStage(ip, next)] : []),
    ...(rules?.httpsRedirect === true ? [(next: Stage): Stage => new HttpsRedirectStage(next)] : []),
    (next) => new MatchStage(d, next, matcher),
    (next) => new StickyStage(next),
    (next) => new CorsStage(next),
    (next) => new RedirectStage(next),
    (next) => new GateStage(d.gate, next, matcher),
    (next) => new FallbackStage(fallbacks, next),
    (next) => new SteerStage(d.bandits, next),
    (next) => new FlowStage(d.flow, next, fallbacks),
  ];
}

/** The pipeline of one proxy: its first stage. */
export function requestPipeline(d: PipelineDeps, forward: Stage = new ForwardStage()): Stage {
  return stages(d).reduceRight<Stage>((next, link) => link(next), forward);
}
