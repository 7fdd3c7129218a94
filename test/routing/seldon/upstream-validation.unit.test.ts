/**
 * Upstream validation in the routing core: no SeldonDeployment, however written, yields an upstream
 * a client library cannot parse (port outside 1..65535, a host with `/`, `:` or a space) or a host
 * that names a Service elsewhere; a bad one is rejected alone, with its reason. And the
 * per-deployment predictor limit.
 */
import { describe, expect, it } from 'vitest';
import { MAX_PREDICTORS } from '../../../routing/compile/deployment.js';
import { headerGetter, match } from '../../../routing/table/match.js';
import { randomPicker, seededRandom } from '../../../routing/table/pick.js';
import { buildTable } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type CompileOptions, type RouteRequest, type RouteTable } from '../../../routing/types.js';
import type { GraphEndpoint, PredictorSpec, SeldonDeployment, ServiceStatus } from '../../../routing/seldon/deployment.js';

const PRED = '/api/v1.0/predictions';

function sdep(
  name: string,
  predictors: PredictorSpec[],
  extra: { ns?: string; status?: Record<string, ServiceStatus>; specName?: string; annotations?: Record<string, string> } = {},
): SeldonDeployment {
  return {
    apiVersion: 'machinelearning.seldon.io/v1',
    kind: 'SeldonDeployment',
    metadata: { name, namespace: extra.ns ?? 'ns' },
    spec: {
      ...(extra.specName !== undefined ? { name: extra.specName } : {}),
      ...(extra.annotations ? { annotations: extra.annotations } : {}),
      predictors,
    },
    ...(extra.status ? { status: { serviceStatus: extra.status } } : {}),
  };
}

const pred = (name: string, extra: Partial<PredictorSpec> = {}): PredictorSpec => ({ name, graph: { name: 'model', type: 'MODEL' }, ...extra });
const noEngine = (endpoint: Record<string, unknown>): PredictorSpec => pred('main', { annotations: { 'seldon.io/no-engine': 'true' }, graph: { name: 'model', endpoint: endpoint as GraphEndpoint } });
const opts = (o: Partial<CompileOptions> = {}): CompileOptions => ({ ...DEFAULT_COMPILE_OPTIONS, ...o });
const good = sdep('good', [pred('main')]);

function rest(path: string): RouteRequest {
  return { kind: 'rest', method: 'POST', path, host: 'gw', header: headerGetter({}) };
}

/**
 * Every upstream in the table reads back the same through the WHATWG URL parser (which undici's
 * Pool uses): same host, same port, nothing thrown.
 */
export function expectParseableUpstreams(t: RouteTable): void {
  for (const g of t.groups) {
    for (const b of [...g.members.map((m) => m.backend), ...g.mirrors.map((m) => m.backend)]) {
      const { host, port } = b.upstream;
      expect(Number.isInteger(port) && port >= 1 && port <= 65535, `${b.id}: port ${port}`).toBe(true);
      const u = new URL(`http://${host}:${port}`);
      expect(u.hostname, `${b.id}: host ${host}`).toBe(host.toLowerCase());
      expect(u.port === '' ? 80 : Number(u.port), `${b.id}: port`).toBe(port);
    }
  }
}

/** `bad` is rejected with a reason matching `reason`; `good` beside it is untouched. */
function expectRejectedAlone(bad: SeldonDeployment, reason: RegExp, o: Partial<CompileOptions> = {}): void {
  const t = buildTable([bad, o.legacyServiceNaming ? sdep('good', [pred('main')], { specName: 'x' }) : good], opts(o));
  const key = `${bad.metadata?.namespace}/${bad.metadata?.name}`;
  const r = t.deployments.get(key)!;
  expect(r.state, r.reasons.join('; ')).toBe('rejected');
  expect(r.reasons.join('; ')).toMatch(reason);
  expect(t.groups.some((g) => g.members.some((m) => `${m.backend.origin.namespace}/${m.backend.origin.deployment}` === key))).toBe(false);
  const d = match(t, rest(`/seldon/ns/good${PRED}`), randomPicker(seededRandom(1)));
  expect(d.ok && d.backend.id).toBe('ns/good/main');
  expectParseableUpstreams(t);
}

describe('ports are 1..65535', () => {
  it.each([70000, -1, 0.5, 65536, 'abc', '80x', true])('no-engine graph.endpoint.httpPort %j rejects only that SDep', (port) => {
    expectRejectedAlone(sdep('bad', [noEngine({ httpPort: port })]), /graph\.endpoint\.httpPort/);
  });

  it.each([70000, -1])('no-engine graph.endpoint.grpcPort %j rejects only that SDep', (port) => {
    expectRejectedAlone(sdep('bad', [noEngine({ grpcPort: port })]), /graph\.endpoint\.grpcPort/);
  });

  it('no-engine ports in range (or absent / 0 = default) are used', () => {
    const t = buildTable([sdep('a', [noEngine({ httpPort: 65535, grpcPort: 1 })]), sdep('b', [noEngine({ httpPort: 0 })])], opts());
    expect(t.groups.map((g) => `${g.members[0]!.backend.upstream.host}:${g.members[0]!.backend.upstream.port}`).sort()).toEqual(['a-main.ns:1', 'a-main.ns:65535', 'b-main.ns:9000', 'b-main.ns:9500']);
  });

  it.each([70000, -1, 1.5, 'lots'])('explainer service_port %j rejects only that SDep', (port) => {
    expectRejectedAlone(sdep('bad', [pred('main', { explainer: { type: 'AnchorTabular', endpoint: { service_port: port as number } } })]), /explainer\.endpoint\.service_port/);
  });

  it.each([
    ['an HTTP port out of range', { svcName: 'bad-main', httpEndpoint: 'bad-main.ns:70000', grpcEndpoint: 'bad-main.ns:5001' }, /httpEndpoint.*1\.\.65535/],
    ['a negative gRPC port', { svcName: 'bad-main', httpEndpoint: 'bad-main.ns:8000', grpcEndpoint: 'bad-main.ns:-1' }, /grpcEndpoint/],
    ['no port', { svcName: 'bad-main', httpEndpoint: 'bad-main.ns' }, /httpEndpoint/],
    ['a host with a slash', { svcName: 'bad-main', httpEndpoint: 'bad/main.ns:8000' }, /not a valid host/],
    ['a host in another namespace', { svcName: 'bad-main', httpEndpoint: 'beta-main.team-b:8000' }, /not a Service in namespace "ns"/],
    ['a one-label host', { svcName: 'bad-main', httpEndpoint: 'beta-main:8000' }, /not a Service in namespace "ns"/],
    ['a bad svcName', { svcName: 'Bad Main', httpEndpoint: 'bad-main.ns:8000' }, /DNS-1035/],
  ] as const)('status.serviceStatus with %s rejects only that SDep', (_what, entry, reason) => {
    expectRejectedAlone(sdep('bad', [pred('main')], { status: { 'bad-main': entry } }), reason);
  });

  it('an explainer status entry out of range rejects only that SDep', () => {
    const status = {
      'bad-main': { svcName: 'bad-main', httpEndpoint: 'bad-main.ns:8000', grpcEndpoint: 'bad-main.ns:5001' },
      'bad-main-explainer': { svcName: 'bad-main-explainer', httpEndpoint: 'bad-main-explainer.ns:99999', explainerFor: 'bad-main' },
    };
    expectRejectedAlone(sdep('bad', [pred('main', { explainer: { type: 'AnchorTabular' } })], { status }), /httpEndpoint/);
  });
});

describe('names that become part of a Service host are what Kubernetes accepts', () => {
  it.each(['a/b', 'a:b', 'a b', 'Main', 'a.b', '-a', 'a_b', 'x'.repeat(64), 'a\u0000b'])('predictor name %j rejects only that SDep', (name) => {
    expectRejectedAlone(sdep('bad', [pred(name)]), /predictor name .* DNS-1123/);
  });

  it('a predictor name with "/" is rejected even when the Service name would be hashed', () => {
    expectRejectedAlone(sdep('a'.repeat(60), [pred('x/y')]), /predictor name/);
  });

  it.each(['Iris', 'a/b', 'a b', 'a:b', 'iris.', '.iris', 'a..b', 'a'.repeat(254)])('metadata.name %j rejects only that SDep', (name) => {
    expectRejectedAlone(sdep(name, [pred('main')]), /metadata\.name .* DNS-1123 subdomain/);
  });

  it.each(['Team-B', 'team_b', 'team.b', 'a/b', 'x'.repeat(64)])('metadata.namespace %j rejects only that SDep', (ns) => {
    expectRejectedAlone(sdep('bad', [pred('main')], { ns }), /metadata\.namespace .* DNS-1123 label/);
  });

  it.each([
    ['a name with a dot (the host would name namespace "v2-main")', 'iris.v2', /Service name "iris\.v2-main"/],
    ['a name starting with a digit', '1iris', /Service name "1iris-main"/],
  ])('a generated Service name Kubernetes would refuse: %s', (_what, name, reason) => {
    expectRejectedAlone(sdep(name, [pred('main')]), reason);
  });

  it('a dotted name long enough to be hashed is served (the hash is a valid label)', () => {
    const name = `iris.${'v'.repeat(60)}`;
    const t = buildTable([sdep(name, [pred('main')])], opts());
    expect(t.deployments.get(`ns/${name}`)!.state).toBe('accepted');
    expectParseableUpstreams(t);
  });

  it('legacy naming without spec.name ("-<sdep>") rejects only that SDep', () => {
    expectRejectedAlone(sdep('bad', [pred('main')]), /Service name "-bad"/, { legacyServiceNaming: true });
  });
});

describe('custom Mapping services', () => {
  const custom = (name: string, service: string): SeldonDeployment =>
    sdep(name, [pred('main')], { annotations: { 'seldon.io/ambassador-config': `apiVersion: ambassador/v1\nkind: Mapping\nname: m\nprefix: /seldon/ns/${name}/\nservice: ${service}` } });

  it.each(['svc:70000', 'svc:0', 'svc:-1', 'svc:0x50', 'svc:1e3', 'a..b:80', 'a.-b:80', `${'x'.repeat(64)}:80`, 'a b:80', 'http://a/b:80', 'user@svc:80'])(
    'service %j: the Mapping is dropped (its only one: rejected), nothing unparseable is served',
    (service) => {
      expectRejectedAlone(custom('bad', service), /service .*invalid|no valid Mapping/, { customConfigScope: 'cluster' });
    },
  );

  it('valid forms are served and parse back', () => {
    const t = buildTable([custom('a', 'svc:65535'), custom('b', 'https://Svc.NS'), custom('c', '10.0.0.1:8000')], opts({ customConfigScope: 'cluster' }));
    for (const k of ['ns/a', 'ns/b', 'ns/c']) expect(t.deployments.get(k)!.state).toBe('accepted');
    expectParseableUpstreams(t);
  });
});

describe('at most MAX_PREDICTORS predictors per SeldonDeployment', () => {
  it(`${MAX_PREDICTORS + 1} predictors reject only that SDep; ${MAX_PREDICTORS} are served`, () => {
    const many = (n: number): PredictorSpec[] => Array.from({ length: n }, (_, i) => pred(`p${i}`, i ? { traffic: 0 } : {}));
    expectRejectedAlone(sdep('bad', many(MAX_PREDICTORS + 1)), new RegExp(`${MAX_PREDICTORS + 1} predictors: at most ${MAX_PREDICTORS}`));
    const t = buildTable([sdep('big', many(MAX_PREDICTORS))], opts());
    expect(t.deployments.get('ns/big')!.state).toBe('accepted');
    expect(t.groups.find((g) => g.kind === 'rest')!.members).toHaveLength(MAX_PREDICTORS);
  });
});
