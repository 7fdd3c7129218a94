/**
 * The bandit's pure core (docs/bandits.md): the annotation, reward scaling, decay and the store
 * script's update, the Gamma/Beta samplers, the posterior interval, and the shares with their floor.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  addReward,
  BANDIT_DEFAULTS,
  banditShares,
  THOMPSON_WARM_UP_REWARDS,
  betaCdf,
  betaQuantile,
  betaSampler,
  decayTo,
  EMPTY_ARM,
  floorShares,
  gammaSampler,
  normalSampler,
  parseBanditAnnotation,
  scaleReward,
  type ArmStats,
  type BanditConfig,
  type ShareConfig,
} from '../../../routing/steering/bandit.js';
import { seededRandom } from '../../../routing/table/pick.js';

const PREDICTORS = ['a', 'b', 'c'];

function parsed(raw: string, predictors = PREDICTORS): BanditConfig {
  const p = parseBanditAnnotation(raw, predictors);
  if (!p.ok) throw new Error(p.error);
  return p.value;
}
function error(raw: string, predictors = PREDICTORS): string {
  const p = parseBanditAnnotation(raw, predictors);
  if (p.ok) throw new Error(`expected an error for ${raw}`);
  expect(p.error.startsWith('seldon.io/gateway-bandit: ')).toBe(true);
  return p.error;
}

describe('parseBanditAnnotation', () => {
  it('an empty value is every default, all predictors as arms', () => {
    expect(parsed('')).toEqual({ arms: ['a', 'b', 'c'], ...BANDIT_DEFAULTS });
    expect(parsed('{}').arms).toEqual(['a', 'b', 'c']);
    expect(BANDIT_DEFAULTS).toEqual({ policy: 'thompson', epsilon: 0.1, floor: 2, halfLifeMs: 3_600_000, rewardRange: [0, 1], attributionTtlMs: 3_600_000 });
  });

  it('reads every field of the documented example', () => {
    const raw = ['arms: [a, c]', 'policy: epsilon-greedy', 'epsilon: 0.2', 'floor: 2.5%', 'halfLife: 2m', 'rewardRange: [-1, 1]', 'attributionTtl: 90s'].join('\n');
    expect(parsed(raw)).toEqual({ arms: ['a', 'c'], policy: 'epsilon-greedy', epsilon: 0.2, floor: 2.5, halfLifeMs: 120_000, rewardRange: [-1, 1], attributionTtlMs: 90_000 });
  });

  it('takes JSON too, and every duration unit', () => {
    expect(parsed('{"arms": ["b", "a"], "halfLife": "none"}')).toMatchObject({ arms: ['b', 'a'], halfLifeMs: null });
    for (const [text, ms] of [
      ['250ms', 250],
      ['1.5s', 1500],
      ['2m', 120_000],
      ['3h', 10_800_000],
      ['1d', 86_400_000],
    ] as const) {
      expect(parsed(`halfLife: ${text}`).halfLifeMs).toBe(ms);
    }
    expect(parsed('attributionTtl: 7d').attributionTtlMs).toBe(7 * 86_400_000);
  });

  it('the issue example, comments and all, parses as written (epsilon kept, unused by thompson)', () => {
    const example = [
      'arms: [a, b, c]          # predictor names; default: all predictors',
      'policy: thompson         # thompson (Beta-Bernoulli on rewards in rewardRange) | epsilon-greedy',
      'epsilon: 0.1             # epsilon-greedy only',
      'floor: 2%                # every arm keeps at least this share, so a changed arm can be noticed',
      'halfLife: 2m             # old rewards fade: weight 2^(-age/halfLife); "none" = never',
      'rewardRange: [0, 1]      # rewards are clipped and scaled into [0, 1]',
      "attributionTtl: 1h       # how long an answer's feedback is credited",
    ].join('\n');
    expect(parsed(example)).toEqual({ arms: ['a', 'b', 'c'], policy: 'thompson', epsilon: 0.1, floor: 2, halfLifeMs: 120_000, rewardRange: [0, 1], attributionTtlMs: 3_600_000 });
  });

  it.each([
    ['arms: [a, x]', 'arms: "x" is not a predictor of this deployment (predictors: a, b, c)'],
    ['arms: [a, a]', 'arms: "a" is listed twice'],
    ['arms: [a]', 'arms: a bandit needs at least 2 arms, got 1'],
    ['arms: a', 'arms must be a list of predictor names, like [a, b], not "a"'],
    ['arms: [a, 3]', 'arms must be a list of predictor names'],
    ['policy: ucb', 'policy must be thompson or epsilon-greedy, not "ucb"'],
    ['epsilon: 1.5', 'epsilon must be a number from 0 to 1, like 0.1, not 1.5'],
    ['epsilon: "0.1"', 'epsilon must be a number from 0 to 1'],
    ['floor: 2', 'floor must be a percentage like 2%, not 2'],
    ['floor: "0.02"', 'floor must be a percentage like 2%, not "0.02"'],
    ['floor: 34%', 'floor 34% for each of 3 arms adds up to 102%: it must stay under 100%'],
    ['floor: 50%\narms: [a, b]', 'floor 50% for each of 2 arms adds up to 100%'],
    ['halfLife: 0s', 'halfLife must be a duration above 0 like 2m or 1h, or none, not "0s"'],
    ['halfLife: 120', 'halfLife must be a duration above 0 like 2m or 1h, or none, not 120'],
    ['halfLife: 2 minutes', 'halfLife must be a duration'],
    ['rewardRange: [1, 0]', 'rewardRange [1, 0]: lo must be less than hi'],
    ['rewardRange: [1, 1]', 'rewardRange [1, 1]: lo must be less than hi'],
    ['rewardRange: [0]', 'rewardRange must be two numbers [lo, hi], like [0, 1], not [0]'],
    ['rewardRange: [0, .inf]', 'rewardRange must be two numbers'],
    ['attributionTtl: 8d', 'attributionTtl must be a duration above 0 and at most 7d, like 1h, not "8d"'],
    ['attributionTtl: none', 'attributionTtl must be a duration'],
    ['halflife: 2m', 'unknown field "halflife" (fields: arms, policy, epsilon, floor, halfLife, rewardRange, attributionTtl)'],
    ['- a\n- b', 'must be a mapping of fields'],
    ['arms: [a, b', 'does not parse as YAML or JSON'],
    ['floor: 2%\nfloor: 3%', 'does not parse as YAML or JSON'],
  ])('%j is refused: %s', (raw, message) => {
    expect(error(raw)).toContain(message);
  });

  it('needs two arms even by default', () => {
    expect(error('', ['only'])).toBe('seldon.io/gateway-bandit: a bandit needs at least 2 arms, and the deployment has 1 predictor');
  });

  it('refuses an arm name too long to travel in an attribution token', () => {
    const long = 'm'.repeat(101);
    expect(error(`arms: [a, ${long}]`, ['a', long])).toContain('is longer than 100 bytes');
    expect(parsed(`arms: [a, ${'m'.repeat(100)}]`, ['a', 'm'.repeat(100)]).arms).toHaveLength(2);
  });
});

describe('scaleReward', () => {
  it('clips into the range and scales to [0, 1]', () => {
    expect(scaleReward(0.9, [0, 1])).toBe(0.9);
    expect(scaleReward(1.7, [0, 1])).toBe(1);
    expect(scaleReward(-3, [0, 1])).toBe(0);
    expect(scaleReward(0, [-1, 1])).toBe(0.5);
    expect(scaleReward(25, [0, 100])).toBe(0.25);
    expect(scaleReward(Infinity, [0, 1])).toBe(1);
    expect(scaleReward(-Infinity, [0, 1])).toBe(0);
  });
  it('refuses NaN', () => {
    expect(() => scaleReward(NaN, [0, 1])).toThrow(RangeError);
  });
});

describe('decay and the store script update', () => {
  const arm: ArmStats = { s: 8, f: 4, t: 1_000, n: 12 };

  it('halves s and f every half-life, keeps n', () => {
    expect(decayTo(arm, 121_000, 120_000)).toEqual({ s: 4, f: 2, t: 121_000, n: 12 });
    expect(decayTo(arm, 241_000, 120_000)).toEqual({ s: 2, f: 1, t: 241_000, n: 12 });
    const half = decayTo(arm, 61_000, 120_000);
    expect(half.s).toBeCloseTo(8 * Math.SQRT1_2, 12);
    expect(half.f).toBeCloseTo(4 * Math.SQRT1_2, 12);
  });

  it('a clock that steps back changes nothing; no half-life only moves t', () => {
    expect(decayTo(arm, 500, 120_000)).toBe(arm);
    expect(decayTo(arm, 1_000, 120_000)).toBe(arm);
    expect(decayTo(arm, 9_999_999, null)).toEqual({ s: 8, f: 4, t: 9_999_999, n: 12 });
  });

  it('addReward decays to now, then adds r to s and 1 − r to f, and counts one', () => {
    let a = addReward(EMPTY_ARM, 1, 1_000, 1_000);
    expect(a).toEqual({ s: 1, f: 0, t: 1_000, n: 1 });
    a = addReward(a, 0.25, 2_000, 1_000);
    expect(a).toEqual({ s: 0.75, f: 0.75, t: 2_000, n: 2 });
    a = addReward(a, 0, 2_000, 1_000);
    expect(a).toEqual({ s: 0.75, f: 1.75, t: 2_000, n: 3 });
    a = addReward(a, 0.9, 4_000, 1_000);
    expect(a.s).toBeCloseTo(0.75 / 4 + 0.9, 12);
    expect(a.f).toBeCloseTo(1.75 / 4 + 0.1, 12);
    expect(a.n).toBe(4);
  });

  it('a late reward (store clock behind t) adds without decay and keeps t', () => {
    expect(addReward({ s: 2, f: 2, t: 5_000, n: 4 }, 1, 4_000, 1_000)).toEqual({ s: 3, f: 2, t: 5_000, n: 5 });
  });
});

describe('samplers (seeded)', () => {
  const N = 200_000;
  function moments(draw: () => number): { mean: number; variance: number } {
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < N; i++) {
      const x = draw();
      sum += x;
      sq += x * x;
    }
    const mean = sum / N;
    return { mean, variance: sq / N - mean * mean };
  }
  /** Within 5 standard errors of the mean (and 5% of the variance). */
  function expectMoments(draw: () => number, mean: number, variance: number): void {
    const m = moments(draw);
    expect(Math.abs(m.mean - mean)).toBeLessThan(5 * Math.sqrt(variance / N));
    expect(Math.abs(m.variance - variance)).toBeLessThan(0.05 * variance);
  }

  it('Box-Muller normals have mean 0 and variance 1', () => {
    expectMoments(normalSampler(seededRandom(1)), 0, 1);
  });

  it.each([0.3, 1, 3.2, 50, 10_000])('Gamma(%d) has mean and variance equal to its shape', (shape) => {
    expectMoments(gammaSampler(shape, seededRandom(2)), shape, shape);
  });

  it.each([
    [1, 1],
    [2, 5],
    [1, 30],
    [301, 701],
  ])('Beta(%d, %d) has mean a/(a+b) and variance ab/((a+b)²(a+b+1))', (a, b) => {
    expectMoments(betaSampler(a, b, seededRandom(3)), a / (a + b), (a * b) / ((a + b) ** 2 * (a + b + 1)));
  });

  it('Beta draws follow the Beta CDF (Kolmogorov-Smirnov distance)', () => {
    const draw = betaSampler(3, 9, seededRandom(4));
    const xs = Array.from({ length: 20_000 }, draw).sort((x, y) => x - y);
    let d = 0;
    xs.forEach((x, i) => (d = Math.max(d, Math.abs(betaCdf(x, 3, 9) - (i + 1) / xs.length))));
    expect(d).toBeLessThan(1.63 / Math.sqrt(xs.length)); // the 1% critical value
  });

  it('a shape of 0 or less is refused', () => {
    expect(() => gammaSampler(0, Math.random)).toThrow(RangeError);
  });
});

describe('the Beta posterior interval', () => {
  it('matches closed forms', () => {
    expect(betaQuantile(0.025, 1, 1)).toBeCloseTo(0.025, 10);
    expect(betaQuantile(0.975, 1, 1)).toBeCloseTo(0.975, 10);
    // Beta(2, 1): CDF x², quantile √p.
    expect(betaQuantile(0.025, 2, 1)).toBeCloseTo(Math.sqrt(0.025), 10);
    expect(betaQuantile(0.975, 2, 1)).toBeCloseTo(Math.sqrt(0.975), 10);
    // Beta(1, b): CDF 1 − (1 − x)^b.
    expect(betaQuantile(0.975, 1, 1e6)).toBeCloseTo(1 - Math.pow(0.025, 1e-6), 12);
    expect(betaQuantile(0.5, 7, 7)).toBeCloseTo(0.5, 10);
  });

  it.each([
    [3, 9],
    [0.5, 0.5],
    [4_000, 6_000],
    [2, 3_000_000],
    [5e6, 5e6],
  ])('CDF(quantile(p)) = p for Beta(%d, %d)', (a, b) => {
    for (const p of [0.025, 0.5, 0.975]) expect(betaCdf(betaQuantile(p, a, b), a, b)).toBeCloseTo(p, 8);
  });
});

describe('floorShares', () => {
  it('raises arms under the floor and keeps the others in proportion', () => {
    expect(floorShares([0.98, 0.01, 0.01], 2)).toEqual([96, 2, 2]);
    expect(floorShares([0.5, 0.5, 0], 2)).toEqual([49, 49, 2]);
    expect(floorShares([0, 0, 1], 0)).toEqual([0, 0, 100]);
    expect(floorShares([0, 0, 0], 2)).toEqual([100 / 3, 100 / 3, 100 / 3]);
    // Denormal weights keep their proportions: 100 × 5e-324 / 5e-324 is not 100 in floating point.
    expect(floorShares([0, 5e-324], 1e-8)).toEqual([1e-8, 100 - 1e-8]);
  });

  it('repeats until no arm falls under: raising two arms pushes a third under', () => {
    // First pass: 90, 5, 4, 1 → the last two raised to 5; then 85.26, 4.74 → the second raised too.
    expect(floorShares([0.9, 0.05, 0.04, 0.01], 5)).toEqual([85, 5, 5, 5]);
  });

  it('any weights: sums to 100, nobody under the floor, order kept', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 2, maxLength: 8 }), fc.double({ min: 0, max: 1, noNaN: true }), (weights, f) => {
        const floor = (f * 99.9) / weights.length;
        const shares = floorShares(weights, floor);
        expect(shares.reduce((x, y) => x + y, 0)).toBeCloseTo(100, 6);
        for (const s of shares) expect(s).toBeGreaterThanOrEqual(floor - 1e-9);
        for (let i = 0; i < weights.length; i++) for (let j = 0; j < weights.length; j++) if (weights[i]! > weights[j]!) expect(shares[i]!).toBeGreaterThanOrEqual(shares[j]! - 1e-9);
      }),
    );
  });
});

describe('banditShares', () => {
  const config: ShareConfig = { arms: ['a', 'b', 'c'], policy: 'thompson', epsilon: 0.1, floor: 2, halfLifeMs: null, rewardRange: [0, 1] };
  const sum = (m: ReadonlyMap<string, number>): number => [...m.values()].reduce((x, y) => x + y, 0);

  it('no evidence: each arm about equally likely best, an even split, the prior mean and interval', () => {
    const out = banditShares(new Map(), config, seededRandom(5), 0);
    expect(sum(out.share)).toBeCloseTo(100, 9);
    for (const arm of config.arms) {
      // 1,000 draws: P(best) = 1/3 ± 5 standard errors (0.075).
      expect(Math.abs(out.probabilityBest.get(arm)! - 1 / 3)).toBeLessThan(0.075);
      expect(out.share.get(arm)).toBeCloseTo(100 / 3, 9);
      expect(out.mean.get(arm)).toBe(0.5);
      expect(out.interval.get(arm)![0]).toBeCloseTo(0.025, 9);
      expect(out.interval.get(arm)![1]).toBeCloseTo(0.975, 9);
    }
  });

  it('a clear winner gets everything but the others’ floors', () => {
    const arms = new Map<string, ArmStats>([
      ['a', { s: 300, f: 700, t: 0, n: 1000 }],
      ['b', { s: 350, f: 650, t: 0, n: 1000 }],
      ['c', { s: 4500, f: 5500, t: 0, n: 10_000 }],
    ]);
    const out = banditShares(arms, config, seededRandom(6), 0);
    expect(Object.fromEntries(out.share)).toEqual({ a: 2, b: 2, c: 96 });
    expect(Object.fromEntries(out.probabilityBest)).toEqual({ a: 0, b: 0, c: 1 });
    expect(out.mean.get('c')).toBeCloseTo(4501 / 10_002, 12);
    const [lo, hi] = out.interval.get('c')!;
    expect(betaCdf(lo, 4501, 5501)).toBeCloseTo(0.025, 8);
    expect(betaCdf(hi, 4501, 5501)).toBeCloseTo(0.975, 8);
  });

  it('two close arms split by their probability of being best', () => {
    const arms = new Map<string, ArmStats>([
      ['a', { s: 50, f: 50, t: 0, n: 100 }],
      ['b', { s: 52, f: 48, t: 0, n: 100 }],
      ['c', { s: 0, f: 100, t: 0, n: 100 }],
    ]);
    const out = banditShares(arms, config, seededRandom(7), 0);
    // P(b > a) for Beta(53, 49) vs Beta(51, 51): about 0.61.
    expect(out.probabilityBest.get('b')).toBeGreaterThan(0.55);
    expect(out.probabilityBest.get('b')).toBeLessThan(0.68);
    expect(out.share.get('c')).toBe(2);
    expect(sum(out.share)).toBeCloseTo(100, 9);
  });

  it(`thompson splits evenly until every arm has ${THOMPSON_WARM_UP_REWARDS} rewards, then by P(best)`, () => {
    const n = THOMPSON_WARM_UP_REWARDS;
    // c looks far better, but b has one reward too few.
    const early = new Map<string, ArmStats>([
      ['a', { s: 0, f: n, t: 0, n }],
      ['b', { s: 0, f: n - 1, t: 0, n: n - 1 }],
      ['c', { s: n, f: 0, t: 0, n }],
    ]);
    const before = banditShares(early, config, seededRandom(12), 0);
    expect(before.probabilityBest.get('c')).toBe(1);
    for (const arm of config.arms) expect(before.share.get(arm)).toBeCloseTo(100 / 3, 9);
    const ready = new Map(early).set('b', { s: 0, f: n, t: 0, n });
    expect(Object.fromEntries(banditShares(ready, config, seededRandom(12), 0).share)).toEqual({ a: 2, b: 2, c: 96 });
    // Rewards count once recorded, however faded: old evidence does not restart the warm-up.
    const halved = banditShares(ready, { ...config, halfLifeMs: 60_000 }, seededRandom(12), 60_000);
    expect(Object.fromEntries(halved.share)).toEqual({ a: 2, b: 2, c: 96 });
    // epsilon-greedy has no warm-up: its 1 − ε goes to the best mean from the start.
    expect(banditShares(early, { ...config, policy: 'epsilon-greedy' }, seededRandom(12), 0).share.get('c')).toBeCloseTo(90 + 10 / 3, 9);
  });

  it('the same seed gives the same shares', () => {
    const arms = new Map<string, ArmStats>([['a', { s: 10, f: 12, t: 0, n: 22 }]]);
    expect(banditShares(arms, config, seededRandom(8), 0)).toEqual(banditShares(arms, config, seededRandom(8), 0));
  });

  it('fades evidence to now: old certainty becomes doubt', () => {
    const old = new Map<string, ArmStats>([
      ['a', { s: 0, f: 1000, t: 0, n: 1000 }],
      ['b', { s: 0, f: 1000, t: 0, n: 1000 }],
      ['c', { s: 1000, f: 0, t: 0, n: 1000 }],
    ]);
    const fresh = banditShares(old, { ...config, halfLifeMs: 60_000 }, seededRandom(9), 0);
    expect(fresh.share.get('c')).toBe(96);
    // Ten half-lives later each sum is 1000/1024: close to the prior.
    const faded = banditShares(old, { ...config, halfLifeMs: 60_000 }, seededRandom(9), 600_000);
    expect(faded.mean.get('c')).toBeCloseTo((1 + 1000 / 1024) / (2 + 1000 / 1024), 9);
    expect(faded.share.get('c')).toBeLessThan(80);
    expect(faded.share.get('a')).toBeGreaterThan(2);
  });

  it('means and intervals are in the reward range’s units', () => {
    const out = banditShares(new Map([['a', { s: 3, f: 1, t: 0, n: 4 }]]), { ...config, rewardRange: [-1, 1] }, seededRandom(10), 0);
    expect(out.mean.get('b')).toBe(0);
    expect(out.mean.get('a')).toBeCloseTo(-1 + 2 * (4 / 6), 12);
    expect(out.interval.get('b')![0]).toBeCloseTo(-0.95, 9);
  });

  describe('epsilon-greedy', () => {
    const eg: ShareConfig = { ...config, policy: 'epsilon-greedy', epsilon: 0.1 };
    const arms = new Map<string, ArmStats>([
      ['a', { s: 40, f: 60, t: 0, n: 100 }],
      ['b', { s: 30, f: 70, t: 0, n: 100 }],
      ['c', { s: 20, f: 80, t: 0, n: 100 }],
    ]);

    it('1 − ε to the best mean, ε split evenly', () => {
      const out = banditShares(arms, eg, seededRandom(11), 0);
      expect(out.share.get('a')).toBeCloseTo(90 + 10 / 3, 9);
      expect(out.share.get('b')).toBeCloseTo(10 / 3, 9);
      expect(out.share.get('c')).toBeCloseTo(10 / 3, 9);
    });

    it('ε = 0 still leaves every arm its floor', () => {
      const out = banditShares(arms, { ...eg, epsilon: 0 }, seededRandom(11), 0);
      expect(Object.fromEntries(out.share)).toEqual({ a: 96, b: 2, c: 2 });
    });

    it('an arm without evidence has the prior mean 0.5, so it is tried first', () => {
      const out = banditShares(new Map([...arms].slice(0, 2)), eg, seededRandom(11), 0);
      expect(out.share.get('c')).toBeCloseTo(90 + 10 / 3, 9);
    });

    it('a tie for the best mean splits 1 − ε between the leaders', () => {
      const out = banditShares(new Map(), eg, seededRandom(11), 0);
      for (const arm of eg.arms) expect(out.share.get(arm)).toBeCloseTo(100 / 3, 9);
      const two = banditShares(new Map([['c', { s: 0, f: 50, t: 0, n: 50 }]]), eg, seededRandom(11), 0);
      expect(two.share.get('a')).toBeCloseTo(45 + 10 / 3, 9);
      expect(two.share.get('b')).toBeCloseTo(45 + 10 / 3, 9);
    });
  });
});
