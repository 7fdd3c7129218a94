/**
 * Steering, the deciding half (docs/bandits.md): for a deployment a bandit steers, a prediction
 * gets its attribution token (carried by its answer), and a feedback is read for the token of the
 * answer it is about, which decides the arm it goes to and the credit it brings. Deciding moves
 * nothing: the credit (reward recorded, nonce spent, outcome counted) is applied by
 * `PipelineRequest.commit` when the request is forwarded, after every stage that can refuse it.
 * Rollout outcomes are counted when the answer ends (observe/steer-tally.ts), so a request
 * refused before it is forwarded is never one.
 */
import type { BanditEdge, BanditOf, FeedbackReading } from '../steer/bandit-edge.js';
import type { PipelineRequest } from './request.js';
import { continueWith, type Stage } from './stage.js';

export class SteerStage implements Stage {
  constructor(
    private readonly bandits: BanditEdge | undefined,
    private readonly next: Stage,
  ) {}

  run(r: PipelineRequest): void {
    const routed = r.routed!;
    const bandits = this.bandits;
    // `steered` first: every other request pays one property check.
    const bandit = routed.backend.steered && bandits !== undefined ? bandits.of(r.table!, routed.backend) : undefined;
    if (bandit === undefined) {
      this.next.run(r);
      return;
    }
    if (!r.isFeedback()) {
      r.token = bandits!.token(bandit, routed.backend);
      this.next.run(r);
      return;
    }
    r.readFeedback((reading) => this.decided(r, bandits!, bandit, reading));
  }

  private decided(r: PipelineRequest, bandits: BanditEdge, bandit: BanditOf, reading: FeedbackReading | null): void {
    const d = bandits.decide(bandit, r.routed!, reading);
    r.routed = d.decision;
    r.credit = d.credit;
    r.bandits = bandits;
    continueWith(this.next, r);
  }
}
