/**
 * A rollout run's state (a plain JSON value the store keeps, compare-and-set on `epoch`), its
 * checks and transitions, and how a run's evidence starts afresh.
 */
import { emptyLatencyCounts } from '../../stats/latency-buckets.js';
import type { RolloutConfig } from './config.js';

export type Phase = 'Mirroring' | 'Progressing' | 'Paused' | 'Promoted' | 'RolledBack';
export type TransitionKind = 'RolloutStarted' | 'RolloutAdvanced' | 'RolloutPromoted' | 'RolloutRolledBack' | 'RolloutPaused' | 'RolloutResumed' | 'RolloutHeld' | 'RolloutRetried';

export interface Transition {
  /** When it was decided (the `now` of that `decide`). */
  readonly at: number;
  readonly kind: TransitionKind;
  readonly from: Phase;
  readonly to: Phase;
  /** Step index after the transition (0-based; -1 in the mirror phase) and the live canary percent. */
  readonly step: number;
  readonly weight: number;
  /** A sentence with the numbers that caused it. */
  readonly reason: string;
}

export type Verdict = 'pass' | 'fail' | 'hold';

/** One check's current value against its threshold, for the page and the metrics. */
export interface Check {
  readonly value: number | null;
  readonly threshold: number | null;
  readonly verdict: Verdict;
  readonly detail: string;
}

export interface RolloutChecks {
  /** Canary error rate at this step against the rate it is held to (primary + maxErrorRate, or the absolute limit). */
  readonly errors: Check;
  /** The steady CUSUM statistic against its alarm level. */
  readonly sequential: Check;
  /** The burst CUSUM statistic against its alarm level. */
  readonly burst: Check;
  /** Canary latency over the primary's (Hodges-Lehmann ratio − 1) against maxLatencyShift, last closed interval. */
  readonly latencyShift: Check;
  /** Canary p99 in ms against maxP99, last closed interval. */
  readonly p99: Check;
  /** Agreement of the mirrored answers over the mirror phase against minAgreement. */
  readonly agreement: Check;
}

export interface Counts {
  requests: number;
  errors: number;
}

/** A CUSUM chart: its statistic, and the canary's and the primary's counts in the same windows since it last stood at 0 (what an alarm is confirmed on). */
export interface Chart {
  s: number;
  since: Counts;
  primarySince: Counts;
}

/** What the last closed latency interval showed. */
export interface LatencyJudgement {
  readonly end: number;
  readonly canarySamples: number;
  readonly primarySamples: number;
  /** Hodges-Lehmann estimate of canary/primary − 1. */
  readonly shift: number | null;
  /** One-sided Mann-Whitney p-value of "slower by more than the margin". */
  readonly p: number;
  readonly shiftVerdict: Verdict;
  readonly canaryP99: number | null;
  readonly primaryP99: number | null;
  readonly p99Verdict: Verdict;
  readonly verdict: Verdict;
}

export interface RolloutState {
  readonly version: 1;
  readonly runId: string;
  /** 1, and one more at each `retry`. */
  attempt: number;
  /** Raised by one at every `decide`; store the result only if the stored epoch is still the input's. */
  epoch: number;
  phase: Phase;
  /** What `resume` returns to while Paused. */
  resumeTo: 'Mirroring' | 'Progressing' | null;
  /** Index into `steps`; -1 in the mirror phase. */
  step: number;
  /** Live canary percent. */
  weight: number;
  /** Percent of requests mirrored to the canary. */
  mirrorPercent: number;
  startedAt: number;
  stepStartedAt: number;
  /** Canary and primary counts at this step (windows that started after it began). */
  stepCanary: Counts;
  stepPrimary: Counts;
  /** The latency interval being filled. */
  interval: { start: number; canary: number[]; primary: number[] };
  lastInterval: LatencyJudgement | null;
  /** Failing latency intervals at this step. */
  failingIntervals: number;
  /** Latency intervals judged, and failed, over this attempt. */
  intervals: { judged: number; failed: number };
  /** Mirror-phase comparisons. */
  agreement: { compared: number; agree: number };
  /** The primary's error counts, decayed with `baselineHalfLifeMs`, as of `at`. */
  baseline: { requests: number; errors: number; at: number | null };
  /** The steady error chart (bad at the primary's rate + `maxErrorRate`), and why the last alarm of either chart was not confirmed. */
  cusum: Chart & { unconfirmed: string | null };
  /** The burst chart (bad at `burstShift` times the excess allowed): a sudden failure is caught within a few requests. */
  burst: Chart;
  /** A rollback the run met while Paused: it happens at `resume`. */
  pendingRollback: string | null;
  /** End of the last window consumed: a window is judged at most once. */
  consumedUntil: number;
  /** The action annotation's value last acted on. */
  action: string;
  actionNote: string | null;
  /** The step a RolloutHeld was recorded for (one per step). */
  heldStep: number | null;
  checks: RolloutChecks;
  /** What the run waits for, in words ("needs 212 more canary requests at step 1 (1%)"). */
  needs: string[];
  warnings: string[];
  /** The last 20 transitions, oldest first. */
  transitions: Transition[];
}

export const PASS_NOTHING: Check = { value: null, threshold: null, verdict: 'hold', detail: 'no data yet' };

export function freshEvidence(now: number): Pick<RolloutState, 'stepStartedAt' | 'stepCanary' | 'stepPrimary' | 'interval' | 'lastInterval' | 'failingIntervals'> {
  return {
    stepStartedAt: now,
    stepCanary: { requests: 0, errors: 0 },
    stepPrimary: { requests: 0, errors: 0 },
    interval: { start: now, canary: emptyLatencyCounts(), primary: emptyLatencyCounts() },
    lastInterval: null,
    failingIntervals: 0,
  };
}

export function freshChart(): Chart {
  return { s: 0, since: { requests: 0, errors: 0 }, primarySince: { requests: 0, errors: 0 } };
}

export function freshCusum(): RolloutState['cusum'] {
  return { ...freshChart(), unconfirmed: null };
}

const cloneChart = (c: Chart): Chart => ({ s: c.s, since: { ...c.since }, primarySince: { ...c.primarySince } });

export function firstPhase(config: RolloutConfig): Pick<RolloutState, 'phase' | 'step' | 'weight' | 'mirrorPercent'> {
  return config.mirror ? { phase: 'Mirroring', step: -1, weight: 0, mirrorPercent: config.mirror.percent } : { phase: 'Progressing', step: 0, weight: config.steps[0]!, mirrorPercent: 0 };
}

export function cloneState(s: RolloutState): RolloutState {
  return {
    ...s,
    stepCanary: { ...s.stepCanary },
    stepPrimary: { ...s.stepPrimary },
    interval: { start: s.interval.start, canary: [...s.interval.canary], primary: [...s.interval.primary] },
    agreement: { ...s.agreement },
    intervals: { ...s.intervals },
    baseline: { ...s.baseline },
    cusum: { ...cloneChart(s.cusum), unconfirmed: s.cusum.unconfirmed },
    // A state stored by a build without the burst chart starts it afresh.
    burst: s.burst ? cloneChart(s.burst) : freshChart(),
    needs: [...s.needs],
    warnings: [...s.warnings],
    transitions: [...s.transitions],
  };
}
