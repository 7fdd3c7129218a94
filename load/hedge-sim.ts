/**
 * Hedging's simulated figures (load/README.md#hedging-simulation-hedge-simts): four tail shapes behind
 * four replicas and two workers at 150 requests/s, without hedging and with each delay, lower
 * bound, budget, burst and half-life compared, the defaults in every other column. Each cell is
 * the median over seeds 1..N (the worst seed in brackets for p99.9). Not a test (the test is
 * test/routing/hedge/hedge-sim.test.ts); deterministic: the same seeds give the same tables.
 *
 *   npx vite-node load/hedge-sim.ts [--seeds 10] [--seconds 60]
 */
import { parseArgs } from 'node:util';
import { BUDGET_WINDOW_MS } from '../routing/hedge/budget.js';
import { HALF_LIFE_MS } from '../routing/hedge/estimate.js';
import { SHAPES, policyOf, simulateHedging, type HedgeScenario } from './lib/hedge-sim.js';
import { median, quantile } from './lib/report.js';

const { values } = parseArgs({ options: { seeds: { type: 'string', default: '10' }, seconds: { type: 'string', default: '60' } } });
const seeds = Math.max(1, Number(values.seeds));
const seconds = Math.max(10, Number(values.seconds));

const ms = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

function row(label: string, shape: string, s: Omit<HedgeScenario, 'shape' | 'seconds'>): string {
  const runs = Array.from({ length: seeds }, (_, i) => simulateHedging({ ...s, shape: SHAPES[shape]!, seconds }, i + 1));
  const q = (p: number): number => median(runs.map((r) => quantile(r.latencies, p)));
  const worst999 = Math.max(...runs.map((r) => quantile(r.latencies, 0.999)));
  const longest = median(runs.map((r) => r.latencies[r.latencies.length - 1] ?? 0));
  const per = (f: (r: (typeof runs)[number]) => number): number => median(runs.map((r) => f(r) / r.requests));
  return `| ${shape}${s.rate !== undefined ? ` at ${s.rate}/s` : ''} | ${label} | ${ms(q(0.5))} | ${ms(q(0.99))} | ${ms(q(0.999))} (${ms(worst999)}) | ${ms(longest)} | ${pct(per((r) => r.hedges))} | ${pct(per((r) => r.won))} | ${pct(per((r) => r.held.budget))} |`;
}

function table(title: string, cases: [string, Omit<HedgeScenario, 'shape' | 'seconds'>][], shapes = Object.keys(SHAPES)): void {
  console.log(`\n### ${title}\n`);
  console.log(`| tail | setting | p50 ms | p99 ms | p99.9 ms (worst seed) | longest ms | extra attempts | hedges won | held by budget |`);
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const shape of shapes) for (const [label, s] of cases) console.log(row(label, shape, s));
}

console.log(`${seeds} seeds, ${seconds} s at 150/s, four replicas, two workers; defaults: ${policyOf({}).text}, budget window ${BUDGET_WINDOW_MS} ms, half-life ${HALF_LIFE_MS} ms`);

table('The delay (`after`)', [
  ['no hedging', { policy: null }],
  ['after p90', { policy: policyOf({ quantile: 0.9 }) }],
  ['after p95', { policy: policyOf({ quantile: 0.95 }) }],
  ['after p99', { policy: policyOf({ quantile: 0.99 }) }],
]);

table(
  'The lower bound (`min`), after p95',
  [
    ['min none', { policy: policyOf({ minMedians: 0 }) }],
    ['min 1.25x median', { policy: policyOf({ minMedians: 1.25 }) }],
    ['min 1.5x median', { policy: policyOf({ minMedians: 1.5 }) }],
    ['min 2x median', { policy: policyOf({ minMedians: 2 }) }],
  ],
  ['no tail', '2% at 50x', '10% at 5x', 'one pauses 2 s every 30 s'],
);

table(
  'The budget, after p95',
  [
    ['budget 2%', { policy: policyOf({ budget: 0.02 }) }],
    ['budget 5%', { policy: policyOf({ budget: 0.05 }) }],
    ['budget 10%', { policy: policyOf({ budget: 0.1 }) }],
    ['budget 20%', { policy: policyOf({ budget: 0.2 }) }],
  ],
  ['2% at 50x', '10% at 5x', 'one pauses 2 s every 30 s'],
);

table(
  "The budget's window (what its balance remembers), after p95, budget 5%",
  [
    ['window 1 s', { policy: policyOf({}), budgetWindowMs: 1000 }],
    ['window 10 s', { policy: policyOf({}), budgetWindowMs: 10_000 }],
    ['window 60 s', { policy: policyOf({}), budgetWindowMs: 60_000 }],
  ],
  ['2% at 50x', 'one pauses 2 s every 30 s'],
);

table(
  "The estimate's half-life, after p95",
  [
    ['half-life 1 s', { policy: policyOf({}), halfLifeMs: 1000 }],
    ['half-life 2 s', { policy: policyOf({}), halfLifeMs: 2000 }],
    ['half-life 5 s', { policy: policyOf({}), halfLifeMs: 5000 }],
    ['half-life 20 s', { policy: policyOf({}), halfLifeMs: 20_000 }],
    ['half-life 1 s', { policy: policyOf({}), halfLifeMs: 1000, rate: 20 }],
    ['half-life 2 s', { policy: policyOf({}), halfLifeMs: 2000, rate: 20 }],
    ['half-life 5 s', { policy: policyOf({}), halfLifeMs: 5000, rate: 20 }],
    ['half-life 2 s, no floor of weight', { policy: policyOf({}), halfLifeMs: 2000, minWeight: 0, rate: 20 }],
  ],
  ['2% at 50x', '2% at 50x, 2x slower from 30 s'],
);

table(
  'Attempts in flight (`maxAttempts`), after p95, budget 10%',
  [
    ['maxAttempts 2', { policy: policyOf({ budget: 0.1, maxAttempts: 2 }) }],
    ['maxAttempts 3', { policy: policyOf({ budget: 0.1, maxAttempts: 3 }) }],
  ],
  ['2% at 50x', '10% at 5x'],
);
