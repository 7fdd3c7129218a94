/** One closed window judged: errors, agreement, the latency interval, then advance, hold or roll back; and what a step still waits for. */
import { emptyLatencyCounts } from '../../stats/latency-buckets.js';
import { sumOf } from '../../stats/inference.js';
import { agreementBounds, agreementVerdict, comparisonsNeeded, comparisonsToPass } from './agreement.js';
import { active, judgedPhase, record, rolledBack, type Ctx } from './context.js';
import { chartVerdict, judgeErrors, primaryRate, primaryUnhealthy, updateBaseline } from './error-charts.js';
import type { RolloutWindow } from './inputs.js';
import { describeLatency, judgeLatency } from './latency.js';
import { advance, mustRollBack } from './phases.js';
import type { LatencyJudgement } from './state.js';
import { int, ms, pct, secs, stepName } from './text.js';

function addInto(into: number[], from: readonly number[]): void {
  const n = Math.min(into.length, from.length);
  for (let i = 0; i < n; i++) into[i]! += from[i]!;
}

/** The shortest time at the current step: the mirror phase's `forMs`, or a step's interval. */
export function phaseTime(ctx: Ctx): number {
  return judgedPhase(ctx.s) === 'Mirroring' ? (ctx.config.mirror?.forMs ?? 0) : ctx.config.intervalMs;
}

/** Judge one window not seen before: errors first, then agreement and the latency interval, then advance or hold. */
export function consume(ctx: Ctx, w: RolloutWindow): void {
  const { s, config, P } = ctx;
  updateBaseline(ctx, w.primary, w.end);
  if (!active(s.phase)) return;
  const mirroring = judgedPhase(s) === 'Mirroring';

  judgeErrors(ctx, w);
  if (rolledBack(s)) return;

  if (w.start >= s.stepStartedAt) {
    s.stepCanary.requests += w.canary.requests;
    s.stepCanary.errors += w.canary.errors;
    s.stepPrimary.requests += w.primary.requests;
    s.stepPrimary.errors += w.primary.errors;
    addInto(s.interval.canary, w.canary.latency);
    addInto(s.interval.primary, w.primary.latency);
    if (mirroring) {
      s.agreement.compared += w.agreement.compared;
      s.agreement.agree += Math.min(w.agreement.agree, w.agreement.compared);
    }
  }

  if (mirroring && config.mirror && agreementVerdict(s, config, P) === 'fail') {
    const b = agreementBounds(s, P);
    mustRollBack(
      ctx,
      `agreement: ${int(s.agreement.agree)} of ${int(s.agreement.compared)} mirrored answers agreed (${pct(s.agreement.agree / s.agreement.compared)}); at ${pct(P.agreementFailConfidence, 0)} confidence at most ${pct(b.upper)}, under the ${pct(config.mirror.minAgreement)} required`,
    );
    if (rolledBack(s)) return;
  }

  let closed: LatencyJudgement | null = null;
  const intervalDue = w.end - s.interval.start >= config.intervalMs;
  if (intervalDue) {
    closed = judgeLatency(s.interval.canary, s.interval.primary, config, w.end, P);
    if (closed) {
      s.lastInterval = closed;
      s.interval = { start: w.end, canary: emptyLatencyCounts(), primary: emptyLatencyCounts() };
      s.intervals.judged++;
      if (closed.verdict === 'fail') {
        s.intervals.failed++;
        s.failingIntervals++;
        if (s.failingIntervals >= config.threshold) {
          mustRollBack(ctx, `${s.failingIntervals} failing latency intervals at ${stepName(config, s.step)} (threshold ${config.threshold}); the last: ${describeLatency(closed, config)}`);
          if (rolledBack(s)) return;
        }
      }
    }
  }

  if (s.phase === 'Paused') return;
  const timeUp = w.end - s.stepStartedAt >= phaseTime(ctx);
  if (closed?.verdict === 'pass' && timeUp && ctx.mayAdvance && blockers(ctx, false).length === 0) {
    const errs = s.stepCanary.requests > 0 ? `, ${pct(s.stepCanary.errors / s.stepCanary.requests)} errors, error statistic ${s.cusum.s.toFixed(2)} of ${P.cusumAlarm}` : '';
    const agree = mirroring
      ? `, agreement ${pct(s.agreement.agree / s.agreement.compared)} over ${int(s.agreement.compared)} comparisons (at least ${pct(agreementBounds(s, P).lower)} at ${pct(P.agreementConfidence, 0)} confidence)`
      : '';
    advance(ctx, `${stepName(config, s.step)} passed after ${secs(w.end - s.stepStartedAt)}: ${int(s.stepCanary.requests)} canary requests${errs}${agree}; ${describeLatency(closed, config)}`);
    return;
  }
  // Held: the step could have passed now (its time is up, an interval was due) but evidence is short.
  if (timeUp && intervalDue && s.heldStep !== s.step && s.lastInterval?.verdict !== 'fail') {
    const waits = blockers(ctx, closed === null);
    if (waits.length > 0) {
      s.heldStep = s.step;
      record(ctx, 'RolloutHeld', s.phase, `${stepName(config, s.step)} holds after ${secs(w.end - s.stepStartedAt)}: ${waits.join('; ')}`);
    }
  }
}

/**
 * What keeps the current step from advancing for want of evidence, in words; empty when the
 * data are all there (the last interval's verdict and the time are judged by the caller).
 * `samples`: include the samples the interval being filled still needs (not when one was just judged).
 */
export function blockers(ctx: Ctx, samples: boolean): string[] {
  const { s, config, P } = ctx;
  const out: string[] = [];
  const mirroring = judgedPhase(s) === 'Mirroring';
  const what = mirroring ? 'mirrored canary requests' : 'canary requests';
  if (s.stepCanary.requests < config.minRequests) {
    out.push(`needs ${int(config.minRequests - s.stepCanary.requests)} more ${what} (${int(s.stepCanary.requests)} of ${int(config.minRequests)} at ${stepName(config, s.step)})`);
  }
  const n1 = sumOf(s.interval.canary);
  const n2 = sumOf(s.interval.primary);
  if (samples && n1 < P.minLatencySamples) out.push(`needs ${int(P.minLatencySamples - n1)} more canary latency samples in this interval (${int(n1)} of ${P.minLatencySamples})`);
  if (samples && n2 < P.minLatencySamples) out.push(`needs ${int(P.minLatencySamples - n2)} more primary latency samples in this interval (${int(n2)} of ${P.minLatencySamples})`);
  if (s.lastInterval?.verdict === 'hold') out.push(`needs the primary's own p99 back under ${ms(config.maxP99Ms)} (it is ${ms(s.lastInterval.primaryP99)})`);
  if (chartVerdict(s.cusum, P.cusumAlarm) === 'hold') out.push(`needs the error statistic under ${(P.cusumAlarm / 2).toFixed(2)} (it is ${s.cusum.s.toFixed(2)})`);
  if (chartVerdict(s.burst, P.burstAlarm) === 'hold') out.push(`needs the error burst statistic under ${(P.burstAlarm / 2).toFixed(2)} (it is ${s.burst.s.toFixed(2)})`);
  if (!primaryRate(s)) out.push('needs primary requests to compare the canary with');
  const sick = primaryUnhealthy(s, config, P);
  if (sick !== null) out.push(`needs the primary to recover: it fails ${pct(sick)} of its requests`);
  if (mirroring && config.mirror) {
    const { compared, agree } = s.agreement;
    if (agreementVerdict(s, config, P) !== 'pass') {
      const min = config.mirror.minAgreement;
      const p = compared > 0 ? agree / compared : 1;
      const needed = comparisonsNeeded(min, P);
      const total = comparisonsToPass(p, min, 1 - P.agreementConfidence, needed);
      const more = total === null ? '' : `, about ${int(Math.max(total - compared, 1))} more if it stays at ${pct(p)}`;
      out.push(
        compared < needed
          ? `needs ${int(needed - compared)} more comparisons of mirrored answers before agreement is judged (${int(compared)} of ${int(needed)}; ${pct(min)} required)`
          : `needs more comparisons: ${pct(p)} agreement over ${int(compared)} is not yet shown at or above ${pct(min)}${more}`,
      );
    }
  }
  return out;
}
