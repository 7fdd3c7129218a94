/**
 * Routing-core benchmark (not a test): compile 10,000 generated SeldonDeployments (canaries,
 * shadows, header routes, explainers), then measure a one-deployment update at that size,
 * `match` throughput on a realistic request mix, and memory. Last, the stall one enormous
 * deployment causes: create and edit of one SeldonDeployment with 10,000 predictors (PREDICTORS),
 * on top of the table of SDEPS deployments, each an upsert plus the table snapshot.
 *
 *   npm run bench -- routing
 *   SDEPS=20000 PREDICTORS=5000 npm run bench -- routing
 */
import { headerGetter, match } from '../../routing/table/match.js';
import { randomPicker, seededRandom } from '../../routing/table/pick.js';
import { MAX_PREDICTORS } from '../../routing/compile/deployment.js';
import { TableBuilder } from '../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type RouteRequest } from '../../routing/types.js';
import type { SeldonDeployment } from '../../routing/seldon/deployment.js';
import { generated } from '../lib/bench-table.js';

const N = Number(process.env.SDEPS ?? 10_000);
const P = Number(process.env.PREDICTORS ?? 10_000);
const random = seededRandom(42);

/** The REST scenarios' generated deployments (lib/bench-table.ts), each with a route timeout that an update moves. */
const deployment = (i: number, revision = 0): SeldonDeployment => generated(i, { 'seldon.io/rest-timeout': String(3000 + revision) }) as SeldonDeployment;

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
console.log(`  match                 ${(((decisions / matchMs) * 1000) / 1e6).toFixed(2)} M decisions/s  (target > 1 M/s per core; ${routed} routed)`);
console.log(`  heap for the table    ${mb(mem.heapUsed - heap0)}${global.gc ? '' : ' (run with --expose-gc for a settled figure)'}`);
console.log(`  RSS after compile     ${mb(rssAfterCompile)}           (target < 200 MB; the whole process, input objects included)`);
console.log(`  RSS at the end        ${mb(mem.rss)}           (after ${updates} updates and ${decisions / 1e6} M matches: V8 keeps pages it grew into)`);

// One enormous deployment: the stall of its create and of an edit (every predictor's traffic moves).
function enormous(revision: number): SeldonDeployment {
  const predictors: NonNullable<SeldonDeployment['spec']>['predictors'] = Array.from({ length: P }, (_, k) => ({
    name: `p${k}`,
    graph: { name: 'model' },
    ...(k > 0 ? { traffic: (k + revision) % 2 } : {}),
  }));
  return { metadata: { name: 'enormous', namespace: 'team-big' }, spec: { predictors } };
}
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Create, then edit 5 times, then delete the enormous deployment on `b`; ms of each step (upsert + table snapshot). */
function stalls(b: TableBuilder): { create: number; edits: number[]; state: string; after: number } {
  const step = (f: () => void): number => {
    const t0 = process.hrtime.bigint();
    f();
    table = b.build();
    return ms(t0);
  };
  const create = step(() => b.upsert(enormous(0)));
  const state = table.deployments.get('team-big/enormous')?.state ?? '?';
  const edits = [1, 2, 3, 4, 5].map((r) => step(() => b.upsert(enormous(r))));
  const after = mean(Array.from({ length: 20 }, () => step(() => b.upsert(deployment(Math.floor(random() * N), updates + 1)))));
  b.remove('team-big/enormous');
  b.build();
  return { create, edits, state, after };
}
const line = (label: string, s: ReturnType<typeof stalls>): void => {
  console.log(`  ${label}`);
  console.log(`    create              ${s.create.toFixed(0)} ms            (${s.state}; upsert + table snapshot)`);
  console.log(`    edit                ${mean(s.edits).toFixed(0)} ms            (mean of ${s.edits.length}: ${s.edits.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`    then a small update ${s.after.toFixed(2)} ms           (mean of 20)`);
};
console.log(`one SeldonDeployment with ${P} predictors, beside the ${N}`);
// The cost itself, with the per-deployment limit lifted; then as served (over the limit it is rejected).
const unlimited = new TableBuilder({ ...DEFAULT_COMPILE_OPTIONS, maxPredictors: Number.POSITIVE_INFINITY });
for (const d of deployments) unlimited.upsert(d);
unlimited.build();
line('no predictor limit', stalls(unlimited));
line(`default limit (${MAX_PREDICTORS} predictors)`, stalls(builder));
