/**
 * What rollouts and bandits add to one request, in process (not a test): the routing decision and
 * the request metrics, as the hot path runs them, for
 *
 *   plain     the bench table's 90/10 canary (no steering: the build before did the same work)
 *   rollout   a deployment under a rollout at 10%: the steered group (one WeakMap lookup) and the
 *             tally (observe/steer-tally.ts) beside the request metrics
 *   sticky    the same with a sticky header (a hash of the header's value per request)
 *   token     a bandit's attribution token (gateway/steer/attribution.ts), issued per answer
 *
 * CPU time (process.cpuUsage) over batches, targets interleaved, median of the rounds: a busy
 * machine slows every target alike, so the differences hold where wall-clock latency does not.
 *
 *   npx vite-node load/steer-cost.ts [--rounds 15] [--batch 200000]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GatewayMetrics } from '../gateway/observe/metrics.js';
import { BanditEdge } from '../gateway/steer/bandit-edge.js';
import { SteerOverrides, steeredPicker } from '../gateway/steer/overrides.js';
import { match } from '../routing/match.js';
import { randomPicker, seededRandom } from '../routing/pick.js';
import { stickyPoint } from '../routing/steering.js';
import { buildTable } from '../routing/table.js';
import { DEFAULT_COMPILE_OPTIONS, type RouteRequest } from '../routing/types.js';
import { ManifestSource } from '../source/manifest-source.js';
import type { SeldonDeployment } from '../routing/seldon-deployment.js';
import { generateManifests, MEASURED, NS, ROLLED_OUT } from './lib/bench-table.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '15' }, batch: { type: 'string', default: '200000' } } });
const ROUNDS = Number(values.rounds);
const BATCH = Number(values.batch);

async function deployments(dir: string): Promise<SeldonDeployment[]> {
  const found: SeldonDeployment[] = [];
  const source = new ManifestSource({ path: dir });
  await new Promise<void>((resolve) => {
    void source.start({ onEvents: (events) => events.forEach((e) => e.type === 'upsert' && found.push(e.deployment)), onSynced: resolve, onProblem: () => undefined });
  });
  await source.stop();
  return found;
}

const dir = mkdtempSync(join(tmpdir(), 'sgw-steer-cost-'));
generateManifests(dir, 1000);
const sdeps = await deployments(dir);
// The sticky variant of the rolled-out deployment, beside it.
const sticky = JSON.parse(JSON.stringify(sdeps.find((d) => d.metadata?.name === ROLLED_OUT))) as SeldonDeployment;
sticky.metadata!.name = 'sticky';
sticky.spec!.annotations = { 'seldon.io/gateway-rollout': 'canary: v2\nsteps: [10, 100]\ninterval: 24h\nsticky: header:x-user' };
const table = buildTable([...sdeps, sticky], DEFAULT_COMPILE_OPTIONS);
const overrides = new SteerOverrides();
overrides.set(
  new Map([
    [`${NS}/${ROLLED_OUT}`, { percents: new Map([['v2', 10]]), mirrors: new Map(), lead: null }],
    [`${NS}/sticky`, { percents: new Map([['v2', 10]]), mirrors: new Map(), lead: 'v2' }],
  ]),
);
const picker = steeredPicker(randomPicker(seededRandom(1)), overrides);
const metrics = new GatewayMetrics({ processMetrics: false });
const headers: Record<string, string> = { 'content-type': 'application/json', 'x-user': 'user-1234' };
const request = (name: string, withSticky: boolean): RouteRequest => ({
  kind: 'rest',
  method: 'POST',
  path: `/seldon/${NS}/${name}/api/v1.0/predictions`,
  host: 'gw',
  header: (n) => headers[n],
  ...(withSticky ? { sticky: (spec) => (spec.kind === 'header' && headers[spec.name] ? stickyPoint(headers[spec.name]!) : undefined) } : {}),
});
const bandits = new BanditEdge(
  () => undefined,
  () => undefined,
);
bandits.setKeys([Buffer.alloc(32, 7)]);
const banditOf = { deployment: `${NS}/bandit`, run: 'r', config: table.steering.get(`${NS}/bandit`)!.bandit!.config };
const armA = table.restByPrefix.get(`/seldon/${NS}/bandit/`)![0]!.members[0]!.backend;

function routed(req: RouteRequest): () => void {
  return () => {
    const d = match(table, req, picker);
    if (!d.ok) throw new Error(d.info);
    metrics.request(d.backend, 'rest', 'primary', 200, 0.004);
  };
}

const targets: [string, () => void][] = [
  ['plain (90/10 canary)', routed(request(MEASURED, false))],
  ['rollout at 10%', routed(request(ROLLED_OUT, false))],
  ['rollout, sticky header', routed(request('sticky', true))],
  ['bandit token issued', () => void bandits.token(banditOf, armA)],
];

const results = new Map<string, number[]>(targets.map(([n]) => [n, []]));
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? targets : [...targets].reverse();
  for (const [name, fn] of order) {
    for (let i = 0; i < 1000; i++) fn();
    const t0 = process.cpuUsage();
    for (let i = 0; i < BATCH; i++) fn();
    const t = process.cpuUsage(t0);
    results.get(name)!.push(((t.user + t.system) * 1000) / BATCH);
  }
  // The tally is taken once a second in the gateway: here once a round.
  metrics.steering.take();
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const plain = median(results.get(targets[0]![0])!);
console.log(`steer-cost: ${ROUNDS} rounds of ${BATCH} calls, median CPU ns per call (match + request metrics; the token alone)\n`);
console.log('| target | ns/call | vs plain |\n|:--|--:|--:|');
for (const [name] of targets) {
  const m = median(results.get(name)!);
  console.log(`| ${name} | ${m.toFixed(0)} | ${name.startsWith('bandit') ? '–' : `${m - plain >= 0 ? '+' : ''}${(m - plain).toFixed(0)} ns (${(m / plain).toFixed(2)}x)`} |`);
}
