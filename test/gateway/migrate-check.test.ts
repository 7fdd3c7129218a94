/**
 * `seldon-gateway migrate-check` as a migrating team runs it: on what `kubectl get sdep -A -o yaml`
 * prints (a List of SeldonDeployments, with hand-written seldon.io/ambassador-config in every
 * shape), from a file or stdin, with the cluster's ambassador Module: every key in use with its
 * class and why, and exit 1 exactly when something would be dropped or refused.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAPPING_KEYS } from '../../routing/emissary/mapping-keys.js';
import { DESIGN_DIFFERENCES } from '../../routing/emissary/design-differences.js';
import { UNREAD_KINDS } from '../../routing/emissary/unread-kinds.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

function cli(args: string[], input?: string): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [join(root, 'dist/gateway/main.js'), 'migrate-check', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 20_000, input });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const sdep = (namespace: string, name: string, config?: string): Record<string, unknown> => ({
  apiVersion: 'machinelearning.seldon.io/v1',
  kind: 'SeldonDeployment',
  metadata: { name, namespace, resourceVersion: '1', uid: `${namespace}-${name}`, ...(config ? { annotations: { 'seldon.io/ambassador-config': config } } : {}) },
  spec: { predictors: [{ name: 'main', graph: { name: 'model', type: 'MODEL' } }] },
  status: { state: 'Available' },
});

/** kubectl's List: items without kind (it is implied), metadata.resourceVersion at the end. */
const list = (...items: Record<string, unknown>[]): string => stringify({ apiVersion: 'v1', kind: 'List', items, metadata: { resourceVersion: '' } });

/** Honoured and harmless keys only (v2, flat). */
const CLEAN = 'apiVersion: getambassador.io/v2\nkind: Mapping\nname: clean\nprefix: /seldon/ml/clean/\nservice: clean-main.ml:8000\ntimeout_ms: 5000\ndocs:\n  ignored: true\nstats_name: blue';
/** A class-3 key (`labels`) beside honoured ones; the deployment has a second, clean Mapping. */
const LABELLED =
  'apiVersion: ambassador/v1\nkind: Mapping\nname: limited\nprefix: /seldon/ml/limited/a/\nservice: limited-main.ml:8000\nlabels:\n  ambassador:\n    - request_label: [x]\n---\napiVersion: ambassador/v1\nkind: Mapping\nname: fine\nprefix: /seldon/ml/limited/b/\nservice: limited-main.ml:8000';
/** The v3alpha1 resource shape, with a key nobody knows. */
const V3 = 'apiVersion: getambassador.io/v3alpha1\nkind: Mapping\nmetadata:\n  name: v3\nspec:\n  prefix: /seldon/ml/v3/\n  service: v3-main.ml:8000\n  frobnicate: 1';
/** A Module in an annotation: never read (a tenant does not set cluster-wide config), beside a clean Mapping. */
const MODULE_IN_ANNOTATION =
  'apiVersion: getambassador.io/v2\nkind: Module\nname: ambassador\nconfig:\n  lua_scripts: x\n---\napiVersion: getambassador.io/v2\nkind: Mapping\nname: tenant\nprefix: /seldon/ml/tenant/\nservice: tenant-main.ml:8000';

const MODULE_OK =
  'apiVersion: getambassador.io/v2\nkind: Module\nname: ambassador\nconfig:\n  max_request_headers_kb: 96\n  diagnostics:\n    enabled: false\n' +
  '  server_name: seldon-edge\n  load_balancer:\n    policy: least_request\n  circuit_breakers:\n  - max_requests: 50\n' +
  '  error_response_overrides:\n  - on_status_code: 503\n    body:\n      text_format: busy\n';
const MODULE_BAD = 'apiVersion: getambassador.io/v2\nkind: Module\nname: ambassador\nconfig:\n  max_request_headers_kb: 96\n  diagnostics:\n    enabled: false\n  lua_scripts: x\n';

/** The line of `key` under Mapping `mapping` in the text report. */
function keyLine(out: string, mapping: string, key: string): string {
  const lines = out.split('\n');
  const at = lines.findIndex((l) => l.startsWith(`  Mapping "${mapping}": `));
  const end = lines.findIndex((l, i) => i > at && !l.startsWith('    '));
  return lines.slice(at + 1, end).find((l) => l.trim().startsWith(`${key} `)) ?? '';
}

describe('seldon-gateway migrate-check', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sgw-migrate-'));
    writeFileSync(join(dir, 'all.yaml'), list(sdep('ml', 'plain'), sdep('ml', 'clean', CLEAN), sdep('ml', 'limited', LABELLED), sdep('ml', 'v3', V3), sdep('ml', 'tenant', MODULE_IN_ANNOTATION)));
    writeFileSync(join(dir, 'clean.yaml'), list(sdep('ml', 'plain'), sdep('ml', 'clean', CLEAN), sdep('ml', 'tenant', MODULE_IN_ANNOTATION)));
    writeFileSync(join(dir, 'module-ok.yaml'), MODULE_OK);
    writeFileSync(join(dir, 'module-bad.yaml'), MODULE_BAD);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints every key with its class and why; a class-3 key drops its Mapping and exits 1', () => {
    const r = cli([join(dir, 'all.yaml'), '--ambassador-module', join(dir, 'module-ok.yaml')]);
    expect(r.err).toBe('');
    expect(r.code).toBe(1);
    const out = r.out;
    expect(out).toContain('SeldonDeployment ml/plain: accepted\n  no seldon.io/ambassador-config: generated routes only');
    // Honoured and harmless, with the table's own words.
    expect(out).toContain('Mapping "clean": served');
    for (const key of ['prefix', 'service', 'timeout_ms']) expect(keyLine(out, 'clean', key)).toMatch(new RegExp(`^ +${key} +honoured +${escape(MAPPING_KEYS[key]!.why)}$`));
    for (const key of ['docs', 'stats_name']) expect(keyLine(out, 'clean', key)).toMatch(new RegExp(`^ +${key} +harmless +${escape(MAPPING_KEYS[key]!.why)}$`));
    // Class 3: its Mapping dropped with the reason; the other Mapping of the deployment served.
    expect(out).toContain('SeldonDeployment ml/limited: degraded');
    expect(out).toMatch(/Mapping "limited": DROPPED: key "labels" \(rate limit labels need a RateLimitService; use seldon\.io\/gateway-rate-limit\) not honoured/);
    expect(keyLine(out, 'limited', 'labels')).toMatch(/^ +labels +drops +rate limit labels need a RateLimitService/);
    expect(out).toContain('Mapping "fine": served');
    // v3alpha1's shape, read as the annotation form; an unknown key drops it (and with it, the deployment).
    expect(out).toContain('SeldonDeployment ml/v3: rejected');
    expect(keyLine(out, 'v3', 'frobnicate')).toMatch(/^ +frobnicate +drops +not a Mapping key the gateway knows$/);
    expect(keyLine(out, 'v3', 'prefix')).toMatch(/ honoured /);
    // A Module in an annotation stays ignored.
    expect(out).toContain('Mapping "tenant": served');
    expect(out).toMatch(/SeldonDeployment ml\/tenant: degraded[\s\S]*- kind Module is not supported: ignored/);
    // The Module's keys.
    expect(out).toMatch(/ambassador Module \(.*module-ok\.yaml\): accepted/);
    expect(out).toMatch(/\n +max_request_headers_kb +honoured +request heads up to 96 KiB/);
    expect(out).toMatch(/\n +diagnostics +harmless +Emissary's diagnostics pages/);
    expect(out).toMatch(/\n +server_name +honoured +every answer's Server field is "seldon-edge"/);
    expect(out).toMatch(/\n +load_balancer +honoured +least_request: the balancer of every route/);
    expect(out).toMatch(/\n +circuit_breakers +honoured +connections 1024, pending 1024, requests 50, retries 3: the breaker of every route/);
    expect(out).toMatch(/\n +error_response_overrides +honoured +the bodies of REST answers with a listed status/);
    expect(out).toContain('5 SeldonDeployments, 5 Mappings, 2 would be dropped; the Module is accepted.');
  });

  it('nothing dropped, the Module accepted: exit 0; the same from stdin', () => {
    const text = list(sdep('ml', 'plain'), sdep('ml', 'clean', CLEAN));
    for (const r of [cli([join(dir, 'clean.yaml'), '--ambassador-module', join(dir, 'module-ok.yaml')]), cli(['--ambassador-module', join(dir, 'module-ok.yaml')], text), cli(['-'], text)]) {
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toContain('Mapping "clean": served');
    }
  });

  it('a Module key the gateway does not honour: refused, exit 1', () => {
    const r = cli([join(dir, 'clean.yaml'), '--ambassador-module', join(dir, 'module-bad.yaml')]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/ambassador Module \(.*\): REFUSED: the gateway would not start with it/);
    expect(r.out).toMatch(/\n +lua_scripts +refused +Lua scripts are not run/);
  });

  it('--json: the same verdicts for a program', () => {
    const r = cli([join(dir, 'all.yaml'), '--json']);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out) as { deployments: { key: string; mappings: { name: string; dropped: string | null; keys: { key: string; class: string }[] }[] }[] };
    const limited = j.deployments.find((d) => d.key === 'ml/limited')!;
    expect(limited.mappings.map((m) => [m.name, m.dropped === null])).toEqual([
      ['limited', false],
      ['fine', true],
    ]);
    expect(limited.mappings[0]!.keys.find((k) => k.key === 'labels')!.class).toBe('drops');
  });

  it('names every difference from Emissary that remains by design, in the text and the JSON, each one in the migration guide; they change no exit code', () => {
    const r = cli([join(dir, 'clean.yaml')]);
    expect(r.code).toBe(0);
    const at = r.out.indexOf('Differences from Emissary by design');
    expect(at).toBeGreaterThan(0);
    const listed = r.out
      .slice(at)
      .split('\n')
      .filter((l) => l.startsWith('  - '));
    expect(listed).toEqual(DESIGN_DIFFERENCES.map((d) => `  - ${d.topic}: Emissary ${d.emissary}; the gateway: ${d.gateway}`));
    for (const topic of ['internal addresses', 'Host validation', 'X-Forwarded-For with a port or brackets'])
      expect(
        listed.some((l) => l.startsWith(`  - ${topic}: `)),
        topic,
      ).toBe(true);
    const j = JSON.parse(cli([join(dir, 'clean.yaml'), '--json']).out) as { differences: unknown };
    expect(j.differences).toEqual(DESIGN_DIFFERENCES);
    const guide = readFileSync(join(root, 'docs/migrating-from-ambassador.md'), 'utf8');
    for (const d of DESIGN_DIFFERENCES) expect(guide, d.topic).toContain(d.topic);
  });

  it('custom prefixes as serve has them: a prefix outside the namespace is dropped unless granted', () => {
    const doc = list(sdep('seldon', 'production-model', 'apiVersion: ambassador/v1\nkind: Mapping\nname: ex\nprefix: /mycompany/ml/\nservice: production-model-example.seldon:8000'));
    const without = cli(['-'], doc);
    expect(without.code).toBe(1);
    expect(without.out).toContain('(--custom-config-prefixes seldon=/prefix/ grants more)');
    const granted = cli(['-', '--custom-config-prefixes', 'seldon=/mycompany/'], doc);
    expect(granted.code).toBe(0);
    expect(granted.out).toContain('Mapping "ex": served');
  });

  it("another gateway's deployment (its ambassador-id) is neither served nor dropped here: exit 0", () => {
    const green = sdep('ml', 'green', 'apiVersion: ambassador/v1\nkind: Mapping\nname: g\nprefix: /seldon/ml/green/\nservice: green-main.ml:8000\nambassador_id: green');
    const r = cli(['-'], list(green));
    expect(r.code).toBe(0);
    expect(r.out).toContain('SeldonDeployment ml/green: skipped');
    expect(r.out).toMatch(/Mapping "g": not this gateway's: /);
    const served = cli(['-', '--ambassador-id', 'green'], list(green));
    expect(served.code).toBe(0);
    expect(served.out).toContain('Mapping "g": served');
  });

  it("a Mapping without ambassador_id is the default gateway's, whatever its deployment's id: each gateway names the other's Mapping, exit 0", () => {
    const blue = sdep(
      'ml',
      'blue',
      'apiVersion: ambassador/v1\nkind: Mapping\nname: b\nprefix: /seldon/ml/blue/b/\nservice: blue-main.ml:8000\nambassador_id: blue\n---\napiVersion: ambassador/v1\nkind: Mapping\nname: u\nprefix: /seldon/ml/blue/u/\nservice: blue-main.ml:8000',
    );
    (blue.metadata as Record<string, Record<string, string>>).annotations!['seldon.io/ambassador-id'] = 'blue';
    const dflt = cli(['-'], list(blue));
    expect(dflt.code).toBe(0);
    expect(dflt.out).toContain('SeldonDeployment ml/blue: accepted');
    expect(dflt.out).toContain('Mapping "b": not this gateway\'s: its ambassador_id ["blue"] does not name "default"');
    expect(dflt.out).toContain('Mapping "u": served');
    const onBlue = cli(['-', '--ambassador-id', 'blue'], list(blue));
    expect(onBlue.code).toBe(0);
    expect(onBlue.out).toContain('SeldonDeployment ml/blue: degraded');
    expect(onBlue.out).toContain('Mapping "b": served');
    expect(onBlue.out).toContain(
      'Mapping "u": not this gateway\'s: it has no ambassador_id, so Emissary serves it on the "default" gateway only, not on "blue" (the deployment\'s seldon.io/ambassador-id reaches generated Mappings only): add ambassador_id: blue to serve it here',
    );
    expect(onBlue.out).not.toContain('  - Mapping "u" skipped');
  });

  it('names every Ambassador resource among the manifests that the gateway does not read, with what to use instead: exit 1', () => {
    // What Emissary's KAT classes of t_hosts, t_tls, t_tcpmapping, t_ingress, t_tracing, t_ratelimit, t_logservice
    // and t_consul configure, as `kubectl get … -A -o yaml` prints them beside the SeldonDeployments.
    const res = (apiVersion: string, kind: string, name: string, spec: Record<string, unknown> = {}): Record<string, unknown> => ({ apiVersion, kind, metadata: { name, namespace: 'ml' }, spec });
    const hosts = stringify({ apiVersion: 'getambassador.io/v3alpha1', kind: 'HostList', items: [{ metadata: { name: 'edge', namespace: 'ml' }, spec: { hostname: 'api.example.com' } }] });
    const others = list(
      sdep('ml', 'clean', CLEAN),
      res('getambassador.io/v3alpha1', 'TLSContext', 'ctx', { secret: 's', min_tls_version: 'v1.2' }),
      res('getambassador.io/v3alpha1', 'TCPMapping', 'tcp', { port: 6789, service: 'x:80' }),
      res('networking.k8s.io/v1', 'Ingress', 'ing'),
      res('getambassador.io/v2', 'TracingService', 'tracing', { service: 'zipkin:9411', driver: 'zipkin' }),
      res('getambassador.io/v3alpha1', 'RateLimitService', 'rl'),
      res('getambassador.io/v3alpha1', 'LogService', 'als'),
      res('getambassador.io/v3alpha1', 'ConsulResolver', 'consul'),
      res('getambassador.io/v3alpha1', 'Mapping', 'other-app', { prefix: '/other/', service: 'other:80' }),
      // Not Ambassador's, or read: not named.
      res('v1', 'Service', 'svc'),
      res('getambassador.io/v3alpha1', 'KubernetesEndpointResolver', 'endpoint'),
    );
    const d = mkdtempSync(join(tmpdir(), 'sgw-unread-'));
    try {
      writeFileSync(join(d, 'hosts.yaml'), hosts);
      writeFileSync(join(d, 'all.yaml'), others);
      const r = cli([d]);
      expect(r.err).toBe('');
      expect(r.code).toBe(1);
      const named = r.out.split('\n').filter((l) => l.startsWith('  NOT READ '));
      expect(named).toEqual([
        `  NOT READ TLSContext ml/ctx: instead, ${UNREAD_KINDS.TLSContext!.instead}`,
        `  NOT READ TCPMapping ml/tcp: instead, ${UNREAD_KINDS.TCPMapping!.instead}`,
        '  NOT READ Ingress ml/ing: instead, none: the gateway reads SeldonDeployments only; keep an ingress controller for Ingress resources',
        `  NOT READ TracingService ml/tracing: instead, ${UNREAD_KINDS.TracingService!.instead}`,
        `  NOT READ RateLimitService ml/rl: instead, ${UNREAD_KINDS.RateLimitService!.instead}`,
        `  NOT READ LogService ml/als: instead, ${UNREAD_KINDS.LogService!.instead}`,
        `  NOT READ ConsulResolver ml/consul: instead, ${UNREAD_KINDS.ConsulResolver!.instead}`,
        `  NOT READ Mapping ml/other-app: instead, ${UNREAD_KINDS.Mapping!.instead}`,
        `  NOT READ Host ml/edge: instead, ${UNREAD_KINDS.Host!.instead}`,
      ]);
      // The SeldonDeployment beside them is served as ever.
      expect(r.out).toContain('Mapping "clean": served');
      const j = JSON.parse(cli([d, '--json']).out) as { unreadResources: { kind: string; name: string }[] };
      expect(j.unreadResources.map((u) => `${u.kind} ${u.name}`)).toEqual(named.map((l) => l.slice('  NOT READ '.length, l.indexOf(':'))));
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
    // None of them: nothing named, exit 0.
    const clean = cli([join(dir, 'clean.yaml')]);
    expect(clean.code).toBe(0);
    expect(clean.out).not.toContain('NOT READ');
  });

  it('a kind the gateway does not read, inside seldon.io/ambassador-config: ignored with what to use instead, the Mappings beside it served', () => {
    const text = 'apiVersion: getambassador.io/v3alpha1\nkind: Host\nname: h\nhostname: api.example.com\n---\n' + CLEAN;
    const r = cli(['-'], list(sdep('ml', 'clean', text)));
    expect(r.out).toContain('Mapping "clean": served');
    expect(r.out).toContain(`  - kind Host is not supported: ignored; instead: ${UNREAD_KINDS.Host!.instead}`);
  });

  it('the migration guide names every kind the gateway does not read', () => {
    const guide = readFileSync(join(root, 'docs/migrating-from-ambassador.md'), 'utf8');
    const section = guide.slice(guide.indexOf('## What is served and what is not'), guide.indexOf('## The ambassador Module'));
    for (const kind of [...Object.keys(UNREAD_KINDS), 'Ingress']) expect(section, kind).toContain(`\`${kind}\``);
  });

  it('usage errors exit 2', () => {
    expect(cli([join(dir, 'nope.yaml')]).code).toBe(2);
    expect(cli([join(dir, 'all.yaml'), join(dir, 'clean.yaml')]).code).toBe(2);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
