/**
 * A canary pair of Mappings (one route in Emissary: one IRHTTPMappingGroup) whose Mappings carry different
 * values of the keys Envoy's route takes from the group, over real sockets: what each model received and
 * what the client got back. `add_request_headers` / `add_response_headers` are merged over the pair,
 * `retry_policy` and `cors` are the canary's for both (the last by name that sets them), `timeout_ms` stays
 * each Mapping's own; the deployment's report says so (docs/routing.md#groups-of-mappings).
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend, type HttpRequestRecord } from '../../fixtures/http-backend.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { routesReport } from '../../helpers/observability.js';

const NS = 'models';
const PATH = `/seldon/${NS}/pair/api/v1.0/predictions`;
const APP = 'https://app.example';

const CONFIG = [
  [
    'name: pair',
    `prefix: /seldon/${NS}/pair/`,
    `service: stable.${NS}:8000`,
    'timeout_ms: 10000',
    'add_request_headers:',
    '  x-stable: s',
    '  x-shared: from-stable',
    'add_response_headers:',
    '  x-answered-by-route: pair',
  ],
  [
    'name: pair-canary',
    `prefix: /seldon/${NS}/pair/`,
    `service: canary.${NS}:8000`,
    'weight: 50',
    'timeout_ms: 10000',
    'add_request_headers:',
    '  x-canary: c',
    '  x-shared: from-canary',
    'retry_policy:',
    '  retry_on: 5xx',
    '  num_retries: 1',
    'cors:',
    `  origins: ${APP}`,
    '  methods: POST',
  ],
]
  .map((lines) => ['apiVersion: getambassador.io/v3alpha1', 'kind: Mapping', ...lines].join('\n'))
  .join('\n---\n');

const byCase = (model: HttpBackend, id: string): HttpRequestRecord[] => model.requests.filter((r) => r.headers['x-case'] === id);

async function post(port: number, id: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const r = await request(`http://127.0.0.1:${port}${PATH}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-case': id, ...headers }, body: '{}' });
  return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
}

describe('a canary pair whose Mappings set different group-level keys', () => {
  let stable: HttpBackend;
  let canary: HttpBackend;
  let gw: TestGateway;
  beforeAll(async () => {
    stable = await startHttpBackend({ name: 'stable' });
    canary = await startHttpBackend({ name: 'canary' });
    gw = await startTestGateway({
      manifests: { 'm.yaml': sdep('m', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CONFIG }) },
      resolve: { [`stable.${NS}:8000`]: stable.port, [`canary.${NS}:8000`]: canary.port },
      // The pick between the two Mappings is seeded: the same requests go to the same model on every run.
      args: ['--random-seed', '74'],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await stable?.close();
    await canary?.close();
  });

  it("both models receive the merged add_request_headers (the canary's x-shared); every answer carries the stable Mapping's add_response_headers", async () => {
    const answers = [];
    for (let i = 0; i < 16; i++) answers.push(await post(gw.port, 'headers'));
    const got = [...byCase(stable, 'headers'), ...byCase(canary, 'headers')];
    expect(got).toHaveLength(16);
    // Both Mappings were picked: each model's requests show what the route, not the Mapping, adds.
    expect(byCase(stable, 'headers').length).toBeGreaterThan(0);
    expect(byCase(canary, 'headers').length).toBeGreaterThan(0);
    for (const r of got) expect([r.headers['x-stable'], r.headers['x-canary'], r.headers['x-shared']]).toEqual(['s', 'c', 'from-canary']);
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.headers['x-answered-by-route']).toBe('pair');
    }
  });

  it("the canary's retry_policy retries the stable Mapping's 503 too, at the same model: the client gets the second answer", async () => {
    for (const model of [stable, canary]) {
      const seen = new Set<string>();
      model.setHandler((req, res) => {
        const id = String(req.headers['x-case']);
        const first = !seen.has(id);
        seen.add(id);
        res.writeHead(first ? 503 : 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ from: model.name, attempt: first ? 1 : 2 }));
      });
    }
    try {
      for (let i = 0; i < 8; i++) {
        const id = `retry-${i}`;
        const r = await post(gw.port, id);
        const at = byCase(stable, id).length > 0 ? stable : canary;
        expect(r.status).toBe(200);
        expect(JSON.parse(r.body)).toEqual({ from: at.name, attempt: 2 });
        expect([byCase(stable, id).length, byCase(canary, id).length]).toEqual(at === stable ? [2, 0] : [0, 2]);
      }
      // The seeded picks put some of these on the stable Mapping, which sets no retry_policy of its own.
      expect(stable.requests.filter((r) => String(r.headers['x-case']).startsWith('retry-')).length).toBeGreaterThan(0);
    } finally {
      stable.setHandler(undefined);
      canary.setHandler(undefined);
    }
  });

  it("the canary's cors is the route's: a preflight is answered by the gateway, and an answer from the stable model carries the policy's headers", async () => {
    const pre = await request(`http://127.0.0.1:${gw.port}${PATH}`, { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'POST', 'x-case': 'preflight' } });
    await pre.body.text();
    expect(pre.statusCode).toBe(200);
    expect([pre.headers['access-control-allow-origin'], pre.headers['access-control-allow-methods']]).toEqual([APP, 'POST']);
    expect([...byCase(stable, 'preflight'), ...byCase(canary, 'preflight')]).toHaveLength(0);
    const origins: Record<string, unknown[]> = { stable: [], canary: [] };
    for (let i = 0; i < 16; i++) {
      const id = `cors-${i}`;
      const r = await post(gw.port, id, { origin: APP });
      expect(r.status).toBe(200);
      origins[byCase(stable, id).length > 0 ? 'stable' : 'canary']!.push(r.headers['access-control-allow-origin']);
    }
    expect(origins.stable!.length).toBeGreaterThan(0);
    expect(new Set([...origins.stable!, ...origins.canary!])).toEqual(new Set([APP]));
  });

  it('the report tells the team which keys the group takes from which Mapping', async () => {
    const report = await routesReport(gw.adminUrl, 'm');
    const mine = report.reasons.filter((r) => r.includes("is the route's in Emissary"));
    expect(mine).toEqual([
      `/seldon/${NS}/pair/: add_request_headers is the route's in Emissary, not each Mapping's: merged from ${NS}/m/pair, ${NS}/m/pair-canary applies to every Mapping of the group, also to ${NS}/m/pair, ${NS}/m/pair-canary, which set it otherwise or not at all`,
      `/seldon/${NS}/pair/: add_response_headers is the route's in Emissary, not each Mapping's: merged from ${NS}/m/pair applies to every Mapping of the group, also to ${NS}/m/pair-canary, which sets it otherwise or not at all`,
      `/seldon/${NS}/pair/: cors is the route's in Emissary, not each Mapping's: ${NS}/m/pair-canary's (the last by name that sets it) applies to every Mapping of the group, also to ${NS}/m/pair, which sets it otherwise or not at all`,
      `/seldon/${NS}/pair/: retry_policy is the route's in Emissary, not each Mapping's: ${NS}/m/pair-canary's (the last by name that sets it) applies to every Mapping of the group, also to ${NS}/m/pair, which sets it otherwise or not at all`,
    ]);
    expect(report.state).toBe('degraded');
  });
});
