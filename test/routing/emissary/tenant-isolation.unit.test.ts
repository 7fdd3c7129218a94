/**
 * Tenant scope in the routing core (docs/routing.md#tenant-scope): with the default
 * customConfigScope "namespace", a SeldonDeployment's custom Mappings claim only prefixes under its
 * own /seldon/<namespace>/, gRPC for its own namespace and Services of its own namespace; "cluster"
 * restores Ambassador's global behaviour. Whatever route reaches a Service of an OAuth-gated
 * deployment applies that deployment's gate, in a full build and incrementally.
 */
import { describe, expect, it } from 'vitest';
import { GRPC_PATH_SOURCE } from '../../../routing/compile/deployment.js';
import { headerGetter, match, matchDeployment } from '../../../routing/table/match.js';
import { randomPicker, seededRandom } from '../../../routing/table/pick.js';
import { buildTable, TableBuilder } from '../../../routing/table/builder.js';
import { CONFLICTED_AUTH_DEPLOYMENT, DEFAULT_COMPILE_OPTIONS, type CompileOptions, type Decision, type RouteRequest, type RouteTable, type Routed } from '../../../routing/types.js';
import type { PredictorSpec, SeldonDeployment } from '../../../routing/seldon/deployment.js';

const PRED = '/api/v1.0/predictions';
const opts = (o: Partial<CompileOptions> = {}): CompileOptions => ({ ...DEFAULT_COMPILE_OPTIONS, ...o });
const pred = (name: string, extra: Partial<PredictorSpec> = {}): PredictorSpec => ({ name, graph: { name: 'model', type: 'MODEL' }, ...extra });
const mapping = (body: string): string => `apiVersion: ambassador/v1\nkind: Mapping\n${body}`;

interface Init {
  annotations?: Record<string, string>;
  predictors?: PredictorSpec[];
  oauth?: [string, string];
}

function sdep(ns: string, name: string, init: Init = {}): SeldonDeployment {
  return {
    apiVersion: 'machinelearning.seldon.io/v1',
    kind: 'SeldonDeployment',
    metadata: { name, namespace: ns },
    spec: {
      ...(init.annotations ? { annotations: init.annotations } : {}),
      predictors: init.predictors ?? [pred('main')],
      ...(init.oauth ? { oauth_key: init.oauth[0], oauth_secret: init.oauth[1] } : {}),
    },
  };
}

const custom = (ns: string, name: string, ...docs: string[]): SeldonDeployment => sdep(ns, name, { annotations: { 'seldon.io/ambassador-config': docs.join('\n---\n') } });
/** beta in team-b: OAuth-gated (docs/routing.md#oauth-front-end). */
const beta = (gated = true): SeldonDeployment => sdep('team-b', 'beta', { ...(gated ? { annotations: { 'seldon.io/gateway-auth': 'oauth' } } : {}), oauth: ['bk', 'bs'] });

const rest = (path: string, headers: Record<string, string> = {}): RouteRequest => ({ kind: 'rest', method: 'POST', path, host: 'gw', header: headerGetter(headers) });
const grpc = (md: Record<string, string>, path = '/seldon.protos.Seldon/Predict'): RouteRequest => ({ kind: 'grpc', method: 'POST', path, host: 'gw', header: headerGetter(md) });
const route = (t: RouteTable, r: RouteRequest): Decision => match(t, r, randomPicker(seededRandom(3)));
function routed(t: RouteTable, r: RouteRequest): Routed {
  const d = route(t, r);
  if (!d.ok) throw new Error(`expected a route for ${r.path}: ${d.info}`);
  return d;
}
const reasons = (t: RouteTable, key: string): string => t.deployments.get(key)!.reasons.join('\n');
const state = (t: RouteTable, key: string): string => t.deployments.get(key)!.state;

describe('tenant isolation: custom Mappings stay in their namespace (default scope)', () => {
  it("a REST prefix under another namespace's /seldon/<ns>/ is dropped; beta keeps its traffic", () => {
    const thief = custom('team-x', 'thief', mapping('name: steal\nprefix: /seldon/team-b/beta/api/\nservice: thief-main'), mapping('name: mine\nprefix: /seldon/team-x/thief/\nservice: thief-main'));
    const t = buildTable([beta(false), thief], opts());
    expect(routed(t, rest(`/seldon/team-b/beta${PRED}`)).backend.id).toBe('team-b/beta/main');
    expect(routed(t, rest('/seldon/team-x/thief/x')).backend.id).toBe('team-x/thief/mine');
    expect(state(t, 'team-x/thief')).toBe('degraded');
    expect(reasons(t, 'team-x/thief')).toMatch(/Mapping "steal" dropped: prefix "\/seldon\/team-b\/beta\/api\/" is not under \/seldon\/team-x\//);
  });

  it.each([
    ['outside /seldon/', 'prefix: /custom/'],
    ['the OAuth front end', 'prefix: /oauth/'],
    ['a namespace sharing the first letters', 'prefix: /seldon/team-x'],
    ['the root', 'prefix: /'],
    ['a regex outside', 'prefix: "/seldon/team-b/.*"\nprefix_regex: true'],
  ])('%s: dropped, and a deployment with no Mapping left is rejected', (_what, prefix) => {
    const t = buildTable([custom('team-x', 'x', mapping(`name: m\n${prefix}\nservice: s`))], opts());
    expect(state(t, 'team-x/x')).toBe('rejected');
    expect(reasons(t, 'team-x/x')).toMatch(/Mapping "m" dropped: prefix.* is not under \/seldon\/team-x\//);
    expect(t.groups).toHaveLength(0);
  });

  it('a regex that starts in its namespace cannot escape it with a top-level "|"', () => {
    const t = buildTable([beta(false), custom('team-x', 'x', mapping('name: rx\nprefix: "/seldon/team-x/a/.*|/seldon/team-b/beta/.*"\nprefix_regex: true\nservice: s'))], opts());
    expect(state(t, 'team-x/x')).toBe('accepted');
    expect(routed(t, rest('/seldon/team-x/a/b')).backend.id).toBe('team-x/x/rx');
    expect(routed(t, rest(`/seldon/team-b/beta${PRED}`)).backend.id).toBe('team-b/beta/main');
    // With cluster scope the same regex is Ambassador's: it matches both (and wins on length).
    const c = buildTable(
      [beta(false), custom('team-x', 'x', mapping('name: rx\nprefix: "/seldon/team-x/a/.*|/seldon/team-b/beta/.*"\nprefix_regex: true\nservice: s'))],
      opts({ customConfigScope: 'cluster' }),
    );
    expect(routed(c, rest(`/seldon/team-b/beta${PRED}`)).backend.id).toBe('team-x/x/rx');
  });

  it("a gRPC Mapping matching another namespace's calls is dropped; beta keeps its calls", () => {
    const copy = (ns: string): string =>
      mapping(`name: g-${ns}\ngrpc: true\nprefix: "${GRPC_PATH_SOURCE}"\nprefix_regex: true\nrewrite: ""\nheaders:\n  seldon: beta\n  namespace: ${ns}\nservice: thief-main:5001\nweight: 100`);
    const t = buildTable([beta(false), custom('team-x', 'thief', copy('team-b'), copy('team-x'))], opts());
    for (let i = 0; i < 20; i++) expect(routed(t, grpc({ seldon: 'beta', namespace: 'team-b' })).backend.id).toBe('team-b/beta/main');
    expect(routed(t, grpc({ seldon: 'beta', namespace: 'team-x' })).backend.id).toBe('team-x/thief/g-team-x');
    expect(reasons(t, 'team-x/thief')).toMatch(/Mapping "g-team-b" dropped: gRPC header namespace "team-b" is not its own namespace "team-x"/);
    // Cluster scope: it joins nothing of beta's (groups never span namespaces) but competes with it.
    const c = buildTable([beta(false), custom('team-x', 'thief', copy('team-b'))], opts({ customConfigScope: 'cluster' }));
    expect(state(c, 'team-x/thief')).toBe('accepted');
  });

  it('a gRPC Mapping without an exact namespace header is dropped cluster-wide, kept in single-namespace mode', () => {
    const g = mapping('name: g\ngrpc: true\nprefix: /seldon.protos.Seldon/\nrewrite: ""\nservice: g:5001');
    const t = buildTable([custom('team-x', 'x', g)], opts());
    expect(state(t, 'team-x/x')).toBe('rejected');
    expect(reasons(t, 'team-x/x')).toMatch(/needs the header namespace: team-x/);
    const single = buildTable([custom('team-x', 'x', g)], opts({ singleNamespace: true, namespace: 'team-x' }));
    expect(routed(single, grpc({})).backend.id).toBe('team-x/x/g');
    const own = buildTable([custom('team-x', 'x', mapping('name: g\ngrpc: true\nprefix: /seldon.protos.Seldon/\nrewrite: ""\nheaders: {namespace: team-x}\nservice: g:5001'))], opts());
    expect(routed(own, grpc({ namespace: 'team-x' })).backend.id).toBe('team-x/x/g');
    expect(route(own, grpc({ namespace: 'team-b' })).ok).toBe(false);
    expect(route(own, grpc({})).ok).toBe(false);
  });

  it.each([
    ['another namespace', 'beta-main.team-b:8000', /is in namespace "team-b", not "team-x"/],
    ['another namespace, FQDN', 'beta-main.team-b.svc.cluster.local:8000', /is in namespace "team-b"/],
    ['another namespace, .svc', 'https://beta-main.team-b.svc', /is in namespace "team-b"/],
    ['an IP address', '10.96.0.10:8000', /is not a Service of namespace "team-x"/],
    ['an outside name', 'api.example.com:443', /is not a Service of namespace "team-x"/],
  ])('service: %s is dropped', (_what, service, reason) => {
    const t = buildTable([beta(), custom('team-x', 'x', mapping(`name: m\nprefix: /seldon/team-x/x/\nservice: ${service}`))], opts());
    expect(state(t, 'team-x/x')).toBe('rejected');
    expect(reasons(t, 'team-x/x')).toMatch(reason);
  });

  it.each(['svc', 'svc:8000', 'svc.team-x:8000', 'svc.team-x.svc.cluster.local:8000', 'https://SVC.Team-X'])('service %j in its own namespace is served', (service) => {
    const t = buildTable([custom('team-x', 'x', mapping(`name: m\nprefix: /seldon/team-x/x/\nservice: ${service}`))], opts());
    expect(state(t, 'team-x/x')).toBe('accepted');
  });

  it('single-namespace mode: un-namespaced /seldon/ prefixes are allowed, the rest of the URL space is not', () => {
    const o = opts({ singleNamespace: true, namespace: 'models' });
    const t = buildTable(
      [
        custom(
          'models',
          'x',
          mapping('name: short\nprefix: /seldon/iris/\nservice: s'),
          mapping('name: long\nprefix: /seldon/models/iris/\nservice: s'),
          mapping('name: api\nprefix: /api/v0.1/\nservice: s'),
        ),
      ],
      o,
    );
    expect(routed(t, rest('/seldon/iris/x')).backend.id).toBe('models/x/short');
    expect(routed(t, rest('/seldon/models/iris/x')).backend.id).toBe('models/x/long');
    expect(route(t, rest('/api/v0.1/predictions')).ok).toBe(false);
    expect(reasons(t, 'models/x')).toMatch(/Mapping "api" dropped: prefix "\/api\/v0.1\/" is not under \/seldon\//);
  });

  it('seldon.io/svc-name cannot point into another namespace (a DNS-1035 label has no dot)', () => {
    const t = buildTable([sdep('team-x', 'x', { predictors: [pred('main', { annotations: { 'seldon.io/svc-name': 'beta-main.team-b' } })] })], opts());
    expect(state(t, 'team-x/x')).toBe('rejected');
  });
});

describe("tenant isolation: a route to a gated deployment's Service applies its gate", () => {
  const gateOf = (d: Routed): string => (d.backend.gate?.auth ? `${d.backend.gate.auth.namespace}/${d.backend.gate.auth.deployment}` : 'open');

  it.each(['beta-main.team-b:8000', 'beta-main.team-b.svc.cluster.local:8000', 'BETA-MAIN.team-b:8000'])("a Mapping (cluster scope) with service %j needs beta's token", (service) => {
    const t = buildTable([beta(), custom('team-x', 'x', mapping(`name: m\nprefix: /x/\nservice: ${service}`))], opts({ customConfigScope: 'cluster' }));
    expect(gateOf(routed(t, rest('/x/')))).toBe('team-b/beta');
    expect(reasons(t, 'team-x/x')).toMatch(/Service team-b\/beta-main belongs to OAuth-gated deployment team-b\/beta/);
  });

  it("svc-name of a gated deployment's Service, in its namespace: that route needs beta's token; beta's own front end is unchanged", () => {
    const sq = sdep('team-b', 'squat', { predictors: [pred('main', { annotations: { 'seldon.io/svc-name': 'beta-main' } })], annotations: { 'seldon.io/ambassador-service-name': 'sq' } });
    const t = buildTable([beta(), sq], opts());
    expect(gateOf(routed(t, rest(`/seldon/team-b/sq${PRED}`)))).toBe('team-b/beta');
    expect(gateOf(routed(t, grpc({ seldon: 'sq', namespace: 'team-b' })))).toBe('team-b/beta');
    expect(gateOf(routed(t, rest(`/seldon/team-b/beta${PRED}`)))).toBe('team-b/beta');
    expect(state(t, 'team-b/squat')).toBe('degraded');
  });

  it("a rate limit of the route's own is kept beside the owner's gate", () => {
    const gated = sdep('team-b', 'beta', { annotations: { 'seldon.io/gateway-auth': 'oauth', 'seldon.io/gateway-rate-limit': '5/s' }, oauth: ['bk', 'bs'] });
    const x = sdep('team-x', 'x', { annotations: { 'seldon.io/gateway-rate-limit': '7/m', 'seldon.io/ambassador-config': mapping('name: m\nprefix: /x/\nservice: beta-main.team-b') } });
    const d = routed(buildTable([gated, x], opts({ customConfigScope: 'cluster' })), rest('/x/'));
    expect(gateOf(d)).toBe('team-b/beta');
    expect(d.backend.gate!.rateLimits.map((l) => `${l.key}=${l.text}`).sort()).toEqual(['team-b/beta=5/s', 'team-x/x=7/m']);
  });

  it('a Service two gated deployments claim: every route to it refuses every token (fail closed), and both are told', () => {
    const a = sdep('team-b', 'a', { predictors: [pred('main', { annotations: { 'seldon.io/svc-name': 'shared' } })], annotations: { 'seldon.io/gateway-auth': 'oauth' }, oauth: ['ka', 's'] });
    const b = sdep('team-b', 'b', { predictors: [pred('main', { annotations: { 'seldon.io/svc-name': 'shared' } })], annotations: { 'seldon.io/gateway-auth': 'oauth' }, oauth: ['kb', 's'] });
    const t = buildTable([a, b], opts());
    for (const n of ['a', 'b']) {
      const d = routed(t, rest(`/seldon/team-b/${n}${PRED}`));
      expect(d.backend.gate!.auth!.deployment).toBe(CONFLICTED_AUTH_DEPLOYMENT);
      expect(reasons(t, `team-b/${n}`)).toMatch(/Service team-b\/shared is claimed by several OAuth-gated deployments \(team-b\/a, team-b\/b\)/);
      // The OAuth front end does not reach it with either's token.
      expect(matchDeployment(t, `team-b/${n}`, rest('/api/v0.1/predictions'), randomPicker(seededRandom(1))).ok).toBe(false);
    }
  });

  it("the OAuth front end never reaches another gated deployment's Service with one's own token", () => {
    const x = sdep('team-b', 'x', { predictors: [pred('main', { annotations: { 'seldon.io/svc-name': 'beta-main' } }), pred('own', { traffic: 50 })], oauth: ['kx', 's'] });
    const t = buildTable([beta(), x], opts());
    for (let i = 0; i < 50; i++) {
      const d = matchDeployment(t, 'team-b/x', rest('/api/v0.1/predictions'), randomPicker(seededRandom(i)));
      expect(d.ok && d.backend.id).toBe('team-b/x/own');
    }
  });

  it('a rejected or custom-config gated deployment still owns its Services', () => {
    const rejected = sdep('team-b', 'beta', { annotations: { 'seldon.io/gateway-auth': 'oauth', 'seldon.io/ambassador-header': 'a:b:c' }, oauth: ['bk', 'bs'] });
    const customBeta = sdep('team-b', 'beta', {
      annotations: { 'seldon.io/gateway-auth': 'oauth', 'seldon.io/ambassador-config': mapping('name: m\nprefix: /seldon/team-b/beta/\nservice: beta-main') },
      oauth: ['bk', 'bs'],
    });
    const x = custom('team-x', 'x', mapping('name: m\nprefix: /x/\nservice: beta-main.team-b'));
    for (const b of [rejected, customBeta]) expect(gateOf(routed(buildTable([b, x], opts({ customConfigScope: 'cluster' })), rest('/x/')))).toBe('team-b/beta');
  });

  it('incrementally: the gate follows the owner being added, ungated, re-gated and removed', () => {
    const o = opts({ customConfigScope: 'cluster' });
    const x = custom('team-x', 'x', mapping('name: m\nprefix: /x/\nservice: beta-main.team-b:8000'));
    const b = new TableBuilder(o);
    b.upsert(x);
    expect(gateOf(routed(b.build(), rest('/x/')))).toBe('open');
    b.upsert(beta());
    const gated = b.build();
    expect(gateOf(routed(gated, rest('/x/')))).toBe('team-b/beta');
    expect(gated.deployments.get('team-x/x')!.state).toBe('degraded');
    b.upsert(beta(false));
    expect(gateOf(routed(b.build(), rest('/x/')))).toBe('open');
    b.upsert(beta());
    expect(gateOf(routed(b.build(), rest('/x/')))).toBe('team-b/beta');
    b.remove('team-b/beta');
    const gone = b.build();
    expect(gateOf(routed(gone, rest('/x/')))).toBe('open');
    expect(gone.deployments.get('team-x/x')!.state).toBe('accepted');
  });
});
