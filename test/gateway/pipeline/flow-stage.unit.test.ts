/**
 * The flow stage (gateway/pipeline/flow.ts) in the pipeline, without sockets: a request to a
 * predictor at its limit is refused with 503 OVERLOADED before forward, so no credit is committed
 * and no model is asked; the slot of a forwarded request is held until it ends; a route without a
 * policy is not touched. (That a refusal is counted as its request's answer, never as a predictor's
 * outcome, is the adapters' and GatewayMetrics.refused's: test/gateway/pipeline/refused-metrics.unit.test.ts,
 * test/gateway/pipeline/flow-control.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { FlowController } from '../../../gateway/flow/controller.js';
import { requestPipeline } from '../../../gateway/pipeline/chain.js';
import { issueToken } from '../../../gateway/steer/attribution.js';
import { BanditEdge, type RewardSink } from '../../../gateway/steer/bandit-edge.js';
import { randomPicker, seededRandom } from '../../../routing/table/pick.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';
import { buildTable } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS } from '../../../routing/types.js';
import { RecordingRequest } from './recording-request.js';

const sdep = (name: string, annotations: Record<string, string>, predictors: string[]): SeldonDeployment =>
  ({
    apiVersion: 'machinelearning.seldon.io/v1',
    kind: 'SeldonDeployment',
    metadata: { name, namespace: 'models', annotations },
    spec: { predictors: predictors.map((p) => ({ name: p, graph: { name: 'm', implementation: 'SKLEARN_SERVER', modelUri: `gs://m/${p}` } })) },
  }) as SeldonDeployment;

const TABLE = buildTable(
  [sdep('rec', { 'seldon.io/gateway-bandit': 'arms: [a, b]', 'seldon.io/gateway-flow': 'concurrency: 1\nqueue: 0' }, ['a', 'b']), sdep('iris', {}, ['main'])],
  DEFAULT_COMPILE_OPTIONS,
);
const KEY = Buffer.from('0123456789abcdef0123456789abcdef');
const NOW = 1_767_225_600_000;

describe('the flow stage', () => {
  it('refuses at the limit before forward: no credit committed; the slot frees when the forwarded request ends', () => {
    const rewards: unknown[] = [];
    const sink: RewardSink = { reward: (...args) => (rewards.push(args), new Promise(() => undefined)) };
    const edge = new BanditEdge(
      () => sink,
      () => undefined,
      undefined,
      () => NOW,
    );
    edge.setKeys([KEY]);
    const flow = new FlowController();
    flow.tableChanged(TABLE);
    const pipeline = requestPipeline({ state: { current: TABLE }, picker: randomPicker(seededRandom(1)), bandits: edge, flow });
    const feedback = (arm: string): RecordingRequest =>
      new RecordingRequest('/seldon/models/rec/api/v1.0/feedback', { isFeedback: true, feedback: { token: issueToken([KEY], arm, 'models/rec', NOW), reward: 1 } });

    const first = feedback('a');
    pipeline.run(first);
    expect(first.calls).toEqual(['readFeedback', 'forward:models/rec/a']);
    expect(first.flow).toBeDefined();
    expect(flow.snapshot()).toEqual([
      { namespace: 'models', deployment: 'rec', predictor: 'a', queued: 0, inflight: 1 },
      { namespace: 'models', deployment: 'rec', predictor: 'b', queued: 0, inflight: 0 },
    ]);

    const second = feedback('a');
    pipeline.run(second);
    expect(second.calls).toEqual(['readFeedback', 'refuse:503 OVERLOADED']);
    // Steering decided its credit; only forward's exchange commits it, and it never ran.
    expect(second.credit).toBeDefined();
    expect(rewards).toEqual([]);
    expect(flow.stats().find((s) => s.predictor === 'a')!.refused).toEqual([0, 1, 0]);

    first.ended(true);
    first.ended(true);
    const third = feedback('a');
    pipeline.run(third);
    expect(third.calls).toEqual(['readFeedback', 'forward:models/rec/a']);
  });

  it('passes a route without a policy untouched, with no slot', () => {
    const flow = new FlowController();
    flow.tableChanged(TABLE);
    const r = new RecordingRequest('/seldon/models/iris/api/v1.0/predictions');
    requestPipeline({ state: { current: TABLE }, picker: randomPicker(seededRandom(1)), flow }).run(r);
    expect(r.calls).toEqual(['forward:models/iris/main']);
    expect(r.flow).toBeUndefined();
  });
});
