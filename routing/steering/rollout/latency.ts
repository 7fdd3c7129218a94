/** The latency check, per interval: the canary's shift against the primary (Mann-Whitney) and its p99 against `maxP99`. */
import { bucketShiftOf, LATENCY_BOUNDS_MS, LATENCY_BUCKET_RATIO, quantileOf } from '../../stats/latency-buckets.js';
import { binomialTail, hodgesLehmann, mannWhitneyGreater, shiftCounts, sumOf } from '../../stats/inference.js';
import type { RolloutConfig } from './config.js';
import { ROLLOUT_PARAMETERS, type RolloutParameters } from './parameters.js';
import type { LatencyJudgement, Verdict } from './state.js';
import { int, ms, pct, signedPct } from './text.js';

const P99_SHARE = 0.01;

/** Samples at or over `limitMs` (whole buckets whose lower bound is at or above it: a slight undercount). */
function countOver(counts: readonly number[], limitMs: number): number {
  let n = 0;
  for (let i = 1; i < counts.length; i++) if (LATENCY_BOUNDS_MS[i - 1]! >= limitMs) n += counts[i]!;
  return n;
}

/** Judge an interval's two samples; null while either side has fewer than `minLatencySamples`. */
export function judgeLatency(canary: readonly number[], primary: readonly number[], config: RolloutConfig, end: number, P: RolloutParameters = ROLLOUT_PARAMETERS): LatencyJudgement | null {
  const n1 = sumOf(canary);
  const n2 = sumOf(primary);
  if (n1 < P.minLatencySamples || n2 < P.minLatencySamples) return null;
  const test = mannWhitneyGreater(canary, shiftCounts(primary, bucketShiftOf(1 + config.maxLatencyShift)));
  const hl = hodgesLehmann(canary, primary);
  const shiftVerdict: Verdict = test.p < P.latencyAlpha ? 'fail' : 'pass';
  const canaryP99 = quantileOf(canary, 0.99);
  const primaryP99 = quantileOf(primary, 0.99);
  let p99Verdict: Verdict = 'pass';
  if (config.maxP99Ms !== null) {
    // More than 1% shown over the ceiling: that many would come from a 1% share with probability under α.
    const over = (counts: readonly number[], n: number) => binomialTail(Math.round(countOver(counts, config.maxP99Ms!)), Math.round(n), P99_SHARE) < P.latencyAlpha;
    if (over(canary, n1)) p99Verdict = over(primary, n2) ? 'hold' : 'fail';
  }
  const verdict: Verdict = shiftVerdict === 'fail' || p99Verdict === 'fail' ? 'fail' : p99Verdict === 'hold' ? 'hold' : 'pass';
  return {
    end,
    canarySamples: n1,
    primarySamples: n2,
    shift: hl === null ? null : LATENCY_BUCKET_RATIO ** hl - 1,
    p: test.p,
    shiftVerdict,
    canaryP99,
    primaryP99,
    p99Verdict,
    verdict,
  };
}

export function describeLatency(j: LatencyJudgement, config: RolloutConfig): string {
  const shift = `latency ${j.shift === null ? 'n/a' : signedPct(j.shift)} against the primary (allowed +${pct(config.maxLatencyShift, 0)}; one-sided Mann-Whitney p = ${j.p.toPrecision(2)}, ${int(j.canarySamples)} canary and ${int(j.primarySamples)} primary samples)`;
  const p99 = config.maxP99Ms === null ? '' : `, canary p99 ${ms(j.canaryP99)} (ceiling ${ms(config.maxP99Ms)}, primary ${ms(j.primaryP99)})`;
  return shift + p99;
}
