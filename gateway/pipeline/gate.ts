/**
 * Gate: external auth, OAuth and rate limits (auth/gate.ts) for a route that has them
 * (`backend.gate`), and the OAuth front end's routing. The gate decides; the request's protocol
 * renders its verdict: a refusal ends the request here, before anything is steered or counted;
 * an allowance drops the credential, applies the auth service's edits and goes on (unless the
 * client left while the stores answered). Every other request passes with one property check.
 */
import type { Allow, GateVerdict, Gatekeeper } from '../auth/gate.js';
import type { HeaderEdits, PipelineRequest } from './request.js';
import { continueWith, type Stage } from './stage.js';

/** An edit list as the stages read it (a set name reads its value, a removed one nothing), made once per list: a JWT's edits are one object for every request with the same token. */
function editsView(edits: NonNullable<Allow['edits']>): HeaderEdits {
  let view = views.get(edits);
  if (view === undefined) {
    const set = new Map<string, string>();
    for (const e of edits.headers) set.set(e.name, e.append && set.has(e.name) ? `${set.get(e.name)!},${e.value}` : e.value);
    views.set(edits, (view = { set, removed: new Set(edits.remove) }));
  }
  return view;
}

const views = new WeakMap<NonNullable<Allow['edits']>, HeaderEdits>();

export class GateStage implements Stage {
  constructor(
    private readonly gate: Gatekeeper | undefined,
    private readonly next: Stage,
  ) {}

  run(r: PipelineRequest): void {
    const routed = r.routed;
    if (routed !== undefined ? routed.backend.gate === null : !r.frontEnd) {
      this.next.run(r);
      return;
    }
    const gate = this.gate;
    if (gate === undefined) {
      const what = routed !== undefined ? routed.backend.id : r.path;
      r.refuse({ check: 'gate', status: 503, reason: 'AUTH_BACKEND_UNAVAILABLE', message: `route of ${what} needs auth or rate limits, which this process does not serve` });
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
    r.allowed(v);
    // The stages after the gate (flow control's tenant, steering) read what the model will: a claim header, never the client's own.
    if (v.edits !== undefined) r.editHeaders(editsView(v.edits));
    if (!r.gone()) continueWith(this.next, r);
  }
}
