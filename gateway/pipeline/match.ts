/**
 * Match: the live table's route for the request (routing/match.ts), its member picked by weight,
 * steering's shares or its sticky point (`PipelineRequest.sticky`). No route: refused here, unless
 * it is the OAuth front end's call, which the gate routes by its token.
 */
import type { Gatekeeper } from '../auth/gate.js';
import { match } from '../../routing/match.js';
import type { Backend, LiveTable, Picker } from '../../routing/types.js';
import type { PipelineRequest } from './request.js';
import type { Stage } from './stage.js';

export interface MatchDeps {
  /** The live table: `state.current` is read once per request, here. */
  readonly state: Pick<LiveTable, 'current'>;
  readonly picker: Picker;
  /** With endpoint routing: members without a ready endpoint leave the weighted pick. */
  readonly eligible?: ((backend: Backend) => boolean) | undefined;
  /** The gate, which routes the OAuth front end's calls. */
  readonly gate?: Gatekeeper | undefined;
}

export class MatchStage implements Stage {
  constructor(
    private readonly d: MatchDeps,
    private readonly next: Stage,
  ) {}

  run(r: PipelineRequest): void {
    const table = (r.table = this.d.state.current);
    if (r.frontEnd) {
      this.next.run(r);
      return;
    }
    const decision = match(table, r, this.d.picker, this.d.eligible);
    if (decision.ok) r.routed = decision;
    else if (r.frontEndCall(this.d.gate)) r.frontEnd = true;
    else {
      r.unrouted(decision);
      return;
    }
    this.next.run(r);
  }
}
