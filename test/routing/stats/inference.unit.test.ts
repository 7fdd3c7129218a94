/**
 * The rollout's statistics (docs/rollouts.md#the-statistics) and latency buckets, against values
 * computed by hand or by brute force on small samples.
 */
import { describe, expect, it } from 'vitest';
import { bernoulliCusum, binomialTail, exactBounds, hodgesLehmann, logGamma, mannWhitneyGreater, normalCdf, normalQuantile, shiftCounts, wilson } from '../../../routing/stats/inference.js';
import { bucketShiftOf, emptyLatencyCounts, LATENCY_BOUNDS_MS, LATENCY_BUCKET_COUNT, LATENCY_OVERFLOW, latencyBucket, quantileOf } from '../../../routing/stats/latency-buckets.js';
import { seededRandom } from '../../../routing/table/pick.js';

describe('normal distribution', () => {
  it.each([
    [0, 0.5],
    [1, 0.8413447460685429],
    [-1, 0.15865525393145707],
    [1.96, 0.9750021048517795],
    [2.326347874040841, 0.99],
    [-3, 0.0013498980316301],
    [-5, 2.866515718791939e-7],
    [-8, 6.220960574271785e-16],
    [40, 1],
  ])('Φ(%d) = %d', (z, p) => {
    expect(normalCdf(z)).toBeCloseTo(p, 14);
    if (p < 1e-3) expect(Math.abs(normalCdf(z) / p - 1)).toBeLessThan(z > -7 ? 1e-9 : 1e-7);
  });
  it.each([
    [0.5, 0],
    [0.975, 1.959963984540054],
    [0.99, 2.326347874040841],
    [0.01, -2.326347874040841],
    [1e-6, -4.753424308822899],
    [0.02, -2.053748910631823],
  ])('Φ⁻¹(%d) = %d', (p, z) => {
    expect(normalQuantile(p)).toBeCloseTo(z, 10);
  });
  it('quantile inverts the cdf from 1e-12 to 1 - 1e-12', () => {
    for (const p of [1e-12, 1e-8, 0.001, 0.0242, 0.0243, 0.3, 0.7, 0.9757, 0.999, 1 - 1e-9]) expect(normalCdf(normalQuantile(p)) / p).toBeCloseTo(1, 9);
    expect(normalQuantile(0)).toBe(-Infinity);
    expect(normalQuantile(1)).toBe(Infinity);
  });
});

describe('proportion bounds', () => {
  it('Wilson: 8 of 10 at z = 1.96 is [0.4902, 0.9433] (by hand)', () => {
    const b = wilson(8, 10, 1.96);
    expect(b.lower).toBeCloseTo(0.4902, 4);
    expect(b.upper).toBeCloseTo(0.9433, 4);
    expect(wilson(0, 0, 1.96)).toEqual({ lower: 0, upper: 1 });
  });

  it('binomial tail equals the brute-force sum, and stays exact far from the mean', () => {
    const choose = (n: number, k: number) => {
      let c = 1;
      for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
      return c;
    };
    for (const [n, p] of [
      [10, 0.3],
      [25, 0.01],
      [40, 0.97],
    ] as const) {
      for (let k = 0; k <= n + 1; k++) {
        let brute = 0;
        for (let j = k; j <= n; j++) brute += choose(n, j) * p ** j * (1 - p) ** (n - j);
        expect(binomialTail(k, n, p)).toBeCloseTo(brute, 12);
      }
    }
    // P(X ≥ 500 | n = 1000, p = 1/2) = 1/2 + P(X = 500)/2, P(X = 500) = 0.0252250181783608.
    expect(binomialTail(500, 1000, 0.5)).toBeCloseTo(0.5 + 0.0252250181783608 / 2, 12);
    // A tail of 1e-20 is not lost to 1 − (1 − 1e-20).
    expect(binomialTail(20, 75, 0.005)).toBeGreaterThan(0);
    expect(binomialTail(20, 75, 0.005)).toBeLessThan(1e-20);
    expect(logGamma(1)).toBeCloseTo(0, 14);
    expect(logGamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 13);
    expect(logGamma(11)).toBeCloseTo(Math.log(3628800), 12);
  });

  it('exact bounds: 9 of 10 is not shown under 99% (Wilson says it is), 10 of 10 and 0 of 10 in closed form', () => {
    const b = exactBounds(9, 10, 0.95);
    expect(b.upper).toBeCloseTo(0.95 ** (1 / 10), 9); // 1 − p¹⁰ = 0.05
    expect(b.upper).toBeGreaterThan(0.99);
    expect(wilson(9, 10, normalQuantile(0.95)).upper).toBeLessThan(0.99);
    expect(exactBounds(10, 10, 0.95)).toEqual({ lower: expect.closeTo(0.05 ** (1 / 10), 9), upper: 1 });
    expect(exactBounds(0, 10, 0.95)).toEqual({ lower: 0, upper: expect.closeTo(1 - 0.05 ** (1 / 10), 9) });
    // The bounds are where the tails reach 1 − confidence.
    const c = exactBounds(237, 250, 0.99);
    expect(1 - binomialTail(238, 250, c.upper)).toBeCloseTo(0.01, 9);
    expect(binomialTail(237, 250, c.lower)).toBeCloseTo(0.01, 9);
  });
});

describe('Bernoulli CUSUM over a window', () => {
  const up = Math.log(0.04 / 0.01);
  const down = Math.log(0.96 / 0.99);
  /** The recursion one request at a time, in a given order. */
  const oneByOne = (s: number, order: string) => {
    let peak = s;
    for (const c of order) {
      s = Math.max(0, s + (c === 'E' ? up : down));
      peak = Math.max(peak, s);
    }
    return { s, peak };
  };

  it('spreads a window’s errors evenly among its successes', () => {
    // 2 errors, 4 successes: gaps of 1, 1, 2 → S E S E S S.
    const r = bernoulliCusum(0.5, 2, 4, 0.01, 0.04);
    const b = oneByOne(0.5, 'SESESS');
    expect(r.s).toBeCloseTo(b.s, 12);
    expect(r.peak).toBeCloseTo(b.peak, 12);
    expect(bernoulliCusum(0, 1, 0, 0.01, 0.04)).toEqual({ s: up, peak: up });
    expect(bernoulliCusum(3, 0, 10_000, 0.01, 0.04)).toEqual({ s: 0, peak: 3 });
    expect(bernoulliCusum(0, 3, 0, 0.01, 0.04).s).toBeCloseTo(3 * up, 12);
  });

  it('equals the request-by-request recursion for random windows', () => {
    const r = seededRandom(7);
    for (let i = 0; i < 200; i++) {
      const e = Math.floor(r() * 5);
      const k = Math.floor(r() * 30);
      const s0 = r() * 4;
      const order: string[] = [];
      let before = 0;
      for (let j = 0; j < e; j++) {
        const upTo = Math.floor(((j + 1) * k) / (e + 1));
        order.push('S'.repeat(upTo - before), 'E');
        before = upTo;
      }
      order.push('S'.repeat(k - before));
      const got = bernoulliCusum(s0, e, k, 0.01, 0.04);
      const want = oneByOne(s0, order.join(''));
      expect(got.s).toBeCloseTo(want.s, 10);
      expect(got.peak).toBeCloseTo(want.peak, 10);
    }
  });
});

describe('Mann-Whitney on bucketed samples', () => {
  /** Count arrays from lists of bucket indices. */
  const counts = (xs: number[], len = 8) => {
    const c = new Array<number>(len).fill(0);
    for (const x of xs) c[x]!++;
    return c;
  };
  /** U by brute force over pairs: x above y counts 1, a tie 1/2. */
  const bruteU = (xs: number[], ys: number[]) => {
    let u = 0;
    for (const x of xs) for (const y of ys) u += x > y ? 1 : x === y ? 0.5 : 0;
    return u;
  };
  /** Mean and variance of U over every way of choosing which n1 of the pooled values are x (the permutation distribution). */
  const permutation = (xs: number[], ys: number[]) => {
    const pool = [...xs, ...ys];
    const us: number[] = [];
    const pick = (from: number, chosen: number[]) => {
      if (chosen.length === xs.length) {
        const set = new Set(chosen);
        us.push(
          bruteU(
            chosen.map((i) => pool[i]!),
            pool.filter((_, i) => !set.has(i)),
          ),
        );
        return;
      }
      for (let i = from; i < pool.length; i++) pick(i + 1, [...chosen, i]);
    };
    pick(0, []);
    const mean = us.reduce((a, b) => a + b, 0) / us.length;
    return { mean, variance: us.reduce((a, b) => a + (b - mean) ** 2, 0) / us.length };
  };

  it('U, its mean and its tie-corrected variance equal the brute-force and exact permutation values', () => {
    const r = seededRandom(11);
    for (let i = 0; i < 40; i++) {
      const n1 = 2 + Math.floor(r() * 5);
      const n2 = 2 + Math.floor(r() * 5);
      const xs = Array.from({ length: n1 }, () => Math.floor(r() * 5));
      const ys = Array.from({ length: n2 }, () => Math.floor(r() * 5));
      const t = mannWhitneyGreater(counts(xs), counts(ys));
      const perm = permutation(xs, ys);
      expect(t.u).toBeCloseTo(bruteU(xs, ys), 12);
      expect(t.mean).toBeCloseTo(perm.mean, 10);
      expect(t.variance).toBeCloseTo(perm.variance, 10);
    }
  });

  it('is one-sided: small p when x sits above y, large when below; empty sides give p = 1', () => {
    const lo = counts([1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 2, 1, 3, 2, 3, 2, 1, 2, 3]);
    const hi = shiftCounts(lo, 3);
    expect(mannWhitneyGreater(hi, lo).p).toBeLessThan(1e-5);
    expect(mannWhitneyGreater(lo, hi).p).toBeGreaterThan(0.99999);
    expect(mannWhitneyGreater(lo, lo).p).toBe(0.5);
    expect(mannWhitneyGreater(lo, emptyLatencyCounts()).p).toBe(1);
  });

  it('the margin: x three buckets above y passes against y moved up three buckets', () => {
    const y = counts([1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 2, 1, 3, 2, 3, 2, 1, 2, 3], 12);
    const x = shiftCounts(y, 3);
    const exact = mannWhitneyGreater(x, shiftCounts(y, 3));
    expect(exact.u).toBeCloseTo(exact.mean, 9);
    expect(mannWhitneyGreater(x, shiftCounts(y, 2)).p).toBeLessThan(mannWhitneyGreater(x, shiftCounts(y, 2.5)).p);
  });

  it('shifting moves counts whole and fractionally, keeping them inside the array', () => {
    expect(shiftCounts([0, 4, 0, 0], 1)).toEqual([0, 0, 4, 0]);
    expect(shiftCounts([0, 4, 0, 0], 1.25)).toEqual([0, 0, 3, 1]);
    expect(shiftCounts([0, 4, 0, 2], 1.5)).toEqual([0, 0, 2, 4]);
    expect(shiftCounts([2, 0, 0, 0], -1)).toEqual([2, 0, 0, 0]);
  });

  it('Hodges-Lehmann is the median pairwise difference', () => {
    expect(hodgesLehmann(counts([5, 5, 5]), counts([3, 3]))).toBeCloseTo(2, 12);
    // Differences of {4, 6} − {1}: 3 and 5, half the mass each: the median is at the edge between them.
    expect(hodgesLehmann(counts([4, 6]), counts([1]))).toBeCloseTo(3.5, 12);
    const r = seededRandom(3);
    for (let i = 0; i < 30; i++) {
      const xs = Array.from({ length: 1 + Math.floor(r() * 9) }, () => Math.floor(r() * 8));
      const ys = Array.from({ length: 1 + Math.floor(r() * 9) }, () => Math.floor(r() * 8));
      const diffs = xs.flatMap((x) => ys.map((y) => x - y)).sort((a, b) => a - b);
      const lowMedian = diffs[Math.ceil(diffs.length / 2) - 1]!;
      const hl = hodgesLehmann(counts(xs), counts(ys))!;
      expect(Math.abs(hl - lowMedian)).toBeLessThanOrEqual(0.5);
    }
    expect(hodgesLehmann(counts([]), counts([1]))).toBeNull();
  });
});

describe('latency buckets', () => {
  it('are 5% apart from 0.1 ms to past 60 s, with an overflow bucket', () => {
    expect(LATENCY_BOUNDS_MS[0]).toBe(0.1);
    expect(LATENCY_BOUNDS_MS.at(-1)!).toBeGreaterThanOrEqual(60_000);
    expect(LATENCY_BOUNDS_MS.at(-2)!).toBeLessThan(60_000);
    for (let i = 1; i < LATENCY_BOUNDS_MS.length; i++) expect(LATENCY_BOUNDS_MS[i]! / LATENCY_BOUNDS_MS[i - 1]!).toBeCloseTo(1.05, 12);
    expect(LATENCY_BUCKET_COUNT).toBe(LATENCY_BOUNDS_MS.length + 1);
    expect(LATENCY_OVERFLOW).toBe(LATENCY_BOUNDS_MS.length);
    expect(bucketShiftOf(1.05 ** 2)).toBeCloseTo(2, 12);
  });

  it('latencyBucket agrees with a search over the bounds, at every bound and between them', () => {
    const search = (ms: number) => {
      const i = LATENCY_BOUNDS_MS.findIndex((b) => ms <= b);
      return i < 0 ? LATENCY_OVERFLOW : i;
    };
    for (let i = 0; i < LATENCY_BOUNDS_MS.length; i++) {
      const b = LATENCY_BOUNDS_MS[i]!;
      expect(latencyBucket(b)).toBe(i);
      expect(latencyBucket(b * (1 + 1e-12))).toBe(search(b * (1 + 1e-12)));
      expect(latencyBucket(b * (1 - 1e-12))).toBe(search(b * (1 - 1e-12)));
    }
    const r = seededRandom(5);
    for (let i = 0; i < 5000; i++) {
      const ms = Math.exp(r() * 16 - 4);
      expect(latencyBucket(ms)).toBe(search(ms));
    }
    for (const ms of [0, -1, NaN, 0.05]) expect(latencyBucket(ms)).toBe(0);
    for (const ms of [70_000, 1e12, Infinity]) expect(latencyBucket(ms)).toBe(LATENCY_OVERFLOW);
  });

  it('quantileOf is within one bucket of the samples’ own quantile', () => {
    expect(quantileOf(emptyLatencyCounts(), 0.99)).toBeNull();
    const r = seededRandom(9);
    const samples = Array.from({ length: 2000 }, () => 20 * Math.exp(0.5 * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r())));
    const c = emptyLatencyCounts();
    for (const s of samples) c[latencyBucket(s)]!++;
    samples.sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.99]) {
      const exact = samples[Math.ceil(q * samples.length) - 1]!;
      expect(quantileOf(c, q)! / exact).toBeGreaterThan(1 / 1.05);
      expect(quantileOf(c, q)! / exact).toBeLessThan(1.05);
    }
    const one = emptyLatencyCounts();
    one[LATENCY_OVERFLOW] = 3;
    expect(quantileOf(one, 0.5)).toBe(LATENCY_BOUNDS_MS.at(-1));
  });
});
