/**
 * The install manifests in deploy/kustomize: every YAML parses, every kustomization points at files
 * that exist, and the fields that matter are there and agree with the gateway's own defaults (ports,
 * probes on the admin port, security, least-privilege RBAC); and every kustomization renders with
 * the real kustomize (`kubectl kustomize`) into what a user would apply. The components
 * (deploy/kustomize/components) render mixed into the base, and what they add refers to what
 * exists: Service and monitor ports to named container ports, selectors to the pod labels, alert
 * rules and the dashboard to metrics the gateway registers (parsed as PromQL).
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { OPTIONS } from '../../gateway/config/options.js';
import { parseConfig } from '../../gateway/config/parse.js';
import { parseJwtProviders } from '../../gateway/config/jwt.js';
import { parseAmbassadorModule } from '../../routing/emissary/module.js';
import { baseWith, kustomize, type Obj } from '../helpers/kustomize.js';
import { gatewaySeries, promqlUses } from '../helpers/promql.js';

const root = fileURLToPath(new URL('../../deploy/kustomize', import.meta.url));

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
/** Kinds without a namespace of their own. */
const CLUSTER_SCOPED = ['ClusterRole', 'ClusterRoleBinding', 'Namespace'];
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
    expect(kustomizations.map((f) => relative(root, f))).toEqual(expect.arrayContaining(['base/kustomization.yaml', 'kustomization.yaml', 'overlays/single-namespace/kustomization.yaml']));
    for (const k of kustomizations) {
      const spec = docs(k)[0]!;
      // Components (components/*) are mixed into overlays; everything else is a Kustomization.
      expect(spec.kind).toBe(relative(root, k).startsWith('components/') ? 'Component' : 'Kustomization');
      for (const c of (spec.components ?? []) as string[]) expect(existsSync(join(dirname(k), c, 'kustomization.yaml')), `${relative(root, k)}: component ${c}`).toBe(true);
      for (const r of (spec.resources ?? []) as string[]) {
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
    const deleted = (overlay.patches as { patch?: string }[])
      .flatMap((p) => (p.patch ? docs2(p.patch) : []))
      .filter((d) => d.$patch === 'delete')
      .map((d) => d.kind);
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
  const render = (dir: string): Obj[] => kustomize(join(root, dir));
  const kinds = (objs: Obj[]): string[] => objs.map((o) => o.kind as string).sort();
  // Kustomizations only: components are rendered mixed into the base (below).
  const dirs = yamlFiles(root)
    .filter((f) => f.endsWith('kustomization.yaml') && docs(f)[0]!.kind === 'Kustomization')
    .map((f) => relative(root, dirname(f)) || '.');

  it('finds the kustomizations (root, base, the single-namespace and production overlays)', () => {
    expect(dirs).toEqual(expect.arrayContaining(['.', 'base', 'overlays/single-namespace', 'overlays/production']));
  });

  it.each(dirs)('%s renders, and every object has a kind, a name and (except cluster-scoped ones) a namespace', (dir) => {
    const objs = render(dir);
    expect(objs.length).toBeGreaterThanOrEqual(6);
    for (const o of objs) {
      expect(typeof o.kind, JSON.stringify(o).slice(0, 200)).toBe('string');
      expect(typeof o.metadata?.name).toBe('string');
      if (!CLUSTER_SCOPED.includes(o.kind as string) && dir !== 'base') expect(typeof o.metadata?.namespace, `${o.kind} ${o.metadata?.name}`).toBe('string');
    }
  });

  it('cluster-wide: a ClusterRole and its binding, all into seldon-system, which it creates', () => {
    const objs = render('.');
    expect(kinds(objs)).toEqual(['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'Namespace', 'PodDisruptionBudget', 'Service', 'ServiceAccount']);
    for (const o of objs) if (o.metadata.namespace !== undefined) expect(o.metadata.namespace).toBe('seldon-system');
    expect(find(objs, 'Namespace').metadata.name).toBe('seldon-system');
    const binding = find(objs, 'ClusterRoleBinding');
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: find(objs, 'ServiceAccount').metadata.name, namespace: 'seldon-system' }]);
  });

  it('single-namespace: a Role instead, everything in one namespace (where the SeldonDeployments are: not created), and the Ambassador env set', () => {
    const objs = render('overlays/single-namespace');
    expect(kinds(objs)).toEqual(['Deployment', 'PodDisruptionBudget', 'Role', 'RoleBinding', 'Service', 'ServiceAccount']);
    const ns = find(objs, 'Deployment').metadata.namespace as string;
    for (const o of objs) expect(o.metadata.namespace).toBe(ns);
    const env = (find(objs, 'Deployment').spec.template.spec.containers[0].env ?? []) as { name: string; value?: string; valueFrom?: Obj }[];
    expect(env.find((e) => e.name === 'AMBASSADOR_SINGLE_NAMESPACE')?.value).toBe('true');
    expect(env.find((e) => e.name === 'AMBASSADOR_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace');
  });
});

// ---- Operability: the components, the production overlay, what they refer to ----

const componentsDir = join(root, 'components');
const components = readdirSync(componentsDir).filter((d) => existsSync(join(componentsDir, d, 'kustomization.yaml')));

const all = (objs: Obj[], kind: string): Obj[] => objs.filter((o) => o.kind === kind);
const named = (objs: Obj[], kind: string, name: string): Obj => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  expect(o, `${kind} ${name}`).toBeDefined();
  return o!;
};
/** Every key/value of `selector` is among `labels` (and the selector is not empty). */
const selects = (selector: Record<string, string> | undefined, labels: Record<string, string>): boolean =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The gateway container of the rendered Deployment, with its pod labels. */
function gatewayPod(objs: Obj[]): { labels: Record<string, string>; container: Obj; pod: Obj; deployment: Obj } {
  const deployment = named(objs, 'Deployment', 'seldon-gateway');
  const pod = deployment.spec.template;
  return { labels: pod.metadata.labels, container: pod.spec.containers.find((c: Obj) => c.name === 'gateway'), pod: pod.spec, deployment };
}
/**
 * The operator file `--<flag>` names in a render with `component`: the env the gateway reads names
 * a ConfigMap's file, mounted read-only as a directory (a subPath mount never sees updates). Its text.
 */
function mountedOperatorFile(component: string, flag: string): { text: string; env: string } {
  const objs = baseWith([component]);
  const { container, pod } = gatewayPod(objs);
  const option = OPTIONS.find((o) => o.flag === flag)!;
  const file = ((container.env as Obj[]).find((e) => e.name === option.env)?.value ?? '') as string;
  const mount = (container.volumeMounts as Obj[]).find((m) => file.startsWith(`${m.mountPath}/`))!;
  expect(mount, 'a volume mount holds the file').toBeDefined();
  expect(mount.readOnly).toBe(true);
  expect(mount.subPath, 'a subPath mount never sees ConfigMap updates').toBeUndefined();
  const volume = (pod.volumes as Obj[]).find((v) => v.name === mount.name)!;
  const map = named(objs, 'ConfigMap', volume.configMap.name);
  return { text: map.data[file.slice(mount.mountPath.length + 1)] as string, env: option.env };
}
/** The container port a Service targetPort or monitor port (name or number) means, if it exists. */
const containerPort = (container: Obj, port: string | number): Obj | undefined => (container.ports as Obj[]).find((p) => (typeof port === 'number' ? p.containerPort === port : p.name === port));

/** Prometheus adds these to every scraped series (ServiceMonitor and PodMonitor alike). */
const TARGET_LABELS = ['job', 'instance', 'namespace', 'pod', 'container', 'endpoint', 'service'];
/** Series Prometheus writes itself for each target. */
const PROMETHEUS_SERIES = new Map<string, readonly string[]>([['up', []]]);

/** What is wrong with `expr` against the gateway's series: does not parse, reads an unknown metric or label, groups by a label none has. */
function promqlProblems(where: string, expr: string, series: Map<string, readonly string[]>): string[] {
  const uses = promqlUses(expr);
  const problems = uses.errors.map((e) => `${where}: does not parse ${e}`);
  if (uses.selectors.length === 0) problems.push(`${where}: reads no metric`);
  const available = new Set(TARGET_LABELS);
  for (const { metric, labels } of uses.selectors) {
    const known = series.get(metric) ?? PROMETHEUS_SERIES.get(metric);
    if (!known) {
      problems.push(`${where}: ${metric || '(no name)'} is not a series the gateway exposes`);
      continue;
    }
    for (const l of known) available.add(l);
    for (const l of labels) if (!known.includes(l) && !TARGET_LABELS.includes(l)) problems.push(`${where}: ${metric} has no label ${l}`);
  }
  for (const l of uses.grouping) if (!available.has(l)) problems.push(`${where}: uses label ${l}, which none of the series it reads has`);
  return problems;
}

describe('kustomize components', () => {
  it('are Components, each renders mixed into the base, and changes nothing it does not own', () => {
    expect(components).toEqual(expect.arrayContaining(['namespace', 'monitoring', 'pod-monitor', 'alerts', 'dashboard', 'network-policy', 'hpa', 'admin-token', 'ambassador-service']));
    const plain = baseWith([]);
    for (const c of components) {
      expect(docs(join(componentsDir, c, 'kustomization.yaml'))[0]!.kind, c).toBe('Component');
      const objs = baseWith([c]);
      // The base's objects are all still there, in their namespace.
      for (const o of plain)
        expect(
          objs.some((x) => x.kind === o.kind && x.metadata.name === o.metadata.name),
          `${c} keeps ${o.kind} ${o.metadata.name}`,
        ).toBe(true);
      for (const o of objs) if (!CLUSTER_SCOPED.includes(o.kind as string)) expect(o.metadata.namespace, `${c}: ${o.kind} ${o.metadata.name}`).toBe('seldon-system');
    }
  });

  it.each([
    ['namespace', ['Namespace/seldon-system']],
    ['monitoring', ['Service/seldon-gateway-admin', 'ServiceMonitor/seldon-gateway']],
    ['pod-monitor', ['PodMonitor/seldon-gateway']],
    ['alerts', ['PrometheusRule/seldon-gateway']],
    ['dashboard', ['ConfigMap/seldon-gateway-dashboard']],
    ['network-policy', ['NetworkPolicy/seldon-gateway']],
    ['hpa', ['HorizontalPodAutoscaler/seldon-gateway']],
    ['admin-token', []],
    ['ambassador-service', ['Service/ambassador']],
    ['keda', ['Service/seldon-gateway-keda']],
    ['jwt', ['ConfigMap/seldon-gateway-jwt-providers']],
    ['ambassador-module', ['ConfigMap/seldon-gateway-ambassador-module']],
  ])('%s adds %j', (c, added) => {
    const before = new Set(baseWith([]).map((o) => `${o.kind}/${o.metadata.name}`));
    const after = baseWith([c]).map((o) => `${o.kind}/${o.metadata.name}`);
    expect(after.filter((k) => !before.has(k)).sort()).toEqual([...added].sort());
  });

  it('the production overlay renders with its Namespace, the monitoring, alerts, dashboard, network policy, HPA and admin token', () => {
    const objs = kustomize(join(root, 'overlays/production'));
    expect(objs.map((o) => o.kind as string).sort()).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'Deployment',
      'HorizontalPodAutoscaler',
      'Namespace',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'PrometheusRule',
      'Service',
      'Service',
      'ServiceAccount',
      'ServiceMonitor',
    ]);
    expect(named(objs, 'Namespace', 'seldon-system')).toBeDefined();
    for (const o of objs) if (o.metadata.namespace !== undefined) expect(o.metadata.namespace).toBe('seldon-system');
    // The ServiceMonitor got the token: the admin-token component is listed after monitoring.
    expect(named(objs, 'ServiceMonitor', 'seldon-gateway').spec.endpoints[0].authorization).toBeDefined();
  });
});

describe('what the components refer to exists (rendered: base + every component)', () => {
  // Both monitors at once only to check them; an install uses one of the two.
  const objs = baseWith(['monitoring', 'pod-monitor', 'alerts', 'dashboard', 'network-policy', 'hpa', 'admin-token', 'ambassador-service', 'keda']);
  const { labels, container, pod, deployment } = gatewayPod(objs);
  const adminPort = containerPort(container, 'admin')!;

  it('the admin container port is the gateway\'s default admin port, named "admin"', () => {
    expect(adminPort.containerPort).toBe(defaults.listen.adminPort);
    expect(containerPort(container, 'http')!.containerPort).toBe(defaults.listen.port);
  });

  it("the keda component serves KEDA's external scaler on the container port its Service and the NetworkPolicy name, and sets --keda-port to it", () => {
    const keda = containerPort(container, 'keda')!;
    expect(container.env).toContainEqual({ name: 'SELDON_GATEWAY_KEDA_PORT', value: String(keda.containerPort) });
    expect(named(objs, 'Service', 'seldon-gateway-keda').spec.ports).toEqual([{ name: 'keda', port: keda.containerPort, targetPort: 'keda', protocol: 'TCP', appProtocol: 'kubernetes.io/h2c' }]);
    expect((named(objs, 'Service', 'seldon-gateway').spec.ports as Obj[]).map((p) => p.targetPort)).not.toContain('keda');
    const rule = (named(objs, 'NetworkPolicy', 'seldon-gateway').spec.ingress as Obj[]).find((r) => r.ports.some((p: Obj) => p.port === 'keda'));
    expect(rule?.from).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'keda' } } }]);
  });

  it('every Service selects the gateway pods, and every targetPort is a container port', () => {
    const services = all(objs, 'Service');
    expect(services.map((s) => s.metadata.name).sort()).toEqual(['ambassador', 'seldon-gateway', 'seldon-gateway-admin', 'seldon-gateway-keda']);
    for (const s of services) {
      expect(selects(s.spec.selector, labels), `${s.metadata.name} selects the pods`).toBe(true);
      for (const p of s.spec.ports as Obj[]) expect(containerPort(container, p.targetPort), `${s.metadata.name}:${p.name} → ${p.targetPort}`).toBeDefined();
    }
    // The admin port is on its own Service only; the ambassador Service is port 80 → the public port, as Ambassador's.
    const admin = named(objs, 'Service', 'seldon-gateway-admin');
    expect(admin.spec.type).toBe('ClusterIP');
    expect((admin.spec.ports as Obj[]).map((p) => containerPort(container, p.targetPort))).toEqual([adminPort]);
    const ambassador = named(objs, 'Service', 'ambassador');
    expect((ambassador.spec.ports as Obj[]).find((p) => p.port === 80)).toMatchObject({ targetPort: 'http' });
    for (const name of ['seldon-gateway', 'ambassador']) {
      for (const p of named(objs, 'Service', name).spec.ports as Obj[]) expect(containerPort(container, p.targetPort), `${name} never reaches the admin port`).not.toBe(adminPort);
    }
  });

  it("the ServiceMonitor selects the admin Service (only) and scrapes its admin port at /metrics, keeping the gateway's namespace label", () => {
    const sm = named(objs, 'ServiceMonitor', 'seldon-gateway');
    expect(sm.apiVersion).toBe('monitoring.coreos.com/v1');
    const selected = all(objs, 'Service').filter((s) => s.metadata.namespace === sm.metadata.namespace && selects(sm.spec.selector.matchLabels, s.metadata.labels ?? {}));
    expect(selected.map((s) => s.metadata.name)).toEqual(['seldon-gateway-admin']);
    for (const e of sm.spec.endpoints as Obj[]) {
      const servicePort = (selected[0]!.spec.ports as Obj[]).find((p) => p.name === e.port);
      expect(servicePort, `endpoint port ${e.port} is a port of the Service`).toBeDefined();
      expect(containerPort(container, servicePort!.targetPort)).toBe(adminPort);
      expect(e).toMatchObject({ path: '/metrics', honorLabels: true });
    }
    expect(sm.spec.jobLabel).toBe('app.kubernetes.io/name');
    expect(selected[0]!.metadata.labels[sm.spec.jobLabel]).toBe('seldon-gateway');
  });

  it('the PodMonitor selects the gateway pods and scrapes their admin port at /metrics', () => {
    const pm = named(objs, 'PodMonitor', 'seldon-gateway');
    expect(pm.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(selects(pm.spec.selector.matchLabels, labels)).toBe(true);
    for (const e of pm.spec.podMetricsEndpoints as Obj[]) {
      expect(containerPort(container, e.port)).toBe(adminPort);
      expect(e).toMatchObject({ path: '/metrics', honorLabels: true });
    }
    expect(labels[pm.spec.jobLabel]).toBe('seldon-gateway');
  });

  it('redis: REDIS_URL, the name the gateway reads, comes from the seldon-gateway-redis Secret', () => {
    const env = gatewayPod(baseWith(['redis'])).container.env as Obj[];
    expect(env.filter((e) => e.name === 'REDIS_URL')).toEqual([{ name: 'REDIS_URL', valueFrom: { secretKeyRef: { name: 'seldon-gateway-redis', key: 'url' } } }]);
    expect(OPTIONS.find((o) => o.flag === 'redis-url')?.env).toBe('REDIS_URL');
  });

  it("admin-token: the env the gateway reads points into a read-only Secret volume, and both monitors send that Secret's key", () => {
    const option = OPTIONS.find((o) => o.flag === 'admin-token-file')!;
    const env = (container.env as Obj[]).find((e) => e.name === option.env);
    expect(env?.value, `${option.env} is set`).toBeDefined();
    const file = env!.value as string;
    expect(parseConfig('serve', [], { [option.env]: file }).listen.adminTokenFile).toBe(file);
    const mount = (container.volumeMounts as Obj[]).find((m) => file.startsWith(`${m.mountPath}/`))!;
    expect(mount, 'a volume mount holds the file').toBeDefined();
    expect(mount.readOnly).toBe(true);
    expect(mount.subPath, 'a subPath mount never sees Secret updates').toBeUndefined();
    const volume = (pod.volumes as Obj[]).find((v) => v.name === mount.name)!;
    expect(volume.secret.optional ?? false, 'no token, no pod: fail closed').toBe(false);
    // 0440 is readable by the gateway (non-root) only through the fsGroup that owns the files.
    expect(volume.secret.defaultMode & 0o004).toBe(0);
    expect(pod.securityContext.fsGroup).toBe(pod.securityContext.runAsGroup);
    const item = (volume.secret.items as Obj[]).find((i) => `${mount.mountPath}/${i.path}` === file)!;
    expect(item).toBeDefined();
    const credential = { name: volume.secret.secretName, key: item.key };
    expect(named(objs, 'ServiceMonitor', 'seldon-gateway').spec.endpoints[0].authorization).toEqual({ type: 'Bearer', credentials: credential });
    expect(named(objs, 'PodMonitor', 'seldon-gateway').spec.podMetricsEndpoints[0].authorization).toEqual({ type: 'Bearer', credentials: credential });
    // Annotation-based scrapers cannot send the token.
    expect(deployment.spec.template.metadata.annotations['prometheus.io/scrape']).toBe('false');
    // Probes stay on the paths the token does not cover.
    expect([container.livenessProbe.httpGet.path, container.readinessProbe.httpGet.path]).toEqual(['/healthz', '/readyz']);
  });

  it("jwt: the env the gateway reads names the ConfigMap's file, mounted read-only as a directory (updates reach it); the file parses as a providers list, and one with a provider does too", () => {
    const { text, env: variable } = mountedOperatorFile('jwt', 'jwt-providers');
    expect(parseJwtProviders(text)).toEqual([]);
    // What the comment tells users to write parses too.
    const example = readFileSync(join(componentsDir, 'jwt', 'kustomization.yaml'), 'utf8')
      .split('\n')
      .filter((l) => /^# {3}(- name: corp| {2}(issuer|discovery|audiences):)/.test(l))
      .map((l) => l.slice(4).replace(/\s+#.*$/, ''))
      .join('\n');
    expect(parseJwtProviders(example)).toMatchObject([{ name: 'corp', issuer: 'https://keycloak.example.com/realms/ml', keys: { kind: 'discovery' }, audiences: ['seldon'] }]);
    expect(parseConfig('serve', [], { [variable]: join(componentsDir, 'jwt', 'providers.yaml') }).jwtProvidersFile).toBe(join(componentsDir, 'jwt', 'providers.yaml'));
  });

  it("ambassador-module: the env the gateway reads names the ConfigMap's file, mounted read-only as a directory (updates reach it); the Module there is one the gateway takes", () => {
    const { text, env: variable } = mountedOperatorFile('ambassador-module', 'ambassador-module');
    expect(parseAmbassadorModule(text)).toEqual({ maxRequestHeaderBytes: 60 * 1024, defaultTimeoutMs: 3000 });
    const config = parseConfig('serve', [], { [variable]: join(componentsDir, 'ambassador-module', 'module.yaml') });
    expect(config.module.file).toBe(join(componentsDir, 'ambassador-module', 'module.yaml'));
    expect(config.edge.maxHeaderBytes).toBe(60 * 1024);
  });

  it('the NetworkPolicy selects the gateway pods: the public port from anywhere, the admin port only from Prometheus', () => {
    const np = named(objs, 'NetworkPolicy', 'seldon-gateway');
    expect(selects(np.spec.podSelector.matchLabels, labels)).toBe(true);
    expect(np.spec.policyTypes).toEqual(['Ingress']);
    const rules = np.spec.ingress as Obj[];
    const covers = (r: Obj, port: Obj): boolean => r.ports === undefined || (r.ports as Obj[]).some((p) => containerPort(container, p.port) === port);
    const adminRules = rules.filter((r) => covers(r, adminPort));
    expect(adminRules.length).toBeGreaterThan(0);
    for (const r of adminRules) {
      expect(r.from?.length, 'the admin port is never open to every source').toBeGreaterThan(0);
      for (const f of r.from as Obj[]) {
        expect(f.ipBlock?.cidr, 'never 0.0.0.0/0').not.toBe('0.0.0.0/0');
        if (!f.ipBlock) expect(f.namespaceSelector && f.podSelector, 'a namespace and pod selector together (Prometheus pods in their namespace)').toBeTruthy();
      }
    }
    const adminFrom = adminRules[0]!.from[0];
    expect(adminFrom.podSelector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'prometheus' });
    expect(Object.keys(adminFrom.namespaceSelector.matchLabels)).toEqual(['kubernetes.io/metadata.name']);
    // Predictions must still get in: some rule covers the public port for every source.
    expect(rules.some((r) => covers(r, containerPort(container, 'http')!) && r.from === undefined)).toBe(true);
  });

  it('the HPA scales the gateway Deployment (autoscaling/v2, CPU), which then has no replica count of its own', () => {
    const hpa = named(objs, 'HorizontalPodAutoscaler', 'seldon-gateway');
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
    expect(hpa.spec.metrics).toEqual([{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: expect.any(Number) } } }]);
    expect(container.resources.requests.cpu, 'utilization is relative to the CPU request').toBeDefined();
    expect(hpa.spec.minReplicas).toBeGreaterThan(named(objs, 'PodDisruptionBudget', 'seldon-gateway').spec.minAvailable);
    expect(hpa.spec.maxReplicas).toBeGreaterThanOrEqual(hpa.spec.minReplicas);
    expect(deployment.spec.replicas).toBeUndefined();
  });

  it('the alert rules parse as PromQL and read only series the gateway exposes, with their labels', async () => {
    const series = await gatewaySeries();
    const rule = named(objs, 'PrometheusRule', 'seldon-gateway');
    expect(rule.apiVersion).toBe('monitoring.coreos.com/v1');
    const rules = (rule.spec.groups as Obj[]).flatMap((g) => g.rules as Obj[]);
    const problems = rules.flatMap((r) => promqlProblems(`alert ${r.alert}`, r.expr, series));
    expect(problems).toEqual([]);
    for (const r of rules) {
      expect(r.alert, JSON.stringify(r)).toMatch(/^SeldonGateway[A-Za-z]+$/);
      expect(r.for, r.alert).toMatch(/^[0-9]+[smh]$/);
      expect(['critical', 'warning', 'info'], r.alert).toContain(r.labels.severity);
      expect(r.annotations.summary, r.alert).toBeTruthy();
      expect(r.annotations.description, r.alert).toBeTruthy();
    }
    // The alerts an operator needs, each on the metric that tells it.
    const reads = (name: string): string[] => promqlUses(rules.find((r) => r.alert === name)!.expr).selectors.map((s) => s.metric);
    expect(reads('SeldonGatewayHighErrorRate')).toContain('seldon_gateway_requests_total');
    expect(reads('SeldonGatewayNoReadyEndpoints')).toEqual(['seldon_gateway_upstream_ready_endpoints']);
    expect(reads('SeldonGatewaySourceDisconnected')).toEqual(['seldon_gateway_source_connected']);
    expect(reads('SeldonGatewayRateLimitFallback')).toEqual(['seldon_gateway_rate_limit_fallback_active']);
    expect(reads('SeldonGatewayShadowFailing')).toContain('seldon_gateway_shadow_requests_total');
    expect(reads('SeldonGatewayCanarySplitDrift')).toEqual(expect.arrayContaining(['seldon_gateway_requests_total', 'seldon_gateway_route_weight']));
    expect(reads('SeldonGatewaySlowRequests')).toEqual(['seldon_gateway_request_duration_seconds_bucket', 'seldon_gateway_request_duration_seconds_count']);
    expect(reads('SeldonGatewayEventLoopStalled')).toEqual(['seldon_gateway_event_loop_delay_seconds_bucket']);
    // The job label the rules use is the one both monitors give.
    expect(rules.find((r) => r.alert === 'SeldonGatewayScrapeDown')!.expr).toContain('job="seldon-gateway"');
  });

  it('the checker itself: it sees unknown metrics, unknown labels, syntax errors and suffixes that are not there', async () => {
    const series = await gatewaySeries();
    expect(promqlProblems('ok', 'sum by (namespace, le) (rate(seldon_gateway_upstream_latency_seconds_bucket{kind="primary"}[5m]))', series)).toEqual([]);
    expect(promqlProblems('x', 'rate(seldon_gateway_requests[5m])', series)).toEqual(['x: seldon_gateway_requests is not a series the gateway exposes']);
    expect(promqlProblems('x', 'seldon_gateway_upstream_latency_seconds > 1', series)).toEqual(['x: seldon_gateway_upstream_latency_seconds is not a series the gateway exposes']);
    expect(promqlProblems('x', 'seldon_gateway_source_connected{nope="1"}', series)).toEqual(['x: seldon_gateway_source_connected has no label nope']);
    expect(promqlProblems('x', 'sum by (predictor) (seldon_gateway_source_connected)', series)).toEqual(['x: uses label predictor, which none of the series it reads has']);
    expect(promqlProblems('x', 'sum(rate(seldon_gateway_requests_total[5m])', series)[0]).toMatch(/does not parse/);
  });

  it('the dashboard ConfigMap: fixed name, the Grafana sidecar label, the dashboard JSON whose queries read gateway series', async () => {
    const cm = named(objs, 'ConfigMap', 'seldon-gateway-dashboard');
    expect(cm.metadata.labels.grafana_dashboard).toBe('1');
    const keys = Object.keys(cm.data);
    expect(keys).toEqual(['grafana-dashboard.json']);
    const text = cm.data[keys[0]!] as string;
    expect(text).toBe(readFileSync(join(componentsDir, 'dashboard/grafana-dashboard.json'), 'utf8'));
    const dash = JSON.parse(text) as { uid: string; panels: { title: string; targets?: { expr: string }[]; panels?: { title: string; targets?: { expr: string }[] }[] }[] };
    expect(dash.uid).toBe('seldon-gateway');
    const series = await gatewaySeries();
    const panels = dash.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
    const problems = panels.flatMap((p) => (p.targets ?? []).flatMap((t) => promqlProblems(`panel "${p.title}"`, t.expr, series)));
    expect(problems).toEqual([]);
    // The two gauges the alerts compare with are on it too.
    const read = new Set(panels.flatMap((p) => (p.targets ?? []).flatMap((t) => promqlUses(t.expr).selectors.map((s) => s.metric))));
    expect([...read]).toEqual(expect.arrayContaining(['seldon_gateway_route_weight', 'seldon_gateway_upstream_ready_endpoints']));
  });
});

// ---- TLS: components/tls and components/cert-manager ----

describe('the tls and cert-manager components', () => {
  const objs = baseWith(['tls', 'cert-manager']);
  const { container, pod } = gatewayPod(objs);

  it('--tls-dir (its env form) points at a read-only, whole-directory mount of the Secret the Certificate fills', () => {
    const option = OPTIONS.find((o) => o.flag === 'tls-dir')!;
    const env = (container.env as Obj[]).find((e) => e.name === option.env);
    expect(env?.value, `${option.env} is set`).toBeDefined();
    const tlsDir = env!.value as string;
    const config = parseConfig('serve', [], Object.fromEntries((container.env as Obj[]).filter((e) => e.value !== undefined).map((e) => [e.name, e.value])));
    expect(config.tls?.dir).toBe(tlsDir);
    expect(config.tls?.allowCleartext).toBe(true);
    const mount = (container.volumeMounts as Obj[]).find((m) => m.mountPath === tlsDir)!;
    expect(mount, 'a volume is mounted exactly where --tls-dir points').toBeDefined();
    expect(mount.readOnly).toBe(true);
    expect(mount.subPath, 'a subPath mount never sees renewals').toBeUndefined();
    const volume = (pod.volumes as Obj[]).find((v) => v.name === mount.name)!;
    expect(volume.secret.optional ?? false).toBe(false);
    expect(volume.secret.items, 'the whole Secret: tls.crt and tls.key by their own names').toBeUndefined();
    // 0440 is readable by the gateway only through the fsGroup that owns the files.
    expect(volume.secret.defaultMode & 0o004).toBe(0);
    expect(pod.securityContext.fsGroup).toBe(pod.securityContext.runAsGroup);
    const cert = named(objs, 'Certificate', 'seldon-gateway');
    expect(cert.apiVersion).toBe('cert-manager.io/v1');
    expect(cert.spec.secretName).toBe(volume.secret.secretName);
    const issuer = named(objs, cert.spec.issuerRef.kind as string, cert.spec.issuerRef.name as string);
    expect(issuer.apiVersion).toBe('cert-manager.io/v1');
    expect(cert.spec.dnsNames).toContain(`seldon-gateway.${cert.metadata.namespace}.svc`);
  });

  it('the Service gains 443 (https) to the public container port; 80 and 8080 still reach it; never the admin port', () => {
    const service = named(objs, 'Service', 'seldon-gateway');
    const ports = service.spec.ports as Obj[];
    const https = ports.find((p) => p.port === 443)!;
    expect(https).toMatchObject({ name: 'https', targetPort: 'http', protocol: 'TCP', appProtocol: 'https' });
    expect(containerPort(container, https.targetPort)!.containerPort).toBe(defaults.listen.port);
    expect(ports.map((p) => p.port).sort()).toEqual([443, 80, 8080]);
    for (const p of ports) expect(containerPort(container, p.targetPort)!.name).toBe('http');
  });

  it('tls alone (your own Secret) adds no object; cert-manager adds the Issuer and the Certificate', () => {
    const before = new Set(baseWith([]).map((o) => `${o.kind}/${o.metadata.name}`));
    expect(
      baseWith(['tls'])
        .map((o) => `${o.kind}/${o.metadata.name}`)
        .filter((k) => !before.has(k)),
    ).toEqual([]);
    expect(
      objs
        .map((o) => `${o.kind}/${o.metadata.name}`)
        .filter((k) => !before.has(k))
        .sort(),
    ).toEqual(['Certificate/seldon-gateway', 'Issuer/seldon-gateway']);
  });
});
