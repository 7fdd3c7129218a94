/**
 * The multi-armed bandit of `seldon.io/gateway-bandit` (docs/bandits.md): the annotation, the
 * per-arm reward sums and how one reward updates them, and the traffic shares computed from them.
 *
 * Everything here is pure: the clock (`now`, the store's clock in ms) and the randomness (a uniform
 * [0, 1) source) are arguments, so the simulator (load/lib/bandit-sim.ts) runs exactly this code
 * and the store's atomic script mirrors `addReward` line by line.
 *
 * Rewards are scaled into [0, 1] and counted as fractional successes: a reward r adds r to the
 * arm's `s` and 1 − r to its `f` (a Beta-Bernoulli posterior Beta(1 + s, 1 + f)); no
 * `int(reward × rows)`, so 0.9 is not a failure. With a half-life, both sums fade by
 * 2^(−Δt / halfLife) between updates, on the store's clock.
 */
import { parseDuration } from '../values/duration.js';
import { readPercent } from '../values/percent.js';
import { logGamma, normalQuantile } from '../stats/inference.js';
import { parseFieldsDocument, type Parsed } from '../values/syntax.js';

export type BanditPolicy = 'thompson' | 'epsilon-greedy';

export interface BanditConfig {
  /** Predictor names that share the traffic, in the annotation's order (at least 2). */
  readonly arms: readonly string[];
  readonly policy: BanditPolicy;
  /** epsilon-greedy: the fraction of traffic split evenly over all arms. */
  readonly epsilon: number;
  /** Percent of the traffic every arm keeps at least, so a changed arm can be noticed. */
  readonly floor: number;
  /** Rewards fade by half every this many ms; null: never. */
  readonly halfLifeMs: number | null;
  /** Raw rewards are clipped into [lo, hi] and scaled to [0, 1]. */
  readonly rewardRange: readonly [number, number];
  /** How long after its answer a prediction's feedback is credited, in ms. */
  readonly attributionTtlMs: number;
}

export const BANDIT_ANNOTATION = 'seldon.io/gateway-bandit';

/** The annotation's defaults, as docs/bandits.md lists them. */
export const BANDIT_DEFAULTS = {
  policy: 'thompson' as BanditPolicy,
  epsilon: 0.1,
  floor: 2,
  halfLifeMs: 3_600_000 as number | null,
  rewardRange: [0, 1] as const,
  attributionTtlMs: 3_600_000,
};

/** Longest attribution TTL: every replica keeps each token's nonce in the store for this long. */
export const MAX_ATTRIBUTION_TTL_MS = 7 * 86_400_000;
/** Longest arm name, in UTF-8 bytes: the name travels in every attribution token, which is bounded. */
export const MAX_ARM_NAME_BYTES = 100;

const FIELDS = ['arms', 'policy', 'epsilon', 'floor', 'halfLife', 'rewardRange', 'attributionTtl'] as const;

const show = (v: unknown): string => JSON.stringify(v) ?? String(v);
const utf8Bytes = (s: string): number => new TextEncoder().encode(s).length;

/**
 * `seldon.io/gateway-bandit` (YAML or JSON) for a deployment whose (non-shadow) predictors are
 * `predictors`. Every field is optional; an empty value is all defaults. An unknown field, a bad
 * value or an arm that is not a predictor is an error naming the field: the bandit decides where
 * traffic goes, so it is applied whole or not at all.
 */
export function parseBanditAnnotation(raw: string, predictors: readonly string[]): Parsed<BanditConfig> {
  const fail = (error: string): Parsed<BanditConfig> => ({ ok: false, error: `${BANDIT_ANNOTATION}: ${error}` });
  const parsed = parseFieldsDocument(raw, FIELDS);
  if (!parsed.ok) return fail(parsed.error);
  const doc = parsed.value;

  let arms: string[];
  if (doc.arms === undefined || doc.arms === null) arms = [...predictors];
  else if (!Array.isArray(doc.arms) || doc.arms.some((a) => typeof a !== 'string' || a.trim() === '')) {
    return fail(`arms must be a list of predictor names, like [a, b], not ${show(doc.arms)}`);
  } else arms = doc.arms.map((a: string) => a.trim());
  const seen = new Set<string>();
  for (const a of arms) {
    if (!predictors.includes(a)) return fail(`arms: "${a}" is not a predictor of this deployment (predictors: ${predictors.join(', ') || 'none'})`);
    if (seen.has(a)) return fail(`arms: "${a}" is listed twice`);
    if (utf8Bytes(a) > MAX_ARM_NAME_BYTES) return fail(`arms: "${a}" is longer than ${MAX_ARM_NAME_BYTES} bytes, too long to travel in an attribution token`);
    seen.add(a);
  }
  if (arms.length < 2) {
    return fail(
      doc.arms === undefined || doc.arms === null
        ? `a bandit needs at least 2 arms, and the deployment has ${predictors.length} predictor${predictors.length === 1 ? '' : 's'}`
        : `arms: a bandit needs at least 2 arms, got ${arms.length}`,
    );
  }

  let policy = BANDIT_DEFAULTS.policy;
  if (doc.policy !== undefined) {
    if (doc.policy !== 'thompson' && doc.policy !== 'epsilon-greedy') return fail(`policy must be thompson or epsilon-greedy, not ${show(doc.policy)}`);
    policy = doc.policy;
  }

  let epsilon = BANDIT_DEFAULTS.epsilon;
  if (doc.epsilon !== undefined) {
    if (typeof doc.epsilon !== 'number' || !(doc.epsilon >= 0 && doc.epsilon <= 1)) return fail(`epsilon must be a number from 0 to 1, like 0.1, not ${show(doc.epsilon)}`);
    epsilon = doc.epsilon; // kept with thompson too, so switching policy is a one-line change
  }

  let floor = BANDIT_DEFAULTS.floor;
  if (doc.floor !== undefined) {
    const p = readPercent(doc.floor);
    if (!p.ok) return fail(`floor must be a percentage like 2%, not ${show(doc.floor)}`);
    floor = p.value;
  }
  if (floor * arms.length >= 100) {
    return fail(`floor ${floor}% for each of ${arms.length} arms adds up to ${floor * arms.length}%: it must stay under 100% so the best arm can get more`);
  }

  let halfLifeMs = BANDIT_DEFAULTS.halfLifeMs;
  if (doc.halfLife !== undefined) {
    if (doc.halfLife === 'none') halfLifeMs = null;
    else {
      const ms = parseDuration(doc.halfLife);
      if (ms === null || ms <= 0) return fail(`halfLife must be a duration above 0 like 2m or 1h, or none, not ${show(doc.halfLife)}`);
      halfLifeMs = ms;
    }
  }

  let rewardRange: readonly [number, number] = BANDIT_DEFAULTS.rewardRange;
  if (doc.rewardRange !== undefined) {
    const r = doc.rewardRange;
    if (!Array.isArray(r) || r.length !== 2 || !r.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      return fail(`rewardRange must be two numbers [lo, hi], like [0, 1], not ${show(r)}`);
    }
    if (!(r[0] < r[1])) return fail(`rewardRange [${r[0]}, ${r[1]}]: lo must be less than hi`);
    rewardRange = [r[0], r[1]];
  }

  let attributionTtlMs = BANDIT_DEFAULTS.attributionTtlMs;
  if (doc.attributionTtl !== undefined) {
    const ms = parseDuration(doc.attributionTtl);
    if (ms === null || ms <= 0 || ms > MAX_ATTRIBUTION_TTL_MS) return fail(`attributionTtl must be a duration above 0 and at most 7d, like 1h, not ${show(doc.attributionTtl)}`);
    attributionTtlMs = ms;
  }

  return { ok: true, value: { arms, policy, epsilon, floor, halfLifeMs, rewardRange, attributionTtlMs } };
}

// ---------------------------------------------------------------------------------------------
// One arm's evidence, and how a reward updates it.
// ---------------------------------------------------------------------------------------------

/** One arm as the store keeps it. */
export interface ArmStats {
  /** Decayed sum of scaled rewards. */
  readonly s: number;
  /** Decayed sum of (1 − scaled reward). */
  readonly f: number;
  /** Store clock (ms) of the last update: `s` and `f` are as of this time. */
  readonly t: number;
  /** Rewards recorded, never decayed. */
  readonly n: number;
}

export const EMPTY_ARM: ArmStats = { s: 0, f: 0, t: 0, n: 0 };

/** A raw reward clipped into `range` and scaled to [0, 1]. Throws a RangeError for NaN: it has no place in the range. */
export function scaleReward(raw: number, range: readonly [number, number]): number {
  if (Number.isNaN(raw)) throw new RangeError('reward is NaN, not a number');
  const [lo, hi] = range;
  return raw <= lo ? 0 : raw >= hi ? 1 : (raw - lo) / (hi - lo);
}

/**
 * `arm` faded to `now`: s and f × 2^(−Δt / halfLife) with Δt = max(0, now − t), and t = max(t, now)
 * (a store clock that steps back neither grows the sums nor moves t back). No half-life: only t moves.
 */
export function decayTo(arm: ArmStats, now: number, halfLifeMs: number | null): ArmStats {
  const dt = now - arm.t;
  if (dt <= 0) return arm;
  if (halfLifeMs === null) return { s: arm.s, f: arm.f, t: now, n: arm.n };
  const k = Math.pow(2, -dt / halfLifeMs);
  return { s: arm.s * k, f: arm.f * k, t: now, n: arm.n };
}

/**
 * One reward (already scaled to [0, 1]) recorded at store time `now`, exactly as the store's atomic
 * script does it:
 *
 *   dt = now - t; if dt > 0 then (if halfLife then k = 2^(-dt/halfLife); s = s*k; f = f*k end) t = now end
 *   s = s + r; f = f + (1 - r); n = n + 1
 */
export function addReward(arm: ArmStats, reward01: number, now: number, halfLifeMs: number | null): ArmStats {
  const d = decayTo(arm, now, halfLifeMs);
  return { s: d.s + reward01, f: d.f + (1 - reward01), t: d.t, n: d.n + 1 };
}

// ---------------------------------------------------------------------------------------------
// Sampling: Gamma (Marsaglia-Tsang) and Beta from an injected uniform source.
// ---------------------------------------------------------------------------------------------

export type Uniform = () => number;

/** Standard normal draws by Box-Muller; each pair of uniforms gives two, the second kept for the next call. */
export function normalSampler(random: Uniform): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const z = spare;
      spare = null;
      return z;
    }
    const r = Math.sqrt(-2 * Math.log(1 - random())); // 1 − u ∈ (0, 1]: no log(0)
    const theta = 2 * Math.PI * random();
    spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  };
}

/**
 * Gamma(shape, 1) draws (Marsaglia and Tsang, 2000). Shape below 1 draws Gamma(shape + 1) and
 * multiplies by U^(1/shape).
 */
export function gammaSampler(shape: number, random: Uniform, normal = normalSampler(random)): () => number {
  if (!(shape > 0)) throw new RangeError(`Gamma shape must be above 0, got ${shape}`);
  const boost = shape < 1;
  const d = (boost ? shape + 1 : shape) - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  return () => {
    let g: number;
    for (;;) {
      const x = normal();
      let v = 1 + c * x;
      if (v <= 0) continue;
      v = v * v * v;
      const u = random();
      const x2 = x * x;
      if (u < 1 - 0.0331 * x2 * x2 || Math.log(u) < 0.5 * x2 + d * (1 - v + Math.log(v))) {
        g = d * v;
        break;
      }
    }
    return boost ? g * Math.pow(1 - random(), 1 / shape) : g;
  };
}

/** Beta(a, b) draws as X / (X + Y) of two Gamma draws. */
export function betaSampler(a: number, b: number, random: Uniform, normal = normalSampler(random)): () => number {
  const x = gammaSampler(a, random, normal);
  const y = gammaSampler(b, random, normal);
  return () => {
    const gx = x();
    return gx / (gx + y());
  };
}

// ---------------------------------------------------------------------------------------------
// The Beta posterior's mean and 95% interval (exact quantiles).
// ---------------------------------------------------------------------------------------------

/** Continued fraction of the incomplete Beta function (modified Lentz). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  const maxIterations = 200 + Math.ceil(10 * Math.sqrt(Math.max(a, b)));
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= maxIterations; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-14) break;
  }
  return h;
}

/** The regularised incomplete Beta function I_x(a, b): the Beta(a, b) CDF at x. */
export function betaCdf(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x));
  return x < (a + 1) / (a + b + 2) ? (front * betaContinuedFraction(x, a, b)) / a : 1 - (front * betaContinuedFraction(1 - x, b, a)) / b;
}

/** The Beta(a, b) quantile at p: Newton steps on the CDF, kept inside a shrinking bisection bracket. */
export function betaQuantile(p: number, a: number, b: number): number {
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  const logNorm = logGamma(a + b) - logGamma(a) - logGamma(b);
  const mean = a / (a + b);
  const sd = Math.sqrt((a * b) / ((a + b) * (a + b) * (a + b + 1)));
  // Start from the normal approximation with the posterior's mean and sd.
  let x = Math.min(1 - 1e-12, Math.max(1e-12, mean + sd * normalQuantile(p)));
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 100; i++) {
    const err = betaCdf(x, a, b) - p;
    if (err > 0) hi = x;
    else lo = x;
    if (Math.abs(err) < 1e-12 || hi - lo < 1e-15) break;
    const pdf = Math.exp(logNorm + (a - 1) * Math.log(x) + (b - 1) * Math.log1p(-x));
    let next = pdf > 0 ? x - err / pdf : NaN;
    if (!(next > lo && next < hi)) next = (lo + hi) / 2;
    x = next;
  }
  return x;
}

// ---------------------------------------------------------------------------------------------
// Shares.
// ---------------------------------------------------------------------------------------------

/** Monte-Carlo draws per Thompson share computation: P(best) to about ±1.6 points (2 sd at 0.5). */
export const THOMPSON_DRAWS = 1000;

/**
 * thompson: the arms split evenly (the prior) until each has this many rewards. With fewer, an arm's
 * mean is known to worse than ±0.1 (one sd at 0.5), and P(best) from a handful of rewards sends a
 * whole refresh of traffic one way (94/2/4 after 10 rewards): rewards come back seconds later, so
 * an arm whose first few rewards were unlucky then sits at its floor, slow to gather the evidence
 * that clears it (docs/bandits.md#the-policy-in-plain-words).
 */
export const THOMPSON_WARM_UP_REWARDS = 25;

export interface BanditShares {
  /** Percent of traffic per arm, each at least the floor, summing to 100. */
  readonly share: ReadonlyMap<string, number>;
  /** Probability that the arm has the highest mean reward (Monte-Carlo, from the posteriors). */
  readonly probabilityBest: ReadonlyMap<string, number>;
  /** Posterior mean reward, in the rewardRange's units. */
  readonly mean: ReadonlyMap<string, number>;
  /** 95% equal-tailed interval of the posterior mean, in the rewardRange's units. */
  readonly interval: ReadonlyMap<string, readonly [number, number]>;
}

export type ShareConfig = Pick<BanditConfig, 'arms' | 'policy' | 'epsilon' | 'floor' | 'halfLifeMs' | 'rewardRange'>;

/**
 * The traffic shares of `config.arms` from the store's `arms` (a missing arm has no evidence yet),
 * faded to store time `now`. Each arm's posterior is Beta(1 + s, 1 + f).
 * - thompson: share ∝ P(arm is best), from `draws` joint draws of the posteriors, once every arm
 *   has `THOMPSON_WARM_UP_REWARDS` rewards (`n`, never faded); evenly before;
 * - epsilon-greedy: 1 − ε to the arm with the best posterior mean (split on a tie), ε evenly;
 * then the floor (`floorShares`). `random` only feeds the Monte-Carlo draws.
 */
export function banditShares(arms: ReadonlyMap<string, ArmStats>, config: ShareConfig, random: Uniform, now: number, draws = THOMPSON_DRAWS): BanditShares {
  const names = config.arms;
  const k = names.length;
  const [lo, hi] = config.rewardRange;
  const a: number[] = [];
  const b: number[] = [];
  for (const name of names) {
    const arm = decayTo(arms.get(name) ?? EMPTY_ARM, now, config.halfLifeMs);
    a.push(1 + arm.s);
    b.push(1 + arm.f);
  }

  const wins = new Array<number>(k).fill(0);
  const normal = normalSampler(random);
  const samplers = names.map((_, i) => betaSampler(a[i]!, b[i]!, random, normal));
  for (let d = 0; d < draws; d++) {
    let best = 0;
    let bestValue = -1;
    for (let i = 0; i < k; i++) {
      const v = samplers[i]!();
      if (v > bestValue) {
        bestValue = v;
        best = i;
      }
    }
    wins[best]!++;
  }
  const probabilityBest = wins.map((w) => w / draws);
  const means = names.map((_, i) => a[i]! / (a[i]! + b[i]!));

  let weights: number[];
  if (config.policy === 'thompson') {
    const warm = names.every((name) => (arms.get(name)?.n ?? 0) >= THOMPSON_WARM_UP_REWARDS);
    weights = warm ? probabilityBest : probabilityBest.map(() => 1);
  } else {
    const top = Math.max(...means);
    const leaders = means.filter((m) => m === top).length;
    weights = means.map((m) => (m === top ? (1 - config.epsilon) / leaders : 0) + config.epsilon / k);
  }
  const shares = floorShares(weights, config.floor);
  const unscale = (x: number): number => lo + (hi - lo) * x;
  return {
    share: new Map(names.map((n, i) => [n, shares[i]!])),
    probabilityBest: new Map(names.map((n, i) => [n, probabilityBest[i]!])),
    mean: new Map(names.map((n, i) => [n, unscale(means[i]!)])),
    interval: new Map(names.map((n, i) => [n, [unscale(betaQuantile(0.025, a[i]!, b[i]!)), unscale(betaQuantile(0.975, a[i]!, b[i]!))] as const])),
  };
}

/**
 * Percents from non-negative `weights` (any total) such that every member gets at least `floor`
 * and the rest keep their proportions: members that would fall under the floor are raised to it,
 * and the remainder is split over the others in proportion to their weights, repeated until none
 * falls under. Zero total weight splits evenly. Needs floor × count < 100.
 */
export function floorShares(weights: readonly number[], floor: number): number[] {
  const k = weights.length;
  // Scaled by the largest first: proportions of denormal weights (5e-324) lose no precision.
  const top = Math.max(0, ...weights);
  if (top > 0 && top < 1) weights = weights.map((w) => w / top);
  const pinned = new Array<boolean>(k).fill(false);
  const out = new Array<number>(k).fill(floor);
  for (;;) {
    let free = 0;
    let freeWeight = 0;
    for (let i = 0; i < k; i++) {
      if (pinned[i]) continue;
      free++;
      freeWeight += weights[i]!;
    }
    const left = 100 - floor * (k - free);
    let changed = false;
    for (let i = 0; i < k; i++) {
      if (pinned[i]) continue;
      out[i] = freeWeight > 0 ? (left * weights[i]!) / freeWeight : left / free;
      if (out[i]! < floor) {
        pinned[i] = true;
        out[i] = floor;
        changed = true;
      }
    }
    if (!changed) return out;
  }
}
