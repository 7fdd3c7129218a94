/**
 * The pure side of OAuth and rate limits (routing/): the client registry compiled from
 * `spec.oauth_key`/`oauth_secret` (collisions, single-namespace bare ids, revocation inputs),
 * `seldon.io/gateway-auth` and `seldon.io/gateway-rate-limit` compiled into backend gates, a
 * deployment's own routes and `matchDeployment`, and the path hygiene `match` applies first.
 */
import { describe, expect, it } from 'vitest';
import { PATH_BACKSLASH, PATH_DOT_SEGMENT, PATH_FRAGMENT, PATH_MERGE_SLASHES, PATH_OK, checkPath, match, matchDeployment } from '../../../routing/table/match.js';
import { randomPicker, seededRandom } from '../../../routing/table/pick.js';
import { buildTable, TableBuilder } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type CompileOptions, type Decision, type RouteRequest, type Routed } from '../../../routing/types.js';
import type { PredictorSpec, SeldonDeployment } from '../../../routing/seldon/deployment.js';

const opts = (o: Partial<CompileOptions> = {}): CompileOptions => ({ ...DEFAULT_COMPILE_OPTIONS, ...o });

function sdep(name: string, ns: string, spec: Partial<SeldonDeployment['spec']> = {}, annotations?: Record<string, string>): SeldonDeployment {
  return { metadata: { name, namespace: ns }, spec: { predictors: [{ name: 'main' }], ...spec, ...(annotations ? { annotations } : {}) } };
}

const rest = (path: string, headers: Record<string, string> = {}): RouteRequest => ({ kind: 'rest', method: 'POST', path, host: 'gw', header: (n) => headers[n] });
const grpcReq = (headers: Record<string, string> = {}, path = '/seldon.protos.Seldon/Predict'): RouteRequest => ({ kind: 'grpc', method: 'POST', path, host: 'gw', header: (n) => headers[n] });
const picker = () => randomPicker(seededRandom(3));
const ok = (d: Decision): Routed => {
  if (!d.ok) throw new Error(`not routed: ${d.status} ${d.info}`);
  return d;
};

describe('OAuth client registry', () => {
  it('registers <oauth_key><namespace>, plus the bare key in single-namespace mode; never for skipped deployments', () => {
    const t = buildTable(
      [sdep('iris', 'models', { oauth_key: 'key', oauth_secret: 's' }), sdep('blue', 'models', { oauth_key: 'b', oauth_secret: 's' }, { 'seldon.io/ambassador-id': 'blue' })],
      opts(),
    );
    expect([...t.oauthClients.keys()]).toEqual(['keymodels']);
    expect(t.oauthClients.get('keymodels')).toEqual({ clientId: 'keymodels', namespace: 'models', deployment: 'iris', secret: 's' });
    expect(t.deployments.get('models/iris')!.state).toBe('accepted');
    const single = buildTable(
      [sdep('iris', 'models', { oauth_key: 'key', oauth_secret: 's' }), sdep('x', 'elsewhere', { oauth_key: 'k2', oauth_secret: 's' })],
      opts({ singleNamespace: true, namespace: 'models' }),
    );
    expect([...single.oauthClients.keys()].sort()).toEqual(['key', 'keymodels']);
  });

  it('a client_id two deployments claim goes to neither; both degraded; it returns when one leaves', () => {
    const one = sdep('one', 'x', { oauth_key: 'ab', oauth_secret: 's1' });
    const two = sdep('two', 'bx', { oauth_key: 'a', oauth_secret: 's2' });
    const b = new TableBuilder(opts());
    b.upsert(one);
    expect(b.build().oauthClients.get('abx')?.deployment).toBe('one');
    b.upsert(two);
    const t = b.build();
    expect(t.oauthClients.has('abx')).toBe(false);
    for (const k of ['x/one', 'bx/two']) {
      expect(t.deployments.get(k)!.state).toBe('degraded');
      expect(t.deployments.get(k)!.reasons.join()).toMatch(/OAuth client_id "abx" is also claimed by (bx\/two|x\/one): neither gets it/);
    }
    b.remove('bx/two');
    const after = b.build();
    expect(after.oauthClients.get('abx')?.deployment).toBe('one');
    expect(after.deployments.get('x/one')!.state).toBe('accepted');
  });

  it('the registry map is shared while no registration changes (cheap revocation diffs)', () => {
    const b = new TableBuilder(opts());
    b.upsert(sdep('iris', 'models', { oauth_key: 'k', oauth_secret: 's' }));
    const t1 = b.build();
    b.upsert(sdep('other', 'models'));
    expect(b.build().oauthClients).toBe(t1.oauthClients);
  });

  it.each([
    [{ oauth_key: 'k' }, 'spec.oauth_key is set without spec.oauth_secret'],
    [{ oauth_secret: 's' }, 'spec.oauth_secret is set without spec.oauth_key'],
    [{ oauth_key: 7 as unknown as string, oauth_secret: 's' }, 'must be strings'],
  ])('%j: no client, degraded with the reason', (spec, reason) => {
    const t = buildTable([sdep('iris', 'models', spec)], opts());
    expect(t.oauthClients.size).toBe(0);
    expect(t.deployments.get('models/iris')!.state).toBe('degraded');
    expect(t.deployments.get('models/iris')!.reasons.join()).toContain(reason);
  });

  it('a rejected deployment keeps its client (credentials do not depend on routes)', () => {
    const t = buildTable([sdep('iris', 'models', { oauth_key: 'k', oauth_secret: 's' }, { 'seldon.io/ambassador-header': 'a:b:c' })], opts());
    expect(t.deployments.get('models/iris')!.state).toBe('rejected');
    expect(t.oauthClients.has('kmodels')).toBe(true);
    expect(t.ownRoutes.has('models/iris')).toBe(false);
  });
});

describe('gates: seldon.io/gateway-auth and seldon.io/gateway-rate-limit', () => {
  it('no annotation: gate null on every backend (the proxies check nothing else)', () => {
    const t = buildTable([sdep('iris', 'models', { predictors: [{ name: 'main', explainer: { type: 'AnchorTabular' } }] })], opts());
    for (const g of t.groups) for (const m of g.members) expect(m.backend.gate).toBeNull();
  });

  it('oauth on REST, gRPC and explainer routes; a deployment limit shared by all; a predictor limit on its own', () => {
    const t = buildTable(
      [
        sdep(
          'iris',
          'models',
          {
            oauth_key: 'k',
            oauth_secret: 's',
            predictors: [{ name: 'main', explainer: { type: 'AnchorTabular' } }, { name: 'canary', traffic: 10, annotations: { 'seldon.io/gateway-rate-limit': '5/m' } } as PredictorSpec],
          },
          { 'seldon.io/gateway-auth': 'OAuth', 'seldon.io/gateway-rate-limit': '100/s' },
        ),
      ],
      opts(),
    );
    const main = ok(match(t, rest('/seldon/models/iris/x'), { pick: (g) => g.members.find((m) => m.backend.id.endsWith('main'))!.backend, mirror: () => false, steer: (g) => g }));
    expect(main.backend.gate).toEqual({
      auth: { namespace: 'models', deployment: 'iris' },
      rateLimits: [{ key: 'models/iris', count: 100, periodMs: 1000, text: '100/s' }],
      external: false,
      jwt: null,
    });
    const canary = ok(match(t, rest('/seldon/models/iris/x'), { pick: (g) => g.members.find((m) => m.backend.id.endsWith('canary'))!.backend, mirror: () => false, steer: (g) => g }));
    expect(canary.backend.gate!.rateLimits.map((l) => l.key)).toEqual(['models/iris', 'models/iris/canary']);
    expect(ok(match(t, grpcReq({ seldon: 'iris', namespace: 'models' }), picker())).backend.gate!.auth).not.toBeNull();
    expect(ok(match(t, rest('/seldon/models/iris-explainer/main/x'), picker())).backend.gate!.auth).not.toBeNull();
    expect(t.deployments.get('models/iris')!.state).toBe('accepted');
  });

  it('a custom-config deployment gets its gates on its Mappings', () => {
    const t = buildTable(
      [
        sdep(
          'c',
          'models',
          {},
          { 'seldon.io/ambassador-config': 'apiVersion: ambassador/v1\nkind: Mapping\nname: m\nprefix: /seldon/models/custom/\nservice: c:80', 'seldon.io/gateway-rate-limit': '10/m' },
        ),
      ],
      opts(),
    );
    expect(ok(match(t, rest('/seldon/models/custom/x'), picker())).backend.gate!.rateLimits[0]!.key).toBe('models/c');
  });

  it('an unknown auth value rejects the deployment (fail closed); a bad limit degrades it (no limit)', () => {
    const bad = buildTable([sdep('iris', 'models', {}, { 'seldon.io/gateway-auth': 'oath' })], opts());
    expect(bad.deployments.get('models/iris')!.state).toBe('rejected');
    expect(bad.deployments.get('models/iris')!.reasons[0]).toContain('seldon.io/gateway-auth "oath"');
    expect(match(bad, rest('/seldon/models/iris/x'), picker()).ok).toBe(false);
    const limit = buildTable([sdep('iris', 'models', {}, { 'seldon.io/gateway-rate-limit': 'lots' })], opts());
    expect(limit.deployments.get('models/iris')!.state).toBe('degraded');
    expect(ok(match(limit, rest('/seldon/models/iris/x'), picker())).backend.gate).toBeNull();
    const none = buildTable([sdep('iris', 'models', {}, { 'seldon.io/gateway-auth': 'none' })], opts());
    expect(ok(match(none, rest('/seldon/models/iris/x'), picker())).backend.gate).toBeNull();
  });

  it('oauth without credentials: served, degraded, every request will be refused', () => {
    const t = buildTable([sdep('iris', 'models', {}, { 'seldon.io/gateway-auth': 'oauth' })], opts());
    expect(t.deployments.get('models/iris')!.state).toBe('degraded');
    expect(t.deployments.get('models/iris')!.reasons.join()).toContain('every request is refused (401)');
    expect(ok(match(t, rest('/seldon/models/iris/x'), picker())).backend.gate!.auth).toEqual({ namespace: 'models', deployment: 'iris' });
  });
});

describe('matchDeployment: the OAuth front end routes a deployment through its own routes', () => {
  const t = buildTable(
    [
      sdep('fraud', 'models', {
        oauth_key: 'k',
        oauth_secret: 's',
        predictors: [{ name: 'main' }, { name: 'v8', traffic: 20 }, { name: 'audit', shadow: true }],
      }),
      // Same external name and a header constraint: part of /seldon/models/fraud/, never of fraud's own routes.
      sdep('fraud-eu', 'models', {}, { 'seldon.io/ambassador-service-name': 'fraud', 'seldon.io/ambassador-weight': '50' }),
      sdep('headers', 'models', { oauth_key: 'h', oauth_secret: 's' }, { 'seldon.io/ambassador-header': 'x-region:eu' }),
      sdep(
        'custom',
        'models',
        { oauth_key: 'c', oauth_secret: 's' },
        { 'seldon.io/ambassador-config': 'apiVersion: ambassador/v1\nkind: Mapping\nname: m\nprefix: /seldon/models/custom/\nservice: c:80' },
      ),
    ],
    opts(),
  );

  it('its predictors and weights only, its shadows mirrored, the path unchanged', () => {
    const counts: Record<string, number> = {};
    const p = picker();
    for (let i = 0; i < 10_000; i++) {
      const d = ok(matchDeployment(t, 'models/fraud', rest('/api/v0.1/predictions?x=1'), p));
      counts[d.backend.id] = (counts[d.backend.id] ?? 0) + 1;
      expect(d.upstreamPath).toBe('/api/v0.1/predictions?x=1');
      expect(d.mirrors.map((m) => m.backend.id)).toEqual(['models/fraud/audit']);
    }
    expect(Object.keys(counts).sort()).toEqual(['models/fraud/main', 'models/fraud/v8']);
    expect(Math.abs(counts['models/fraud/v8']! / 100 - 20)).toBeLessThanOrEqual(1.5);
    const g = ok(matchDeployment(t, 'models/fraud', grpcReq(), picker()));
    expect(g.backend.upstream.port).toBe(5001);
    expect(g.upstreamPath).toBe('/seldon.protos.Seldon/Predict');
  });

  it('header constraints do not apply', () => {
    expect(ok(matchDeployment(t, 'models/headers', rest('/api/v0.1/predictions'), picker())).backend.id).toBe('models/headers/main');
    expect(match(t, rest('/seldon/models/headers/api'), picker()).ok).toBe(false);
  });

  it('404 for a deployment without own routes (gone, custom config); 400 for dot segments', () => {
    const gone = matchDeployment(t, 'models/nope', rest('/api/v0.1/predictions'), picker());
    expect(gone).toMatchObject({ ok: false, status: 404, reason: 'NO_ROUTE' });
    expect(!gone.ok && gone.info).toContain('models/nope no longer exists');
    const custom = matchDeployment(t, 'models/custom', rest('/api/v0.1/predictions'), picker());
    expect(!custom.ok && custom.info).toContain('has no generated REST route');
    expect(matchDeployment(t, 'models/fraud', rest('/api/v0.1/../x'), picker())).toMatchObject({ ok: false, status: 400 });
  });
});

describe('checkPath: the path match decides on', () => {
  it.each([
    ['/seldon/ns/iris/api/v1.0/predictions', PATH_OK],
    ['/seldon/ns/iris/a..b/...', PATH_OK],
    ['/seldon/ns/iris/%2e%2ex/%2e%2e%2e', PATH_OK],
    ['/seldon/ns/iris/a%2Fb', PATH_OK],
    ['/seldon/ns/iris/%', PATH_OK],
    ['/seldon/ns/iris/%2', PATH_OK],
    ['/seldon/ns/iris//x', PATH_MERGE_SLASHES],
    ['//seldon/ns/iris/', PATH_MERGE_SLASHES],
    ['/seldon/ns/iris/..', PATH_DOT_SEGMENT],
    ['/seldon/ns/iris/.', PATH_DOT_SEGMENT],
    ['/seldon/ns/iris/%2E%2e/x', PATH_DOT_SEGMENT],
    ['/seldon/ns/iris/..%2Fx', PATH_DOT_SEGMENT],
    ['/seldon/ns/iris/x%2f..', PATH_DOT_SEGMENT],
    ['/seldon/ns/iris/%5c.%5cx', PATH_DOT_SEGMENT],
    ['/seldon/ns/iris%2F.%2Fx', PATH_DOT_SEGMENT],
    ['/seldon/ns/iris/a\\b', PATH_BACKSLASH],
    ['/seldon/ns/iris/a#b', PATH_FRAGMENT],
    ['/seldon/ns/iris/#', PATH_FRAGMENT],
  ])('%s → %i', (path, want) => {
    expect(checkPath(path)).toBe(want);
  });

  it('runs of / are kept as sent by default (Envoy): //prefix/ matches no /prefix/ route; with merge_slashes they are merged', () => {
    const kept = buildTable([sdep('iris', 'ns')], opts());
    expect(match(kept, rest('/seldon//ns/iris/api'), picker())).toMatchObject({ ok: false, status: 404 });
    expect(match(kept, rest('//seldon/ns/iris/api'), picker())).toMatchObject({ ok: false, status: 404 });
    const k = ok(match(kept, rest('/seldon/ns/iris//api//x?q=//a'), picker()));
    expect([k.upstreamPath, k.originalPath]).toEqual(['//api//x?q=//a', undefined]);
    const t = buildTable([sdep('iris', 'ns')], { ...opts(), mergeSlashes: true });
    const d = ok(match(t, rest('/seldon//ns///iris//api//x?q=//a'), picker()));
    expect([d.backend.id, d.upstreamPath, d.originalPath]).toEqual(['ns/iris/main', '/api/x?q=//a', '/seldon/ns/iris/api/x?q=//a']);
    expect(ok(match(t, grpcReq({ seldon: 'iris', namespace: 'ns' }, '/seldon.protos.Seldon//Predict'), picker())).upstreamPath).toBe('/seldon.protos.Seldon//Predict');
    expect(match(t, rest('/seldon/ns/iris/a\\b'), picker())).toMatchObject({ ok: false, status: 400, reason: 'BAD_REQUEST' });
  });
});
