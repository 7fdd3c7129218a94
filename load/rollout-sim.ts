/**
 * The rollout judge's acceptance figures over many seeds (docs/rollouts.md#simulated-figures):
 * `nice -n 19 npx vite-node load/rollout-sim.ts --seeds 200` (add `--only errors` etc. for one scenario).
 * Deterministic: the same seeds give the same table. What each scenario does is in
 * `lib/rollout-sim.ts`.
 */
import { parseArgs } from 'node:util';
import { ROLLOUT_PARAMETERS, type RolloutParameters } from '../routing/steering/rollout/parameters.js';
import { errorJump, goodCanary, goodCanaryLong, latencyRegression, mirrorDisagreement, noCanaryTraffic, sharedOutage } from './lib/rollout-sim.js';
import { quantile } from './lib/report.js';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1000' },
    first: { type: 'string', default: '1' },
    only: { type: 'string' },
    // A judge parameter other than the shipped one (routing/steering/rollout/parameters.ts ROLLOUT_PARAMETERS), to measure it: --parameter burstAlarm=9.
    parameter: { type: 'string', multiple: true },
  },
});
const parameters: Partial<Record<keyof RolloutParameters, number>> = {};
for (const p of values.parameter ?? []) {
  const [k, v] = p.split('=');
  if (!k || !(k in ROLLOUT_PARAMETERS) || !Number.isFinite(Number(v))) throw new Error(`--parameter takes name=number, one of ${Object.keys(ROLLOUT_PARAMETERS).join(', ')}`);
  parameters[k as keyof RolloutParameters] = Number(v);
}
const seeds = Number(values.seeds);
const first = Number(values.first);
if (!Number.isInteger(seeds) || seeds < 1 || !Number.isInteger(first)) throw new Error('--seeds and --first take whole numbers');

const rows: string[][] = [];
const pct = (n: number, of: number) => `${((100 * n) / of).toFixed(2)}%`;
const run = (name: string, f: () => void) => {
  if (values.only && !name.includes(values.only)) return;
  const t0 = performance.now();
  f();
  process.stderr.write(`${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
};
const verdict = (ok: boolean) => (ok ? 'ok' : '**FAILS**');

run('good', () => {
  const g = goodCanary(first, seeds, undefined, parameters);
  rows.push([
    'good canary (example annotation)',
    `promoted ${pct(g.promoted, g.seeds)}, rolled back ${pct(g.rolledBack, g.seeds)}; median ${g.medianSeconds} s and ${g.medianCanaryRequests} canary requests to promotion; latency intervals failed ${g.intervalsFailed} of ${g.intervalsJudged} (${pct(g.intervalsFailed, g.intervalsJudged)})`,
    'promoted ≥ 99%; false latency failure ≤ 1% of intervals',
    verdict(g.promoted >= 0.99 * g.seeds && g.intervalsFailed <= 0.01 * g.intervalsJudged),
  ]);
});

run('good-long', () => {
  const g = goodCanaryLong(first, seeds, undefined, parameters);
  rows.push([
    'good canary over 20,000 canary requests',
    `rolled back ${g.rolledBack} of ${g.seeds} (${pct(g.rolledBack, g.seeds)}); latency intervals failed ${g.intervalsFailed} of ${g.intervalsJudged}`,
    'false rollbacks ≤ 0.5%',
    verdict(g.rolledBack <= 0.005 * g.seeds),
  ]);
});

for (const [rate, limit] of [
  [0.05, 450],
  [0.1, 170],
  [0.5, 25],
] as const) {
  for (const after of [150, 500]) {
    run(`errors-${rate}-${after}`, () => {
      const e = errorJump(first, seeds, rate, after, parameters);
      const all = [...e.caught, ...Array<number>(e.missed).fill(Infinity)];
      const p99 = quantile(all, 0.99);
      rows.push([
        `canary errors 0.5% → ${rate * 100}% after ${after} canary requests (${after === 150 ? 'step 1, 1 canary request/s' : 'step 2, 5 canary requests/s'})`,
        `caught within median ${quantile(all, 0.5)}, p99 ${p99}, max ${quantile(all, 1)} canary requests; never caught: ${e.missed}`,
        `p99 ≤ ${limit}`,
        verdict(p99 <= limit),
      ]);
    });
  }
}

run('latency', () => {
  const l = latencyRegression(first, seeds, undefined, undefined, parameters);
  const all = [...l.intervals, ...Array<number>(l.missed).fill(Infinity)];
  const within3 = all.filter((n) => n <= 3).length;
  rows.push([
    'canary latency ×1.5, 200 requests/s (intervals extend to 50 canary samples)',
    `rolled back within 3 judged intervals in ${pct(within3, l.seeds)}; median ${quantile(all, 0.5)}, p99 ${quantile(all, 0.99)} intervals`,
    'within 3 intervals in ≥ 99%',
    verdict(within3 >= 0.99 * l.seeds),
  ]);
});

run('mirror', () => {
  for (const mirror of [10, 100]) {
    const good = mirrorDisagreement(first, seeds, 0.995, mirror, parameters);
    rows.push([
      `(beyond the table) agreement 99.5% while mirroring ${mirror}% (minAgreement 99%)`,
      `rolled back in the mirror phase in ${good.comparisons.length} of ${good.seeds} (${pct(good.comparisons.length, good.seeds)})`,
      'rarely',
      '',
    ]);
    const m = mirrorDisagreement(first, seeds, 0.95, mirror, parameters);
    const all = [...m.comparisons, ...Array<number>(m.missed).fill(Infinity)];
    const p99 = quantile(all, 0.99);
    rows.push([
      `agreement 95% while mirroring ${mirror}% of 100 requests/s (minAgreement 99%)`,
      `rolled back within median ${quantile(all, 0.5)}, p99 ${p99} comparisons; live canary requests ${m.liveRequests}`,
      'within 250 comparisons; 0 live',
      verdict(p99 <= 250 && m.liveRequests === 0),
    ]);
  }
});

run('no-traffic', () => {
  const n = noCanaryTraffic(first, Math.min(seeds, 100));
  rows.push(['no canary traffic for an hour', `advanced in ${n.advanced} of ${n.seeds}; needs: ${n.needs.join('; ')}`, 'never advances; says what it waits for', verdict(n.advanced === 0)]);
});

run('shared-moderate', () => {
  for (const rate of [0.03, 0.05]) {
    const s = sharedOutage(first, seeds, rate, 400, parameters);
    rows.push([`(beyond the table) primary and canary both at ${rate * 100}% errors from second 400`, `rolled back ${s.rolledBack} of ${s.seeds} (${pct(s.rolledBack, s.seeds)})`, 'rarely', '']);
  }
});

run('shared', () => {
  for (const from of [0, 400]) {
    const s = sharedOutage(first, seeds, 0.2, from, parameters);
    rows.push([
      `primary and canary both at 20% errors ${from === 0 ? 'from the start' : `from second ${from} (step 4 or 5)`}`,
      `rolled back ${s.rolledBack} of ${s.seeds}; advanced during the outage ${s.advancedDuring}; warned ${s.warned}: "${s.warning}"`,
      'no rollback; a warning',
      verdict(s.rolledBack === 0 && s.warned === s.seeds),
    ]);
  }
});

console.log(`seeds ${first}..${first + seeds - 1}${Object.keys(parameters).length ? `; parameters ${JSON.stringify(parameters)}` : ''}\n`);
console.log('| scenario | measured | must hold | |');
console.log('|---|---|---|---|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
