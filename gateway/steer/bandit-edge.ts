/**
 * A bandit on the data plane (docs/bandits.md): what a worker does for a deployment with
 * `seldon.io/gateway-bandit`, besides picking an arm from the shares it was sent.
 *
 * - Prediction answers carry an attribution token (gateway/steer/attribution.ts): in the
 *   `Seldon-Gateway-Arm` header (REST) or initial metadata (gRPC), and inside the answer's
 *   `meta.tags` (gateway/steer/answer-tag.ts), where the official Seldon client's feedback echoes it.
 * - Feedback (`…/feedback`, `SendFeedback`) is read for that token: a valid one sends the feedback
 *   to the arm that served the prediction (not a fresh draw) and records its reward once per token
 *   (the store's nonce); one without a token, or with a forged or expired one, is forwarded as
 *   before and never moves the bandit. Each outcome is counted.
 *
 * Recording never delays the feedback's answer. While the store cannot be reached, rewards wait
 * here (bounded) and are recorded once it answers; the nonce still makes each count once.
 */
import type { Logger } from 'pino';
import { randomBytes } from 'node:crypto';
import { NONCE_BYTES, issueToken, verifyToken } from './attribution.js';
import type { RewardOutcome } from './store.js';
import { scaleReward, type BanditConfig } from '../../routing/steering/bandit.js';
import type { Backend, RouteTable, Routed } from '../../routing/types.js';

export type FeedbackOutcome = 'attributed' | 'unattributed' | 'expired' | 'forged' | 'duplicate';

/** Where a reward is recorded: the store's atomic script (Redis), or the primary's memory over IPC. */
export interface RewardSink {
  reward(deployment: string, run: string, arm: string, reward: number, nonce: string, nonceTtlMs: number, halfLifeMs: number | null): Promise<RewardOutcome>;
}

export interface BanditOf {
  readonly deployment: string;
  readonly run: string;
  readonly config: BanditConfig;
}

/** The header (REST) and metadata key (gRPC) that carry the token on every bandit answer. */
export const ARM_HEADER = 'seldon-gateway-arm';
/** Rewards waiting for the store at most; beyond, the oldest are dropped (and counted). */
const MAX_WAITING = 10_000;

/** `…/feedback` as a path's last segment (before any query): the Seldon feedback endpoints. */
export function isFeedbackPath(path: string): boolean {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  return p.endsWith('/feedback');
}

/** What a feedback's body says: the token it echoes and its reward. */
export interface FeedbackReading {
  readonly token: string;
  readonly reward: number | null;
}

/**
 * A feedback's effect on its bandit, decided before it is forwarded and applied after
 * (`BanditEdge.commit`): an outcome to count, or a reward to record (run, scaled reward, the
 * token's nonce, when the token expires, the half-life), counted as the store answers.
 */
export type FeedbackCredit =
  | { readonly deployment: string; readonly arm: string; readonly outcome: 'unattributed' | 'expired' | 'forged'; readonly reward?: undefined }
  | { readonly deployment: string; readonly arm: string; readonly outcome?: undefined; readonly reward: readonly [string, number, string, number, number | null] };

/** Largest feedback body read for its token (a Seldon Feedback echoes a prediction answer), REST and gRPC. */
export const FEEDBACK_MAX_BYTES = 1024 * 1024;

interface Waiting {
  readonly args: Parameters<RewardSink['reward']>;
}

export class BanditEdge {
  private keys: readonly Buffer[] = [];
  private noncePrefix = randomBytes(NONCE_BYTES - 4);
  private nonceCount = 0;
  private readonly waiting: Waiting[] = [];
  private flushing = false;

  constructor(
    private readonly sink: () => RewardSink | undefined,
    /** Counts a feedback's outcome (`arm`: '' when no arm is known). */
    private readonly count: (deployment: string, arm: string, outcome: FeedbackOutcome | 'dropped') => void,
    private readonly log?: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  setKeys(keys: readonly Buffer[]): void {
    this.keys = keys;
  }

  /** The bandit steering a routed request's deployment, if any (`backend.steered` first: other requests pay one property check). */
  of(table: RouteTable, backend: Backend): BanditOf | undefined {
    if (!backend.steered) return undefined;
    const deployment = `${backend.origin.namespace}/${backend.origin.deployment}`;
    const b = table.steering.get(deployment)?.bandit;
    return b && b.config.arms.includes(backend.origin.predictor) ? { deployment, run: b.run, config: b.config } : undefined;
  }

  /** A token for a prediction `backend` (an arm) answers; undefined until the keys are known. */
  token(bandit: BanditOf, backend: Backend): string | undefined {
    if (this.keys.length === 0) return undefined;
    return issueToken(this.keys, backend.origin.predictor, bandit.deployment, this.clock(), this.nonce());
  }

  /**
   * A nonce needs to be unique, not secret (the token's MAC covers it): 8 random bytes per process
   * and a counter. randomBytes per token doubled the cost of issuing one (9 → 19 µs of CPU).
   */
  private nonce(): Buffer {
    const n = Buffer.allocUnsafe(NONCE_BYTES);
    this.noncePrefix.copy(n, 0);
    n.writeUInt32BE((this.nonceCount = (this.nonceCount + 1) >>> 0), NONCE_BYTES - 4);
    if (this.nonceCount === 0) this.noncePrefix = randomBytes(NONCE_BYTES - 4);
    return n;
  }

  /**
   * Feedback whose token (and reward) were read from its body: where it goes (the arm's member of
   * the same group when the token is valid, else the one drawn) and what becomes of its reward.
   * Deciding changes nothing: the credit is applied by `commit`, once the feedback is forwarded
   * (a feedback the gate or flow control refuses never moves the bandit).
   */
  decide(bandit: BanditOf, decision: Routed, reading: FeedbackReading | null): { readonly decision: Routed; readonly credit: FeedbackCredit } {
    if (reading === null) return { decision, credit: { deployment: bandit.deployment, arm: '', outcome: 'unattributed' } };
    const v = verifyToken(this.keys, reading.token, bandit.deployment, this.clock(), bandit.config.attributionTtlMs);
    if (!v.ok) return { decision, credit: { deployment: bandit.deployment, arm: '', outcome: v.outcome === 'expired' ? 'expired' : 'forged' } };
    const arm = decision.group.members.find((m) => m.backend.origin.predictor === v.arm && `${m.backend.origin.namespace}/${m.backend.origin.deployment}` === bandit.deployment);
    if (!arm || !bandit.config.arms.includes(v.arm)) {
      // Signed by us, for an arm that is no longer one: forwarded as drawn, the reward is not counted.
      return { decision, credit: { deployment: bandit.deployment, arm: v.arm, outcome: 'unattributed' } };
    }
    const routed = arm.backend === decision.backend ? decision : { ...decision, backend: arm.backend };
    if (reading.reward === null || !Number.isFinite(reading.reward)) return { decision: routed, credit: { deployment: bandit.deployment, arm: v.arm, outcome: 'unattributed' } };
    const r = scaleReward(reading.reward, bandit.config.rewardRange);
    return { decision: routed, credit: { deployment: bandit.deployment, arm: v.arm, reward: [bandit.run, r, v.nonce, v.issuedAt + bandit.config.attributionTtlMs, bandit.config.halfLifeMs] } };
  }

  /** Apply a decided credit: count its outcome, or record its reward (once per token: the store's nonce). */
  commit(credit: FeedbackCredit): void {
    const reward = credit.reward;
    if (reward === undefined) {
      this.count(credit.deployment, credit.arm, credit.outcome);
      return;
    }
    const [run, r, nonce, expiresAt, halfLifeMs] = reward;
    this.record([credit.deployment, run, credit.arm, r, nonce, Math.max(1, expiresAt - this.clock()), halfLifeMs]);
  }

  private record(args: Parameters<RewardSink['reward']>): void {
    const sink = this.sink();
    if (!sink) return;
    sink.reward(...args).then(
      (outcome) => this.count(args[0], args[2], outcome === 'recorded' ? 'attributed' : 'duplicate'),
      () => this.wait(args),
    );
  }

  /** The store did not answer: keep the reward for later (bounded), and try again shortly. */
  private wait(args: Parameters<RewardSink['reward']>): void {
    if (this.waiting.length >= MAX_WAITING) {
      const dropped = this.waiting.shift()!;
      this.count(dropped.args[0], dropped.args[2], 'dropped');
    }
    this.waiting.push({ args });
    if (!this.flushing) {
      this.flushing = true;
      setTimeout(() => void this.flush(), 1000).unref();
    }
  }

  private async flush(): Promise<void> {
    const sink = this.sink();
    const batch = this.waiting.splice(0);
    let failed = 0;
    for (const w of batch) {
      try {
        const outcome = await sink!.reward(...w.args);
        this.count(w.args[0], w.args[2], outcome === 'recorded' ? 'attributed' : 'duplicate');
      } catch {
        failed++;
        this.waiting.push(w);
      }
    }
    if (failed > 0) this.log?.debug({ waiting: this.waiting.length }, 'bandit rewards waiting for the store');
    this.flushing = this.waiting.length > 0;
    if (this.flushing) setTimeout(() => void this.flush(), 1000).unref();
  }
}
