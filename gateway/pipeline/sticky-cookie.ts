/**
 * Sticky: a REST client that came without a valid sticky cookie and was placed by a new one
 * while matching (docs/rollouts.md#sticky) gets that cookie with its answer. Nothing else.
 */
import { StickyKeys } from '../steer/sticky-keys.js';
import type { PipelineRequest } from './request.js';
import type { Stage } from './stage.js';

export class StickyStage implements Stage {
  constructor(private readonly next: Stage) {}

  run(r: PipelineRequest): void {
    const minted = r.minted;
    if (minted !== undefined) r.answerHeaders = ['set-cookie', StickyKeys.setCookie(minted)];
    this.next.run(r);
  }
}
