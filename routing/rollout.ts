/**
 * The rollout's decision (docs/rollouts.md): a pure `decide(state, windows, config, now, action)`
 * that judges a canary predictor against the primary in the same closed windows and moves the run
 * along its phases. No I/O, no clock, no randomness: the caller passes the store's time and the
 * windows, stores the returned state (a plain JSON value, compare-and-set on `epoch`) and turns the
 * returned transitions into Events, log lines and metrics.
 *
 * Phases: Mirroring (optional; live weight 0, a percent of requests mirrored to the canary) →
 * Progressing (one step after another) → Promoted (the last step's weight holds), or RolledBack
 * (weight 0 until the canary changes or `retry`). Paused freezes the weight.
 *
 * The checks, each window (docs/rollouts.md#the-statistics):
 * - errors: two Bernoulli CUSUMs over the canary's requests against the primary's recent error
 *   rate, one bad at the excess `maxErrorRate` allows (steady), one at five times it (burst: a
 *   sudden failure within a few requests); an alarm of either rolls back once the canary's errors
 *   are confirmed above the primary's in exactly the same windows;
 * - latency, per interval of at least `interval` and 50 samples a side: a one-sided Mann-Whitney
 *   test of "the canary is slower than the primary by more than `maxLatencyShift`", and the
 *   canary's own p99 against `maxP99`; `threshold` failing intervals at one step roll back;
 * - agreement (mirror phase): exact bounds on agree/compared over the phase; the upper bound under
 *   `minAgreement` rolls back, the lower bound over it passes.
 * Nothing is judged against an unhealthy primary (5% errors or more): the run holds and warns.
 * No data never advances and never rolls back: the step holds and `needs` says what it waits for.
 */
import { bucketShiftOf, emptyLatencyCounts, LATENCY_BOUNDS_MS, LATENCY_BUCKET_RATIO, quantileOf } from './latency-buckets.js';
import type { RolloutConfig } from './rollout-config.js';
import { bernoulliCusum, binomialTail, exactBounds, hodgesLehmann, mannWhitneyGreater, normalQuantile, shiftCounts, sumOf, wilson } from './statistics.js';

export { parseRolloutAnnotation, ROLLOUT_ANNOTATION, ROLLOUT_ACTION_ANNOTATION, ROLLOUT_DEFAULTS } from './rollout-config.js';
export type { RolloutConfig, MirrorConfig, ErrorLimit, Sticky } from './rollout-config.js';

// ---------------------------------------------------------------------------------------------
// Inputs.
// ---------------------------------------------------------------------------------------------

/** One predictor side's counts in one window. */
export interface Tally {
  readonly requests: number;
  readonly errors: number;
  /** Counts per latency bucket (`latency-buckets.ts`), `LATENCY_BUCKET_COUNT` long. */
  readonly latency: readonly number[];
}

/**
 * One closed window of counts, ms on the store's clock. In the mirror phase `canary` counts the
 * mirrored requests (their errors and latencies are judged as live ones would be) and `agreement`
 * how many of the mirrored answers were compared with the primary's and agreed.
 */
export interface RolloutWindow {
  readonly start: number;
  readonly end: number;
  readonly primary: Tally;
  readonly canary: Tally;
  readonly agreement: { readonly compared: number; readonly agree: number };
}

const GRPC_ERRORS = new Set([2 /* UNKNOWN */, 4 /* DEADLINE_EXCEEDED */, 13 /* INTERNAL */, 14 /* UNAVAILABLE */]);

/** Whether an answer counts as an error: a 5xx status, or gRPC UNKNOWN, DEADLINE_EXCEEDED, INTERNAL or UNAVAILABLE (`code` is the grpc-status). */
export function isRolloutError(protocol: 'rest' | 'grpc', code: number): boolean {
  return protocol === 'rest' ? code >= 500 && code <= 599 : GRPC_ERRORS.has(code);
}

// ---------------------------------------------------------------------------------------------
// State.
// ---------------------------------------------------------------------------------------------

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

const TRANSITIONS_KEPT = 20;
const P99_SHARE = 0.01;

export interface DecideOptions {
  /** False on a replica that cannot reach the store: it may roll back (or pause), never advance, promote, resume or retry. */
  readonly mayAdvance?: boolean;
  readonly parameters?: Partial<RolloutParameters>;
}

// ---------------------------------------------------------------------------------------------
// Text.
// ---------------------------------------------------------------------------------------------

const pct = (x: number, digits = 1): string => `${(x * 100).toFixed(digits)}%`;
const signedPct = (x: number): string => `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(1)}%`;
const ms = (x: number | null): string => (x === null ? 'n/a' : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`);
const secs = (x: number): string => `${Math.ceil(x / 1000)}s`;
/** Thousands separated by commas (toLocaleString costs a tenth of a simulated run). */
const int = (x: number): string => String(Math.round(x)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

function stepName(config: RolloutConfig, step: number): string {
  if (step < 0) return 'the mirror phase';
  return `step ${step + 1} of ${config.steps.length} (${config.steps[step]}%)`;
}

// ---------------------------------------------------------------------------------------------
// Construction.
// ---------------------------------------------------------------------------------------------

const PASS_NOTHING: Check = { value: null, threshold: null, verdict: 'hold', detail: 'no data yet' };

function freshEvidence(now: number): Pick<RolloutState, 'stepStartedAt' | 'stepCanary' | 'stepPrimary' | 'interval' | 'lastInterval' | 'failingIntervals'> {
  return {
    stepStartedAt: now,
    stepCanary: { requests: 0, errors: 0 },
    stepPrimary: { requests: 0, errors: 0 },
    interval: { start: now, canary: emptyLatencyCounts(), primary: emptyLatencyCounts() },
    lastInterval: null,
    failingIntervals: 0,
  };
}

function freshChart(): Chart {
  return { s: 0, since: { requests: 0, errors: 0 }, primarySince: { requests: 0, errors: 0 } };
}

function freshCusum(): RolloutState['cusum'] {
  return { ...freshChart(), unconfirmed: null };
}

const cloneChart = (c: Chart): Chart => ({ s: c.s, since: { ...c.since }, primarySince: { ...c.primarySince } });

function firstPhase(config: RolloutConfig): Pick<RolloutState, 'phase' | 'step' | 'weight' | 'mirrorPercent'> {
  return config.mirror ? { phase: 'Mirroring', step: -1, weight: 0, mirrorPercent: config.mirror.percent } : { phase: 'Progressing', step: 0, weight: config.steps[0]!, mirrorPercent: 0 };
}

/**
 * A new run at `now`. `action` is the action annotation's value when the run starts: a value
 * left over from an earlier run is not acted on.
 */
export function initialState(runId: string, config: RolloutConfig, now: number, action = ''): RolloutState {
  const first = firstPhase(config);
  const s: RolloutState = {
    version: 1,
    runId,
    attempt: 1,
    epoch: 0,
    ...first,
    resumeTo: null,
    startedAt: now,
    ...freshEvidence(now),
    agreement: { compared: 0, agree: 0 },
    intervals: { judged: 0, failed: 0 },
    baseline: { requests: 0, errors: 0, at: null },
    cusum: freshCusum(),
    burst: freshChart(),
    pendingRollback: null,
    consumedUntil: now,
    action: action.trim(),
    actionNote: null,
    heldStep: null,
    checks: { errors: PASS_NOTHING, sequential: PASS_NOTHING, burst: PASS_NOTHING, latencyShift: PASS_NOTHING, p99: PASS_NOTHING, agreement: PASS_NOTHING },
    needs: [],
    warnings: [],
    transitions: [],
  };
  s.transitions.push({
    at: now,
    kind: 'RolloutStarted',
    from: first.phase,
    to: first.phase,
    step: first.step,
    weight: first.weight,
    reason: `run ${runId} started: ${first.phase === 'Mirroring' ? `mirroring ${first.mirrorPercent}% of requests to ${config.canary}` : `${config.canary} at ${first.weight}%`}`,
  });
  refresh({ s, config, P: ROLLOUT_PARAMETERS, mayAdvance: true, out: [], now });
  return s;
}

function cloneState(s: RolloutState): RolloutState {
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

// ---------------------------------------------------------------------------------------------
// The decision.
// ---------------------------------------------------------------------------------------------

interface Ctx {
  readonly s: RolloutState;
  readonly config: RolloutConfig;
  readonly P: RolloutParameters;
  readonly mayAdvance: boolean;
  readonly out: Transition[];
  readonly now: number;
}

/**
 * Act on a changed action value, then consume the windows that end after `consumedUntil` (in
 * start order; each at most once), judging each as it comes. Returns the new state (epoch + 1)
 * and the transitions taken, in order.
 */
export function decide(
  state: RolloutState,
  windows: readonly RolloutWindow[],
  config: RolloutConfig,
  now: number,
  action: string,
  options: DecideOptions = {},
): { state: RolloutState; transitions: Transition[] } {
  const s = cloneState(state);
  s.epoch++;
  const ctx: Ctx = { s, config, P: { ...ROLLOUT_PARAMETERS, ...options.parameters }, mayAdvance: options.mayAdvance ?? true, out: [], now };
  followConfig(ctx);
  applyAction(ctx, action);
  const fresh = windows.filter((w) => w.end > s.consumedUntil).sort((a, b) => a.start - b.start || a.end - b.end);
  for (const w of fresh) {
    consume(ctx, w);
    s.consumedUntil = Math.max(s.consumedUntil, w.end);
  }
  refresh(ctx);
  return { state: s, transitions: ctx.out };
}

/** Read through a call, so that TypeScript does not narrow the phase across the calls that change it. */
const rolledBack = (s: RolloutState): boolean => s.phase === 'RolledBack';
const active = (p: Phase): boolean => p === 'Mirroring' || p === 'Progressing' || p === 'Paused';
/** The phase whose rules apply: a paused run is judged as the phase it resumes to. */
const judgedPhase = (s: RolloutState): Phase => (s.phase === 'Paused' ? s.resumeTo! : s.phase);

function record(ctx: Ctx, kind: TransitionKind, from: Phase, reason: string): void {
  const { s } = ctx;
  const t: Transition = { at: ctx.now, kind, from, to: s.phase, step: s.step, weight: s.weight, reason };
  ctx.out.push(t);
  s.transitions.push(t);
  if (s.transitions.length > TRANSITIONS_KEPT) s.transitions.splice(0, s.transitions.length - TRANSITIONS_KEPT);
}

/** A config edited mid-run: keep the step inside `steps`, leave a mirror phase that is gone, follow the step's weight. */
function followConfig(ctx: Ctx): void {
  const { s, config } = ctx;
  const phase = judgedPhase(s);
  if (phase === 'Mirroring' && !config.mirror) {
    s.step = 0;
    s.mirrorPercent = 0;
    if (s.phase === 'Paused') s.resumeTo = 'Progressing';
    else s.phase = 'Progressing';
  }
  if (phase === 'Mirroring' && config.mirror) s.mirrorPercent = config.mirror.percent;
  if (s.step >= config.steps.length) s.step = config.steps.length - 1;
  if (active(s.phase) && s.step >= 0) s.weight = config.steps[s.step]!;
}

function rollBack(ctx: Ctx, reason: string): void {
  const { s } = ctx;
  const from = s.phase;
  s.phase = 'RolledBack';
  s.resumeTo = null;
  s.weight = 0;
  s.mirrorPercent = 0;
  s.pendingRollback = null;
  record(ctx, 'RolloutRolledBack', from, reason);
}

/** Roll back now, or, while Paused, at `resume`. */
function mustRollBack(ctx: Ctx, reason: string): void {
  if (ctx.s.phase === 'Paused') ctx.s.pendingRollback ??= reason;
  else rollBack(ctx, reason);
}

function promote(ctx: Ctx, reason: string): void {
  const { s, config } = ctx;
  const from = s.phase;
  s.phase = 'Promoted';
  s.resumeTo = null;
  s.step = config.steps.length - 1;
  s.weight = config.steps[s.step]!;
  s.mirrorPercent = 0;
  s.pendingRollback = null;
  record(ctx, 'RolloutPromoted', from, `${reason}; write traffic: ${s.weight} for ${config.canary} into the SeldonDeployment`);
}

/** To the next step; reaching a 100% step, or passing the last one, is promotion. */
function advance(ctx: Ctx, reason: string): void {
  const { s, config } = ctx;
  const next = s.step + 1;
  if (next >= config.steps.length || config.steps[next] === 100) {
    if (next < config.steps.length) s.step = next;
    promote(ctx, reason);
    return;
  }
  const from = s.phase;
  s.phase = 'Progressing';
  s.step = next;
  s.weight = config.steps[next]!;
  s.mirrorPercent = 0;
  Object.assign(s, freshEvidence(ctx.now));
  record(ctx, 'RolloutAdvanced', from, `${reason}; ${config.canary} now at ${s.weight}%`);
}

const ACTIONS = ['pause', 'resume', 'abort', 'promote', 'retry'];

/**
 * The action annotation acts when its value changes. Its first word is the action, so
 * `retry 2` after `retry` acts again. A replica without the store acts only on pause and abort
 * and leaves the others for the one that has it.
 */
function applyAction(ctx: Ctx, raw: string): void {
  const { s, config } = ctx;
  const value = raw.trim();
  if (value === s.action) return;
  const word = (value.split(/\s+/)[0] ?? '').toLowerCase();
  if (!ctx.mayAdvance && word !== '' && word !== 'pause' && word !== 'abort') return;
  s.action = value;
  s.actionNote = null;
  const ignored = (why: string) => {
    s.actionNote = `action "${value}" ignored: ${why}`;
  };
  const by = `by seldon.io/gateway-rollout-action "${value}"`;
  switch (word) {
    case '':
      return;
    case 'pause':
      if (s.phase !== 'Mirroring' && s.phase !== 'Progressing') return ignored(`the run is ${s.phase}`);
      s.resumeTo = s.phase;
      s.phase = 'Paused';
      return record(ctx, 'RolloutPaused', s.resumeTo, `paused ${by} at ${stepName(config, s.step)}; the weight holds until resume`);
    case 'resume': {
      if (s.phase !== 'Paused') return ignored(`the run is ${s.phase}, not Paused`);
      s.phase = s.resumeTo!;
      s.resumeTo = null;
      record(ctx, 'RolloutResumed', 'Paused', `resumed ${by} at ${stepName(config, s.step)}`);
      if (s.pendingRollback) rollBack(ctx, `${s.pendingRollback} (met while paused)`);
      return;
    }
    case 'abort':
      if (!active(s.phase)) return ignored(`the run is ${s.phase}`);
      return rollBack(ctx, `aborted ${by} at ${stepName(config, s.step)}`);
    case 'promote':
      if (s.phase === 'Promoted') return ignored('the run is already Promoted');
      return promote(ctx, `promoted ${by} from ${s.phase} at ${stepName(config, s.step)}`);
    case 'retry': {
      if (s.phase !== 'RolledBack') return ignored(`only a RolledBack run is retried; this one is ${s.phase}`);
      const first = firstPhase(config);
      Object.assign(s, first, freshEvidence(ctx.now), {
        attempt: s.attempt + 1,
        resumeTo: null,
        startedAt: ctx.now,
        agreement: { compared: 0, agree: 0 },
        intervals: { judged: 0, failed: 0 },
        cusum: freshCusum(),
        burst: freshChart(),
        pendingRollback: null,
        heldStep: null,
      });
      return record(ctx, 'RolloutRetried', 'RolledBack', `retried ${by}: attempt ${s.attempt} starts at ${stepName(config, s.step)}`);
    }
    default:
      return ignored(`not one of ${ACTIONS.join(', ')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Errors: the primary's rate and the CUSUM.
// ---------------------------------------------------------------------------------------------

/** The primary's errors and requests, decayed; a window beyond chance for the rate so far restarts them from it. */
function updateBaseline(ctx: Ctx, primary: Tally, at: number): void {
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
function primaryRate(s: RolloutState): Rate | null {
  const { requests, errors } = s.baseline;
  return requests > 0 ? { rate: errors / requests, requests, errors } : null;
}

/** The primary is failing by itself: its error rate's lower bound is over the limit (the absolute one, or `primaryUnhealthyRate`). */
function primaryUnhealthy(s: RolloutState, config: RolloutConfig, P: RolloutParameters): number | null {
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
function errorRates(s: RolloutState, config: RolloutConfig, P: RolloutParameters): ChartRates | null {
  const limit = config.maxErrorRate;
  const r = primaryRate(s);
  if (!r || primaryUnhealthy(s, config, P) !== null) return null;
  const base = limit.kind === 'absolute' ? 0 : r.rate;
  const pOk = base + limit.rate / 4;
  const pBad = base + limit.rate;
  if (pBad >= 1) return null;
  return { pOk, pBad, pBurst: Math.max(pBad, Math.min(P.burstCeiling, base + P.burstShift * limit.rate)) };
}

function chartVerdict(c: Chart, alarm: number): Verdict {
  return c.s >= alarm ? 'fail' : c.s >= alarm / 2 ? 'hold' : 'pass';
}

/** The worse of the two charts' verdicts: a run advances only while both are under half their alarm levels. */
function cusumVerdict(s: RolloutState, P: RolloutParameters): Verdict {
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
function judgeErrors(ctx: Ctx, w: RolloutWindow): void {
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

// ---------------------------------------------------------------------------------------------
// Latency, per interval.
// ---------------------------------------------------------------------------------------------

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

function describeLatency(j: LatencyJudgement, config: RolloutConfig): string {
  const shift = `latency ${j.shift === null ? 'n/a' : signedPct(j.shift)} against the primary (allowed +${pct(config.maxLatencyShift, 0)}; one-sided Mann-Whitney p = ${j.p.toPrecision(2)}, ${int(j.canarySamples)} canary and ${int(j.primarySamples)} primary samples)`;
  const p99 = config.maxP99Ms === null ? '' : `, canary p99 ${ms(j.canaryP99)} (ceiling ${ms(config.maxP99Ms)}, primary ${ms(j.primaryP99)})`;
  return shift + p99;
}

// ---------------------------------------------------------------------------------------------
// One window.
// ---------------------------------------------------------------------------------------------

function addInto(into: number[], from: readonly number[]): void {
  const n = Math.min(into.length, from.length);
  for (let i = 0; i < n; i++) into[i]! += from[i]!;
}

/** The pass side's lower bound and the fail side's upper bound, each exact at its own confidence. */
function agreementBounds(s: RolloutState, P: RolloutParameters): { lower: number; upper: number } {
  const { agree, compared } = s.agreement;
  return { lower: exactBounds(agree, compared, P.agreementConfidence).lower, upper: exactBounds(agree, compared, P.agreementFailConfidence).upper };
}

/**
 * Fail when the agreement's exact upper bound is under `minAgreement` (so few agreed that a
 * canary at minAgreement would agree this little with probability under 1 − confidence); pass
 * when its lower bound is at or over it; else hold. Two binomial tails, not the bounds themselves.
 */
function agreementVerdict(s: RolloutState, config: RolloutConfig, P: RolloutParameters): Verdict {
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
function comparisonsNeeded(min: number, P: RolloutParameters): number {
  return min < 1 ? Math.max(P.minComparisons, Math.ceil(1 / (1 - min) - 1e-9)) : P.minComparisons;
}

/** How many comparisons agreeing at rate `p` would show agreement at or over `min`; null when p ≤ min. */
function comparisonsToPass(p: number, min: number, alpha: number, atLeast: number): number | null {
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

function phaseTime(ctx: Ctx): number {
  return judgedPhase(ctx.s) === 'Mirroring' ? (ctx.config.mirror?.forMs ?? 0) : ctx.config.intervalMs;
}

function consume(ctx: Ctx, w: RolloutWindow): void {
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
function blockers(ctx: Ctx, samples: boolean): string[] {
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

// ---------------------------------------------------------------------------------------------
// What the page shows.
// ---------------------------------------------------------------------------------------------

function refresh(ctx: Ctx): void {
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

// ---------------------------------------------------------------------------------------------
// What the workers apply.
// ---------------------------------------------------------------------------------------------

/**
 * The canary's live percent and the percent of requests mirrored to it. The primaries share
 * `100 − canaryPercent` as their static split says.
 */
export function effectiveWeights(state: RolloutState, config: RolloutConfig): { canary: string; canaryPercent: number; mirrorPercent: number } {
  return { canary: config.canary, canaryPercent: state.weight, mirrorPercent: state.mirrorPercent };
}
