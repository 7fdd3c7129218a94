/**
 * Match: the live table's route for the request (routing/table/match.ts), its member picked by weight,
 * a gRPC call with an invalid :authority refused first (400, gRPC INTERNAL, as Envoy's),
 * steering's shares or its sticky point (`PipelineRequest.sticky`). No route: refused here, unless
 * it is the OAuth front end's call, which the gate routes by its token.
 *
 * With fallbacks (pipeline/fallback.ts): a member whose fallback covers `unavailable` keeps its own
 * share of the pick without a ready endpoint (its requests go to the fallback, marked, rather than
 * silently to another member), and a member picked that cannot take the request now, for a reason
 * its fallback covers, is marked `fallbackDue`; the fallback stage sends it on after the gate.
 */
import type { Gatekeeper } from '../auth/gate.js';
import { match } from '../../routing/table/match.js';
import { INVALID_HOST, validHost } from '../../routing/values/host.js';
import type { Backend, Decision, NotRouted, Picker, RouteGroup, RouteTable, Routed } from '../../routing/types.js';
import type { LiveTable } from '../../routing/table/live.js';
import type { FallbackDeps } from './fallback.js';
import type { FallbackPolicy } from '../../routing/fallback/config.js';
import type { FallbackSender, PipelineRequest } from './request.js';
import type { Stage } from './stage.js';

export interface MatchDeps {
  /** The live table: `state.current` is read once per request, here. */
  readonly state: Pick<LiveTable, 'current'>;
  readonly picker: Picker;
  /** With endpoint routing: members without a ready endpoint leave the weighted pick. */
  readonly eligible?: ((backend: Backend) => boolean) | undefined;
  /** The gate, which routes the OAuth front end's calls. */
  readonly gate?: Gatekeeper | undefined;
  /** Fallbacks (`seldon.io/gateway-fallback`): what the pipeline's fallback stage needs. */
  readonly fallback?: FallbackDeps | undefined;
}

const BAD_AUTHORITY: NotRouted = { ok: false, status: 400, reason: 'BAD_REQUEST', info: INVALID_HOST };

/** A pick without effects: the first member, no steering, no mirror (the second match's probe, pipeline/reroute.ts). */
export const PROBE: Picker = {
  pick: (group: RouteGroup): Backend | undefined => group.members[0]?.backend,
  steer: (group: RouteGroup): RouteGroup => group,
  mirror: () => false,
};

/**
 * The table's route for a request, its member picked, and what its fallback means for it: the match
 * stage's, and the gate's second match when the auth service edited the headers (pipeline/gate.ts).
 */
export class RouteMatcher {
  private readonly eligible: ((backend: Backend) => boolean) | undefined;
  private readonly unready: FallbackDeps['unready'];

  constructor(
    private readonly d: MatchDeps,
    private readonly fallbacks?: FallbackSender | undefined,
  ) {
    const eligible = d.eligible;
    this.unready = d.fallback?.unready;
    this.eligible = eligible === undefined || this.unready === undefined ? eligible : (b) => eligible(b) || (b.fallback !== null && b.fallback.unavailable);
  }

  match(r: PipelineRequest, table: RouteTable): Decision {
    return match(table, r, this.d.picker, this.eligible);
  }

  /** Which route matches, with no effect on the request or the picker (no draw, no round-robin turn, no sticky cookie minted). */
  probe(r: PipelineRequest, table: RouteTable): Decision {
    const minted = r.minted;
    const d = match(table, r, PROBE);
    r.minted = minted;
    return d;
  }

  /** `decision` is where it goes. */
  route(r: PipelineRequest, decision: Routed): void {
    r.routed = decision;
    // A route without a fallback pays this one property check.
    const f = decision.backend.fallback;
    if (f !== null) this.mayFallBack(r, f, decision.backend);
  }

  /** `backend` has a fallback: the request may go there later (`error`), or now, for why it cannot take it. */
  private mayFallBack(r: PipelineRequest, f: FallbackPolicy, backend: Backend): void {
    r.fallbacks = this.fallbacks;
    const why = this.unready?.(backend);
    if (why === 'cold' ? f.cold : why === 'unavailable' && f.unavailable) r.fallbackDue = why;
  }
}

export class MatchStage implements Stage {
  constructor(
    private readonly d: MatchDeps,
    private readonly next: Stage,
    /** The pipeline's one matcher, which the gate's second match shares (pipeline/chain.ts). */
    private readonly matcher: RouteMatcher = new RouteMatcher(d),
  ) {}

  run(r: PipelineRequest): void {
    const table = (r.table = this.d.state.current);
    // REST's Host was judged at the edge (edge/refusals.ts); a gRPC call's :authority is judged here.
    if (r.kind === 'grpc' && !validHost(r.host)) {
      r.unrouted(BAD_AUTHORITY);
      return;
    }
    if (r.frontEnd) {
      this.next.run(r);
      return;
    }
    const decision = this.matcher.match(r, table);
    if (decision.ok) this.matcher.route(r, decision);
    else if (r.frontEndCall(this.d.gate)) r.frontEnd = true;
    else {
      r.unrouted(decision);
      return;
    }
    this.next.run(r);
  }
}
