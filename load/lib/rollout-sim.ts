/**
 * A seeded simulation of one rollout run (docs/rollouts.md#simulated-figures), shared by
 * `load/rollout-sim.ts` (the full seed sweep) and `test/routing/rollout-sim.test.ts` (a small one).
 *
 * Requests arrive as a Poisson process; each goes to the canary with the run's live weight, else to
 * the primary, which mirrors it to the canary with the mirror percent. Every request fails with its
 * side's error rate and takes a lognormal latency; a mirrored answer that both sides answered agrees
 * with the primary's with the canary's agreement. Counts go into one-second windows, and `decide`
 * is called once per window with that window, exactly as the runtime calls it; the weight it
 * returns applies from the next window on (the runtime's workers apply it within a second).
 */
import { seededRandom, type Random } from '../../routing/pick.js';
import { emptyLatencyCounts, LATENCY_BOUNDS_MS, LATENCY_BUCKET_COUNT } from '../../routing/latency-buckets.js';
import { normalCdf } from '../../routing/statistics.js';
import { ROLLOUT_DEFAULTS, type RolloutConfig } from '../../routing/rollout/config.js';
import { decide, initialState } from '../../routing/rollout/decide.js';
import type { RolloutWindow } from '../../routing/rollout/inputs.js';
import type { RolloutParameters } from '../../routing/rollout/parameters.js';
import type { RolloutState, Transition } from '../../routing/rollout/state.js';
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

const RATE = 100;
const seedsFrom = (first: number, count: number): number[] => Array.from({ length: count }, (_, i) => first + i);

export interface GoodCanaryFigures {
  readonly seeds: number;
  readonly promoted: number;
  readonly rolledBack: number;
  readonly intervalsJudged: number;
  readonly intervalsFailed: number;
  readonly medianSeconds: number;
  readonly medianCanaryRequests: number;
}

/** A canary that behaves as the primary (0.5% errors, same latency), the example annotation, 100 requests/s. */
export function goodCanary(first: number, count: number, config: RolloutConfig = SIM_CONFIG, parameters?: Partial<RolloutParameters>): GoodCanaryFigures {
  const runs = seedsFrom(first, count).map((seed) => simulate({ seed, config, rate: RATE, maxSeconds: 4 * 3600, primary: () => healthy(), canary: () => healthy(), parameters }));
  return {
    seeds: count,
    promoted: runs.filter((r) => r.state.phase === 'Promoted').length,
    rolledBack: runs.filter((r) => r.rolledBack).length,
    intervalsJudged: runs.reduce((n, r) => n + r.intervalsJudged, 0),
    intervalsFailed: runs.reduce((n, r) => n + r.intervalsFailed, 0),
    medianSeconds: quantile(
      runs.map((r) => r.seconds),
      0.5,
    ),
    medianCanaryRequests: quantile(
      runs.map((r) => r.liveCanaryRequests),
      0.5,
    ),
  };
}

/** A good canary held at its steps until it has served `canaryRequests` (minRequests that high; 200 requests/s): how many runs rolled back. */
export function goodCanaryLong(
  first: number,
  count: number,
  canaryRequests = 20_000,
  parameters?: Partial<RolloutParameters>,
): { seeds: number; rolledBack: number; intervalsJudged: number; intervalsFailed: number } {
  const config: RolloutConfig = { ...SIM_CONFIG, steps: [5, 10, 25, 50, 100], minRequests: canaryRequests };
  const runs = seedsFrom(first, count).map((seed) =>
    simulate({ seed, config, rate: 200, maxSeconds: 4 * 3600, primary: () => healthy(), canary: () => healthy(), until: (r) => r.liveCanaryRequests >= canaryRequests, parameters }),
  );
  return {
    seeds: count,
    rolledBack: runs.filter((r) => r.rolledBack && r.rolledBack.canaryRequests <= canaryRequests).length,
    intervalsJudged: runs.reduce((n, r) => n + r.intervalsJudged, 0),
    intervalsFailed: runs.reduce((n, r) => n + r.intervalsFailed, 0),
  };
}

/**
 * The canary's error rate jumps from 0.5% to `rate` once it has served `after` requests: how many
 * more it served until the decision that rolled it back (its whole window included). Runs that
 * never rolled back count as Infinity.
 */
export function errorJump(first: number, count: number, rate: number, after: number, parameters?: Partial<RolloutParameters>): { seeds: number; caught: number[]; missed: number } {
  const caught: number[] = [];
  let missed = 0;
  for (const seed of seedsFrom(first, count)) {
    const r = simulate({
      seed,
      config: SIM_CONFIG,
      rate: RATE,
      maxSeconds: 4 * 3600,
      primary: () => healthy(),
      canary: (p) => healthy(p.canaryRequests >= after ? rate : 0.005),
      parameters,
    });
    if (r.rolledBack && r.rolledBack.canaryRequests > after) caught.push(r.rolledBack.canaryRequests - after);
    else missed++;
  }
  return { seeds: count, caught, missed };
}

/** The canary's latency ×`factor` from the start, at `rate` requests/s: intervals judged until the rollback. */
export function latencyRegression(
  first: number,
  count: number,
  factor = 1.5,
  rate = 200,
  parameters?: Partial<RolloutParameters>,
): { seeds: number; intervals: number[]; missed: number; withFewSamples: number } {
  const intervals: number[] = [];
  let missed = 0;
  let withFewSamples = 0;
  for (const seed of seedsFrom(first, count)) {
    const r = simulate({
      seed,
      config: SIM_CONFIG,
      rate,
      maxSeconds: 4 * 3600,
      primary: () => healthy(),
      canary: () => ({ ...healthy(), latencyFactor: factor }),
      parameters,
    });
    if (r.rolledBack) intervals.push(r.rolledBack.intervalsJudged);
    else missed++;
    if (r.state.lastInterval && r.state.lastInterval.canarySamples < 50) withFewSamples++;
  }
  return { seeds: count, intervals, missed, withFewSamples };
}

/** Mirror phase with a canary agreeing on `agreement` of answers (minAgreement 99%): comparisons until the rollback, and live requests it got. */
export function mirrorDisagreement(
  first: number,
  count: number,
  agreement = 0.95,
  mirrorPercent = 10,
  parameters?: Partial<RolloutParameters>,
): { seeds: number; comparisons: number[]; missed: number; liveRequests: number } {
  const config: RolloutConfig = { ...SIM_CONFIG, mirror: { percent: mirrorPercent, forMs: 5 * 60_000, minAgreement: 0.99 } };
  const comparisons: number[] = [];
  let missed = 0;
  let liveRequests = 0;
  for (const seed of seedsFrom(first, count)) {
    const r = simulate({
      seed,
      config,
      rate: RATE,
      maxSeconds: 3600,
      primary: () => healthy(),
      canary: () => ({ ...healthy(), agreement }),
      parameters,
      until: (run) => run.state.phase !== 'Mirroring',
    });
    if (r.rolledBack) comparisons.push(r.rolledBack.comparisons);
    else missed++;
    liveRequests += r.liveCanaryRequests;
  }
  return { seeds: count, comparisons, missed, liveRequests };
}

/** The canary serves nothing for an hour: whether any run advanced, and what the last one said it needs. */
export function noCanaryTraffic(first: number, count: number): { seeds: number; advanced: number; needs: string[] } {
  let advanced = 0;
  let needs: string[] = [];
  for (const seed of seedsFrom(first, count)) {
    const r = simulate({ seed, config: SIM_CONFIG, rate: RATE, maxSeconds: 3600, primary: () => healthy(), canary: () => healthy(), canaryUnreachable: true });
    if (r.highestStep > 0 || r.state.phase !== 'Progressing') advanced++;
    needs = r.state.needs;
  }
  return { seeds: count, advanced, needs };
}

/**
 * Primary and canary both fail `rate` of requests, from the start (`fromSecond` 0) or from a later
 * second: how many runs rolled back, advanced while both failed, and the warning shown.
 */
export function sharedOutage(
  first: number,
  count: number,
  rate = 0.2,
  fromSecond = 0,
  parameters?: Partial<RolloutParameters>,
): { seeds: number; rolledBack: number; advancedDuring: number; warned: number; warning: string | null } {
  let rolledBack = 0;
  let advancedDuring = 0;
  let warned = 0;
  let warning: string | null = null;
  for (const seed of seedsFrom(first, count)) {
    const sick = (p: Progress) => healthy(p.second >= fromSecond ? rate : 0.005);
    let stepAtOutage: number | null = null;
    const r = simulate({
      seed,
      config: SIM_CONFIG,
      rate: RATE,
      maxSeconds: fromSecond + 600,
      primary: sick,
      canary: sick,
      parameters,
      until: (run) => {
        if (run.seconds === fromSecond + 5) stepAtOutage = run.state.step;
        return false;
      },
    });
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
