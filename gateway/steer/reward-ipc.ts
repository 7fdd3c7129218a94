/**
 * Rewards from a cluster worker to its primary's in-memory store, when there is no Redis
 * (gateway/steer/store.ts): one request per reward, answered with its outcome. A reward whose
 * answer does not come within the timeout fails like an unreachable store (it waits and is sent again).
 */
import { channel, fromParent, fromWorkers, parent, Requester, serve } from '../ipc/request-reply.js';
import type { RewardSink } from './bandit-edge.js';
import type { RewardOutcome } from './store.js';

const REWARD = channel<Parameters<RewardSink['reward']>, RewardOutcome>('sgw-steer-reward');
const TIMEOUT_MS = 2000;

/** A worker's sink: rewards go to the primary. */
export class IpcRewardSink implements RewardSink {
  private readonly requests = new Requester(REWARD, fromParent, TIMEOUT_MS);

  reward(...args: Parameters<RewardSink['reward']>): Promise<RewardOutcome> {
    return this.requests.request(parent, args);
  }
}

/** The primary's side: answer every worker's rewards from `sink`. Returns a stop function. */
export function serveRewardsToWorkers(sink: () => RewardSink | undefined): () => void {
  return serve(REWARD, fromWorkers, (args) => {
    const s = sink();
    if (!s) throw new Error('no store');
    return s.reward(...args);
  });
}
