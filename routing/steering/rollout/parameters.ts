/** The judge's fixed parameters (docs/rollouts.md#the-statistics). Overridable in `decide`'s options, for simulations. */
export interface RolloutParameters {
  /** The steady chart's alarm level h. */
  readonly cusumAlarm: number;
  /** The burst chart's bad rate: the primary's rate + this many times `maxErrorRate` (this many times an absolute limit), at most `burstCeiling`. */
  readonly burstShift: number;
  readonly burstCeiling: number;
  /** The burst chart's alarm level. */
  readonly burstAlarm: number;
  /** The share of `maxErrorRate` the canary must be shown above the primary by (in the same windows) to confirm a burst alarm (the steady chart's: a quarter). */
  readonly burstConfirmShare: number;
  /** Samples each side a latency interval needs before it is judged. */
  readonly minLatencySamples: number;
  /** Significance of the latency test and of the p99 ceiling. */
  readonly latencyAlpha: number;
  /** One-sided confidence of the agreement's lower bound that passes the mirror phase. */
  readonly agreementConfidence: number;
  /** One-sided confidence of the agreement's upper bound that fails it (lower: failing costs a retry, no user saw the canary). */
  readonly agreementFailConfidence: number;
  /** Comparisons the agreement needs before it is judged either way, at least (and at least 1/(1 − minAgreement): one disagreement expected at the threshold). */
  readonly minComparisons: number;
  /** Half-life of the primary's error rate the canary is held to. */
  readonly baselineHalfLifeMs: number;
  /** Primary error rate (its lower bound) over which the primary itself is unhealthy, with a relative `maxErrorRate`. */
  readonly primaryUnhealthyRate: number;
  /** A window whose primary error count is this unlikely under that rate (either way) restarts it from the window: a sudden shared outage is seen at once. */
  readonly baselineJump: number;
  /** Significance of the same-window test that confirms an alarm of the error statistic. */
  readonly confirmAlpha: number;
}

export const ROLLOUT_PARAMETERS: Readonly<RolloutParameters> = Object.freeze({
  cusumAlarm: 5.15,
  burstShift: 5,
  burstCeiling: 0.5,
  burstAlarm: 10,
  burstConfirmShare: 1,
  minLatencySamples: 50,
  latencyAlpha: 0.01,
  agreementConfidence: 0.95,
  agreementFailConfidence: 0.85,
  minComparisons: 50,
  baselineHalfLifeMs: 60_000,
  primaryUnhealthyRate: 0.05,
  baselineJump: 1e-6,
  confirmAlpha: 0.01,
});

export interface DecideOptions {
  /** False on a replica that cannot reach the store: it may roll back (or pause), never advance, promote, resume or retry. */
  readonly mayAdvance?: boolean;
  readonly parameters?: Partial<RolloutParameters>;
}
