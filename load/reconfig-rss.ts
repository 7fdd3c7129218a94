/**
 * docs/architecture.md#table-updates: RSS stays flat over many reconfigurations. Builds a table of SDEPS
 * deployments (default 1,000), applies 2,000 updates to warm up, then RECONFIGS (default
 * 10,000) more, printing RSS after a GC every 2,000. Not a test: run it by hand.
 *
 *   npx tsc -p tsconfig.json --outDir /tmp/sgw-dist && node --expose-gc /tmp/sgw-dist/load/reconfig-rss.js
 */
import { TableBuilder } from '../routing/table.js';
import { DEFAULT_COMPILE_OPTIONS } from '../routing/types.js';
import type { SeldonDeployment } from '../routing/seldon-deployment.js';

const N = Number(process.env.SDEPS ?? 1000);
const RECONFIGS = Number(process.env.RECONFIGS ?? 10_000);
const deployment = (i: number, revision: number): SeldonDeployment => ({
  metadata: { name: `model-${i}`, namespace: `team-${i % 20}` },
  spec: { annotations: { 'seldon.io/rest-timeout': String(3000 + revision) }, predictors: [{ name: 'main' }, { name: 'canary', traffic: revision % 50 }] },
});
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();
const rssMb = (): number => Math.round(process.memoryUsage().rss / 1048576);

const builder = new TableBuilder(DEFAULT_COMPILE_OPTIONS);
for (let i = 0; i < N; i++) builder.upsert(deployment(i, 0));
builder.build();
for (let r = 1; r <= 2000; r++) {
  builder.upsert(deployment(r % N, r));
  builder.build();
}
gc();
const warm = rssMb();
console.log(`${N} SeldonDeployments, RSS after warm-up: ${warm} MB`);
let last = warm;
for (let r = 1; r <= RECONFIGS; r++) {
  builder.upsert(deployment(r % N, 2000 + r));
  builder.build();
  if (r % 2000 === 0) {
    gc();
    last = rssMb();
    console.log(`  after ${r} reconfigurations: ${last} MB`);
  }
}
console.log(`RSS change over ${RECONFIGS} reconfigurations: ${(((last - warm) / warm) * 100).toFixed(1)}% (target: within ±10%)`);
