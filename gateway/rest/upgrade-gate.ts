/**
 * An upgrade request at its route's gate (external auth, OAuth, JWT, rate limits), as a request
 * meets it (pipeline/gate.ts): no body is read for the check (what follows the head is the upgraded
 * protocol's). When the auth service edited the headers, the upgrade is matched again by the one
 * rule a request is (pipeline/reroute.ts): the same route runs the rest of its gate; another route
 * is where it goes, if that route takes this upgrade (else 403, as the first match's would be); a
 * redirect route takes no upgrade (403); no route is its 404.
 */
import type { Allow, Deny, Gatekeeper, GateVerdict } from '../auth/gate.js';
import type { GatewayReason } from '../edge/errors.js';
import type { NodeRequest } from '../edge/node-exchange.js';
import { PROBE } from '../pipeline/match.js';
import { matchAgain } from '../pipeline/reroute.js';
import { authEditPlan, chainAuthEdits } from '../../routing/policies/auth-edits.js';
import { headerGetter, match } from '../../routing/table/match.js';
import type { Backend, NotRouted, Picker, Routed, RouteTable } from '../../routing/types.js';
import { editedHeader } from '../../routing/policies/auth-edits.js';

/** What the gate made of an upgrade. */
export type UpgradeVerdict =
  | { readonly to: 'model'; readonly routed: Routed; readonly allow: Allow }
  | { readonly to: 'denied'; readonly deny: Deny }
  | { readonly to: 'refused'; readonly backend: Backend; readonly status: number; readonly reason: GatewayReason; readonly info: string }
  | { readonly to: 'none'; readonly unrouted: NotRouted };

export interface UpgradeMatch {
  readonly table: RouteTable;
  /** The Host as matched (the Module's strip_matching_host_port). */
  readonly host: string;
  /** The one protocol asked for, lower case. */
  readonly protocol: string;
  readonly picker: Picker;
  readonly eligible?: ((backend: Backend) => boolean) | undefined;
  /** Whether a route relays upgrades to the protocol (rest/upgrade-exchange.ts `upgradesTo`). */
  readonly takes: (b: Backend, protocol: string) => boolean;
}

/** `routed` (whose backend has a gate) checked by `gate`; `done` told once, unless the check failed (`failed`). */
export function gateUpgrade(gate: Gatekeeper, req: NodeRequest, routed: Routed, m: UpgradeMatch, done: (v: UpgradeVerdict) => void, failed: () => void): void {
  const first = gate.rest(req, routed, m.table, null);
  const then = (x: GateVerdict): void => {
    if (!x.allow) return done({ to: 'denied', deny: x });
    const rest = x.onRoute;
    if (rest === undefined) return done({ to: 'model', routed: x.decision, allow: x });
    done2(x, rest);
  };
  const done2 = (x: Allow, rest: NonNullable<Allow['onRoute']>): void => {
    const after = reroute(req, x, m);
    if (after === 'same') {
      const w = rest(x.decision);
      const next = (v: GateVerdict): void =>
        v.allow ? done({ to: 'model', routed: v.decision, allow: { ...v, external: x.external, edits: x.edits, claims: v.claims ?? x.claims } }) : done({ to: 'denied', deny: v });
      if (w instanceof Promise) w.then(next, failed);
      else next(w);
    } else done(after);
  };
  if (first instanceof Promise) first.then(then, failed);
  else then(first);
}

/** The second match with the auth service's edits, as a request's (pipeline/reroute.ts). */
function reroute(req: NodeRequest, x: Allow, m: UpgradeMatch): 'same' | UpgradeVerdict {
  const plan = authEditPlan(chainAuthEdits(x.external, x.edits)!);
  const own = headerGetter(req.headers);
  const input = { kind: 'rest' as const, method: req.method ?? 'GET', path: req.url ?? '/', host: m.host, header: (name: string) => editedHeader(plan, name, own) };
  const after = matchAgain(
    x.decision,
    () => match(m.table, input, PROBE),
    () => match(m.table, input, m.picker, m.eligible),
  );
  switch (after.to) {
    case 'same':
      return 'same';
    case 'none':
      return { to: 'none', unrouted: after.unrouted };
    case 'refused': {
      const r = after.refusal;
      return { to: 'refused', backend: after.routed.backend, status: r.status, reason: r.reason, info: r.message };
    }
    default: {
      const b = after.routed.backend;
      if (after.to === 'other' && m.takes(b, m.protocol)) return { to: 'model', routed: after.routed, allow: x };
      return {
        to: 'refused',
        backend: b,
        status: 403,
        reason: 'FORBIDDEN',
        info: `the external auth service's headers route this upgrade to ${b.id}, which takes no upgrade to ${m.protocol} (allow_upgrade)`,
      };
    }
  }
}
