/**
 * Hand-written Ambassador Mappings end to end (docs/routing.md#mapping-keys): a real gateway, one recording
 * model per Mapping, real sockets. Mappings that differ by method, query parameters, Host, path form or
 * precedence are different routes, each request reaches the one Emissary would send it to, nothing
 * else; a Mapping with a key the gateway does not honour receives nothing and /routes says why.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest, startRecordingUpstream, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';

const NS = 'seldon';
const P = `/seldon/${NS}`;

const doc = (lines: string[]): string => ['apiVersion: getambassador.io/v2', 'kind: Mapping', ...lines].join('\n');

/** The three Mappings a team wrote on one prefix: metadata by GET, predictions by POST, v2 by query. */
const API = [
  doc(['name: meta', `prefix: ${P}/api/`, 'method: GET', 'service: meta-svc']),
  doc(['name: predict', `prefix: ${P}/api/`, 'method: POST', 'service: predict-svc']),
  doc(['name: v2', `prefix: ${P}/api/`, 'query_parameters:', '  version: "2"', 'service: v2-svc']),
].join('\n---\n');

/** Every other match key, one Mapping each (services named after the Mapping). */
const KEYS = [
  doc(['name: plain', `prefix: ${P}/k/`, 'service: plain-svc']),
  doc(['name: glob', `prefix: ${P}/k/`, 'hostname: "*.example.com"', 'service: glob-svc']),
  doc(['name: hostre', `prefix: ${P}/k/`, 'host: "^api[0-9]+\\\\.example\\\\.org$"', 'host_regex: true', 'service: hostre-svc']),
  doc(['name: exact', `prefix: ${P}/k/only`, 'prefix_exact: true', 'service: exact-svc']),
  doc(['name: nocase', `prefix: ${P}/Case/`, 'case_sensitive: false', 'service: nocase-svc']),
  doc(['name: low', `prefix: ${P}/k/long/path/`, 'service: low-svc']),
  doc(['name: high', `prefix: ${P}/k/`, 'precedence: 10', 'regex_query_parameters:', '  tier: "gold|platinum"', 'service: high-svc']),
  doc(['name: present', `prefix: ${P}/k/`, 'query_parameters:', '  debug: true', 'service: present-svc']),
  doc(['name: verbs', `prefix: ${P}/k/`, 'method: "PUT|PATCH"', 'method_regex: true', 'service: verbs-svc']),
  doc(['name: corsy', `prefix: ${P}/cors/`, 'cors:', '  origins: "*"', '  methods: [POST]', 'service: corsy-svc']),
  // A key the gateway does not honour: the Mapping is dropped, never routed without it.
  doc(['name: labelled', `prefix: ${P}/labelled/`, 'labels:', '  ambassador:', '  - request_label: [backend]', 'service: labelled-svc']),
].join('\n---\n');

const SERVICES = ['meta', 'predict', 'v2', 'plain', 'glob', 'hostre', 'exact', 'nocase', 'low', 'high', 'present', 'verbs', 'corsy', 'labelled'];

describe('hand-written Mappings: each key with its Emissary meaning', () => {
  const models: Record<string, RecordingUpstream> = {};
  let gw: TestGateway;

  beforeAll(async () => {
    const resolve: Record<string, number> = {};
    for (const s of SERVICES) {
      models[s] = await startRecordingUpstream({ name: s });
      resolve[`${s}-svc.${NS}:80`] = models[s]!.port;
    }
    gw = await startTestGateway({
      manifests: {
        'api.yaml': sdep('api', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': API }),
        'keys.yaml': sdep('keys', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': KEYS }),
      },
      resolve,
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await Promise.all(Object.values(models).map((m) => m.close()));
  });

  /** Who answered (the recording model's name), or the status when the gateway answered itself. */
  async function who(method: string, path: string, host = 'gw.example'): Promise<string> {
    const r = await request(`${gw.url}${path}`, { method, headers: { host, 'content-type': 'application/json' }, body: method === 'GET' || method === 'HEAD' ? null : '{}' });
    const body = await r.body.text();
    const upstream = r.headers['x-upstream'];
    return typeof upstream === 'string' ? upstream : `${r.statusCode} ${JSON.parse(body || '{}')?.status?.reason ?? ''}`.trim();
  }

  it('GET, POST and ?version=2 on one prefix reach three services, 0 of 300 elsewhere; other methods and queries get 404', async () => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 100; i++) {
      for (const [method, path] of [
        ['GET', `${P}/api/v1/metadata`],
        ['POST', `${P}/api/v1.0/predictions`],
        ['PUT', `${P}/api/v1.0/predictions?version=2`],
      ] as const) {
        const k = `${method} ${await who(method, path)}`;
        counts[k] = (counts[k] ?? 0) + 1;
      }
    }
    expect(counts).toEqual({ 'GET meta': 100, 'POST predict': 100, 'PUT v2': 100 });
    // Exactly those requests reached each model, with the path the Mapping's default rewrite gives.
    expect(models['meta']!.requests.map((r) => `${r.method} ${r.target}`)).toEqual(Array(100).fill('GET /v1/metadata'));
    expect(models['predict']!.requests.map((r) => `${r.method} ${r.target}`)).toEqual(Array(100).fill('POST /v1.0/predictions'));
    expect(models['v2']!.requests.map((r) => `${r.method} ${r.target}`)).toEqual(Array(100).fill('PUT /v1.0/predictions?version=2'));
    expect(await who('DELETE', `${P}/api/x`)).toBe('404 NO_ROUTE');
    expect(await who('PUT', `${P}/api/x?version=3`)).toBe('404 NO_ROUTE');
    expect(await who('PUT', `${P}/api/x?versions=2`)).toBe('404 NO_ROUTE');
    // Emissary's order: the :method constraints weigh more than the query's, so POST ?version=2 is a prediction.
    expect(await who('POST', `${P}/api/x?version=2`)).toBe('predict');
  });

  it('hostname globs, host_regex, and the Host as sent (case and port included) decide between Mappings on one prefix', async () => {
    expect(await who('GET', `${P}/k/x`, 'a.example.com')).toBe('glob');
    expect(await who('GET', `${P}/k/x`, 'Deep.A.example.com')).toBe('glob');
    // Emissary's `:authority` header matcher compares case: another case is another Host.
    expect(await who('GET', `${P}/k/x`, 'Deep.A.Example.COM')).toBe('plain');
    expect(await who('GET', `${P}/k/x`, 'API7.example.org')).toBe('plain');
    // Envoy matches :authority as sent: with a port, the glob's suffix no longer matches.
    expect(await who('GET', `${P}/k/x`, 'a.example.com:8080')).toBe('plain');
    expect(await who('GET', `${P}/k/x`, 'example.com')).toBe('plain');
    expect(await who('GET', `${P}/k/x`, 'api7.example.org')).toBe('hostre');
    expect(await who('GET', `${P}/k/x`, 'api7.example.org.evil')).toBe('plain');
  });

  it('prefix_exact matches the whole path only; case_sensitive: false any case; the model gets the rewritten path', async () => {
    expect(await who('GET', `${P}/k/only`)).toBe('exact');
    expect(await who('GET', `${P}/k/only?q=1`)).toBe('exact');
    expect(await who('GET', `${P}/k/only/more`)).toBe('plain');
    expect(models['exact']!.requests.map((r) => r.target)).toEqual(['/', '/?q=1']);
    for (const path of [`${P}/case/a`, `${P}/CASE/b`, `${P}/Case/c`]) expect(await who('GET', path)).toBe('nocase');
    expect(models['nocase']!.requests.map((r) => r.target)).toEqual(['/a', '/b', '/c']);
  });

  it('precedence outranks a longer prefix; regex and presence query parameters; method_regex', async () => {
    expect(await who('GET', `${P}/k/long/path/x?tier=gold`)).toBe('high');
    expect(await who('GET', `${P}/k/long/path/x?tier=silver`)).toBe('low');
    expect(await who('GET', `${P}/k/x?a=1&tier=platinum`)).toBe('high');
    expect(await who('GET', `${P}/k/x?debug`)).toBe('present');
    expect(await who('GET', `${P}/k/x?debug=`)).toBe('present');
    expect(await who('PATCH', `${P}/k/x`)).toBe('verbs');
    expect(await who('POST', `${P}/k/x`)).toBe('plain');
  });

  it('a Mapping with a key the gateway does not honour receives nothing, and /routes says why', async () => {
    expect(await who('GET', `${P}/labelled/x`)).toBe('404 NO_ROUTE');
    expect(models['labelled']!.requests).toHaveLength(0);
    const routes = (await (await request(`${gw.adminUrl}/routes`)).body.json()) as { deployments: { name: string; state: string; reasons: string[] }[] };
    const keys = routes.deployments.find((d) => d.name === 'keys')!;
    expect(keys.state).toBe('degraded');
    expect(keys.reasons.join('\n')).toMatch(/Mapping "labelled" dropped: key "labels" \(rate limit labels need a RateLimitService/);
    expect(routes.deployments.find((d) => d.name === 'api')!.state).toBe('accepted');
  });

  it("a Mapping's cors answers an allowed origin with the Origin itself, as Envoy does, `*` included", async () => {
    const r = await request(`${gw.url}${P}/cors/x`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
    await r.body.text();
    expect([r.statusCode, r.headers['access-control-allow-origin'], r.headers['access-control-allow-methods']]).toEqual([200, 'https://app.example', 'POST']);
    expect(models['corsy']!.requests).toHaveLength(0);
    const post = await request(`${gw.url}${P}/cors/x`, { method: 'POST', headers: { origin: 'https://other.example' }, body: '{}' });
    await post.body.text();
    expect([post.headers['x-upstream'], post.headers['access-control-allow-origin']]).toEqual(['corsy', 'https://other.example']);
  });

  it('dot segments are resolved before the match and in what the model receives', async () => {
    const { res, x } = await rawRequest(gw.port, { method: 'GET', target: `${P}/nowhere/../api/a/./b/../c`, headers: [['Host', 'gw']] });
    x.socket.destroy();
    expect(res?.status).toBe(200);
    expect(models['meta']!.requests.at(-1)!.target).toBe('/a/c');
  });
});
