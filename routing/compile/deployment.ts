/**
 * One SeldonDeployment → its route specs and its report (docs/routing.md).
 *
 * A spec is one backend's place in one group: its match (path, host, headers, gRPC identity),
 * whether it is a member or a mirror, and its explicit weight. `table/builder.ts` gathers specs into
 * groups. Compilation looks at nothing but the SDep and the options, so the table is a pure
 * function of the current objects; any failure stays inside this SDep's report. The
 * `seldon.io/*` annotations are read into typed settings by `annotations.ts`; this file assembles
 * them into routes.
 */
import { compileCustom } from './custom.js';
import { NO_CLIENTS, NO_QUERY, makeBackend, report, type CompiledDeployment, type RouteSpec } from './route-spec.js';
import {
  Findings,
  ambassadorIdAnnotation,
  breakerAnnotations,
  corsAnnotation,
  customConfigAnnotation,
  externalAuthAnnotation,
  effectiveAnnotations,
  gateAnnotations,
  headerAnnotations,
  legacyShadowAnnotation,
  legacyWeightAnnotation,
  ownerGateAnnotation,
  predictorAnnotations,
  predictorRateLimitAnnotation,
  retriesAnnotation,
  serviceNameAnnotation,
  timeoutAnnotation,
  type EffectiveAnnotations,
} from '../seldon/annotations.js';
import { explainerService, isDns1123Label, isDns1123Subdomain, predictorService, serviceKey } from '../seldon/services.js';
import { RegexBudget } from '../values/syntax.js';
import { joined } from '../values/text.js';
import type { CompileOptions, Gate, OAuthClient, Origin, PathMatcher, Upstream } from '../types.js';
import { ignoredTraffic, trafficOf } from '../seldon/predictor-traffic.js';
import { oauthClients } from '../seldon/oauth-clients.js';
import { fallbackDeploymentsOf } from '../fallback/deps.js';
import type { PredictorSpec, SeldonDeployment } from '../seldon/deployment.js';
import type { DeploymentSteering } from '../steering/spec.js';
import { steeringAnnotations } from '../steering/annotations.js';
import { BANDIT_ANNOTATION } from '../steering/bandit.js';
import { FLOW_ANNOTATION, flowAnnotations } from '../flow/config.js';
import { OUTLIER_ANNOTATION, outlierAnnotations } from '../health/outlier-config.js';
import { HEDGE_ANNOTATION, hedgeAnnotations } from '../hedge/config.js';
import { PROTOCOL_ANNOTATION, protocolAnnotations } from '../policies/protocol.js';
import { COMPRESSION_ANNOTATION, compressionAnnotation } from '../compression/config.js';
import { FALLBACK_ANNOTATION, fallbackAnnotations } from '../fallback/config.js';
import { LOG_ANNOTATION, logAnnotations, modelIdOf } from '../policies/log.js';
import { withLinkerdHeader, withRouteDefaults, type MappingPolicy } from '../emissary/mapping-policy.js';
import { mappingDefaultsPolicy } from '../emissary/module-defaults.js';

export type { CompiledDeployment, OwnedServices, RouteSpec } from './route-spec.js';

/**
 * Most predictors one SeldonDeployment may have. Every route group is rebuilt whole when one of its
 * members changes, and a request picks among a group's members, so one enormous deployment would
 * cost every edit, and each of its requests, time in proportion; above this it is rejected.
 */
export const MAX_PREDICTORS = 1000;

/** `:path` of every generated gRPC route, matched in full (docs/routing.md#grpc-metadata-matching). */
export const GRPC_PATH_SOURCE = '/(seldon.protos.*|tensorflow.serving.*|inference.*)/.*';
const GRPC_PATH = new RegExp(`^(?:${GRPC_PATH_SOURCE})$`, 's');
export const GRPC_PATH_MATCHER: PathMatcher = { kind: 'regex', source: GRPC_PATH_SOURCE, test: (p) => GRPC_PATH.test(p) };

export function compileDeployment(d: SeldonDeployment, opts: CompileOptions): CompiledDeployment {
  const c = withOwnedServices(compileRoutes(d, opts), d, opts);
  if (c.report.state === 'skipped') return c;
  // OAuth clients are registered whatever became of the routes: credentials do not depend on them.
  let oauth: { clients: OAuthClient[]; warnings: string[] };
  try {
    oauth = oauthClients(d, c.report.namespace, c.report.name, opts);
  } catch (e) {
    oauth = { clients: [], warnings: [`spec.oauth_key/oauth_secret could not be read: ${e instanceof Error ? e.message : String(e)}`] };
  }
  const warnings = oauth.warnings;
  if (oauth.clients.length === 0 && c.routes.some((s) => s.backend.gate?.auth)) {
    warnings.push('seldon.io/gateway-auth is oauth but spec.oauth_key/oauth_secret register no OAuth client: every request is refused (401)');
  }
  if (oauth.clients.length === 0 && warnings.length === 0) return c;
  const r = c.report;
  const state = warnings.length && r.state === 'accepted' ? 'degraded' : r.state;
  return { ...c, report: report(r.namespace, r.name, r.ambassadorId, state, [...r.reasons, ...warnings]), clients: oauth.clients };
}

const NO_TARGETS: ReadonlySet<string> = new Set();

/**
 * An OAuth-gated deployment's Services (docs/routing.md#gated-services): whatever became of its
 * own routes (rejected, custom config), the Services the operator made for its predictors and
 * explainers hold its models, and a route of anyone else that reaches them must apply its gate.
 */
function withOwnedServices(c: CompiledDeployment, d: SeldonDeployment, opts: CompileOptions): CompiledDeployment {
  if (c.report.state === 'skipped') return c;
  const { namespace: ns, name } = c.report;
  if (!isDns1123Label(ns) || !isDns1123Subdomain(name)) return c;
  let gate: Gate | null;
  let external: boolean;
  try {
    const ann = effectiveAnnotations(d.metadata?.annotations, d.spec?.annotations);
    gate = ownerGateAnnotation(ann, ns, name, opts.extAuthDefault ?? false, opts.jwtProviders);
    external = externalAuthAnnotation(ann, opts.extAuthDefault ?? false);
  } catch {
    return c;
  }
  if (gate === null && !external) return c;
  const services = [...deploymentServices(d, ns, opts)].sort();
  if (services.length === 0) return c;
  const owned = gate === null ? c : { ...c, owned: { services, gate } };
  return external ? { ...owned, externallyChecked: services } : owned;
}

/** The `ns/name` of the Services the operator makes for a deployment's predictors and explainers. */
function deploymentServices(d: SeldonDeployment, ns: string, opts: CompileOptions): Set<string> {
  const services = new Set<string>();
  const predictors: unknown = d.spec?.predictors;
  if (!Array.isArray(predictors)) return services;
  for (const p of predictors as unknown[]) {
    if (!p || typeof p !== 'object') continue;
    const ps = p as PredictorSpec;
    try {
      const svc = predictorService(d, ps, ns, opts);
      if (typeof svc === 'string') continue;
      services.add(serviceKey(ns, svc.name));
      if (typeof ps.explainer?.type === 'string' && ps.explainer.type !== '') {
        const ex = explainerService(d, ps, ns, opts, svc.name);
        if (typeof ex !== 'string') services.add(serviceKey(ns, ex.name));
      }
    } catch {
      // A shape nobody foresaw: that predictor names no Service.
    }
  }
  return services;
}

function compileRoutes(d: SeldonDeployment, opts: CompileOptions): CompiledDeployment {
  const ns = d.metadata?.namespace || 'default';
  const name = typeof d.metadata?.name === 'string' ? d.metadata.name : '';
  const key = joined(ns, '/', name);
  if (!name) return { key, report: report(ns, name, 'default', 'rejected', ['metadata.name is missing']), routes: [], clients: NO_CLIENTS };
  // Both become part of every Service host: nothing Kubernetes would not accept may reach an upstream.
  const badName = !isDns1123Label(ns)
    ? `metadata.namespace "${ns}" is not a DNS-1123 label (lower-case letters, digits and "-", at most 63 characters)`
    : !isDns1123Subdomain(name)
      ? `metadata.name "${name}" is not a DNS-1123 subdomain (lower-case letters, digits, "-" and ".", at most 253 characters)`
      : null;
  if (badName) return { key, report: report(ns, name, 'default', 'rejected', [badName]), routes: [], clients: NO_CLIENTS };
  let id = 'default';
  try {
    const ann = effectiveAnnotations(d.metadata?.annotations, d.spec?.annotations);
    id = ambassadorIdAnnotation(ann);
    if (opts.singleNamespace && ns !== opts.namespace) {
      return { key, report: report(ns, name, id, 'skipped', [`namespace "${ns}" is outside the watched namespace "${opts.namespace}" (single-namespace mode)`]), routes: [], clients: NO_CLIENTS };
    }
    const f = new Findings();
    const custom = customConfigAnnotation(ann);
    if (custom && opts.honourCustomConfig) return compileCustom(key, ns, name, id, custom, ann, opts, f);
    if (id !== opts.ambassadorId) {
      return { key, report: report(ns, name, id, 'skipped', [`ambassador-id "${id}" ≠ gateway id "${opts.ambassadorId}"`]), routes: [], clients: NO_CLIENTS };
    }
    if (custom) f.warn('seldon.io/ambassador-config is ignored: custom config is turned off on this gateway');
    const result = compileGenerated(d, ns, name, ann, opts, f);
    if (typeof result === 'string') return { key, report: report(ns, name, id, 'rejected', [result, ...f.warnings]), routes: [], clients: NO_CLIENTS };
    const c: CompiledDeployment = { key, report: report(ns, name, id, f.warnings.length ? 'degraded' : 'accepted', f.warnings), routes: result.specs, clients: NO_CLIENTS };
    const fallbackTo = fallbackDeploymentsOf(result.specs);
    const withFallbacks = fallbackTo.length ? { ...c, fallbackTo } : c;
    return result.steering ? { ...withFallbacks, steering: result.steering } : withFallbacks;
  } catch (e) {
    // A bug or an input shape nobody foresaw must stay inside this SDep.
    const msg = e instanceof Error ? e.message : String(e);
    return { key, report: report(ns, name, id, 'rejected', [`could not be compiled: ${msg}`]), routes: [], clients: NO_CLIENTS };
  }
}

// ---------------------------------------------------------------------------------------------
// Generated routes (docs/routing.md#urls-and-prefixes, docs/routing.md#several-deployments-behind-one-name).
// ---------------------------------------------------------------------------------------------

/** A value of the wrong type as a message names it: `a string "not a list"`, `a map`. */
function describeValue(v: unknown): string {
  return typeof v === 'object' ? 'a map' : `a ${typeof v} ${JSON.stringify(v).slice(0, 40)}`;
}

function compileGenerated(
  d: SeldonDeployment,
  ns: string,
  name: string,
  ann: EffectiveAnnotations,
  opts: CompileOptions,
  f: Findings,
): { specs: RouteSpec[]; steering: DeploymentSteering | null } | string {
  const predictors = d.spec?.predictors;
  if (predictors === undefined || predictors === null) return 'spec.predictors is missing: nothing to route';
  if (!Array.isArray(predictors)) return `spec.predictors is ${describeValue(predictors)}, not a list: nothing to route`;
  if (predictors.length === 0) return 'spec.predictors is empty: nothing to route';
  const maxPredictors = opts.maxPredictors ?? MAX_PREDICTORS;
  if (predictors.length > maxPredictors) return `spec.predictors has ${predictors.length} predictors: at most ${maxPredictors} are served`;
  const seen = new Set<string>();
  for (const [i, p] of predictors.entries()) {
    if (!p || typeof p !== 'object' || typeof p.name !== 'string' || p.name === '') return `spec.predictors[${i}] has no name`;
    if (!isDns1123Label(p.name)) return `predictor name ${JSON.stringify(p.name)} is not a DNS-1123 label (lower-case letters, digits and "-", at most 63 characters)`;
    if (seen.has(p.name)) return `predictor name "${p.name}" is used twice`;
    seen.add(p.name);
    const bad = predictorAnnotations(p, f);
    if (bad !== null) return bad;
  }

  // The deployment's annotations, in the order their warnings are reported.
  const svcName = serviceNameAnnotation(ann, name, f);
  if (!svcName.ok) return svcName.error;
  const svcExt = svcName.value;
  const headers = headerAnnotations(ann, f, new RegexBudget(opts.regexMaxSize));
  if (!headers.ok) return headers.error;
  const rest = timeoutAnnotation(ann, 'rest', opts, f);
  const grpc = timeoutAnnotation(ann, 'grpc', opts, f);
  const retry = retriesAnnotation(ann, f) ?? opts.defaultRetry ?? null;
  const breaker = breakerAnnotations(ann, f, opts.defaultBreaker);
  const weightAll = legacyWeightAnnotation(ann, f);
  const shadowAll = legacyShadowAnnotation(ann, f);
  const gates = gateAnnotations(ann, ns, name, opts.extAuthDefault ?? false, opts.jwtProviders);
  if (typeof gates === 'string') return gates;
  for (const w of gates.warnings) f.warn(w);
  const cors = corsAnnotation(ann, f);
  if (!cors.ok) return cors.error;
  const restCors = cors.value ?? opts.defaultCors ?? null;
  // Seldon's Mappings set no policy key: the Module's header-edit defaults, overrides and balancer, or null (nothing to pay).
  const policy = withRouteDefaults(mappingDefaultsPolicy(opts.mappingDefaults), { errorOverrides: opts.defaultErrorOverrides, loadBalancer: opts.defaultLoadBalancer });
  const steering = steeringAnnotations(`${ns}/${name}`, predictors, ann, shadowAll, f);
  const flows = flowAnnotations(ann.get(FLOW_ANNOTATION));
  for (const w of flows.warnings) f.warn(w);
  const outliers = outlierAnnotations(ann.get(OUTLIER_ANNOTATION));
  for (const w of outliers.warnings) f.warn(w);
  const hedges = hedgeAnnotations(ann.get(HEDGE_ANNOTATION));
  for (const w of hedges.warnings) f.warn(w);
  const answering = new Set(predictors.filter((p) => !(shadowAll || p.shadow === true)).map((p) => p.name!));
  const fallbacks = fallbackAnnotations(ann.get(FALLBACK_ANNOTATION), {
    namespace: ns,
    deployment: name,
    predictors: answering,
    targets: opts.fallbackTargets ?? NO_TARGETS,
    deploymentName: isDns1123Subdomain,
  });
  for (const w of fallbacks.warnings) f.warn(w);
  const logs = logAnnotations(ann.get(LOG_ANNOTATION), opts.logSinks, d.spec?.protocol);
  for (const w of logs.warnings) f.warn(w);
  const protocols = protocolAnnotations(ann.get(PROTOCOL_ANNOTATION), d.spec?.protocol);
  for (const w of protocols.warnings) f.warn(w);
  const compressed = compressionAnnotation(ann.get(COMPRESSION_ANNOTATION), opts.compression);
  if (compressed.warning !== undefined) f.warn(compressed.warning);
  const warn = (msg: string): void => f.warn(msg);

  const restPrefixes = [joined('/seldon/', ns, '/', svcExt, '/')];
  if (opts.singleNamespace) restPrefixes.push(joined('/seldon/', svcExt, '/'));

  const specs: RouteSpec[] = [];
  const restHeaders = headers.value.rest;
  const grpcHeaders = headers.value.grpc;
  const grpcIdentity = { seldon: svcExt, namespace: ns };
  const restPaths: PathMatcher[] = restPrefixes.map((prefix) => ({ kind: 'prefix', prefix }));
  // A plain loop and object literals of one shape each: a deployment may have many predictors.
  for (let index = 0; index < predictors.length; index++) {
    const p = predictors[index]!;
    const pred = p.name!;
    const shadow = shadowAll || p.shadow === true;
    const steered = steering !== null && !shadow;
    let weight: number | null;
    if (shadow && !shadowAll) {
      const traffic = trafficOf(p, f);
      weight = traffic >= 1 ? traffic : 100;
    } else if (shadow) {
      ignoredTraffic(p, `seldon.io/ambassador-shadow mirrors ${weightAll ?? 100}%`, f);
      weight = weightAll ?? 100;
    }
    // Until the control plane's first shares arrive, a bandit's arms split evenly (the prior), as
    // its shares would before any evidence; predictors that are not arms get none, as they will.
    else if (steering?.bandit) {
      ignoredTraffic(p, `${BANDIT_ANNOTATION} sets the shares`, f);
      weight = steering.bandit.config.arms.includes(pred) ? null : 0;
    } else if (weightAll !== null) {
      ignoredTraffic(p, 'seldon.io/ambassador-weight sets every weight', f);
      weight = weightAll;
    } else if (index === 0) {
      ignoredTraffic(p, 'the first predictor takes what the others leave', f);
      weight = null;
    } else weight = trafficOf(p, f);

    const svc = predictorService(d, p, ns, opts);
    if (typeof svc === 'string') return svc;
    const tls = typeof p.ssl?.certSecretName === 'string' && p.ssl.certSecretName !== '';
    const origin: Origin = { namespace: ns, deployment: name, predictor: pred };
    const gate = gates.gate(predictorRateLimitAnnotation(p, ns, name, f));
    const id = joined(ns, '/', name, '/', pred);
    const target = serviceKey(ns, svc.name);
    const flow = shadow ? null : flows.of(pred, p.annotations?.[FLOW_ANNOTATION], warn);
    const outlier = outliers.of(pred, p.annotations?.[OUTLIER_ANNOTATION], warn);
    // A shadow's copies are never hedged (nor are explainers', nor custom Mappings').
    const hedge = shadow ? null : hedges.of(pred, p.annotations?.[HEDGE_ANNOTATION], warn);
    const fallback = shadow ? null : fallbacks.of(pred, p.annotations?.[FALLBACK_ANNOTATION], warn);
    const log = shadow ? null : logs.of(pred, p.annotations?.[LOG_ANNOTATION], modelIdOf(p.graph, pred), warn);
    // A shadow's copies are translated too: a v2 shadow behind a Seldon primary gets v2.
    const translate = protocols.of(pred, p.annotations?.[PROTOCOL_ANNOTATION], modelIdOf(p.graph, pred), warn);
    // What every backend of this predictor shares, REST and gRPC.
    const parts = { id, origin, retry, breaker, gate, steered, flow, log, outlier, hedge, fallback, mapping: policy, translate };
    if (svc.httpPort !== null) {
      const upstream: Upstream = { host: svc.host, port: svc.httpPort, tls, service: { name: svc.name, namespace: ns, portName: 'http' } };
      const backend = makeBackend({
        ...parts,
        upstream,
        rewrite: '/',
        timeoutMs: rest.timeoutMs,
        idleTimeoutMs: rest.idleTimeoutMs,
        cors: restCors,
        compression: compressed.policy,
        mapping: linkerd(policy, upstream, opts),
      });
      for (let i = 0; i < restPaths.length; i++) {
        specs.push({
          kind: 'rest',
          namespace: ns,
          path: restPaths[i]!,
          host: null,
          headers: restHeaders,
          query: NO_QUERY,
          rank: 0,
          grpcIdentity: null,
          backend,
          shadow,
          weight,
          frontEnd: i === 0,
          target,
        });
      }
    }
    if (svc.grpcPort !== null) {
      const upstream: Upstream = { host: svc.host, port: svc.grpcPort, tls, service: { name: svc.name, namespace: ns, portName: 'grpc' } };
      const backend = makeBackend({
        ...parts,
        upstream,
        rewrite: null,
        timeoutMs: grpc.timeoutMs,
        idleTimeoutMs: grpc.idleTimeoutMs,
        cors: null,
        compression: null,
        mapping: linkerd(policy, upstream, opts),
      });
      specs.push({ kind: 'grpc', namespace: ns, path: GRPC_PATH_MATCHER, host: null, headers: grpcHeaders, query: NO_QUERY, rank: 0, grpcIdentity, backend, shadow, weight, frontEnd: true, target });
    }
    if (typeof p.explainer?.type === 'string' && p.explainer.type !== '') {
      const ex = explainerService(d, p, ns, opts, svc.name);
      if (typeof ex === 'string') return ex;
      if (ex.httpPort !== null) {
        const upstream: Upstream = { host: ex.host, port: ex.httpPort, tls: false, service: { name: ex.name, namespace: ns, portName: 'http' } };
        const exOrigin: Origin = { namespace: ns, deployment: name, predictor: joined(pred, '-explainer') };
        // An explainer is neither steered, flow-limited, logged, hedged nor falls back; its endpoints' health is judged by the table's defaults.
        const backend = makeBackend({
          id: joined(id, '#explainer'),
          origin: exOrigin,
          upstream,
          rewrite: '/',
          timeoutMs: rest.timeoutMs,
          idleTimeoutMs: rest.idleTimeoutMs,
          retry,
          breaker,
          gate,
          cors: restCors,
          compression: compressed.policy,
          mapping: linkerd(policy, upstream, opts),
        });
        const prefixes = [joined('/seldon/', ns, '/', svcExt, '-explainer/', pred, '/')];
        if (opts.singleNamespace) prefixes.push(joined('/seldon/', svcExt, '-explainer/', pred, '/'));
        const exTarget = serviceKey(ns, ex.name);
        // Explainers always take 100 %: weightless, never mirrors (docs/routing.md#explainers).
        for (const prefix of prefixes) {
          specs.push({
            kind: 'rest',
            namespace: ns,
            path: { kind: 'prefix', prefix },
            host: null,
            headers: restHeaders,
            query: NO_QUERY,
            rank: 0,
            grpcIdentity: null,
            backend,
            shadow: false,
            weight: null,
            target: exTarget,
          });
        }
      }
    }
  }
  return { specs, steering };
}

/**
 * The Module's `add_linkerd_headers: true` on a route Seldon's operator made: its Mapping names the
 * Service as `<svc>.<ns>:<port>`, the value Emissary writes (`policy` itself when it is off: nothing to pay).
 */
function linkerd(policy: MappingPolicy | null, up: Upstream, opts: CompileOptions): MappingPolicy | null {
  return opts.addLinkerdHeaders === true ? withLinkerdHeader(policy, `${up.host}:${up.port}`) : policy;
}
