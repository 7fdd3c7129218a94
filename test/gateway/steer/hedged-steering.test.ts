/**
 * A bandit and a rollout on a hedged deployment (docs/routing.md#hedged-requests): each predictor
 * has two pods of its own on the Kubernetes API stand-in (the CLI gateway), the pods answer in
 * 20 ms and `seldon.io/gateway-hedge: after: 5ms, budget: 100%` hedges every prediction. A hedge
 * goes to the other pod of the same predictor, never to another arm or step: the answer, the
 * token, the feedback and the counts all name the predictor that was picked, once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { REPLICA_IPS } from '../../fixtures/loopback-replicas.js';
import { FEEDBACK, HedgingWorld, type Got } from '../../helpers/hedging.js';
import { getJson } from '../../helpers/observability.js';
import { waitUntil } from '../../helpers/wait.js';

const HEDGE_ALL = 'after: 5ms\nbudget: 100%';
const PODS: Record<string, readonly string[]> = { a: REPLICA_IPS.slice(0, 2), b: REPLICA_IPS.slice(2, 4) };
const ARM_TAG = 'seldon.io/gateway-arm';

let world: HedgingWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

/** The predictor whose pod answered (its address is in the answer). */
function predictorOf(g: Got): string {
  const ip = /"pod":"([0-9.]+)"/.exec(g.body)?.[1];
  return Object.entries(PODS).find(([, ips]) => ips.includes(ip!))![0];
}

/** Every arrival of request `id` was at a pod of one predictor: that one. */
function arrivedAt(w: HedgingWorld, id: string): string[] {
  return [...new Set(w.arrivalsOf((x) => x === id).map((a) => Object.entries(PODS).find(([, ips]) => ips.includes(a.ip))![0]))];
}

describe('steering on a hedged deployment: two pods per predictor, every prediction hedged', () => {
  it('a bandit credits exactly the arm it picked: answer, token, feedback and rewards name it once', async () => {
    world = await HedgingWorld.start(
      { rec: { predictors: PODS, annotations: { 'seldon.io/gateway-hedge': HEDGE_ALL, 'seldon.io/gateway-bandit': 'arms: [a, b]\nfloor: 5%\nhalfLife: none' } } },
      () => 20,
    );
    const w = world;
    const served: Record<string, number> = { a: 0, b: 0 };
    for (let i = 0; i < 60; i++) {
      const p = await w.rest('rec', `p-${i}`);
      expect(p.status, p.body).toBe(200);
      const arm = predictorOf(p);
      // The token (header and meta.tags) names the arm whose pod answered; both of its attempts went to that arm's pods.
      const token = p.header!('seldon-gateway-arm')!;
      expect(token.split('.')[1]).toBe(arm);
      expect((JSON.parse(p.body) as { meta: { tags: Record<string, string> } }).meta.tags[ARM_TAG]).toBe(token);
      expect(arrivedAt(w, `p-${i}`)).toEqual([arm]);
      served[arm]!++;
      // Feedback as the Seldon client sends it: never hedged, it reaches that arm once.
      const f = await w.rest('rec', `f-${i}`, JSON.stringify({ request: { data: { ndarray: [[1]] } }, response: JSON.parse(p.body) as unknown, reward: arm === 'b' ? 1 : 0 }), FEEDBACK);
      expect(f.status, f.body).toBe(200);
      expect(w.arrivalsOf((x) => x === `f-${i}`)).toHaveLength(1);
      expect(arrivedAt(w, `f-${i}`)).toEqual([arm]);
    }
    // Predictions were hedged (a second arrival; on a busy machine the first answer is sometimes
    // read before the delay's timer runs), and every reward went to the arm that earned it.
    const extra = w.arrivalsOf((x) => x.startsWith('p-')).length - 60;
    expect(extra).toBeGreaterThanOrEqual(45);
    expect((await w.hedges('rec', 'won')) + (await w.hedges('rec', 'lost'))).toBe(extra);
    type Routes = { deployments: { name: string; steering?: { bandit?: { arms: Record<string, { rewards: number }> } } }[] };
    const rewards = async (): Promise<Record<string, { rewards: number }> | undefined> =>
      (await getJson<Routes>(`http://127.0.0.1:${w.gw.admin}/routes`)).deployments.find((d) => d.name === 'rec')?.steering?.bandit?.arms;
    await waitUntil(async () => {
      const r = await rewards();
      return r?.['a']?.rewards === served['a'] && r?.['b']?.rewards === served['b'];
    }, 20_000);
    expect(await w.metric('seldon_gateway_bandit_feedback_total', { outcome: 'attributed' })).toBe(60);
  });

  it("a rollout counts each request once, for the step's predictor that answered it", async () => {
    const rollout = 'canary: b\nsteps: [50]\ninterval: 1s\nminRequests: 10\nmaxErrorRate: "+5%"\nmaxLatencyShift: 200%';
    world = await HedgingWorld.start({ iris: { predictors: PODS, annotations: { 'seldon.io/gateway-hedge': HEDGE_ALL, 'seldon.io/gateway-rollout': rollout } } }, () => 20, ['--predictor-header']);
    const w = world;
    const answered: Record<string, number> = { a: 0, b: 0 };
    for (let i = 0; i < 80; i++) {
      const g = await w.rest('iris', `r-${i}`);
      expect(g.status, g.body).toBe(200);
      const predictor = predictorOf(g);
      expect(g.header!('x-seldon-predictor')).toBe(predictor);
      expect(arrivedAt(w, `r-${i}`)).toEqual([predictor]);
      answered[predictor]!++;
    }
    expect(w.arrivalsOf((x) => x.startsWith('r-')).length).toBeGreaterThanOrEqual(140);
    // Counted once each, for the predictor that answered (the rollout's windows read these counts).
    for (const p of ['a', 'b']) expect(await w.metric('seldon_gateway_requests_total', { deployment: 'iris', predictor: p, code: '200' })).toBe(answered[p]);
    expect(answered['a']! + answered['b']!).toBe(80);
  });
});
