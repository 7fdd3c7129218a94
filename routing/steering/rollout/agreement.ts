/** The mirror phase's agreement check: exact binomial bounds on agree/compared against `minAgreement`. */
import { binomialTail, exactBounds } from '../../stats/inference.js';
import type { RolloutConfig } from './config.js';
import type { RolloutParameters } from './parameters.js';
import type { RolloutState, Verdict } from './state.js';

/** The pass side's lower bound and the fail side's upper bound, each exact at its own confidence. */
export function agreementBounds(s: RolloutState, P: RolloutParameters): { lower: number; upper: number } {
  const { agree, compared } = s.agreement;
  return { lower: exactBounds(agree, compared, P.agreementConfidence).lower, upper: exactBounds(agree, compared, P.agreementFailConfidence).upper };
}

/**
 * Fail when the agreement's exact upper bound is under `minAgreement` (so few agreed that a
 * canary at minAgreement would agree this little with probability under 1 − confidence); pass
 * when its lower bound is at or over it; else hold. Two binomial tails, not the bounds themselves.
 */
export function agreementVerdict(s: RolloutState, config: RolloutConfig, P: RolloutParameters): Verdict {
  const { compared, agree } = s.agreement;
  const min = config.mirror?.minAgreement;
  if (min === undefined || compared < comparisonsNeeded(min, P)) return 'hold';
  if (1 - binomialTail(agree + 1, compared, min) < 1 - P.agreementFailConfidence) return 'fail';
  return binomialTail(agree, compared, min) < 1 - P.agreementConfidence ? 'pass' : 'hold';
}

/**
 * Comparisons before agreement is judged: `minComparisons`, and no fewer than a canary at
 * `minAgreement` needs to be expected to disagree once (100 at 99%): before that one
 * disagreement says nothing, and every look at a few dozen is a chance to fail a good canary.
 */
export function comparisonsNeeded(min: number, P: RolloutParameters): number {
  return min < 1 ? Math.max(P.minComparisons, Math.ceil(1 / (1 - min) - 1e-9)) : P.minComparisons;
}

/** How many comparisons agreeing at rate `p` would show agreement at or over `min`; null when p ≤ min. */
export function comparisonsToPass(p: number, min: number, alpha: number, atLeast: number): number | null {
  if (p <= min) return null;
  const passes = (n: number) => binomialTail(Math.round(p * n), n, min) < alpha;
  let hi = Math.max(atLeast, 1);
  while (!passes(hi)) {
    hi *= 2;
    if (hi > 1e9) return null;
  }
  let lo = Math.max(atLeast, hi / 2);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (passes(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}
