/**
 * A request the gateway refused before forwarding it (the gate: auth, rate limits) is counted in
 * the request metrics as its answer, but never as a predictor's outcome for rollouts and bandits:
 * no model saw it, so a rollout's judge must not read it as the canary's (or the primary's) answer.
 */
import { describe, expect, it } from 'vitest';
import { GatewayMetrics } from '../../../gateway/observe/metrics.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';
import { buildTable } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS } from '../../../routing/types.js';

const ROLLOUT: SeldonDeployment = {
  apiVersion: 'machinelearning.seldon.io/v1',
  kind: 'SeldonDeployment',
  metadata: { name: 'iris', namespace: 'models', annotations: { 'seldon.io/gateway-rollout': 'canary: v2\nsteps: [50]', 'seldon.io/gateway-rate-limit': '1/h' } },
  spec: { predictors: ['main', 'v2'].map((name) => ({ name, traffic: name === 'v2' ? 0 : 100, graph: { name: 'm', implementation: 'SKLEARN_SERVER', modelUri: `gs://m/${name}` } })) },
} as SeldonDeployment;

describe('GatewayMetrics: refusals and answers of a steered backend', () => {
  const canary = buildTable([ROLLOUT], DEFAULT_COMPILE_OPTIONS)
    .restByPrefix.get('/seldon/models/iris/')![0]!
    .members.find((m) => m.backend.origin.predictor === 'v2')!.backend;

  it('refused (429, 503 from the gate): in the request counts, not in the rollout tally', async () => {
    const m = new GatewayMetrics({ processMetrics: false });
    expect(canary.steered).toBe(true);
    m.refused(canary, 'rest', 429, performance.now());
    m.refused(canary, 'rest', 503, performance.now());
    m.refused(canary, 'grpc', 14, performance.now());
    expect(m.steering.take()).toEqual({});
    const text = await m.registry.metrics();
    expect(text).toMatch(/seldon_gateway_requests_total\{[^}]*predictor="v2"[^}]*code="429"[^}]*\} 1/);
    expect(text).toMatch(/seldon_gateway_requests_total\{[^}]*predictor="v2"[^}]*code="503"[^}]*\} 1/);
  });

  it('answered by the model: one outcome each, a 5xx an error', () => {
    const m = new GatewayMetrics({ processMetrics: false });
    m.request(canary, 'rest', 'primary', 200, 0.002);
    m.request(canary, 'rest', 'primary', 503, 0.002);
    const v2 = m.steering.take()['models/iris']!['v2']!;
    expect([v2.n, v2.e]).toEqual([2, 1]);
  });
});
