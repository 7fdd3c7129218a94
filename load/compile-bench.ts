/**
 * Routing-core benchmark (not a test): compile 10,000 generated SeldonDeployments (canaries,
 * shadows, header routes, explainers), then measure a one-deployment update at that size,
 * `match` throughput on a realistic request mix, and memory.
 *
 *   npx vite-node load/compile-bench.ts            (or: node dist/load/compile-bench.js)
 *   SDEPS=20000 npx vite-node load/compile-bench.ts
 */
import { headerGetter, match } from '../routing/match.js';
import { randomPicker, seededRandom } from '../routing/pick.js';
import { TableBuilder } from '../routing/table.js';
import { DEFAULT_COMPILE_OPTIONS, type RouteRequest, type SeldonDeployment } from '../routing/types.js';

const N = Number(process.env.SDEPS ?? 10_000);
const random = seededRandom(42);

function deployment(i: number, revision = 0): SeldonDeployment {
  const ns = `team-${i % 50}`;
  const kind = i % 10;
  const predictors: NonNullable<SeldonDeployment['spec']>['predictors'] = [{ name: 'main', graph: { name: 'model' } }];
  const annotations: Record<string, string> = { 'seldon.io/rest-timeout': String(3000 + revision) };
  if (kind < 4) predictors.push({ name: 'canary', traffic: 10 + (i % 40) });
  if (kind === 4 || kind === 5) predictors.push({ name: 'shadow', shadow: true });
  if (kind === 6) {
    annotations['seldon.io/ambassador-service-name'] = `model-${i - 1}`;
    annotations['seldon.io/ambassador-header'] = 'x-variant: b';
  }
  if (kind === 7) predictors[0]!.explainer = { type: 'AnchorTabular' };
  return { metadata: { name: `model-${i}`, namespace: ns }, spec: { annotations, predictors } };
}

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;
const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(0)} MB`;

const deployments = Array.from({ length: N }, (_, i) => deployment(i));
global.gc?.();
const heap0 = process.memoryUsage().heapUsed;

let t = process.hrtime.bigint();
const builder = new TableBuilder(DEFAULT_COMPILE_OPTIONS);
for (const d of deployments) builder.upsert(d);
let table = builder.build();
const fullMs = ms(t);
global.gc?.();
const rssAfterCompile = process.memoryUsage().rss;

const updates = 200;
t = process.hrtime.bigint();
for (let u = 0; u < updates; u++) {
  builder.upsert(deployment(Math.floor(random() * N), u + 1));
  table = builder.build();
}
const updateMs = ms(t) / updates;

const requests: RouteRequest[] = Array.from({ length: 1000 }, (_, k) => {
  const i = Math.floor(random() * N);
  const header = headerGetter(k % 4 === 0 ? { 'x-variant': 'b' } : {});
  if (k % 5 === 0) return { kind: 'grpc', method: 'POST', path: '/seldon.protos.Seldon/Predict', host: 'gw', header: headerGetter({ seldon: `model-${i}`, namespace: `team-${i % 50}` }) };
  return { kind: 'rest', method: 'POST', path: `/seldon/team-${i % 50}/model-${i}/api/v1.0/predictions`, host: 'gw', header };
});
const picker = randomPicker(seededRandom(7));
let routed = 0;
for (let w = 0; w < 100_000; w++) if (match(table, requests[w % 1000]!, picker).ok) routed++;
const decisions = 2_000_000;
t = process.hrtime.bigint();
for (let w = 0; w < decisions; w++) if (match(table, requests[w % 1000]!, picker).ok) routed++;
const matchMs = ms(t);
global.gc?.();
const mem = process.memoryUsage();

console.log(`routing core, ${N} SeldonDeployments (${table.groups.length} route groups)`);
console.log(`  full compile          ${fullMs.toFixed(0)} ms            (target < 1000 ms)`);
console.log(`  one-deployment update ${updateMs.toFixed(2)} ms           (target < 5 ms; mean of ${updates}, incl. table snapshot)`);
console.log(`  match                 ${((decisions / matchMs) * 1000 / 1e6).toFixed(2)} M decisions/s  (target > 1 M/s per core; ${routed} routed)`);
console.log(`  heap for the table    ${mb(mem.heapUsed - heap0)}${global.gc ? '' : ' (run with --expose-gc for a settled figure)'}`);
console.log(`  RSS after compile     ${mb(rssAfterCompile)}           (target < 200 MB; the whole process, input objects included)`);
console.log(`  RSS at the end        ${mb(mem.rss)}           (after ${updates} updates and ${decisions / 1e6} M matches: V8 keeps pages it grew into)`);
