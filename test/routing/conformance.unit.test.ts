/**
 * Conformance of the pure routing core (compile → table → match) with docs/routing.md#conformance-checklist: one block per
 * routing-level line of that checklist (items 2–33), plus split exactness (docs/routing.md#picking-a-member)
 * and bad-SDep isolation (docs/routing.md#deployment-states). No sockets: requests are `RouteRequest`s,
 * picks are seeded.
 *
 * The number that starts a block's title ("13–16. weight normalisation") is the item number in
 * docs/routing.md#conformance-checklist; the link in brackets is the section of docs/routing.md that
 * states the rule.
 */
import { describe, expect, it } from 'vitest';
import { GRPC_PATH_SOURCE } from '../../routing/compile/deployment.js';
import { tableJson } from '../../routing/table/describe.js';
import { headerGetter, match } from '../../routing/table/match.js';
import { randomPicker, roundRobinPicker, seededRandom } from '../../routing/table/pick.js';
import { hashedServiceName } from '../../routing/seldon/services.js';
import { buildTable, TableBuilder } from '../../routing/table/builder.js';
import {
  DEFAULT_BREAKER,
  DEFAULT_COMPILE_OPTIONS,
  type Backend,
  type CompileOptions,
  type Decision,
  type DeploymentReport,
  type NotRouted,
  type Picker,
  type RouteGroup,
  type RouteRequest,
  type RouteTable,
  type Routed,
} from '../../routing/types.js';
import type { PredictorSpec, SeldonDeployment, ServiceStatus } from '../../routing/seldon/deployment.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const PRED = '/api/v1.0/predictions';
const SELDON_PREDICT = '/seldon.protos.Seldon/Predict';

interface SdepInit {
  ns?: string;
  /** spec.annotations */
  spec?: Record<string, string>;
  /** metadata.annotations */
  meta?: Record<string, string>;
  predictors?: PredictorSpec[];
  status?: Record<string, ServiceStatus>;
  specName?: string;
}

function sdep(name: string, init: SdepInit = {}): SeldonDeployment {
  return {
    apiVersion: 'machinelearning.seldon.io/v1',
    kind: 'SeldonDeployment',
    metadata: { name, namespace: init.ns ?? 'ns', ...(init.meta ? { annotations: init.meta } : {}) },
    spec: {
      ...(init.specName !== undefined ? { name: init.specName } : {}),
      ...(init.spec ? { annotations: init.spec } : {}),
      predictors: init.predictors ?? [pred('main')],
    },
    ...(init.status ? { status: { state: 'Available', serviceStatus: init.status } } : {}),
  };
}

function pred(name: string, extra: Partial<PredictorSpec> = {}): PredictorSpec {
  return { name, graph: { name: 'model', type: 'MODEL', implementation: 'SKLEARN_SERVER' }, replicas: 1, ...extra };
}

const opts = (o: Partial<CompileOptions> = {}): CompileOptions => ({ ...DEFAULT_COMPILE_OPTIONS, ...o });
const table = (sdeps: SeldonDeployment[], o: Partial<CompileOptions> = {}): RouteTable => buildTable(sdeps, opts(o));

function lower(h: Record<string, string | string[]>): Record<string, string | string[]> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
}

function rest(path: string, headers: Record<string, string | string[]> = {}, host = 'gateway.example.com'): RouteRequest {
  return { kind: 'rest', method: 'POST', path, host, header: headerGetter(lower(headers)) };
}

function grpc(metadata: Record<string, string | string[]> = {}, path = SELDON_PREDICT, host = 'localhost:8003'): RouteRequest {
  return { kind: 'grpc', method: 'POST', path, host, header: headerGetter(lower(metadata)) };
}

const seeded = (seed = 42): Picker => randomPicker(seededRandom(seed));

function route(t: RouteTable, req: RouteRequest, picker: Picker = seeded(), eligible?: (b: Backend) => boolean): Decision {
  return match(t, req, picker, eligible);
}

function routed(t: RouteTable, req: RouteRequest, picker: Picker = seeded(), eligible?: (b: Backend) => boolean): Routed {
  const d = route(t, req, picker, eligible);
  if (!d.ok) throw new Error(`expected a route for ${req.kind} ${req.path}, got ${d.status} ${d.reason}: ${d.info}`);
  return d;
}

function refused(t: RouteTable, req: RouteRequest, picker: Picker = seeded(), eligible?: (b: Backend) => boolean): NotRouted {
  const d = route(t, req, picker, eligible);
  if (d.ok) throw new Error(`expected no route for ${req.kind} ${req.path}, got ${d.backend.id}`);
  return d;
}

function report(t: RouteTable, key: string): DeploymentReport {
  const r = t.deployments.get(key);
  if (!r) throw new Error(`no report for ${key}`);
  return r;
}

/** `host:port` of the upstream a request reaches. */
const upstreamOf = (d: Routed): string => `${d.backend.upstream.host}:${d.backend.upstream.port}`;

/** Effective percents of a group, by backend id. */
function percents(g: RouteGroup): Record<string, number> {
  return Object.fromEntries(g.members.map((m) => [m.backend.id, Math.round(m.percent * 10_000) / 10_000]));
}

/** n requests through `match`: how many reached each backend, and each mirror. */
function tally(t: RouteTable, req: RouteRequest, n: number, picker: Picker, eligible?: (b: Backend) => boolean) {
  const hits = new Map<string, number>();
  const mirrors = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const d = routed(t, req, picker, eligible);
    hits.set(d.backend.id, (hits.get(d.backend.id) ?? 0) + 1);
    for (const m of d.mirrors) mirrors.set(m.backend.id, (mirrors.get(m.backend.id) ?? 0) + 1);
  }
  return { hits, mirrors };
}

/** Every expected share within ±1.5 pp; a 0 share exactly 0; nothing else hit. */
function expectShares(hits: Map<string, number>, n: number, expected: Record<string, number>): void {
  for (const id of hits.keys()) expect(Object.keys(expected), `unexpected backend ${id}`).toContain(id);
  for (const [id, share] of Object.entries(expected)) {
    const got = hits.get(id) ?? 0;
    if (share === 0) expect(got, `${id} must get exactly 0`).toBe(0);
    else expect(Math.abs((100 * got) / n - share), `${id}: ${(100 * got) / n}% vs ${share}%`).toBeLessThanOrEqual(1.5);
  }
}

function customConfig(...docs: string[]): string {
  return docs.join('\n---\n');
}

// ---------------------------------------------------------------------------------------------
// 2. Effective annotations
// ---------------------------------------------------------------------------------------------

describe('2. effective annotations (docs/routing.md#effective-annotations)', () => {
  it('a metadata-only key takes effect', () => {
    const t = table([sdep('iris-v2', { meta: { 'seldon.io/ambassador-service-name': 'iris' } })]);
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`)).backend.id).toBe('ns/iris-v2/main');
  });

  it('spec overrides metadata by key presence', () => {
    const t = table([sdep('iris-v2', { meta: { 'seldon.io/ambassador-service-name': 'meta' }, spec: { 'seldon.io/ambassador-service-name': 'fromspec' } })]);
    expect(routed(t, rest(`/seldon/ns/fromspec${PRED}`)).backend.id).toBe('ns/iris-v2/main');
    expect(refused(t, rest(`/seldon/ns/meta${PRED}`)).reason).toBe('NO_ROUTE');
  });

  it('a present empty spec value hides the metadata value', () => {
    const t = table([
      sdep('hdr', { meta: { 'seldon.io/ambassador-header': 'x-variant:b' }, spec: { 'seldon.io/ambassador-header': '' } }),
      sdep('svc', { meta: { 'seldon.io/ambassador-service-name': 'elsewhere' }, spec: { 'seldon.io/ambassador-service-name': '' } }),
      sdep('tmo', { meta: { 'seldon.io/rest-timeout': '9000' }, spec: { 'seldon.io/rest-timeout': '' } }),
    ]);
    // The metadata header is hidden: no header needed.
    expect(routed(t, rest(`/seldon/ns/hdr${PRED}`)).backend.id).toBe('ns/hdr/main');
    // The metadata service name is hidden: the deployment name is used (empty = default + warning).
    expect(routed(t, rest(`/seldon/ns/svc${PRED}`)).backend.id).toBe('ns/svc/main');
    expect(refused(t, rest(`/seldon/ns/elsewhere${PRED}`)).status).toBe(404);
    expect(report(t, 'ns/svc').state).toBe('degraded');
    // The metadata timeout is hidden: never 9000.
    expect(routed(t, rest(`/seldon/ns/tmo${PRED}`)).backend.timeoutMs).not.toBe(9000);
  });

  it('predictor-level getambassador.io/config is ignored with a warning (degraded)', () => {
    const t = table([sdep('iris', { predictors: [pred('main', { annotations: { 'getambassador.io/config': 'apiVersion: getambassador.io/v2\nkind: Mapping\nname: x\nprefix: /x/\nservice: x' } })] })]);
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`)).backend.id).toBe('ns/iris/main');
    expect(refused(t, rest('/x/')).status).toBe(404);
    expect(report(t, 'ns/iris').state).toBe('degraded');
    expect(report(t, 'ns/iris').reasons.join(' ')).toContain('getambassador.io/config');
  });

  it('predictor-level annotations other than svc-name and no-engine are not read', () => {
    const t = table([sdep('iris', { predictors: [pred('main', { annotations: { 'seldon.io/ambassador-service-name': 'other', 'seldon.io/rest-timeout': '1' } })] })]);
    const d = routed(t, rest(`/seldon/ns/iris${PRED}`));
    expect(d.backend.timeoutMs).toBe(3000);
    expect(refused(t, rest(`/seldon/ns/other${PRED}`)).status).toBe(404);
  });

  it('values are trimmed before parsing', () => {
    const t = table([sdep('iris', { spec: { 'seldon.io/rest-timeout': ' 5000 \n', 'seldon.io/ambassador-service-name': '  flower ' } })]);
    const d = routed(t, rest(`/seldon/ns/flower${PRED}`));
    expect(d.backend.timeoutMs).toBe(5000);
    expect(report(t, 'ns/iris').state).toBe('accepted');
  });
});

// ---------------------------------------------------------------------------------------------
// 3–5. REST prefixes and rewrite
// ---------------------------------------------------------------------------------------------

describe('3. REST prefix and rewrite (docs/routing.md#rest-prefixes-and-rewrite)', () => {
  const t = table([sdep('iris', { ns: 'models' })]);
  it.each([
    ['/seldon/models/iris/api/v1.0/predictions?x=1', '/api/v1.0/predictions?x=1'],
    ['/seldon/models/iris/api/v1.0/predictions', '/api/v1.0/predictions'],
    ['/seldon/models/iris/', '/'],
    ['/seldon/models/iris/?', '/?'],
    ['/seldon/models/iris/api/v1.0/feedback?a=%2F%20b&&c=/seldon/models/iris/&d=?e%23f', '/api/v1.0/feedback?a=%2F%20b&&c=/seldon/models/iris/&d=?e%23f'],
    ['/seldon/models/iris/v2/models/iris/infer?q=%E2%9C%93', '/v2/models/iris/infer?q=%E2%9C%93'],
    ['/seldon/models/iris/a%2Fb/c', '/a%2Fb/c'],
  ])('%s → %s', (path, upstream) => {
    const d = routed(t, rest(path));
    expect(d.upstreamPath).toBe(upstream);
    expect(upstreamOf(d)).toBe('iris-main.models:8000');
    expect(d.backend.upstream.service).toEqual({ name: 'iris-main', namespace: 'models', portName: 'http' });
  });

  it('a fragment (#) in the target, in the path or after the query, is a 400 (Envoy http_reject_path_with_fragment)', () => {
    for (const p of [`/seldon/models/iris${PRED}#f`, `/seldon/models/iris${PRED}?a=1#f`, '/seldon/models/iris/#/api'])
      expect(refused(t, rest(p))).toMatchObject({ status: 400, reason: 'BAD_REQUEST' });
  });

  it('matches case-sensitively and without percent-decoding', () => {
    expect(refused(t, rest(`/seldon/models/Iris${PRED}`)).status).toBe(404);
    expect(refused(t, rest(`/seldon/models/%69ris${PRED}`)).status).toBe(404);
    expect(refused(t, rest(`/Seldon/models/iris${PRED}`)).status).toBe(404);
  });

  it('any method and any Host', () => {
    for (const method of ['GET', 'POST', 'OPTIONS', 'DELETE']) {
      const req = { ...rest(`/seldon/models/iris${PRED}`, {}, 'whatever.internal:1234'), method };
      expect(routed(t, req).backend.id).toBe('models/iris/main');
    }
  });

  it('namespace "" (or absent) is "default"', () => {
    const t2 = table([sdep('iris', { ns: '' })]);
    expect(routed(t2, rest(`/seldon/default/iris${PRED}`)).backend.upstream.host).toBe('iris-main.default');
  });
});

describe('4. single-namespace short prefixes (docs/routing.md#single-namespace-mode)', () => {
  const ex = { type: 'AnchorTabular', modelUri: 'gs://x' };
  const deps = [sdep('iris', { ns: 'models', predictors: [pred('main', { explainer: ex })] }), sdep('other', { ns: 'elsewhere' })];

  it('serves /seldon/<svcExt>/ only in single-namespace mode', () => {
    const single = table(deps, { singleNamespace: true, namespace: 'models' });
    const d = routed(single, rest(`/seldon/iris${PRED}?x=1`));
    expect(d.backend.id).toBe('models/iris/main');
    expect(d.upstreamPath).toBe(`${PRED}?x=1`);
    expect(routed(single, rest(`/seldon/models/iris${PRED}`)).backend.id).toBe('models/iris/main');
    expect(routed(single, rest('/seldon/iris-explainer/main/api/v1.0/explain')).backend.id).toBe('models/iris/main#explainer');

    const cluster = table(deps);
    const nr = refused(cluster, rest(`/seldon/iris${PRED}`));
    expect([nr.status, nr.reason]).toEqual([404, 'NO_ROUTE']);
    expect(refused(cluster, rest('/seldon/iris-explainer/main/api/v1.0/explain')).status).toBe(404);
    expect(routed(cluster, rest(`/seldon/models/iris${PRED}`)).backend.id).toBe('models/iris/main');
  });

  it('single-namespace mode skips SDeps of other namespaces', () => {
    const single = table(deps, { singleNamespace: true, namespace: 'models' });
    expect(refused(single, rest(`/seldon/elsewhere/other${PRED}`)).status).toBe(404);
    expect(refused(single, rest(`/seldon/other${PRED}`)).status).toBe(404);
    expect(report(single, 'elsewhere/other').state).toBe('skipped');
  });
});

describe('5. the trailing slash is part of the prefix', () => {
  it.each([
    ['/seldon/ns/x', 'x only'],
    ['/seldon/ns/x?y=1', 'x only'],
    ['/seldon/ns/x2/api/v1.0/predictions', 'x only'],
    ['/seldon/ns/xx/', 'x only'],
    ['/seldon/ns/', 'x only'],
  ])('%s does not reach x', (path) => {
    expect(refused(table([sdep('x')]), rest(path)).reason).toBe('NO_ROUTE');
  });

  it('/seldon/ns/x2/… reaches x2 and /seldon/ns/x/… reaches x when both exist', () => {
    const t = table([sdep('x'), sdep('x2')]);
    expect(routed(t, rest(`/seldon/ns/x2${PRED}`)).backend.id).toBe('ns/x2/main');
    expect(routed(t, rest(`/seldon/ns/x${PRED}`)).backend.id).toBe('ns/x/main');
  });
});

// ---------------------------------------------------------------------------------------------
// 6. ambassador-service-name
// ---------------------------------------------------------------------------------------------

describe('6. seldon.io/ambassador-service-name (docs/routing.md#external-name)', () => {
  it('moves the REST prefix, the explainer prefix and the gRPC seldon value', () => {
    const t = table([sdep('iris-v2', { spec: { 'seldon.io/ambassador-service-name': 'iris' }, predictors: [pred('main', { explainer: { type: 'AnchorTabular' } })] })]);
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`)).backend.id).toBe('ns/iris-v2/main');
    expect(refused(t, rest(`/seldon/ns/iris-v2${PRED}`)).status).toBe(404);
    expect(routed(t, rest('/seldon/ns/iris-explainer/main/api/v1.0/explain')).backend.id).toBe('ns/iris-v2/main#explainer');
    expect(refused(t, rest('/seldon/ns/iris-v2-explainer/main/api/v1.0/explain')).status).toBe(404);
    const g = routed(t, grpc({ seldon: 'iris', namespace: 'ns' }));
    expect(g.backend.id).toBe('ns/iris-v2/main');
    // The upstream Service keeps the deployment's own name.
    expect(upstreamOf(g)).toBe('iris-v2-main.ns:5001');
    expect(refused(t, grpc({ seldon: 'iris-v2', namespace: 'ns' })).status).toBe(404);
  });

  it.each(['a/b', 'a b', 'a?b', 'a#b', 'a%2fb', 'a\tb', 'a\u0007b'])('invalid value %j rejects only that SDep', (bad) => {
    const t = table([sdep('bad', { spec: { 'seldon.io/ambassador-service-name': bad } }), sdep('good')]);
    expect(report(t, 'ns/bad').state).toBe('rejected');
    expect(report(t, 'ns/bad').reasons.join(' ')).toContain('ambassador-service-name');
    expect(refused(t, rest(`/seldon/ns/bad${PRED}`)).status).toBe(404);
    expect(refused(t, grpc({ seldon: 'bad', namespace: 'ns' })).status).toBe(404);
    expect(routed(t, rest(`/seldon/ns/good${PRED}`)).backend.id).toBe('ns/good/main');
  });

  it('"" means the default, with a warning', () => {
    const t = table([sdep('iris', { spec: { 'seldon.io/ambassador-service-name': '' } })]);
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`)).backend.id).toBe('ns/iris/main');
    expect(report(t, 'ns/iris').state).toBe('degraded');
  });
});

// ---------------------------------------------------------------------------------------------
// 7. Service names
// ---------------------------------------------------------------------------------------------

describe('7. Service names and MD5 hashing (docs/routing.md#upstream-services-and-ports)', () => {
  const long = 'my-very-long-seldon-deployment-name-for-testing-purposes-x';
  it.each([
    ['a'.repeat(55) + '-default', 63, 'a'.repeat(55) + '-default'],
    ['b'.repeat(56) + '-default', 64, 'seldon-963ebf200def62bedd8af49b6ead8aba'],
    ['a'.repeat(60) + '-default', 68, 'seldon-07ce6a687a707f132fc3afa36b028b60'],
    [`${long}-default`, 66, 'seldon-55c2cdb7fa00c1b2faffb2bb7bd4581f'],
    [`${long}-default-explainer`, 76, 'seldon-363c2e6ff4cca465f7e48c9bb4684189'],
  ])('vector %#: length %i', (input, length, expected) => {
    expect(input.length).toBe(length);
    expect(hashedServiceName(input)).toBe(expected);
    if (expected.startsWith('seldon-')) expect(expected).toHaveLength(39);
  });

  it('compiles the vectors into upstream hosts (predictor and explainer)', () => {
    const t = table([
      sdep(long, { ns: 'default', predictors: [pred('default', { explainer: { type: 'AnchorTabular' } })] }),
      sdep('a'.repeat(55), { ns: 'default', predictors: [pred('default')] }),
      sdep('b'.repeat(56), { ns: 'default', predictors: [pred('default')] }),
    ]);
    expect(upstreamOf(routed(t, rest(`/seldon/default/${long}${PRED}`)))).toBe('seldon-55c2cdb7fa00c1b2faffb2bb7bd4581f.default:8000');
    expect(upstreamOf(routed(t, rest(`/seldon/default/${long}-explainer/default/api/v1.0/explain`)))).toBe('seldon-363c2e6ff4cca465f7e48c9bb4684189.default:9000');
    expect(upstreamOf(routed(t, grpc({ seldon: long, namespace: 'default' })))).toBe('seldon-55c2cdb7fa00c1b2faffb2bb7bd4581f.default:5001');
    expect(routed(t, rest(`/seldon/default/${'a'.repeat(55)}${PRED}`)).backend.upstream.host).toBe(`${'a'.repeat(55)}-default.default`);
    expect(routed(t, rest(`/seldon/default/${'b'.repeat(56)}${PRED}`)).backend.upstream.host).toBe('seldon-963ebf200def62bedd8af49b6ead8aba.default');
  });

  it('seldon.io/svc-name is used verbatim (never hashed), for REST and gRPC but not the explainer', () => {
    const name63 = 'z' + 'y'.repeat(62);
    const t = table([
      sdep('iris', { predictors: [pred('main', { annotations: { 'seldon.io/svc-name': 'my-svc' }, explainer: { type: 'AnchorTabular' } })] }),
      sdep('rose', { predictors: [pred('main', { annotations: { 'seldon.io/svc-name': name63 } })] }),
    ]);
    expect(upstreamOf(routed(t, rest(`/seldon/ns/iris${PRED}`)))).toBe('my-svc.ns:8000');
    expect(upstreamOf(routed(t, grpc({ seldon: 'iris', namespace: 'ns' })))).toBe('my-svc.ns:5001');
    expect(upstreamOf(routed(t, rest('/seldon/ns/iris-explainer/main/api/v1.0/explain')))).toBe('iris-main-explainer.ns:9000');
    expect(routed(t, rest(`/seldon/ns/rose${PRED}`)).backend.upstream.host).toBe(`${name63}.ns`);
  });

  it.each(['z'.repeat(64), 'My-Svc', '1abc', 'a_b', 'a.b', '-a', ''])('an invalid svc-name %j rejects only that SDep', (bad) => {
    const t = table([sdep('iris', { predictors: [pred('main', { annotations: { 'seldon.io/svc-name': bad } })] }), sdep('good')]);
    expect(report(t, 'ns/iris').state).toBe('rejected');
    expect(refused(t, rest(`/seldon/ns/iris${PRED}`)).status).toBe(404);
    expect(routed(t, rest(`/seldon/ns/good${PRED}`)).backend.id).toBe('ns/good/main');
  });

  it('legacyServiceNaming: <spec.name>-<sdep>, one Service for all predictors, 8000/5001', () => {
    const t = table([sdep('iris', { specName: 'graph', predictors: [pred('a'), pred('b', { traffic: 50 })] })], { legacyServiceNaming: true, defaultHttpPort: 8080 });
    const g = routed(t, rest(`/seldon/ns/iris${PRED}`)).group;
    expect(g.members.map((m) => `${m.backend.upstream.host}:${m.backend.upstream.port}`)).toEqual(['graph-iris.ns:8000', 'graph-iris.ns:8000']);
    expect(upstreamOf(routed(t, grpc({ seldon: 'iris', namespace: 'ns' })))).toBe('graph-iris.ns:5001');
  });
});

// ---------------------------------------------------------------------------------------------
// 8. Ports
// ---------------------------------------------------------------------------------------------

describe('8. upstream ports (docs/routing.md#upstream-services-and-ports)', () => {
  it('status.serviceStatus gives the ports', () => {
    const t = table([sdep('iris', { status: { 'iris-main': { svcName: 'iris-main', httpEndpoint: 'iris-main.ns:9001', grpcEndpoint: 'iris-main.ns:5002' } } })]);
    expect(upstreamOf(routed(t, rest(`/seldon/ns/iris${PRED}`)))).toBe('iris-main.ns:9001');
    expect(upstreamOf(routed(t, grpc({ seldon: 'iris', namespace: 'ns' })))).toBe('iris-main.ns:5002');
  });

  it('an empty endpoint means no route of that kind', () => {
    const t = table([
      sdep('resty', { status: { 'resty-main': { svcName: 'resty-main', httpEndpoint: 'resty-main.ns:9000', grpcEndpoint: '' } } }),
      sdep('grpcy', { status: { 'grpcy-main': { svcName: 'grpcy-main', httpEndpoint: '', grpcEndpoint: 'grpcy-main.ns:9500' } } }),
    ]);
    expect(upstreamOf(routed(t, rest(`/seldon/ns/resty${PRED}`)))).toBe('resty-main.ns:9000');
    expect(refused(t, grpc({ seldon: 'resty', namespace: 'ns' })).status).toBe(404);
    expect(refused(t, rest(`/seldon/ns/grpcy${PRED}`)).status).toBe(404);
    expect(upstreamOf(routed(t, grpc({ seldon: 'grpcy', namespace: 'ns' })))).toBe('grpcy-main.ns:9500');
  });

  it('the status entry is found by svc-name, then the 1.1+ name, then the 0.4–1.0 name', () => {
    const t = table([
      sdep('a', {
        predictors: [pred('p', { annotations: { 'seldon.io/svc-name': 'custom' } })],
        status: { custom: { httpEndpoint: 'custom.ns:7001', grpcEndpoint: 'custom.ns:7002' }, 'a-p': { httpEndpoint: 'a-p.ns:1', grpcEndpoint: 'a-p.ns:2' } },
      }),
      sdep('b', { specName: 'g', status: { 'b-g-p': { svcName: 'b-g-p', httpEndpoint: 'b-g-p.ns:7101', grpcEndpoint: 'b-g-p.ns:7102' } }, predictors: [pred('p')] }),
      sdep('c', {
        specName: 'g',
        status: { 'c-p': { httpEndpoint: 'c-p.ns:7201', grpcEndpoint: 'c-p.ns:7202' }, 'c-g-p': { httpEndpoint: 'c-g-p.ns:1', grpcEndpoint: 'c-g-p.ns:2' } },
        predictors: [pred('p')],
      }),
    ]);
    expect(upstreamOf(routed(t, rest(`/seldon/ns/a${PRED}`)))).toBe('custom.ns:7001');
    expect(upstreamOf(routed(t, rest(`/seldon/ns/b${PRED}`)))).toBe('b-g-p.ns:7101');
    expect(upstreamOf(routed(t, grpc({ seldon: 'b', namespace: 'ns' })))).toBe('b-g-p.ns:7102');
    expect(upstreamOf(routed(t, rest(`/seldon/ns/c${PRED}`)))).toBe('c-p.ns:7201');
  });

  it('a status without an entry for the predictor falls back to the defaults', () => {
    const t = table([sdep('iris', { status: { 'someone-else': { httpEndpoint: 'x.ns:1', grpcEndpoint: 'x.ns:2' } } })], { defaultHttpPort: 8100, defaultGrpcPort: 5100 });
    expect(upstreamOf(routed(t, rest(`/seldon/ns/iris${PRED}`)))).toBe('iris-main.ns:8100');
    expect(upstreamOf(routed(t, grpc({ seldon: 'iris', namespace: 'ns' })))).toBe('iris-main.ns:5100');
  });

  it('defaults: executor 8000/5001, no-engine 9000/9500, explainer 9000 (or its service_port) and no gRPC', () => {
    const t = table([
      sdep('exec'),
      sdep('noeng', { predictors: [pred('main', { annotations: { 'seldon.io/no-engine': 'True' } })] }),
      sdep('noengfalse', { predictors: [pred('main', { annotations: { 'seldon.io/no-engine': 'yes' } })] }),
      sdep('expl', { predictors: [pred('main', { explainer: { type: 'AnchorTabular' } }), pred('other', { traffic: 0, explainer: { type: 'AnchorImages', endpoint: { service_port: 9100 } } })] }),
    ]);
    expect(upstreamOf(routed(t, rest(`/seldon/ns/exec${PRED}`)))).toBe('exec-main.ns:8000');
    expect(upstreamOf(routed(t, grpc({ seldon: 'exec', namespace: 'ns' })))).toBe('exec-main.ns:5001');
    expect(upstreamOf(routed(t, rest(`/seldon/ns/noeng${PRED}`)))).toBe('noeng-main.ns:9000');
    expect(upstreamOf(routed(t, grpc({ seldon: 'noeng', namespace: 'ns' })))).toBe('noeng-main.ns:9500');
    expect(upstreamOf(routed(t, rest(`/seldon/ns/noengfalse${PRED}`)))).toBe('noengfalse-main.ns:8000');
    expect(upstreamOf(routed(t, rest('/seldon/ns/expl-explainer/main/api/v1.0/explain')))).toBe('expl-main-explainer.ns:9000');
    expect(upstreamOf(routed(t, rest('/seldon/ns/expl-explainer/other/api/v1.0/explain')))).toBe('expl-other-explainer.ns:9100');
    // No gRPC route to an explainer: no gRPC group has an explainer backend.
    for (const g of t.groups.filter((x) => x.kind === 'grpc')) for (const m of [...g.members, ...g.mirrors]) expect(m.backend.id).not.toContain('explainer');
    expect(refused(t, grpc({ seldon: 'expl-explainer', namespace: 'ns' })).status).toBe(404);
    expect(routed(t, grpc({ seldon: 'expl', namespace: 'ns' })).backend.id).toBe('ns/expl/main');
  });

  it('an explainer takes its ports from the status entry whose explainerFor is its predictor Service', () => {
    const t = table([
      sdep('iris', {
        predictors: [pred('main', { explainer: { type: 'AnchorTabular' } })],
        status: {
          'iris-main': { svcName: 'iris-main', httpEndpoint: 'iris-main.ns:8000', grpcEndpoint: 'iris-main.ns:5001' },
          'iris-main-explainer': { svcName: 'iris-main-explainer', httpEndpoint: 'iris-main-explainer.ns:9009', grpcEndpoint: 'iris-main-explainer.ns:5009', explainerFor: 'iris-main' },
        },
      }),
    ]);
    expect(upstreamOf(routed(t, rest('/seldon/ns/iris-explainer/main/api/v1.0/explain')))).toBe('iris-main-explainer.ns:9009');
    expect(t.groups.filter((g) => g.kind === 'grpc').flatMap((g) => g.members.map((m) => m.backend.id))).toEqual(['ns/iris/main']);
  });
});

// ---------------------------------------------------------------------------------------------
// 9–11. gRPC
// ---------------------------------------------------------------------------------------------

describe('9. gRPC :path full match (docs/routing.md#grpc-metadata-matching)', () => {
  const t = table([sdep('iris')]);
  it.each([
    '/seldon.protos.Seldon/Predict',
    '/seldon.protos.Seldon/SendFeedback',
    '/seldon.protos.Model/Predict',
    '/tensorflow.serving.PredictionService/Predict',
    '/tensorflow.serving.ModelService/GetModelStatus',
    '/inference.GRPCInferenceService/ModelInfer',
  ])('%s routes, unrewritten', (path) => {
    const d = routed(t, grpc({ seldon: 'iris', namespace: 'ns' }, path));
    expect(d.backend.id).toBe('ns/iris/main');
    expect(d.upstreamPath).toBe(path);
  });

  it.each(['/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo', '/grpc.health.v1.Health/Check', '/seldon.protos.Seldon', '/x/seldon.protos.Seldon/Predict'])(
    '%s does not route (404 NO_ROUTE → UNIMPLEMENTED)',
    (path) => {
      const d = refused(t, grpc({ seldon: 'iris', namespace: 'ns' }, path));
      expect([d.status, d.reason]).toEqual([404, 'NO_ROUTE']);
    },
  );

  it('gRPC requests match only gRPC routes, and REST requests only REST routes', () => {
    expect(refused(t, rest(SELDON_PREDICT, { seldon: 'iris', namespace: 'ns' })).status).toBe(404);
    expect(refused(t, grpc({ seldon: 'iris', namespace: 'ns' }, `/seldon/ns/iris${PRED}`)).status).toBe(404);
  });

  it('gRPC needs the seldon metadata, equal to svcExt exactly', () => {
    expect(refused(t, grpc({ namespace: 'ns' })).status).toBe(404);
    expect(refused(t, grpc({ seldon: 'Iris', namespace: 'ns' })).status).toBe(404);
    expect(refused(t, grpc({ seldon: 'iris ', namespace: 'ns' })).status).toBe(404);
  });
});

describe('10. gRPC namespace inference (docs/routing.md#grpc-metadata-matching)', () => {
  // Calls without `namespace`, cluster-wide: refused by default (tenant isolation);
  // with customConfigScope "cluster", Ambassador's behaviour: the unique namespace serving that name.
  const cluster = { customConfigScope: 'cluster' } as const;

  it('tenant isolation (default): a call without namespace is refused, even where one namespace serves the name; the message names none', () => {
    const t = table([sdep('iris', { ns: 'a' }), sdep('rose', { ns: 'team-b' })]);
    for (const seldon of ['iris', 'rose', 'tulip']) {
      const d = refused(t, grpc({ seldon }));
      expect([d.status, d.reason]).toEqual([404, 'NO_ROUTE']);
      expect(d.info).toContain('"namespace" metadata');
      expect(d.info).not.toMatch(/team-b|"a"|\ba\b,/);
    }
    expect(routed(t, grpc({ seldon: 'rose', namespace: 'team-b' })).backend.id).toBe('team-b/rose/main');
  });

  it("tenant isolation (default): a squatter never gets the victim's calls, nor fails them, present or deleted", () => {
    const b = new TableBuilder(opts());
    b.upsert(sdep('iris', { ns: 'victim' }));
    b.upsert(sdep('iris', { ns: 'squatter' }));
    const both = b.build();
    expect(routed(both, grpc({ seldon: 'iris', namespace: 'victim' })).backend.id).toBe('victim/iris/main');
    b.remove('victim/iris');
    const alone = b.build();
    const d = refused(alone, grpc({ seldon: 'iris' }));
    expect(d.info).not.toContain('squatter');
    expect(refused(alone, grpc({ seldon: 'iris', namespace: 'victim' })).info).not.toContain('squatter');
  });

  it('scope cluster: a missing namespace is the unique one serving that seldon value', () => {
    const t = table([sdep('iris', { ns: 'a' }), sdep('rose', { ns: 'b' })], cluster);
    expect(routed(t, grpc({ seldon: 'iris' })).backend.id).toBe('a/iris/main');
    expect(routed(t, grpc({ seldon: 'rose' })).backend.id).toBe('b/rose/main');
    expect(refused(t, grpc({ seldon: 'tulip' })).status).toBe(404);
  });

  it('scope cluster: ambiguous is no route, and the message names no namespace', () => {
    const t = table([sdep('iris', { ns: 'team-a' }), sdep('iris', { ns: 'team-b' })], cluster);
    const d = refused(t, grpc({ seldon: 'iris' }));
    expect([d.status, d.reason]).toEqual([404, 'NO_ROUTE']);
    expect(d.info).toContain('"namespace" metadata');
    expect(d.info).not.toMatch(/team-/);
    expect(routed(t, grpc({ seldon: 'iris', namespace: 'team-b' })).backend.id).toBe('team-b/iris/main');
    // An inferred namespace is not echoed either when nothing matches there.
    const h = table([sdep('iris', { ns: 'team-a', spec: { 'seldon.io/ambassador-header': 'x-region:eu' } })], cluster);
    expect(refused(h, grpc({ seldon: 'iris' })).info).not.toContain('team-a');
  });

  it('scope cluster: a shadow-only group is not a route for inference', () => {
    const t = table([sdep('iris', { ns: 'a' }), sdep('iris', { ns: 'b', predictors: [pred('main', { shadow: true })] })], cluster);
    expect(routed(t, grpc({ seldon: 'iris' })).backend.id).toBe('a/iris/main');
  });

  it('single-namespace mode: missing namespace means AMBASSADOR_NAMESPACE', () => {
    const deps = [sdep('iris', { ns: 'models' }), sdep('iris', { ns: 'other' })];
    const t = table(deps, { singleNamespace: true, namespace: 'models' });
    expect(routed(t, grpc({ seldon: 'iris' })).backend.id).toBe('models/iris/main');
    const t2 = table([sdep('iris', { ns: 'other' })], { singleNamespace: true, namespace: 'models' });
    expect(refused(t2, grpc({ seldon: 'iris' })).status).toBe(404);
  });

  it('a namespace that is present is always honoured', () => {
    const t = table([sdep('iris', { ns: 'a' })]);
    expect(refused(t, grpc({ seldon: 'iris', namespace: 'b' })).status).toBe(404);
    expect(refused(t, grpc({ seldon: 'iris', namespace: '' })).status).toBe(404);
  });
});

describe('11. same-named SDeps in two namespaces never mix', () => {
  const t = table([
    sdep('iris', { ns: 'a', predictors: [pred('main'), pred('canary', { traffic: 50 })] }),
    sdep('iris', { ns: 'b', predictors: [pred('main'), pred('canary', { traffic: 50 })] }),
    // A legacy variant in b naming a's prefix must stay in b.
    sdep('iris-v9', { ns: 'b', spec: { 'seldon.io/ambassador-service-name': 'iris', 'seldon.io/ambassador-weight': '50' } }),
  ]);
  it.each(['a', 'b'])('REST and gRPC for namespace %s stay in %s', (ns) => {
    const picker = seeded(7);
    for (const req of [rest(`/seldon/${ns}/iris${PRED}`), grpc({ seldon: 'iris', namespace: ns })]) {
      const { hits } = tally(t, req, 2000, picker);
      for (const id of hits.keys()) expect(id.startsWith(`${ns}/`)).toBe(true);
    }
  });
  it('members of one group keep their own upstream, timeout, retry, breaker and TLS (docs/routing.md#route-groups)', () => {
    const t2 = table([
      sdep('iris', { ns: 'a' }),
      sdep('iris-v2', {
        ns: 'a',
        spec: {
          'seldon.io/ambassador-service-name': 'iris',
          'seldon.io/ambassador-weight': '10',
          'seldon.io/rest-timeout': '9000',
          'seldon.io/ambassador-retries': '1',
          'seldon.io/ambassador-circuit-breakers-max-requests': '5',
        },
        predictors: [pred('main', { ssl: { certSecretName: 's' } })],
      }),
    ]);
    const g = routed(t2, rest(`/seldon/a/iris${PRED}`)).group;
    const view = g.members.map((x) => [
      x.backend.id,
      upstreamOf({ backend: x.backend } as Routed),
      x.backend.timeoutMs,
      x.backend.retry?.numRetries ?? 0,
      x.backend.breaker.maxRequests,
      x.backend.upstream.tls,
      x.percent,
    ]);
    expect(view).toEqual([
      ['a/iris-v2/main', 'iris-v2-main.a:8000', 9000, 1, 5, true, 10],
      ['a/iris/main', 'iris-main.a:8000', 3000, 0, 1024, false, 90],
    ]);
  });

  it('the groups are separate', () => {
    const a = routed(t, rest(`/seldon/a/iris${PRED}`)).group;
    const b = routed(t, rest(`/seldon/b/iris${PRED}`)).group;
    expect(Object.keys(percents(a)).sort()).toEqual(['a/iris/canary', 'a/iris/main']);
    expect(Object.keys(percents(b)).sort()).toEqual(['b/iris-v9/main', 'b/iris/canary', 'b/iris/main']);
  });
});

// ---------------------------------------------------------------------------------------------
// 12. Explainers
// ---------------------------------------------------------------------------------------------

describe('12. explainers (docs/routing.md#explainers)', () => {
  const ex = { type: 'AnchorTabular' };
  const t = table([
    sdep('iris', {
      spec: { 'seldon.io/rest-timeout': '12000', 'seldon.io/ambassador-retries': '2' },
      predictors: [pred('main', { traffic: 75, explainer: ex }), pred('canary', { traffic: 25, explainer: ex }), pred('audit', { shadow: true, traffic: 10, explainer: ex })],
    }),
  ]);
  it.each(['main', 'canary', 'audit'])('/seldon/ns/iris-explainer/%s/ gets 100 %%, never a mirror', (p) => {
    const req = rest(`/seldon/ns/iris-explainer/${p}/api/v1.0/explain?x=1`);
    const d = routed(t, req);
    expect(d.upstreamPath).toBe('/api/v1.0/explain?x=1');
    expect(d.group.members).toHaveLength(1);
    expect(d.group.members[0]!.percent).toBe(100);
    expect(d.group.mirrors).toHaveLength(0);
    expect(d.backend.timeoutMs).toBe(12000);
    expect(d.backend.retry?.numRetries).toBe(2);
    const { hits } = tally(t, req, 500, seeded(3));
    expect(hits.get(`ns/iris/${p}#explainer`)).toBe(500);
  });
  it("a legacy shadow SDep's explainer is an ordinary route", () => {
    const t2 = table([sdep('audit', { spec: { 'seldon.io/ambassador-shadow': 'true' }, predictors: [pred('main', { explainer: ex })] })]);
    const d = routed(t2, rest('/seldon/ns/audit-explainer/main/api/v1.0/explain'));
    expect([d.backend.id, d.group.members.length, d.group.mirrors.length]).toEqual(['ns/audit/main#explainer', 1, 0]);
    expect(refused(t2, rest(`/seldon/ns/audit${PRED}`)).status).toBe(404);
  });

  it('the old /seldon/<ns>/<sdep>-explainer/ form is not served', () => {
    expect(refused(t, rest('/seldon/ns/iris-explainer/api/v1.0/explain')).status).toBe(404);
  });
  it('the SDep header constraints apply to explainers', () => {
    const t2 = table([sdep('iris', { spec: { 'seldon.io/ambassador-header': 'x-team:a' }, predictors: [pred('main', { explainer: ex })] })]);
    expect(refused(t2, rest('/seldon/ns/iris-explainer/main/api/v1.0/explain')).status).toBe(404);
    expect(routed(t2, rest('/seldon/ns/iris-explainer/main/api/v1.0/explain', { 'x-team': 'a' })).backend.id).toBe('ns/iris/main#explainer');
  });
});

// ---------------------------------------------------------------------------------------------
// 13–16. Weights
// ---------------------------------------------------------------------------------------------

describe('13–16. weight normalisation (docs/routing.md#weights-and-normalisation)', () => {
  const cases: Array<[string, PredictorSpec[], Record<string, number>]> = [
    ['[main 75, canary 25]', [pred('main', { traffic: 75 }), pred('canary', { traffic: 25 })], { main: 75, canary: 25 }],
    ['first traffic ignored [main 10, canary 25]', [pred('main', { traffic: 10 }), pred('canary', { traffic: 25 })], { main: 75, canary: 25 }],
    ['[100, 0]', [pred('main', { traffic: 100 }), pred('canary', { traffic: 0 })], { main: 100, canary: 0 }],
    ['[100, absent]', [pred('main', { traffic: 100 }), pred('canary')], { main: 100, canary: 0 }],
    ['[0, 100]', [pred('main', { traffic: 0 }), pred('canary', { traffic: 100 })], { main: 0, canary: 100 }],
    ['[33, 33, 33]', [pred('p1', { traffic: 33 }), pred('p2', { traffic: 33 }), pred('p3', { traffic: 33 })], { p1: 34, p2: 33, p3: 33 }],
    ['[60, 20, 20]', [pred('p1', { traffic: 60 }), pred('p2', { traffic: 20 }), pred('p3', { traffic: 20 })], { p1: 60, p2: 20, p3: 20 }],
    ['[p1 20, p2 90]', [pred('p1', { traffic: 20 }), pred('p2', { traffic: 90 })], { p1: 10, p2: 90 }],
    ['[main, a 80, b 40] (W > 100)', [pred('main', { traffic: 50 }), pred('a', { traffic: 80 }), pred('b', { traffic: 40 })], { main: 0, a: 66.6667, b: 33.3333 }],
    ['[main, b 40, a 80] (W > 100, reordered)', [pred('main', { traffic: 50 }), pred('b', { traffic: 40 }), pred('a', { traffic: 80 })], { main: 0, a: 66.6667, b: 33.3333 }],
    ['single member at any weight', [pred('only', { traffic: 7 })], { only: 100 }],
    ['shadows are outside the pool', [pred('main'), pred('canary', { traffic: 25 }), pred('audit', { shadow: true, traffic: 50 })], { main: 75, canary: 25 }],
  ];
  it.each(cases)('%s', (_name, predictors, expected) => {
    const t = table([sdep('iris', { predictors })]);
    const want = Object.fromEntries(Object.entries(expected).map(([p, v]) => [`ns/iris/${p}`, v]));
    expect(percents(routed(t, rest(`/seldon/ns/iris${PRED}`)).group)).toEqual(want);
    // gRPC groups get the same split.
    expect(percents(routed(t, grpc({ seldon: 'iris', namespace: 'ns' })).group)).toEqual(want);
  });

  function legacy(name: string, weight: string | undefined): SeldonDeployment {
    return sdep(name, { spec: { 'seldon.io/ambassador-service-name': 'shared', ...(weight !== undefined ? { 'seldon.io/ambassador-weight': weight } : {}) } });
  }
  const perms = <T>(xs: T[]): T[][] => (xs.length <= 1 ? [xs] : xs.flatMap((x, i) => perms([...xs.slice(0, i), ...xs.slice(i + 1)]).map((r) => [x, ...r])));

  it('an all-explicit sum > 100 is scaled, independent of event order', () => {
    const deps = [legacy('a', '60'), legacy('b', '60'), legacy('c', '30')];
    const seen = new Set<string>();
    for (const order of perms(deps)) {
      const t = table(order);
      const g = routed(t, rest(`/seldon/ns/shared${PRED}`)).group;
      expect(percents(g)).toEqual({ 'ns/a/main': 40, 'ns/b/main': 40, 'ns/c/main': 20 });
      expect(g.warnings.join(' ')).toContain('150');
      seen.add(JSON.stringify(tableJson(t).deployments));
    }
    expect(seen.size).toBe(1);
    // Incremental arrival in two different orders ends at the same table too.
    const b1 = new TableBuilder(opts());
    const b2 = new TableBuilder(opts());
    for (const d of deps) {
      b1.upsert(d);
      b1.build();
    }
    for (const d of [...deps].reverse()) {
      b2.upsert(d);
      b2.build();
    }
    expect(tableJson(b1.build()).deployments).toEqual(tableJson(b2.build()).deployments);
  });

  it('an all-explicit sum < 100 is scaled (never 404), an all-zero group split equally', () => {
    const t = table([legacy('a', '30'), legacy('b', '20')]);
    expect(percents(routed(t, rest(`/seldon/ns/shared${PRED}`)).group)).toEqual({ 'ns/a/main': 60, 'ns/b/main': 40 });
    const z = table([legacy('a', '0'), legacy('b', '0')]);
    const g = routed(z, rest(`/seldon/ns/shared${PRED}`)).group;
    expect(percents(g)).toEqual({ 'ns/a/main': 50, 'ns/b/main': 50 });
    expect(g.warnings).toHaveLength(1);
    expect(report(z, 'ns/a').state).toBe('degraded');
  });

  it('legacy: weightless first predictors share the remainder equally', () => {
    const t = table([legacy('a', undefined), legacy('b', undefined), legacy('c', '40')]);
    expect(percents(routed(t, rest(`/seldon/ns/shared${PRED}`)).group)).toEqual({ 'ns/a/main': 30, 'ns/b/main': 30, 'ns/c/main': 40 });
  });

  it('a single-member group gets 100 % at any legacy weight', () => {
    const t = table([legacy('a', '20')]);
    expect(percents(routed(t, rest(`/seldon/ns/shared${PRED}`)).group)).toEqual({ 'ns/a/main': 100 });
  });

  it('negative or out-of-range traffic is clamped, with a reason (degraded)', () => {
    const neg = table([sdep('iris', { predictors: [pred('main'), pred('canary', { traffic: -5 })] })]);
    expect(percents(routed(neg, rest(`/seldon/ns/iris${PRED}`)).group)).toEqual({ 'ns/iris/main': 100, 'ns/iris/canary': 0 });
    expect(report(neg, 'ns/iris').state).toBe('degraded');
    expect(report(neg, 'ns/iris').reasons.join(' ')).toMatch(/canary.*-5/);
    const big = table([sdep('iris', { predictors: [pred('main'), pred('canary', { traffic: 150 })] })]);
    expect(percents(routed(big, rest(`/seldon/ns/iris${PRED}`)).group)).toEqual({ 'ns/iris/main': 0, 'ns/iris/canary': 100 });
    expect(report(big, 'ns/iris').state).toBe('degraded');
    expect(report(big, 'ns/iris').reasons.join(' ')).toContain('150');
  });

  it("the first predictor's traffic is ignored, so a bad value there is reported as ignored, not as clamped", () => {
    const t = table([sdep('income', { predictors: [pred('main', { traffic: 150 }), pred('canary', { traffic: 25 })] })]);
    expect(percents(routed(t, rest(`/seldon/ns/income${PRED}`)).group)).toEqual({ 'ns/income/main': 75, 'ns/income/canary': 25 });
    expect(report(t, 'ns/income').reasons).toEqual(['predictor "main": traffic 150 is outside 0..100, and is ignored anyway: the first predictor takes what the others leave']);
    const word = table([sdep('income', { predictors: [pred('main', { traffic: 'most' as unknown as number }), pred('canary', { traffic: 25 })] })]);
    expect(report(word, 'ns/income').reasons).toEqual(['predictor "main": traffic "most" is not a whole number, and is ignored anyway: the first predictor takes what the others leave']);
    const fine = table([sdep('income', { predictors: [pred('main', { traffic: 10 }), pred('canary', { traffic: 25 })] })]);
    expect(report(fine, 'ns/income')).toMatchObject({ state: 'accepted', reasons: [] });
  });

  it('spec.predictors of the wrong type is named as such, not as empty', () => {
    const notAList = { apiVersion: 'machinelearning.seldon.io/v1', kind: 'SeldonDeployment', metadata: { name: 'odd', namespace: 'ns' }, spec: { predictors: 'not a list' } };
    const aMap = { ...notAList, metadata: { name: 'map', namespace: 'ns' }, spec: { predictors: { main: {} } } };
    const none = { ...notAList, metadata: { name: 'none', namespace: 'ns' }, spec: {} };
    const empty = { ...notAList, metadata: { name: 'empty', namespace: 'ns' }, spec: { predictors: [] } };
    const t = table([notAList, aMap, none, empty] as unknown as SeldonDeployment[]);
    expect(report(t, 'ns/odd')).toMatchObject({ state: 'rejected', reasons: ['spec.predictors is a string "not a list", not a list: nothing to route'] });
    expect(report(t, 'ns/map')).toMatchObject({ state: 'rejected', reasons: ['spec.predictors is a map, not a list: nothing to route'] });
    expect(report(t, 'ns/none')).toMatchObject({ state: 'rejected', reasons: ['spec.predictors is missing: nothing to route'] });
    expect(report(t, 'ns/empty')).toMatchObject({ state: 'rejected', reasons: ['spec.predictors is empty: nothing to route'] });
  });

  it('a request for a rejected deployment gets a 404 that names it and says why (REST, its explainer, gRPC)', () => {
    const t = table([sdep('iris', { predictors: [pred('main'), pred('main', { traffic: 20 })] }), sdep('good')]);
    const why = 'deployment ns/iris is rejected: predictor name "main" is used twice';
    expect(refused(t, rest(`/seldon/ns/iris${PRED}`))).toMatchObject({ status: 404, reason: 'NO_ROUTE', info: `no route for /seldon/ns/iris${PRED}: ${why}` });
    expect(refused(t, rest('/seldon/ns/iris-explainer/main/api/v1.0/explain')).info).toBe(`no route for /seldon/ns/iris-explainer/main/api/v1.0/explain: ${why}`);
    expect(refused(t, grpc({ seldon: 'iris', namespace: 'ns' })).info).toBe(`no route for gRPC ${SELDON_PREDICT} with seldon="iris" namespace="ns": ${why}`);
    // Deployments that do not exist, or that route, say nothing more; a call without its namespace names none.
    expect(refused(t, rest(`/seldon/ns/nothing${PRED}`)).info).toBe(`no route for /seldon/ns/nothing${PRED}`);
    expect(refused(t, grpc({ seldon: 'iris' })).info).not.toContain('rejected');
    const single = table([sdep('iris', { predictors: [pred('main'), pred('main', { traffic: 20 })] })], { singleNamespace: true, namespace: 'ns' });
    expect(refused(single, rest(`/seldon/iris${PRED}`)).info).toBe(`no route for /seldon/iris${PRED}: ${why}`);
  });

  it('duplicate predictor names reject the SDep', () => {
    const t = table([sdep('iris', { predictors: [pred('main'), pred('main', { traffic: 20 })] }), sdep('good')]);
    expect(report(t, 'ns/iris').state).toBe('rejected');
    expect(report(t, 'ns/iris').reasons.join(' ')).toContain('"main"');
    expect(refused(t, rest(`/seldon/ns/iris${PRED}`)).status).toBe(404);
    expect(routed(t, rest(`/seldon/ns/good${PRED}`)).backend.id).toBe('ns/good/main');
  });
});

describe('13–16. split exactness over 10,000 requests (docs/routing.md#picking-a-member)', () => {
  const N = 10_000;
  const splits: Array<[string, number[]]> = [
    ['90/10', [90, 10]],
    ['75/25', [75, 25]],
    ['34/33/33', [34, 33, 33]],
    ['1/99', [1, 99]],
    ['100/0', [100, 0]],
    ['0/100', [0, 100]],
    ['50/0/50', [50, 0, 50]],
  ];
  /** Predictors p0..pn whose normalised shares are exactly `shares` (p0 weightless takes the rest). */
  function deployment(shares: number[]): SeldonDeployment {
    return sdep('iris', { predictors: shares.map((s, i) => pred(`p${i}`, i === 0 ? { traffic: 12345 } : { traffic: s })) });
  }
  const expected = (shares: number[]) => Object.fromEntries(shares.map((s, i) => [`ns/iris/p${i}`, s]));
  const pickers: Array<[string, () => Picker]> = [
    ['randomPicker(seededRandom)', () => seeded(20240601)],
    ['roundRobinPicker', () => roundRobinPicker(seededRandom(1))],
  ];

  describe.each(pickers)('%s', (_name, makePicker) => {
    it.each(splits)('%s via match, REST and gRPC', (_s, shares) => {
      const t = table([deployment(shares)]);
      for (const req of [rest(`/seldon/ns/iris${PRED}`), grpc({ seldon: 'iris', namespace: 'ns' })]) {
        const { hits } = tally(t, req, N, makePicker());
        expectShares(hits, N, expected(shares));
      }
    });

    it('the eligible hook removes a member and the others scale proportionally', () => {
      const t = table([deployment([50, 30, 20])]);
      const req = rest(`/seldon/ns/iris${PRED}`);
      const { hits } = tally(t, req, N, makePicker(), (b) => b.id !== 'ns/iris/p0');
      expectShares(hits, N, { 'ns/iris/p0': 0, 'ns/iris/p1': 60, 'ns/iris/p2': 40 });
      const only = tally(t, req, 1000, makePicker(), (b) => b.id === 'ns/iris/p2');
      expectShares(only.hits, 1000, { 'ns/iris/p2': 100 });
    });

    it('a draw at either end of [0, 1) never selects a 0 % member', () => {
      const t = table([deployment([0, 100, 0])]);
      for (const r of [0, 0.5, 0.9999999999]) {
        const d = routed(
          t,
          rest(`/seldon/ns/iris${PRED}`),
          randomPicker(() => r),
        );
        expect(d.backend.id).toBe('ns/iris/p1');
      }
      const t2 = table([deployment([100, 0])]);
      for (const r of [0, 0.9999999999])
        expect(
          routed(
            t2,
            rest(`/seldon/ns/iris${PRED}`),
            randomPicker(() => r),
          ).backend.id,
        ).toBe('ns/iris/p0');
    });

    it('a 0 % member takes the requests when it is the only ready one', () => {
      const t = table([deployment([100, 0])]);
      const { hits } = tally(t, rest(`/seldon/ns/iris${PRED}`), 1000, makePicker(), (b) => b.id === 'ns/iris/p1');
      expect(hits.get('ns/iris/p1')).toBe(1000);
    });

    it('none eligible → 503 NO_HEALTHY_UPSTREAM (REST and gRPC, single and several members)', () => {
      for (const t of [table([deployment([50, 50])]), table([sdep('iris')])]) {
        for (const req of [rest(`/seldon/ns/iris${PRED}`), grpc({ seldon: 'iris', namespace: 'ns' })]) {
          const d = refused(t, req, makePicker(), () => false);
          expect([d.status, d.reason]).toEqual([503, 'NO_HEALTHY_UPSTREAM']);
        }
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------
// 17. Shadows
// ---------------------------------------------------------------------------------------------

describe('17. shadow mirror percent (docs/routing.md#shadows)', () => {
  const N = 10_000;
  it.each([
    ['absent', undefined, 100],
    ['0', 0, 100],
    ['10', 10, 10],
    ['100', 100, 100],
  ])('traffic %s mirrors %i %%', (_n, traffic, percent) => {
    const t = table([sdep('iris', { predictors: [pred('main'), pred('audit', { shadow: true, ...(traffic !== undefined ? { traffic } : {}) })] })]);
    const req = rest(`/seldon/ns/iris${PRED}?q=1`);
    const d = routed(t, req);
    expect(d.group.mirrors.map((m) => [m.backend.id, m.percent])).toEqual([['ns/iris/audit', percent]]);
    expect(d.group.members.map((m) => [m.backend.id, m.percent])).toEqual([['ns/iris/main', 100]]);
    const { hits, mirrors } = tally(t, req, N, seeded(99));
    expect(hits.get('ns/iris/main')).toBe(N);
    const got = mirrors.get('ns/iris/audit') ?? 0;
    if (percent === 100) expect(got).toBe(N);
    else expect(Math.abs((100 * got) / N - percent)).toBeLessThanOrEqual(1.5);
    // gRPC is mirrored the same way, to the shadow's gRPC port.
    const g = routed(t, grpc({ seldon: 'iris', namespace: 'ns' }));
    expect(g.group.mirrors.map((m) => [m.backend.id, m.percent, m.backend.upstream.port])).toEqual([['ns/iris/audit', percent, 5001]]);
  });

  it('several shadows per group are mirrored independently', () => {
    const t = table([sdep('iris', { predictors: [pred('main'), pred('s1', { shadow: true, traffic: 50 }), pred('s2', { shadow: true })] })]);
    const { mirrors } = tally(t, rest(`/seldon/ns/iris${PRED}`), N, seeded(5));
    expect(mirrors.get('ns/iris/s2')).toBe(N);
    expect(Math.abs((100 * (mirrors.get('ns/iris/s1') ?? 0)) / N - 50)).toBeLessThanOrEqual(1.5);
  });

  it('a shadow-only group is not a route; matching continues to lower-precedence groups', () => {
    const t = table([
      sdep('iris'),
      sdep('iris-shadow-h', { spec: { 'seldon.io/ambassador-service-name': 'iris', 'seldon.io/ambassador-header': 'x-audit:1' }, predictors: [pred('main', { shadow: true })] }),
      sdep('lonely', { predictors: [pred('main', { shadow: true })] }),
    ]);
    const d = routed(t, rest(`/seldon/ns/iris${PRED}`, { 'x-audit': '1' }));
    expect(d.backend.id).toBe('ns/iris/main');
    expect(d.mirrors).toHaveLength(0);
    expect(refused(t, rest(`/seldon/ns/lonely${PRED}`)).status).toBe(404);
    expect(report(t, 'ns/lonely').state).toBe('degraded');
  });

  it('legacy ambassador-shadow: "false" is not a shadow, "true"/"True" is, a weird value is one with a warning', () => {
    const mk = (name: string, v: string) => sdep(name, { spec: { 'seldon.io/ambassador-service-name': 'iris', 'seldon.io/ambassador-shadow': v } });
    const t = table([sdep('iris'), mk('f1', 'false'), mk('f2', 'FALSE'), mk('t1', 'true'), mk('t2', 'True'), mk('w', 'yes please')]);
    const g = routed(t, rest(`/seldon/ns/iris${PRED}`)).group;
    expect(g.members.map((m) => m.backend.id).sort()).toEqual(['ns/f1/main', 'ns/f2/main', 'ns/iris/main']);
    expect(g.mirrors.map((m) => [m.backend.id, m.percent])).toEqual([
      ['ns/t1/main', 100],
      ['ns/t2/main', 100],
      ['ns/w/main', 100],
    ]);
    expect(report(t, 'ns/f1').state).toBe('accepted');
    expect(report(t, 'ns/t1').state).toBe('accepted');
    expect(report(t, 'ns/w').state).toBe('degraded');
    expect(report(t, 'ns/w').reasons.join(' ')).toContain('ambassador-shadow');
  });

  it('a legacy shadow SDep mirrors ambassador-weight percent', () => {
    const t = table([sdep('iris'), sdep('audit', { spec: { 'seldon.io/ambassador-service-name': 'iris', 'seldon.io/ambassador-shadow': 'true', 'seldon.io/ambassador-weight': '30' } })]);
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`)).group.mirrors.map((m) => [m.backend.id, m.percent])).toEqual([['ns/audit/main', 30]]);
  });
});

// ---------------------------------------------------------------------------------------------
// 20–22. Header matching and precedence
// ---------------------------------------------------------------------------------------------

describe('20. seldon.io/ambassador-header forms (docs/routing.md#header, docs/routing.md#header-and-regex-routes)', () => {
  const withHeader = (h: string) => table([sdep('iris'), sdep('variant', { spec: { 'seldon.io/ambassador-service-name': 'iris', 'seldon.io/ambassador-header': h } })]);
  const cases: Array<[string, Record<string, string | string[]>, boolean]> = [
    ['k:v', { k: 'v' }, true],
    ['k:v', { K: 'v' }, true],
    ['k:v', { k: 'V' }, false],
    ['k:v', { k: 'vv' }, false],
    ['k:v', {}, false],
    ['k: v', { k: 'v' }, true],
    [' K : v ', { k: 'v' }, true],
    ['k', { k: '' }, true],
    ['k', { k: 'anything' }, true],
    ['k', {}, false],
    ['k:', { k: 'x' }, true],
    ['a:1:b:2', { a: '1', b: '2' }, true],
    ['a:1:b:2', { a: '1' }, false],
    ['a:1:b:2', { a: '1', b: '3' }, false],
    ['a:1:b:', { a: '1', b: '' }, true],
    ['location: london', { location: 'london' }, true],
    ['k:v', { k: ['v', 'w'] }, false],
    ['k:v,w', { k: ['v', 'w'] }, true],
  ];
  it.each(cases)('%j with headers %j → variant %s', (h, headers, variant) => {
    const t = withHeader(h);
    expect(report(t, 'ns/variant').state).toBe('accepted');
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`, headers)).backend.id).toBe(variant ? 'ns/variant/main' : 'ns/iris/main');
    expect(routed(t, grpc({ seldon: 'iris', namespace: 'ns', ...headers })).backend.id).toBe(variant ? 'ns/variant/main' : 'ns/iris/main');
  });

  it.each(['a:b:c', 'a:1:b', ':v', 'a:1:a:2', 'a b:1', 'ä:1', 'a:1:b:2:c'])('%j rejects only that SDep', (h) => {
    const t = withHeader(h);
    expect(report(t, 'ns/variant').state).toBe('rejected');
    expect(report(t, 'ns/variant').reasons.join(' ')).toContain('ambassador-header');
    expect(report(t, 'ns/iris').state).toBe('accepted');
    expect(percents(routed(t, rest(`/seldon/ns/iris${PRED}`, { a: '1', b: '2', c: '3' })).group)).toEqual({ 'ns/iris/main': 100 });
  });

  it('a constraint on seldon or namespace is ignored on gRPC routes, with a warning', () => {
    const t = table([sdep('iris', { spec: { 'seldon.io/ambassador-header': 'namespace:zzz' } })]);
    expect(report(t, 'ns/iris').state).toBe('degraded');
    expect(routed(t, grpc({ seldon: 'iris', namespace: 'ns' })).backend.id).toBe('ns/iris/main');
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`, { namespace: 'zzz' })).backend.id).toBe('ns/iris/main');
    expect(refused(t, rest(`/seldon/ns/iris${PRED}`)).status).toBe(404);
  });
});

describe('21. seldon.io/ambassador-regex-header (docs/routing.md#regex-header)', () => {
  const withRegex = (r: string, extra: Record<string, string> = {}) =>
    table([sdep('iris'), sdep('variant', { spec: { 'seldon.io/ambassador-service-name': 'iris', 'seldon.io/ambassador-regex-header': r, ...extra } })]);
  it.each([
    ['london', true],
    ['londinium', true],
    ['lond', true],
    ['xlondon', false],
    ['London', false],
    ['lon', false],
    [undefined, false],
  ])('"location: lond.*" full-matches %j → %s', (value, variant) => {
    const t = withRegex('location: lond.*');
    expect(report(t, 'ns/variant').state).toBe('accepted');
    const headers: Record<string, string> = value === undefined ? {} : { location: value };
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`, headers)).backend.id).toBe(variant ? 'ns/variant/main' : 'ns/iris/main');
    expect(routed(t, grpc({ seldon: 'iris', namespace: 'ns', ...headers })).backend.id).toBe(variant ? 'ns/variant/main' : 'ns/iris/main');
  });

  it('the pattern is split at the first ":" and several lines are ANDed, with exact headers too', () => {
    const t = withRegex('x-time: [0-9]{2}:[0-9]{2}\ny: a|b', { 'seldon.io/ambassador-header': 'z:1' });
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`, { 'x-time': '12:30', y: 'b', z: '1' })).backend.id).toBe('ns/variant/main');
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`, { 'x-time': '12:30', y: 'b' })).backend.id).toBe('ns/iris/main');
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`, { 'x-time': '12:30', y: 'ab', z: '1' })).backend.id).toBe('ns/iris/main');
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`, { 'x-time': '1230', y: 'a', z: '1' })).backend.id).toBe('ns/iris/main');
  });

  it('the same header in ambassador-header and ambassador-regex-header: both constraints, ANDed (docs/routing.md#header-and-regex-routes)', () => {
    const t = withRegex('location: lond.*', { 'seldon.io/ambassador-header': 'location:london' });
    expect(report(t, 'ns/variant').state).toBe('accepted');
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`, { location: 'london' })).backend.id).toBe('ns/variant/main');
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`, { location: 'londinium' })).backend.id).toBe('ns/iris/main');
    expect(routed(t, grpc({ seldon: 'iris', namespace: 'ns', location: 'london' })).backend.id).toBe('ns/variant/main');
    // A contradictory pair is valid but never matches.
    const never = withRegex('location: paris', { 'seldon.io/ambassador-header': 'location:london' });
    expect(report(never, 'ns/variant').state).toBe('accepted');
    expect(routed(never, rest(`/seldon/ns/iris${PRED}`, { location: 'london' })).backend.id).toBe('ns/iris/main');
  });

  it('a pattern over --regex-max-size rejects only that SDep, naming its size; a larger limit takes it', () => {
    // Matching costs grow with the program: (?:a|aa){0,999}b took 385 ms against a 16 KB header.
    const t = withRegex('x: (?:a|aa){0,999}b');
    expect(report(t, 'ns/variant').state).toBe('rejected');
    expect(report(t, 'ns/variant').reasons.join(' ')).toContain('regex-header: regex "(?:a|aa){0,999}b" is too complex: its RE2 program size is 4998, over 200');
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`, { x: 'aab' })).backend.id).toBe('ns/iris/main');
    const lifted = table([sdep('iris'), sdep('variant', { spec: { 'seldon.io/ambassador-service-name': 'iris', 'seldon.io/ambassador-regex-header': 'x: (?:a|aa){0,999}b' } })], {
      regexMaxSize: 5000,
    });
    expect(report(lifted, 'ns/variant').state).toBe('accepted');
    expect(routed(lifted, rest(`/seldon/ns/iris${PRED}`, { x: 'aab' })).backend.id).toBe('ns/variant/main');
  });

  it('more than 32 regexes reject only that SDep (each process compiles them on every change)', () => {
    const lines = (n: number): string => Array.from({ length: n }, (_, i) => `x-${i}: v${i}`).join('\n');
    expect(report(withRegex(lines(32)), 'ns/variant').state).toBe('accepted');
    const t = withRegex(lines(10_000));
    expect(report(t, 'ns/variant').state).toBe('rejected');
    expect(report(t, 'ns/variant').reasons.join(' ')).toContain('regex "v32" is one too many: at most 32 regexes in one SeldonDeployment');
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`)).backend.id).toBe('ns/iris/main');
  });

  it.each(['x: (a)\\1', 'x: (?=a)a', 'x: (?!a).*', 'x: (?<=a)b', 'x: [', 'x:', ': abc', 'no-colon'])('%j rejects only that SDep', (r) => {
    const t = withRegex(r);
    expect(report(t, 'ns/variant').state).toBe('rejected');
    expect(report(t, 'ns/variant').reasons.join(' ')).toContain('regex-header');
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`, { x: 'aa' })).backend.id).toBe('ns/iris/main');
  });
});

describe('22. precedence (docs/routing.md#precedence-and-no-match)', () => {
  // Header weights: iris-h "x-variant:hello" = 9 + 5 = 14; iris-r "x-variant: .*" = 9 + 2 + 1 = 12.
  const deps = [
    sdep('iris'),
    sdep('iris-h', { spec: { 'seldon.io/ambassador-service-name': 'iris', 'seldon.io/ambassador-header': 'x-variant:hello' } }),
    sdep('iris-r', { spec: { 'seldon.io/ambassador-service-name': 'iris', 'seldon.io/ambassador-regex-header': 'x-variant: .*' } }),
    sdep('iris-long', {
      spec: { 'seldon.io/ambassador-config': 'apiVersion: getambassador.io/v2\nkind: Mapping\nname: long\nprefix: /seldon/ns/iris/api/v1.0/\nservice: iris-long-main:8000\nrewrite: /api/v1.0/' },
    }),
  ];
  it('header group beats plain on the same prefix; a longer prefix beats both; independent of order', () => {
    for (const order of [deps, [...deps].reverse()]) {
      const t = table(order);
      expect(routed(t, rest('/seldon/ns/iris/api/v0.1/predictions')).backend.id).toBe('ns/iris/main');
      // Both header groups match "hello"; the heavier exact one wins.
      expect(routed(t, rest('/seldon/ns/iris/api/v0.1/predictions', { 'x-variant': 'hello' })).backend.id).toBe('ns/iris-h/main');
      expect(routed(t, rest('/seldon/ns/iris/api/v0.1/predictions', { 'x-variant': 'other' })).backend.id).toBe('ns/iris-r/main');
      const long = routed(t, rest('/seldon/ns/iris/api/v1.0/predictions?z', { 'x-variant': 'hello' }));
      expect(long.backend.id).toBe('ns/iris-long/long');
      expect(long.upstreamPath).toBe('/api/v1.0/predictions?z');
    }
  });

  it('the listing is ordered by precedence', () => {
    const t = table(deps);
    const rest1 = t.restByPrefix.get('/seldon/ns/iris/')!;
    expect(rest1.map((g) => g.members.map((m) => m.backend.id).join())).toEqual(['ns/iris-h/main', 'ns/iris-r/main', 'ns/iris/main']);
  });

  it('a heavier regex constraint outranks a lighter exact one (docs/routing.md#precedence-and-no-match, key 2)', () => {
    // "x-variant:h" = 10 < "x-variant: .*" = 12: the regex group is tried first.
    const t = table([
      sdep('iris-h', { spec: { 'seldon.io/ambassador-service-name': 'iris', 'seldon.io/ambassador-header': 'x-variant:h' } }),
      sdep('iris-r', { spec: { 'seldon.io/ambassador-service-name': 'iris', 'seldon.io/ambassador-regex-header': 'x-variant: .*' } }),
    ]);
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`, { 'x-variant': 'h' })).backend.id).toBe('ns/iris-r/main');
  });

  it('more constraints outrank fewer at equal header weight (docs/routing.md#precedence-and-no-match, key 3)', () => {
    // "ab:cd" = 4 vs "a:b:c:d" = 2 + 2 = 4: the two-constraint group is tried first.
    const t = table([
      sdep('one', { spec: { 'seldon.io/ambassador-service-name': 'iris', 'seldon.io/ambassador-header': 'ab:cd' } }),
      sdep('two', { spec: { 'seldon.io/ambassador-service-name': 'iris', 'seldon.io/ambassador-header': 'a:b:c:d' } }),
    ]);
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`, { ab: 'cd', a: 'b', c: 'd' })).backend.id).toBe('ns/two/main');
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`, { ab: 'cd', a: 'b' })).backend.id).toBe('ns/one/main');
  });
});

// ---------------------------------------------------------------------------------------------
// 23. No match
// ---------------------------------------------------------------------------------------------

describe('23. no match', () => {
  const t = table([sdep('iris')]);
  it('REST: 404 NO_ROUTE naming the path', () => {
    const d = refused(t, rest('/seldon/ns/tulip/api/v1.0/predictions?x=1'));
    expect(d).toEqual({ ok: false, status: 404, reason: 'NO_ROUTE', info: 'no route for /seldon/ns/tulip/api/v1.0/predictions' });
  });
  it('gRPC: 404 NO_ROUTE with info', () => {
    const d = refused(t, grpc({ seldon: 'tulip', namespace: 'ns' }));
    expect([d.status, d.reason]).toEqual([404, 'NO_ROUTE']);
    expect(d.info).toContain('tulip');
  });
  it('an empty table routes nothing', () => {
    expect(refused(table([]), rest(`/seldon/ns/iris${PRED}`)).reason).toBe('NO_ROUTE');
    expect(refused(table([]), grpc({ seldon: 'iris' })).reason).toBe('NO_ROUTE');
  });
});

// ---------------------------------------------------------------------------------------------
// 24. ambassador-id
// ---------------------------------------------------------------------------------------------

describe('24. ambassador-id scoping (docs/routing.md#ambassador-id)', () => {
  const deps = [
    sdep('untagged'),
    sdep('empty', { spec: { 'seldon.io/ambassador-id': '' } }),
    sdep('blue', { spec: { 'seldon.io/ambassador-id': 'blue' } }),
    sdep('metablue', { meta: { 'seldon.io/ambassador-id': 'blue' } }),
    sdep('list', { spec: { 'seldon.io/ambassador-id': 'blue,default' } }),
  ];
  const served = (t: RouteTable) => ['untagged', 'empty', 'blue', 'metablue', 'list'].filter((n) => route(t, rest(`/seldon/ns/${n}${PRED}`)).ok);

  it('untagged SDeps only by "default", tagged ones only by their id; the sets are disjoint', () => {
    const dflt = table(deps);
    const blue = table(deps, { ambassadorId: 'blue' });
    expect(served(dflt)).toEqual(['untagged', 'empty']);
    expect(served(blue)).toEqual(['blue', 'metablue']);
    expect(served(table(deps, { ambassadorId: 'blue,default' }))).toEqual(['list']);
    // gRPC follows.
    expect(route(dflt, grpc({ seldon: 'blue', namespace: 'ns' })).ok).toBe(false);
    expect(route(blue, grpc({ seldon: 'blue', namespace: 'ns' })).ok).toBe(true);
  });

  it('skipped SDeps are listed with a reason', () => {
    const t = table(deps);
    const r = report(t, 'ns/blue');
    expect(r.state).toBe('skipped');
    expect(r.ambassadorId).toBe('blue');
    expect(r.reasons).toEqual(['ambassador-id "blue" ≠ gateway id "default"']);
    const json = tableJson(t).deployments.find((d) => d.name === 'blue')!;
    expect(json.state).toBe('skipped');
    expect(json.routes).toEqual([]);
    expect(report(table(deps, { ambassadorId: 'blue' }), 'ns/untagged').reasons).toEqual(['ambassador-id "default" ≠ gateway id "blue"']);
  });
});

// ---------------------------------------------------------------------------------------------
// 25–28, 30. Timeouts, retries, breakers
// ---------------------------------------------------------------------------------------------

describe('25. timeouts (docs/routing.md#timeout-annotations, docs/routing.md#timeouts)', () => {
  type Expect = { rest: number; restIdle: number; grpc: number; grpcIdle: number; state: 'accepted' | 'degraded' };
  const cases: Array<[string, Record<string, string>, Expect]> = [
    ['defaults', {}, { rest: 3000, restIdle: 300000, grpc: 3000, grpcIdle: 300000, state: 'accepted' }],
    ['rest-timeout only affects REST', { 'seldon.io/rest-timeout': '100000' }, { rest: 100000, restIdle: 300000, grpc: 3000, grpcIdle: 300000, state: 'accepted' }],
    ['grpc-timeout only affects gRPC', { 'seldon.io/grpc-timeout': '5000' }, { rest: 3000, restIdle: 300000, grpc: 5000, grpcIdle: 300000, state: 'accepted' }],
    ['0 = none', { 'seldon.io/rest-timeout': '0', 'seldon.io/grpc-timeout': '0' }, { rest: 0, restIdle: 300000, grpc: 0, grpcIdle: 300000, state: 'accepted' }],
    ['300000 keeps the idle default', { 'seldon.io/rest-timeout': '300000' }, { rest: 300000, restIdle: 300000, grpc: 3000, grpcIdle: 300000, state: 'accepted' }],
    ['> 300000 sets idle', { 'seldon.io/rest-timeout': '400000', 'seldon.io/grpc-timeout': '300001' }, { rest: 400000, restIdle: 400000, grpc: 300001, grpcIdle: 300001, state: 'accepted' }],
    [
      'legacy read-timeouts when the new keys are absent',
      { 'seldon.io/rest-read-timeout': '7000', 'seldon.io/grpc-read-timeout': '8000' },
      { rest: 7000, restIdle: 300000, grpc: 8000, grpcIdle: 300000, state: 'accepted' },
    ],
    [
      'legacy read-timeouts ignored when the new keys are present',
      { 'seldon.io/rest-read-timeout': '7000', 'seldon.io/rest-timeout': '6000', 'seldon.io/grpc-read-timeout': '8000', 'seldon.io/grpc-timeout': '9000' },
      { rest: 6000, restIdle: 300000, grpc: 9000, grpcIdle: 300000, state: 'accepted' },
    ],
    ['bad rest-timeout', { 'seldon.io/rest-timeout': 'abc' }, { rest: 3000, restIdle: 300000, grpc: 3000, grpcIdle: 300000, state: 'degraded' }],
    ['negative grpc-timeout', { 'seldon.io/grpc-timeout': '-1' }, { rest: 3000, restIdle: 300000, grpc: 3000, grpcIdle: 300000, state: 'degraded' }],
    ['fractional', { 'seldon.io/rest-timeout': '1.5' }, { rest: 3000, restIdle: 300000, grpc: 3000, grpcIdle: 300000, state: 'degraded' }],
    ['> int32', { 'seldon.io/rest-timeout': '2147483648' }, { rest: 3000, restIdle: 300000, grpc: 3000, grpcIdle: 300000, state: 'degraded' }],
    ['bad legacy', { 'seldon.io/rest-read-timeout': '5s' }, { rest: 3000, restIdle: 300000, grpc: 3000, grpcIdle: 300000, state: 'degraded' }],
  ];
  it.each(cases)('%s', (_n, ann, e) => {
    const t = table([sdep('iris', { spec: ann, predictors: [pred('main', { explainer: { type: 'AnchorTabular' } })] })]);
    const r = routed(t, rest(`/seldon/ns/iris${PRED}`)).backend;
    const g = routed(t, grpc({ seldon: 'iris', namespace: 'ns' })).backend;
    const x = routed(t, rest('/seldon/ns/iris-explainer/main/api/v1.0/explain')).backend;
    expect({ rest: r.timeoutMs, restIdle: r.idleTimeoutMs, grpc: g.timeoutMs, grpcIdle: g.idleTimeoutMs, state: report(t, 'ns/iris').state }).toEqual(e);
    expect([x.timeoutMs, x.idleTimeoutMs]).toEqual([e.rest, e.restIdle]);
    if (e.state === 'degraded') expect(report(t, 'ns/iris').reasons.join(' ')).toMatch(/timeout/);
  });

  it('the idle rule is "> 300000", whatever the configured idle default', () => {
    const idle = (v: string) => routed(table([sdep('iris', { spec: { 'seldon.io/rest-timeout': v } })], { defaultIdleTimeoutMs: 60_000 }), rest(`/seldon/ns/iris${PRED}`)).backend.idleTimeoutMs;
    expect([idle('200000'), idle('300000'), idle('300001'), idle('0')]).toEqual([60_000, 60_000, 300_001, 60_000]);
  });

  it('the gateway defaults apply', () => {
    const t = table([sdep('iris')], { defaultTimeoutMs: 1234, defaultIdleTimeoutMs: 5678 });
    const r = routed(t, rest(`/seldon/ns/iris${PRED}`)).backend;
    expect([r.timeoutMs, r.idleTimeoutMs]).toEqual([1234, 5678]);
  });
});

describe('27. seldon.io/ambassador-retries', () => {
  it.each([
    ['2', { retryOn: 'gateway-error', numRetries: 2, perTryTimeoutMs: 0 }, 'accepted'],
    [' 3 ', { retryOn: 'gateway-error', numRetries: 3, perTryTimeoutMs: 0 }, 'accepted'],
    ['0', null, 'accepted'],
    ['x', null, 'degraded'],
    ['-2', null, 'degraded'],
  ] as const)('%j → %j', (v, retry, state) => {
    const t = table([sdep('iris', { spec: { 'seldon.io/ambassador-retries': v } })]);
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`)).backend.retry).toEqual(retry);
    expect(routed(t, grpc({ seldon: 'iris', namespace: 'ns' })).backend.retry).toEqual(retry);
    expect(report(t, 'ns/iris').state).toBe(state);
  });
  it('absent → no retries', () => {
    expect(routed(table([sdep('iris')]), rest(`/seldon/ns/iris${PRED}`)).backend.retry).toBeNull();
  });
});

describe('28/30. circuit breaker annotations', () => {
  const key = (s: string) => `seldon.io/ambassador-circuit-breakers-${s}`;
  it('values set the limits on REST and gRPC members', () => {
    const t = table([sdep('iris', { spec: { [key('max-connections')]: '1', [key('max-pending-requests')]: '1', [key('max-requests')]: '5', [key('max-retries')]: '2' } })]);
    const want = { maxConnections: 1, maxPendingRequests: 1, maxRequests: 5, maxRetries: 2 };
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`)).backend.breaker).toEqual(want);
    expect(routed(t, grpc({ seldon: 'iris', namespace: 'ns' })).backend.breaker).toEqual(want);
    expect(report(t, 'ns/iris').state).toBe('accepted');
  });
  it('0 = unset (the default), without a warning', () => {
    const t = table([sdep('iris', { spec: { [key('max-connections')]: '0', [key('max-retries')]: '0' } })]);
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`)).backend.breaker).toEqual(DEFAULT_BREAKER);
    expect(report(t, 'ns/iris').state).toBe('accepted');
  });
  it('a bad value: that field default, degraded; the others kept', () => {
    const t = table([sdep('iris', { spec: { [key('max-connections')]: 'many', [key('max-requests')]: '7' } })]);
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`)).backend.breaker).toEqual({ ...DEFAULT_BREAKER, maxRequests: 7 });
    expect(report(t, 'ns/iris').state).toBe('degraded');
    expect(report(t, 'ns/iris').reasons.join(' ')).toContain('max-connections');
  });
});

// ---------------------------------------------------------------------------------------------
// 29. Custom ambassador-config
// ---------------------------------------------------------------------------------------------

describe('29. seldon.io/ambassador-config (docs/routing.md#custom-ambassador-config)', () => {
  // Ambassador's global behaviour (customConfigScope "cluster"); the default "namespace" scope is in "tenant isolation" below.
  const table = (sdeps: SeldonDeployment[], o: Partial<CompileOptions> = {}): RouteTable => buildTable(sdeps, opts({ customConfigScope: 'cluster', ...o }));
  const custom = (name: string, text: string, init: SdepInit = {}) => sdep(name, { ...init, spec: { ...(init.spec ?? {}), 'seldon.io/ambassador-config': text } });
  const m = (body: string) => `apiVersion: ambassador/v1\nkind: Mapping\n${body}`;

  it('replaces all generated routes, once per SDep', () => {
    const t = table([
      custom('iris', m('name: only\nprefix: /mycompany/ml/\nservice: production-model-example.seldon:8000\ntimeout_ms: 3000'), {
        predictors: [pred('main', { explainer: { type: 'AnchorTabular' } }), pred('canary', { traffic: 10 })],
      }),
    ]);
    expect(refused(t, rest(`/seldon/ns/iris${PRED}`)).status).toBe(404);
    expect(refused(t, rest('/seldon/ns/iris-explainer/main/api/v1.0/explain')).status).toBe(404);
    expect(refused(t, grpc({ seldon: 'iris', namespace: 'ns' })).status).toBe(404);
    const d = routed(t, rest(`/mycompany/ml${PRED}?a=1`));
    expect(d.backend.id).toBe('ns/iris/only');
    expect(upstreamOf(d)).toBe('production-model-example.seldon:8000');
    expect(d.backend.upstream.service).toEqual({ name: 'production-model-example', namespace: 'seldon' });
    expect(d.upstreamPath).toBe(`${PRED}?a=1`);
    expect(t.groups).toHaveLength(1);
    expect(report(t, 'ns/iris').state).toBe('accepted');
  });

  it('JSON works too', () => {
    const t = table([custom('iris', JSON.stringify({ apiVersion: 'getambassador.io/v2', kind: 'Mapping', name: 'j', prefix: '/j/', service: 'svc:9000' }))]);
    expect(upstreamOf(routed(t, rest('/j/x')))).toBe('svc.ns:9000');
  });

  it.each([
    ['svc', 'svc.ns:80', false, { name: 'svc', namespace: 'ns' }],
    ['svc:8000', 'svc.ns:8000', false, { name: 'svc', namespace: 'ns' }],
    ['svc.other:9000', 'svc.other:9000', false, { name: 'svc', namespace: 'other' }],
    ['http://svc:8080', 'svc.ns:8080', false, { name: 'svc', namespace: 'ns' }],
    ['https://svc', 'svc.ns:443', true, { name: 'svc', namespace: 'ns' }],
    ['https://svc.other:8443', 'svc.other:8443', true, { name: 'svc', namespace: 'other' }],
    ['svc.other.svc.cluster.local:8000', 'svc.other.svc.cluster.local:8000', false, undefined],
  ])('service %j → %s (tls %s)', (service, upstream, tls, svc) => {
    const t = table([custom('iris', m(`name: s\nprefix: /s/\nservice: ${service}`))]);
    const d = routed(t, rest('/s/x'));
    expect(upstreamOf(d)).toBe(upstream);
    expect(d.backend.upstream.tls).toBe(tls);
    expect(d.backend.upstream.service).toEqual(svc);
  });

  it('prefix, prefix_regex and rewrite', () => {
    const t = table([
      custom(
        'iris',
        customConfig(
          m('name: plain\nprefix: /p/\nservice: a:1'),
          m('name: rw\nprefix: /rw/\nrewrite: /v2/\nservice: a:1'),
          m('name: norw\nprefix: /norw/\nrewrite: ""\nservice: a:1'),
          m('name: rx\nprefix: "/rx/[a-z]+/predict"\nprefix_regex: true\nservice: a:1'),
          m('name: rxrw\nprefix: "/rxrw/.*"\nprefix_regex: true\nrewrite: /x/\nservice: a:1'),
          m('name: rxnone\nprefix: "/rxnone/.*"\nprefix_regex: true\nrewrite: ""\nservice: a:1'),
        ),
      ),
    ]);
    expect(routed(t, rest('/p/a/b?q')).upstreamPath).toBe('/a/b?q');
    expect(routed(t, rest('/rw/a?q')).upstreamPath).toBe('/v2/a?q');
    expect(routed(t, rest('/norw/a?q')).upstreamPath).toBe('/norw/a?q');
    // Emissary's default rewrite `/` on a regex Mapping: Envoy's prefix_rewrite replaces the whole matched path.
    const rx = routed(t, rest('/rx/abc/predict?q=1'));
    expect([rx.backend.id, rx.upstreamPath]).toEqual(['ns/iris/rx', '/?q=1']);
    expect(refused(t, rest('/rx/abc/predict/more')).status).toBe(404);
    expect(refused(t, rest('/rx/ABC/predict')).status).toBe(404);
    // An explicit rewrite on a regex Mapping is honoured; "" forwards the path as it came.
    expect(routed(t, rest('/rxrw/a/b?z')).upstreamPath).toBe('/x/?z');
    expect(routed(t, rest('/rxnone/a/b?z')).upstreamPath).toBe('/rxnone/a/b?z');
    expect(report(t, 'ns/iris').state).toBe('accepted');
  });

  it('a prefix without a trailing slash matches by bytes', () => {
    const t = table([custom('iris', m('name: odd\nprefix: /odd\nservice: a:1')), sdep('x')]);
    expect(routed(t, rest('/oddity?q')).upstreamPath).toBe('/ity?q');
    expect(routed(t, rest('/odd/x')).upstreamPath).toBe('//x');
    expect(routed(t, rest(`/seldon/ns/x${PRED}`)).backend.id).toBe('ns/x/main');
  });

  it('grpc: true makes a gRPC route', () => {
    const t = table([custom('iris', m('name: g\nprefix: /seldon.protos.Seldon/\nrewrite: /seldon.protos.Seldon/\nservice: g-svc:5001\ngrpc: true'))]);
    const d = routed(t, grpc({}, SELDON_PREDICT));
    expect([d.backend.id, d.upstreamPath, upstreamOf(d)]).toEqual(['ns/iris/g', SELDON_PREDICT, 'g-svc.ns:5001']);
    expect(refused(t, rest(SELDON_PREDICT)).status).toBe(404);
  });

  it('timeout_ms and idle_timeout_ms; a bad value drops the Mapping (Emissary refuses it too)', () => {
    const t = table([
      custom('iris', customConfig(m('name: a\nprefix: /a/\nservice: s\ntimeout_ms: 10000\nidle_timeout_ms: 20000'), m('name: b\nprefix: /b/\nservice: s\ntimeout_ms: 0'))),
      custom('bad', m('name: c\nprefix: /c/\nservice: s\ntimeout_ms: soon')),
    ]);
    expect([routed(t, rest('/a/')).backend.timeoutMs, routed(t, rest('/a/')).backend.idleTimeoutMs]).toEqual([10000, 20000]);
    expect([routed(t, rest('/b/')).backend.timeoutMs, routed(t, rest('/b/')).backend.idleTimeoutMs]).toEqual([0, 300000]);
    expect(refused(t, rest('/c/')).status).toBe(404);
    expect(report(t, 'ns/bad').state).toBe('rejected');
    expect(report(t, 'ns/bad').reasons.join('\n')).toMatch(/timeout_ms "soon" is not a whole number/);
  });

  it('past 32 regexes in one SDep, each further Mapping with one is dropped, compiled or not', () => {
    const many = Array.from({ length: 40 }, (_, i) => m(`name: r${i}\nprefix: /r${i}/\nservice: s${i}\nregex_headers:\n  x-re: "(?:a|aa){0,999}b"`));
    const t = table([custom('iris', customConfig(m('name: ok\nprefix: /ok/\nservice: ok\nregex_headers:\n  x-re: "v[0-9]+"'), ...many))]);
    expect(report(t, 'ns/iris').state).toBe('degraded');
    const reasons = report(t, 'ns/iris').reasons;
    expect(reasons.filter((r) => r.includes('is too complex'))).toHaveLength(31);
    expect(reasons.filter((r) => r.includes('one too many: at most 32 regexes'))).toHaveLength(9);
    expect(routed(t, rest('/ok/', { 'x-re': 'v1' })).backend.id).toBe('ns/iris/ok');
  });

  it('a regex_headers or prefix_regex pattern over --regex-max-size drops its Mapping only', () => {
    const t = table([
      custom(
        'iris',
        customConfig(
          m('name: ok\nprefix: /h/\nservice: ok'),
          m('name: hbomb\nprefix: /h/\nservice: hbomb\nregex_headers:\n  x-re: "(?:a|aa){0,999}b"'),
          m('name: pbomb\nprefix: "/p/(?:a|aa){0,999}b"\nprefix_regex: true\nservice: pbomb'),
        ),
      ),
    ]);
    expect(report(t, 'ns/iris').state).toBe('degraded');
    const reasons = report(t, 'ns/iris').reasons.join(' ');
    expect(reasons).toMatch(/"hbomb" dropped: regex_headers\.x-re: regex .* is too complex: its RE2 program size is 4998, over 200/);
    expect(reasons).toMatch(/"pbomb" dropped: prefix: regex .* is too complex: its RE2 program size is 5001, over 200/);
    expect(routed(t, rest('/h/', { 'x-re': 'aab' })).backend.id).toBe('ns/iris/ok');
    expect(refused(t, rest('/p/aab')).status).toBe(404);
  });

  it('headers (exact and presence) and regex_headers', () => {
    const t = table([
      custom(
        'iris',
        customConfig(m('name: plain\nprefix: /h/\nservice: plain'), m('name: hdr\nprefix: /h/\nservice: hdr\nheaders:\n  X-Exact: yes\n  x-present: true\nregex_headers:\n  x-re: "v[0-9]+"')),
      ),
    ]);
    expect(routed(t, rest('/h/', { 'x-exact': 'yes', 'x-present': '', 'x-re': 'v12' })).backend.id).toBe('ns/iris/hdr');
    expect(routed(t, rest('/h/', { 'x-exact': 'yes', 'x-present': '', 'x-re': 'v12x' })).backend.id).toBe('ns/iris/plain');
    expect(routed(t, rest('/h/', { 'x-exact': 'yes', 'x-re': 'v1' })).backend.id).toBe('ns/iris/plain');
    expect(routed(t, rest('/h/', { 'x-exact': 'Yes', 'x-present': '1', 'x-re': 'v1' })).backend.id).toBe('ns/iris/plain');
  });

  it('weight: explicit in the group; Mappings can join a generated group', () => {
    const t = table([
      sdep('iris'),
      custom('iris-custom', customConfig(m('name: c1\nprefix: /seldon/ns/iris/\nservice: c1\nweight: 10'), m('name: c2\nprefix: /seldon/ns/iris/\nservice: c2\nweight: 15'))),
    ]);
    expect(percents(routed(t, rest(`/seldon/ns/iris${PRED}`)).group)).toEqual({ 'ns/iris/main': 75, 'ns/iris-custom/c1': 10, 'ns/iris-custom/c2': 15 });
    const { hits } = tally(t, rest(`/seldon/ns/iris${PRED}`), 10_000, seeded(11));
    expectShares(hits, 10_000, { 'ns/iris/main': 75, 'ns/iris-custom/c1': 10, 'ns/iris-custom/c2': 15 });
    const w = table([custom('iris', customConfig(m('name: a\nprefix: /w/\nservice: a'), m('name: b\nprefix: /w/\nservice: b\nweight: 30')))]);
    expect(percents(routed(w, rest('/w/')).group)).toEqual({ 'ns/iris/a': 70, 'ns/iris/b': 30 });
  });

  it('shadow: a mirror of weight percent (absent = 100)', () => {
    const t = table([
      custom('iris', customConfig(m('name: main\nprefix: /s/\nservice: a'), m('name: sh\nprefix: /s/\nservice: b\nshadow: true'), m('name: sh10\nprefix: /s/\nservice: c\nshadow: true\nweight: 10'))),
    ]);
    const g = routed(t, rest('/s/')).group;
    expect(g.members.map((x) => x.backend.id)).toEqual(['ns/iris/main']);
    expect(g.mirrors.map((x) => [x.backend.id, x.percent])).toEqual([
      ['ns/iris/sh', 100],
      ['ns/iris/sh10', 10],
    ]);
  });

  it("ambassador_id: string or list; absent, the default gateway's whatever the SDep id", () => {
    const text = customConfig(
      m('name: blueonly\nprefix: /blue/\nservice: a\nambassador_id: blue'),
      m('name: both\nprefix: /both/\nservice: a\nambassador_id: [blue, default]'),
      m('name: inherit\nprefix: /inherit/\nservice: a'),
    );
    const dflt = table([custom('iris', text)]);
    expect(['/blue/', '/both/', '/inherit/'].map((p) => route(dflt, rest(p)).ok)).toEqual([false, true, true]);
    const blue = table([custom('iris', text)], { ambassadorId: 'blue' });
    expect(['/blue/', '/both/', '/inherit/'].map((p) => route(blue, rest(p)).ok)).toEqual([true, true, false]);
    // An SDep tagged "blue" with a Mapping for "default" is served by the default gateway.
    const tagged = table([custom('iris', m('name: d\nprefix: /d/\nservice: a\nambassador_id: default'), { spec: { 'seldon.io/ambassador-id': 'blue' } })]);
    expect(route(tagged, rest('/d/')).ok).toBe(true);
    // One without an id is the default gateway's, whatever its SDep's id (Seldon's operator copies custom config as written).
    const none = table([custom('iris', m('name: d\nprefix: /d/\nservice: a'), { spec: { 'seldon.io/ambassador-id': 'blue' } })]);
    expect(route(none, rest('/d/')).ok).toBe(true);
    const noneOnBlue = table([custom('iris', m('name: d\nprefix: /d/\nservice: a'), { spec: { 'seldon.io/ambassador-id': 'blue' } })], { ambassadorId: 'blue' });
    expect(report(noneOnBlue, 'ns/iris').state).toBe('skipped');
    expect(route(noneOnBlue, rest('/d/')).ok).toBe(false);
  });

  it('retry_policy; an invalid one drops its Mapping (Emissary invalidates it too)', () => {
    const t = table([
      custom(
        'iris',
        customConfig(
          m('name: a\nprefix: /a/\nservice: a\nretry_policy:\n  retry_on: 5xx\n  num_retries: 3\n  per_try_timeout: 500ms'),
          m('name: b\nprefix: /b/\nservice: a\nretry_policy:\n  retry_on: gateway-error'),
        ),
      ),
      custom('bad', m('name: c\nprefix: /c/\nservice: a\nretry_policy:\n  retry_on: sometimes')),
    ]);
    expect(routed(t, rest('/a/')).backend.retry).toEqual({ retryOn: '5xx', numRetries: 3, perTryTimeoutMs: 500 });
    expect(routed(t, rest('/b/')).backend.retry).toEqual({ retryOn: 'gateway-error', numRetries: 1, perTryTimeoutMs: 0 });
    expect(refused(t, rest('/c/')).status).toBe(404);
    expect(report(t, 'ns/bad').state).toBe('rejected');
  });

  it('circuit_breakers: the priority-default entry is used', () => {
    const t = table([
      custom(
        'iris',
        customConfig(
          m('name: a\nprefix: /a/\nservice: a\ncircuit_breakers:\n- priority: high\n  max_connections: 5\n- max_connections: 7\n  max_pending_requests: 2'),
          m('name: b\nprefix: /b/\nservice: a\ncircuit_breakers:\n- priority: default\n  max_requests: 9'),
        ),
      ),
    ]);
    expect(routed(t, rest('/a/')).backend.breaker).toEqual({ ...DEFAULT_BREAKER, maxConnections: 7, maxPendingRequests: 2 });
    expect(routed(t, rest('/b/')).backend.breaker).toEqual({ ...DEFAULT_BREAKER, maxRequests: 9 });
  });

  it('host: the Host exactly as Envoy matches :authority (case and port as sent); outranks the plain group; a wildcard drops the Mapping', () => {
    const t = table([
      custom(
        'iris',
        customConfig(
          m('name: plain\nprefix: /h/\nservice: plain'),
          m('name: api\nprefix: /h/\nservice: api\nhost: API.example.com'),
          m('name: port\nprefix: /h/\nservice: port\nhost: api.example.com:8443'),
          m('name: wild\nprefix: /w/\nservice: w\nhost: "*.example.com"'),
        ),
      ),
    ]);
    expect(routed(t, rest('/h/', {}, 'API.example.com')).backend.id).toBe('ns/iris/api');
    expect(routed(t, rest('/h/', {}, 'api.example.com:8443')).backend.id).toBe('ns/iris/port');
    // Envoy's header matcher on :authority compares case: another case is another Host.
    for (const host of ['api.example.com', 'Api.Example.Com', 'API.example.com:8443', 'other.example.com', 'xapi.example.com:443', 'api.example.com:443'])
      expect(routed(t, rest('/h/', {}, host)).backend.id).toBe('ns/iris/plain');
    expect(refused(t, rest('/w/', {}, 'a.example.com')).status).toBe(404);
    expect(report(t, 'ns/iris').state).toBe('degraded');
  });

  it('harmless keys warn once per key per SDep; a key not honoured drops its Mapping; apiVersion, kind and namespace raise nothing', () => {
    const t = table([
      custom(
        'iris',
        customConfig(
          m('name: a\nprefix: /a/\nservice: a\nstats_name: x\ndocs: {ignored: true}'),
          m('name: b\nprefix: /b/\nservice: a\nstats_name: y\nnamespace: ns'),
          m('name: c\nprefix: /c/\nservice: a\nlabels: {ambassador: [{x: y}]}\nsome_future_key: 1'),
        ),
      ),
      custom('clean', m('name: c\nprefix: /c/\nservice: a\nnamespace: ns')),
    ]);
    const reasons = report(t, 'ns/iris').reasons;
    expect(report(t, 'ns/iris').state).toBe('degraded');
    expect(reasons.filter((r) => r.includes('"stats_name"'))).toHaveLength(1);
    expect(reasons.filter((r) => r.includes('"docs"'))).toHaveLength(1);
    expect(reasons.filter((r) => r.includes('Mapping "c" dropped') && r.includes('"labels"') && r.includes('"some_future_key"'))).toHaveLength(1);
    expect(reasons).toHaveLength(3);
    expect(routed(t, rest('/a/')).backend.id).toBe('ns/iris/a');
    expect(routed(t, rest('/c/')).backend.id).toBe('ns/clean/c');
    expect(report(t, 'ns/clean').state).toBe('accepted');
  });

  it.each([
    ['unparsable YAML', 'apiVersion: getambassador.io/v2\nkind: Mapping\nprefix: [oops\nservice: a'],
    ['no valid Mapping', m('name: a\nprefix: no-slash\nservice: a')],
    ['no Mapping at all', 'apiVersion: ambassador/v1\nkind: TLSContext\nname: t'],
    ['a scalar', 'just text'],
  ])('%s → rejected, others unaffected', (_n, text) => {
    const t = table([custom('iris', text), sdep('good')]);
    expect(report(t, 'ns/iris').state).toBe('rejected');
    expect(t.groups.some((g) => g.members.some((x) => x.backend.origin.deployment === 'iris'))).toBe(false);
    expect(routed(t, rest(`/seldon/ns/good${PRED}`)).backend.id).toBe('ns/good/main');
  });

  it('one bad Mapping is dropped and the SDep degraded; other kinds are ignored with a warning; duplicate names drop the later', () => {
    const t = table([
      custom(
        'iris',
        customConfig(m('name: good\nprefix: /good/\nservice: a'), m('name: noservice\nprefix: /bad/'), 'apiVersion: ambassador/v1\nkind: Module\nname: m', m('name: good\nprefix: /dup/\nservice: a')),
      ),
    ]);
    expect(routed(t, rest('/good/')).backend.id).toBe('ns/iris/good');
    expect(refused(t, rest('/bad/')).status).toBe(404);
    expect(refused(t, rest('/dup/')).status).toBe(404);
    const r = report(t, 'ns/iris');
    expect(r.state).toBe('degraded');
    expect(r.reasons.join('\n')).toMatch(/noservice/);
    expect(r.reasons.join('\n')).toMatch(/Module/);
    expect(r.reasons.join('\n')).toMatch(/twice/);
  });

  it('honourCustomConfig: false keeps the generated routes, with a warning', () => {
    const t = table([custom('iris', m('name: a\nprefix: /a/\nservice: a'))], { honourCustomConfig: false });
    expect(routed(t, rest(`/seldon/ns/iris${PRED}`)).backend.id).toBe('ns/iris/main');
    expect(refused(t, rest('/a/')).status).toBe(404);
    expect(report(t, 'ns/iris').state).toBe('degraded');
  });

  it('a copy of the operator-generated gRPC Mapping joins the generated gRPC group, whatever the order', () => {
    const canary = custom(
      'iris-canary',
      m(`name: grpc\ngrpc: true\nprefix: "${GRPC_PATH_SOURCE}"\nprefix_regex: true\nrewrite: ""\nheaders:\n  seldon: iris\n  namespace: ns\nservice: iris-canary-main:5001\nweight: 20`),
    );
    const snapshots = new Set<string>();
    for (const order of [
      [sdep('iris'), canary],
      [canary, sdep('iris')],
    ]) {
      const t = table(order);
      for (const md of [{ seldon: 'iris', namespace: 'ns' }, { seldon: 'iris' }] as Array<Record<string, string>>) {
        const g = routed(t, grpc(md)).group;
        expect(percents(g)).toEqual({ 'ns/iris/main': 80, 'ns/iris-canary/grpc': 20 });
      }
      snapshots.add(JSON.stringify(tableJson(t).deployments));
    }
    expect(snapshots.size).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------
// 31. The legacy example (docs/routing.md#several-deployments-behind-one-name)
// ---------------------------------------------------------------------------------------------

describe('31. the legacy annotation pattern (docs/routing.md#several-deployments-behind-one-name)', () => {
  const main = pred('main', { graph: { name: 'scorer', implementation: 'SKLEARN_SERVER', modelUri: 'gs://acme-models/fraud/v7' } });
  const deps: SeldonDeployment[] = [
    sdep('fraud', { ns: 'models', predictors: [main] }),
    sdep('fraud-v8', { ns: 'models', spec: { 'seldon.io/ambassador-service-name': 'fraud', 'seldon.io/ambassador-weight': '20' }, predictors: [main] }),
    sdep('fraud-audit', { ns: 'models', meta: { 'seldon.io/ambassador-shadow': 'true' }, spec: { 'seldon.io/ambassador-service-name': 'fraud' }, predictors: [main] }),
    sdep('fraud-eu', { ns: 'models', spec: { 'seldon.io/ambassador-service-name': 'fraud', 'seldon.io/ambassador-header': 'x-region:eu' }, predictors: [main] }),
  ];
  const N = 10_000;

  it.each([
    ['REST', (h: Record<string, string>) => rest('/seldon/models/fraud/api/v1.0/predictions', h), 8000],
    ['gRPC', (h: Record<string, string>) => grpc({ seldon: 'fraud', namespace: 'models', ...h }), 5001],
  ] as const)('%s: 80/20 plus a 100 %% mirror; the header variant wins with its header', (_k, mk, port) => {
    for (const order of [deps, [...deps].reverse()]) {
      const t = table(order);
      for (const r of t.deployments.values()) expect(r.state).toBe('accepted');
      const { hits, mirrors } = tally(t, mk({}), N, seeded(31));
      expectShares(hits, N, { 'models/fraud/main': 80, 'models/fraud-v8/main': 20 });
      expect(mirrors.get('models/fraud-audit/main')).toBe(N);
      const d = routed(t, mk({}));
      expect(d.group.members.map((x) => `${x.backend.upstream.host}:${x.backend.upstream.port}`).sort()).toEqual([`fraud-main.models:${port}`, `fraud-v8-main.models:${port}`]);
      expect(d.group.mirrors.map((x) => `${x.backend.upstream.host}:${x.backend.upstream.port}`)).toEqual([`fraud-audit-main.models:${port}`]);
      const eu = tally(t, mk({ 'x-region': 'eu' }), 1000, seeded(32));
      expect(eu.hits.get('models/fraud-eu/main')).toBe(1000);
      expect(eu.mirrors.size).toBe(0);
      expect(upstreamOf(routed(t, mk({ 'x-region': 'eu' })))).toBe(`fraud-eu-main.models:${port}`);
    }
  });

  it('/seldon/models/fraud-v8/… is 404 NO_ROUTE', () => {
    expect(refused(table(deps), rest('/seldon/models/fraud-v8/api/v1.0/predictions')).reason).toBe('NO_ROUTE');
  });
});

// ---------------------------------------------------------------------------------------------
// 32. Upstream TLS
// ---------------------------------------------------------------------------------------------

describe('32. upstream TLS from ssl.certSecretName (docs/routing.md#upstream-tls)', () => {
  it('is originated to the REST and gRPC members of that predictor only', () => {
    const t = table([sdep('iris', { predictors: [pred('main', { ssl: { certSecretName: 'seldon-tls' } }), pred('plain', { traffic: 50, ssl: { certSecretName: '' } })] })]);
    const r = routed(t, rest(`/seldon/ns/iris${PRED}`)).group;
    const g = routed(t, grpc({ seldon: 'iris', namespace: 'ns' })).group;
    for (const grp of [r, g]) {
      expect(Object.fromEntries(grp.members.map((x) => [x.backend.id, x.backend.upstream.tls]))).toEqual({ 'ns/iris/main': true, 'ns/iris/plain': false });
    }
    expect(g.members.find((x) => x.backend.id === 'ns/iris/main')!.backend.upstream.port).toBe(5001);
  });
});

// ---------------------------------------------------------------------------------------------
// Path hygiene and Host
// ---------------------------------------------------------------------------------------------

describe('dot segments (docs/routing.md#path-checks) and Host (docs/routing.md#rest-prefixes-and-rewrite)', () => {
  const t = table([sdep('iris')]);
  it.each([
    ['/seldon/ns/iris/./x', '/x'],
    ['/seldon/ns/iris/%2E/x', '/x'],
    ['/seldon/ns/iris/api/..', '/'],
    ['/seldon/ns/../ns/iris/x', '/x'],
    ['/seldon/ns/iris/a/%2e%2e/x?q=/../', '/x?q=/../'],
    ['/seldon/ns/iris/a/.%2E/b/../x', '/x'],
  ])('%s is resolved as Envoy normalises it (RFC 3986) and routed: the model gets %s', (path, upstream) => {
    const d = routed(t, rest(path));
    expect([d.backend.id, d.upstreamPath]).toEqual(['ns/iris/main', upstream]);
  });
  it.each(['/seldon/ns/iris/../x', '/seldon/ns/iris/%2e%2e/x', '/seldon/../iris/x'])('%s resolves outside the deployment: 404', (path) => {
    expect([refused(t, rest(path)).status, refused(t, rest(path)).reason]).toEqual([404, 'NO_ROUTE']);
  });
  it.each(['/seldon/ns/iris/..%2fx', '/seldon/ns/iris/x%2f..%2fy', '/seldon/ns/iris/%5c..%5cx'])('%s: a dot segment only encoded separators delimit → 400 BAD_REQUEST', (path) => {
    const d = refused(t, rest(path));
    expect([d.status, d.reason]).toEqual([400, 'BAD_REQUEST']);
  });
  it.each(['/seldon/ns/iris/a..b', '/seldon/ns/iris/.hidden', '/seldon/ns/iris/...', '/seldon/ns/iris/x?a=/../b', '/seldon/ns/iris/%2e%2ex'])('%s is not a dot segment', (path) => {
    expect(routed(t, rest(path)).backend.id).toBe('ns/iris/main');
  });
  it('a request target that is not a path → 400', () => {
    expect(refused(t, rest('*')).status).toBe(400);
    expect(refused(t, rest('http://h/seldon/ns/iris/')).status).toBe(400);
  });
  it.each(['gw', 'gw:8080', 'gw:443', 'GW:80', '10.0.0.1:8003', '[::1]:8003', ''])('Host %j routes identically', (host) => {
    const d = routed(t, rest(`/seldon/ns/iris${PRED}`, {}, host));
    expect([d.backend.id, d.upstreamPath]).toEqual(['ns/iris/main', PRED]);
    expect(routed(t, grpc({ seldon: 'iris', namespace: 'ns' }, SELDON_PREDICT, host)).backend.id).toBe('ns/iris/main');
  });
});

// ---------------------------------------------------------------------------------------------
// A bad SDep never affects others (docs/routing.md#deployment-states)
// ---------------------------------------------------------------------------------------------

describe('a bad SDep never affects the others', () => {
  const ex = { type: 'AnchorTabular' };
  const good: SeldonDeployment[] = [
    sdep('iris', { ns: 'a', predictors: [pred('main', { explainer: ex }), pred('canary', { traffic: 25 }), pred('audit', { shadow: true, traffic: 10 })] }),
    sdep('iris', { ns: 'b' }),
    sdep('fraud', { ns: 'models' }),
    sdep('fraud-v8', { ns: 'models', spec: { 'seldon.io/ambassador-service-name': 'fraud', 'seldon.io/ambassador-weight': '20' } }),
    sdep('fraud-eu', { ns: 'models', spec: { 'seldon.io/ambassador-service-name': 'fraud', 'seldon.io/ambassador-header': 'x-region:eu' } }),
  ];
  const shared = (name: string, ns: string, svc: string, extra: Record<string, string>, predictors?: PredictorSpec[]) =>
    sdep(name, { ns, spec: { 'seldon.io/ambassador-service-name': svc, ...extra }, ...(predictors ? { predictors } : {}) });
  const bad: SeldonDeployment[] = [
    shared('bad-header', 'models', 'fraud', { 'seldon.io/ambassador-header': 'a:b:c' }),
    shared('bad-header2', 'models', 'fraud', { 'seldon.io/ambassador-header': 'x-region:eu:x-other' }),
    shared('bad-regex', 'a', 'iris', { 'seldon.io/ambassador-regex-header': 'x: (a)\\1' }),
    shared('bad-lookahead', 'models', 'fraud', { 'seldon.io/ambassador-regex-header': 'x-region: (?=eu)eu' }),
    shared('bad-svcname', 'a', 'iris/x', {}),
    shared('dup-preds', 'a', 'iris', {}, [pred('main'), pred('main')]),
    shared('bad-svc-name', 'b', 'iris', {}, [pred('main', { annotations: { 'seldon.io/svc-name': 'Not_A_Label' } })]),
    shared('bad-custom', 'a', 'iris', { 'seldon.io/ambassador-config': 'apiVersion: getambassador.io/v2\nkind: Mapping\nprefix: [oops' }),
    shared('no-predictors', 'a', 'iris', {}, []),
    shared('null-predictor', 'models', 'fraud', {}, [null as unknown as PredictorSpec]),
    shared('unnamed-predictor', 'models', 'fraud', {}, [{ traffic: 10 } as PredictorSpec]),
    // Shapes nobody foresaw: they must stay inside their own report.
    shared('svcname-number', 'a', 'iris', {}, [pred('main', { annotations: { 'seldon.io/svc-name': 5 as unknown as string } })]),
    { metadata: { namespace: 'a', annotations: { 'seldon.io/ambassador-service-name': 'iris' } }, spec: { predictors: [pred('main')] } },
    { metadata: { name: 'predictors-string', namespace: 'a' }, spec: { predictors: 'oops' as unknown as PredictorSpec[] } },
    { metadata: { name: 'no-spec', namespace: 'models' } },
  ];
  const probes: RouteRequest[] = [
    rest('/seldon/a/iris/api/v1.0/predictions'),
    rest('/seldon/a/iris/api/v1.0/predictions', { x: 'aa', a: 'b' }),
    rest('/seldon/a/iris-explainer/main/api/v1.0/explain'),
    rest('/seldon/b/iris/api/v1.0/predictions'),
    rest('/seldon/models/fraud/api/v1.0/predictions'),
    rest('/seldon/models/fraud/api/v1.0/predictions', { 'x-region': 'eu', a: 'b' }),
    grpc({ seldon: 'iris', namespace: 'a' }),
    grpc({ seldon: 'iris', namespace: 'b' }),
    grpc({ seldon: 'fraud' }),
    grpc({ seldon: 'fraud', namespace: 'models', 'x-region': 'eu' }),
  ];
  const goodKeys = new Set(good.map((d) => `${d.metadata!.namespace}/${d.metadata!.name}`));
  const goodView = (t: RouteTable) => tableJson(t).deployments.filter((d) => goodKeys.has(`${d.namespace}/${d.name}`));
  const decisions = (t: RouteTable) =>
    probes.map((req) => {
      const picker = seeded(5);
      return Array.from({ length: 50 }, () => {
        const d = route(t, req, picker);
        return d.ok ? `${d.backend.id} ${d.upstreamPath} ${d.mirrors.map((x) => x.backend.id).join()}` : `${d.status}`;
      });
    });

  it('every bad one is rejected; the good ones compile exactly as alone, in any position', () => {
    const alone = table(good);
    for (const r of alone.deployments.values()) expect(r.state).toBe('accepted');
    const mixes = [[...bad, ...good], [...good, ...bad], good.flatMap((g, i) => [g, ...bad.slice(i * 3, i * 3 + 3)]).concat(bad.slice(good.length * 3))];
    for (const mix of mixes) {
      const t = table(mix);
      for (const [k, r] of t.deployments) if (!goodKeys.has(k)) expect([k, r.state]).toEqual([k, 'rejected']);
      expect(t.deployments.size).toBe(alone.deployments.size + bad.length);
      expect(goodView(t)).toEqual(goodView(alone));
      expect(decisions(t)).toEqual(decisions(alone));
      expect(t.groups.map((g) => g.key)).toEqual(alone.groups.map((g) => g.key));
    }
  });

  it('incrementally too: adding and removing bad ones leaves the good routes unchanged', () => {
    const b = new TableBuilder(opts());
    for (const d of good) b.upsert(d);
    const before = b.build();
    for (const d of bad) {
      b.upsert(d);
      const t = b.build();
      expect(goodView(t)).toEqual(goodView(before));
    }
    expect(decisions(b.build())).toEqual(decisions(before));
    for (const k of [...b.build().deployments.keys()].filter((k) => !goodKeys.has(k))) b.remove(k);
    expect(tableJson(b.build()).deployments).toEqual(tableJson(before).deployments);
  });
});
