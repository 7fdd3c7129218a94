/**
 * The rollout's statistics (docs/rollouts.md#the-statistics), as pure functions: the normal
 * distribution, Wilson bounds on a proportion, one step of a Bernoulli CUSUM over a window's
 * counts, and a one-sided Mann-Whitney test and Hodges-Lehmann shift on two bucketed samples.
 * Bucketed samples are count arrays indexed by bucket; only the order of the buckets matters here.
 */

/** P(Z ≤ z) for a standard normal Z, to about 1e-14 (Hart's rational approximation, as in West 2005). */
export function normalCdf(z: number): number {
  if (Number.isNaN(z)) return NaN;
  const x = Math.abs(z);
  let tail: number;
  if (x > 37) tail = 0;
  else {
    const e = Math.exp((-x * x) / 2);
    if (x < 7.07106781186547) {
      let num = 3.52624965998911e-2 * x + 0.700383064443688;
      num = num * x + 6.37396220353165;
      num = num * x + 33.912866078383;
      num = num * x + 112.079291497871;
      num = num * x + 221.213596169931;
      num = num * x + 220.206867912376;
      let den = 8.83883476483184e-2 * x + 1.75566716318264;
      den = den * x + 16.064177579207;
      den = den * x + 86.7807322029461;
      den = den * x + 296.564248779674;
      den = den * x + 637.333633378831;
      den = den * x + 793.826512519948;
      den = den * x + 440.413735824752;
      tail = (e * num) / den;
    } else {
      let f = x + 0.65;
      f = x + 4 / f;
      f = x + 3 / f;
      f = x + 2 / f;
      f = x + 1 / f;
      tail = e / f / 2.506628274631;
    }
  }
  return z > 0 ? 1 - tail : tail;
}

const A = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
const B = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
const C = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
const D = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];

const poly = (coef: readonly number[], x: number): number => coef.reduce((acc, c) => acc * x + c, 0);

/** The z with P(Z ≤ z) = p (Acklam's approximation and one Halley step against `normalCdf`). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) return p === 0 ? -Infinity : p === 1 ? Infinity : NaN;
  let x: number;
  if (p < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = poly(C, q) / (poly(D, q) * q + 1);
  } else if (p > 1 - 0.02425) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -poly(C, q) / (poly(D, q) * q + 1);
  } else {
    const q = p - 0.5;
    const r = q * q;
    x = (poly(A, r) * q) / (poly(B, r) * r + 1);
  }
  const e = normalCdf(x) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}

/**
 * Wilson score bounds on a proportion `successes / n` with normal quantile `z` (z = 2.326 is a
 * one-sided 99% bound on each side). n = 0 gives [0, 1].
 */
export function wilson(successes: number, n: number, z: number): { lower: number; upper: number } {
  if (!(n > 0)) return { lower: 0, upper: 1 };
  const p = Math.min(Math.max(successes / n, 0), 1);
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { lower: Math.max(0, centre - half), upper: Math.min(1, centre + half) };
}

/**
 * A Bernoulli CUSUM `S = max(0, S + x)` over one window's requests, testing an error rate `pOk`
 * against `pBad` (> pOk): an error adds log(pBad/pOk), a success log((1-pBad)/(1-pOk)). A window
 * holds counts, not an order, so its errors are taken as evenly spread among its successes (the
 * order neither hastens nor delays the alarm on average). `peak` is the highest S reached inside
 * the window (the alarm test), `s` the value after it. O(errors).
 */
export function bernoulliCusum(s: number, errors: number, successes: number, pOk: number, pBad: number): { s: number; peak: number } {
  const up = Math.log(pBad / pOk);
  const down = Math.log((1 - pBad) / (1 - pOk));
  let peak = s;
  let before = 0;
  for (let j = 0; j < errors; j++) {
    const upTo = Math.floor(((j + 1) * successes) / (errors + 1));
    s = Math.max(0, s + (upTo - before) * down) + up;
    before = upTo;
    if (s > peak) peak = s;
  }
  s = Math.max(0, s + (successes - before) * down);
  return { s, peak };
}

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** log Γ(x) for x > 0 (Lanczos, g = 7). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const y = x - 1;
  let a = LANCZOS[0]!;
  const t = y + 7.5;
  for (let i = 1; i < LANCZOS.length; i++) a += LANCZOS[i]! / (y + i);
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a);
}

function logBinomialPmf(k: number, n: number, p: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1) + k * Math.log(p) + (n - k) * Math.log1p(-p);
}

/**
 * P(X ≥ k) for X ~ Binomial(n, p), exact: the shorter side is summed term by term from k
 * outwards until the terms no longer count, so the cost is a few standard deviations' worth of
 * terms whatever n is.
 */
export function binomialTail(k: number, n: number, p: number): number {
  k = Math.ceil(k);
  if (k <= 0) return 1;
  if (k > n || p <= 0) return 0;
  if (p >= 1) return 1;
  let sum = 0;
  if (k > n * p) {
    let term = Math.exp(logBinomialPmf(k, n, p));
    for (let j = k; j <= n; j++) {
      sum += term;
      if (term <= sum * 1e-17) break;
      term *= ((n - j) / (j + 1)) * (p / (1 - p));
    }
    return Math.min(1, sum);
  }
  let term = Math.exp(logBinomialPmf(k - 1, n, p));
  for (let j = k - 1; j >= 0; j--) {
    sum += term;
    if (term <= sum * 1e-17) break;
    term *= (j / (n - j + 1)) * ((1 - p) / p);
  }
  return Math.max(0, 1 - sum);
}

/**
 * Exact (Clopper-Pearson) one-sided bounds on a proportion `successes / n`, each at `confidence`:
 * `upper` is the p under which seeing this few successes has probability 1 − confidence, `lower`
 * the p over which seeing this many has. Unlike Wilson's, they hold near 0% and 100% with few
 * samples (9 of 10 does not show a rate under 99%). n = 0 gives [0, 1].
 */
export function exactBounds(successes: number, n: number, confidence: number): { lower: number; upper: number } {
  if (!(n > 0)) return { lower: 0, upper: 1 };
  const x = Math.min(Math.max(Math.round(successes), 0), n);
  const alpha = 1 - confidence;
  // f rises with p from below 0 to above 0: Illinois (regula falsi that halves a stuck end), to 1e-12.
  const solve = (f: (p: number) => number): number => {
    let a = 0;
    let b = 1;
    let fa = f(a);
    let fb = f(b);
    let side = 0;
    for (let i = 0; i < 200 && b - a > 1e-12; i++) {
      const c = (a * fb - b * fa) / (fb - fa);
      const fc = f(c);
      if (fc === 0) return c;
      if (fc < 0) {
        a = c;
        fa = fc;
        if (side === -1) fb /= 2;
        side = -1;
      } else {
        b = c;
        fb = fc;
        if (side === 1) fa /= 2;
        side = 1;
      }
    }
    return (a + b) / 2;
  };
  // P(X ≤ x | p) = 1 − P(X ≥ x + 1 | p) falls as p rises; P(X ≥ x | p) rises.
  const upper = x === n ? 1 : solve((p) => alpha - (1 - binomialTail(x + 1, n, p)));
  const lower = x === 0 ? 0 : solve((p) => binomialTail(x, n, p) - alpha);
  return { lower, upper };
}

/** Sum of a count array. */
export function sumOf(xs: readonly number[]): number {
  let n = 0;
  for (const x of xs) n += x;
  return n;
}

/**
 * A bucketed sample moved up by `shift` buckets (fractional: a bucket's count is split between
 * the two buckets it lands between, as if spread evenly inside it); what would fall off either
 * end stays in the first or last bucket.
 */
export function shiftCounts(counts: readonly number[], shift: number): number[] {
  const n = counts.length;
  const out = new Array<number>(n).fill(0);
  const whole = Math.floor(shift);
  const frac = shift - whole;
  const clamp = (i: number) => Math.min(Math.max(i, 0), n - 1);
  for (let i = 0; i < n; i++) {
    const c = counts[i]!;
    if (c === 0) continue;
    out[clamp(i + whole)]! += c * (1 - frac);
    if (frac > 0) out[clamp(i + whole + 1)]! += c * frac;
  }
  return out;
}

export interface RankTest {
  readonly n1: number;
  readonly n2: number;
  /** Pairs (x, y) with x above y, plus half the ties. */
  readonly u: number;
  /** Mean and tie-corrected variance of U when neither sample is above the other. */
  readonly mean: number;
  readonly variance: number;
  /** Standardised U, with a continuity correction of 1/2 towards the mean. */
  readonly z: number;
  /** One-sided p-value: small when x is above y. */
  readonly p: number;
}

/**
 * One-sided Mann-Whitney U test of "x is stochastically above y" on two bucketed samples (count
 * arrays of the same length; counts may be fractional, as after `shiftCounts`). Samples in the
 * same bucket are ties; the variance is tie-corrected:
 *   Var U = n1·n2/12 · ((N+1) − Σ(t³ − t) / (N(N−1))),  t = the combined count of a bucket.
 * Normal approximation: use it with at least ~20 samples a side. Either sample empty → p = 1.
 */
export function mannWhitneyGreater(x: readonly number[], y: readonly number[]): RankTest {
  const n1 = sumOf(x);
  const n2 = sumOf(y);
  const N = n1 + n2;
  let u = 0;
  let yBelow = 0;
  let ties = 0;
  const len = Math.max(x.length, y.length);
  for (let i = 0; i < len; i++) {
    const xi = x[i] ?? 0;
    const yi = y[i] ?? 0;
    u += xi * (yBelow + yi / 2);
    yBelow += yi;
    const t = xi + yi;
    ties += t * t * t - t;
  }
  const mean = (n1 * n2) / 2;
  const variance = N > 1 ? ((n1 * n2) / 12) * (N + 1 - ties / (N * (N - 1))) : 0;
  if (!(n1 > 0 && n2 > 0) || !(variance > 0)) return { n1, n2, u, mean, variance, z: 0, p: 1 };
  const d = u - mean;
  const z = (d > 0 ? Math.max(0, d - 0.5) : Math.min(0, d + 0.5)) / Math.sqrt(variance);
  return { n1, n2, u, mean, variance, z, p: 1 - normalCdf(z) };
}

/**
 * Hodges-Lehmann shift of x over y, in buckets: the median of the differences (x bucket − y
 * bucket) over all pairs, interpolated inside the median's difference (each difference taken as
 * spread over ±1/2). Null when either sample is empty.
 */
export function hodgesLehmann(x: readonly number[], y: readonly number[]): number | null {
  const len = Math.max(x.length, y.length);
  const mass = new Float64Array(2 * len - 1);
  let total = 0;
  for (let i = 0; i < len; i++) {
    const xi = x[i] ?? 0;
    if (xi === 0) continue;
    for (let j = 0; j < len; j++) {
      const yj = y[j] ?? 0;
      if (yj === 0) continue;
      mass[i - j + len - 1]! += xi * yj;
      total += xi * yj;
    }
  }
  if (!(total > 0)) return null;
  const half = total / 2;
  let below = 0;
  for (let k = 0; k < mass.length; k++) {
    const m = mass[k]!;
    if (m > 0 && below + m >= half) return k - (len - 1) - 0.5 + (half - below) / m;
    below += m;
  }
  return null;
}
