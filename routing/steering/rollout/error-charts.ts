/**
 * The error checks (docs/rollouts.md#the-statistics): the primary's decayed error rate, and the
 * steady and burst CUSUM charts of the canary's errors against it, an alarm confirmed in the same windows.
 */
import { bernoulliCusum, binomialTail, normalQuantile, wilson } from '../../stats/inference.js';
import type { RolloutConfig } from './config.js';
import type { Ctx } from './context.js';
import type { RolloutWindow, Tally } from './inputs.js';
import type { RolloutParameters } from './parameters.js';
import { mustRollBack } from './phases.js';
import { freshChart, type Chart, type RolloutState, type Verdict } from './state.js';
import { int, pct, stepName } from './text.js';

/** The primary's errors and requests, decayed; a window beyond chance for the rate so far restarts them from it. */
export function updateBaseline(ctx: Ctx, primary: Tally, at: number): void {
  const b = ctx.s.baseline;
  const n = primary.requests;
  const e = Math.min(primary.errors, n);
  if (b.requests > 0 && n > 0) {
    const rate = (b.errors + 0.5) / (b.requests + 1);
    if (binomialTail(e, n, rate) < ctx.P.baselineJump || 1 - binomialTail(e + 1, n, rate) < ctx.P.baselineJump) {
      Object.assign(b, { requests: n, errors: e, at });
      return;
    }
  }
  if (b.at !== null && at > b.at) {
    const f = 2 ** (-(at - b.at) / ctx.P.baselineHalfLifeMs);
    b.requests *= f;
    b.errors *= f;
  }
  b.at = Math.max(b.at ?? at, at);
  b.requests += n;
  b.errors += e;
}

interface Rate {
  readonly rate: number;
  readonly requests: number;
  readonly errors: number;
}

/** The primary's error rate the canary is held to; null with no primary data yet. */
export function primaryRate(s: RolloutState): Rate | null {
  const { requests, errors } = s.baseline;
  return requests > 0 ? { rate: errors / requests, requests, errors } : null;
}

/** The primary is failing by itself: its error rate's lower bound is over the limit (the absolute one, or `primaryUnhealthyRate`). */
export function primaryUnhealthy(s: RolloutState, config: RolloutConfig, P: RolloutParameters): number | null {
  const r = primaryRate(s);
  if (!r) return null;
  const limit = config.maxErrorRate.kind === 'absolute' ? config.maxErrorRate.rate : P.primaryUnhealthyRate;
  return wilson(r.errors, r.requests, normalQuantile(0.99)).lower > limit ? r.rate : null;
}

/** The error rates the charts test: fine at `pOk`, bad at `pBad` (steady chart) or `pBurst` (burst chart). */
interface ChartRates {
  readonly pOk: number;
  readonly pBad: number;
  readonly pBurst: number;
}

/**
 * The error rates the charts test: fine at `pOk` (a quarter of the allowed excess), bad at `pBad`
 * (all of it) for the steady chart, at `burstShift` times it for the burst chart. Null: no
 * judgement, for want of primary requests to compare with, or because the primary is unhealthy
 * itself (nothing is judged against a failing baseline).
 */
export function errorRates(s: RolloutState, config: RolloutConfig, P: RolloutParameters): ChartRates | null {
  const limit = config.maxErrorRate;
  const r = primaryRate(s);
  if (!r || primaryUnhealthy(s, config, P) !== null) return null;
  const base = limit.kind === 'absolute' ? 0 : r.rate;
  const pOk = base + limit.rate / 4;
  const pBad = base + limit.rate;
  if (pBad >= 1) return null;
  return { pOk, pBad, pBurst: Math.max(pBad, Math.min(P.burstCeiling, base + P.burstShift * limit.rate)) };
}

export function chartVerdict(c: Chart, alarm: number): Verdict {
  return c.s >= alarm ? 'fail' : c.s >= alarm / 2 ? 'hold' : 'pass';
}

/** The worse of the two charts' verdicts: a run advances only while both are under half their alarm levels. */
export function cusumVerdict(s: RolloutState, P: RolloutParameters): Verdict {
  const v = [chartVerdict(s.cusum, P.cusumAlarm), chartVerdict(s.burst, P.burstAlarm)];
  return v.includes('fail') ? 'fail' : v.includes('hold') ? 'hold' : 'pass';
}

/**
 * Whether the canary's errors since a chart last stood at 0 are more than the primary's in the
 * very same windows allow (its rate's upper bound plus a quarter of the excess allowed, or a
 * quarter of an absolute limit): an exact binomial test at `confirmAlpha`. Null when they are;
 * else why not.
 */
function unconfirmed(s: RolloutState, c: Chart, share: number, config: RolloutConfig, P: RolloutParameters): string | null {
  const { since, primarySince } = c;
  const limit = config.maxErrorRate;
  const margin = limit.rate * share;
  let allowed: number;
  let against: string;
  if (limit.kind === 'absolute') {
    allowed = margin;
    against = share === 1 ? `the ${pct(limit.rate)} limit` : `a quarter of the ${pct(limit.rate)} limit`;
  } else {
    const pool = primaryRate(s);
    const upper = primarySince.requests > 0 ? wilson(primarySince.errors, primarySince.requests, normalQuantile(1 - P.confirmAlpha)).upper : (pool?.rate ?? 1);
    allowed = upper + margin;
    against = `the primary's ${int(primarySince.errors)} of ${int(primarySince.requests)} in the same windows (at most ${pct(upper)}) + ${pct(margin, 2)}`;
  }
  if (allowed < 1 && binomialTail(since.errors, since.requests, allowed) < P.confirmAlpha) return null;
  return `an error statistic reached its alarm level, but the canary's ${int(since.errors)} errors in ${int(since.requests)} requests are not shown above ${against}: not rolled back`;
}

/** One window into a chart: its counts and statistic; the peak inside the window. */
function chartStep(c: Chart, w: RolloutWindow, pOk: number, pBad: number): number {
  const errors = Math.min(w.canary.errors, w.canary.requests);
  const r = bernoulliCusum(c.s, errors, w.canary.requests - errors, pOk, pBad);
  c.since.requests += w.canary.requests;
  c.since.errors += errors;
  c.primarySince.requests += w.primary.requests;
  c.primarySince.errors += Math.min(w.primary.errors, w.primary.requests);
  c.s = r.s;
  return r.peak;
}

/**
 * Two CUSUM charts over the same canary requests (a "multi-chart" CUSUM): the steady one, bad at
 * the excess allowed, catches a canary a little over it; the burst one, bad at `burstShift` times
 * it, adds several times more per error and drains as fast, so a canary that suddenly fails often
 * is caught within a few requests and chance pairs of errors never add up. Either chart's alarm,
 * confirmed on its own counts by the same-window test, rolls back.
 */
export function judgeErrors(ctx: Ctx, w: RolloutWindow): void {
  const { s, config, P } = ctx;
  if (w.canary.requests <= 0) return;
  const rates = errorRates(s, config, P);
  if (!rates) return;
  const charts = [
    { name: 'steady', c: s.cusum, alarm: P.cusumAlarm, confirmShare: 0.25, peak: chartStep(s.cusum, w, rates.pOk, rates.pBad) },
    { name: 'burst', c: s.burst, alarm: P.burstAlarm, confirmShare: P.burstConfirmShare, peak: chartStep(s.burst, w, rates.pOk, rates.pBurst) },
  ];
  let confirmed: (typeof charts)[number] | null = null;
  for (const k of charts) {
    if (k.peak < k.alarm) {
      if (k.c.s === 0) Object.assign(k.c, freshChart());
      continue;
    }
    const why = unconfirmed(s, k.c, k.confirmShare, config, P);
    if (!why) {
      confirmed ??= k;
      continue;
    }
    // Back to half the alarm level (the run holds): the next test needs that much new evidence,
    // so a shared failure is not re-tested every window until a chance excess confirms it, and
    // does not pile up a debt to pay off later. The counts stay: a bad canary's next test has more.
    k.c.s = k.alarm / 2;
    s.cusum.unconfirmed = why;
  }
  if (s.cusum.s === 0 && s.burst.s === 0) s.cusum.unconfirmed = null;
  if (!confirmed) return;
  const c = confirmed.c;
  const held =
    config.maxErrorRate.kind === 'relative'
      ? `the primary's ${int(c.primarySince.errors)} of ${int(c.primarySince.requests)} in the same windows + ${pct(config.maxErrorRate.rate)} allowed`
      : `the ${pct(config.maxErrorRate.rate)} limit`;
  c.s = confirmed.peak;
  mustRollBack(
    ctx,
    `canary errors: ${int(c.since.errors)} of ${int(c.since.requests)} requests (${pct(c.since.errors / c.since.requests)}) against ${held}; the ${confirmed.name} error statistic reached ${confirmed.peak.toFixed(2)} ≥ ${confirmed.alarm} at ${stepName(config, s.step)}`,
  );
}
