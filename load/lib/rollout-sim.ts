/**
 * A seeded simulation of one rollout run (docs/rollouts.md#simulated-figures), shared by
 * `load/rollout-sim.ts` (the full seed sweep) and `test/routing/steering/rollout-sim.test.ts` (a small one).
 *
 * Requests arrive as a Poisson process; each goes to the canary with the run's live weight, else to
 * the primary, which mirrors it to the canary with the mirror percent. Every request fails with its
 * side's error rate and takes a lognormal latency; a mirrored answer that both sides answered agrees
 * with the primary's with the canary's agreement. Counts go into one-second windows, and `decide`
 * is called once per window with that window, exactly as the runtime calls it; the weight it
 * returns applies from the next window on (the runtime's workers apply it within a second).
 */
import { seededRandom, type Random } from '../../routing/table/pick.js';
import { emptyLatencyCounts, LATENCY_BOUNDS_MS, LATENCY_BUCKET_COUNT } from '../../routing/stats/latency-buckets.js';
import { normalCdf } from '../../routing/stats/inference.js';
import { ROLLOUT_DEFAULTS, type RolloutConfig } from '../../routing/steering/rollout/config.js';
import { decide, initialState } from '../../routing/steering/rollout/decide.js';
import type { RolloutWindow } from '../../routing/steering/rollout/inputs.js';
import type { RolloutParameters } from '../../routing/steering/rollout/parameters.js';
import type { RolloutState, Transition } from '../../routing/steering/rollout/state.js';
import { quantile } from './report.js';

/** How one side behaves for a request. */
export interface Behaviour {
  readonly errorRate: number;
  /** Multiplies the base lognormal latency. */
  readonly latencyFactor: number;
  /** Chance a mirrored answer agrees with the primary's. */
  readonly agreement: number;
}

/** Where the run is when a request is drawn: what the canary served so far (live and mirrored), and the time. */
export interface Progress {
  readonly second: number;
  readonly canaryRequests: number;
}

export interface SimOptions {
  readonly seed: number;
  readonly config: RolloutConfig;
  /** Requests per second to the deployment. */
  readonly rate: number;
  /** The run stops here if nothing else stopped it. */
  readonly maxSeconds: number;
  readonly primary: (p: Progress) => Behaviour;
  readonly canary: (p: Progress) => Behaviour;
  /** Base latency: lognormal with this median (ms) and log-space standard deviation. */
  readonly latency?: { readonly medianMs: number; readonly sigma: number };
  /** The canary serves nothing (its share goes to the primary), as when it has no ready endpoint. */
  readonly canaryUnreachable?: boolean;
  /** Stop early once this holds (checked after each decision). */
  readonly until?: (r: SimRun) => boolean;
  readonly parameters?: Partial<RolloutParameters>;
}

/** A run as it goes, and as it ended. */
export interface SimRun {
  state: RolloutState;
  readonly transitions: Transition[];
  seconds: number;
  /** Requests the canary served live, and mirrored ones it answered. */
  liveCanaryRequests: number;
  mirroredRequests: number;
  comparisons: number;
  /** Latency intervals judged, and how many failed, over the run. */
  intervalsJudged: number;
  intervalsFailed: number;
  /** When the run first rolled back: canary requests (live + mirrored), comparisons, second, intervals judged by then. */
  rolledBack: { canaryRequests: number; comparisons: number; second: number; intervalsJudged: number } | null;
  promotedAt: number | null;
  /** Highest step index reached (-1: never left the mirror phase). */
  highestStep: number;
  /** Highest error statistic seen after a window. */
  maxStatistic: number;
}

export const BASE_LATENCY = { medianMs: 20, sigma: 0.5 } as const;

/** The example annotation of docs/rollouts.md, without the mirror phase. */
export const SIM_CONFIG: RolloutConfig = {
  canary: 'v2',
  mirror: null,
  steps: [...ROLLOUT_DEFAULTS.steps],
  intervalMs: 30_000,
  minRequests: 300,
  maxErrorRate: { kind: 'relative', rate: 0.02 },
  maxLatencyShift: 0.1,
  maxP99Ms: 250,
  threshold: 2,
  sticky: null,
};

export const healthy = (errorRate = 0.005): Behaviour => ({ errorRate, latencyFactor: 1, agreement: 1 });

/**
 * Draws of the latency bucket of a lognormal latency (median `medianMs`, log-space deviation
 * `sigma`) in O(1) each: the buckets' probabilities from the normal cdf, then Walker's alias table.
 */
export function lognormalBuckets(medianMs: number, sigma: number): (random: Random) => number {
  const n = LATENCY_BUCKET_COUNT;
  const cdf = (i: number) => (i < 0 ? 0 : i >= n - 1 ? 1 : normalCdf(Math.log(LATENCY_BOUNDS_MS[i]! / medianMs) / sigma));
  const scaled = Array.from({ length: n }, (_, i) => (cdf(i) - cdf(i - 1)) * n);
  const alias = new Int32Array(n);
  const keep = new Float64Array(n).fill(1);
  const small: number[] = [];
  const large: number[] = [];
  scaled.forEach((p, i) => (p < 1 ? small : large).push(i));
  while (small.length && large.length) {
    const s = small.pop()!;
    const l = large[large.length - 1]!;
    keep[s] = scaled[s]!;
    alias[s] = l;
    scaled[l] = scaled[l]! + scaled[s]! - 1;
    if (scaled[l]! < 1) small.push(large.pop()!);
  }
  return (random) => {
    const u = random() * n;
    const i = Math.min(n - 1, Math.floor(u));
    return u - i < keep[i]! ? i : alias[i]!;
  };
}

/** Arrivals in one second of a Poisson process (exponential gaps). */
function poisson(random: Random, rate: number): number {
  let n = 0;
  let t = -Math.log(1 - random()) / rate;
  while (t < 1) {
    n++;
    t += -Math.log(1 - random()) / rate;
  }
  return n;
}

interface Side {
  requests: number;
  errors: number;
  latency: number[];
}
const side = (): Side => ({ requests: 0, errors: 0, latency: emptyLatencyCounts() });

export function simulate(o: SimOptions): SimRun {
  const random = seededRandom(o.seed);
  const lat = o.latency ?? BASE_LATENCY;
  const tables = new Map<number, (random: Random) => number>();
  const bucketOf = (factor: number) => {
    let t = tables.get(factor);
    if (!t) tables.set(factor, (t = lognormalBuckets(lat.medianMs * factor, lat.sigma)));
    return t;
  };
  const start = 1_700_000_000_000;
  const run: SimRun = {
    state: initialState(`seed-${o.seed}`, o.config, start),
    transitions: [],
    seconds: 0,
    liveCanaryRequests: 0,
    mirroredRequests: 0,
    comparisons: 0,
    intervalsJudged: 0,
    intervalsFailed: 0,
    rolledBack: null,
    promotedAt: null,
    highestStep: o.config.mirror ? -1 : 0,
    maxStatistic: 0,
  };
  const serve = (s: Side, b: Behaviour): boolean => {
    s.requests++;
    const failed = random() < b.errorRate;
    if (failed) s.errors++;
    s.latency[bucketOf(b.latencyFactor)(random)]!++;
    return !failed;
  };
  for (let second = 0; second < o.maxSeconds; second++) {
    const { weight, mirrorPercent } = run.state;
    const primary = side();
    const canary = side();
    let compared = 0;
    let agree = 0;
    const n = poisson(random, o.rate);
    const primaryNow = o.primary({ second, canaryRequests: run.liveCanaryRequests + run.mirroredRequests });
    for (let i = 0; i < n; i++) {
      const toCanary = !o.canaryUnreachable && random() * 100 < weight;
      if (toCanary) {
        serve(canary, o.canary({ second, canaryRequests: run.liveCanaryRequests + run.mirroredRequests }));
        run.liveCanaryRequests++;
        continue;
      }
      const primaryOk = serve(primary, primaryNow);
      if (!o.canaryUnreachable && mirrorPercent > 0 && random() * 100 < mirrorPercent) {
        const b = o.canary({ second, canaryRequests: run.liveCanaryRequests + run.mirroredRequests });
        const canaryOk = serve(canary, b);
        run.mirroredRequests++;
        if (primaryOk && canaryOk) {
          compared++;
          if (random() < b.agreement) agree++;
        }
      }
    }
    run.comparisons += compared;
    const w: RolloutWindow = { start: start + second * 1000, end: start + (second + 1) * 1000, primary, canary, agreement: { compared, agree } };
    const d = decide(run.state, [w], o.config, w.end, '', { parameters: o.parameters });
    run.state = d.state;
    run.seconds = second + 1;
    run.transitions.push(...d.transitions);
    run.maxStatistic = Math.max(run.maxStatistic, d.state.cusum.s);
    run.intervalsJudged = d.state.intervals.judged;
    run.intervalsFailed = d.state.intervals.failed;
    if (d.state.phase !== 'RolledBack' && d.state.step > run.highestStep) run.highestStep = d.state.step;
    for (const t of d.transitions) {
      if (t.kind === 'RolloutRolledBack' && !run.rolledBack) {
        run.rolledBack = { canaryRequests: run.liveCanaryRequests + run.mirroredRequests, comparisons: run.comparisons, second: run.seconds, intervalsJudged: run.intervalsJudged };
      }
      if (t.kind === 'RolloutPromoted' && run.promotedAt === null) run.promotedAt = run.seconds;
    }
    if (d.state.phase === 'RolledBack' || d.state.phase === 'Promoted' || o.until?.(run)) break;
  }
  return run;
}

// ---------------------------------------------------------------------------------------------
// The acceptance scenarios (docs/rollouts.md#simulated-figures), each over a range of seeds.
// ---------------------------------------------------------------------------------------------

/** Runs of seeds first..first+count-1: a good canary and primary (0.5% errors), the example annotation, 100 requests/s, at most 4 h; `o` changes any of it. */
const runs = (first: number, count: number, o: Partial<Omit<SimOptions, 'seed'>>): SimRun[] =>
  Array.from({ length: count }, (_, i) => simulate({ seed: first + i, config: SIM_CONFIG, rate: 100, maxSeconds: 4 * 3600, primary: () => healthy(), canary: () => healthy(), ...o }));
const judged = (rs: readonly SimRun[]): { intervalsJudged: number; intervalsFailed: number } => ({
  intervalsJudged: rs.reduce((n, r) => n + r.intervalsJudged, 0),
  intervalsFailed: rs.reduce((n, r) => n + r.intervalsFailed, 0),
});

/** A canary that behaves as the primary (0.5% errors, same latency), the example annotation, 100 requests/s. */
export function goodCanary(first: number, count: number, config: RolloutConfig = SIM_CONFIG, parameters?: Partial<RolloutParameters>) {
  const rs = runs(first, count, { config, parameters });
  return {
    seeds: count,
    promoted: rs.filter((r) => r.state.phase === 'Promoted').length,
    rolledBack: rs.filter((r) => r.rolledBack).length,
    ...judged(rs),
    medianSeconds: quantile(
      rs.map((r) => r.seconds),
      0.5,
    ),
    medianCanaryRequests: quantile(
      rs.map((r) => r.liveCanaryRequests),
      0.5,
    ),
  };
}

/** A good canary held at its steps until it has served `canaryRequests` (minRequests that high; 200 requests/s): how many runs rolled back. */
export function goodCanaryLong(first: number, count: number, canaryRequests = 20_000, parameters?: Partial<RolloutParameters>) {
  const config: RolloutConfig = { ...SIM_CONFIG, steps: [5, 10, 25, 50, 100], minRequests: canaryRequests };
  const rs = runs(first, count, { config, rate: 200, until: (r) => r.liveCanaryRequests >= canaryRequests, parameters });
  return { seeds: count, rolledBack: rs.filter((r) => r.rolledBack && r.rolledBack.canaryRequests <= canaryRequests).length, ...judged(rs) };
}

/**
 * The canary's error rate jumps from 0.5% to `rate` once it has served `after` requests: how many
 * more it served until the decision that rolled it back (its whole window included). Runs that
 * never rolled back are `missed`.
 */
export function errorJump(first: number, count: number, rate: number, after: number, parameters?: Partial<RolloutParameters>) {
  const rs = runs(first, count, { canary: (p) => healthy(p.canaryRequests >= after ? rate : 0.005), parameters });
  const caught = rs.flatMap((r) => (r.rolledBack && r.rolledBack.canaryRequests > after ? [r.rolledBack.canaryRequests - after] : []));
  return { seeds: count, caught, missed: count - caught.length };
}

/** The canary's latency ×`factor` from the start, at `rate` requests/s: intervals judged until the rollback. */
export function latencyRegression(first: number, count: number, factor = 1.5, rate = 200, parameters?: Partial<RolloutParameters>) {
  const rs = runs(first, count, { rate, canary: () => ({ ...healthy(), latencyFactor: factor }), parameters });
  const intervals = rs.flatMap((r) => (r.rolledBack ? [r.rolledBack.intervalsJudged] : []));
  return { seeds: count, intervals, missed: count - intervals.length, withFewSamples: rs.filter((r) => r.state.lastInterval && r.state.lastInterval.canarySamples < 50).length };
}

/** Mirror phase with a canary agreeing on `agreement` of answers (minAgreement 99%): comparisons until the rollback, and live requests it got. */
export function mirrorDisagreement(first: number, count: number, agreement = 0.95, mirrorPercent = 10, parameters?: Partial<RolloutParameters>) {
  const config: RolloutConfig = { ...SIM_CONFIG, mirror: { percent: mirrorPercent, forMs: 5 * 60_000, minAgreement: 0.99 } };
  const rs = runs(first, count, { config, maxSeconds: 3600, canary: () => ({ ...healthy(), agreement }), parameters, until: (run) => run.state.phase !== 'Mirroring' });
  const comparisons = rs.flatMap((r) => (r.rolledBack ? [r.rolledBack.comparisons] : []));
  return { seeds: count, comparisons, missed: count - comparisons.length, liveRequests: rs.reduce((n, r) => n + r.liveCanaryRequests, 0) };
}

/** The canary serves nothing for an hour: whether any run advanced, and what the last one said it needs. */
export function noCanaryTraffic(first: number, count: number) {
  const rs = runs(first, count, { maxSeconds: 3600, canaryUnreachable: true });
  return { seeds: count, advanced: rs.filter((r) => r.highestStep > 0 || r.state.phase !== 'Progressing').length, needs: rs.at(-1)?.state.needs ?? [] };
}

/**
 * Primary and canary both fail `rate` of requests, from the start (`fromSecond` 0) or from a later
 * second: how many runs rolled back, advanced while both failed, and the warning shown.
 */
export function sharedOutage(first: number, count: number, rate = 0.2, fromSecond = 0, parameters?: Partial<RolloutParameters>) {
  const sick = (p: Progress): Behaviour => healthy(p.second >= fromSecond ? rate : 0.005);
  let rolledBack = 0;
  let advancedDuring = 0;
  let warned = 0;
  let warning: string | null = null;
  for (let seed = first; seed < first + count; seed++) {
    let stepAtOutage: number | null = null;
    const until = (run: SimRun): boolean => {
      if (run.seconds === fromSecond + 5) stepAtOutage = run.state.step;
      return false;
    };
    const r = runs(seed, 1, { maxSeconds: fromSecond + 600, primary: sick, canary: sick, parameters, until })[0]!;
    if (r.rolledBack) rolledBack++;
    if (stepAtOutage !== null && r.highestStep > stepAtOutage) advancedDuring++;
    const w = r.state.warnings.find((x) => x.includes('primary itself is unhealthy'));
    if (w) {
      warned++;
      warning = w;
    }
  }
  return { seeds: count, rolledBack, advancedDuring, warned, warning };
}
