/**
 * Emissary's acceptance tests of t_basics.py, ported: each `describe` is named after the KAT class it ports
 * (AmbassadorIDTest, InvalidResources, ServerNameTest, SafeRegexMapping), its Mappings are the class's under
 * `/seldon/models/` (the prefix a deployment in `models` may claim), its target a recording upstream. Every test
 * asserts what the model received (the request target exactly, its headers) and what the client got.
 * Empty is not ported: it checks Emissary's diag page and its ready port, which this gateway does not have.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerValue, headerValues, rawRequest, startRecordingUpstream, type HeaderLine, type RawResponse, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { routesReport } from '../../helpers/observability.js';

const NS = 'models';
const SERVICE = `target.${NS}:8000`;

const mapping = (name: string, lines: string[]): string => ['apiVersion: getambassador.io/v3alpha1', 'kind: Mapping', `name: ${name}`, ...lines].join('\n');

/** A GET with exactly this request target (no client-side normalisation) and these header lines. */
async function get(gw: TestGateway, target: string, id: string, headers: HeaderLine[] = []): Promise<RawResponse> {
  const { res, x } = await rawRequest(gw.port, { method: 'GET', target, headers: [['Host', 'kat.example'], ['x-case', id], ...headers], framing: 'none' }, 10_000);
  x.socket.destroy();
  if (!res) throw new Error('no answer');
  return res;
}

/** A gateway over one deployment `kat` whose seldon.io/ambassador-config is these Mappings; `module`: the ambassador Module's lines. */
async function gatewayWith(
  model: RecordingUpstream,
  mappings: string[],
  opts: { module?: string[]; args?: string[]; annotations?: Record<string, string> } = {},
): Promise<{ gw: TestGateway; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-kat-basics-'));
  const args = [...(opts.args ?? [])];
  if (opts.module) {
    const file = join(dir, 'module.yaml');
    writeFileSync(file, ['apiVersion: getambassador.io/v3alpha1', 'kind: Module', 'name: ambassador', ...opts.module].join('\n'));
    args.push('--ambassador-module', file);
  }
  const gw = await startTestGateway({
    manifests: { 'kat.yaml': sdep('kat', NS, { predictors: [{ name: 'main' }] }, { ...opts.annotations, 'seldon.io/ambassador-config': mappings.join('\n---\n') }) },
    resolve: { [SERVICE]: model.port },
    args,
  });
  return { gw, dir };
}

describe('AmbassadorIDTest (t_basics.py)', () => {
  // The KAT's gateway runs with its own id (the class's name); the harness writes that id on its Module too.
  const ID = 'ambassadoridtest';
  const IDS: [string, string | null][] = [
    ['findme', `[${ID}]`],
    ['findme-array', `[${ID}, missme]`],
    ['findme-array2', `[missme, ${ID}]`],
    ['missme', '[missme]'],
    ['missme-array', '[missme1, missme2]'],
    // Not in the KAT: a Mapping with no id is the default gateway's (here: its deployment's, which has none).
    ['no-id', null],
  ];
  const mappings = IDS.map(([prefix, ids]) => mapping(prefix, ['hostname: "*"', `prefix: /seldon/${NS}/${prefix}/`, `service: ${SERVICE}`, ...(ids === null ? [] : [`ambassador_id: ${ids}`])]));
  let model: RecordingUpstream;
  let gw: TestGateway;
  let dflt: TestGateway;
  const dirs: string[] = [];
  beforeAll(async () => {
    model = await startRecordingUpstream({ name: 'target' });
    const own = await gatewayWith(model, mappings, { module: [`ambassador_id: [${ID}]`, 'config:', '  use_ambassador_namespace_for_service_resolution: true'], args: ['--ambassador-id', ID] });
    const other = await gatewayWith(model, mappings);
    ({ gw } = own);
    dflt = other.gw;
    dirs.push(own.dir, other.dir);
  });
  afterAll(async () => {
    await gw?.stop();
    await dflt?.stop();
    await model?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it.each(['findme', 'findme-array', 'findme-array2'])("[0..2] /%s/: a Mapping whose ambassador_id lists the gateway's id is served; the model receives it", async (prefix) => {
    const id = `amb-id-${prefix}`;
    const r = await get(gw, `/seldon/${NS}/${prefix}/`, id);
    expect(r.status).toBe(200);
    expect(model.byCase(id).map((q) => q.target)).toEqual(['/']);
  });

  it.each(['missme', 'missme-array', 'no-id'])('[3..4] /%s/: a Mapping for other ids only is not served: 404, nothing reaches the model', async (prefix) => {
    const id = `amb-id-${prefix}`;
    const r = await get(gw, `/seldon/${NS}/${prefix}/`, id);
    expect(r.status).toBe(404);
    expect(model.byCase(id)).toHaveLength(0);
  });

  it('the default gateway serves only the Mapping without an id: every listed id is another gateway’s', async () => {
    const served: Record<string, number> = {};
    for (const [prefix] of IDS) served[prefix] = (await get(dflt, `/seldon/${NS}/${prefix}/`, `amb-default-${prefix}`)).status;
    expect(served).toEqual({ findme: 404, 'findme-array': 404, 'findme-array2': 404, missme: 404, 'missme-array': 404, 'no-id': 200 });
    expect(IDS.map(([p]) => model.byCase(`amb-default-${p}`).length)).toEqual([0, 0, 0, 0, 0, 1]);
  });

  it('an ambassador_id is compared as written, and one that is not a string or a list of strings drops its Mapping with the reason', async () => {
    const m = await startRecordingUpstream({ name: 'target' });
    const { gw: g, dir } = await gatewayWith(m, [
      mapping('padded', [`prefix: /seldon/${NS}/padded/`, `service: ${SERVICE}`, 'ambassador_id: [" default "]']),
      mapping('number', [`prefix: /seldon/${NS}/number/`, `service: ${SERVICE}`, 'ambassador_id: [default, 7]']),
      mapping('empty', [`prefix: /seldon/${NS}/empty/`, `service: ${SERVICE}`, 'ambassador_id: []']),
      mapping('plain', [`prefix: /seldon/${NS}/plain/`, `service: ${SERVICE}`]),
    ]);
    try {
      const statuses = [];
      for (const p of ['padded', 'number', 'empty', 'plain']) statuses.push((await get(g, `/seldon/${NS}/${p}/`, `amb-odd-${p}`)).status);
      expect(statuses).toEqual([404, 404, 404, 200]);
      expect(m.requests.map((q) => headerValue(q.headers, 'x-case'))).toEqual(['amb-odd-plain']);
      const report = await routesReport(g.adminUrl, 'kat');
      expect(report.state).toBe('degraded');
      expect(report.reasons).toEqual(['Mapping "number" dropped: ambassador_id ["default",7] is not a string or a list of strings']);
    } finally {
      await g.stop();
      await m.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a custom Mapping without ambassador_id is the default gateway's, whatever its deployment's id", () => {
  // Seldon Core 1's operator copies seldon.io/ambassador-config onto the Service as written (operator/controllers/
  // ambassador/v1.go, GetAmbassadorConfigs: `return annotation, nil`), and Emissary gives a resource without an
  // ambassador_id to `default` alone (config.py good_ambassador_id): the deployment's seldon.io/ambassador-id
  // reaches generated Mappings only.
  const TAGGED = { 'seldon.io/ambassador-id': 'blue' };
  const mappings = [
    mapping('tagged', [`prefix: /seldon/${NS}/tagged/`, `service: ${SERVICE}`, 'ambassador_id: blue']),
    mapping('untagged', [`prefix: /seldon/${NS}/untagged/`, `service: ${SERVICE}`]),
  ];
  let model: RecordingUpstream;
  let blue: TestGateway;
  let dflt: TestGateway;
  const dirs: string[] = [];
  beforeAll(async () => {
    model = await startRecordingUpstream({ name: 'target' });
    const b = await gatewayWith(model, mappings, { annotations: TAGGED, args: ['--ambassador-id', 'blue'] });
    const d = await gatewayWith(model, mappings, { annotations: TAGGED });
    blue = b.gw;
    dflt = d.gw;
    dirs.push(b.dir, d.dir);
  });
  afterAll(async () => {
    await blue?.stop();
    await dflt?.stop();
    await model?.close();
    for (const x of dirs) rmSync(x, { recursive: true, force: true });
  });

  it('on the blue gateway, only the Mapping that names blue is served; the other is skipped with the reason in /routes and reaches no model', async () => {
    const tagged = await get(blue, `/seldon/${NS}/tagged/x`, 'blue-tagged');
    const untagged = await get(blue, `/seldon/${NS}/untagged/x`, 'blue-untagged');
    expect([tagged.status, untagged.status]).toEqual([200, 404]);
    expect(model.byCase('blue-tagged').map((q) => q.target)).toEqual(['/x']);
    expect(model.byCase('blue-untagged')).toHaveLength(0);
    const report = await routesReport(blue.adminUrl, 'kat');
    expect(report.state).toBe('degraded');
    expect(report.reasons).toEqual([
      'Mapping "untagged" skipped: it has no ambassador_id, so Emissary serves it on the "default" gateway only, not on "blue" (the deployment\'s seldon.io/ambassador-id reaches generated Mappings only): add ambassador_id: blue to serve it here',
    ]);
  });

  it('on the default gateway, the Mapping without an id is served though its deployment is tagged blue; the one that names blue is not', async () => {
    const tagged = await get(dflt, `/seldon/${NS}/tagged/x`, 'default-tagged');
    const untagged = await get(dflt, `/seldon/${NS}/untagged/y`, 'default-untagged');
    expect([tagged.status, untagged.status]).toEqual([404, 200]);
    expect(model.byCase('default-tagged')).toHaveLength(0);
    expect(model.byCase('default-untagged').map((q) => q.target)).toEqual(['/y']);
    const report = await routesReport(dflt.adminUrl, 'kat');
    expect(report).toMatchObject({ state: 'accepted', reasons: [] });
  });

  it('a blue deployment whose Mappings all lack an id is skipped on the blue gateway, with the reason', async () => {
    const m = await startRecordingUpstream({ name: 'target' });
    const { gw: g, dir } = await gatewayWith(m, [mappings[1]!], { annotations: TAGGED, args: ['--ambassador-id', 'blue'] });
    try {
      const r = await get(g, `/seldon/${NS}/untagged/x`, 'blue-only-untagged');
      expect(r.status).toBe(404);
      expect(m.requests).toHaveLength(0);
      const report = await routesReport(g.adminUrl, 'kat');
      expect(report.state).toBe('skipped');
      expect(report.reasons).toEqual([
        'no Mapping has ambassador-id "blue" (deployment id "blue")',
        'Mapping "untagged" skipped: it has no ambassador_id, so Emissary serves it on the "default" gateway only, not on "blue" (the deployment\'s seldon.io/ambassador-id reaches generated Mappings only): add ambassador_id: blue to serve it here',
      ]);
    } finally {
      await g.stop();
      await m.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('InvalidResources (t_basics.py)', () => {
  // The class's annotation resources, flattened as the KAT writes annotations (metadata and spec lifted, no
  // ambassador_id). Its CRD half is not ported: the gateway reads Mappings only from seldon.io/ambassador-config.
  const target = `service: ${SERVICE}`;
  const RESOURCES = [
    ['apiVersion: getambassador.io/v3alpha1', 'kind: AuthService', 'name: as-bad1-annotation', `service_bad: ${SERVICE}`],
    ['apiVersion: getambassador.io/v3alpha1', 'kind: Mapping', 'name: m-good-annotation', 'hostname: "*"', `prefix: /seldon/${NS}/good-annotation/`, target],
    ['apiVersion: getambassador.io/v3alpha1', 'kind: Mapping', 'name: m-bad-annotation', 'hostname: "*"', `prefix_bad: /seldon/${NS}/bad-annotation/`, target],
    ['kind: Mapping', 'name: m-bad-no-apiversion-annotation', 'hostname: "*"', `prefix_bad: /seldon/${NS}/bad-annotation/`, target],
    ['apiVersion: getambassador.io/v3alpha1', 'kind: Module', 'name: md-bad-annotation', 'config_bad: []'],
    ['apiVersion: getambassador.io/v3alpha1', 'kind: RateLimitService', 'name: r-bad-annotation', `service_bad: ${SERVICE}`],
    ['apiVersion: getambassador.io/v3alpha1', 'kind: TCPMapping', 'name: tm-bad1-annotation', target, 'port_bad: 8888'],
    ['apiVersion: getambassador.io/v3alpha1', 'kind: TCPMapping', 'name: tm-bad2-annotation', `service_bad: ${SERVICE}`, 'port: 8888'],
    ['apiVersion: getambassador.io/v3alpha1', 'kind: TracingService', 'name: ts-bad1-annotation', 'driver_bad: zipkin', target],
    ['apiVersion: getambassador.io/v3alpha1', 'kind: TracingService', 'name: ts-bad2-annotation', 'driver: zipkin', `service_bad: ${SERVICE}`],
    // Not in the KAT: a Mapping valid but for its missing apiVersion, which Emissary refuses all the same.
    ['kind: Mapping', 'name: m-no-apiversion-annotation', `prefix: /seldon/${NS}/no-apiversion/`, target],
  ].map((lines) => lines.join('\n'));
  let model: RecordingUpstream;
  let gw: TestGateway;
  let dir: string;
  beforeAll(async () => {
    model = await startRecordingUpstream({ name: 'target' });
    const d = mkdtempSync(join(tmpdir(), 'sgw-kat-invalid-'));
    dir = d;
    gw = await startTestGateway({
      manifests: { 'kat.yaml': sdep('kat', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': RESOURCES.join('\n---\n') }) },
      resolve: { [SERVICE]: model.port },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('/routes gives a reason for every invalid resource, as the gateway reports it; the deployment is degraded, not rejected', async () => {
    const report = await routesReport(gw.adminUrl, 'kat');
    expect(report.state).toBe('degraded');
    expect(report.reasons).toEqual([
      'kind AuthService is not supported: ignored; instead: --ext-auth-service and the other --ext-auth-* flags',
      'Mapping "m-bad-annotation" dropped: key "prefix_bad" (not a Mapping key the gateway knows) not honoured',
      'Mapping "m-bad-no-apiversion-annotation" dropped: apiVersion None/ unsupported (getambassador.io/… or ambassador/…)',
      'kind Module is not supported: ignored; instead: the ambassador Module is read from a file: --ambassador-module',
      'kind RateLimitService is not supported: ignored; instead: seldon.io/gateway-rate-limit per SeldonDeployment or predictor',
      'kind TCPMapping is not supported: ignored; instead: none: the gateway proxies HTTP and gRPC only; keep another proxy for raw TCP',
      'kind TCPMapping is not supported: ignored; instead: none: the gateway proxies HTTP and gRPC only; keep another proxy for raw TCP',
      'kind TracingService is not supported: ignored; instead: --otlp-endpoint (OpenTelemetry traces)',
      'kind TracingService is not supported: ignored; instead: --otlp-endpoint (OpenTelemetry traces)',
      'Mapping "m-no-apiversion-annotation" dropped: apiVersion None/ unsupported (getambassador.io/… or ambassador/…)',
    ]);
  });

  it('[1] the good Mapping still serves: 200, the model receives it', async () => {
    const r = await get(gw, `/seldon/${NS}/good-annotation/`, 'invalid-good');
    expect(r.status).toBe(200);
    expect(model.byCase('invalid-good').map((q) => q.target)).toEqual(['/']);
  });

  it.each(['bad-annotation', 'no-apiversion'])('[2] /%s/: a dropped Mapping answers 404; nothing reaches the model', async (prefix) => {
    const r = await get(gw, `/seldon/${NS}/${prefix}/`, `invalid-${prefix}`);
    expect(r.status).toBe(404);
    expect(model.byCase(`invalid-${prefix}`)).toHaveLength(0);
  });
});

describe('ServerNameTest (t_basics.py)', () => {
  // Its query expects 301: Emissary's default Host redirects clear text to HTTPS. This gateway reads no Host, so the
  // Mapping answers; the check itself, the Server field the client receives, holds on that answer and on a 404.
  let model: RecordingUpstream;
  let gw: TestGateway;
  let dir: string;
  beforeAll(async () => {
    model = await startRecordingUpstream({
      name: 'target',
      responder: () => ({
        headers: [
          ['Content-Type', 'text/plain'],
          ['Server', 'kat-server'],
        ],
        body: 'target',
      }),
    });
    ({ gw, dir } = await gatewayWith(model, [mapping('server-name', ['hostname: "*"', `prefix: /seldon/${NS}/server-name`, `service: ${SERVICE}`])], {
      module: ['config:', '  server_name: "test-server"'],
    }));
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("the client's Server is the Module's server_name, once, the model's replaced; the model's answer otherwise as sent", async () => {
    const r = await get(gw, `/seldon/${NS}/server-name/`, 'server-name');
    expect(r.status).toBe(200);
    expect(headerValues(r.headers, 'server')).toEqual(['test-server']);
    expect(r.body.toString()).toBe('target');
    // Envoy's prefix_rewrite: the matched prefix (no trailing slash) becomes "/", the rest of the path kept.
    expect(model.byCase('server-name').map((q) => q.target)).toEqual(['//']);
  });

  it("the gateway's own 404 carries it too", async () => {
    const r = await get(gw, `/seldon/${NS}/elsewhere/`, 'server-name-404');
    expect([r.status, headerValues(r.headers, 'server')]).toEqual([404, ['test-server']]);
    expect(model.byCase('server-name-404')).toHaveLength(0);
  });
});

describe('SafeRegexMapping (t_basics.py)', () => {
  const PREFIX = `/seldon/${NS}/saferegexmapping/`;
  let model: RecordingUpstream;
  let gw: TestGateway;
  let dir: string;
  beforeAll(async () => {
    model = await startRecordingUpstream({ name: 'target' });
    ({ gw, dir } = await gatewayWith(model, [
      mapping('saferegexmapping', [`prefix: ${PREFIX}`, 'prefix_regex: true', 'host: "[a-zA-Z].*"', 'host_regex: true', 'regex_headers:', '  X-Foo: "^[a-z].*"', `service: http://${SERVICE}`]),
      // Not in the KAT: a pattern RE2 refuses (a look-ahead) drops its Mapping, never a looser route.
      mapping('lookahead', [`prefix: /seldon/${NS}/(?=x)lookahead/`, 'prefix_regex: true', `service: ${SERVICE}`]),
    ]));
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['[0]', PREFIX],
    ['[1]', `/seldon/${NS}/need-normalization/../saferegexmapping/`],
  ])('%s %s with X-Foo: hello: the model receives it, x-envoy-original-path the normalised path', async (n, target) => {
    const id = `safe-regex-${n}`;
    const r = await get(gw, target, id, [['X-Foo', 'hello']]);
    expect(r.status).toBe(200);
    const got = model.byCase(id);
    expect(got.map((q) => [q.target, headerValues(q.headers, 'x-envoy-original-path')])).toEqual([['/', [PREFIX]]]);
  });

  it.each([
    ['[2] no X-Foo', PREFIX, []],
    ['[3] no X-Foo, normalised', `/seldon/${NS}/need-normalization/../saferegexmapping/`, []],
    ['an X-Foo the whole pattern does not match', PREFIX, [['X-Foo', 'Hello']]],
    ['a Host that does not start with a letter', PREFIX, [['X-Foo', 'hello']], '1.example'],
    ['a path the regex matches only in part (RE2 full match)', `${PREFIX}more`, [['X-Foo', 'hello']]],
  ] as [string, string, HeaderLine[], string?][])('%s: 404, nothing reaches the model', async (name, target, headers, host) => {
    const id = `safe-regex-miss-${name}`;
    const lines: HeaderLine[] = host ? [['Host', host], ['x-case', id], ...headers] : [['x-case', id], ...headers];
    const { res, x } = await rawRequest(gw.port, { method: 'GET', target, headers: host ? lines : [['Host', 'kat.example'], ...lines], framing: 'none' }, 10_000);
    x.socket.destroy();
    expect(res?.status).toBe(404);
    expect(model.byCase(id)).toHaveLength(0);
  });

  it('a pattern RE2 does not accept drops its Mapping with the reason', async () => {
    const report = await routesReport(gw.adminUrl, 'kat');
    expect(report.state).toBe('degraded');
    expect(report.reasons).toEqual([`Mapping "lookahead" dropped: prefix: invalid regex "/seldon/${NS}/(?=x)lookahead/": error parsing regexp: invalid or unsupported Perl syntax: \`(?=\``]);
  });
});
