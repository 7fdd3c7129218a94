/**
 * Gate: external auth, OAuth and rate limits (auth/gate.ts) for a route that has them
 * (`backend.gate`), and the OAuth front end's routing. The gate decides; the request's protocol
 * renders its verdict: a refusal ends the request here, before anything is steered or counted;
 * an allowance drops the credential, applies the auth service's edits and goes on (unless the
 * client left while the stores answered). Every other request passes with one property check.
 */
import type { Allow, GateVerdict, Gatekeeper } from '../auth/gate.js';
import type { PipelineRequest, Refusal } from './request.js';
import type { RouteMatcher } from './match.js';
import { chainAuthEdits } from '../../routing/policies/auth-edits.js';
import { matchAgain } from './reroute.js';
import { continueWith, type Stage } from './stage.js';

/** The refusal of a request whose route (`what`) has a gate when this process has none (an upgrade's too, rest/upgrade-exchange.ts). */
export const noGate = (what: string): Refusal => ({
  check: 'gate',
  status: 503,
  reason: 'AUTH_BACKEND_UNAVAILABLE',
  message: `route of ${what} needs auth or rate limits, which this process does not serve`,
});

export class GateStage implements Stage {
  constructor(
    private readonly gate: Gatekeeper | undefined,
    private readonly next: Stage,
    /** The second match after the auth service edited the headers (undefined: none, as in a stage test). */
    private readonly matcher?: RouteMatcher | undefined,
  ) {}

  run(r: PipelineRequest): void {
    const routed = r.routed;
    if (routed !== undefined ? routed.backend.gate === null : !r.frontEnd) {
      this.next.run(r);
      return;
    }
    const gate = this.gate;
    if (gate === undefined) {
      r.refuse(noGate(routed !== undefined ? routed.backend.id : r.path));
      return;
    }
    const verdict = r.askGate(gate);
    if (verdict instanceof Promise) void verdict.then((v) => this.verdict(r, v));
    else this.verdict(r, verdict);
  }

  private verdict(r: PipelineRequest, v: GateVerdict): void {
    if (!v.allow) {
      r.denied(v);
      return;
    }
    r.routed = v.decision;
    if (v.claims !== undefined) r.claims = v.claims;
    // The stages after the gate (the second match, flow control's tenant, steering) read what the model will: the auth service's headers, a claim header, never the client's own.
    const edits = chainAuthEdits(v.external, v.edits);
    if (edits !== undefined && (edits.headers.length > 0 || edits.remove.length > 0)) r.editHeaders(edits);
    const rest = v.onRoute;
    if (rest === undefined) {
      r.allowed(v);
      if (r.gone()) return;
      continueWith(this.next, r);
      return;
    }
    // Envoy's ext_authz clears the route cache when the auth service changed the request's headers (Emissary sets
    // clear_route_cache): matched again, then the rest of the gate on the route it stays on. Answered by the match, it spent nothing.
    if (r.gone()) return;
    const group = v.decision.group;
    if (!r.frontEnd && this.matcher !== undefined && !this.rerouted(r, this.matcher)) return;
    if (r.routed!.group !== group) return this.pass(r, v);
    const after = (w: GateVerdict): void => (w.allow ? this.pass(r, { ...w, external: v.external, edits: v.edits, claims: w.claims ?? v.claims }) : r.denied(w));
    const w = rest(r.routed!);
    if (w instanceof Promise) void w.then(after);
    else after(w);
  }

  /** An allowed request goes on (unless its client left while the stores answered). */
  private pass(r: PipelineRequest, v: Allow): void {
    r.allowed(v);
    if (r.gone()) return;
    continueWith(this.next, r);
  }

  /** The second match (pipeline/reroute.ts), its outcome applied to the request. False: answered. */
  private rerouted(r: PipelineRequest, matcher: RouteMatcher): boolean {
    const table = r.table!;
    const after = matchAgain(
      r.routed!,
      () => matcher.probe(r, table),
      () => matcher.match(r, table),
    );
    if (after.to === 'same') return true;
    if (after.to === 'none') {
      r.unrouted(after.unrouted);
      return false;
    }
    r.fallbacks = undefined;
    r.fallbackDue = undefined;
    matcher.route(r, after.routed);
    if (after.to === 'redirect') r.redirected(after.routed.backend.mapping!.redirect!);
    else if (after.to === 'refused') r.refuse(after.refusal);
    return after.to === 'other';
  }
}
