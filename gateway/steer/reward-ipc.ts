/**
 * Rewards from a cluster worker to its primary's in-memory store, when there is no Redis
 * (gateway/steer/store.ts): one message per reward, answered with its outcome. A reward whose
 * answer does not come within the timeout fails like an unreachable store (it waits and is sent again).
 */
import cluster, { type Worker } from 'node:cluster';
import type { RewardSink } from './bandit-edge.js';
import type { RewardOutcome } from './store.js';

interface RewardCall {
  readonly type: 'sgw-steer-reward';
  readonly id: number;
  readonly args: Parameters<RewardSink['reward']>;
}
interface RewardReply {
  readonly type: 'sgw-steer-reward-reply';
  readonly id: number;
  readonly outcome?: RewardOutcome;
  readonly error?: string;
}

const TIMEOUT_MS = 2000;

/** A worker's sink: rewards go to the primary. */
export class IpcRewardSink implements RewardSink {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (o: RewardOutcome) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor() {
    process.on('message', (msg: RewardReply) => {
      if (msg?.type !== 'sgw-steer-reward-reply') return;
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.outcome) p.resolve(msg.outcome);
      else p.reject(new Error(msg.error ?? 'no outcome'));
    });
  }

  reward(...args: Parameters<RewardSink['reward']>): Promise<RewardOutcome> {
    return new Promise((resolve, reject) => {
      if (!process.connected) {
        reject(new Error('no primary'));
        return;
      }
      const id = this.next++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error('the primary did not answer'));
      }, TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      process.send?.({ type: 'sgw-steer-reward', id, args } satisfies RewardCall);
    });
  }
}

/** The primary's side: answer every worker's rewards from `sink`. Returns a stop function. */
export function serveRewardsToWorkers(sink: () => RewardSink | undefined): () => void {
  const onMessage = (w: Worker, msg: RewardCall): void => {
    if (msg?.type !== 'sgw-steer-reward') return;
    const reply = (r: Omit<RewardReply, 'type' | 'id'>): void => {
      if (w.isConnected()) w.send({ type: 'sgw-steer-reward-reply', id: msg.id, ...r } satisfies RewardReply);
    };
    const s = sink();
    if (!s) return reply({ error: 'no store' });
    s.reward(...msg.args).then(
      (outcome) => reply({ outcome }),
      (err: unknown) => reply({ error: err instanceof Error ? err.message : String(err) }),
    );
  };
  cluster.on('message', onMessage);
  return () => cluster.off('message', onMessage);
}
