/**
 * A bandit on a deployment with a fallback (docs/routing.md#fallback-models): arm `a` under flow control
 * of one slot and no queue, falling back to arm `b` on overload. In a seeded burst, every prediction
 * is answered; each answer's attribution token names the arm that answered it (steering runs again
 * for the fallback), so the feedback for a fallback's answer goes to `b` and is credited to it, never
 * to `a`; `a`'s rewards are exactly the answers `a` gave, as in a run without the fallback's answers.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { ARM_TAG, banditModel, echoedArms, type Prediction } from '../../helpers/bandit.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { waitUntil } from '../../helpers/wait.js';

const BANDIT = 'arms: [a, b]\nfloor: 5%\nhalfLife: none';

describe('a bandit arm that falls back to another arm', () => {
  let a: HttpBackend;
  let b: HttpBackend;
  let gw: TestGateway;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));

  beforeAll(async () => {
    // Arm a's first prediction is held until the test releases it: its one slot stays taken meanwhile.
    a = await startHttpBackend({
      name: 'a',
      handler: async (req, res) => {
        if (!req.url?.endsWith('/feedback')) await held;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(req.url?.endsWith('/feedback') ? '{}' : JSON.stringify({ data: { names: ['a'], ndarray: [[1]] }, meta: {} }));
      },
    });
    b = await banditModel('b');
    const predictors = [
      { name: 'a', annotations: { 'seldon.io/gateway-flow': 'concurrency: 1\nqueue: 0', 'seldon.io/gateway-fallback': 'to: {predictor: b}\non: overload' } },
      { name: 'b', graph: { name: 'model' } },
    ];
    gw = await startTestGateway({
      manifests: { 'rec.yaml': sdep('rec', 'models', { predictors }, { 'seldon.io/gateway-bandit': BANDIT }) },
      resolve: { 'rec-a.models:8000': a.port, 'rec-b.models:8000': b.port },
      args: ['--random-seed', '11'],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await a?.close();
    await b?.close();
  });

  const predict = async () => {
    const r = await request(`${gw.url}/seldon/models/rec/api/v1.0/predictions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"meta":{},"data":{"ndarray":[[1]]}}' });
    const body = (await r.body.json()) as Prediction['body'];
    return { status: r.statusCode, fallback: r.headers['x-seldon-fallback'], model: r.headers['x-seldon-model'], token: r.headers['seldon-gateway-arm'] as string | undefined, body };
  };
  const feedback = async (response: unknown, reward: number): Promise<number> => {
    const r = await request(`${gw.url}/seldon/models/rec/api/v1.0/feedback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ request: { meta: {}, data: { ndarray: [[1]] } }, response, reward }),
    });
    await r.body.dump();
    return r.statusCode;
  };
  const arms = async (): Promise<Record<string, { rewards: number }> | undefined> => {
    const body = (await (await request(`${gw.adminUrl}/routes`)).body.json()) as { deployments: { name: string; steering?: { bandit?: { arms: Record<string, { rewards: number }> } } }[] };
    return body.deployments.find((d) => d.name === 'rec')?.steering?.bandit?.arms;
  };

  it('credits the arm that answered, never the one that fell back', async () => {
    const burst = Array.from({ length: 24 }, () => predict());
    // Once a's slot is taken and every other prediction reached b (its own or a's fallback), a's held one is let go.
    await waitUntil(async () => a.requests.length === 1 && b.requests.length === burst.length - 1, 10_000);
    release();
    const answers = await Promise.all(burst);
    for (const p of answers) expect(p.status).toBe(200);
    const byA = answers.filter((p) => p.body.data.names[0] === 'a');
    const fellBack = answers.filter((p) => p.fallback !== undefined);
    // The seed draws arm a more than once: the one it could take answered, the others fell back to b.
    expect(byA).toHaveLength(1);
    expect(fellBack.length).toBeGreaterThan(0);
    for (const p of fellBack) {
      expect(p.fallback).toBe('overload');
      expect(p.model).toBe('models/rec/b');
      expect(p.body.data.names[0]).toBe('b');
      expect(p.body.meta.tags?.[ARM_TAG]).toBe(p.token);
    }
    for (const p of answers) expect(p.token).toMatch(/^[A-Za-z0-9_.~-]+$/);

    // Reward 1 for a's answer, 0 for b's: a's rewards are its one answer, b's every other.
    for (const p of answers) expect(await feedback(p.body, p.body.data.names[0] === 'a' ? 1 : 0)).toBe(200);
    expect(echoedArms(a)).toEqual(['a']);
    expect(echoedArms(b)).toHaveLength(answers.length - 1);
    expect(echoedArms(b).every((x) => x === 'b')).toBe(true);
    await waitUntil(async () => {
      const s = await arms();
      return s?.['a']?.rewards === 1 && s['b']?.rewards === answers.length - 1;
    }, 10_000);
  });
});
