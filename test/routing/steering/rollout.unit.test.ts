/**
 * The rollout annotation (docs/rollouts.md#the-annotation) and the decision
 * (docs/rollouts.md#phases-and-actions): every transition, the no-data rules, the actions, and
 * what the state says, driven window by window as the runtime drives it.
 */
import { describe, expect, it } from 'vitest';
import { parseRolloutAnnotation, ROLLOUT_DEFAULTS, type RolloutConfig } from '../../../routing/steering/rollout/config.js';
import { decide, effectiveWeights, initialState } from '../../../routing/steering/rollout/decide.js';
import { isRolloutError, type RolloutWindow } from '../../../routing/steering/rollout/inputs.js';
import { ROLLOUT_PARAMETERS } from '../../../routing/steering/rollout/parameters.js';
import type { RolloutState, Transition } from '../../../routing/steering/rollout/state.js';
import { emptyLatencyCounts, latencyBucket } from '../../../routing/stats/latency-buckets.js';
import { normalQuantile } from '../../../routing/stats/inference.js';

const PREDICTORS = ['main', 'v2'];

describe('parseRolloutAnnotation', () => {
  const parse = (raw: string, predictors = PREDICTORS) => parseRolloutAnnotation(raw, predictors);
  const error = (raw: string, predictors = PREDICTORS) => {
    const r = parse(raw, predictors);
    if (r.ok) throw new Error(`expected an error for ${raw}`);
    return r.error;
  };

  it('fills every field but canary with its default', () => {
    expect(parse('canary: v2')).toEqual({
      ok: true,
      value: {
        canary: 'v2',
        mirror: null,
        steps: [1, 5, 10, 25, 50, 100],
        intervalMs: 30_000,
        minRequests: 300,
        maxErrorRate: { kind: 'relative', rate: 0.02 },
        maxLatencyShift: 0.1,
        maxP99Ms: null,
        threshold: 2,
        sticky: null,
      },
    });
    expect(ROLLOUT_DEFAULTS.steps).toEqual([1, 5, 10, 25, 50, 100]);
  });

  it('reads the example annotation, as YAML or as JSON', () => {
    const yaml = [
      'canary: v2                        # the predictor being rolled out',
      'mirror: {percent: 100, for: 5m, minAgreement: 99%}',
      'steps: [1, 5, 10, 25, 50, 100]',
      'interval: 30s',
      'minRequests: 300',
      'maxErrorRate: "+2%"',
      'maxLatencyShift: 10%',
      'maxP99: 250ms',
      'threshold: 2',
      'sticky: header:X-User-Id',
    ].join('\n');
    const want: RolloutConfig = {
      canary: 'v2',
      mirror: { percent: 100, forMs: 300_000, minAgreement: 0.99 },
      steps: [1, 5, 10, 25, 50, 100],
      intervalMs: 30_000,
      minRequests: 300,
      maxErrorRate: { kind: 'relative', rate: 0.02 },
      maxLatencyShift: 0.1,
      maxP99Ms: 250,
      threshold: 2,
      sticky: { kind: 'header', name: 'x-user-id' },
    };
    expect(parse(yaml)).toEqual({ ok: true, value: want });
    expect(
      parse('{"canary":"v2","mirror":{"percent":100,"for":"5m","minAgreement":"99%"},"interval":"30s","maxErrorRate":"+2%","maxLatencyShift":"10%","maxP99":"250ms","sticky":"header:x-user-id"}'),
    ).toEqual({ ok: true, value: want });
  });

  it('reads durations with units, absolute error limits, the cookie, mirror defaults', () => {
    const r = parse('canary: v2\ninterval: 1m30s\nmaxErrorRate: 3%\nsticky: cookie\nmirror: {}\nmaxP99: 1.5s\nsteps: ["2%", 50]');
    expect(r.ok && r.value).toMatchObject({
      intervalMs: 90_000,
      maxErrorRate: { kind: 'absolute', rate: 0.03 },
      sticky: { kind: 'cookie' },
      mirror: { percent: 100, forMs: 300_000, minAgreement: 0.99 },
      maxP99Ms: 1500,
      steps: [2, 50],
    });
    expect(parse('canary: v2\ninterval: 1h').ok && parse('canary: v2\ninterval: 1h')).toMatchObject({ value: { intervalMs: 3_600_000 } });
  });

  it.each([
    ['canary: main', ['main'], 'two or more predictors'],
    ['canary: v3', PREDICTORS, 'canary "v3" is not a predictor of this deployment (main, v2)'],
    ['steps: [1, 5]', PREDICTORS, 'canary is required'],
    ['canary: v2\nsteps: [5, 5, 10]', PREDICTORS, 'steps must increase: 5 follows 5'],
    ['canary: v2\nsteps: [10, 5]', PREDICTORS, 'steps must increase: 5 follows 10'],
    ['canary: v2\nsteps: [0, 5]', PREDICTORS, 'steps entry 0 is not a percent between 1 and 100'],
    ['canary: v2\nsteps: [5, 101]', PREDICTORS, 'steps entry 101 is not a percent between 1 and 100'],
    ['canary: v2\nsteps: []', PREDICTORS, 'steps must be a non-empty list'],
    ['canary: v2\nsteps: [100]', PREDICTORS, 'steps start at 100%: every request would go to the canary before anything was judged'],
    ['canary: v2\ninterval: 30', PREDICTORS, 'interval 30 is not a duration like 250ms, 30s, 5m or 1h (a bare number has no unit)'],
    ['canary: v2\ninterval: 500ms', PREDICTORS, 'interval "500ms" is shorter than 1s'],
    ['canary: v2\nmaxErrorRate: 2', PREDICTORS, 'maxErrorRate 2 is not "+2%" (above the primary\'s rate) or "3%" (absolute)'],
    ['canary: v2\nmaxErrorRate: 0%', PREDICTORS, 'maxErrorRate "0%" must be above 0% and below 100%'],
    ['canary: v2\nminRequests: -3', PREDICTORS, 'minRequests -3 is not a whole number of at least 1'],
    ['canary: v2\nthreshold: 0', PREDICTORS, 'threshold 0 is not a whole number of at least 1'],
    ['canary: v2\nsticky: query:user', PREDICTORS, 'sticky "query:user" is not header:<name> or cookie'],
    ['canary: v2\nsticky: "header:bad name"', PREDICTORS, 'is not a valid header name'],
    ['canary: v2\nmaxErrorrate: 1%', PREDICTORS, 'unknown field "maxErrorrate" (known: canary, mirror, steps'],
    ['canary: v2\nmirror: {percent: 50, minAgreeement: 99%}', PREDICTORS, 'unknown field "mirror.minAgreeement"'],
    ['canary: v2\nmirror: {percent: 0}', PREDICTORS, 'mirror.percent 0 is outside (0%, 100%]'],
    ['canary: v2\nmirror: {minAgreement: 101%}', PREDICTORS, 'mirror.minAgreement "101%" is outside (0%, 100%]'],
    ['canary: v2\nmirror: 50', PREDICTORS, 'mirror must be a mapping'],
    ['canary: [v2', PREDICTORS, 'does not parse as YAML or JSON'],
    ['- v2', PREDICTORS, 'must be a mapping of fields'],
  ])('%j → an error naming the field', (raw, predictors, message) => {
    const e = error(raw, predictors);
    expect(e).toContain(message);
    expect(e.startsWith('seldon.io/gateway-rollout')).toBe(true);
  });
});

describe('isRolloutError', () => {
  it('counts 5xx and gRPC UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE', () => {
    expect([200, 404, 429, 499, 500, 503, 599, 600].map((c) => isRolloutError('rest', c))).toEqual([false, false, false, false, true, true, true, false]);
    expect([0, 1, 2, 3, 4, 5, 8, 13, 14, 16].map((c) => isRolloutError('grpc', c))).toEqual([false, false, true, false, true, false, false, true, true, false]);
  });
});

// ---------------------------------------------------------------------------------------------
// Driving decide.
// ---------------------------------------------------------------------------------------------

const T0 = 1_700_000_000_000;
const BASE: RolloutConfig = {
  canary: 'v2',
  mirror: null,
  steps: [5, 20, 50, 100],
  intervalMs: 10_000,
  minRequests: 100,
  maxErrorRate: { kind: 'relative', rate: 0.02 },
  maxLatencyShift: 0.1,
  maxP99Ms: null,
  threshold: 2,
  sticky: null,
};

/** `n` latencies spread exactly as a lognormal (median 20 ms × factor, σ 0.5), bucketed: no sampling noise. */
function latencies(n: number, factor = 1, sigma = 0.5): number[] {
  const c = emptyLatencyCounts();
  for (let i = 0; i < n; i++) c[latencyBucket(20 * factor * Math.exp(sigma * normalQuantile((i + 0.5) / n)))]!++;
  return c;
}

interface Side {
  requests: number;
  errors?: number;
  factor?: number;
  sigma?: number;
}
function window(second: number, primary: Side, canary: Side, agreement = { compared: 0, agree: 0 }): RolloutWindow {
  const tally = (s: Side) => ({ requests: s.requests, errors: s.errors ?? 0, latency: latencies(s.requests, s.factor, s.sigma) });
  return { start: T0 + second * 1000, end: T0 + (second + 1) * 1000, primary: tally(primary), canary: tally(canary), agreement };
}

/** One decide per second from `from` for `seconds`, windows from `make`; the state and every transition. */
function drive(
  state: RolloutState,
  config: RolloutConfig,
  from: number,
  seconds: number,
  make: (second: number) => RolloutWindow | null,
  action = '',
  options = {},
): { state: RolloutState; transitions: Transition[] } {
  const transitions: Transition[] = [];
  for (let t = from; t < from + seconds; t++) {
    const w = make(t);
    const d = decide(state, w ? [w] : [], config, T0 + (t + 1) * 1000, action, options);
    state = d.state;
    transitions.push(...d.transitions);
  }
  return { state, transitions };
}

const good = (t: number) => window(t, { requests: 95, errors: t % 200 === 0 ? 1 : 0 }, { requests: 10 });
const kinds = (ts: readonly Transition[]) => ts.map((t) => t.kind);

describe('decide: progressing', () => {
  it('starts at the first step, serialisable as JSON', () => {
    const s = initialState('run-1', BASE, T0);
    expect(s).toMatchObject({ phase: 'Progressing', step: 0, weight: 5, mirrorPercent: 0, epoch: 0, consumedUntil: T0, attempt: 1 });
    expect(s.transitions).toEqual([{ at: T0, kind: 'RolloutStarted', from: 'Progressing', to: 'Progressing', step: 0, weight: 5, reason: 'run run-1 started: v2 at 5%' }]);
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
    expect(effectiveWeights(s, BASE)).toEqual({ canary: 'v2', canaryPercent: 5, mirrorPercent: 0 });
  });

  it('advances once the interval has passed, minRequests were reached and every check passes, naming the numbers', () => {
    const s0 = initialState('r', BASE, T0);
    const early = drive(s0, BASE, 0, 9, good);
    expect(early.transitions).toEqual([]);
    expect(early.state.stepCanary.requests).toBe(90);
    const d = drive(early.state, BASE, 9, 1, good);
    expect(kinds(d.transitions)).toEqual(['RolloutAdvanced']);
    const t = d.transitions[0]!;
    expect(t).toMatchObject({ from: 'Progressing', to: 'Progressing', step: 1, weight: 20, at: T0 + 10_000 });
    expect(t.reason).toMatch(
      /^step 1 of 4 \(5%\) passed after 10s: 100 canary requests, 0\.0% errors, error statistic 0\.00 of 5\.15; latency [+−]\d\.\d% against the primary \(allowed \+10%; one-sided Mann-Whitney p = [\d.e-]+, 100 canary and 950 primary samples\); v2 now at 20%$/,
    );
    expect(d.state).toMatchObject({ step: 1, weight: 20, stepStartedAt: T0 + 10_000, stepCanary: { requests: 0, errors: 0 }, failingIntervals: 0, lastInterval: null });
    expect(JSON.parse(JSON.stringify(d.state))).toEqual(d.state);
  });

  it('promotes on reaching a 100% step, and then does nothing more', () => {
    const d = drive(initialState('r', BASE, T0), BASE, 0, 40, good);
    expect(kinds(d.transitions)).toEqual(['RolloutAdvanced', 'RolloutAdvanced', 'RolloutPromoted']);
    expect(d.state).toMatchObject({ phase: 'Promoted', step: 3, weight: 100 });
    expect(d.transitions[2]!.reason).toContain('write traffic: 100 for v2 into the SeldonDeployment');
    const after = drive(d.state, BASE, 40, 20, (t) => window(t, { requests: 0 }, { requests: 100, errors: 90 }));
    expect(after.transitions).toEqual([]);
    expect(after.state.phase).toBe('Promoted');
    expect(after.state.needs).toEqual(['nothing: promoted at 100%; write traffic: 100 for v2 into the SeldonDeployment']);
  });

  it('promotes at the last step when it is under 100%, after judging it', () => {
    const config = { ...BASE, steps: [5, 20] };
    const d = drive(initialState('r', config, T0), config, 0, 30, good);
    expect(kinds(d.transitions)).toEqual(['RolloutAdvanced', 'RolloutPromoted']);
    expect(d.state).toMatchObject({ phase: 'Promoted', step: 1, weight: 20 });
  });

  it('needs minRequests at this step: holds, says how many more, and records one RolloutHeld per step', () => {
    const slow = (t: number) => window(t, { requests: 95 }, { requests: t % 2 === 0 ? 3 : 2 });
    const d = drive(initialState('r', BASE, T0), BASE, 0, 30, slow);
    expect(kinds(d.transitions)).toEqual(['RolloutHeld']);
    expect(d.transitions[0]!.reason).toBe(
      'step 1 of 4 (5%) holds after 10s: needs 75 more canary requests (25 of 100 at step 1 of 4 (5%)); needs 25 more canary latency samples in this interval (25 of 50)',
    );
    expect(d.state).toMatchObject({ phase: 'Progressing', step: 0, heldStep: 0 });
    expect(d.state.needs).toEqual(['needs 25 more canary requests (75 of 100 at step 1 of 4 (5%))', 'needs 25 more canary latency samples in this interval (25 of 50)']);
    // Once the requests are there, it advances.
    const later = drive(d.state, BASE, 30, 20, slow);
    expect(kinds(later.transitions)).toEqual(['RolloutAdvanced', 'RolloutHeld']);
    expect(later.transitions[1]!.reason).toMatch(/^step 2 of 4 \(20%\) holds after 10s: needs \d+ more canary requests/);
  });

  it('never advances and never rolls back on no data: no windows, or windows with no canary requests', () => {
    let s = initialState('r', BASE, T0);
    for (let t = 1; t <= 600; t++) s = decide(s, [], BASE, T0 + t * 1000, '').state;
    expect(s).toMatchObject({ phase: 'Progressing', step: 0, consumedUntil: T0 });
    expect(s.needs).toContain('needs 100 more canary requests (0 of 100 at step 1 of 4 (5%))');
    expect(s.needs).toContain('needs primary requests to compare the canary with');
    const d = drive(initialState('r', BASE, T0), BASE, 0, 600, (t) => window(t, { requests: 95, errors: t % 3 === 0 ? 30 : 0 }, { requests: 0 }));
    expect(kinds(d.transitions)).toEqual(['RolloutHeld']);
    expect(d.state).toMatchObject({ phase: 'Progressing', step: 0, weight: 5 });
    expect(d.state.checks.latencyShift).toMatchObject({ verdict: 'hold', value: null });
  });

  it('judges each window once: windows handed again, or out of order, count once', () => {
    const s0 = initialState('r', BASE, T0);
    const ws = [good(2), good(0), good(1)];
    const a = decide(s0, ws, BASE, T0 + 3000, '');
    expect(a.state).toMatchObject({ consumedUntil: T0 + 3000, epoch: 1, stepCanary: { requests: 30 } });
    const b = decide(a.state, [...ws, good(3)], BASE, T0 + 4000, '');
    expect(b.state).toMatchObject({ consumedUntil: T0 + 4000, epoch: 2, stepCanary: { requests: 40 } });
    expect(decide(b.state, ws, BASE, T0 + 5000, '').state.stepCanary.requests).toBe(40);
  });

  it('does not count windows that started before the step began towards it', () => {
    const d = drive(initialState('r', BASE, T0), BASE, 0, 10, good);
    expect(d.state.step).toBe(1);
    // A window the leader sees late: it started before the advance.
    const late = window(9, { requests: 95 }, { requests: 10 });
    const e = decide(d.state, [{ ...late, end: T0 + 10_500 }], BASE, T0 + 11_000, '');
    expect(e.state.stepCanary.requests).toBe(0);
  });

  it('keeps the last 20 transitions', () => {
    let s = initialState('r', BASE, T0);
    for (let i = 0; i < 15; i++) {
      s = decide(s, [], BASE, T0 + i, 'pause ' + i).state;
      s = decide(s, [], BASE, T0 + i, 'resume ' + i).state;
    }
    expect(s.transitions).toHaveLength(20);
    expect(s.transitions.at(-1)!.reason).toContain('resume 14');
  });
});

describe('decide: rolling back', () => {
  it('rolls back on the error statistic’s alarm, with the numbers', () => {
    const bad = (t: number) => window(t, { requests: 95, errors: t % 200 === 100 ? 1 : 0 }, { requests: 10, errors: 5 });
    const d = drive(initialState('r', BASE, T0), BASE, 0, 10, bad);
    expect(kinds(d.transitions)).toEqual(['RolloutRolledBack']);
    // Half of the first window's ten requests fail: an alarm at its end (both charts cross; the steady one is named first).
    expect(d.transitions[0]).toMatchObject({ from: 'Progressing', to: 'RolledBack', weight: 0, step: 0, at: T0 + 1000 });
    expect(d.transitions[0]!.reason).toMatch(
      /^canary errors: 5 of 10 requests \(50\.0%\) against the primary's 0 of 95 in the same windows \+ 2\.0% allowed; the steady error statistic reached \d\.\d\d ≥ 5\.15 at step 1 of 4 \(5%\)$/,
    );
    expect(d.state).toMatchObject({ phase: 'RolledBack', weight: 0, mirrorPercent: 0 });
    expect(d.state.needs[0]).toContain('retry');
  });

  it('a steady excess a little over the allowed one is caught by the steady chart, not the burst chart', () => {
    // 5% canary errors (one in each second window of ten requests) against a primary at 0.5%.
    const config = { ...BASE, minRequests: 100_000 };
    const d = drive(initialState('r', config, T0), config, 0, 600, (t) => window(t, { requests: 100, errors: t % 2 }, { requests: 10, errors: t % 2 }));
    expect(kinds(d.transitions).filter((k) => k !== 'RolloutHeld')).toEqual(['RolloutRolledBack']);
    expect(d.transitions.find((x) => x.kind === 'RolloutRolledBack')!.reason).toMatch(/the steady error statistic reached \d\.\d\d ≥ 5\.15 at step 1 of 4/);
    expect(d.state.burst.s).toBeLessThan(ROLLOUT_PARAMETERS.burstAlarm);
  });

  it('the burst chart drains between chance errors: pairs of errors a minute apart never add up', () => {
    const config = { ...BASE, minRequests: 100_000 };
    let peak = 0;
    let state = initialState('r', config, T0);
    for (let t = 0; t < 1200; t++) {
      const d = drive(state, config, t, 1, (s) => window(s, { requests: 100, errors: s % 2 }, { requests: 10, errors: s % 60 === 0 ? 2 : 0 }));
      expect(kinds(d.transitions).filter((k) => k !== 'RolloutHeld')).toEqual([]);
      state = d.state;
      peak = Math.max(peak, state.burst.s);
    }
    // A pair in one second holds the step for a few requests (over half the alarm), never more.
    expect(peak).toBeGreaterThan(ROLLOUT_PARAMETERS.burstAlarm / 2);
    expect(peak).toBeLessThan(ROLLOUT_PARAMETERS.burstAlarm);
    expect(state.checks.burst).toMatchObject({ threshold: ROLLOUT_PARAMETERS.burstAlarm, verdict: 'pass' });
    expect(state.checks.burst.detail).toMatch(/^CUSUM of the canary's errors, fine at 1\.0\d% and bad at 10\.\d\d%; /);
  });

  it('a state stored without the burst chart (an older build) goes on, with the chart started afresh', () => {
    const calm = drive(initialState('r', BASE, T0), BASE, 0, 3, (t) => window(t, { requests: 95 }, { requests: 10 }));
    const { burst: _, ...older } = calm.state;
    const d = drive(older as RolloutState, BASE, 3, 1, (t) => window(t, { requests: 95 }, { requests: 10, errors: 2 }));
    expect(d.transitions).toEqual([]);
    expect(d.state.burst).toMatchObject({ since: { requests: 10, errors: 2 }, primarySince: { requests: 95, errors: 0 } });
    expect(d.state.burst.s).toBeGreaterThan(0);
    expect(d.state.checks.burst.value).toBe(d.state.burst.s);
  });

  it('rolls back after `threshold` failing latency intervals at one step, not after one', () => {
    const slow = (t: number) => window(t, { requests: 95 }, { requests: 10, factor: 1.5 });
    const one = drive(initialState('r', BASE, T0), BASE, 0, 10, slow);
    expect(one.transitions).toEqual([]);
    expect(one.state).toMatchObject({ failingIntervals: 1, intervals: { judged: 1, failed: 1 } });
    expect(one.state.checks.latencyShift.verdict).toBe('fail');
    expect(one.state.checks.latencyShift.value).toBeCloseTo(0.5, 1);
    const two = drive(one.state, BASE, 10, 10, slow);
    expect(kinds(two.transitions)).toEqual(['RolloutRolledBack']);
    expect(two.transitions[0]!.reason).toMatch(/^2 failing latency intervals at step 1 of 4 \(5%\) \(threshold 2\); the last: latency \+\d+\.\d% against the primary/);
  });

  it('a canary within the latency margin passes', () => {
    const d = drive(initialState('r', BASE, T0), BASE, 0, 10, (t) => window(t, { requests: 95 }, { requests: 10, factor: 1.05 }));
    expect(kinds(d.transitions)).toEqual(['RolloutAdvanced']);
  });

  it('maxP99: a canary with the primary’s median but a longer tail fails the ceiling; both over it only warns and holds', () => {
    const config = { ...BASE, maxP99Ms: 80 };
    // σ 1 puts 8% of the canary's requests over 80 ms (the primary's p99 is 64 ms); the medians match.
    const over = drive(initialState('r', config, T0), config, 0, 10, (t) => window(t, { requests: 95 }, { requests: 10, sigma: 1 }));
    expect(over.state.lastInterval).toMatchObject({ shiftVerdict: 'pass', p99Verdict: 'fail', verdict: 'fail' });
    expect(over.state.checks.p99).toMatchObject({ verdict: 'fail', threshold: 80 });
    expect(over.state.checks.p99.value).toBeGreaterThan(80);
    const both = drive(initialState('r', config, T0), config, 0, 40, (t) => window(t, { requests: 95, sigma: 1 }, { requests: 10, sigma: 1 }));
    expect(kinds(both.transitions)).toEqual(['RolloutHeld']);
    expect(both.transitions[0]!.reason).toContain("needs the primary's own p99 back under 80 ms");
    expect(both.state.warnings.join()).toContain("the primary's own p99");
    expect(both.state.phase).toBe('Progressing');
  });

  it('primary and canary failing alike: no rollback, a warning, no advance', () => {
    const sick = (t: number) => window(t, { requests: 95, errors: 19 }, { requests: 10, errors: 2 });
    const d = drive(initialState('r', BASE, T0), BASE, 0, 120, sick);
    expect(d.transitions.filter((t) => t.kind !== 'RolloutHeld')).toEqual([]);
    expect(d.state).toMatchObject({ phase: 'Progressing', step: 0 });
    expect(d.state.warnings[0]).toMatch(/^the primary itself is unhealthy: it fails 2\d\.\d% of its requests/);
    expect(d.state.needs.join()).toContain('needs the primary to recover');
  });

  it('an alarm the primary explains in the same windows does not roll back: it warns, holds the step and halves the statistic', () => {
    // 120 s of both sides at 0.5%, then both at 4%: under the unhealthy level, and too
    // small a rise (4 of 100 a window) to restart the primary's rate, which lags behind.
    const config = { ...BASE, minRequests: 100_000 };
    const calm = drive(initialState('r', config, T0), config, 0, 120, (t) => window(t, { requests: 100, errors: t % 2 }, { requests: 25, errors: t % 8 === 0 ? 1 : 0 }));
    const both = (t: number) => window(t, { requests: 100, errors: 4 }, { requests: 25, errors: 1 });
    let state = calm.state;
    let warned: string | undefined;
    let peak = 0;
    const transitions: Transition[] = [];
    for (let t = 120; t < 300; t++) {
      const d = drive(state, config, t, 1, both);
      state = d.state;
      transitions.push(...d.transitions);
      warned ??= state.warnings.find((w) => w.startsWith('an error statistic reached its alarm level'));
      peak = Math.max(peak, state.cusum.s);
    }
    expect(kinds(transitions).filter((k) => k !== 'RolloutHeld')).toEqual([]);
    expect(state.phase).toBe('Progressing');
    expect(warned).toMatch(
      /^an error statistic reached its alarm level, but the canary's \d+ errors in [\d,]+ requests are not shown above the primary's \d+ of [\d,]+ in the same windows \(at most \d\.\d%\) \+ 0\.50%: not rolled back$/,
    );
    expect(peak).toBeLessThan(ROLLOUT_PARAMETERS.cusumAlarm);
  });

  it('the same canary errors with a healthy primary in the same windows roll back', () => {
    const config = { ...BASE, minRequests: 100_000 };
    const calm = drive(initialState('r', config, T0), config, 0, 120, (t) => window(t, { requests: 100, errors: t % 2 }, { requests: 25, errors: t % 8 === 0 ? 1 : 0 }));
    const d = drive(calm.state, config, 120, 180, (t) => window(t, { requests: 100, errors: t % 2 }, { requests: 25, errors: 1 }));
    expect(kinds(d.transitions)).toEqual(['RolloutRolledBack']);
    expect(d.transitions[0]!.reason).toMatch(/^canary errors: \d+ of [\d,]+ requests \(\d\.\d%\) against the primary's \d of [\d,]+ in the same windows \+ 2\.0% allowed/);
  });

  it('an absolute limit is held whatever the primary does, but not while the primary is over it too', () => {
    const config: RolloutConfig = { ...BASE, maxErrorRate: { kind: 'absolute', rate: 0.03 } };
    const bad = drive(initialState('r', config, T0), config, 0, 30, (t) => window(t, { requests: 95 }, { requests: 10, errors: 2 }));
    expect(kinds(bad.transitions)).toEqual(['RolloutRolledBack']);
    expect(bad.transitions[0]!.reason).toContain('against the 3.0% limit');
    const both = drive(initialState('r', config, T0), config, 0, 60, (t) => window(t, { requests: 95, errors: 19 }, { requests: 10, errors: 2 }));
    expect(both.state.phase).toBe('Progressing');
    expect(both.state.checks.sequential.verdict).toBe('hold');
  });
});

describe('decide: the mirror phase', () => {
  const config: RolloutConfig = { ...BASE, mirror: { percent: 50, forMs: 20_000, minAgreement: 0.99 } };
  /** 40 mirrored answers compared a second, `disagree(t)` of them not agreeing. */
  const mirrored = (disagree: (t: number) => number) => (t: number) => window(t, { requests: 95 }, { requests: 40 }, { compared: 40, agree: 40 - disagree(t) });

  it('starts mirroring at live weight 0, then goes to the first step once agreement is shown and `for` has passed', () => {
    const s0 = initialState('r', config, T0);
    expect(s0).toMatchObject({ phase: 'Mirroring', step: -1, weight: 0, mirrorPercent: 50 });
    const d = drive(s0, config, 0, 25, () => null);
    expect(d.state.needs).toContain('needs 100 more comparisons of mirrored answers before agreement is judged (0 of 100; 99.0% required)');
    const ok = drive(
      s0,
      config,
      0,
      20,
      mirrored(() => 0),
    );
    expect(kinds(ok.transitions)).toEqual(['RolloutAdvanced']);
    expect(ok.transitions[0]).toMatchObject({ from: 'Mirroring', to: 'Progressing', step: 0, weight: 5, at: T0 + 20_000 });
    expect(ok.transitions[0]!.reason).toMatch(/^the mirror phase passed after 20s: 800 canary requests, .*agreement 100\.0% over 800 comparisons \(at least 99\.6% at 95% confidence\)/);
    expect(ok.state).toMatchObject({ mirrorPercent: 0, weight: 5 });
    expect(ok.state.checks.agreement).toMatchObject({ verdict: 'pass', value: 1, threshold: 0.99 });
  });

  it('rolls back on agreement shown under minAgreement, with no live request sent, once a canary at minAgreement would have disagreed once', () => {
    const d = drive(
      initialState('r', config, T0),
      config,
      0,
      20,
      mirrored(() => 5),
    );
    expect(kinds(d.transitions)).toEqual(['RolloutRolledBack']);
    expect(d.transitions[0]).toMatchObject({ from: 'Mirroring', weight: 0, step: -1 });
    // 80 comparisons are too few at 99% (100 needed); 120 show it.
    expect(d.transitions[0]!.reason).toMatch(/^agreement: 105 of 120 mirrored answers agreed \(87\.5%\); at 85% confidence at most 9\d\.\d%, under the 99\.0% required$/);
    expect(d.transitions[0]!.at).toBe(T0 + 3000);
    expect(d.state.mirrorPercent).toBe(0);
  });

  it('holds while agreement is neither shown above nor below minAgreement, and says about how many more comparisons it needs', () => {
    // 1 of 120 disagreeing: 99.2%, near the 99% required.
    const d = drive(
      initialState('r', config, T0),
      config,
      0,
      60,
      mirrored((t) => (t % 3 === 0 ? 1 : 0)),
    );
    expect(d.state.phase).toBe('Mirroring');
    expect(d.state.checks.agreement).toMatchObject({ verdict: 'hold', threshold: 0.99 });
    expect(kinds(d.transitions)).toEqual(['RolloutHeld']);
    const near = drive(
      initialState('r', config, T0),
      config,
      0,
      3,
      mirrored((t) => (t === 0 ? 1 : 0)),
    );
    expect(near.state.needs.join()).toMatch(/needs more comparisons: 99\.2% agreement over 120 is not yet shown at or above 99\.0%, about [\d,]+ more if it stays at 99\.2%/);
  });
});

describe('decide: actions', () => {
  it('pause freezes the weight (no advance on good data); resume returns; a repeated value does nothing', () => {
    const s0 = initialState('r', BASE, T0);
    const p = drive(s0, BASE, 0, 30, good, 'pause');
    expect(kinds(p.transitions)).toEqual(['RolloutPaused']);
    expect(p.state).toMatchObject({ phase: 'Paused', resumeTo: 'Progressing', weight: 5, action: 'pause' });
    expect(p.state.needs[0]).toBe('paused: set seldon.io/gateway-rollout-action to resume');
    const r = drive(p.state, BASE, 30, 10, good, 'resume');
    expect(kinds(r.transitions)).toEqual(['RolloutResumed', 'RolloutAdvanced']);
    expect(r.state).toMatchObject({ phase: 'Progressing', step: 1 });
  });

  it('a rollback met while paused happens at resume', () => {
    const p = drive(initialState('r', BASE, T0), BASE, 0, 10, (t) => window(t, { requests: 95 }, { requests: 10, errors: 6 }), 'pause');
    expect(kinds(p.transitions)).toEqual(['RolloutPaused']);
    expect(p.state.pendingRollback).toContain('error statistic');
    expect(p.state.warnings.join()).toContain('rolls back at resume');
    const r = decide(p.state, [], BASE, T0 + 11_000, 'resume');
    expect(kinds(r.transitions)).toEqual(['RolloutResumed', 'RolloutRolledBack']);
    expect(r.transitions[1]!.reason).toContain('(met while paused)');
  });

  it('abort rolls back, promote promotes, retry restarts a rolled-back run', () => {
    const s0 = initialState('r', BASE, T0);
    const a = decide(s0, [], BASE, T0 + 1000, 'abort');
    expect(a.transitions[0]).toMatchObject({ kind: 'RolloutRolledBack', reason: 'aborted by seldon.io/gateway-rollout-action "abort" at step 1 of 4 (5%)' });
    const r = decide(a.state, [], BASE, T0 + 2000, 'retry');
    expect(r.transitions[0]).toMatchObject({ kind: 'RolloutRetried', from: 'RolledBack', to: 'Progressing', weight: 5 });
    expect(r.state).toMatchObject({ attempt: 2, phase: 'Progressing', step: 0, stepStartedAt: T0 + 2000 });
    // The same word again acts only with a new value.
    const again = decide(decide(r.state, [], BASE, T0 + 3000, 'abort').state, [], BASE, T0 + 4000, 'retry 2');
    expect(again.state.attempt).toBe(3);
    const p = decide(s0, [], BASE, T0 + 1000, 'promote');
    expect(p.transitions[0]).toMatchObject({ kind: 'RolloutPromoted', to: 'Promoted', weight: 100, step: 3 });
  });

  it('an unknown or misplaced action is ignored with a warning', () => {
    const s0 = initialState('r', BASE, T0);
    expect(decide(s0, [], BASE, T0 + 1000, 'rollback').state.warnings).toContain('action "rollback" ignored: not one of pause, resume, abort, promote, retry');
    expect(decide(s0, [], BASE, T0 + 1000, 'resume').state.warnings).toContain('action "resume" ignored: the run is Progressing, not Paused');
    expect(decide(s0, [], BASE, T0 + 1000, 'retry').state.warnings).toContain('action "retry" ignored: only a RolledBack run is retried; this one is Progressing');
  });

  it('a value already there when the run started is not acted on', () => {
    const s0 = initialState('r', BASE, T0, 'abort');
    expect(decide(s0, [], BASE, T0 + 1000, 'abort').transitions).toEqual([]);
  });
});

describe('decide without the store (mayAdvance: false)', () => {
  it('never advances, but rolls back; leaves resume, promote and retry for the leader', () => {
    const opts = { mayAdvance: false };
    const d = drive(initialState('r', BASE, T0), BASE, 0, 60, good, '', opts);
    expect(d.transitions.filter((t) => t.kind !== 'RolloutHeld')).toEqual([]);
    expect(d.state.step).toBe(0);
    const bad = drive(d.state, BASE, 60, 10, (t) => window(t, { requests: 95 }, { requests: 10, errors: 5 }), '', opts);
    expect(kinds(bad.transitions)).toEqual(['RolloutRolledBack']);
    const promote = decide(d.state, [], BASE, T0 + 61_000, 'promote', opts);
    expect(promote.transitions).toEqual([]);
    expect(promote.state.action).toBe('');
    expect(decide(d.state, [], BASE, T0 + 61_000, 'abort', opts).state.phase).toBe('RolledBack');
  });
});

describe('decide: a config edited mid-run', () => {
  it('keeps the step inside the new steps and follows its weight', () => {
    const d = drive(initialState('r', BASE, T0), BASE, 0, 25, good);
    expect(d.state.step).toBe(2);
    const shorter = { ...BASE, steps: [10, 30] };
    const e = decide(d.state, [], shorter, T0 + 26_000, '');
    expect(e.state).toMatchObject({ step: 1, weight: 30 });
  });
});
