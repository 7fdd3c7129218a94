/**
 * EndpointWatcher against the fake API: ready endpoints by Service port name or number, pods
 * added / not ready / terminating, empty and unknown services, dual-stack, namespace scope,
 * change notifications, and the RBAC fallback (403 → undefined for all, said once).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EndpointWatcher, type EndpointWatcherOptions } from '../../../source/kubernetes/endpoints.js';
import { FAST, RecordingLog, clientFor, endpointSlice, startFakeKubeApi, tempDir, until, type FakeEndpoint, type FakeKubeApi } from '../../fixtures/fake-kube-api.js';

let api: FakeKubeApi;
let tmp: ReturnType<typeof tempDir>;
const watchers: EndpointWatcher[] = [];

beforeEach(async () => {
  api = await startFakeKubeApi();
  tmp = tempDir();
});

afterEach(async () => {
  for (const w of watchers.splice(0)) await w.stop();
  await api.close();
  tmp.cleanup();
});

function start(options: Partial<EndpointWatcherOptions> = {}): { watcher: EndpointWatcher; log: RecordingLog; changes: string[][] } {
  const log = new RecordingLog();
  const watcher = new EndpointWatcher({ client: clientFor(api, tmp.dir), backoff: FAST.backoff, stableMs: FAST.stableMs, batchMs: 5, log, ...options });
  watchers.push(watcher);
  const changes: string[][] = [];
  watcher.onChange((services) => changes.push([...services].sort()));
  watcher.start();
  return { watcher, log, changes };
}

const slice = (name: string, endpoints: FakeEndpoint[], service = 'iris-default', ns = 'models') => endpointSlice(service, ns, name, endpoints);
const hosts = (eps: readonly { host: string; port: number }[] | undefined) => eps?.map((e) => `${e.host}:${e.port}`);

describe('endpointsOf', () => {
  it('merges the slices of a Service and keeps ready, non-terminating endpoints, by port name or number', async () => {
    api.upsert(
      'endpointslices',
      slice('iris-default-a', [{ ip: '10.0.0.2' }, { ip: '10.0.0.1' }, { ip: '10.0.0.3', ready: false }, { ip: '10.0.0.4', terminating: true }, { ip: '10.0.0.5', ready: null }]),
    );
    api.upsert('endpointslices', slice('iris-default-b', [{ ip: '10.0.1.1' }]));
    api.upsert('endpointslices', slice('other-x', [{ ip: '10.9.9.9' }], 'other'));
    const { watcher } = start();
    await until(() => watcher.state === 'synced', 3000, 'synced');
    // ready unset (unknown) counts as ready, as kube-proxy does.
    expect(hosts(watcher.endpointsOf('iris-default', 'models', 'http'))).toEqual(['10.0.0.1:8000', '10.0.0.2:8000', '10.0.0.5:8000', '10.0.1.1:8000']);
    expect(hosts(watcher.endpointsOf('iris-default', 'models', 'grpc'))).toEqual(['10.0.0.1:5001', '10.0.0.2:5001', '10.0.0.5:5001', '10.0.1.1:5001']);
    expect(hosts(watcher.endpointsOf('iris-default', 'models', 8000))).toEqual(hosts(watcher.endpointsOf('iris-default', 'models', 'http')));
    // Same answer object until the service changes (callers may keep a cursor per array).
    expect(watcher.endpointsOf('iris-default', 'models', 'http')).toBe(watcher.endpointsOf('iris-default', 'models', 'http'));
    expect(hosts(watcher.endpointsOf('other', 'models', 'http'))).toEqual(['10.9.9.9:8000']);
    // Unknown: the caller dials DNS.
    expect(watcher.endpointsOf('nope', 'models', 'http')).toBeUndefined();
    expect(watcher.endpointsOf('iris-default', 'elsewhere', 'http')).toBeUndefined();
    // A port no slice declares cannot be mapped: DNS too.
    expect(watcher.endpointsOf('iris-default', 'models', 9999)).toBeUndefined();
  });

  it('a Service with no pods is known and empty; one whose pods are all unready is known and empty', async () => {
    api.upsert('endpointslices', { ...endpointSlice('empty', 'models', 'empty-a', [], []), ports: null, endpoints: null });
    api.upsert('endpointslices', slice('down-a', [{ ip: '10.0.0.7', ready: false }], 'down'));
    const { watcher } = start();
    await until(() => watcher.state === 'synced');
    expect(watcher.endpointsOf('empty', 'models', 'http')).toEqual([]);
    expect(watcher.endpointsOf('down', 'models', 'http')).toEqual([]);
  });

  it('dual-stack Services are balanced over their IPv4 slice only (no pod twice)', async () => {
    api.upsert('endpointslices', endpointSlice('ds', 'models', 'ds-v4', [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }]));
    api.upsert('endpointslices', endpointSlice('ds', 'models', 'ds-v6', [{ ip: 'fd00::1' }, { ip: 'fd00::2' }], undefined, 'IPv6'));
    api.upsert('endpointslices', endpointSlice('v6', 'models', 'v6-a', [{ ip: 'fd00::9' }], undefined, 'IPv6'));
    const { watcher } = start();
    await until(() => watcher.state === 'synced');
    expect(hosts(watcher.endpointsOf('ds', 'models', 'http'))).toEqual(['10.0.0.1:8000', '10.0.0.2:8000']);
    expect(hosts(watcher.endpointsOf('v6', 'models', 'http'))).toEqual(['fd00::9:8000']);
  });
});

describe('changes', () => {
  it('pod added, turned unready, terminating, removed; slice deleted: reflected at once and notified per service', async () => {
    api.upsert('endpointslices', slice('iris-default-a', [{ ip: '10.0.0.1' }]));
    api.upsert('endpointslices', slice('other-a', [{ ip: '10.0.5.1' }], 'other'));
    const { watcher, changes } = start();
    await until(() => watcher.state === 'synced' && api.openWatches() === 1);
    // The listed slices' own notification, before the changes under test.
    await until(() => changes.length > 0, 2000, 'the list notified');
    changes.length = 0;
    const http = () => hosts(watcher.endpointsOf('iris-default', 'models', 'http'));
    const first = watcher.endpointsOf('iris-default', 'models', 'http');

    api.upsert('endpointslices', slice('iris-default-a', [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }]));
    await until(() => http()?.length === 2, 2000, 'pod added');
    expect(watcher.endpointsOf('iris-default', 'models', 'http')).not.toBe(first);
    await until(() => changes.length > 0, 1000, 'notified');
    expect(changes.flat()).toEqual(['models/iris-default']);

    api.upsert('endpointslices', slice('iris-default-a', [{ ip: '10.0.0.1', ready: false }, { ip: '10.0.0.2' }]));
    await until(() => http()?.join() === '10.0.0.2:8000', 2000, 'not ready excluded');
    api.upsert('endpointslices', slice('iris-default-a', [{ ip: '10.0.0.1' }, { ip: '10.0.0.2', terminating: true }]));
    await until(() => http()?.join() === '10.0.0.1:8000', 2000, 'terminating excluded');
    api.upsert('endpointslices', slice('iris-default-a', []));
    await until(() => http()?.length === 0, 2000, 'no pods');
    api.remove('endpointslices', 'models', 'iris-default-a');
    await until(() => watcher.endpointsOf('iris-default', 'models', 'http') === undefined, 2000, 'service gone');
    expect(hosts(watcher.endpointsOf('other', 'models', 'http'))).toEqual(['10.0.5.1:8000']);
  });

  it('keeps the last known endpoints while the API server is away, and catches up after', async () => {
    api.upsert('endpointslices', slice('iris-default-a', [{ ip: '10.0.0.1' }]));
    const { watcher, log } = start();
    await until(() => watcher.state === 'synced' && api.openWatches() === 1);
    const down = api.down(600);
    await until(() => log.matching(/watch failed/).length > 0, 2000, 'failure logged');
    expect(hosts(watcher.endpointsOf('iris-default', 'models', 'http'))).toEqual(['10.0.0.1:8000']);
    api.upsert('endpointslices', slice('iris-default-a', [{ ip: '10.0.0.1' }, { ip: '10.0.0.9' }]));
    await down;
    await until(() => watcher.endpointsOf('iris-default', 'models', 'http')?.length === 2, 4000, 'caught up');
    expect(log.matching(/reconnected/)).toHaveLength(1);
  });

  it('watches one namespace when scoped (same scope as the SeldonDeployment watch)', async () => {
    api.onlyNamespace = 'models';
    api.upsert('endpointslices', slice('iris-default-a', [{ ip: '10.0.0.1' }]));
    api.upsert('endpointslices', slice('iris-default-a', [{ ip: '10.7.0.1' }], 'iris-default', 'other-ns'));
    const { watcher } = start({ namespace: 'models' });
    await until(() => watcher.state === 'synced' && api.openWatches() === 1);
    expect(hosts(watcher.endpointsOf('iris-default', 'models', 'http'))).toEqual(['10.0.0.1:8000']);
    expect(watcher.endpointsOf('iris-default', 'other-ns', 'http')).toBeUndefined();
    const watch = api.requestsTo('/apis/discovery.k8s.io/v1/namespaces/models/endpointslices', 'watch')[0]!;
    expect(watch.query.labelSelector).toBe('kubernetes.io/service-name');
  });
});

describe('RBAC', () => {
  it('403 on EndpointSlices: forbidden, undefined for every service, logged once across retries; readable later resumes', async () => {
    api.upsert('endpointslices', slice('iris-default-a', [{ ip: '10.0.0.1' }]));
    api.forbidden.add('endpointslices');
    const { watcher, log, changes } = start({ forbiddenRetryMs: 100 });
    await until(() => watcher.forbidden, 3000, 'forbidden');
    expect(watcher.state).toBe('forbidden');
    expect(watcher.endpointsOf('iris-default', 'models', 'http')).toBeUndefined();
    await until(() => api.requestsTo('/endpointslices', 'list').length >= 3, 3000, 'quiet retries');
    expect(log.matching(/forbidden/)).toHaveLength(1);
    expect(log.matching(/forbidden/)[0]!.level).toBe('warn');
    expect(changes).toEqual([]);

    api.forbidden.delete('endpointslices');
    await until(() => watcher.state === 'synced', 3000, 'allowed again');
    expect(hosts(watcher.endpointsOf('iris-default', 'models', 'http'))).toEqual(['10.0.0.1:8000']);
    expect(log.matching(/readable now/)).toHaveLength(1);
  });

  it('permission revoked while running: known endpoints are dropped (DNS fallback) and listeners told', async () => {
    api.upsert('endpointslices', slice('iris-default-a', [{ ip: '10.0.0.1' }]));
    const { watcher, changes } = start({ forbiddenRetryMs: 10_000 });
    await until(() => watcher.state === 'synced' && api.openWatches() === 1);
    // The listed slices' own notification, before the changes under test.
    await until(() => changes.length > 0, 2000, 'the list notified');
    changes.length = 0;
    api.forbidden.add('endpointslices');
    api.dropWatches();
    await until(() => watcher.forbidden, 3000, 'forbidden');
    expect(watcher.endpointsOf('iris-default', 'models', 'http')).toBeUndefined();
    await until(() => changes.length > 0, 1000, 'listeners told');
    expect(changes.flat()).toEqual(['models/iris-default']);
  });
});
