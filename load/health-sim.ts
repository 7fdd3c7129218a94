/**
 * Endpoint health's simulated figures (load/README.md#endpoint-health-simulation-health-simts): each case of
 * load/lib/health-sim.ts over seeds 1..N, with the detector on and off. Not a test (the test is
 * test/routing/health/endpoints-sim.test.ts); deterministic: the same seeds give the same table.
 *
 *   npx vite-node load/health-sim.ts [--seeds 20]
 */
import { parseArgs } from 'node:util';
import { SCENARIOS, simulate, type SimResult } from './lib/health-sim.js';
import { median } from './lib/report.js';

const { values } = parseArgs({ options: { seeds: { type: 'string', default: '20' } } });
const seeds = Math.max(1, Number(values.seeds));

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

console.log(`| case | detector | first replica's share after 2 s (median, max) | failed (median, max of ${seeds} seeds) | ejections (median) | mean latency of 200s |`);
console.log('|---|---|---|---|---|---|');
for (const [name, scenario] of Object.entries(SCENARIOS)) {
  for (const eject of [true, false]) {
    const runs: SimResult[] = [];
    for (let seed = 1; seed <= seeds; seed++) runs.push(simulate({ ...scenario, eject }, seed));
    const shares = runs.map((r) => r.shares[0]!);
    const failed = runs.map((r) => r.failed / r.sent);
    console.log(
      `| ${name} | ${eject ? 'on' : 'off'} | ${pct(median(shares))}, ${pct(Math.max(...shares))} | ${pct(median(failed))}, ${pct(Math.max(...failed))} (${median(runs.map((r) => r.failed))} of ${runs[0]!.sent}) | ${median(runs.map((r) => r.ejections))} | ${median(runs.map((r) => r.meanLatencyMs)).toFixed(1)} ms |`,
    );
  }
}
