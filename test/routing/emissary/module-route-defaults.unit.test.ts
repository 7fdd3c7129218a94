/**
 * The ambassador Module's route defaults in the routing core (routing/emissary/mapping-policy.ts `withRouteDefaults`,
 * routing/compile/deployment.ts, routing/compile/custom.ts): `error_response_overrides`, `load_balancer` and
 * `circuit_breakers` are every route's that sets none of its own, Seldon's generated routes (REST, gRPC,
 * explainers) and custom Mappings alike; a Mapping's own replace them whole, `bypass_error_response_overrides`
 * turns the overrides off, Seldon's breaker annotations are the route's own; without a Module a route pays
 * nothing (its `mapping` stays null).
 */
import { describe, expect, it } from 'vitest';
import { headerGetter, match } from '../../../routing/table/match.js';
import { errorOverrides, loadBalancerOf, type ErrorOverride, type LoadBalancer } from '../../../routing/emissary/mapping-policy.js';
import { randomPicker, seededRandom } from '../../../routing/table/pick.js';
import { buildTable } from '../../../routing/table/builder.js';
import { grpcMapping } from '../../helpers/mappings.js';
import { DEFAULT_BREAKER, DEFAULT_COMPILE_OPTIONS, type Backend, type BreakerLimits, type CompileOptions, type RouteTable } from '../../../routing/types.js';
import type { PredictorSpec, SeldonDeployment } from '../../../routing/seldon/deployment.js';

const pred = (name: string, extra: Partial<PredictorSpec> = {}): PredictorSpec => ({ name, graph: { name: 'model', type: 'MODEL' }, ...extra });
const sdep = (name: string, annotations: Record<string, string> = {}, predictors: PredictorSpec[] = [pred('main')]): SeldonDeployment => ({
  apiVersion: 'machinelearning.seldon.io/v1',
  kind: 'SeldonDeployment',
  metadata: { name, namespace: 'ns' },
  spec: { annotations, predictors },
});

const MODULE_OVERRIDES = errorOverrides([{ on_status_code: 503, body: { text_format: 'module 503' } }]) as ErrorOverride[];
const MODULE_LB = loadBalancerOf({ policy: 'ring_hash', header: 'x-user' }) as LoadBalancer;
const MODULE_BREAKER: BreakerLimits = { ...DEFAULT_BREAKER, maxConnections: 7, maxRequests: 9 };
const withModule: CompileOptions = { ...DEFAULT_COMPILE_OPTIONS, defaultErrorOverrides: MODULE_OVERRIDES, defaultLoadBalancer: MODULE_LB, defaultBreaker: MODULE_BREAKER };

const MAPPINGS = [
  'apiVersion: getambassador.io/v2\nkind: Mapping\nname: plain\nprefix: /seldon/ns/custom/plain/\nservice: svc.ns:8000',
  'apiVersion: getambassador.io/v2\nkind: Mapping\nname: own\nprefix: /seldon/ns/custom/own/\nservice: svc.ns:8000\nload_balancer:\n  policy: round_robin\ncircuit_breakers:\n  - max_connections: 3\nerror_response_overrides:\n  - on_status_code: 404\n    body:\n      text_format: mine',
  'apiVersion: getambassador.io/v2\nkind: Mapping\nname: bypass\nprefix: /seldon/ns/custom/bypass/\nservice: svc.ns:8000\nbypass_error_response_overrides: true',
  grpcMapping('rpc', 'ns', 'svc.ns:5001'),
].join('\n---\n');

function table(opts: CompileOptions): RouteTable {
  const deployments = [
    sdep('iris', {}, [pred('main', { explainer: { type: 'AnchorTabular' } })]),
    sdep('limited', { 'seldon.io/ambassador-circuit-breakers-max-requests': '4' }),
    sdep('custom', { 'seldon.io/ambassador-config': MAPPINGS }),
  ];
  return buildTable(deployments, opts);
}

function at(t: RouteTable, path: string, kind: 'rest' | 'grpc' = 'rest', md: Record<string, string> = {}): Backend {
  const d = match(t, { kind, method: 'POST', path, host: 'gw', header: headerGetter(md) }, randomPicker(seededRandom(1)));
  if (!d.ok) throw new Error(`no route for ${path}: ${d.info}`);
  return d.backend;
}

describe("the Module's route defaults", () => {
  const t = table(withModule);
  const GRPC = '/seldon.protos.Seldon/Predict';

  it("Seldon's generated routes take all three: REST, gRPC and the explainer", () => {
    for (const b of [at(t, '/seldon/ns/iris/api/v1.0/predictions'), at(t, GRPC, 'grpc', { seldon: 'iris', namespace: 'ns' }), at(t, '/seldon/ns/iris-explainer/main/api/v1.0/explain')]) {
      expect(b.mapping?.errorOverrides).toBe(MODULE_OVERRIDES);
      expect(b.mapping?.loadBalancer).toBe(MODULE_LB);
      expect(b.breaker).toBe(MODULE_BREAKER);
      // Nothing else of a Mapping's policy comes with them.
      expect({ ...b.mapping, errorOverrides: [], loadBalancer: null }).toEqual({ ...at(t, '/seldon/ns/custom/plain/').mapping, errorOverrides: [], loadBalancer: null });
    }
  });

  it("Seldon's breaker annotations are the route's own: they replace the Module's whole (unset fields at Envoy's defaults)", () => {
    expect(at(t, '/seldon/ns/limited/api/v1.0/predictions').breaker).toEqual({ ...DEFAULT_BREAKER, maxRequests: 4 });
  });

  it('a Mapping without its own takes them; one with its own keeps its own, whole', () => {
    const plain = at(t, '/seldon/ns/custom/plain/');
    expect([plain.mapping?.errorOverrides, plain.mapping?.loadBalancer, plain.breaker]).toEqual([MODULE_OVERRIDES, MODULE_LB, MODULE_BREAKER]);
    const own = at(t, '/seldon/ns/custom/own/');
    expect(own.mapping?.errorOverrides.map((o) => o.status)).toEqual([404]);
    expect(own.mapping?.loadBalancer).toEqual({ policy: 'round_robin' });
    expect(own.breaker).toEqual({ ...DEFAULT_BREAKER, maxConnections: 3 });
    const rpc = at(t, GRPC, 'grpc', { seldon: 'rpc', namespace: 'ns' });
    expect([rpc.mapping?.loadBalancer, rpc.breaker]).toEqual([MODULE_LB, MODULE_BREAKER]);
  });

  it('bypass_error_response_overrides: no override, the Module’s balancer still', () => {
    const b = at(t, '/seldon/ns/custom/bypass/');
    expect(b.mapping?.errorOverrides).toEqual([]);
    expect(b.mapping?.bypassErrorOverrides).toBe(true);
    expect(b.mapping?.loadBalancer).toBe(MODULE_LB);
  });

  it('without a Module: generated routes have no policy (nothing to pay) and the default breaker; Mappings as they wrote them', () => {
    const plain = table(DEFAULT_COMPILE_OPTIONS);
    const b = at(plain, '/seldon/ns/iris/api/v1.0/predictions');
    expect(b.mapping).toBeNull();
    expect(b.breaker).toBe(DEFAULT_BREAKER);
    expect(at(plain, '/seldon/ns/custom/plain/').mapping).toBeNull();
    expect(at(plain, '/seldon/ns/custom/plain/').breaker).toBe(DEFAULT_BREAKER);
  });
});
