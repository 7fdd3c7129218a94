/**
 * What compiling one SeldonDeployment gives (`deployment.ts`, `custom.ts`): its route specs, each a
 * backend's place in one group, and the backend itself, always built the same way.
 */
import type { HeaderAddition, MappingPolicy } from '../emissary/mapping-policy.js';
import type { GroupKeys } from '../emissary/group-keys.js';
import type { CompressionPolicy } from '../compression/policy.js';
import type { FallbackPolicy } from '../fallback/config.js';
import type { TranslatePolicy } from '../policies/protocol.js';
import type { FlowPolicy } from '../flow/config.js';
import type { HedgePolicy } from '../hedge/config.js';
import type { LogPolicy } from '../policies/log.js';
import type { DeploymentSteering } from '../steering/spec.js';
import type { Backend, BreakerLimits, CorsPolicy, DeploymentReport, DeploymentState, Gate, OAuthClient, Origin, OutlierPolicy, QueryConstraint, RetryPolicy, RouteMatch, Upstream } from '../types.js';

/** One backend's place in one group: the group's match, plus its role and weight there. */
export interface RouteSpec extends RouteMatch {
  readonly backend: Backend;
  readonly shadow: boolean;
  /** Members: explicit weight, or null when weightless. Mirrors: the mirror percent. */
  readonly weight: number | null;
  /** Also one of the deployment's own routes (OAuth front end): generated predictor routes only. */
  readonly frontEnd?: boolean;
  /** `ns/name` of the cluster Service the backend reaches (null: not a Service, e.g. an IP). */
  readonly target: string | null;
  /** A Mapping's core keys as written (routing/emissary/custom-config.ts `coreKeysOf`): its group refuses it when they differ from the group's. */
  readonly core?: Readonly<Record<string, string>>;
  /** A Mapping's own values of the keys Emissary takes from its group (routing/emissary/group-keys.ts); absent: none. */
  readonly groupKeys?: GroupKeys;
  /** A Mapping's `add_linkerd_headers` header: its own, whatever its group adds. */
  readonly linkerd?: HeaderAddition;
}

/** What an OAuth-gated deployment owns: its predictor and explainer Services, and the gate every route to them applies. */
export interface OwnedServices {
  /** `ns/name` of each Service. */
  readonly services: readonly string[];
  /** Its `oauth` auth and its deployment-wide rate limit. */
  readonly gate: Gate;
}

export interface CompiledDeployment {
  readonly key: string;
  readonly report: DeploymentReport;
  readonly routes: readonly RouteSpec[];
  /** OAuth clients it claims (docs/routing.md#oauth-front-end); the table settles collisions. */
  readonly clients: readonly OAuthClient[];
  /** Set when it is OAuth-gated (whatever became of its routes): routes of others that reach these Services apply its gate. */
  readonly owned?: OwnedServices;
  /** Its Services (`ns/name`), when its routes are checked by the external auth service: no route of another deployment to them bypasses the check. */
  readonly externallyChecked?: readonly string[];
  /** Set when a rollout, a bandit or sticky assignment steers its weights at run time (routing/steering/shares.ts). */
  readonly steering?: DeploymentSteering;
  /** `ns/name` of the deployments its predictors fall back to (routing/fallback/deps.ts); absent: none. */
  readonly fallbackTo?: readonly string[];
}

export const NO_CLIENTS: readonly OAuthClient[] = [];
export const NO_QUERY: readonly QueryConstraint[] = [];

/** What a backend is made of: the route's own parts; what a route without a feature leaves out is null (`outlier`: absent, the table's defaults). */
export interface BackendParts {
  readonly id: string;
  readonly origin: Origin;
  readonly upstream: Upstream;
  readonly rewrite: string | null;
  readonly timeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly retry: RetryPolicy | null;
  readonly breaker: BreakerLimits;
  readonly gate: Gate | null;
  readonly cors: CorsPolicy | null;
  readonly compression: CompressionPolicy | null;
  readonly steered?: boolean;
  readonly flow?: FlowPolicy | null;
  readonly log?: LogPolicy | null;
  readonly outlier?: Partial<OutlierPolicy> | null | undefined;
  readonly hedge?: HedgePolicy | null;
  readonly fallback?: FallbackPolicy | null;
  readonly mapping?: MappingPolicy | null;
  readonly translate?: TranslatePolicy | null;
}

/** A backend, always built with the same fields in the same order (one hidden class). */
export function makeBackend(p: BackendParts): Backend {
  const { id, origin, upstream, rewrite, timeoutMs, idleTimeoutMs, retry, breaker, gate, cors, compression, outlier } = p;
  const b: Backend = {
    id,
    origin,
    upstream,
    rewrite,
    timeoutMs,
    idleTimeoutMs,
    retry,
    breaker,
    gate,
    cors,
    steered: p.steered ?? false,
    flow: p.flow ?? null,
    log: p.log ?? null,
    hedge: p.hedge ?? null,
    compression,
    fallback: p.fallback ?? null,
    mapping: p.mapping ?? null,
    translate: p.translate ?? null,
  };
  return outlier === undefined ? b : { ...b, outlier };
}

export function report(ns: string, name: string, id: string, state: DeploymentState, reasons: readonly string[]): DeploymentReport {
  return { namespace: ns, name, ambassadorId: id, state, reasons };
}
