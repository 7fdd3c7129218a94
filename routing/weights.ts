/**
 * Ambassador weight normalisation within one route group (docs/routing.md#weights-and-normalisation).
 *
 * Members carry an explicit weight (0..100) or none ("weightless": the first predictor, custom
 * Mappings without `weight`). With W the sum of explicit weights and U the weightless count, the
 * first row that applies decides:
 *   one member            → 100 %
 *   U ≥ 1, W ≤ 100        → explicit as given; weightless share 100 − W equally
 *   U ≥ 1, W > 100        → weightless 0; explicit scaled to 100 (warning)
 *   U = 0, W > 0          → scaled to 100 (warning unless W = 100)
 *   U = 0, W = 0, several → equal split (warning)
 * The result depends only on the multiset of members, never on their order.
 */

export interface NormalisedWeights {
  readonly percents: number[];
  readonly warning: string | null;
}

export function normaliseWeights(weights: readonly (number | null)[]): NormalisedWeights {
  const n = weights.length;
  if (n === 0) return { percents: [], warning: null };
  if (n === 1) return { percents: [100], warning: null };
  let explicitSum = 0;
  let weightless = 0;
  for (const w of weights) {
    if (w === null) weightless++;
    else explicitSum += w;
  }
  if (weightless > 0 && explicitSum <= 100) {
    const share = (100 - explicitSum) / weightless;
    return { percents: weights.map((w) => (w === null ? share : w)), warning: null };
  }
  if (weightless > 0) {
    return {
      percents: weights.map((w) => (w === null ? 0 : (w * 100) / explicitSum)),
      warning: `explicit weights sum to ${explicitSum} (> 100): scaled to 100, weightless members get 0`,
    };
  }
  if (explicitSum > 0) {
    return {
      percents: weights.map((w) => ((w ?? 0) * 100) / explicitSum),
      warning: explicitSum === 100 ? null : `weights sum to ${explicitSum}: scaled to 100`,
    };
  }
  return { percents: weights.map(() => 100 / n), warning: `all ${n} weights are 0: split equally` };
}

/** Running sums of percents, for one draw against cumulative shares. */
export function cumulativeOf(percents: readonly number[]): number[] {
  const out: number[] = [];
  let sum = 0;
  for (const p of percents) {
    sum += p;
    out.push(sum);
  }
  return out;
}
