/**
 * CORS in the routing core (docs/routing.md#cors): Ambassador's Mapping `cors` block and the
 * `seldon.io/gateway-cors` annotation parsed into one normalised `CorsPolicy`, its origin test, which
 * routes get which policy (the annotation on every REST route, a Mapping's own on its route, none on
 * gRPC), and what a bad value does (a Mapping dropped, a deployment rejected, nobody else touched).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Findings, corsAnnotation } from '../../../routing/seldon/annotations.js';
import { compileDeployment } from '../../../routing/compile/deployment.js';
import { parseCorsPolicy } from '../../../routing/policies/cors.js';
import { parseCustomConfig } from '../../../routing/emissary/custom-config.js';
import { tableJson, tableText } from '../../../routing/table/describe.js';
import { headerGetter, match } from '../../../routing/table/match.js';
import { randomPicker, seededRandom } from '../../../routing/table/pick.js';
import { buildTable } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type Backend, type CompileOptions, type CorsPolicy, type RouteTable } from '../../../routing/types.js';
import type { PredictorSpec, SeldonDeployment } from '../../../routing/seldon/deployment.js';

const opts = (o: Partial<CompileOptions> = {}): CompileOptions => ({ ...DEFAULT_COMPILE_OPTIONS, ...o });
const pred = (name: string, extra: Partial<PredictorSpec> = {}): PredictorSpec => ({ name, graph: { name: 'model', type: 'MODEL' }, ...extra });

function sdep(ns: string, name: string, annotations: Record<string, string> = {}, predictors: PredictorSpec[] = [pred('main')], extra: Record<string, unknown> = {}): SeldonDeployment {
  return { apiVersion: 'machinelearning.seldon.io/v1', kind: 'SeldonDeployment', metadata: { name, namespace: ns }, spec: { annotations, predictors, ...extra } };
}

/** A policy, or the test fails with the parser's error. */
function policy(raw: unknown): CorsPolicy {
  const p = parseCorsPolicy(raw, 'cors');
  if (!p.ok) throw new Error(p.error);
  return p.value.policy;
}
const error = (raw: unknown): string => {
  const p = parseCorsPolicy(raw, 'cors');
  if (p.ok) throw new Error(`expected an error for ${JSON.stringify(raw)}`);
  return p.error;
};
const ann = (o: Record<string, string>): Map<string, string> => new Map(Object.entries(o));

function backendAt(t: RouteTable, path: string, kind: 'rest' | 'grpc' = 'rest', md: Record<string, string> = {}): Backend {
  const d = match(t, { kind, method: 'POST', path, host: 'gw', header: headerGetter(md) }, randomPicker(seededRandom(1)));
  if (!d.ok) throw new Error(`no route for ${path}: ${d.info}`);
  return d.backend;
}

describe('parseCorsPolicy: fields', () => {
  it("reads every field of Ambassador's example and normalises it", () => {
    const p = policy({
      origins: 'http://foo.example,http://bar.example',
      methods: 'POST, GET, OPTIONS',
      headers: 'Content-Type',
      credentials: true,
      exposed_headers: 'X-Custom-Header',
      max_age: '86400',
    });
    expect(p.origins).toEqual(['http://foo.example', 'http://bar.example']);
    expect(p.methods).toEqual(['POST', 'GET', 'OPTIONS']);
    expect(p.headers).toEqual(['content-type']);
    expect(p.exposedHeaders).toEqual(['x-custom-header']);
    expect(p.credentials).toBe(true);
    expect(p.maxAge).toBe('86400');
    expect(p.text).toEqual({ methods: 'POST, GET, OPTIONS', headers: 'content-type', exposedHeaders: 'x-custom-header' });
  });

  it('takes lists as YAML lists or comma-separated strings, trims, skips empty entries and repeats', () => {
    const a = policy({ origins: ['https://A.example ', ' https://b.example'], methods: ['get', 'post', 'GET'], headers: ['X-A, x-b', 'X-A'] });
    const b = policy({ origins: 'https://a.example, https://b.example,', methods: 'get,post,,', headers: 'x-a,x-b' });
    expect(a.origins).toEqual(['https://a.example', 'https://b.example']);
    expect(b.origins).toEqual(a.origins);
    expect(a.methods).toEqual(['GET', 'POST']);
    expect(b.methods).toEqual(['GET', 'POST']);
    expect(a.headers).toEqual(['x-a', 'x-b']);
    expect(b.headers).toEqual(['x-a', 'x-b']);
  });

  it('defaults: no methods, headers or exposed headers, no credentials, no max-age', () => {
    const p = policy({ origins: '*' });
    expect(p).toMatchObject({ methods: [], headers: [], exposedHeaders: [], credentials: false, maxAge: null });
    expect(p.text).toEqual({ methods: '', headers: '', exposedHeaders: '' });
    expect(policy({ origins: '*', methods: null, credentials: null, max_age: null }).maxAge).toBeNull();
  });

  it('credentials: booleans, or the strings true/false in any case', () => {
    expect(policy({ origins: '*', credentials: false }).credentials).toBe(false);
    expect(policy({ origins: '*', credentials: 'True' }).credentials).toBe(true);
    expect(policy({ origins: '*', credentials: ' false ' }).credentials).toBe(false);
    expect(error({ origins: '*', credentials: 'yes' })).toMatch(/^cors: credentials "yes" is not true or false/);
    expect(error({ origins: '*', credentials: 1 })).toMatch(/credentials 1 is not true or false/);
  });

  it('max_age: whole seconds as a number or a string, sent as digits', () => {
    expect(policy({ origins: '*', max_age: 600 }).maxAge).toBe('600');
    expect(policy({ origins: '*', max_age: '0' }).maxAge).toBe('0');
    expect(policy({ origins: '*', max_age: ' 0086400 ' }).maxAge).toBe('86400');
    for (const bad of ['-1', '1h', '', 1.5, -3, true, '99999999999', [1]]) expect(error({ origins: '*', max_age: bad })).toMatch(/max_age .* is not a whole number of seconds/);
  });

  it('methods and headers: "*" alone means echo; "*" among others, or a non-token, is an error', () => {
    expect(policy({ origins: '*', methods: '*', headers: ['*'] }).text).toEqual({ methods: '*', headers: '*', exposedHeaders: '' });
    expect(error({ origins: '*', methods: 'GET, *' })).toMatch(/methods: "\*" .* must be the only entry/);
    expect(error({ origins: '*', headers: ['*', 'x-a'] })).toMatch(/headers: "\*" .* must be the only entry/);
    expect(error({ origins: '*', methods: 'GET POST' })).toMatch(/methods: "GET POST" is not a valid method/);
    expect(error({ origins: '*', headers: 'x-a, bad header' })).toMatch(/headers: "bad header" is not a valid header name/);
    expect(error({ origins: '*', headers: 'x:y' })).toMatch(/not a valid header name/);
    expect(error({ origins: '*', methods: { GET: true } })).toMatch(/methods must be a list or a comma-separated string/);
    expect(error({ origins: '*', methods: ['GET', 7] })).toMatch(/methods has an entry that is not a string: 7/);
  });

  it('exposed_headers: lower-cased tokens, "*" allowed as an entry', () => {
    expect(policy({ origins: '*', exposed_headers: ['X-Seldon-Predictor', '*'] }).exposedHeaders).toEqual(['x-seldon-predictor', '*']);
    expect(error({ origins: '*', exposed_headers: 'a b' })).toMatch(/exposed_headers: "a b" is not a valid header name/);
  });

  it('an unknown key is a warning, not an error', () => {
    const p = parseCorsPolicy({ origins: '*', origin: 'x', allow_private_network_access: true }, 'cors');
    expect(p.ok && p.value.warnings).toEqual(['cors: key "origin" is not supported: ignored', 'cors: key "allow_private_network_access" is not supported: ignored']);
  });

  it('not a map, no origins or empty origins: an error', () => {
    for (const bad of ['*', ['*'], null, 3, true]) expect(error(bad)).toMatch(/^cors: must be a map/);
    expect(error({})).toBe('cors: origins is required (the origins allowed, or "*")');
    expect(error({ origins: null, methods: 'GET' })).toMatch(/origins is required/);
    expect(error({ origins: '' })).toMatch(/origins is empty/);
    expect(error({ origins: [] })).toMatch(/origins is empty/);
    expect(error({ origins: ' , ' })).toMatch(/origins is empty/);
    expect(error({ origins: 42 })).toMatch(/origins must be a list or a comma-separated string/);
  });

  it("origins that can never equal a browser's Origin are errors, with the reason", () => {
    expect(error({ origins: 'https://app.example.com/' })).toMatch(/an origin has no path, not even "\/"/);
    expect(error({ origins: 'https://app.example.com/x' })).toMatch(/an origin has no path/);
    for (const bad of [
      'app.example.com',
      '*.example.com',
      'https://*',
      'https://a.*.example.com',
      'https://*example.com',
      'https://.*\\.example\\.com',
      'https://a b.com',
      'https://app.example.com?x=1',
      'https://app.example.com#x',
      'https://üñí.example',
      '//app.example.com',
      'https://',
    ]) {
      expect(error({ origins: bad })).toMatch(/is not an origin like/);
    }
    expect(error({ origins: 'https://a.example:0' })).toMatch(/invalid port/);
    expect(error({ origins: 'https://a.example:65536' })).toMatch(/invalid port/);
    expect(error({ origins: ['https://ok.example', 'nope'] })).toMatch(/"nope"/);
  });

  it('accepts ports, IPv4, [IPv6], other schemes, null and *', () => {
    expect(policy({ origins: ['http://localhost:3000', 'http://127.0.0.1:8080', 'http://[::1]:8080', 'app://local', 'null', 'chrome-extension://abc'] }).origins).toEqual([
      'http://localhost:3000',
      'http://127.0.0.1:8080',
      'http://[::1]:8080',
      'app://local',
      'null',
      'chrome-extension://abc',
    ]);
  });
});

describe('parseCorsPolicy: the origin test', () => {
  it('exact origins, compared without regard to case', () => {
    const p = policy({ origins: 'https://App.example.com, http://localhost:3000' });
    expect(p.allowsOrigin('https://app.example.com')).toBe(true);
    expect(p.allowsOrigin('HTTPS://APP.EXAMPLE.COM')).toBe(true);
    expect(p.allowsOrigin('http://localhost:3000')).toBe(true);
    expect(p.allowsOrigin('http://app.example.com')).toBe(false);
    expect(p.allowsOrigin('https://app.example.com:443')).toBe(false);
    expect(p.allowsOrigin('http://localhost:3001')).toBe(false);
    expect(p.allowsOrigin('https://app.example.com.evil.net')).toBe(false);
    expect(p.allowsOrigin('https://xapp.example.com')).toBe(false);
    expect(p.allowsOrigin('null')).toBe(false);
    expect(p.allowsOrigin('https://app.example.com, https://evil.net')).toBe(false);
  });

  it('*. patterns: one or more labels, same scheme and port, never the bare domain', () => {
    const p = policy({ origins: ['https://*.example.com', 'http://*.dev.local:8080'] });
    expect(p.allowsOrigin('https://a.example.com')).toBe(true);
    expect(p.allowsOrigin('https://a.b.example.com')).toBe(true);
    expect(p.allowsOrigin('https://A-1.Example.com')).toBe(true);
    expect(p.allowsOrigin('https://example.com')).toBe(false);
    expect(p.allowsOrigin('https://.example.com')).toBe(false);
    expect(p.allowsOrigin('https://evilexample.com')).toBe(false);
    expect(p.allowsOrigin('https://a.example.com.evil.net')).toBe(false);
    expect(p.allowsOrigin('http://a.example.com')).toBe(false);
    expect(p.allowsOrigin('https://a.example.com:8443')).toBe(false);
    expect(p.allowsOrigin('https://x/y.example.com')).toBe(false);
    expect(p.allowsOrigin('https://x y.example.com')).toBe(false);
    expect(p.allowsOrigin('http://x.dev.local:8080')).toBe(true);
    expect(p.allowsOrigin('http://x.dev.local')).toBe(false);
  });

  it('* allows every origin; with credentials the opaque origin null only when listed', () => {
    const open = policy({ origins: '*' });
    expect(open.allowsOrigin('https://anything.example')).toBe(true);
    expect(open.allowsOrigin('null')).toBe(true);
    const cred = policy({ origins: '*', credentials: true });
    expect(cred.allowsOrigin('https://anything.example')).toBe(true);
    expect(cred.allowsOrigin('null')).toBe(false);
    expect(policy({ origins: '*, null', credentials: true }).allowsOrigin('null')).toBe(true);
    expect(policy({ origins: 'null' }).allowsOrigin('null')).toBe(true);
  });
});

describe('seldon.io/gateway-cors', () => {
  it('absent or empty: no policy, no warning', () => {
    const f = new Findings();
    expect(corsAnnotation(ann({}), f)).toEqual({ ok: true, value: null });
    expect(corsAnnotation(ann({ 'seldon.io/gateway-cors': '' }), f)).toEqual({ ok: true, value: null });
    expect(f.warnings).toEqual([]);
  });

  it('JSON and YAML give the same policy', () => {
    const f = new Findings();
    const j = corsAnnotation(ann({ 'seldon.io/gateway-cors': '{"origins":["https://app.example.com"],"methods":"POST","credentials":true,"max_age":"600"}' }), f);
    const y = corsAnnotation(ann({ 'seldon.io/gateway-cors': 'origins:\n  - https://app.example.com\nmethods: POST\ncredentials: true\nmax_age: 600\n' }), f);
    expect(j.ok && y.ok).toBe(true);
    if (!j.ok || !y.ok) return;
    const { allowsOrigin: _a, ...jv } = j.value!;
    const { allowsOrigin: _b, ...yv } = y.value!;
    expect(jv).toEqual(yv);
    expect(jv).toMatchObject({ origins: ['https://app.example.com'], methods: ['POST'], credentials: true, maxAge: '600' });
    expect(f.warnings).toEqual([]);
  });

  it('does not parse, several documents, not a map, or a bad field: an error naming the annotation', () => {
    const f = new Findings();
    const err = (v: string): string => {
      const r = corsAnnotation(ann({ 'seldon.io/gateway-cors': v }), f);
      return r.ok ? 'ok' : r.error;
    };
    expect(err('{"origins": ["https://a.example"]')).toMatch(/^seldon\.io\/gateway-cors does not parse as JSON or YAML: /);
    expect(err('origins: [a\n  b: c')).toMatch(/does not parse/);
    expect(err('origins: "*"\n---\norigins: "*"\n')).toMatch(/does not parse/);
    expect(err('*')).toMatch(/does not parse|must be a map/);
    expect(err('"*"')).toMatch(/^seldon\.io\/gateway-cors: must be a map/);
    expect(err('- https://a.example')).toMatch(/must be a map/);
    expect(err('origins: https://a.example/')).toMatch(/^seldon\.io\/gateway-cors: origins: "https:\/\/a\.example\/" is not an origin/);
    expect(err('origins: "*"\ncredentials: maybe')).toMatch(/credentials "maybe"/);
    expect(err('a: &a [1]\nb: *a\norigins: "*"')).toBe('ok');
    expect(err('{"origins":"*","origins":"*"}')).toMatch(/does not parse/);
  });

  it('a YAML alias bomb is refused, not expanded', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++)
      lines.push(
        `a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    lines.push('origins: "*"');
    const r = corsAnnotation(ann({ 'seldon.io/gateway-cors': lines.join('\n') }), new Findings());
    expect(r.ok).toBe(false);
  });

  it('the example of docs/routing.md#cors and docs/security.md parses as written', () => {
    const doc = readFileSync(new URL('../../../docs/routing.md', import.meta.url), 'utf8');
    const block = /## CORS[\s\S]*?seldon\.io\/gateway-cors: \|\n((?: {6}.*\n)+)/.exec(doc);
    expect(block).not.toBeNull();
    const value = block![1]!.replace(/^ {6}/gm, '');
    const f = new Findings();
    const r = corsAnnotation(ann({ 'seldon.io/gateway-cors': value }), f);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toMatchObject({
      origins: ['https://app.example.com', 'https://*.example.org'],
      methods: ['POST', 'GET'],
      headers: ['content-type', 'authorization'],
      credentials: true,
      exposedHeaders: ['x-seldon-predictor'],
      maxAge: '600',
    });
    expect(f.warnings).toEqual([]);
    const security = readFileSync(new URL('../../../docs/security.md', import.meta.url), 'utf8');
    // docs/security.md shows the same value, line for line.
    for (const line of block![1]!.split('\n').filter((l) => l.trim() !== '')) expect(security).toContain(line);
  });

  it('unknown keys warn (the deployment is degraded, the policy applies)', () => {
    const f = new Findings();
    const r = corsAnnotation(ann({ 'seldon.io/gateway-cors': 'origins: "*"\nmax-age: 10' }), f);
    expect(r.ok && r.value?.maxAge).toBeNull();
    expect(f.warnings).toEqual(['seldon.io/gateway-cors: key "max-age" is not supported: ignored']);
  });
});

describe('which routes get which policy', () => {
  const CORS = JSON.stringify({ origins: ['https://app.example.com'], methods: ['POST'] });

  it('the annotation: every REST route of the deployment, explainers and short prefixes included; never gRPC', () => {
    const d = sdep('models', 'iris', { 'seldon.io/gateway-cors': CORS }, [pred('main', { explainer: { type: 'anchor_tabular' } }), pred('canary', { traffic: 10 })]);
    const t = buildTable([d, sdep('models', 'plain')], opts({ singleNamespace: true, namespace: 'models' }));
    expect(t.deployments.get('models/iris')!.state).toBe('accepted');
    const main = backendAt(t, '/seldon/models/iris/api/v1.0/predictions');
    expect(main.cors?.origins).toEqual(['https://app.example.com']);
    expect(backendAt(t, '/seldon/iris/api/v1.0/predictions').cors).toBe(main.cors);
    expect(backendAt(t, '/seldon/models/iris-explainer/main/api/v1.0/explain').cors).toBe(main.cors);
    expect(backendAt(t, '/seldon.protos.Seldon/Predict', 'grpc', { seldon: 'iris', namespace: 'models' }).cors).toBeNull();
    const c = compileDeployment(d, opts());
    const restCors = c.routes.filter((r) => r.kind === 'rest').map((r) => r.backend.cors);
    expect(restCors).toHaveLength(3);
    expect(restCors[0]).not.toBeNull();
    expect(restCors.every((x) => x === restCors[0])).toBe(true);
    expect(c.routes.filter((r) => r.kind === 'grpc').every((r) => r.backend.cors === null)).toBe(true);
    expect(backendAt(t, '/seldon/models/plain/x').cors).toBeNull();
  });

  it('a bad annotation rejects that deployment alone, with the reason', () => {
    const bad = sdep('models', 'bad', { 'seldon.io/gateway-cors': '{"origins": "https://app.example.com/"}' });
    const t = buildTable([bad, sdep('models', 'iris', { 'seldon.io/gateway-cors': CORS }), sdep('models', 'plain')], opts());
    const r = t.deployments.get('models/bad')!;
    expect(r.state).toBe('rejected');
    expect(r.reasons.join('\n')).toMatch(/seldon\.io\/gateway-cors: origins: "https:\/\/app\.example\.com\/" is not an origin .* no path/);
    expect(t.deployments.get('models/iris')!.state).toBe('accepted');
    expect(t.deployments.get('models/plain')!.state).toBe('accepted');
    const d = match(t, { kind: 'rest', method: 'POST', path: '/seldon/models/bad/x', host: 'gw', header: headerGetter({}) }, randomPicker(seededRandom(1)));
    expect(d.ok).toBe(false);
    const custom = sdep('models', 'cbad', {
      'seldon.io/gateway-cors': 'nope',
      'seldon.io/ambassador-config': 'apiVersion: getambassador.io/v2\nkind: Mapping\nname: m\nprefix: /seldon/models/cbad/\nservice: cbad-main',
    });
    const c = compileDeployment(custom, opts());
    expect(c.report.state).toBe('rejected');
    expect(c.report.reasons[0]).toMatch(/^seldon\.io\/gateway-cors: must be a map/);
  });

  it("a Mapping's cors on its own route; the annotation on the Mappings without one; gRPC Mappings none", () => {
    const config = [
      'apiVersion: getambassador.io/v2\nkind: Mapping\nname: own\nprefix: /seldon/models/c/own/\nservice: c-main\ncors:\n  origins: https://own.example\n  credentials: true',
      'apiVersion: getambassador.io/v2\nkind: Mapping\nname: inherits\nprefix: /seldon/models/c/inh/\nservice: c-main',
      'apiVersion: getambassador.io/v2\nkind: Mapping\nname: g\ngrpc: true\nprefix: /seldon.protos.Seldon/\nrewrite: /seldon.protos.Seldon/\nservice: c-main:5001\nheaders:\n  namespace: models\ncors:\n  origins: "*"',
    ].join('\n---\n');
    const d = sdep('models', 'c', { 'seldon.io/ambassador-config': config, 'seldon.io/gateway-cors': CORS });
    const c = compileDeployment(d, opts());
    expect(c.report.state).toBe('degraded');
    expect(c.report.reasons).toEqual(['g: cors is ignored on a gRPC Mapping']);
    const by = new Map(c.routes.map((r) => [r.backend.origin.predictor, r.backend]));
    expect(by.get('own')!.cors).toMatchObject({ origins: ['https://own.example'], credentials: true, methods: [] });
    expect(by.get('inherits')!.cors).toMatchObject({ origins: ['https://app.example.com'], methods: ['POST'] });
    expect(by.get('g')!.cors).toBeNull();
    // Without the annotation, a Mapping without cors has none.
    const alone = compileDeployment(sdep('models', 'c', { 'seldon.io/ambassador-config': config }), opts());
    expect(alone.routes.find((r) => r.backend.origin.predictor === 'inherits')!.backend.cors).toBeNull();
  });

  it('a bad Mapping cors drops that Mapping with the reason; `cors` is no longer an unsupported key', () => {
    const cfg = parseCustomConfig(
      [
        'apiVersion: getambassador.io/v2\nkind: Mapping\nname: bad\nprefix: /seldon/models/c/a/\nservice: c-main\ncors:\n  origins: https://x.example\n  max_age: 1d',
        'apiVersion: getambassador.io/v2\nkind: Mapping\nname: ok\nprefix: /seldon/models/c/b/\nservice: c-main\ncors: {origins: "*"}',
      ].join('\n---\n'),
      'models',
    );
    expect(cfg.ok).toBe(true);
    if (!cfg.ok) return;
    expect(cfg.mappings.map((m) => m.name)).toEqual(['ok']);
    expect(cfg.warnings).toEqual(['Mapping "bad" dropped: cors: max_age "1d" is not a whole number of seconds']);
    // Envoy echoes the Origin, `*` in the list included.
    expect(cfg.mappings[0]!.cors?.allowsOrigin('https://any.example')).toBe(true);
    const only = parseCustomConfig('apiVersion: getambassador.io/v2\nkind: Mapping\nname: bad\nprefix: /seldon/models/c/\nservice: c-main\ncors: "*"', 'models');
    expect(only.ok ? 'ok' : only.error).toMatch(/has no valid Mapping \(Mapping "bad" dropped: cors: must be a map/);
    const nul = parseCustomConfig('apiVersion: getambassador.io/v2\nkind: Mapping\nname: n\nprefix: /seldon/models/c/\nservice: c-main\ncors: null', 'models');
    expect(nul.ok && nul.mappings[0]!.cors).toBeNull();
  });

  it("a route to an OAuth-gated deployment's Service keeps its own CORS policy beside the owner's gate", () => {
    const owner = sdep('models', 'owner', { 'seldon.io/gateway-auth': 'oauth' }, [pred('main')], { oauth_key: 'k', oauth_secret: 's' });
    const other = sdep('models', 'other', {
      'seldon.io/ambassador-config': 'apiVersion: getambassador.io/v2\nkind: Mapping\nname: m\nprefix: /seldon/models/other/\nservice: owner-main:8000\ncors:\n  origins: https://app.example.com',
    });
    const t = buildTable([owner, other], opts());
    const b = backendAt(t, '/seldon/models/other/x');
    expect(b.gate?.auth).toEqual({ namespace: 'models', deployment: 'owner' });
    expect(b.cors?.origins).toEqual(['https://app.example.com']);
  });

  it('/routes and the routes command show the policy, and only where there is one', () => {
    const t = buildTable(
      [sdep('models', 'iris', { 'seldon.io/gateway-cors': '{"origins":"*, https://a.example","credentials":true,"exposed_headers":"X-Seldon-Predictor","max_age":60}' }), sdep('models', 'plain')],
      opts(),
    );
    const json = tableJson(t);
    const iris = json.deployments.find((d) => d.name === 'iris')!;
    const rest = iris.routes.find((r) => r.kind === 'rest')!;
    expect(rest.members[0]!.cors).toEqual({ origins: ['*', 'https://a.example'], methods: [], headers: [], exposedHeaders: ['x-seldon-predictor'], credentials: true, maxAge: '60' });
    expect('cors' in iris.routes.find((r) => r.kind === 'grpc')!.members[0]!).toBe(false);
    const plain = json.deployments.find((d) => d.name === 'plain')!;
    expect(plain.routes.every((r) => r.members.every((m) => !('cors' in m)))).toBe(true);
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
    const text = tableText(t);
    expect(text).toContain('cors *,https://a.example with credentials');
    expect(text.match(/cors /g)).toHaveLength(1);
  });
});
