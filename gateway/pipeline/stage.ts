/**
 * A stage of the request pipeline (gateway/pipeline/chain.ts): it does its one job and then hands
 * the request to the next stage, or answers it itself (a refusal) and stops. Built once, around
 * the stage that follows it (Traefik's `NewX(next)`, Envoy's filter chain); one object per stage
 * for the process, nothing per request.
 *
 * A stage may complete asynchronously (the gate awaits its stores; flow control holds a request
 * in a queue): it calls `next.run(request)` later, after checking `request.gone()`. Whatever it
 * throws from such a continuation goes to `request.failed(err)` (`continueWith`).
 */
import type { PipelineRequest } from './request.js';

export interface Stage {
  run(request: PipelineRequest): void;
}

/** Run `next` from an asynchronous continuation: a throw fails this request only. */
export function continueWith(next: Stage, request: PipelineRequest): void {
  try {
    next.run(request);
  } catch (err) {
    request.failed(err);
  }
}
