/**
 * Where a request that falls back goes (docs/routing.md#fallback-models): the route its predictor's
 * `seldon.io/gateway-fallback` names, decided on the table the request matched. Pure; the pipeline's
 * fallback stage (gateway/pipeline/fallback.ts) calls it only for a request that falls back.
 *
 * - `predictor`: that member of the same group (same deployment, same protocol);
 * - `deployment`: a member of that deployment's own route of the protocol, picked by its own
 *   weights and steering (its canary), members without a ready endpoint skipped while one has one;
 * - `target`: the operator's backend of that name for the protocol.
 *
 * The path sent is the one the primary's model would have received (generated routes rewrite their
 * prefix to `/` alike), and the primary's mirrors still get their copies.
 */
import type { FallbackReason } from './config.js';
import { DEFAULT_BREAKER, type Backend, type CompileOptions, type Picker, type Protocol, type RouteGroup, type RouteTable, type Routed } from '../types.js';

/** A deployment's routes by protocol, keyed `ns/name`: the route without host or header constraints that has its members. */
export type DeploymentRoutes = ReadonlyMap<string, { rest?: RouteGroup; grpc?: RouteGroup }>;

/** Each deployment's unconstrained route of each protocol in `table` (the first, in precedence order). */
export function deploymentRoutes(table: RouteTable): DeploymentRoutes {
  const out = new Map<string, { rest?: RouteGroup; grpc?: RouteGroup }>();
  for (const g of table.groups) {
    if (g.host !== null || g.headers.length > 0) continue;
    for (const m of g.members) {
      const key = `${m.backend.origin.namespace}/${m.backend.origin.deployment}`;
      let e = out.get(key);
      if (e === undefined) out.set(key, (e = {}));
      if (e[g.kind] === undefined) e[g.kind] = g;
    }
  }
  return out;
}

/** What a fallback may need besides the request's own decision. */
export interface FallbackWorld {
  readonly picker: Picker;
  readonly eligible?: ((backend: Backend) => boolean) | undefined;
  /** The table's deployment routes (`deploymentRoutes`, made once per table). */
  routes(): DeploymentRoutes;
  /** The operator's target of this name (--fallback-target), one backend for both protocols. */
  target(name: string): Backend | undefined;
}

/** The decision for `routed`'s request sent to its backend's fallback instead, for `reason`; undefined when that route has no member now. */
export function fallbackRoute(routed: Routed, kind: Protocol, reason: FallbackReason, w: FallbackWorld): Routed | undefined {
  const from = routed.backend;
  const to = from.fallback!.to;
  const { namespace: ns, deployment } = from.origin;
  let group: RouteGroup = routed.group;
  let backend: Backend | undefined;
  if (to.kind === 'predictor') {
    for (const m of group.members) {
      const o = m.backend.origin;
      if (o.predictor === to.name && o.deployment === deployment && o.namespace === ns) backend = m.backend;
    }
  } else if (to.kind === 'target') {
    backend = w.target(to.name);
  } else {
    const g = w.routes().get(`${ns}/${to.name}`)?.[kind];
    if (g === undefined) return undefined;
    group = g.steered ? w.picker.steer(g) : g;
    const own = (b: Backend): boolean => b.origin.deployment === to.name && b.origin.namespace === ns;
    const eligible = w.eligible;
    backend = w.picker.pick(group, eligible === undefined ? own : (b) => own(b) && eligible(b)) ?? w.picker.pick(group, own);
  }
  if (backend === undefined) return undefined;
  return { ok: true, group, backend, upstreamPath: routed.upstreamPath, mirrors: routed.mirrors, fellBack: reason };
}

/**
 * The backend of an operator's target (`--fallback-target NAME=URL`): no policy of
 * its own (its time is what the primary's route has left), for both protocols, id `target/<NAME>` (what `x-seldon-model`
 * names, as it names a predictor by its id).
 */
export function targetBackend(name: string, address: { host: string; port: number; tls: boolean }, opts: Pick<CompileOptions, 'defaultTimeoutMs' | 'defaultIdleTimeoutMs'>): Backend {
  const upstream = { host: address.host, port: address.port, tls: address.tls };
  return {
    id: `target/${name}`,
    origin: { namespace: '', deployment: '', predictor: name },
    upstream,
    rewrite: null,
    timeoutMs: opts.defaultTimeoutMs,
    idleTimeoutMs: opts.defaultIdleTimeoutMs,
    retry: null,
    breaker: DEFAULT_BREAKER,
    gate: null,
    cors: null,
    steered: false,
    flow: null,
    log: null,
    hedge: null,
    compression: null,
    fallback: null,
    mapping: null,
    translate: null,
  };
}
