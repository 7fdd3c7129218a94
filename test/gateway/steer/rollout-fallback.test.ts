/**
 * A rollout on a deployment with a fallback (docs/routing.md#fallback-models): canary `v2` under flow
 * control of one slot and no queue, falling back to `main` on overload. In a burst, the rollout counts
 * for the canary only the answers the canary gave: its evidence is the one request it answered, not
 * the ones `main` answered in its place, which are `main`'s.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import type { RolloutJson } from '../../helpers/rollout.js';
import { waitUntil } from '../../helpers/wait.js';

const ROLLOUT = 'canary: v2\nsteps: [50, 100]\ninterval: 1s\nminRequests: 1000\nmaxErrorRate: "+5%"';

describe('a rollout whose canary falls back to the primary', () => {
  let main: HttpBackend;
  let v2: HttpBackend;
  let gw: TestGateway;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));

  beforeAll(async () => {
    main = await startHttpBackend({ name: 'main' });
    // The canary's first request is held until the test releases it: its one slot stays taken meanwhile.
    v2 = await startHttpBackend({
      name: 'v2',
      handler: async (_req, res) => {
        await held;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"data":{"ndarray":[[2]]}}');
      },
    });
    const predictors = [
      { name: 'main', graph: { name: 'model' } },
      { name: 'v2', graph: { name: 'model' }, annotations: { 'seldon.io/gateway-flow': 'concurrency: 1\nqueue: 0', 'seldon.io/gateway-fallback': 'to: {predictor: main}\non: overload' } },
    ];
    gw = await startTestGateway({
      manifests: { 'iris.yaml': sdep('iris', 'models', { predictors }, { 'seldon.io/gateway-rollout': ROLLOUT }) },
      resolve: { 'iris-main.models:8000': main.port, 'iris-v2.models:8000': v2.port },
      args: ['--random-seed', '5'],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await main?.close();
    await v2?.close();
  });

  const rollout = async (): Promise<RolloutJson | undefined> => {
    const body = (await (await request(`${gw.adminUrl}/routes`)).body.json()) as { deployments: { name: string; steering?: { rollout?: RolloutJson } }[] };
    return body.deployments.find((d) => d.name === 'iris')?.steering?.rollout;
  };
  const post = async () => {
    const r = await request(`${gw.url}/seldon/models/iris/api/v1.0/predictions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":{"ndarray":[[1]]}}' });
    await r.body.dump();
    return { status: r.statusCode, fallback: r.headers['x-seldon-fallback'], model: r.headers['x-seldon-model'] };
  };

  it('judges the canary only on the answers it gave', async () => {
    await waitUntil(async () => (await rollout())?.phase !== undefined, 10_000);
    const burst = Array.from({ length: 30 }, () => post());
    // Once the canary's slot is taken and every other request reached main (its own or the canary's fallback), the held one is let go.
    await waitUntil(async () => v2.requests.length === 1 && main.requests.length === burst.length - 1, 10_000);
    release();
    const answers = await Promise.all(burst);
    for (const a of answers) expect(a.status).toBe(200);
    const fellBack = answers.filter((a) => a.fallback === 'overload');
    // The seed picks the canary more than once: one it answered, the rest main answered for it.
    expect(fellBack.length).toBeGreaterThan(0);
    for (const a of fellBack) expect(a.model).toBe('models/iris/main');
    const counted = (p: string): Promise<number> =>
      metric(gw.adminUrl, `seldon_gateway_requests_total{namespace="models",deployment="iris",predictor="${p}",protocol="rest",kind="primary",code="200"}`);
    expect(await counted('v2')).toBe(1);
    expect(await counted('main')).toBe(answers.length - 1);
    // The rollout's evidence for the canary at this step: the one answer it gave.
    const evidence = async (): Promise<string> => {
      const r = (await rollout()) as (RolloutJson & { needs: string[]; checks: { latencyShift: { detail: string } } | null }) | undefined;
      return `${r?.needs?.join('; ') ?? ''} | ${r?.checks?.latencyShift.detail ?? ''}`;
    };
    await waitUntil(async () => (await evidence()).includes(`1 canary and ${answers.length - 1} primary samples`), 10_000);
    expect(await evidence()).toContain('(1 of 1,000 at step 1');
  });
});
