/**
 * Values read with Emissary's meaning, over real sockets, as the model and the client see them:
 * `per_try_timeout` (a duration string; a bare YAML number drops its Mapping), `add_linkerd_headers`
 * (the Mapping's, the Module's on every route), the Module's `use_ambassador_namespace_for_service_resolution`,
 * `resolver`, `cors` with `origins: "*"` (the Origin echoed, as a Mapping's) and `circuit_breakers`
 * with `max_retries: 0` (no retry, Envoy's 0). Ported expectations from Emissary's KAT classes
 * RetryPolicyTest (t_retrypolicy.py) and GlobalCorsTest (t_cors.py) are named after them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend, type HttpRequestRecord } from '../../fixtures/http-backend.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { routesReport } from '../../helpers/observability.js';

const NS = 'models';
const mapping = (name: string, service: string, extra = ''): string =>
  `apiVersion: getambassador.io/v3alpha1\nkind: Mapping\nname: ${name}\nprefix: /seldon/${NS}/${name}/\nservice: ${service}\ntimeout_ms: 10000\n${extra}`;

/** The requests the model received carrying `x-case: id`. */
const byCase = (model: HttpBackend, id: string): HttpRequestRecord[] => model.requests.filter((r) => r.headers['x-case'] === id);

async function post(port: number, path: string, id: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const r = await request(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-case': id, ...headers }, body: '{}' });
  return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
}

describe('Mapping values with Emissary meaning', () => {
  let model: HttpBackend;
  let gw: TestGateway;
  beforeAll(async () => {
    model = await startHttpBackend({ name: 'model' });
    const config = [
      // RetryPolicyTest's shape, with a per-try timeout written as Emissary's CRD types it: a string.
      mapping('pertry', `model.${NS}:8000`, 'retry_policy:\n  retry_on: 5xx\n  num_retries: 2\n  per_try_timeout: "0.5s"'),
      // A YAML number has no unit: once 0.5 ms (every request 504 after its retries); now the Mapping is dropped.
      mapping('pertry-number', `model.${NS}:8000`, 'retry_policy:\n  retry_on: 5xx\n  num_retries: 2\n  per_try_timeout: 0.5'),
      mapping('linkerd', 'l5d-model:8000', 'add_linkerd_headers: true\nadd_request_headers:\n  l5d-dst-override: mine.example:1'),
      mapping('linkerd-qualified', `l5d-model.${NS}`, 'add_linkerd_headers: true'),
      mapping('no-linkerd', `model.${NS}:8000`, 'add_linkerd_headers: false'),
      // Envoy's max_retries 0: no retry may be made; once read as "unset" and replaced by 3.
      mapping('noretry', `model.${NS}:8000`, 'retry_policy:\n  retry_on: 5xx\n  num_retries: 3\ncircuit_breakers:\n  - max_retries: 0'),
      mapping('badbreaker', `model.${NS}:8000`, 'circuit_breakers:\n  - max_retries: -1'),
    ].join('\n---\n');
    gw = await startTestGateway({
      manifests: { 'm.yaml': sdep('m', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': config }) },
      resolve: { [`model.${NS}:8000`]: model.port, [`l5d-model.${NS}:8000`]: model.port, [`l5d-model.${NS}:80`]: model.port },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
  });

  it('RetryPolicyTest: per_try_timeout "0.5s" ends an attempt that has not answered in 0.5 s; the retry answers the client', async () => {
    let attempt = 0;
    model.setHandler((req, res) => {
      if (req.headers['x-case'] !== 'pertry') return;
      attempt++;
      // The first attempt never answers (it is ended by the per-try timeout); the second at once.
      if (attempt === 1) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ attempt }));
    });
    try {
      const r = await post(gw.port, `/seldon/${NS}/pertry/`, 'pertry');
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toEqual({ attempt: 2 });
      expect(byCase(model, 'pertry')).toHaveLength(2);
    } finally {
      model.setHandler(undefined);
    }
  });

  it('per_try_timeout: 0.5 (a bare YAML number) drops its Mapping with the reason; nothing reaches the model', async () => {
    const r = await post(gw.port, `/seldon/${NS}/pertry-number/`, 'pertry-number');
    expect(r.status).toBe(404);
    expect(byCase(model, 'pertry-number')).toHaveLength(0);
    const report = await routesReport(gw.adminUrl, 'm');
    expect(report.state).toBe('degraded');
    expect(report.reasons).toContain(
      'Mapping "pertry-number" dropped: retry_policy.per_try_timeout 0.5 is not a duration string like "500ms" or "2s" (a bare number has no unit; quote it with one)',
    );
    expect(report.reasons).toContain('Mapping "badbreaker" dropped: circuit_breakers: [0].max_retries: -1 is not a whole number of at least 0');
  });

  it("add_linkerd_headers: the model receives l5d-dst-override with the service's host qualified by the Mapping's namespace and its port; the client's and the Mapping's own value are replaced", async () => {
    const r = await post(gw.port, `/seldon/${NS}/linkerd/`, 'l5d', { 'l5d-dst-override': 'evil.kube-system:443' });
    expect(r.status).toBe(200);
    const [got] = byCase(model, 'l5d');
    expect(got!.rawHeaders.filter((_, i, a) => i % 2 === 0 && a[i]!.toLowerCase() === 'l5d-dst-override')).toHaveLength(1);
    expect(got!.headers['l5d-dst-override']).toBe(`l5d-model.${NS}:8000`);
    // A name with its namespace is kept as written; no port: the scheme's, 80.
    await post(gw.port, `/seldon/${NS}/linkerd-qualified/`, 'l5d-q');
    expect(byCase(model, 'l5d-q')[0]!.headers['l5d-dst-override']).toBe(`l5d-model.${NS}:80`);
    // Off: the client's own passes as any header does, none is added.
    await post(gw.port, `/seldon/${NS}/no-linkerd/`, 'l5d-off', { 'l5d-dst-override': 'client.example:1' });
    expect(byCase(model, 'l5d-off')[0]!.headers['l5d-dst-override']).toBe('client.example:1');
  });

  it('circuit_breakers max_retries: 0 is Envoy\'s "no retry": a 503 reaches the client after one attempt', async () => {
    model.setHandler((req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"from":"model"}');
    });
    try {
      const r = await post(gw.port, `/seldon/${NS}/noretry/`, 'noretry');
      expect(r.status).toBe(503);
      expect(r.body).toBe('{"from":"model"}');
      expect(byCase(model, 'noretry')).toHaveLength(1);
    } finally {
      model.setHandler(undefined);
    }
  });
});

describe('Module keys with Emissary meaning', () => {
  let model: HttpBackend;
  let gw: TestGateway;
  let dir: string;
  beforeAll(async () => {
    model = await startHttpBackend({ name: 'model' });
    dir = mkdtempSync(join(tmpdir(), 'sgw-module-values-'));
    const file = join(dir, 'module.yaml');
    writeFileSync(
      file,
      [
        'apiVersion: getambassador.io/v3alpha1',
        'kind: Module',
        'name: ambassador',
        'config:',
        '  add_linkerd_headers: true',
        '  use_ambassador_namespace_for_service_resolution: true',
        '  resolver: kubernetes-endpoint',
        '  cors:',
        '    origins: "*"',
        '    colour: red',
      ].join('\n'),
    );
    const config = [
      // No namespace in the name: a Service of the gateway's namespace (--namespace, "default" here), not of "models".
      mapping('shared', 'shared-model:8000'),
      mapping('own-l5d-off', `model.${NS}:8000`, 'add_linkerd_headers: false'),
    ].join('\n---\n');
    gw = await startTestGateway({
      manifests: {
        'm.yaml': sdep('m', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': config }),
        'iris.yaml': sdep('iris', NS, { predictors: [{ name: 'main' }] }),
      },
      // Only the gateway's namespace has shared-model: the Mapping's own namespace does not.
      resolve: { 'shared-model.default:8000': model.port, [`model.${NS}:8000`]: model.port, [`iris-main.${NS}:8000`]: model.port },
      args: ['--ambassador-module', file, '--custom-config-scope', 'cluster'],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("use_ambassador_namespace_for_service_resolution: a service without a namespace is the gateway namespace's; l5d-dst-override names it unqualified, as Emissary writes it", async () => {
    const r = await post(gw.port, `/seldon/${NS}/shared/`, 'shared');
    expect(r.status).toBe(200);
    const [got] = byCase(model, 'shared');
    expect(got!.headers['l5d-dst-override']).toBe('shared-model:8000');
    const routes = await request(`${gw.adminUrl}/routes`);
    expect(await routes.body.text()).toContain('shared-model.default:8000');
  });

  it("add_linkerd_headers in the Module: Seldon's own routes send <svc>.<ns>:<port>; a Mapping's false keeps it off", async () => {
    await post(gw.port, `/seldon/${NS}/iris/api/v1.0/predictions`, 'iris');
    expect(byCase(model, 'iris')[0]!.headers['l5d-dst-override']).toBe(`iris-main.${NS}:8000`);
    await post(gw.port, `/seldon/${NS}/own-l5d-off/`, 'off');
    expect(byCase(model, 'off')[0]!.headers['l5d-dst-override']).toBeUndefined();
  });

  it('GlobalCorsTest with origins "*": the Module\'s policy echoes the Origin, as a Mapping\'s does (Envoy); an unknown key is ignored, not a refusal', async () => {
    const r = await post(gw.port, `/seldon/${NS}/iris/api/v1.0/predictions`, 'cors', { origin: 'https://app.example' });
    expect(r.status).toBe(200);
    expect(r.headers['access-control-allow-origin']).toBe('https://app.example');
    const pre = await request(`http://127.0.0.1:${gw.port}/seldon/${NS}/iris/api/v1.0/predictions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://other.example', 'access-control-request-method': 'POST', 'x-case': 'cors-pre' },
    });
    await pre.body.dump();
    expect(pre.statusCode).toBe(200);
    expect(pre.headers['access-control-allow-origin']).toBe('https://other.example');
    expect(byCase(model, 'cors-pre')).toHaveLength(0);
  });
});
