/**
 * A SeldonDeployment's `seldon.io/ambassador-config` compiled (docs/routing.md#custom-ambassador-config):
 * its Mappings, as `custom-config.ts` parsed them, kept within the tenant's bounds and made route specs.
 */
import { confined, parseCustomConfig, scopeViolation, type MappingRoute } from '../emissary/custom-config.js';
import { servedHere, untaggedSkipped } from '../emissary/mapping-ids.js';
import { grantsOf } from '../emissary/custom-prefixes.js';
import { corsAnnotation, gateAnnotations, type EffectiveAnnotations, type Findings } from '../seldon/annotations.js';
import { serviceKey, serviceOfHost } from '../seldon/services.js';
import { RegexBudget } from '../values/syntax.js';
import { NO_CLIENTS, makeBackend, report, type CompiledDeployment, type RouteSpec } from './route-spec.js';
import { COMPRESSION_ANNOTATION, compressionAnnotation } from '../compression/config.js';
import type { CompressionPolicy } from '../compression/policy.js';
import { DEFAULT_BREAKER, type CompileOptions, type CorsPolicy, type Gate, type Origin, type Upstream } from '../types.js';
import { withRouteDefaults } from '../emissary/mapping-policy.js';

export function compileCustom(key: string, ns: string, name: string, id: string, text: string, ann: EffectiveAnnotations, opts: CompileOptions, f: Findings): CompiledDeployment {
  const resolution = { gatewayNamespace: opts.namespace, inGatewayNamespace: opts.serviceInGatewayNamespace === true, linkerdDefault: opts.addLinkerdHeaders === true };
  const parsed = parseCustomConfig(text, ns, new RegexBudget(opts.regexMaxSize), opts.tlsContexts, resolution, opts.mappingDefaults);
  if (!parsed.ok) return { key, report: report(ns, name, id, 'rejected', [parsed.error]), routes: [], clients: NO_CLIENTS };
  for (const w of parsed.warnings) f.warn(w);
  const served = parsed.mappings.filter((m) => servedHere(m.ambassadorIds, opts.ambassadorId));
  // Where the deployment's id names this gateway, a Mapping without one of its own is the default gateway's: said, as
  // the team tagged the deployment for this gateway (another gateway's Mappings are skipped without a word).
  const untagged =
    id === opts.ambassadorId && !servedHere(null, opts.ambassadorId) ? parsed.mappings.filter((m) => m.ambassadorIds === null).map((m) => untaggedSkipped(m.name, opts.ambassadorId)) : [];
  if (served.length === 0) {
    return { key, report: report(ns, name, id, 'skipped', [`no Mapping has ambassador-id "${opts.ambassadorId}" (deployment id "${id}")`, ...untagged]), routes: [], clients: NO_CLIENTS };
  }
  for (const u of untagged) f.warn(u);
  if (ann.has('seldon.io/ambassador-header') || ann.has('seldon.io/ambassador-regex-header')) {
    f.warn('header annotations are ignored: seldon.io/ambassador-config replaces the generated routes');
  }
  const gates = gateAnnotations(ann, ns, name, opts.extAuthDefault ?? false, opts.jwtProviders);
  if (typeof gates === 'string') return { key, report: report(ns, name, id, 'rejected', [gates, ...f.warnings]), routes: [], clients: NO_CLIENTS };
  for (const w of gates.warnings) f.warn(w);
  const gate = gates.gate(null);
  const cors = corsAnnotation(ann, f);
  if (!cors.ok) return { key, report: report(ns, name, id, 'rejected', [cors.error, ...f.warnings]), routes: [], clients: NO_CLIENTS };
  // Tenant isolation (customConfigScope "namespace"): a Mapping that reaches past its own namespace is dropped.
  const scoped: MappingRoute[] = [];
  for (const m of served) {
    if (opts.customConfigScope === 'cluster') {
      scoped.push(m);
      continue;
    }
    const granted = grantsOf(opts.customConfigPrefixes, ns);
    const v = scopeViolation(m, ns, opts.singleNamespace, granted);
    if (v === null) scoped.push(confined(m, ns, opts.singleNamespace, granted));
    else f.warn(`Mapping "${m.name}" dropped: ${v} (custom-config-scope is namespace)`);
  }
  if (scoped.length === 0)
    return { key, report: report(ns, name, id, 'rejected', ['seldon.io/ambassador-config has no Mapping left within its namespace', ...f.warnings]), routes: [], clients: NO_CLIENTS };
  const compressed = compressionAnnotation(ann.get(COMPRESSION_ANNOTATION), opts.compression);
  if (compressed.warning !== undefined) f.warn(compressed.warning);
  const routes = scoped.map((m) => mappingSpec(m, ns, name, opts, gate, cors.value ?? opts.defaultCors ?? null, compressed.policy));
  return { key, report: report(ns, name, id, f.warnings.length ? 'degraded' : 'accepted', f.warnings), routes, clients: NO_CLIENTS };
}

/** A Mapping's `bypass_auth: true`: its gate without the external check (null when nothing else is left). */
function bypassed(gate: Gate | null): Gate | null {
  if (gate === null || !gate.external) return gate;
  return gate.auth === null && gate.rateLimits.length === 0 && gate.jwt === null ? null : { ...gate, external: false };
}

/** `sdepCors`: the deployment's seldon.io/gateway-cors, for REST Mappings without a `cors` of their own; `compression`: its compression, for REST Mappings. */
function mappingSpec(m: MappingRoute, ns: string, name: string, opts: CompileOptions, gate: Gate | null, sdepCors: CorsPolicy | null, compression: CompressionPolicy | null): RouteSpec {
  const upstream: Upstream = {
    host: m.service.host,
    port: m.service.port,
    tls: m.service.tls,
    ...(m.service.serviceName ? { service: { name: m.service.serviceName, namespace: m.service.serviceNamespace ?? ns } } : {}),
  };
  const origin: Origin = { namespace: ns, deployment: name, predictor: m.name };
  const checked = m.bypassAuth ? bypassed(gate) : gate;
  const backend = makeBackend({
    id: `${ns}/${name}/${m.name}`,
    origin,
    upstream,
    rewrite: m.rewrite,
    timeoutMs: m.timeoutMs ?? opts.defaultTimeoutMs,
    idleTimeoutMs: m.idleTimeoutMs ?? opts.defaultIdleTimeoutMs,
    retry: m.retry ?? opts.defaultRetry ?? null,
    breaker: m.breaker ?? opts.defaultBreaker ?? DEFAULT_BREAKER,
    gate: checked,
    cors: m.grpc ? null : (m.cors ?? sdepCors),
    compression: m.grpc ? null : compression,
    mapping: withRouteDefaults(m.policy, { errorOverrides: opts.defaultErrorOverrides, loadBalancer: opts.defaultLoadBalancer }),
  });
  const svc = m.policy?.redirect ? null : serviceOfHost(m.service.host, ns);
  return {
    kind: m.grpc ? 'grpc' : 'rest',
    namespace: ns,
    path: m.path,
    host: null,
    headers: m.headers,
    query: m.query,
    rank: m.rank,
    mapping: true,
    grpcIdentity: null,
    backend,
    shadow: m.shadow,
    weight: m.shadow ? (m.weight ?? 100) : m.weight,
    target: svc ? serviceKey(svc.namespace, svc.name) : null,
    core: m.core,
    ...(m.groupKeys ? { groupKeys: m.groupKeys } : {}),
    ...(m.linkerd ? { linkerd: m.linkerd } : {}),
  };
}
