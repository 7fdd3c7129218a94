/**
 * A bandit's decision records (docs/payload-logging.md#the-decision-record) through a real
 * gateway, whose shares move while the test runs (each arm's feedback earns 1 at a rate of its
 * own, 0.4, 0.5 and 0.6, drawn from a seeded sequence):
 *
 * - over 5,000 predictions the probabilities logged at each pick agree with the arms' observed
 *   frequencies: for each arm, |picks − Σ logged share| within 3 standard errors (the picks are a
 *   sum of independent draws, so its variance is Σ p(1 − p));
 * - each record's `probability` is the served arm's logged share;
 * - every feedback's record names the arm it was credited to, the arm that served its prediction,
 *   with its reward.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpBackend } from '../../fixtures/http-backend.js';
import { ARMS, BANDIT_MANIFEST, banditModel, predict, type Prediction } from '../../helpers/bandit.js';
import type { CliGateway } from '../../helpers/cli.js';
import { decisionOf, startEventReceiver, type EventReceiver } from '../../helpers/event-receiver.js';
import { startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { pool } from '../../helpers/grpc.js';
import { metricSum, scrape } from '../../helpers/observability.js';
import { waitUntil } from '../../helpers/wait.js';
import { seededRandom } from '../../../routing/table/pick.js';

const N = 5000;
const RATES: Record<string, number> = { a: 0.4, b: 0.5, c: 0.6 };

describe('payload logging: a bandit’s decisions', () => {
  let receiver: EventReceiver;
  let models: Record<string, HttpBackend>;
  let gw: TestGateway;
  const dir = mkdtempSync(join(tmpdir(), 'sgw-log-'));

  beforeAll(async () => {
    receiver = await startEventReceiver();
    models = Object.fromEntries(await Promise.all(ARMS.map(async (a) => [a, await banditModel(a)] as const)));
    writeFileSync(join(dir, 'sinks.yaml'), `- name: seldon\n  type: cloudevents\n  url: ${receiver.url}\n`);
    const manifest = BANDIT_MANIFEST.replace('  annotations:\n', '  annotations:\n    seldon.io/gateway-log: "sinks: [seldon]\\nlog: decisions"\n');
    gw = await startTestGateway({
      manifests: { 'rec.yaml': manifest },
      resolve: Object.fromEntries(ARMS.map((a) => [`rec-${a}.models:8000`, models[a]!.port])),
      args: ['--log-sinks', join(dir, 'sinks.yaml'), '--random-seed', '11'],
    });
    // The control plane's first shares (after the even prior of the table).
    await waitUntil(async () => gw.steering.banditViews().some((b) => b.arms.size > 0), 15_000);
  });

  afterAll(async () => {
    await gw?.stop();
    await Promise.all(Object.values(models ?? {}).map((m) => m.close()));
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('over 5,000 picks the logged probabilities agree with the observed arm frequencies (3 standard errors), and each feedback names its arm', async () => {
    const client = { port: gw.port } as CliGateway;
    const served: string[] = new Array(N);
    const rewards: number[] = new Array(N);
    const draw = seededRandom(20261125);
    await pool(N, 8, async (i) => {
      const p: Prediction = await predict(client);
      served[i] = p.arm;
      rewards[i] = draw() < RATES[p.arm]! ? 1 : 0;
      // Feedback through the same gateway, its puid naming the prediction it is about.
      expect(await feedbackWithPuid(gw, p, i, rewards[i]!)).toBe(200);
    });
    await waitUntil(async () => metricSum(await scrape(gw.adminUrl), 'seldon_gateway_log_buffer_bytes') === 0, 60_000);
    const records = receiver.unique('io.seldon.gateway.decision').map(decisionOf);
    const picks = records.filter((d) => (d.path as string).endsWith('/predictions'));
    const feedbacks = records.filter((d) => (d.path as string).endsWith('/feedback'));
    expect(picks).toHaveLength(N);
    expect(feedbacks).toHaveLength(N);
    const observed: Record<string, number> = { a: 0, b: 0, c: 0 };
    const expected: Record<string, number> = { a: 0, b: 0, c: 0 };
    const variance: Record<string, number> = { a: 0, b: 0, c: 0 };
    const moved = new Set<string>();
    for (const d of picks) {
      const bandit = d.why.bandit as { arm: string; probability: number; shares: Record<string, number> };
      expect(bandit.arm).toBe(d.predictor);
      // The record's probability is the served arm's share at the pick.
      expect(d.probability).toBeCloseTo(bandit.shares[bandit.arm]! / 100, 5);
      moved.add(JSON.stringify(bandit.shares));
      observed[d.predictor as string]!++;
      for (const a of ARMS) {
        const p = bandit.shares[a]! / 100;
        expected[a]! += p;
        variance[a]! += p * (1 - p);
      }
    }
    const report = ARMS.map((a) => `${a}: ${observed[a]} picked, ${expected[a]!.toFixed(1)} expected ± ${Math.sqrt(variance[a]!).toFixed(1)}`).join('; ');
    console.log(`bandit decisions: ${report}; ${moved.size} distinct shares in force`);
    // The shares moved while it ran, so the probabilities are the moment's.
    expect(moved.size).toBeGreaterThan(1);
    for (const a of ARMS) expect(Math.abs(observed[a]! - expected[a]!), report).toBeLessThanOrEqual(3 * Math.sqrt(variance[a]!));
    // Each feedback was credited to the arm that served its prediction (its puid names it), with its reward.
    for (const d of feedbacks) {
      const fb = d.why.feedback as { credited: boolean; arm: string; reward: number };
      expect(fb.credited).toBe(true);
      expect(fb.arm).toBe(d.predictor);
      expect(d.probability).toBeNull();
    }
    const byPuid = new Map(receiver.unique('io.seldon.gateway.decision').map((e) => [String(e.event['requestid']), decisionOf(e)]));
    for (let i = 0; i < N; i++) {
      const d = byPuid.get(`feedback-${i}`)!;
      expect((d.why.feedback as { arm: string }).arm, `feedback ${i}`).toBe(served[i]);
      expect((d.why.feedback as { reward: number }).reward).toBe(rewards[i]);
    }
  }, 300_000);
});

/** Feedback for prediction `i` (its answer echoed, token included), with `seldon-puid: feedback-<i>`. */
async function feedbackWithPuid(gw: TestGateway, p: Prediction, i: number, reward: number): Promise<number> {
  const r = await request(`${gw.url}/seldon/models/rec/api/v1.0/feedback`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'seldon-puid': `feedback-${i}` },
    body: JSON.stringify({ request: { meta: {}, data: { ndarray: [[1, 2]] } }, response: p.body, reward }),
  });
  await r.body.dump();
  return r.statusCode;
}
