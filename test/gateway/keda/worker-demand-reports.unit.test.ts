/**
 * How a worker reports its flow demand to the primary (gateway/keda/worker-demand.ts), on an
 * injected clock: a burst of changes is one report at most 100 ms after its first change, a quiet
 * worker still reports every second; and how the primary sums its workers' reports.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { reportDemandToPrimary, SettableReplicaCount, sumDemand } from '../../../gateway/keda/worker-demand.js';
import { metricNameFor, scaledPredictor, BadScalerMetadata } from '../../../gateway/keda/scaler.js';
import { demandKey } from '../../../gateway/keda/replica-demand.js';
import type { PredictorDemand } from '../../../gateway/flow/demand.js';
import { SetDemand } from '../../helpers/keda.js';

beforeEach(() => void vi.useFakeTimers());
afterEach(() => void vi.useRealTimers());

describe('a worker reporting its demand', () => {
  it('reports at once, then a burst of changes as one report 100 ms after its first change, and every second while quiet', () => {
    const source = new SetDemand();
    source.set('models', 'iris', 'main');
    const reports: { at: number; demand: PredictorDemand[] }[] = [];
    const start = Date.now();
    const stop = reportDemandToPrimary(source, (msg) => reports.push({ at: Date.now() - start, demand: msg.demand }));
    expect(reports).toEqual([{ at: 0, demand: [{ namespace: 'models', deployment: 'iris', predictor: 'main', queued: 0, inflight: 0 }] }]);
    vi.advanceTimersByTime(200);
    source.set('models', 'iris', 'main', 1, 0);
    vi.advanceTimersByTime(40);
    source.set('models', 'iris', 'main', 2, 1);
    source.set('models', 'iris', 'main', 3, 1);
    vi.advanceTimersByTime(59);
    expect(reports.length).toBe(1);
    vi.advanceTimersByTime(1);
    expect(reports.slice(1)).toEqual([{ at: 300, demand: [{ namespace: 'models', deployment: 'iris', predictor: 'main', queued: 3, inflight: 1 }] }]);
    // Quiet: the periodic report, every second from the start.
    vi.advanceTimersByTime(2000);
    expect(reports.map((r) => r.at)).toEqual([0, 300, 1000, 2000]);
    stop();
    source.set('models', 'iris', 'main', 0, 0);
    vi.advanceTimersByTime(5000);
    expect(reports.length).toBe(4);
  });
});

describe('the primary summing its workers', () => {
  it('adds each predictor over the workers, keeping predictors at 0', () => {
    const d = (predictor: string, queued: number, inflight: number): PredictorDemand => ({ namespace: 'models', deployment: 'iris', predictor, queued, inflight });
    expect(sumDemand([[d('a', 1, 2), d('b', 0, 0)], [d('a', 3, 0)], []])).toEqual([d('a', 4, 2), d('b', 0, 0)]);
  });

  it('a data plane counts at least one replica, and its own workers until the control plane counted', () => {
    const count = new SettableReplicaCount(4);
    expect([count.replicas(), count.processes()]).toEqual([1, 4]);
    count.set({ replicas: 3, processes: 12 });
    expect([count.replicas(), count.processes()]).toEqual([3, 12]);
    count.set({ replicas: 0, processes: 0 });
    expect([count.replicas(), count.processes()]).toEqual([1, 1]);
  });
});

describe('names', () => {
  it('the metric name is a valid HPA metric name; the Redis key is hash-tagged by deployment', () => {
    expect(metricNameFor('models', 'iris.v2', 'Main_1')).toBe('seldon-gateway-pending-models-iris-v2-main-1');
    expect(demandKey({ namespace: 'models', deployment: 'iris', predictor: 'main' })).toBe('seldon-gateway:flow-demand:{models/iris}:main');
  });

  it("reads a ScaledObjectRef: the namespace is the ScaledObject's, the target 100 unless set", () => {
    expect(scaledPredictor({ name: 'x', namespace: 'models', scalerMetadata: { deployment: 'iris', predictor: 'main' } })).toEqual({
      namespace: 'models',
      deployment: 'iris',
      predictor: 'main',
      target: 100,
      metricName: 'seldon-gateway-pending-models-iris-main',
    });
    expect(() => scaledPredictor({ name: 'x', namespace: 'models', scalerMetadata: { deployment: 'iris', predictor: 'main', targetPendingRequests: '1e3' } })).toThrow(BadScalerMetadata);
  });
});
