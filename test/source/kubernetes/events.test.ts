/**
 * DeploymentEvents against the fake API: Warning Events for rejected and degraded deployments,
 * rate-limited per object, counted on the same Event after the interval, recreated when expired,
 * and harmless without RBAC.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeploymentEvents, type DeploymentStateReport } from '../../../source/kubernetes/events.js';
import { RecordingLog, clientFor, startFakeKubeApi, tempDir, type FakeKubeApi } from '../../fixtures/fake-kube-api.js';

let api: FakeKubeApi;
let tmp: ReturnType<typeof tempDir>;
let now = 1_700_000_000_000;

beforeEach(async () => {
  api = await startFakeKubeApi();
  tmp = tempDir();
  now = 1_700_000_000_000;
});

afterEach(async () => {
  await api.close();
  tmp.cleanup();
});

function recorder(options: { intervalMs?: number; maxPending?: number } = {}): { events: DeploymentEvents; log: RecordingLog } {
  const log = new RecordingLog();
  const events = new DeploymentEvents({
    client: clientFor(api, tmp.dir),
    objectRef: (ns, name) => ({ apiVersion: 'machinelearning.seldon.io/v1', uid: `uid-of-${ns}-${name}` }),
    intervalMs: options.intervalMs ?? 60_000,
    instance: 'gw-pod-1',
    now: () => now,
    log,
    ...(options.maxPending ? { maxPending: options.maxPending } : {}),
  });
  return { events, log };
}

const rejected = (reasons: string[], name = 'fraud'): DeploymentStateReport => ({ namespace: 'models', name, state: 'rejected', reasons });

describe('DeploymentEvents', () => {
  it('posts a Warning Event on the SeldonDeployment with the reasons joined', async () => {
    const { events } = recorder();
    events.report(rejected(['seldon.io/ambassador-header: odd number of parts', 'second reason']));
    await events.idle();
    expect(api.eventPosts).toHaveLength(1);
    const ev = api.eventPosts[0]! as Record<string, unknown> & { metadata: { name: string; namespace?: string } };
    expect(ev.metadata.namespace).toBe('models');
    expect(ev.metadata.name).toMatch(/^fraud\.[0-9a-f]+$/);
    expect(ev.involvedObject).toEqual({ kind: 'SeldonDeployment', apiVersion: 'machinelearning.seldon.io/v1', name: 'fraud', namespace: 'models', uid: 'uid-of-models-fraud' });
    expect(ev).toMatchObject({
      type: 'Warning',
      reason: 'RouteRejected',
      message: 'seldon.io/ambassador-header: odd number of parts; second reason',
      count: 1,
      source: { component: 'seldon-gateway', host: 'gw-pod-1' },
      reportingComponent: 'seldon-gateway',
    });
    expect(typeof ev.firstTimestamp).toBe('string');
  });

  it('degraded → RouteDegraded; accepted and skipped post nothing', async () => {
    const { events } = recorder();
    events.report({ namespace: 'models', name: 'a', state: 'degraded', reasons: ['seldon.io/rest-timeout: "x" is not an integer; default used'] });
    events.report({ namespace: 'models', name: 'b', state: 'accepted', reasons: [] });
    events.report({ namespace: 'models', name: 'c', state: 'skipped', reasons: ['ambassador-id "blue" ≠ gateway id "default"'] });
    await events.idle();
    expect(api.eventPosts.map((e) => [e.metadata.name.split('.')[0], (e as { reason?: string }).reason])).toEqual([['a', 'RouteDegraded']]);
  });

  it('rate-limited per object: the same message again within the interval is dropped, a new message is posted, after the interval the Event is counted', async () => {
    const { events } = recorder({ intervalMs: 60_000 });
    events.report(rejected(['bad header']));
    await events.idle();
    // Flapping: fixed, then broken the same way, 10 s later.
    now += 10_000;
    events.report({ namespace: 'models', name: 'fraud', state: 'accepted', reasons: [] });
    events.report(rejected(['bad header']));
    // Another object is not limited by the first.
    events.report(rejected(['bad header'], 'other'));
    await events.idle();
    expect(api.eventPosts.map((e) => e.metadata.name.split('.')[0])).toEqual(['fraud', 'other']);

    now += 1_000;
    events.report(rejected(['bad regex']));
    await events.idle();
    expect(api.eventPosts).toHaveLength(3);
    expect((api.eventPosts[2] as { message?: string }).message).toBe('bad regex');

    // The same message after the interval: the existing Event's count goes up (kubectl: "x2 over 1m").
    now += 61_000;
    events.report(rejected(['bad regex']));
    await events.idle();
    const regexEvent = api.eventPosts[2]!.metadata.name;
    expect(api.eventPatches.map((p) => p.name)).toEqual([regexEvent]);
    expect(api.events.get(`models/${regexEvent}`)?.count).toBe(2);
    expect(api.eventPosts).toHaveLength(3);
    // A different message is always news.
    now += 1_000;
    events.report(rejected(['bad header']));
    await events.idle();
    expect(api.eventPosts).toHaveLength(4);
  });

  it('an expired Event is created again instead of patched', async () => {
    const { events } = recorder({ intervalMs: 1000 });
    events.report(rejected(['bad header']));
    await events.idle();
    api.events.clear(); // the API server's event TTL ran out
    now += 5000;
    events.report({ namespace: 'models', name: 'fraud', state: 'accepted', reasons: [] });
    events.report(rejected(['bad header']));
    await events.idle();
    expect(api.eventPatches).toHaveLength(0);
    expect(api.eventPosts).toHaveLength(2);
    expect((api.eventPosts[1] as { count?: number }).count).toBe(1);
  });

  it('without RBAC for Events: warns once, never throws, keeps trying for later changes', async () => {
    api.forbidden.add('events');
    const { events, log } = recorder();
    for (let i = 0; i < 5; i++) events.report(rejected([`reason ${i}`], `d${i}`));
    await events.idle();
    expect(api.eventPosts).toHaveLength(0);
    expect(log.matching(/cannot post Kubernetes Events/)).toHaveLength(1);
    api.forbidden.delete('events');
    events.report(rejected(['later'], 'later'));
    await events.idle();
    expect(api.eventPosts).toHaveLength(1);
  });

  it('the queue is bounded: a flood beyond it is dropped and said once', async () => {
    const { events, log } = recorder({ maxPending: 10 });
    for (let i = 0; i < 100; i++) events.report(rejected(['x'], `d${i}`));
    await events.idle();
    // 4 in flight at once plus 10 queued.
    expect(api.eventPosts.length).toBeLessThanOrEqual(14);
    expect(api.eventPosts.length).toBeGreaterThanOrEqual(10);
    expect(log.matching(/queue full/)).toHaveLength(1);
  });
});
