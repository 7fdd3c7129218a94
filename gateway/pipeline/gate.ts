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

  /**
   * The second match, on the same table, with the edited headers. The same route: its pick stands
   * (Envoy's weighted pick is stable per request). Another: it goes there, as Envoy's router takes
   * the route found again; the auth service is not asked again (its filter ran), a redirect route
   * answers with its redirect, and no route is 404. A route whose own gate asks more than the external
   * check (OAuth, a JWT, rate limits) is refused rather than reached without them. False: answered.
   */
  private rerouted(r: PipelineRequest, matcher: RouteMatcher): boolean {
    const before = r.routed!;
    const table = r.table!;
    const probe = matcher.probe(r, table);
    if (probe.ok && probe.group === before.group) return true;
    const again = probe.ok ? matcher.match(r, table) : probe;
    if (!again.ok) {
      r.unrouted(again);
      return false;
    }
    if (again.group === before.group) return true;
    r.fallbacks = undefined;
    r.fallbackDue = undefined;
    matcher.route(r, again);
    const backend = again.backend;
    const mapping = backend.mapping;
    if (mapping !== null && mapping.redirect !== null) {
      r.redirected(mapping.redirect);
      return false;
    }
    const gate = backend.gate;
    if (gate !== null && (gate.auth !== null || gate.jwt !== null || gate.rateLimits.length > 0)) {
      r.refuse({
        check: 'gate',
        status: 403,
        reason: 'FORBIDDEN',
        message: `the external auth service's headers route this request to ${backend.id}, whose own checks (OAuth, JWT, rate limits) it has not passed`,
      });
      return false;
    }
    return true;
  }
}
