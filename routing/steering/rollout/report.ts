/** What the page shows: each check's value against its threshold, the warnings, and what the run needs. */
import { sumOf } from '../../stats/inference.js';
import { agreementBounds, agreementVerdict } from './agreement.js';
import { active, judgedPhase, type Ctx } from './context.js';
import { chartVerdict, cusumVerdict, errorRates, primaryRate, primaryUnhealthy } from './error-charts.js';
import { describeLatency } from './latency.js';
import type { Chart, Check } from './state.js';
import { int, ms, pct, secs, stepName } from './text.js';
import { blockers, phaseTime } from './window.js';

/** Recompute the checks, warnings and needs the page and the metrics read from the state. */
export function refresh(ctx: Ctx): void {
  const { s, config, P } = ctx;
  const rates = errorRates(s, config, P);
  const base = primaryRate(s);
  const stepErr = s.stepCanary.requests > 0 ? s.stepCanary.errors / s.stepCanary.requests : null;
  const allowed = config.maxErrorRate.kind === 'absolute' ? config.maxErrorRate.rate : base ? base.rate + config.maxErrorRate.rate : null;
  const seq = cusumVerdict(s, P);
  const errors: Check = {
    value: stepErr,
    threshold: allowed,
    verdict: !rates ? 'hold' : seq,
    detail:
      (stepErr === null ? 'no canary requests at this step yet' : `${int(s.stepCanary.errors)} of ${int(s.stepCanary.requests)} canary requests failed at this step`) +
      (config.maxErrorRate.kind === 'relative'
        ? base
          ? `; primary ${pct(base.rate, 2)} + ${pct(config.maxErrorRate.rate)} allowed`
          : '; no primary requests yet'
        : `; absolute limit ${pct(config.maxErrorRate.rate)}`),
  };
  const chartCheck = (c: Chart, alarm: number, bad: number | undefined): Check => ({
    value: c.s,
    threshold: alarm,
    verdict: !rates ? 'hold' : chartVerdict(c, alarm),
    detail: rates
      ? `CUSUM of the canary's errors, fine at ${pct(rates.pOk, 2)} and bad at ${pct(bad!, 2)}; ${int(c.since.errors)} errors in ${int(c.since.requests)} requests since it last stood at 0; rolls back at ${alarm}, advances under ${(alarm / 2).toFixed(2)}`
      : 'waiting: no primary requests to compare with yet, or the primary is unhealthy itself',
  });
  const sequential = chartCheck(s.cusum, P.cusumAlarm, rates?.pBad);
  const burst = chartCheck(s.burst, P.burstAlarm, rates?.pBurst);
  const j = s.lastInterval;
  const n1 = sumOf(s.interval.canary);
  const n2 = sumOf(s.interval.primary);
  const filling = `this interval so far: ${int(n1)} canary and ${int(n2)} primary samples (${P.minLatencySamples} each needed)`;
  const latencyShift: Check = j
    ? { value: j.shift, threshold: config.maxLatencyShift, verdict: j.shiftVerdict, detail: `last interval: ${describeLatency(j, config)}; ${filling}` }
    : { value: null, threshold: config.maxLatencyShift, verdict: 'hold', detail: `no interval judged at this step yet; ${filling}` };
  const p99: Check =
    config.maxP99Ms === null
      ? { value: j?.canaryP99 ?? null, threshold: null, verdict: 'pass', detail: 'no ceiling set (maxP99)' }
      : j
        ? {
            value: j.canaryP99,
            threshold: config.maxP99Ms,
            verdict: j.p99Verdict,
            detail: `last interval: canary p99 ${ms(j.canaryP99)}, primary ${ms(j.primaryP99)}; fails when more than 1% of the canary's requests are shown slower than ${ms(config.maxP99Ms)}`,
          }
        : { value: null, threshold: config.maxP99Ms, verdict: 'hold', detail: `no interval judged at this step yet; ${filling}` };
  let agreement: Check;
  if (!config.mirror) agreement = { value: null, threshold: null, verdict: 'pass', detail: 'no mirror phase' };
  else if (judgedPhase(s) !== 'Mirroring' && s.checks.agreement.threshold !== null)
    agreement = s.checks.agreement; // as the mirror phase left it
  else {
    const { compared, agree } = s.agreement;
    const b = agreementBounds(s, P);
    agreement = {
      value: compared > 0 ? agree / compared : null,
      threshold: config.mirror.minAgreement,
      verdict: agreementVerdict(s, config, P),
      detail: `${int(agree)} of ${int(compared)} mirrored answers agreed; at least ${pct(b.lower)} at ${pct(P.agreementConfidence, 0)} confidence (passes at ${pct(config.mirror.minAgreement)}), at most ${pct(b.upper)} at ${pct(P.agreementFailConfidence, 0)} (fails under it)`,
    };
  }
  s.checks = { errors, sequential, burst, latencyShift, p99, agreement };

  s.warnings = [];
  const sick = primaryUnhealthy(s, config, P);
  if (sick !== null && active(s.phase)) {
    s.warnings.push(`the primary itself is unhealthy: it fails ${pct(sick)} of its requests; the canary is not rolled back for failing alike, and the run does not advance`);
  }
  if (j?.p99Verdict === 'hold' && active(s.phase)) {
    s.warnings.push(`the primary's own p99 (${ms(j.primaryP99)}) is over maxP99 (${ms(config.maxP99Ms)}) as well: the ceiling is not held against the canary`);
  }
  if (s.cusum.unconfirmed && active(s.phase)) s.warnings.push(s.cusum.unconfirmed);
  if (s.pendingRollback) s.warnings.push(`rolls back at resume: ${s.pendingRollback}`);
  if (s.actionNote) s.warnings.push(s.actionNote);

  switch (s.phase) {
    case 'Promoted':
      s.needs = [`nothing: promoted at ${s.weight}%; write traffic: ${s.weight} for ${config.canary} into the SeldonDeployment`];
      break;
    case 'RolledBack':
      s.needs = ['nothing: rolled back; change the canary predictor or set seldon.io/gateway-rollout-action to retry'];
      break;
    default: {
      const needs = blockers(ctx, true);
      const left = phaseTime(ctx) - (s.consumedUntil - s.stepStartedAt);
      if (left > 0) needs.push(`needs ${secs(left)} more at ${stepName(config, s.step)}`);
      if (s.phase === 'Paused') needs.unshift('paused: set seldon.io/gateway-rollout-action to resume');
      s.needs = needs;
    }
  }
}
