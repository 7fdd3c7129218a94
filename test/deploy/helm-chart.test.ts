/**
 * The Helm chart (deploy/helm/seldon-gateway), rendered by a real helm (v4, installed once into the
 * tools directory by scripts/install-helm.sh, as CI installs Node): `helm lint` and `helm template`
 * for the defaults and every documented example, which must render what the kustomize install
 * renders for the same choices (the objects, field for field, but for the labels Helm adds), so
 * the Deployment runs the same command line; and what the kustomize tests cannot see: RBAC by
 * scope, another release name, the steering key Secret, the schema, the notes, the README table.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { OPTIONS } from '../../gateway/config/options.js';
import { parseConfig } from '../../gateway/config/parse.js';
import { parseJwtProviders } from '../../gateway/config/jwt.js';
import { withValuesTable } from '../../scripts/chart-readme.js';
import { KUSTOMIZE_ROOT, baseWith, kustomize, parseManifests, type Obj } from '../helpers/kustomize.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const chart = join(root, 'deploy/helm/seldon-gateway');
const examples = readdirSync(join(chart, 'examples'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const CLUSTER_SCOPED = ['ClusterRole', 'ClusterRoleBinding', 'Namespace'];

let helm = '';
beforeAll(() => {
  const r = spawnSync('bash', [join(root, 'scripts/install-helm.sh')], { encoding: 'utf8', timeout: 170_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`scripts/install-helm.sh failed: ${r.stderr}`);
  helm = r.stdout.trim().split('\n').at(-1)!;
}, 180_000);

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(helm, args, { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH, HOME: process.env.HOME } });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Render {
  values?: readonly string[];
  set?: readonly string[];
  namespace?: string;
  release?: string;
}
const valueArgs = ({ values = [], set = [] }: Render): string[] => [...values.flatMap((v) => ['-f', join(chart, 'examples', v)]), ...set.flatMap((s) => ['--set', s])];

/** `helm template`, parsed as Kubernetes parses it. */
function template(r: Render = {}): Obj[] {
  const out = run(['template', r.release ?? 'seldon-gateway', chart, '-n', r.namespace ?? 'seldon-system', ...valueArgs(r)]);
  expect(out.status, out.stderr).toBe(0);
  return parseManifests(out.stdout);
}

const key = (o: Obj): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const named = (objs: Obj[], kind: string, name?: string): Obj => {
  const o = objs.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  expect(o, `${kind} ${name ?? ''}`).toBeDefined();
  return o!;
};
const selects = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/**
 * An object as the comparison sees it: without the labels both installs add for bookkeeping
 * (app.kubernetes.io/*, helm.sh/*), selectors without Helm's instance label (that they select what
 * they should is checked with another release name below), and the lists Kubernetes keys by name
 * (env, volumes, mounts) in name order, since a kustomize patch appends where a template writes in place.
 */
function comparable(o: Obj): Obj {
  const c = structuredClone(o);
  const walk = (node: unknown, path: string): void => {
    if (Array.isArray(node)) {
      node.forEach((n) => walk(n, path));
      if (/\.(env|volumes|volumeMounts)$/.test(path)) node.sort((a: Obj, b: Obj) => String(a.name).localeCompare(String(b.name)));
      return;
    }
    if (node === null || typeof node !== 'object') return;
    const obj = node as Obj;
    for (const [k, v] of Object.entries(obj)) {
      if ((k === 'labels' || k === 'matchLabels' || (k === 'selector' && o.kind === 'Service')) && v && typeof v === 'object') {
        for (const label of Object.keys(v)) if (/^(app\.kubernetes\.io\/(?!name$)|helm\.sh\/)/.test(label) && !(k === 'matchLabels' && label === 'app.kubernetes.io/component')) delete v[label];
        if (k === 'labels') delete v['app.kubernetes.io/name'];
        if (Object.keys(v).length === 0) delete obj[k];
        continue;
      }
      walk(v, `${path}.${k}`);
    }
  };
  walk(c, '');
  return c;
}

/** Helm's objects against kustomize's, object by object (kustomize's Namespace aside: `helm install --create-namespace` makes it). */
function expectSameObjects(helmObjs: Obj[], kustomizeObjs: Obj[]): void {
  const k = kustomizeObjs.filter((o) => o.kind !== 'Namespace');
  expect(helmObjs.map(key).sort()).toEqual(k.map(key).sort());
  const byKey = new Map(k.map((o) => [key(o), o]));
  for (const h of helmObjs) expect(comparable(h), key(h)).toEqual(comparable(byKey.get(key(h))!));
}

describe('the Helm chart', () => {
  it("the README's helm install line, rendered as helm template, runs the image it names", () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const block = /<!-- helm:install [^\n]*-->\n```sh\n([\s\S]*?)\n```/.exec(readme);
    expect(block, 'the README block marked helm:install').not.toBeNull();
    const words = block![1]!
      .replace(/\\\n\s*/g, ' ')
      .trim()
      .split(/\s+/);
    expect(words.slice(0, 4)).toEqual(['helm', 'install', 'seldon-gateway', 'deploy/helm/seldon-gateway']);
    // As written, but `template` (no cluster): --create-namespace is install's alone.
    const out = run([
      'template',
      ...words
        .slice(2)
        .map((w) => (w === 'deploy/helm/seldon-gateway' ? chart : w))
        .filter((w) => w !== '--create-namespace'),
    ]);
    expect(out.status, out.stderr).toBe(0);
    const image = words.find((w) => w.startsWith('image.repository='))!.slice('image.repository='.length);
    const deployment = named(parseManifests(out.stdout), 'Deployment');
    expect(deployment.metadata.namespace).toBe('seldon-system');
    expect((deployment.spec as { template: { spec: { containers: { image: string }[] } } }).template.spec.containers[0]!.image).toMatch(new RegExp(`^${image.replace(/\./g, '\\.')}:`));
  });

  it('helm lint --strict passes for the defaults and for each example', () => {
    for (const values of [[], ...examples.map((e) => [e])]) {
      const out = run(['lint', '--strict', chart, ...valueArgs({ values })]);
      expect(out.status, `${values.join() || 'defaults'}: ${out.stdout}${out.stderr}`).toBe(0);
      expect(out.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    }
  });

  it('the defaults render what `kubectl kustomize deploy/kustomize` renders: the Deployment runs the same command line', () => {
    const helmObjs = template();
    const kustomizeObjs = kustomize(KUSTOMIZE_ROOT);
    expectSameObjects(helmObjs, kustomizeObjs);
    // Spelled out, as the failure to look for: args and environment of the gateway container.
    const container = (objs: Obj[]): Obj => named(objs, 'Deployment').spec.template.spec.containers[0];
    expect(container(helmObjs).args).toEqual(['serve', '--kubernetes']);
    expect(container(helmObjs).args).toEqual(container(kustomizeObjs).args);
    expect(container(helmObjs).env).toEqual(container(kustomizeObjs).env);
    expect(container(helmObjs).image).toBe(container(kustomizeObjs).image);
  });

  it.each([
    ['production.yaml', 'seldon-system', () => kustomize(join(KUSTOMIZE_ROOT, 'overlays/production'))],
    ['single-namespace.yaml', 'seldon', () => kustomize(join(KUSTOMIZE_ROOT, 'overlays/single-namespace'))],
    ['tls-cert-manager.yaml', 'seldon-system', () => baseWith(['tls', 'cert-manager'])],
    ['ambassador-takeover.yaml', 'seldon-system', () => baseWith(['ambassador-service', 'pod-monitor', 'admin-token'])],
    ['redis-cluster.yaml', 'seldon-system', () => baseWith(['redis'])],
    ['keda.yaml', 'seldon-system', () => baseWith(['keda'])],
    ['ambassador-module.yaml', 'seldon-system', () => baseWith(['ambassador-module'])],
  ])('examples/%s in %s renders what its kustomize counterpart renders', (values, namespace, counterpart) => {
    expectSameObjects(template({ values: [values], namespace }), counterpart());
  });

  it("keda with networkPolicy renders what components/network-policy then components/keda render: the scaler port from KEDA's namespace only", () => {
    const helmObjs = template({ set: ['keda.enabled=true', 'networkPolicy.enabled=true'] });
    expectSameObjects(helmObjs, baseWith(['network-policy', 'keda']));
    const rules = named(helmObjs, 'NetworkPolicy').spec.ingress as Obj[];
    expect(rules.at(-1)).toEqual({ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'keda' } } }], ports: [{ port: 'keda', protocol: 'TCP' }] });
    const env = named(helmObjs, 'Deployment').spec.template.spec.containers[0].env as Obj[];
    expect(env).toContainEqual({ name: 'SELDON_GATEWAY_KEDA_PORT', value: '9095' });
    expect(named(helmObjs, 'Service', 'seldon-gateway-keda').spec.ports).toEqual([{ name: 'keda', port: 9095, targetPort: 'keda', protocol: 'TCP', appProtocol: 'kubernetes.io/h2c' }]);
    // The public Service never carries the scaler's port.
    expect((named(helmObjs, 'Service', 'seldon-gateway').spec.ports as Obj[]).map((p) => p.targetPort)).not.toContain('keda');
  });

  it('every example renders each namespaced object into the release namespace, and RBAC by scope: a ClusterRole cluster-wide, a Role in single-namespace mode', () => {
    for (const values of [[], ...examples.map((e) => [e])]) {
      const objs = template({ values, namespace: 'models' });
      const where = values.join() || 'defaults';
      for (const o of objs) {
        expect(typeof o.kind, where).toBe('string');
        if (CLUSTER_SCOPED.includes(o.kind)) expect(o.metadata.namespace, `${where}: ${key(o)}`).toBeUndefined();
        else expect(o.metadata.namespace, `${where}: ${key(o)}`).toBe('models');
      }
      const single = values.includes('single-namespace.yaml');
      const [role, binding] = single ? ['Role', 'RoleBinding'] : ['ClusterRole', 'ClusterRoleBinding'];
      expect(
        objs
          .filter((o) => /Role/.test(o.kind))
          .map((o) => o.kind)
          .sort(),
        where,
      ).toEqual([role, binding]);
      expect(named(objs, binding).roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: role, name: named(objs, role).metadata.name });
      expect(named(objs, binding).subjects).toEqual([{ kind: 'ServiceAccount', name: named(objs, 'ServiceAccount').metadata.name, namespace: 'models' }]);
      const env = named(objs, 'Deployment').spec.template.spec.containers[0].env as Obj[];
      expect(
        env.some((e) => e.name === 'AMBASSADOR_SINGLE_NAMESPACE'),
        where,
      ).toBe(single);
    }
  });

  it('another release name: every name carries it, and selectors, monitors, bindings and certificate names still meet', () => {
    const objs = template({ release: 'edge', namespace: 'ml', values: ['production.yaml', 'tls-cert-manager.yaml'], set: ['ambassadorService.enabled=true'] });
    for (const o of objs) if (o.kind !== 'Service' || o.metadata.name !== 'ambassador') expect(o.metadata.name, key(o)).toMatch(/^edge-seldon-gateway(-|$)/);
    const deployment = named(objs, 'Deployment', 'edge-seldon-gateway');
    const podLabels = deployment.spec.template.metadata.labels;
    expect(selects(deployment.spec.selector.matchLabels, podLabels)).toBe(true);
    for (const s of objs.filter((o) => o.kind === 'Service')) expect(selects(s.spec.selector, podLabels), s.metadata.name).toBe(true);
    expect(selects(named(objs, 'PodDisruptionBudget').spec.selector.matchLabels, podLabels)).toBe(true);
    expect(selects(named(objs, 'NetworkPolicy').spec.podSelector.matchLabels, podLabels)).toBe(true);
    expect(named(objs, 'HorizontalPodAutoscaler').spec.scaleTargetRef.name).toBe('edge-seldon-gateway');
    // The ServiceMonitor selects the admin Service only, and its job label is seldon-gateway, as the alerts expect.
    const sm = named(objs, 'ServiceMonitor');
    expect(objs.filter((o) => o.kind === 'Service' && selects(sm.spec.selector.matchLabels, o.metadata.labels)).map((o) => o.metadata.name)).toEqual(['edge-seldon-gateway-admin']);
    expect(named(objs, 'Service', 'edge-seldon-gateway-admin').metadata.labels[sm.spec.jobLabel]).toBe('seldon-gateway');
    expect(named(objs, 'ClusterRoleBinding').subjects).toEqual([{ kind: 'ServiceAccount', name: 'edge-seldon-gateway', namespace: 'ml' }]);
    expect(deployment.spec.template.spec.serviceAccountName).toBe('edge-seldon-gateway');
    const cert = named(objs, 'Certificate');
    expect(cert.spec.dnsNames).toEqual(['edge-seldon-gateway', 'edge-seldon-gateway.ml', 'edge-seldon-gateway.ml.svc', 'edge-seldon-gateway.ml.svc.cluster.local']);
    expect(cert.spec.issuerRef).toEqual({ name: named(objs, 'Issuer').metadata.name, kind: 'Issuer', group: 'cert-manager.io' });
    const volumes = deployment.spec.template.spec.volumes as Obj[];
    expect(volumes.find((v) => v.name === 'tls')!.secret.secretName).toBe(cert.spec.secretName);
    expect(volumes.find((v) => v.name === 'admin-token')!.secret.secretName).toBe(sm.spec.endpoints[0].authorization.credentials.name);
  });

  it('examples/jwt.yaml: the providers in a ConfigMap mounted read-only, --jwt-providers names its file, and the gateway reads it as given', () => {
    const objs = template({ values: ['jwt.yaml'] });
    const pod = named(objs, 'Deployment').spec.template.spec;
    const container = pod.containers[0];
    const env = Object.fromEntries((container.env as Obj[]).map((e) => [e.name, e.value]));
    const file = env[OPTIONS.find((o) => o.flag === 'jwt-providers')!.env] as string;
    const mount = (container.volumeMounts as Obj[]).find((m) => file.startsWith(`${m.mountPath}/`))!;
    expect(mount).toMatchObject({ readOnly: true });
    const volume = (pod.volumes as Obj[]).find((v) => v.name === mount.name)!;
    const map = named(objs, 'ConfigMap', volume.configMap.name);
    const text = map.data[file.slice(mount.mountPath.length + 1)] as string;
    expect(parseJwtProviders(text).map((p) => [p.name, p.keys.kind])).toEqual([
      ['keycloak', 'jwks'],
      ['dex', 'discovery'],
    ]);
    // A change of providers changes the pod template (the file is read at start).
    const other = template({ values: ['jwt.yaml'], set: ['jwt.providers[0].clockSkew=30s'] });
    expect(named(other, 'Deployment').spec.template.metadata.annotations['checksum/jwt-providers']).not.toBe(named(objs, 'Deployment').spec.template.metadata.annotations['checksum/jwt-providers']);
    // None by default.
    expect(template().some((o) => o.kind === 'ConfigMap' && String(o.metadata.name).endsWith('jwt-providers'))).toBe(false);
  });

  it('examples/rollouts.yaml: the steering key Secret is mounted read-only as a directory and --steering-key-file names its file; REDIS_URL is the URL', () => {
    const objs = template({ values: ['rollouts.yaml'] });
    const pod = named(objs, 'Deployment').spec.template.spec;
    const container = pod.containers[0];
    const env = Object.fromEntries((container.env as Obj[]).map((e) => [e.name, e.value]));
    // The option's environment name by the table's convention (SELDON_GATEWAY_<FLAG>), and the table's own once it has the option.
    const flagEnv = OPTIONS.find((o) => o.flag === 'steering-key-file')?.env ?? 'SELDON_GATEWAY_STEERING_KEY_FILE';
    expect(flagEnv).toBe('SELDON_GATEWAY_STEERING_KEY_FILE');
    const file = env[flagEnv] as string;
    expect(file).toBeDefined();
    const mount = (container.volumeMounts as Obj[]).find((m) => file.startsWith(`${m.mountPath}/`))!;
    expect(mount).toMatchObject({ readOnly: true });
    expect(mount.subPath).toBeUndefined();
    const volume = (pod.volumes as Obj[]).find((v) => v.name === mount.name)!;
    const values = parseYaml(readFileSync(join(chart, 'examples/rollouts.yaml'), 'utf8')) as Obj;
    expect(volume.secret.secretName).toBe(values.steering.keySecret);
    expect(volume.secret.items).toEqual([{ key: 'keys', path: file.slice(mount.mountPath.length + 1) }]);
    // 0440, readable by the gateway's group: the fsGroup that owns Secret files.
    expect(volume.secret.defaultMode).toBe(0o440);
    expect(pod.securityContext.fsGroup).toBe(pod.securityContext.runAsGroup);
    expect(parseConfig('serve', [], env).auth.redisUrl).toBe(values.redis.url);
    // From a Secret instead of a value.
    const fromSecret = template({ set: ['redis.urlSecret.name=redis-credentials'] });
    expect((named(fromSecret, 'Deployment').spec.template.spec.containers[0].env as Obj[]).find((e) => e.name === 'REDIS_URL')).toEqual({
      name: 'REDIS_URL',
      valueFrom: { secretKeyRef: { name: 'redis-credentials', key: 'url' } },
    });
  });

  it('examples/redis-sentinel.yaml and redis-cluster.yaml: REDIS_URL is a Sentinel URL the gateway parses, or the Secret holding the cluster URL', () => {
    const env = (values: string): Obj[] => named(template({ values: [values] }), 'Deployment').spec.template.spec.containers[0].env as Obj[];
    const sentinel = Object.fromEntries(env('redis-sentinel.yaml').map((e) => [e.name, e.value]));
    expect(parseConfig('serve', [], sentinel).auth.redisUrl).toBe('redis+sentinel://redis.redis:26379/mymaster');
    expect(env('redis-cluster.yaml').find((e) => e.name === 'REDIS_URL')).toEqual({ name: 'REDIS_URL', valueFrom: { secretKeyRef: { name: 'seldon-gateway-redis', key: 'url' } } });
    // The schema takes every topology's scheme, and still refuses another.
    for (const url of ['redis+cluster://n1:6379', 'rediss+sentinel://s:26379/m', 'rediss://r:6379']) expect(run(['lint', chart, '--strict', '--set', `redis.url=${url}`]).status, url).toBe(0);
    expect(run(['lint', chart, '--strict', '--set', 'redis.url=memcached://m:11211']).status).not.toBe(0);
  });

  it('extraArgs come after `serve --kubernetes` and parse as the gateway parses them; extraEnv is passed on', () => {
    const objs = template({ set: ['extraArgs={--predictor-header,--max-body=10MiB}', 'extraEnv[0].name=SELDON_GATEWAY_BALANCE', 'extraEnv[0].value=round-robin'] });
    const container = named(objs, 'Deployment').spec.template.spec.containers[0];
    expect(container.args).toEqual(['serve', '--kubernetes', '--predictor-header', '--max-body=10MiB']);
    const env = Object.fromEntries((container.env as Obj[]).map((e) => [e.name, e.value]));
    const config = parseConfig('serve', container.args.slice(1), env);
    expect(config.observe.predictorHeader).toBe(true);
    expect(config.edge.maxBodyBytes).toBe(10 * 1024 * 1024);
    expect(config.upstream.balance).toBe('round-robin');
  });

  it('every environment variable the chart sets is one the gateway reads', () => {
    const objs = template({ values: ['production.yaml', 'tls-cert-manager.yaml', 'single-namespace.yaml', 'rollouts.yaml'], set: ['tls.redirectCleartext=true'] });
    const names = (named(objs, 'Deployment').spec.template.spec.containers[0].env as Obj[]).map((e) => e.name as string);
    expect(names.length).toBeGreaterThanOrEqual(9);
    // --steering-key-file arrives with the steering work; its name follows the table's convention.
    const known = new Set([...OPTIONS.map((o) => o.env), 'SELDON_GATEWAY_STEERING_KEY_FILE']);
    expect(names.filter((n) => !known.has(n))).toEqual([]);
  });

  it('choices that cannot go together are refused with a sentence naming them', () => {
    const both = run(['template', 'seldon-gateway', chart, '--set', 'monitoring.serviceMonitor.enabled=true', '--set', 'monitoring.podMonitor.enabled=true']);
    expect(both.status).not.toBe(0);
    expect(both.stderr).toContain('monitoring.serviceMonitor and monitoring.podMonitor both scrape every pod');
    const cert = run(['template', 'seldon-gateway', chart, '--set', 'tls.certManager.enabled=true']);
    expect(cert.status).not.toBe(0);
    expect(cert.stderr).toContain('set tls.enabled too');
  });

  it('values.schema.json: knows every key of values.yaml, and refuses a misspelt key or a wrong type, naming it', () => {
    const schema = JSON.parse(readFileSync(join(chart, 'values.schema.json'), 'utf8')) as Obj;
    const values = parseYaml(readFileSync(join(chart, 'values.yaml'), 'utf8')) as Obj;
    const missing: string[] = [];
    const walk = (v: unknown, s: Obj | undefined, path: string): void => {
      if (s === undefined) return void missing.push(path);
      if (v === null || typeof v !== 'object' || Array.isArray(v) || s.properties === undefined) return;
      for (const [k, child] of Object.entries(v)) walk(child, s.properties[k], path ? `${path}.${k}` : k);
    };
    walk(values, schema, '');
    expect(missing).toEqual([]);
    for (const [set, names] of [
      ['replicas=3', "additional properties 'replicas'"],
      ['monitoring.serviceMonitr.enabled=true', "additional properties 'serviceMonitr'"],
      ['workers=0', '/workers'],
      ['logLevel=verbose', '/logLevel'],
      ['monitoring.serviceMonitor.interval=30', '/monitoring/serviceMonitor/interval'],
    ] as const) {
      const out = run(['template', 'seldon-gateway', chart, '--set', set]);
      expect(out.status, set).not.toBe(0);
      expect(out.stderr, set).toContain(names);
    }
  });

  it('NOTES.txt says how to reach what was installed: the Service, its namespace and port, the admin port, the Secrets to create', () => {
    const install = (r: Render): string => {
      const out = run(['install', '--dry-run=client', r.release ?? 'seldon-gateway', chart, '-n', r.namespace ?? 'seldon-system', ...valueArgs(r)]);
      expect(out.status, out.stderr).toBe(0);
      const notes = out.stdout.indexOf('\nNOTES:\n');
      expect(notes).toBeGreaterThan(0);
      return out.stdout.slice(notes);
    };
    const plain = install({ namespace: 'ml', release: 'edge' });
    expect(plain).not.toContain('KEDA');
    const keda = install({ namespace: 'ml', release: 'edge', set: ['keda.enabled=true'] });
    expect(keda).toContain('scalerAddress: edge-seldon-gateway-keda.ml:9095');
    expect(keda).toContain('Without redis.url each of the 2 replicas reports only the requests it holds itself.');
    expect(install({ namespace: 'ml', release: 'edge', set: ['keda.enabled=true', 'redis.url=redis://redis:6379'] })).not.toContain('Without redis.url');
    expect(plain).toContain('http://edge-seldon-gateway.ml:80/seldon/<namespace>/<deployment>/api/v1.0/predictions');
    expect(plain).toContain('kubectl -n ml port-forward svc/edge-seldon-gateway 8080:80');
    expect(plain).toContain('kubectl -n ml port-forward deploy/edge-seldon-gateway 8877');
    expect(plain).not.toContain('secret');

    const objs = template({ values: ['production.yaml'] });
    const notes = install({ values: ['production.yaml'] });
    const pod = named(objs, 'Deployment').spec.template.spec;
    const tokenSecret = (pod.volumes as Obj[]).find((v) => v.name === 'admin-token')!.secret.secretName as string;
    expect(notes).toContain(`kubectl -n seldon-system create secret generic ${tokenSecret} --from-literal=token=`);
    expect(notes).toContain(`port-forward svc/${named(objs, 'Service', 'seldon-gateway-admin').metadata.name} 8877`);

    const lb = install({ set: ['service.type=LoadBalancer', 'ambassadorService.enabled=true'], values: ['single-namespace.yaml', 'rollouts.yaml'], namespace: 'seldon' });
    expect(lb).toContain("kubectl -n seldon get svc seldon-gateway -o jsonpath='{.status.loadBalancer.ingress[0].ip}");
    expect(lb).toContain('ambassador.seldon:80');
    expect(lb).toContain('serves the SeldonDeployments of namespace seldon only');
    expect(lb).toContain('kubectl -n seldon create secret generic seldon-gateway-steering --from-literal=keys=');
  });

  it('the README lists every example, and its values table is the one generated from values.yaml (node scripts/chart-readme.ts)', () => {
    const readme = readFileSync(join(chart, 'README.md'), 'utf8');
    const listed = [...readme.matchAll(/\]\(examples\/([a-z0-9-]+\.yaml)\)/g)].map((m) => m[1]).sort();
    expect(listed).toEqual(examples);
    expect(readme, 'the values table differs from values.yaml: run node scripts/chart-readme.ts').toBe(withValuesTable(readme, readFileSync(join(chart, 'values.yaml'), 'utf8')));
  });

  it('the table generator: a documented key is a row, an undocumented value is refused', () => {
    const text = ['# -- Top.', 'a: 1', 'b:', '  # -- Inner, over', '  # two lines.', '  c: "x"', '  # -- A map, documented whole.', '  d:', '    e: [1]', ''].join('\n');
    expect(withValuesTable('x\n<!-- values:start (generated from values.yaml by scripts/chart-readme.ts) -->\nold\n<!-- values:end -->\n', text)).toBe(
      [
        'x',
        '<!-- values:start (generated from values.yaml by scripts/chart-readme.ts) -->',
        '| key | type | default | description |',
        '|---|---|---|---|',
        '| `a` | int | `1` | Top. |',
        '| `b.c` | string | `"x"` | Inner, over two lines. |',
        '| `b.d` | object | `{"e":[1]}` | A map, documented whole. |',
        '<!-- values:end -->',
        '',
      ].join('\n'),
    );
    expect(() => withValuesTable('<!-- values:start (generated from values.yaml by scripts/chart-readme.ts) --><!-- values:end -->', 'a: 1\n')).toThrow('no "# --" comment documents a');
  });
});
