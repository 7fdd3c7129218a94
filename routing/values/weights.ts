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

/** The running sums of a group of one, which most groups are: one frozen list all of them share. */
const ALL: readonly number[] = Object.freeze([100]);

/**
 * Running sums of percents, for one draw against cumulative shares. A list of its exact length (a
 * list grown by `push` keeps room for 17 numbers, which a table keeps for each group as long as it lives).
 */
export function cumulativeOf(percents: readonly number[]): readonly number[] {
  if (percents.length === 1 && percents[0] === 100) return ALL;
  let sum = 0;
  return percents.map((p) => (sum += p));
}

/** Python's `round` (half to even), as Emissary rounds a weightless Mapping's share. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** One member of a Mapping group's split: its share, or why Emissary would not give it one. */
export type EmissaryShare = { readonly percent: number } | { readonly refused: string };

/**
 * Emissary's weights within one group of Mappings (irbasemappinggroup.py `normalize_weights_in_mappings`),
 * members in group order. A lone Mapping takes 100 % whatever its weight. Otherwise weighted Mappings keep
 * their weight as given (never scaled up: what is left of 100 falls through to the next route, as Envoy's
 * `runtime_fraction` does); weightless ones share what is left, each `round(left / count)` and the last the
 * rest. Emissary rejects the group's weights when a weight or their sum passes 100; here the Mapping that
 * passes it is refused instead, with the reason, and the others keep their shares.
 */
export function emissaryWeights(weights: readonly (number | null)[]): EmissaryShare[] {
  if (weights.length === 1) return [{ percent: 100 }];
  const out: EmissaryShare[] = weights.map(() => ({ percent: 0 }));
  let sum = 0;
  const weightless: number[] = [];
  weights.forEach((w, i) => {
    if (w === null) weightless.push(i);
    else if (w < 0) out[i] = { refused: `its weight ${w} is negative` };
    else if (sum + w > 100) out[i] = { refused: `its weight ${w} takes the group's weights to ${sum + w}, over 100` };
    else {
      sum += w;
      out[i] = { percent: w };
    }
  });
  const accepted = out.filter((s) => 'percent' in s).length;
  if (accepted === 1) return out.map((s) => ('percent' in s ? { percent: 100 } : s));
  if (weightless.length === 0) return out;
  const left = 100 - sum;
  const each = roundHalfEven(left / weightless.length);
  let given = 0;
  weightless.forEach((i, k) => {
    const p = k === weightless.length - 1 ? Math.max(0, left - given) : Math.max(0, Math.min(each, left - given));
    given += p;
    out[i] = { percent: p };
  });
  return out;
}
