/**
 * Property (docs/architecture.md#table-updates): after any sequence of upserts and removes on one
 * `TableBuilder`, every `build()` equals a from-scratch `buildTable` of the current set (in either
 * order), in its JSON listing, its groups and its match indexes; and both route sample requests
 * identically.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GRPC_PATH_SOURCE } from '../../../routing/compile/deployment.js';
import { tableJson } from '../../../routing/table/describe.js';
import { headerGetter, match } from '../../../routing/table/match.js';
import { randomPicker, seededRandom } from '../../../routing/table/pick.js';
import { buildTable, TableBuilder } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type Backend, type CompileOptions, type RouteGroup, type RouteRequest, type RouteTable } from '../../../routing/types.js';
import type { PredictorSpec, SeldonDeployment, ServiceStatus } from '../../../routing/seldon/deployment.js';
import { constraintText } from '../../../routing/values/syntax.js';

// ---------------------------------------------------------------------------------------------
// Canonical snapshot of a table: everything observable except `generation`.
// ---------------------------------------------------------------------------------------------

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** A backend's gate (auth, rate limits) as text. */
const gateView = (b: Backend): string =>
  b.gate === null ? '-' : `${b.gate.auth ? `auth:${b.gate.auth.namespace}/${b.gate.auth.deployment}` : 'open'} ${b.gate.rateLimits.map((l) => `${l.key}=${l.text}`).join(',')}`;

function groupView(g: RouteGroup) {
  return {
    key: g.key,
    kind: g.kind,
    path: g.path.kind === 'prefix' ? `prefix:${g.path.prefix}` : `${g.path.kind}:${g.path.source}`,
    host: g.host,
    headers: g.headers.map((h) => constraintText(h)),
    query: g.query,
    rank: g.rank,
    grpcIdentity: g.grpcIdentity,
    namespace: g.namespace,
    members: g.members.map((m) => [m.backend.id, m.percent, gateView(m.backend), m.backend.steered]),
    mirrors: g.mirrors.map((m) => [m.backend.id, m.percent, gateView(m.backend), m.backend.steered]),
    steered: g.steered,
    sticky: g.sticky,
    cumulative: g.cumulative,
    precedence: g.precedence,
    warnings: g.warnings,
  };
}

/** Index map → [key, group keys in order] sorted by key (map insertion order is not meaningful). */
function indexView(m: ReadonlyMap<string, readonly RouteGroup[]>): Array<[string, string[]]> {
  return [...m.entries()].map(([k, gs]): [string, string[]] => [k, gs.map((g) => g.key)]).sort((a, b) => cmp(a[0], b[0]));
}

function snapshot(t: RouteTable) {
  const { generation: _generation, ...json } = tableJson(t);
  return {
    json,
    groups: t.groups.map(groupView),
    restByPrefix: indexView(t.restByPrefix),
    restOddPrefixLengths: [...t.restOddPrefixLengths],
    restPrefixDepths: [...t.restPrefixDepths],
    restRanked: t.restRanked === true,
    restRegex: t.restRegex.map((g) => g.key),
    grpcByIdentity: indexView(t.grpcByIdentity),
    grpcNamespaces: [...t.grpcNamespaces.entries()].map(([k, v]): [string, string[]] => [k, [...v]]).sort((a, b) => cmp(a[0], b[0])),
    grpcByPrefix: indexView(t.grpcByPrefix),
    grpcOddPrefixLengths: [...t.grpcOddPrefixLengths],
    grpcRegex: t.grpcRegex.map((g) => g.key),
    reports: [...t.deployments.entries()].sort((a, b) => cmp(a[0], b[0])),
    oauthClients: [...t.oauthClients.entries()].map(([id, c]) => [id, c.namespace, c.deployment, c.secret].join('|')).sort(),
    ownRoutes: [...t.ownRoutes.entries()].map(([k, o]): [string, unknown, unknown] => [k, o.rest && groupView(o.rest), o.grpc && groupView(o.grpc)]).sort((a, b) => cmp(a[0], b[0])),
    steering: [...t.steering.entries()].map(([k, s]) => [k, JSON.stringify(s)]).sort((a, b) => cmp(a[0]!, b[0]!)),
  };
}

// ---------------------------------------------------------------------------------------------
// Sample requests: both tables must route them alike (same seeded picker).
// ---------------------------------------------------------------------------------------------

const NAMES = ['iris', 'fraud', 'fraud-v8', 'x'] as const;
const NAMESPACES = ['a', 'b', 'default'] as const;
const PREDS = ['main', 'canary', 'audit', 'x/y'] as const;

function req(kind: 'rest' | 'grpc', path: string, headers: Record<string, string> = {}, host = 'api.example.com:8080'): RouteRequest {
  return { kind, method: 'POST', path, host, header: headerGetter(headers) };
}

const PROBES: RouteRequest[] = [
  ...NAMESPACES.flatMap((ns) =>
    ['iris', 'fraud', 'x'].flatMap((n) => [
      req('rest', `/seldon/${ns}/${n}/api/v1.0/predictions?x=1`),
      req('rest', `/seldon/${ns}/${n}/api/v1.0/predictions`, { 'x-region': 'eu', location: 'london', a: '1', b: '2', 'x-canary': '' }),
      req('rest', `/seldon/${ns}/${n}-explainer/main/api/v1.0/explain`),
      req('grpc', '/seldon.protos.Seldon/Predict', { seldon: n, namespace: ns }),
      req('grpc', '/inference.GRPCInferenceService/ModelInfer', { seldon: n, namespace: ns, 'x-region': 'eu' }),
    ]),
  ),
  ...['iris', 'fraud'].flatMap((n) => [req('rest', `/seldon/${n}/api/v1.0/predictions`), req('grpc', '/seldon.protos.Seldon/Predict', { seldon: n })]),
  req('rest', '/rx/abc'),
  req('rest', '/oddity/x'),
  req('grpc', '/seldon.protos.Seldon/SendFeedback'),
  req('grpc', '/inference.GRPCInferenceService/ModelReady'),
];

function decisions(t: RouteTable): string[] {
  return PROBES.map((r) => {
    const picker = randomPicker(seededRandom(17));
    const out: string[] = [];
    for (let i = 0; i < 5; i++) {
      const d = match(t, r, picker);
      out.push(d.ok ? `${d.backend.id}|${d.upstreamPath}|${d.mirrors.map((m) => m.backend.id).join()}` : `${d.status}:${d.info}`);
    }
    return out.join(' ; ');
  });
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/** Mostly absent, sometimes one of `values`. */
const sometimes = <T>(values: readonly T[], absentWeight = 6): fc.Arbitrary<T | undefined> =>
  fc.oneof({ arbitrary: fc.constant(undefined), weight: absentWeight }, { arbitrary: fc.constantFrom(...values), weight: 1 });

const m = (body: string) => `apiVersion: ambassador/v1\nkind: Mapping\n${body}`;
const CUSTOM_CONFIGS = [
  m('name: join\nprefix: /seldon/a/iris/\nservice: joiner:8000\nweight: 10'),
  m('name: rx\nprefix: "/rx/[a-z]+"\nprefix_regex: true\nservice: rx'),
  m('name: g\nprefix: /seldon.protos.Seldon/\nrewrite: /seldon.protos.Seldon/\ngrpc: true\nservice: g:5001'),
  m('name: h\nprefix: /seldon/a/iris/\nhost: api.example.com\nservice: h'),
  m('name: odd\nprefix: /odd\nservice: o'),
  m('name: ranked\nprefix: /seldon/a/\nprecedence: 3\nservice: r'),
  m('name: godd\nprefix: /seldon.protos.Seld\nrewrite: ""\ngrpc: true\nservice: o:5001'),
  m('name: sh\nprefix: /seldon/b/fraud/\nshadow: true\nweight: 30\nservice: s'),
  'apiVersion: getambassador.io/v2\nkind: Mapping\nprefix: [oops',
  m(`name: copy\ngrpc: true\nprefix: "${GRPC_PATH_SOURCE}"\nprefix_regex: true\nrewrite: ""\nheaders:\n  seldon: iris\n  namespace: a\nservice: c:5001\nweight: 20`),
  m('name: ginf\nprefix: "/inference.*"\nprefix_regex: true\ngrpc: true\nservice: gi:9000'),
  [
    m('name: one\nprefix: /seldon/b/iris/\nservice: one\ncors: {}\nambassador_id: [blue, default]'),
    m('name: two\nprefix: /seldon/b/iris/\nservice: two\nweight: 150\nheaders: {x-region: eu}'),
    'kind: Module\nname: x',
  ].join('\n---\n'),
  // Routes to other deployments' Services (gates follow the Services' OAuth owners), in and out of scope.
  m('name: toiris\nprefix: /seldon/a/x/\nservice: iris-main.a:8000'),
  m('name: tofraud\nprefix: /seldon/b/fraud/\nservice: fraud-main.b.svc.cluster.local\nweight: 50'),
  [m('name: near\nprefix: /seldon/default/x/\nservice: iris-canary'), m('name: gnear\ngrpc: true\nprefix: /seldon.protos.Seldon/\nrewrite: ""\nheaders: {namespace: a}\nservice: iris-main:5001')].join(
    '\n---\n',
  ),
];

const ANNOTATION_VALUES: Record<string, readonly string[]> = {
  'seldon.io/ambassador-service-name': ['iris', 'fraud', '', 'bad/name'],
  'seldon.io/ambassador-header': ['x-region:eu', 'x-region: eu', 'x-canary', 'a:1:b:2', 'a:b:c', ':v', 'namespace:a', ''],
  'seldon.io/ambassador-regex-header': ['location: lond.*', 'x-region: e.*', 'x: (a)\\1', 'x-region: eu'],
  'seldon.io/ambassador-id': ['', 'blue', 'default'],
  'seldon.io/ambassador-weight': ['0', '20', '150', 'abc', '-3'],
  'seldon.io/ambassador-shadow': ['true', 'false', 'weird'],
  'seldon.io/rest-timeout': ['0', '5000', '400000', 'bad'],
  'seldon.io/grpc-timeout': ['0', '7000', '-1'],
  'seldon.io/rest-read-timeout': ['9000', 'x'],
  'seldon.io/ambassador-retries': ['2', '0', 'x'],
  'seldon.io/ambassador-circuit-breakers-max-connections': ['1', '0', 'lots'],
  'seldon.io/ambassador-config': CUSTOM_CONFIGS,
  'seldon.io/gateway-auth': ['oauth', 'oauth', 'none', 'OAuth', 'bogus'],
  'seldon.io/gateway-rate-limit': ['10/s', '600 / m', '0/s', 'lots'],
  // Steering: sticky and a rollout make groups steered (and sticky), across the legacy pattern too.
  'seldon.io/gateway-rollout': ['canary: canary\nsteps: [10, 50, 100]', 'canary: canary\nsticky: header:x-user', 'canary: nope', 'steps: [5]'],
  'seldon.io/gateway-bandit': ['arms: [main, canary]', 'arms: [main]', 'policy: greedy'],
  'seldon.io/gateway-sticky': ['header:x-user', 'cookie', 'nonsense'],
};

/** How much likelier each key is to be absent than present (per annotation map; there are two). */
const ABSENT_WEIGHT: Record<string, number> = {
  'seldon.io/ambassador-service-name': 3,
  'seldon.io/ambassador-header': 6,
  'seldon.io/ambassador-id': 20,
  'seldon.io/ambassador-config': 16,
  'seldon.io/gateway-auth': 6,
  // Parsed as YAML at every compile: rarer, so the sequences stay as fast as before.
  'seldon.io/gateway-rollout': 24,
  'seldon.io/gateway-bandit': 24,
  'seldon.io/gateway-sticky': 16,
};

const annotationsArb: fc.Arbitrary<Record<string, string>> = fc
  .record(Object.fromEntries(Object.entries(ANNOTATION_VALUES).map(([k, vs]) => [k, sometimes(vs, ABSENT_WEIGHT[k] ?? 14)])))
  .map((r) => Object.fromEntries(Object.entries(r).filter((e): e is [string, string] => e[1] !== undefined)));

const predictorArb: fc.Arbitrary<PredictorSpec> = fc
  .record({
    name: fc.constantFrom(...PREDS),
    traffic: fc.constantFrom(undefined, 0, 1, 10, 20, 25, 33, 50, 75, 90, 100, -5, 150),
    shadow: fc.constantFrom(undefined, undefined, false, true),
    explainer: sometimes([{ type: 'AnchorTabular' }, { type: 'AnchorImages', endpoint: { service_port: 9100 } }, { type: '' }, { type: 'AnchorImages', endpoint: { service_port: 70000 } }], 3),
    ssl: sometimes([{ certSecretName: 'tls' }, { certSecretName: '' }], 5),
    annotations: sometimes(
      [
        { 'seldon.io/svc-name': 'iris-main' },
        { 'seldon.io/svc-name': 'shared-svc' },
        { 'seldon.io/svc-name': 'Bad_Name' },
        { 'seldon.io/svc-name': 'iris-main' },
        { 'seldon.io/svc-name': 'fraud-canary' },
        { 'seldon.io/no-engine': 'true' },
        { 'seldon.io/gateway-rate-limit': '5/m' },
        { 'seldon.io/gateway-rate-limit': 'x' },
      ],
      5,
    ),
  })
  .map((p) => {
    const out: PredictorSpec = { name: p.name, graph: { name: 'model', type: 'MODEL' } };
    for (const k of ['traffic', 'shadow', 'explainer', 'ssl', 'annotations'] as const) if (p[k] !== undefined) (out as Record<string, unknown>)[k] = p[k];
    return out;
  });

const predictorsArb: fc.Arbitrary<PredictorSpec[]> = fc.oneof(
  { arbitrary: fc.uniqueArray(predictorArb, { selector: (p) => p.name, minLength: 1, maxLength: 3 }), weight: 12 },
  // Duplicate predictor names, or none at all: rejected.
  { arbitrary: fc.array(predictorArb, { minLength: 0, maxLength: 3 }), weight: 1 },
);

type StatusKind = 'none' | 'full' | 'no-grpc' | 'no-http' | 'stale';
function statusOf(kind: StatusKind, name: string, ns: string, first: string | undefined): Record<string, ServiceStatus> | undefined {
  if (kind === 'none' || first === undefined) return undefined;
  const svc = `${name}-${first}`;
  if (kind === 'stale') return { 'someone-else': { httpEndpoint: 'x.y:1', grpcEndpoint: 'x.y:2' } };
  return {
    [svc]: {
      svcName: svc,
      httpEndpoint: kind === 'no-http' ? '' : `${svc}.${ns}:9001`,
      grpcEndpoint: kind === 'no-grpc' ? '' : `${svc}.${ns}:5002`,
    },
  };
}

const sdepArb: fc.Arbitrary<SeldonDeployment> = fc.oneof(
  {
    weight: 20,
    arbitrary: fc
      .record({
        name: fc.constantFrom(...NAMES),
        ns: fc.constantFrom<string | undefined>(...NAMESPACES, '', undefined),
        predictors: predictorsArb,
        meta: annotationsArb,
        spec: annotationsArb,
        status: fc.constantFrom<StatusKind>('none', 'none', 'none', 'full', 'no-grpc', 'no-http', 'stale'),
        // OAuth clients: shared keys collide within a namespace; `ka` bare (single-namespace) meets `k`+`a`.
        oauth: sometimes<[unknown, unknown]>(
          [
            ['k', 's1'],
            ['k', 's2'],
            ['ka', 's3'],
            ['key', ''],
            ['', 'lonely'],
            [7, 's'],
          ],
          2,
        ),
      })
      .map(({ name, ns, predictors, meta, spec, status, oauth }) => {
        const d: SeldonDeployment = {
          apiVersion: 'machinelearning.seldon.io/v1',
          kind: 'SeldonDeployment',
          metadata: { name, ...(ns !== undefined ? { namespace: ns } : {}), ...(Object.keys(meta).length ? { annotations: meta } : {}) },
          spec: { ...(Object.keys(spec).length ? { annotations: spec } : {}), predictors, ...(oauth ? { oauth_key: oauth[0] as string, oauth_secret: oauth[1] as string } : {}) },
        };
        const st = statusOf(status, name, ns || 'default', predictors[0]?.name);
        if (st) d.status = { serviceStatus: st };
        return d;
      }),
  },
  {
    // Shapes a cluster should never serve, but might.
    weight: 1,
    arbitrary: fc
      .record({ name: fc.constantFrom(...NAMES), ns: fc.constantFrom(...NAMESPACES) })
      .chain(({ name, ns }) =>
        fc.constantFrom<SeldonDeployment>(
          { metadata: { name, namespace: ns } },
          { metadata: { name, namespace: ns }, spec: { predictors: 'oops' as unknown as PredictorSpec[] } },
          { metadata: { name, namespace: ns, annotations: 'oops' as unknown as Record<string, string> }, spec: { predictors: [{ name: 'main' }] } },
          { metadata: { name, namespace: ns }, spec: { predictors: [{ name: 'main', annotations: { 'seldon.io/svc-name': 7 as unknown as string } }] } },
        ),
      ),
  },
);

type Op = { op: 'upsert'; d: SeldonDeployment } | { op: 'remove'; key: string } | { op: 'build' };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: sdepArb.map((d): Op => ({ op: 'upsert', d })) },
  { weight: 2, arbitrary: fc.record({ name: fc.constantFrom(...NAMES), ns: fc.constantFrom(...NAMESPACES) }).map(({ name, ns }): Op => ({ op: 'remove', key: `${ns}/${name}` })) },
  { weight: 2, arbitrary: fc.constant<Op>({ op: 'build' }) },
);

const optionsArb: fc.Arbitrary<CompileOptions> = fc
  .constantFrom<Partial<CompileOptions>>(
    {},
    {},
    {},
    { singleNamespace: true, namespace: 'a' },
    { ambassadorId: 'blue' },
    { honourCustomConfig: false },
    { legacyServiceNaming: true },
    { customConfigScope: 'cluster' },
    { customConfigScope: 'cluster' },
  )
  .map((o) => ({ ...DEFAULT_COMPILE_OPTIONS, ...o }));

const keyOf = (d: SeldonDeployment): string => `${d.metadata?.namespace || 'default'}/${d.metadata?.name ?? ''}`;

// ---------------------------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------------------------

function checkEqual(incremental: RouteTable, current: Map<string, SeldonDeployment>, options: CompileOptions): void {
  const snap = snapshot(incremental);
  const scratch = buildTable(current.values(), options);
  expect(snap).toEqual(snapshot(scratch));
  expect(snapshot(buildTable([...current.values()].reverse(), options))).toEqual(snap);
  expect(decisions(incremental)).toEqual(decisions(scratch));
  // No input yields an upstream a URL parser reads differently.
  for (const g of incremental.groups) {
    for (const { backend: b } of [...g.members, ...g.mirrors]) {
      const u = new URL(`http://${b.upstream.host}:${b.upstream.port}`);
      expect([u.hostname, Number(u.port || 80)], b.id).toEqual([b.upstream.host.toLowerCase(), b.upstream.port]);
    }
  }
}

describe('TableBuilder: incremental equals rebuild (docs/architecture.md#table-updates)', () => {
  it('after any upsert/remove sequence, every build() equals buildTable(current set)', async () => {
    let builds = 0;
    let routed = 0;
    let clients = 0;
    let collisions = 0;
    let gated = 0;
    let foreignGated = 0;
    const states: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(optionsArb, fc.array(opArb, { minLength: 1, maxLength: 60, size: 'max' }), async (options, ops) => {
        // A turn of the event loop per run: minutes of CPU on a busy machine must not block the
        // test worker's messages to vitest (they time out after 60 s).
        await new Promise((r) => setImmediate(r));
        const b = new TableBuilder(options);
        const current = new Map<string, SeldonDeployment>();
        for (const o of ops) {
          if (o.op === 'upsert') {
            b.upsert(o.d);
            current.set(keyOf(o.d), o.d);
          } else if (o.op === 'remove') {
            b.remove(o.key);
            current.delete(o.key);
          } else {
            const t = b.build();
            checkEqual(t, current, options);
            builds++;
            routed += t.groups.length;
            clients += t.oauthClients.size;
            for (const r of t.deployments.values()) {
              states[r.state] = (states[r.state] ?? 0) + 1;
              if (r.reasons.some((x) => x.includes('neither gets it'))) collisions++;
            }
            for (const g of t.groups) if (g.members.some((x) => x.backend.gate !== null)) gated++;
            for (const g of t.groups) {
              for (const x of g.members) if (x.backend.gate?.auth && x.backend.gate.auth.deployment !== x.backend.origin.deployment) foreignGated++;
            }
          }
        }
        checkEqual(b.build(), current, options);
        builds++;
      }),
      { numRuns: 1000 },
    );
    // The generators must actually exercise the table.
    expect(builds).toBeGreaterThan(1500);
    expect(routed).toBeGreaterThan(8000);
    for (const state of ['accepted', 'degraded', 'rejected', 'skipped']) expect(states[state] ?? 0, state).toBeGreaterThan(500);
    expect(clients).toBeGreaterThan(500);
    expect(collisions).toBeGreaterThan(100);
    expect(gated).toBeGreaterThan(500);
    expect(foreignGated).toBeGreaterThan(5);
    // 1,000 runs, CPU only: about 15 s alone, three minutes beside a CPU hog.
  }, 300_000);

  // Shrunk counterexamples found by the property, kept as plain regressions.
  describe('regressions', () => {
    const iris = (annotations?: Record<string, string>): SeldonDeployment => ({
      metadata: { name: 'iris', namespace: 'a', ...(annotations ? { annotations } : {}) },
      spec: { predictors: [{ name: 'main' }] },
    });
    const o = DEFAULT_COMPILE_OPTIONS;

    it('upsert then remove before build() neither throws nor leaves anything behind', () => {
      const b = new TableBuilder(o);
      b.upsert(iris());
      b.remove('a/iris');
      const t = b.build();
      expect(t.groups).toHaveLength(0);
      expect(t.deployments.size).toBe(0);
      b.upsert(iris());
      expect(snapshot(b.build())).toEqual(snapshot(buildTable([iris()], o)));
    });

    it('two updates of one SDep between builds that move it to other groups', () => {
      const b = new TableBuilder(o);
      b.upsert(iris({ 'seldon.io/ambassador-header': 'x-region:eu' }));
      b.upsert(iris());
      expect(snapshot(b.build())).toEqual(snapshot(buildTable([iris()], o)));
    });

    it('a group that changes form (generated gRPC route leaves a custom copy of it) is re-indexed', () => {
      const copy: SeldonDeployment = {
        metadata: { name: 'x', namespace: 'a' },
        spec: {
          annotations: {
            'seldon.io/ambassador-config': m(
              `name: copy\ngrpc: true\nprefix: "${GRPC_PATH_SOURCE}"\nprefix_regex: true\nrewrite: ""\nheaders:\n  seldon: iris\n  namespace: a\nservice: c:5001\nweight: 20`,
            ),
          },
          predictors: [{ name: 'main' }],
        },
      };
      const b = new TableBuilder(o);
      b.upsert(iris());
      b.upsert(copy);
      const joined = b.build();
      expect(joined.grpcByIdentity.get('a\u0000iris')?.[0]?.members.map((x) => x.backend.id)).toEqual(['a/iris/main', 'a/x/copy']);
      expect(joined.grpcRegex).toHaveLength(0);
      b.upsert(iris({ 'seldon.io/ambassador-header': 'x-region:eu' }));
      const split = b.build();
      expect(snapshot(split)).toEqual(snapshot(buildTable([iris({ 'seldon.io/ambassador-header': 'x-region:eu' }), copy], o)));
      expect(split.grpcRegex.map((g) => g.members.map((x) => x.backend.id))).toEqual([['a/x/copy']]);
      b.remove('a/x');
      expect(snapshot(b.build())).toEqual(snapshot(buildTable([iris({ 'seldon.io/ambassador-header': 'x-region:eu' })], o)));
    });
  });

  it('snapshots share structure (layered maps) yet stay immutable, across compactions', () => {
    const dep = (i: number, rev: number): SeldonDeployment => ({
      metadata: { name: `m${i}`, namespace: `ns${i % 7}` },
      spec: { annotations: { 'seldon.io/rest-timeout': String(1000 + rev) }, predictors: [{ name: 'main' }, { name: 'canary', traffic: rev % 50 }] },
    });
    const o = DEFAULT_COMPILE_OPTIONS;
    const b = new TableBuilder(o);
    const current = new Map<string, SeldonDeployment>();
    for (let i = 0; i < 300; i++) {
      b.upsert(dep(i, 0));
      current.set(`ns${i % 7}/m${i}`, dep(i, 0));
    }
    const first = b.build();
    const firstSnap = snapshot(first);
    // Enough single edits and removals to fold the layers into a new base several times.
    for (let u = 1; u <= 400; u++) {
      const i = (u * 37) % 300;
      if (u % 9 === 0) {
        b.remove(`ns${i % 7}/m${i}`);
        current.delete(`ns${i % 7}/m${i}`);
      } else {
        b.upsert(dep(i, u));
        current.set(`ns${i % 7}/m${i}`, dep(i, u));
      }
      const t = b.build();
      if (u % 50 === 0) checkEqual(t, current, o);
    }
    expect(snapshot(first)).toEqual(firstSnap);
    expect(first.restByPrefix.get('/seldon/ns0/m0/')?.[0]?.members[0]?.backend.timeoutMs).toBe(1000);
  });

  it('the snapshot sees differences (guards against a vacuous comparison)', () => {
    const d = (traffic: number): SeldonDeployment => ({
      metadata: { name: 'iris', namespace: 'a' },
      spec: { predictors: [{ name: 'main' }, { name: 'canary', traffic }] },
    });
    const o = DEFAULT_COMPILE_OPTIONS;
    expect(snapshot(buildTable([d(10)], o))).toEqual(snapshot(buildTable([d(10)], o)));
    expect(snapshot(buildTable([d(10)], o))).not.toEqual(snapshot(buildTable([d(20)], o)));
    // Index-only difference: same JSON listing, different index placement is still caught.
    const t = buildTable([d(10)], o);
    const tampered: RouteTable = {
      generation: t.generation,
      options: t.options,
      restByPrefix: new Map(),
      restOddPrefixLengths: t.restOddPrefixLengths,
      restPrefixDepths: t.restPrefixDepths,
      restRegex: t.restRegex,
      grpcByIdentity: t.grpcByIdentity,
      grpcNamespaces: t.grpcNamespaces,
      grpcByPrefix: t.grpcByPrefix,
      grpcOddPrefixLengths: t.grpcOddPrefixLengths,
      grpcRegex: t.grpcRegex,
      groups: t.groups,
      deployments: t.deployments,
      oauthClients: t.oauthClients,
      ownRoutes: t.ownRoutes,
      steering: t.steering,
    };
    expect(snapshot(tampered).json).toEqual(snapshot(t).json);
    expect(snapshot(tampered)).not.toEqual(snapshot(t));
  });
});
