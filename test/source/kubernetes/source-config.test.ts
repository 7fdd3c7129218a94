/**
 * Choosing and configuring the Kubernetes source: flags and environment (--kubernetes,
 * --kubeconfig / KUBECONFIG, --endpoint-routing, the watch scope from --namespace and
 * AMBASSADOR_SINGLE_NAMESPACE), where credentials are found, and `sourceFor`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { UsageError } from '../../../gateway/config/values.js';
import { sourceFor, sourceName } from '../../../gateway/process/sources.js';
import { findClusterAccess, serviceAccountNamespace } from '../../../source/kubernetes/cluster-access.js';
import { loadKubeConfig } from '../../../source/kubernetes/kube-client.js';
import { KubeSource } from '../../../source/kubernetes/kube-source.js';
import { LazyKubeSource } from '../../../source/kubernetes/kubernetes.js';
import { ManifestSource } from '../../../source/manifest-source.js';
import { startFakeKubeApi, tempDir, writeKubeconfig, type FakeKubeApi } from '../../fixtures/fake-kube-api.js';

let tmp: ReturnType<typeof tempDir>;
let api: FakeKubeApi;

beforeEach(async () => {
  tmp = tempDir();
  api = await startFakeKubeApi();
});
afterEach(async () => {
  vi.unstubAllEnvs();
  await api.close();
  tmp.cleanup();
});

const serve = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseConfig('serve', argv, env);

describe('options', () => {
  it('--kubeconfig and KUBECONFIG (the flag wins); --kubernetes; --manifests excludes --kubernetes', () => {
    expect(serve(['--kubernetes', '--kubeconfig', '/a']).source.kubeconfig).toBe('/a');
    expect(serve([], { KUBECONFIG: '/b:/c' }).source.kubeconfig).toBe('/b:/c');
    expect(serve(['--kubeconfig', '/a'], { KUBECONFIG: '/b' }).source.kubeconfig).toBe('/a');
    expect(serve(['--kubernetes']).source.kubernetes).toBe(true);
    expect(serve([], { SELDON_GATEWAY_KUBERNETES: 'true' }).source.kubernetes).toBe(true);
    expect(() => serve(['--kubernetes', '--manifests', 'x'])).toThrow(UsageError);
  });

  it('watch scope: cluster-wide by default; one namespace in single-namespace mode or with the --namespace flag', () => {
    expect(serve([]).source.watchNamespace).toBeUndefined();
    expect(serve(['--namespace', 'team-a']).source.watchNamespace).toBe('team-a');
    expect(serve(['--single-namespace', '--namespace', 'team-a']).source.watchNamespace).toBe('team-a');
    expect(serve([], { AMBASSADOR_SINGLE_NAMESPACE: 'true', AMBASSADOR_NAMESPACE: 'team-b' }).source.watchNamespace).toBe('team-b');
    // Ambassador installs always set AMBASSADOR_NAMESPACE (its own namespace): alone it is no scope.
    expect(serve([], { AMBASSADOR_NAMESPACE: 'team-b' }).source.watchNamespace).toBeUndefined();
    expect(serve([], { AMBASSADOR_SINGLE_NAMESPACE: 'true' }).source.watchNamespace).toBe('default');
  });

  it('--endpoint-routing: auto by default, off turns it off, anything else is a usage error', () => {
    expect(serve([]).source.endpointRouting).toBe(true);
    expect(serve(['--endpoint-routing', 'off']).source.endpointRouting).toBe(false);
    expect(serve([], { SELDON_GATEWAY_ENDPOINT_ROUTING: 'off' }).source.endpointRouting).toBe(false);
    expect(() => serve(['--endpoint-routing', 'sometimes'])).toThrow(UsageError);
  });
});

describe('credentials', () => {
  it('kubectl order: the given list, then ~/.kube/config, then the in-cluster service account', () => {
    const sa = join(tmp.dir, 'sa');
    mkdirSync(sa);
    writeFileSync(join(sa, 'token'), 'x');
    writeFileSync(join(sa, 'namespace'), 'gateway-ns\n');
    const home = join(tmp.dir, 'home');
    const inCluster = { HOME: home, KUBERNETES_SERVICE_HOST: '10.0.0.1' };
    expect(findClusterAccess({ environment: { HOME: home }, serviceAccountDir: sa })).toBeUndefined();
    expect(findClusterAccess({ environment: inCluster, serviceAccountDir: sa })).toEqual({ kind: 'in-cluster', serviceAccountDir: sa });
    mkdirSync(join(home, '.kube'), { recursive: true });
    writeFileSync(join(home, '.kube', 'config'), '');
    expect(findClusterAccess({ environment: inCluster, serviceAccountDir: sa })).toEqual({ kind: 'kubeconfig', files: [join(home, '.kube', 'config')] });
    expect(findClusterAccess({ kubeconfig: '/x:/y', environment: inCluster, serviceAccountDir: sa })).toEqual({ kind: 'kubeconfig', files: ['/x', '/y'] });
    expect(serviceAccountNamespace(inCluster, sa)).toBe('gateway-ns');
    expect(serviceAccountNamespace({}, sa)).toBeUndefined();
  });

  it('in-cluster credentials: the API server from KUBERNETES_SERVICE_HOST/PORT, the token file of the service account', () => {
    const root = tmp.dir;
    const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'x');
    writeFileSync(join(sa, 'ca.crt'), '');
    writeFileSync(join(sa, 'namespace'), 'gw');
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '10.96.0.1');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', '443');
    const kc = loadKubeConfig({ kind: 'in-cluster', serviceAccountDir: sa });
    expect(kc.getCurrentCluster()?.server).toBe('https://10.96.0.1:443');
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe('gw');
  });

  it('a kubeconfig list is merged; a broken file is named in the error', () => {
    const file = writeKubeconfig(tmp.dir, api);
    const extra = join(tmp.dir, 'extra.yaml');
    writeFileSync(extra, 'apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n');
    const kc = loadKubeConfig({ kind: 'kubeconfig', files: [file, extra] });
    expect(kc.getCurrentCluster()?.server).toBe(api.url);
    const broken = join(tmp.dir, 'broken.yaml');
    writeFileSync(broken, 'clusters: [');
    expect(() => loadKubeConfig({ kind: 'kubeconfig', files: [broken] })).toThrow(/broken\.yaml/);
  });
});

describe('sourceFor', () => {
  it('manifests when given; else Kubernetes when a kubeconfig is found (no flag needed); else a clear error', async () => {
    const file = writeKubeconfig(tmp.dir, api);
    expect(sourceFor(serve(['--manifests', tmp.dir]).source)).toBeInstanceOf(ManifestSource);
    expect(sourceName(serve(['--manifests', tmp.dir]).source)).toBe('manifests');
    const viaEnv = serve([], { KUBECONFIG: file }).source;
    const source = sourceFor(viaEnv, { environment: { HOME: join(tmp.dir, 'nohome') } });
    expect(source).toBeInstanceOf(LazyKubeSource);
    expect(sourceName(viaEnv)).toBe('kubernetes');
    const kube = await (source as LazyKubeSource).load();
    expect(kube).toBeInstanceOf(KubeSource);
    expect(kube.namespace).toBeUndefined();
    expect(kube.client.server).toBe(api.url);
    const scoped = sourceFor(serve(['--kubeconfig', file, '--namespace', 'team-a']).source, { environment: {} });
    expect((await (scoped as LazyKubeSource).load()).namespace).toBe('team-a');
    // A kubeconfig that does not parse fails the start, naming the file.
    const broken = join(tmp.dir, 'broken.yaml');
    writeFileSync(broken, 'clusters: [');
    await expect(sourceFor(serve(['--kubeconfig', broken]).source, { environment: {} }).start({ onEvents() {}, onSynced() {}, onProblem() {} })).rejects.toThrow(/broken\.yaml/);
    expect(() => sourceFor(serve([]).source, { environment: { HOME: join(tmp.dir, 'nohome') } })).toThrow(/--manifests .*--kubernetes/);
    expect(() => sourceFor(serve(['--kubernetes']).source, { environment: { HOME: join(tmp.dir, 'nohome') } })).toThrow(/--kubernetes: no kubeconfig/);
  });
});
