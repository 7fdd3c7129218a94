/**
 * A bandit's feedback sent gzip-compressed to a deployment that decodes requests
 * (`seldon.io/gateway-compression: {decodeRequests: true}`): the gateway reads the token from the
 * decoded JSON, so the reward is attributed, and the arm's model receives the plain feedback; the
 * prediction's answer is tagged with its token before it is compressed for the client. A
 * real gateway, three stand-in arms that record what they receive.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpBackend } from '../../fixtures/http-backend.js';
import { ARMS, ARM_TAG, banditModel, type Prediction } from '../../helpers/bandit.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metricSum, scrape } from '../../helpers/observability.js';
import { waitUntil } from '../../helpers/wait.js';

describe('bandit feedback in gzip on a route that decodes requests', () => {
  let models: Record<string, HttpBackend>;
  let gw: TestGateway;

  beforeAll(async () => {
    models = Object.fromEntries(await Promise.all(ARMS.map(async (a) => [a, await banditModel(a)] as const)));
    gw = await startTestGateway({
      manifests: {
        'rec.yaml': sdep(
          'rec',
          'models',
          { predictors: ARMS.map((a) => ({ name: a, graph: { name: 'model' } })) },
          { 'seldon.io/gateway-bandit': 'arms: [a, b, c]\nhalfLife: none', 'seldon.io/gateway-compression': '{algorithms: [gzip], decodeRequests: true}' },
        ),
      },
      resolve: Object.fromEntries(ARMS.map((a) => [`rec-${a}.models:8000`, models[a]!.port])),
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await Promise.all(Object.values(models ?? {}).map((m) => m.close()));
  });

  it('the token is read from the decoded body: the reward is attributed, the model gets plain JSON', async () => {
    const p = await request(`${gw.url}/seldon/models/rec/api/v1.0/predictions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip' },
      body: '{"data":{"ndarray":[[1,2]]}}',
    });
    // The answer tagged with its token, then compressed.
    expect(p.headers['content-encoding']).toBe('gzip');
    const answer = JSON.parse(gunzipSync(Buffer.from(await p.body.arrayBuffer())).toString()) as Prediction['body'];
    expect(answer.meta.tags?.[ARM_TAG]).toBe(p.headers['seldon-gateway-arm']);
    const arm = answer.data.names[0]!;
    const feedback = JSON.stringify({ request: { data: { ndarray: [[1, 2]] } }, response: answer, reward: 1 });
    const f = await request(`${gw.url}/seldon/models/rec/api/v1.0/feedback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(feedback),
    });
    await f.body.dump();
    expect(f.statusCode).toBe(200);
    const got = models[arm]!.requests.filter((q) => q.url.endsWith('/feedback'));
    expect(got).toHaveLength(1);
    expect(got[0]!.body.toString()).toBe(feedback);
    expect(got[0]!.headers['content-encoding']).toBeUndefined();
    await waitUntil(async () => metricSum(await scrape(gw.adminUrl), 'seldon_gateway_bandit_feedback_total', { outcome: 'attributed' }) === 1);
  });
});
