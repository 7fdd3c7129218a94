/**
 * The install manifests in deploy/kustomize: every YAML parses, every kustomization points at files
 * that exist, and the fields that matter are there and agree with the gateway's own defaults (ports,
 * probes on the admin port, security, least-privilege RBAC); and every kustomization renders with
 * the real kustomize (`kubectl kustomize`) into what a user would apply.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../gateway/config.js';

const root = fileURLToPath(new URL('../deploy/kustomize', import.meta.url));
// Parsed YAML trees, walked freely (test code, not a hot path).
type Obj = Record<string, any>;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) return yamlFiles(full);
    return /\.ya?ml$/.test(name) ? [full] : [];
  });
}

function docs(file: string): Obj[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((d) => {
    expect(d.errors, `${relative(root, file)}: ${d.errors.map((e) => e.message).join('; ')}`).toEqual([]);
    return d.toJS() as Obj;
  });
}

/** Every object a kustomization pulls in (resources, recursively), without applying patches. */
function resources(dir: string): Obj[] {
  const k = docs(join(dir, 'kustomization.yaml'))[0]!;
  return (k.resources as string[]).flatMap((r) => {
    const p = join(dir, r);
    return statSync(p).isDirectory() ? resources(p) : docs(p);
  });
}

const find = (objs: Obj[], kind: string): Obj => {
  const o = objs.find((x) => x.kind === kind);
  expect(o, `${kind} present`).toBeDefined();
  return o!;
};

const defaults = parseConfig('serve', [], {});
const base = resources(join(root, 'base'));
const overlayDir = join(root, 'overlays/single-namespace');
const overlay = docs(join(overlayDir, 'kustomization.yaml'))[0]!;
const EXPECTED_RULES = [
  { apiGroups: ['machinelearning.seldon.io'], resources: ['seldondeployments'], verbs: ['list', 'watch'] },
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
];

describe('deploy/kustomize', () => {
  it('every YAML parses, and every kustomization names files that exist', () => {
    const files = yamlFiles(root);
    expect(files.length).toBeGreaterThanOrEqual(10);
    for (const f of files) docs(f);
    const kustomizations = files.filter((f) => f.endsWith('kustomization.yaml'));
    expect(kustomizations.map((f) => relative(root, f)).sort()).toEqual(['base/kustomization.yaml', 'kustomization.yaml', 'overlays/single-namespace/kustomization.yaml']);
    for (const k of kustomizations) {
      const spec = docs(k)[0]!;
      expect(spec.kind).toBe('Kustomization');
      for (const r of spec.resources as string[]) {
        const p = join(dirname(k), r);
        expect(existsSync(p), `${relative(root, k)}: resource ${r}`).toBe(true);
        if (statSync(p).isDirectory()) expect(existsSync(join(p, 'kustomization.yaml')), `${r} is a kustomization`).toBe(true);
        // kustomize refuses a base that contains the overlay that uses it (a cycle).
        expect(dirname(k).startsWith(p + '/'), `${relative(root, k)} must not sit inside its base ${r}`).toBe(false);
      }
      for (const patch of (spec.patches ?? []) as { path?: string; patch?: string }[]) {
        if (patch.path) expect(existsSync(join(dirname(k), patch.path)), `patch ${patch.path}`).toBe(true);
        if (patch.patch) expect(parseAllDocuments(patch.patch).every((d) => d.errors.length === 0)).toBe(true);
      }
    }
  });

  it('the Deployment: 2 replicas, non-root, read-only root filesystem, probes on the admin port, resources, --kubernetes', () => {
    const deployment = find(base, 'Deployment');
    expect(deployment.spec.replicas).toBe(2);
    const pod = deployment.spec.template.spec;
    expect(pod.serviceAccountName).toBe(find(base, 'ServiceAccount').metadata.name);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    const [c] = pod.containers as Obj[];
    expect(c!.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(c!.args).toEqual(['serve', '--kubernetes']);
    expect(c!.resources.requests.cpu).toBeDefined();
    expect(c!.resources.requests.memory).toBeDefined();
    const portNumber = (p: string | number): number => (typeof p === 'number' ? p : (c!.ports as Obj[]).find((x) => x.name === p)!.containerPort);
    expect(portNumber('http')).toBe(defaults.listen.port);
    expect(c!.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c!.readinessProbe.httpGet.path).toBe('/readyz');
    expect(portNumber(c!.livenessProbe.httpGet.port)).toBe(defaults.listen.adminPort);
    expect(portNumber(c!.readinessProbe.httpGet.port)).toBe(defaults.listen.adminPort);
    // The base is cluster-wide: no single-namespace settings.
    expect((c!.env as Obj[]).map((e) => e.name)).not.toContain('AMBASSADOR_SINGLE_NAMESPACE');
    // The image name is the one the kustomization's `images` rewrites.
    const k = docs(join(root, 'base/kustomization.yaml'))[0]!;
    expect((k.images as Obj[]).map((i) => i.name)).toContain(c!.image);
  });

  it('the Service exposes 80 → the public port for REST and gRPC (http and grpc with appProtocol), never the admin port', () => {
    const service = find(base, 'Service');
    const deployment = find(base, 'Deployment');
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
    const ports = service.spec.ports as Obj[];
    const http = ports.find((p) => p.name === 'http')!;
    const grpc = ports.find((p) => p.name === 'grpc')!;
    expect(http).toMatchObject({ port: 80, targetPort: 'http', appProtocol: 'http' });
    expect(grpc.targetPort).toBe('http');
    expect(grpc.appProtocol).toBe('kubernetes.io/h2c');
    expect(ports.some((p) => p.targetPort === 'admin' || p.targetPort === defaults.listen.adminPort)).toBe(false);
  });

  it('the PodDisruptionBudget keeps one pod and selects the gateway', () => {
    const pdb = find(base, 'PodDisruptionBudget');
    expect(pdb.apiVersion).toBe('policy/v1');
    expect(pdb.spec.minAvailable).toBe(1);
    expect(pdb.spec.selector.matchLabels).toEqual(find(base, 'Deployment').spec.template.metadata.labels);
  });

  it('cluster-wide RBAC is least privilege and bound to the gateway ServiceAccount', () => {
    const role = find(base, 'ClusterRole');
    expect(role.rules).toEqual(EXPECTED_RULES);
    const binding = find(base, 'ClusterRoleBinding');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name });
    const namespace = docs(join(root, 'base/kustomization.yaml'))[0]!.namespace;
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: find(base, 'ServiceAccount').metadata.name, namespace }]);
  });

  it('the single-namespace overlay swaps the ClusterRole for a Role and sets AMBASSADOR_SINGLE_NAMESPACE and AMBASSADOR_NAMESPACE (downward API)', () => {
    const added = docs(join(overlayDir, 'rbac.yaml'));
    const role = find(added, 'Role');
    expect(role.rules).toEqual(EXPECTED_RULES);
    const binding = find(added, 'RoleBinding');
    expect(binding.roleRef).toMatchObject({ kind: 'Role', name: role.metadata.name });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'seldon-gateway', namespace: overlay.namespace }]);
    const deleted = (overlay.patches as { patch?: string }[]).flatMap((p) => (p.patch ? docs2(p.patch) : [])).filter((d) => d.$patch === 'delete').map((d) => d.kind);
    expect(deleted.sort()).toEqual(['ClusterRole', 'ClusterRoleBinding']);
    const envPatch = docs(join(overlayDir, 'deployment-env.yaml'))[0]!;
    const env = envPatch.spec.template.spec.containers[0].env as Obj[];
    expect(envPatch.spec.template.spec.containers[0].name).toBe(find(base, 'Deployment').spec.template.spec.containers[0].name);
    expect(env).toContainEqual({ name: 'AMBASSADOR_SINGLE_NAMESPACE', value: 'true' });
    expect(env).toContainEqual({ name: 'AMBASSADOR_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } });
    // Those settings mean what the gateway says they mean: one namespace, watched with a Role.
    const config = parseConfig('serve', [], { AMBASSADOR_SINGLE_NAMESPACE: 'true', AMBASSADOR_NAMESPACE: 'seldon' });
    expect(config.source.watchNamespace).toBe('seldon');
    expect(config.compile.singleNamespace).toBe(true);
  });
});

function docs2(text: string): Obj[] {
  return parseAllDocuments(text).map((d) => d.toJS() as Obj);
}

describe('kubectl kustomize renders every kustomization', () => {
  const render = (dir: string): Obj[] => {
    const r = spawnSync('kubectl', ['kustomize', join(root, dir)], { encoding: 'utf8' });
    if (r.error) throw new Error(`kubectl is needed for this test (kubectl kustomize): ${r.error.message}`);
    expect(r.status, r.stderr).toBe(0);
    return docs2(r.stdout).filter((o) => o !== null);
  };
  const kinds = (objs: Obj[]): string[] => objs.map((o) => o.kind as string).sort();
  const dirs = yamlFiles(root)
    .filter((f) => f.endsWith('kustomization.yaml'))
    .map((f) => relative(root, dirname(f)) || '.');

  it('finds the three kustomizations (root, base, single-namespace overlay)', () => {
    expect(dirs.sort()).toEqual(['.', 'base', 'overlays/single-namespace']);
  });

  it.each(dirs)('%s renders, and every object has a kind, a name and (except cluster-scoped ones) a namespace', (dir) => {
    const objs = render(dir);
    expect(objs.length).toBeGreaterThanOrEqual(6);
    for (const o of objs) {
      expect(typeof o.kind, JSON.stringify(o).slice(0, 200)).toBe('string');
      expect(typeof o.metadata?.name).toBe('string');
      if (!['ClusterRole', 'ClusterRoleBinding'].includes(o.kind as string) && dir !== 'base') expect(typeof o.metadata?.namespace, `${o.kind} ${o.metadata?.name}`).toBe('string');
    }
  });

  it('cluster-wide: a ClusterRole and its binding, all into seldon-system', () => {
    const objs = render('.');
    expect(kinds(objs)).toEqual(['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'PodDisruptionBudget', 'Service', 'ServiceAccount']);
    for (const o of objs) if (o.metadata.namespace !== undefined) expect(o.metadata.namespace).toBe('seldon-system');
    const binding = find(objs, 'ClusterRoleBinding');
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: find(objs, 'ServiceAccount').metadata.name, namespace: 'seldon-system' }]);
  });

  it('single-namespace: a Role instead, everything in one namespace, and the Ambassador env set', () => {
    const objs = render('overlays/single-namespace');
    expect(kinds(objs)).toEqual(['Deployment', 'PodDisruptionBudget', 'Role', 'RoleBinding', 'Service', 'ServiceAccount']);
    const ns = find(objs, 'Deployment').metadata.namespace as string;
    for (const o of objs) expect(o.metadata.namespace).toBe(ns);
    const env = (find(objs, 'Deployment').spec.template.spec.containers[0].env ?? []) as { name: string; value?: string; valueFrom?: Obj }[];
    expect(env.find((e) => e.name === 'AMBASSADOR_SINGLE_NAMESPACE')?.value).toBe('true');
    expect(env.find((e) => e.name === 'AMBASSADOR_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace');
  });
});
