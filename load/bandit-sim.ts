/**
 * The bandit's acceptance figures (docs/bandits.md#simulated-figures), from the seeded simulator in
 * lib/bandit-sim.ts that runs the gateway's own bandit code. Three arms with Bernoulli rewards of
 * mean 0.30, 0.35 and 0.45, 100 predictions/s, each reward after U(0, 5 s), shares refreshed every
 * second, floor 2%. Deterministic: the same seeds give the same table.
 *
 *   npx vite-node load/bandit-sim.ts --seeds 1000 [--extra-seeds 100]
 *
 * --seeds runs the acceptance scenarios; --extra-seeds the slower comparisons (shares computed by
 * every worker, other half-lives after a change).
 */
import { parseArgs } from 'node:util';
import { BASE, drift, EPSILON_GREEDY, fractionTo, recoveryOf, REPLICAS, REPLICAS_PER_WORKER, regretOf, simulate, UNIFORM, RECOVERED_SHARE, type Scenario, type SimResult } from './lib/bandit-sim.js';
import { f0, f1, log, quantile, table, verdict } from './lib/report.js';

const { values: argv } = parseArgs({ options: { seeds: { type: 'string', default: '1000' }, 'extra-seeds': { type: 'string', default: '100' } } });
const seeds = Number(argv.seeds);
const extraSeeds = Math.min(seeds, Number(argv['extra-seeds']));
if (!(seeds > 0) || !(extraSeeds > 0)) throw new Error('--seeds and --extra-seeds must be positive');

const BEST = 2;
const CHANGE_AT = 30_000;

/** Runs `scenario` for seeds 1..n, keeping what `measure` takes from each run. */
function sweep<T>(name: string, scenario: Scenario, n: number, measure: (r: SimResult) => T): T[] {
  const started = performance.now();
  const out: T[] = [];
  for (let seed = 1; seed <= n; seed++) out.push(measure(simulate(scenario, seed)));
  process.stderr.write(`${name}: ${n} seeds in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  return out;
}

interface Stationary {
  regret: number;
  bestLast1000: number;
  countsMatch: boolean;
  duplicates: number;
}
const stationary = (r: SimResult): Stationary => ({
  regret: regretOf(r, 0, 10_000),
  bestLast1000: fractionTo(r, BEST, 9_000, 10_000),
  countsMatch: r.storedCounts.every((c, i) => c === r.attributedCounts[i]),
  duplicates: r.duplicates,
});
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
/** The best arm's share of the last 1,000 predictions at p1 over seeds. */
const bestP1 = (xs: readonly Stationary[]): number =>
  quantile(
    xs.map((x) => x.bestLast1000),
    0.01,
  );
const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

const thompson = sweep('thompson', BASE, seeds, stationary);
const thompson2m = sweep('thompson, halfLife 2m', { ...BASE, config: { ...BASE.config, halfLifeMs: 120_000 } }, seeds, stationary);
const epsilon = sweep('epsilon-greedy 0.1', EPSILON_GREEDY, seeds, stationary);
const uniform = sweep('uniform', UNIFORM, seeds, stationary);
const replicas = sweep('4 replicas x 4 workers', REPLICAS, seeds, stationary);
const perWorker = sweep('4 x 4, shares by every worker', REPLICAS_PER_WORKER, extraSeeds, stationary);

const recovery = (r: SimResult): number => recoveryOf(r, 0, CHANGE_AT, RECOVERED_SHARE);
const drift2m = sweep('change, halfLife 2m', drift(120_000), seeds, recovery);
const drift1h = sweep('change, halfLife 1h', drift(3_600_000), extraSeeds, recovery);
const driftNone = sweep('change, halfLife none', drift(null), extraSeeds, recovery);

const allThompson = thompson.map((t) => t.regret);
const single = mean(allThompson);
const ratio = (xs: readonly Stationary[]): number => mean(xs.map((x) => x.regret)) / mean(allThompson.slice(0, xs.length));

log(`## Regret after 10,000 predictions (${seeds} seeds; --extra-seeds ${extraSeeds})\n`);
const row = (name: string, xs: readonly Stationary[]): string[] => {
  const r = xs.map((x) => x.regret);
  return [name, f0(xs.length), f1(quantile(r, 0.5)), f1(quantile(r, 0.99)), f1(mean(r)), pct(r.filter((x) => x <= 140).length / r.length), pct(bestP1(xs))];
};
log(
  table(
    ['policy', 'seeds', 'median', 'p99', 'mean', 'seeds ≤ 140', 'best arm, last 1,000 (p1)'],
    [
      row('thompson (halfLife 1h, the default)', thompson),
      row('thompson, halfLife 2m', thompson2m),
      row('epsilon-greedy 0.1', epsilon),
      row('uniform random', uniform),
      row('4 replicas × 4 workers, shares per replica', replicas),
      row('4 replicas × 4 workers, shares per worker', perWorker),
    ],
  ),
);

log(`\n## One store, many processes\n`);
const counts = (xs: readonly Stationary[]): string => (xs.every((x) => x.countsMatch) ? `equal in all ${xs.length} runs` : `DIFFER in ${xs.filter((x) => !x.countsMatch).length} runs`);
log(
  table(
    ['layout', 'mean regret vs one process', 'stored counts = attributed feedback', 'replays refused'],
    [
      ['shares per replica', `${((ratio(replicas) - 1) * 100).toFixed(1)}%`, counts(replicas), f0(replicas.reduce((a, x) => a + x.duplicates, 0))],
      ['shares per worker', `${((ratio(perWorker) - 1) * 100).toFixed(1)}%`, counts(perWorker), f0(perWorker.reduce((a, x) => a + x.duplicates, 0))],
    ],
  ),
);

log(`\n## Best arm changes after ${f0(CHANGE_AT)} predictions: predictions until the new best has ${RECOVERED_SHARE}%\n`);
const never = (x: number): string => (Number.isFinite(x) ? f0(x) : 'never');
const driftRow = (name: string, xs: readonly number[]): string[] => [
  name,
  f0(xs.length),
  never(quantile(xs, 0.5)),
  never(quantile(xs, 0.95)),
  pct(xs.filter((x) => !Number.isFinite(x)).length / xs.length),
];
log(table(['halfLife', 'seeds', 'median', 'p95', 'never within 30,000'], [driftRow('2m', drift2m), driftRow('1h (default)', drift1h), driftRow('none', driftNone)]));

log(`\n## Acceptance\n`);
const within = (x: number): boolean => Math.abs(x - 1) <= 0.1;
log(
  table(
    ['check', 'measured', 'verdict'],
    [
      ['regret ≤ 140 in ≥ 99% of seeds', pct(allThompson.filter((x) => x <= 140).length / seeds), verdict(allThompson.filter((x) => x <= 140).length >= 0.99 * seeds)],
      ['best arm ≥ 94% of the last 1,000 in ≥ 99% of seeds', pct(bestP1(thompson)), verdict(bestP1(thompson) >= 0.94)],
      ['4 × 4 regret within 10% of one process', `${f1(mean(replicas.map((x) => x.regret)))} vs ${f1(single)}`, verdict(within(ratio(replicas)))],
      ['stored counts = attributed feedback', counts(replicas), verdict(replicas.every((x) => x.countsMatch))],
      ['new best at 80% within 12,500 (p95, halfLife 2m)', f0(quantile(drift2m, 0.95)), verdict(quantile(drift2m, 0.95) <= 12_500)],
    ],
  ),
);
