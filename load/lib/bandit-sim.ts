/**
 * A seeded, deterministic simulation of the gateway's bandit (docs/bandits.md), running the
 * gateway's own code: `banditShares` for the shares, the weighted pick over them, `addReward` as
 * the store's atomic script applies it (the store is one shared map, each feedback one atomic
 * update on the store's clock) and, when asked, real attribution tokens with a nonce set.
 *
 * Time is simulated: predictions arrive evenly at `ratePerSecond`, each one's reward (Bernoulli
 * with its arm's mean at the time of the prediction) arrives after a uniform delay, and the shares
 * are recomputed every `refreshMs` by each share computer (one per replica, or one per worker) at
 * its own offset. Used by load/bandit-sim.ts (the full sweep) and test/routing/steering/bandit-sim.test.ts.
 */
import { addReward, banditShares, EMPTY_ARM, type ArmStats, type ShareConfig } from '../../routing/steering/bandit.js';
import { seededRandom } from '../../routing/table/pick.js';
import { cumulativeOf } from '../../routing/values/weights.js';
import { issueToken, NONCE_BYTES, verifyToken } from '../../gateway/steer/attribution.js';
import { TimeHeap } from './time-heap.js';

export interface Scenario {
  /** Each arm's mean reward (Bernoulli), arms named by index in `config.arms` order. */
  readonly means: readonly number[];
  /** From this prediction index on, the means are `change.means`. */
  readonly change?: { readonly after: number; readonly means: readonly number[] };
  readonly predictions: number;
  readonly ratePerSecond: number;
  /** Each reward arrives after U(0, maxDelayMs). */
  readonly maxDelayMs: number;
  readonly refreshMs: number;
  /** The bandit's settings; `policy: 'uniform'` is the reference that never learns. */
  readonly config: ShareConfig | (Omit<ShareConfig, 'policy'> & { readonly policy: 'uniform' });
  readonly replicas: number;
  readonly workersPerReplica: number;
  /** Who computes shares: each replica (pushed to its workers) or each worker on its own. */
  readonly sharesBy: 'replica' | 'worker';
  /** Issue and verify real tokens (a shared key), and send this fraction of feedback twice. */
  readonly attribution?: { readonly duplicateRate: number };
  /** After the change, stop at the first refresh that gives `arm` at least `percent` (nothing later is measured). */
  readonly stopAtRecovery?: { readonly arm: number; readonly percent: number };
}

export interface ShareSnapshot {
  /** Predictions made before this computation. */
  readonly atPrediction: number;
  readonly shares: readonly number[];
}

export interface SimResult {
  /** Predictions made: `predictions`, or fewer when the run stopped at recovery. */
  readonly made: number;
  /** The arm index each prediction went to. */
  readonly picks: Uint8Array;
  /** Pseudo-regret per prediction: best mean minus the picked arm's mean, at that time. */
  readonly regret: Float64Array;
  /** The first share computer's shares at each of its refreshes. */
  readonly history: readonly ShareSnapshot[];
  /** The store's raw reward counts per arm at the end. */
  readonly storedCounts: readonly number[];
  /** Feedback that was credited (a valid token seen for the first time) per arm. */
  readonly attributedCounts: readonly number[];
  /** Feedback refused as a replay of a token already credited. */
  readonly duplicates: number;
}

/** A well-mixed 32-bit seed for stream `stream` of run `seed` (splitmix32-style). */
function streamSeed(seed: number, stream: number): number {
  let z = (Math.imul(seed, 0x9e3779b9) + Math.imul(stream + 1, 0x85ebca6b)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97) >>> 0;
  return (z ^ (z >>> 15)) >>> 0;
}

interface Pending {
  at: number;
  arm: number;
  reward: number;
  token: string | null;
}

const EPOCH = 1_700_000_000_000;
const DEPLOYMENT = 'sim/bandit';
const KEY = Buffer.from('bandit-simulation-shared-key-000');

/** One run of `s` with seed `seed`. */
export function simulate(s: Scenario, seed: number): SimResult {
  const names = s.config.arms;
  const k = names.length;
  const env = seededRandom(streamSeed(seed, 0));
  const balancer = seededRandom(streamSeed(seed, 1));
  const layout = seededRandom(streamSeed(seed, 2));
  const tokens = seededRandom(streamSeed(seed, 3));
  const workers = s.replicas * s.workersPerReplica;
  const computers = s.sharesBy === 'replica' ? s.replicas : workers;
  const pickRandom = Array.from({ length: workers }, (_, w) => seededRandom(streamSeed(seed, 100 + w)));
  const shareRandom = Array.from({ length: computers }, (_, c) => seededRandom(streamSeed(seed, 1000 + c)));
  // Computers refresh at their own offsets; the first one at 0 so a single process refreshes on the second.
  const nextRefresh = Array.from({ length: computers }, (_, c) => EPOCH + (c === 0 ? 0 : Math.floor(layout() * s.refreshMs)));
  const cumulative: (readonly number[])[] = Array.from({ length: computers }, () => cumulativeOf(new Array<number>(k).fill(100 / k)));

  const store = new Map<string, ArmStats>();
  const seenNonces = new Set<string>();
  const storedCounts = new Array<number>(k).fill(0);
  const attributedCounts = new Array<number>(k).fill(0);
  let duplicates = 0;
  const queue = new TimeHeap<Pending>();
  const picks = new Uint8Array(s.predictions);
  const regret = new Float64Array(s.predictions);
  const history: ShareSnapshot[] = [];
  const gap = 1000 / s.ratePerSecond;
  const halfLifeMs = s.config.halfLifeMs;
  const range = s.config.rewardRange;
  const index = new Map(names.map((n, i) => [n, i]));

  const credit = (p: Pending): void => {
    let arm = p.arm;
    if (p.token !== null) {
      const v = verifyToken(KEY, p.token, DEPLOYMENT, p.at, 3_600_000);
      if (!v.ok) throw new Error(`simulated token refused: ${v.outcome}`);
      // The store's SET NX on the nonce: a replay moves nothing.
      if (seenNonces.has(v.nonce)) {
        duplicates++;
        return;
      }
      seenNonces.add(v.nonce);
      arm = index.get(v.arm)!;
    }
    attributedCounts[arm]!++;
    const name = names[arm]!;
    const r01 = (p.reward - range[0]) / (range[1] - range[0]);
    store.set(name, addReward(store.get(name) ?? EMPTY_ARM, r01, p.at, halfLifeMs));
  };

  let stop = false;
  const refresh = (c: number, at: number, made: number): void => {
    let shares: number[];
    if (s.config.policy === 'uniform') shares = new Array<number>(k).fill(100 / k);
    else {
      const out = banditShares(store, s.config as ShareConfig, shareRandom[c]!, at);
      shares = names.map((n) => out.share.get(n)!);
    }
    cumulative[c] = cumulativeOf(shares);
    if (c !== 0) return;
    history.push({ atPrediction: made, shares });
    const goal = s.stopAtRecovery;
    if (goal && s.change && made >= s.change.after && shares[goal.arm]! >= goal.percent) stop = true;
  };

  let i = 0;
  for (; i < s.predictions; i++) {
    const now = EPOCH + i * gap;
    // Everything due before this prediction, in time order: rewards first, then refreshes.
    for (;;) {
      const reward = queue.peek();
      let c = 0;
      for (let j = 1; j < computers; j++) if (nextRefresh[j]! < nextRefresh[c]!) c = j;
      const refreshAt = nextRefresh[c]!;
      if (reward && reward.at <= now && reward.at <= refreshAt) credit(queue.pop()!);
      else if (refreshAt <= now) {
        refresh(c, refreshAt, i);
        nextRefresh[c] = refreshAt + s.refreshMs;
      } else break;
    }
    if (stop) break;
    const means = s.change && i >= s.change.after ? s.change.means : s.means;
    const worker = workers === 1 ? 0 : Math.floor(balancer() * workers);
    const computer = s.sharesBy === 'replica' ? Math.floor(worker / s.workersPerReplica) : worker;
    const cum = cumulative[computer]!;
    const draw = pickRandom[worker]!() * 100;
    let arm = cum.findIndex((x) => draw < x);
    if (arm < 0) arm = k - 1;
    picks[i] = arm;
    regret[i] = Math.max(...means) - means[arm]!;
    const reward = env() < means[arm]! ? range[1] : range[0];
    const at = now + env() * s.maxDelayMs;
    let token: string | null = null;
    if (s.attribution) {
      const nonce = Buffer.alloc(NONCE_BYTES);
      for (let b = 0; b < NONCE_BYTES; b += 4) nonce.writeUInt32LE(Math.floor(tokens() * 2 ** 32), b);
      token = issueToken(KEY, names[arm]!, DEPLOYMENT, now, nonce);
      if (tokens() < s.attribution.duplicateRate) queue.push({ at: at + tokens() * s.maxDelayMs, arm, reward, token });
    }
    queue.push({ at, arm, reward, token });
  }
  while (queue.size > 0) credit(queue.pop()!);
  for (let a = 0; a < k; a++) storedCounts[a] = store.get(names[a]!)?.n ?? 0;
  return { made: i, picks: picks.subarray(0, i), regret: regret.subarray(0, i), history, storedCounts, attributedCounts, duplicates };
}

// ---------------------------------------------------------------------------------------------
// Figures of one run.
// ---------------------------------------------------------------------------------------------

/** Summed regret of predictions [from, to). */
export function regretOf(r: SimResult, from = 0, to = r.regret.length): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += r.regret[i]!;
  return sum;
}

/** Fraction of predictions [from, to) that went to `arm`. */
export function fractionTo(r: SimResult, arm: number, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) if (r.picks[i] === arm) n++;
  return n / (to - from);
}

/** Predictions after `after` until the first refresh that gives `arm` at least `percent`; Infinity if none did. */
export function recoveryOf(r: SimResult, arm: number, after: number, percent: number): number {
  for (const h of r.history) if (h.atPrediction >= after && h.shares[arm]! >= percent) return h.atPrediction - after;
  return Infinity;
}

// ---------------------------------------------------------------------------------------------
// The acceptance scenarios (docs/bandits.md#simulated-figures).
// ---------------------------------------------------------------------------------------------

export const ARMS = ['a', 'b', 'c'] as const;
export const MEANS = [0.3, 0.35, 0.45] as const;

export const BASE: Scenario = {
  means: MEANS,
  predictions: 10_000,
  ratePerSecond: 100,
  maxDelayMs: 5000,
  refreshMs: 1000,
  config: { arms: ARMS, policy: 'thompson', epsilon: 0.1, floor: 2, halfLifeMs: 3_600_000, rewardRange: [0, 1] },
  replicas: 1,
  workersPerReplica: 1,
  sharesBy: 'replica',
};

export const EPSILON_GREEDY: Scenario = { ...BASE, config: { ...BASE.config, policy: 'epsilon-greedy' } };
export const UNIFORM: Scenario = { ...BASE, config: { ...BASE.config, policy: 'uniform' } };
export const REPLICAS: Scenario = { ...BASE, replicas: 4, workersPerReplica: 4, attribution: { duplicateRate: 0.05 } };
export const REPLICAS_PER_WORKER: Scenario = { ...REPLICAS, sharesBy: 'worker' };

/** The share the new best arm must reach after a change. */
export const RECOVERED_SHARE = 80;

/**
 * The best arm (c) and the worst (a) swap means after 30,000 predictions; the run lasts until a
 * gets 80% or 30,000 more predictions.
 */
export function drift(halfLifeMs: number | null): Scenario {
  return {
    ...BASE,
    predictions: 60_000,
    change: { after: 30_000, means: [0.45, 0.35, 0.3] },
    config: { ...BASE.config, halfLifeMs },
    stopAtRecovery: { arm: 0, percent: RECOVERED_SHARE },
  };
}
