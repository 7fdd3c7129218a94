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
import type { RolloutConfig } from './config.js';
import type { Ctx } from './context.js';
import type { RolloutWindow } from './inputs.js';
import { ROLLOUT_PARAMETERS, type DecideOptions } from './parameters.js';
import { applyAction, followConfig } from './phases.js';
import { refresh } from './report.js';
import { cloneState, firstPhase, freshChart, freshCusum, freshEvidence, PASS_NOTHING, type RolloutState, type Transition } from './state.js';
import { consume } from './window.js';

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

/**
 * The canary's live percent and the percent of requests mirrored to it. The primaries share
 * `100 − canaryPercent` as their static split says.
 */
export function effectiveWeights(state: RolloutState, config: RolloutConfig): { canary: string; canaryPercent: number; mirrorPercent: number } {
  return { canary: config.canary, canaryPercent: state.weight, mirrorPercent: state.mirrorPercent };
}
