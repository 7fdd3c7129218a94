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
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
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

/**
 * `n` requests at once on `path` while the model holds every request it receives, until `refused` of
 * them have been answered and `atModel` are held by the model together (the breaker's connections): the
 * statuses and `x-envoy-overloaded` of the answers, and how many requests the model received (it answers
 * them once released).
 */
async function concurrently(
  gw: TestGateway,
  model: HttpBackend,
  path: string,
  id: string,
  n: number,
  refused: number,
  atModel: number,
): Promise<{ ok: number; overloaded: number; other: number; received: number }> {
  const held: (() => void)[] = [];
  let released = false;
  model.setHandler((req, res) => {
    const answer = (): void => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    };
    if (released) answer();
    else held.push(answer);
  });
  let done = 0;
  const answers = Array.from({ length: n }, () =>
    post(gw.port, path, id).finally(() => {
      done++;
    }),
  );
  try {
    // Every request beyond what the breaker admits is answered at once; the admitted wait on the model.
    await waitFor(() => done === refused && held.length === atModel, 10_000);
    expect([done, held.length]).toEqual([refused, atModel]);
    released = true;
    for (const h of held.splice(0)) h();
    const got = await Promise.all(answers);
    return {
      ok: got.filter((a) => a.status === 200).length,
      overloaded: got.filter((a) => a.status === 503 && a.headers['x-envoy-overloaded'] === 'true').length,
      other: got.filter((a) => a.status !== 200 && !(a.status === 503 && a.headers['x-envoy-overloaded'] === 'true')).length,
      received: byCase(model, id).length,
    };
  } finally {
    model.setHandler(undefined);
  }
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
    expect(report.reasons).toContain('Mapping "pertry-number" dropped: retry_policy.per_try_timeout 0.5 is not a duration string like "500ms" or "2s" (a bare number has no unit; quote it with one)');
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

describe('Mapping circuit breakers', () => {
  let model: HttpBackend;
  let gw: TestGateway;
  beforeAll(async () => {
    model = await startHttpBackend({ name: 'model' });
    const config = mapping('cb-pr', `model.${NS}:8000`, 'circuit_breakers:\n- priority: default\n  max_pending_requests: 1\n  max_connections: 1');
    gw = await startTestGateway({
      manifests: { 'm.yaml': sdep('m', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': config }) },
      resolve: { [`model.${NS}:8000`]: model.port },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
  });

  it('CircuitBreakingTest: max_connections 1, max_pending_requests 1: of 12 at once, 2 reach the model (one by one) and 10 get 503 x-envoy-overloaded, no error', async () => {
    expect(await concurrently(gw, model, `/seldon/${NS}/cb-pr/`, 'cb', 12, 10, 1)).toEqual({ ok: 2, overloaded: 10, other: 0, received: 2 });
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
        // GlobalCircuitBreakingTest's Module.
        '  circuit_breakers:',
        '  - priority: default',
        '    max_pending_requests: "5"',
        '    max_connections: 5',
      ].join('\n'),
    );
    const config = [
      // No namespace in the name: a Service of the gateway's namespace (--namespace, "default" here), not of "models".
      mapping('shared', 'shared-model:8000'),
      mapping('own-l5d-off', `model.${NS}:8000`, 'add_linkerd_headers: false'),
      // GlobalCircuitBreakingTest's Mappings: one with breakers of its own, one with the Module's.
      mapping('gcb-pr', `model.${NS}:8000`, 'circuit_breakers:\n- priority: default\n  max_pending_requests: 1024\n  max_connections: 1024'),
      mapping('gcb-normal', `model.${NS}:8000`),
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

  it("GlobalCircuitBreakingTest: the Module's breaker (5 connections, 5 pending) on a Mapping with none; a Mapping's own replaces it", async () => {
    expect(await concurrently(gw, model, `/seldon/${NS}/gcb-normal/`, 'gcb-normal', 14, 4, 5)).toEqual({ ok: 10, overloaded: 4, other: 0, received: 10 });
    expect(await concurrently(gw, model, `/seldon/${NS}/gcb-pr/`, 'gcb-pr', 14, 0, 14)).toEqual({ ok: 14, overloaded: 0, other: 0, received: 14 });
  });
});
