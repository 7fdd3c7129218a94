/**
 * KubeSource: the real @kubernetes/client-node list+watch against the fake API server. Initial
 * sync, every watch event kind, dropped and hung streams resumed from the last resourceVersion,
 * 410 Gone relists that reconcile, an unreachable API server, namespace scope, the v1 → v1alpha2
 * fallback, a missing CRD, credentials, slow lists, and burst coalescing.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeSource, type KubeSourceOptions } from '../../../source/kubernetes/kube-source.js';
import { FAST, RecordingSink, clientFor, seldonDeployment, startFakeKubeApi, tempDir, until, type FakeKubeApi } from '../../fixtures/fake-kube-api.js';

let api: FakeKubeApi;
let tmp: ReturnType<typeof tempDir>;
const sources: KubeSource[] = [];

beforeEach(async () => {
  api = await startFakeKubeApi();
  tmp = tempDir();
});

afterEach(async () => {
  for (const s of sources.splice(0)) await s.stop();
  await api.close();
  tmp.cleanup();
});

async function startSource(options: Partial<KubeSourceOptions> & { token?: string; requestTimeoutMs?: number } = {}): Promise<{ source: KubeSource; sink: RecordingSink }> {
  const { token, requestTimeoutMs, ...rest } = options;
  const source = new KubeSource({ client: clientFor(api, tmp.dir, { ...(token ? { token } : {}), ...(requestTimeoutMs ? { requestTimeoutMs } : {}) }), ...FAST, ...rest });
  sources.push(source);
  const sink = new RecordingSink();
  await source.start(sink);
  return { source, sink };
}

/** Where the source's watch resumes: its informer's resourceVersion (@kubernetes/client-node keeps it; nothing else shows it). */
const resumesFrom = (source: KubeSource): string | undefined => (source as unknown as { loop?: { informer: { latestResourceVersion(): string } } }).loop?.informer.latestResourceVersion();

/** The resourceVersion of what the sink last got for `key` (the source passes the object as the API sent it). */
const resourceVersionOf = (sink: RecordingSink, key: string): string | undefined => (sink.state.get(key) as { metadata?: { resourceVersion?: string } } | undefined)?.metadata?.resourceVersion;

const sdep = (name: string, ns: string, traffic = 100) => seldonDeployment(name, ns, { predictors: [{ name: 'default', traffic, graph: { name: 'model', type: 'MODEL' } }] });

describe('initial sync', () => {
  it('lists v1 cluster-wide, delivers everything in one batch, then says synced, then watches from the list resourceVersion', async () => {
    api.upsert('seldondeployments', sdep('iris', 'models'));
    api.upsert('seldondeployments', sdep('income', 'seldon'));
    const listRv = api.resourceVersion;
    const { source, sink } = await startSource();
    await until(() => sink.synced, 5000, 'synced');
    expect([...sink.state.keys()].sort()).toEqual(['models/iris', 'seldon/income']);
    expect(sink.calls.slice(0, 3)).toEqual(['connected:true', 'events', 'synced']);
    expect(sink.batches[0]).toHaveLength(2);
    expect(source.apiVersion).toBe('machinelearning.seldon.io/v1');
    await until(() => api.openWatches('seldondeployments') === 1, 2000, 'watch open');
    const watch = api.requestsTo('/apis/machinelearning.seldon.io/v1/seldondeployments', 'watch')[0]!;
    expect(watch.query.resourceVersion).toBe(String(listRv));
    expect(watch.query.allowWatchBookmarks).toBe('true');
    expect(Number(watch.query.timeoutSeconds)).toBeGreaterThan(0);
    // v1 only: never a second version, or every object would be seen twice.
    expect(api.requests.some((r) => r.path.includes('/v1alpha2/seldondeployments'))).toBe(false);
    expect(source.objectRef('models', 'iris').uid).toMatch(/^uid-/);
  });

  it('an empty cluster still syncs (with one empty batch)', async () => {
    const { sink } = await startSource();
    await until(() => sink.synced, 5000, 'synced');
    expect(sink.batches).toEqual([[]]);
  });
});

describe('watch events', () => {
  it('ADDED, MODIFIED and DELETED become upsert/upsert/delete; BOOKMARK moves the resume point silently', async () => {
    const { source, sink } = await startSource();
    await until(() => sink.synced && api.openWatches() === 1);
    api.upsert('seldondeployments', sdep('a', 'ns1', 100));
    await until(() => sink.state.has('ns1/a'), 2000, 'ADDED');
    api.upsert('seldondeployments', sdep('a', 'ns1', 40));
    await until(() => sink.traffic('ns1/a') === 40, 2000, 'MODIFIED');
    api.remove('seldondeployments', 'ns1', 'a');
    await until(() => !sink.state.has('ns1/a'), 2000, 'DELETED');
    expect(sink.eventsFor('ns1/a').map((e) => e.type)).toEqual(['upsert', 'upsert', 'delete']);

    // Unrelated writes elsewhere move the resourceVersion; a BOOKMARK hands it to the client.
    api.upsert('endpointslices', { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'x', namespace: 'ns1', labels: {} } });
    const batchesBefore = sink.batches.length;
    api.bookmark();
    const bookmarkRv = String(api.resourceVersion);
    await until(() => resumesFrom(source) === bookmarkRv, 3000, 'the bookmark read');
    expect(sink.batches.length).toBe(batchesBefore);
    api.dropWatches();
    await until(() => api.requestsTo('/seldondeployments', 'watch').length === 2, 3000, 're-watch');
    expect(api.requestsTo('/seldondeployments', 'watch')[1]!.query.resourceVersion).toBe(bookmarkRv);
  });
});

describe('resilience', () => {
  it('a dropped stream is resumed from the last resourceVersion: changes made meanwhile arrive, no relist, nothing twice', async () => {
    api.upsert('seldondeployments', sdep('a', 'ns1'));
    const { sink } = await startSource();
    await until(() => sink.synced && api.openWatches() === 1);
    api.upsert('seldondeployments', sdep('b', 'ns1'));
    await until(() => sink.state.has('ns1/b'));
    const lastSeen = api.resourceVersion;
    api.dropWatches();
    api.upsert('seldondeployments', sdep('c', 'ns1'));
    api.remove('seldondeployments', 'ns1', 'a');
    await until(() => sink.state.has('ns1/c') && !sink.state.has('ns1/a'), 3000, 'changes made while away');
    const watches = api.requestsTo('/seldondeployments', 'watch');
    expect(watches[1]!.query.resourceVersion).toBe(String(lastSeen));
    expect(api.requestsTo('/seldondeployments', 'list')).toHaveLength(1);
    expect(sink.eventsFor('ns1/b')).toHaveLength(1);
    expect(sink.eventsFor('ns1/c')).toHaveLength(1);
    expect(sink.resyncs).toBe(0);
  });

  it('a stream the server ends cleanly (timeoutSeconds) is re-opened from its resourceVersion', async () => {
    const { sink } = await startSource();
    await until(() => sink.synced && api.openWatches() === 1);
    api.upsert('seldondeployments', sdep('a', 'ns1'));
    await until(() => sink.state.has('ns1/a'));
    const rv = String(api.resourceVersion);
    api.endWatches();
    await until(() => api.openWatches() === 1 && api.requestsTo('/seldondeployments', 'watch').length === 2, 3000, 're-watch');
    expect(api.requestsTo('/seldondeployments', 'watch')[1]!.query.resourceVersion).toBe(rv);
    api.upsert('seldondeployments', sdep('b', 'ns1'));
    await until(() => sink.state.has('ns1/b'));
  });

  it('a hung watch (server ignores timeoutSeconds) is aborted by the client and re-opened', async () => {
    api.honourWatchTimeout = false;
    const { sink } = await startSource({ watchTimeoutSeconds: 1, watchStallMs: 400 });
    await until(() => sink.synced && api.openWatches() === 1);
    await until(() => api.requestsTo('/seldondeployments', 'watch').length >= 2, 3000, 'stalled watch replaced');
    api.upsert('seldondeployments', sdep('late', 'ns1'));
    await until(() => sink.state.has('ns1/late'), 3000, 'event after the stall');
    expect(api.requestsTo('/seldondeployments', 'list')).toHaveLength(1);
  });

  for (const mode of ['event', 'http'] as const) {
    it(`410 Gone (${mode === 'event' ? 'ERROR event in the stream' : 'HTTP 410'}) relists and reconciles: deletions seen while away applied, unchanged objects not re-emitted`, async () => {
      api.goneMode = mode;
      for (const n of ['a', 'b', 'c']) api.upsert('seldondeployments', sdep(n, 'ns1', 100));
      const { sink } = await startSource();
      await until(() => sink.synced && api.openWatches() === 1);
      // While the client is away: b is deleted, c changes, d appears, and the history is compacted.
      api.dropWatches();
      api.remove('seldondeployments', 'ns1', 'b');
      api.upsert('seldondeployments', sdep('c', 'ns1', 30));
      api.upsert('seldondeployments', sdep('d', 'ns1'));
      api.compact();
      await until(() => sink.resyncs === 1, 4000, 'relist');
      expect([...sink.state.keys()].sort()).toEqual(['ns1/a', 'ns1/c', 'ns1/d']);
      expect(sink.traffic('ns1/c')).toBe(30);
      expect(sink.eventsFor('ns1/a')).toHaveLength(1); // only the initial upsert
      expect(sink.eventsFor('ns1/b').map((e) => e.type)).toEqual(['upsert', 'delete']);
      expect(api.requestsTo('/seldondeployments', 'list')).toHaveLength(2);
      // The relist's differences come as one batch, before the resync signal.
      expect(sink.calls.slice(-2)).toEqual(['events', 'resync']);
      await until(() => api.openWatches() === 1, 2000, 'watching again');
      api.upsert('seldondeployments', sdep('e', 'ns1'));
      await until(() => sink.state.has('ns1/e'));
    });
  }

  it('an ERROR 410 on an open stream (compaction) also relists', async () => {
    api.upsert('seldondeployments', sdep('a', 'ns1'));
    const { sink } = await startSource();
    await until(() => sink.synced && api.openWatches() === 1);
    api.expireWatches();
    await until(() => sink.resyncs === 1, 3000, 'relist');
    expect(sink.eventsFor('ns1/a')).toHaveLength(1);
  });

  it('API server down: disconnection reported once, nothing emitted, then reconnect and catch up', async () => {
    api.upsert('seldondeployments', sdep('a', 'ns1'));
    const { sink } = await startSource();
    await until(() => sink.synced && api.openWatches() === 1);
    const batches = sink.batches.length;
    const down = api.down(1500);
    await until(() => sink.connected === false, 2000, 'disconnected');
    expect(sink.problem).toMatch(/ECONNREFUSED|socket|closed|premature/i);
    expect(sink.problem).toContain('keep serving');
    // Changes while the listener is closed land in the server's history.
    api.upsert('seldondeployments', sdep('b', 'ns1'));
    await down;
    await until(() => sink.connected === true, 5000, 'reconnected');
    await until(() => sink.state.has('ns1/b'), 3000, 'caught up');
    expect(sink.problem).toBeNull();
    expect(
      sink.batches
        .slice(batches)
        .flat()
        .map((e) => e.key),
    ).toEqual(['ns1/b']);
    expect(sink.calls.filter((c) => c === 'connected:false')).toHaveLength(1);
    expect(sink.calls.filter((c) => c === 'synced')).toHaveLength(1);
  });
});

describe('scope and versions', () => {
  it('namespace mode lists and watches one namespace (a Role suffices)', async () => {
    api.onlyNamespace = 'team-a';
    api.upsert('seldondeployments', sdep('mine', 'team-a'));
    api.upsert('seldondeployments', sdep('theirs', 'team-b'));
    const { sink } = await startSource({ namespace: 'team-a' });
    await until(() => sink.synced && api.openWatches() === 1);
    expect([...sink.state.keys()]).toEqual(['team-a/mine']);
    expect(api.requestsTo('/apis/machinelearning.seldon.io/v1/namespaces/team-a/seldondeployments', 'watch')).toHaveLength(1);
    api.upsert('seldondeployments', sdep('other', 'team-b'));
    api.upsert('seldondeployments', sdep('new', 'team-a'));
    await until(() => sink.state.has('team-a/new'));
    expect(sink.state.has('team-b/other')).toBe(false);
  });

  it('cluster-wide without a ClusterRole: 403 reported with the RBAC hint, not synced', async () => {
    api.onlyNamespace = 'team-a';
    const { sink } = await startSource();
    await until(() => typeof sink.problem === 'string', 3000, 'problem');
    expect(sink.problem).toContain('HTTP 403');
    expect(sink.problem).toContain('ClusterRole');
    expect(sink.synced).toBe(false);
  });

  it('falls back to v1alpha2 when v1 is not served (Seldon 0.x), and never watches both', async () => {
    api.seldonVersions = ['v1alpha2'];
    api.upsert('seldondeployments', sdep('old', 'seldon'));
    const { source, sink } = await startSource();
    await until(() => sink.synced && api.openWatches() === 1);
    expect(source.apiVersion).toBe('machinelearning.seldon.io/v1alpha2');
    expect(sink.state.get('seldon/old')?.apiVersion).toBe('machinelearning.seldon.io/v1alpha2');
    expect(api.requestsTo('/apis/machinelearning.seldon.io/v1alpha2/seldondeployments', 'watch')).toHaveLength(1);
    expect(api.requests.some((r) => r.path === '/apis/machinelearning.seldon.io/v1/seldondeployments')).toBe(false);
    expect(api.requests.filter((r) => r.path === '/apis/machinelearning.seldon.io/v1').map((r) => r.status)).toEqual([404]);
  });

  it('a missing CRD keeps the source unsynced and retrying; installing it later syncs', async () => {
    api.seldonVersions = [];
    const { sink } = await startSource();
    await until(() => typeof sink.problem === 'string', 3000, 'problem');
    expect(sink.problem).toMatch(/CRD installed/);
    // Retried quietly: the problem is reported once, not re-raised on every attempt.
    await until(() => api.requests.filter((r) => r.path === '/apis/machinelearning.seldon.io/v1').length > 1, 3000, 'retried');
    expect(sink.synced).toBe(false);
    expect(sink.calls.filter((c) => c.startsWith('problem'))).toEqual(['problem']);
    api.seldonVersions = ['v1'];
    api.upsert('seldondeployments', sdep('a', 'ns1'));
    await until(() => sink.synced, 3000, 'synced after install');
    expect(sink.state.has('ns1/a')).toBe(true);
    expect(sink.problem).toBeNull();
  });
});

describe('requests', () => {
  it('wrong credentials: 401 reported, not synced', async () => {
    const { sink } = await startSource({ token: 'wrong' });
    await until(() => typeof sink.problem === 'string', 3000, 'problem');
    expect(sink.problem).toContain('HTTP 401');
    expect(sink.problem).toContain('credentials');
    expect(sink.synced).toBe(false);
  });

  it('a slow list is waited for; a list slower than the request timeout is retried', async () => {
    api.upsert('seldondeployments', sdep('a', 'ns1'));
    api.listDelayMs = 800;
    const { sink } = await startSource({ requestTimeoutMs: 300 });
    await until(() => typeof sink.problem === 'string', 3000, 'timeout reported');
    expect(sink.synced).toBe(false);
    api.listDelayMs = 150;
    await until(() => sink.synced, 5000, 'synced after the API speeds up');
    expect(sink.state.has('ns1/a')).toBe(true);
  });
});

describe('coalescing', () => {
  it('1,000 MODIFIED events in a burst become a handful of batches with the final state', async () => {
    api.upsert('seldondeployments', sdep('hot', 'ns1', 0));
    const { sink } = await startSource({ batchMs: 50 });
    await until(() => sink.synced && api.openWatches() === 1);
    const before = sink.batches.length;
    let last = '';
    for (let i = 1; i <= 1000; i++) last = api.upsert('seldondeployments', sdep('hot', 'ns1', i % 101)).metadata.resourceVersion!;
    // The last write delivered (its resourceVersion: the same traffic recurs earlier in the burst).
    await until(() => resourceVersionOf(sink, 'ns1/hot') === last, 5000, 'final state');
    expect(sink.traffic('ns1/hot')).toBe(1000 % 101);
    const batches = sink.batches.length - before;
    expect(batches).toBeGreaterThanOrEqual(1);
    expect(batches).toBeLessThan(20);
    // Within a batch one object appears once.
    for (const b of sink.batches.slice(before)) expect(b).toHaveLength(1);
  });
});
