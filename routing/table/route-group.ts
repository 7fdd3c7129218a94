/**
 * Route groups (docs/routing.md#route-groups): the key specs sharing a match are gathered under,
 * a group built from its specs (members normalised, shadows as mirrors), precedence between
 * groups (docs/routing.md#precedence-and-no-match), and a deployment's own routes for the OAuth front end.
 */
import type { CompiledDeployment, RouteSpec } from '../compile/deployment.js';
import type { StickySpec } from '../steering/sticky.js';
import type { Backend, Mirror, OwnRoutes, PathMatcher, Precedence, Protocol, QueryConstraint, RouteGroup, RouteMatch, WeightedBackend } from '../types.js';
import { constraintText, constraintWeight, type HeaderConstraint } from '../values/syntax.js';
import { cumulativeOf, emissaryWeights, normaliseWeights } from '../values/weights.js';
import { settleGroupKeys, withGroupKeys } from '../emissary/group-keys.js';

function matcherText(p: PathMatcher): string {
  return p.kind === 'prefix' ? p.prefix : p.source;
}

/** The matcher in a group key: its kind, text and case. */
function matcherKey(p: PathMatcher): string {
  return p.kind === 'prefix' ? `prefix:${p.prefix}` : `${p.kind}${p.ignoreCase ? '/i' : ''}:${p.source}`;
}

/**
 * Emissary's route weight past its numbers (irhttpmapping.py `_route_weight`): the prefix, the method
 * (`GET` when none), each header's `name-value` (`*` for presence) with `:authority` and `:method` last,
 * each query parameter's.
 */
function emissaryText(spec: RouteMatch): string[] {
  const key = (name: string, value: string | null): string => `${name}-${value ?? '*'}`;
  const value = (h: HeaderConstraint): string | null => (h.kind === 'exact' || h.kind === 'glob' ? h.value : h.kind === 'regex' ? h.pattern : null);
  const plain = spec.headers.filter((h) => h.name !== ':authority' && h.name !== ':method');
  const pseudo = [...spec.headers.filter((h) => h.name === ':authority'), ...spec.headers.filter((h) => h.name === ':method')];
  const method = spec.headers.find((h) => h.name === ':method');
  return [
    matcherText(spec.path),
    method ? (value(method) ?? 'GET') : 'GET',
    ...[...plain, ...pseudo].map((h) => key(h.name, value(h))),
    ...spec.query.map((q) => key(q.name, q.kind === 'exact' ? q.value : q.kind === 'regex' ? q.pattern : null)),
  ];
}

/** Python's comparison of two lists of strings (element by element; a prefix is smaller). */
function compareLists(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = cmp(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

function queryText(q: QueryConstraint): string {
  return q.kind === 'exact' ? `?${q.name}=${q.value}` : q.kind === 'presence' ? `?${q.name}` : `?${q.name}~${q.pattern}`;
}

/** Emissary's weight of a query constraint: name plus value (`*` for presence), plus 1 for a regex. */
function queryWeight(q: QueryConstraint): number {
  return q.name.length + (q.kind === 'exact' ? q.value.length : q.kind === 'presence' ? 1 : q.pattern.length + 1);
}

function constraintsOf(spec: RouteMatch): string[] {
  const out = spec.headers.map((h) => `${h.kind}:${constraintText(h)}`);
  for (const q of spec.query) out.push(`query-${q.kind}:${queryText(q)}`);
  if (spec.host !== null) out.push(`host:${spec.host}`);
  if (spec.grpcIdentity) out.push(`exact:namespace=${spec.grpcIdentity.namespace}`, `exact:seldon=${spec.grpcIdentity.seldon}`);
  return out.sort();
}

export function groupKeyOf(spec: RouteMatch): string {
  const key = [spec.kind, spec.namespace, matcherKey(spec.path), constraintsOf(spec).join('\u0001')];
  // Mappings that differ in precedence are different routes (Emissary's group id has it).
  if (spec.rank !== 0) key.push(`rank:${spec.rank}`);
  return key.join('\u0000');
}

function precedenceOf(spec: RouteMatch): Precedence {
  let headerWeight = 0;
  for (const h of spec.headers) headerWeight += constraintWeight(h);
  if (spec.host !== null) headerWeight += 'host'.length + spec.host.length;
  if (spec.grpcIdentity) headerWeight += 'seldon'.length + spec.grpcIdentity.seldon.length + 'namespace'.length + spec.grpcIdentity.namespace.length;
  let qWeight = 0;
  for (const q of spec.query) qWeight += queryWeight(q);
  const constraints = constraintsOf(spec);
  return {
    rank: spec.rank,
    queryWeight: qWeight,
    emissary: spec.mapping ? emissaryText(spec) : null,
    matcherLength: matcherText(spec.path).length,
    headerWeight,
    constraintCount: constraints.length,
    matcherText: matcherText(spec.path),
    constraintText: constraints.join(','),
  };
}

const byId = (a: { backend: { id: string } }, b: { backend: { id: string } }): number => (a.backend.id < b.backend.id ? -1 : a.backend.id > b.backend.id ? 1 : 0);
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Between groups of equal weights: generated routes before Mappings; Mappings as Emissary orders them (their
 * text, highest first); generated routes by the number of constraints (most first), then by text (below).
 */
function tieBreak(p: Precedence, q: Precedence): number {
  if (p.emissary === null || q.emissary === null) return (p.emissary === null ? 0 : 1) - (q.emissary === null ? 0 : 1);
  return compareLists(q.emissary, p.emissary);
}

/** docs/routing.md#precedence-and-no-match; namespace and key settle the (rare) ties between namespaces. */
export function comparePrecedence(a: RouteGroup, b: RouteGroup): number {
  const p = a.precedence;
  const q = b.precedence;
  return (
    q.rank - p.rank ||
    q.matcherLength - p.matcherLength ||
    q.headerWeight - p.headerWeight ||
    q.queryWeight - p.queryWeight ||
    tieBreak(p, q) ||
    q.constraintCount - p.constraintCount ||
    cmp(p.matcherText, q.matcherText) ||
    cmp(p.constraintText, q.constraintText) ||
    cmp(a.namespace, b.namespace) ||
    cmp(a.key, b.key)
  );
}

const noSticky = (): null => null;

/**
 * The empty lists every group without mirrors, header constraints or warnings shares: a table holds a
 * group per route for as long as it lives, and an empty array of its own costs each one 16 bytes or more.
 */
const NONE: readonly never[] = Object.freeze([]);
const ownOrShared = <T>(list: readonly T[]): readonly T[] => (list.length === 0 ? NONE : list);

/** A spec's match without its own `mapping` flag: a group is a Mapping's only when all its specs are. */
function withoutMappingFlag(spec: RouteSpec): RouteMatch {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- dropped on purpose
  const { mapping, ...rest } = spec;
  return rest;
}

const asCompiled = (s: RouteSpec): Backend => s.backend;

const coreCount = (s: RouteSpec): number => (s.core ? Object.keys(s.core).length : 0);

/**
 * Emissary's rule for a group's core keys (irhttpmappinggroup.py `add_mapping`): the group takes them from
 * its first Mapping, and a Mapping that sets one the group lacks, or sets it to another value, is refused.
 * Emissary's first is the first it read; here it is the Mapping that sets the fewest core keys (then the
 * lowest id), so the result never depends on arrival order, and a canary that adds `bypass_auth: true` to
 * a plain Mapping's match is the one refused, whatever its name.
 */
function sharingCoreKeys(specs: readonly RouteSpec[], refuse: (s: RouteSpec, why: string) => void): readonly RouteSpec[] {
  if (specs.length < 2) return specs;
  const order = [...specs].sort((a, b) => coreCount(a) - coreCount(b) || byId(a, b));
  const group = order[0]!.core ?? {};
  const kept = [order[0]!];
  for (const s of order.slice(1)) {
    const own = s.core ?? {};
    const differ = Object.keys(own).filter((k) => own[k] !== group[k]);
    if (differ.length === 0) kept.push(s);
    else refuse(s, `its ${differ.map((k) => `${k}: ${own[k]} != ${group[k] ?? '-unset-'}`).join(', ')} (every Mapping of a group must share ${differ.join(', ')})`);
  }
  return kept;
}

/** `effective` gives each spec's backend as served (its gate settled against the Services' owners). */
export function buildGroup(key: string, specs: readonly RouteSpec[], effective: (s: RouteSpec) => Backend = asCompiled, stickyOf: (deployment: string) => StickySpec | null = noSticky): RouteGroup {
  // Specs sharing a key agree on the match, except that a custom copy of a generated gRPC Mapping
  // (regex path plus exact `seldon`/`namespace` headers) carries the identity as plain headers:
  // the generated form stands for the group, so the result never depends on arrival order.
  const first = specs.find((s) => s.grpcIdentity !== null) ?? specs[0]!;
  // Ordered as Emissary orders Mappings only when every route in it is one (whatever arrived first).
  const mapping = specs.every((s) => s.mapping === true);
  const warnings: string[] = [];
  const refused: Backend[] = [];
  let members: WeightedBackend[];
  let cumulative: readonly number[];
  let passOn = 0;
  let kept = specs;
  if (mapping) {
    kept = sharingCoreKeys(specs, (s, why) => {
      refused.push(effective(s));
      warnings.push(`Mapping ${s.backend.id} refused: ${why}`);
    });
    // Envoy's routes in Emissary's order: weighted Mappings first, then the weightless ones share what is left.
    const memberSpecs = [...kept.filter((s) => !s.shadow && s.weight !== null).sort(byId), ...kept.filter((s) => !s.shadow && s.weight === null).sort(byId)];
    // The keys Envoy's route takes from the group (routing/emissary/group-keys.ts), over the Mappings that route (no redirect).
    const routing = kept.filter((s) => !s.shadow && !s.backend.mapping?.redirect).sort(byId);
    const settled = settleGroupKeys(routing.map((s) => ({ id: s.backend.id, keys: s.groupKeys ?? null })));
    if (settled) warnings.push(...settled.warnings);
    const served = (s: RouteSpec): Backend => (settled && !s.backend.mapping?.redirect ? withGroupKeys(effective(s), settled.keys, s.linkerd ?? null) : effective(s));
    const shares = emissaryWeights(memberSpecs.map((s) => s.weight));
    members = [];
    memberSpecs.forEach((s, i) => {
      const share = shares[i]!;
      if ('percent' in share) members.push({ backend: served(s), percent: share.percent });
      else {
        refused.push(effective(s));
        warnings.push(`Mapping ${s.backend.id} refused: ${share.refused}`);
      }
    });
    const taken = members.reduce((sum, m) => sum + m.percent, 0);
    passOn = members.length > 0 ? 100 - taken : 0;
    // The pick among members is made once the request stays (decide in match.ts): over their shares scaled to 100.
    cumulative = cumulativeOf(members.map((m) => (taken > 0 ? (m.percent * 100) / taken : 0)));
  } else {
    const memberSpecs = specs.filter((s) => !s.shadow).sort(byId);
    const { percents, warning } = normaliseWeights(memberSpecs.map((s) => s.weight));
    members = memberSpecs.map((s, i) => ({ backend: effective(s), percent: percents[i]! }));
    cumulative = cumulativeOf(percents);
    if (warning) warnings.push(warning);
  }
  const mirrors: readonly Mirror[] = ownOrShared(
    kept
      .filter((s) => s.shadow)
      .sort(byId)
      .map((s) => ({ backend: effective(s), percent: s.weight ?? 100 })),
  );
  const headers: readonly HeaderConstraint[] = first.headers.length === 0 ? NONE : [...first.headers].sort((a, b) => cmp(`${a.kind}:${constraintText(a)}`, `${b.kind}:${constraintText(b)}`));
  const steeredMember = members.find((m) => m.backend.steered);
  return {
    key,
    kind: first.kind,
    path: first.path,
    host: first.host,
    headers,
    query: first.query,
    rank: first.rank,
    ...(mapping ? { mapping: true as const } : {}),
    grpcIdentity: first.grpcIdentity,
    namespace: first.namespace,
    members,
    mirrors,
    cumulative,
    passOn,
    ...(refused.length > 0 ? { refused } : {}),
    precedence: precedenceOf({ ...withoutMappingFlag(first), headers, ...(mapping ? { mapping: true as const } : {}) }),
    warnings: ownOrShared(warnings),
    steered: steeredMember !== undefined,
    sticky: steeredMember ? stickyOf(deploymentKeyOf(steeredMember.backend)) : null,
  };
}

export const deploymentKeyOf = (b: Backend): string => `${b.origin.namespace}/${b.origin.deployment}`;

/**
 * A deployment's own routes for the OAuth front end: its generated predictor routes of each kind
 * (members with their weights, shadows as mirrors), without header constraints.
 */
export function ownRoutesOf(c: CompiledDeployment, effective: (s: RouteSpec) => Backend): OwnRoutes | null {
  const { namespace, name } = c.report;
  const group = (kind: Protocol): RouteGroup | null => {
    const seen = new Set<string>();
    const specs: RouteSpec[] = [];
    for (const s of c.routes) {
      if (!s.frontEnd || s.kind !== kind || seen.has(s.backend.id)) continue;
      seen.add(s.backend.id);
      // A predictor whose Service another OAuth deployment owns is not reached with this one's token.
      const backend = effective(s);
      const auth = backend.gate?.auth;
      if (auth && (auth.namespace !== namespace || auth.deployment !== name)) continue;
      specs.push({ ...s, headers: [], backend });
    }
    return specs.length ? buildGroup(`own\u0000${c.key}\u0000${kind}`, specs) : null;
  };
  const rest = group('rest');
  const grpc = group('grpc');
  return rest || grpc ? { rest, grpc } : null;
}

/** Short human text for a group's match, used in reasons. */
export function describeMatch(g: RouteGroup): string {
  const what = g.grpcIdentity ? `gRPC seldon=${g.grpcIdentity.seldon} namespace=${g.grpcIdentity.namespace}` : `${g.kind === 'grpc' ? 'gRPC ' : ''}${matcherText(g.path)}`;
  const hs = g.headers.map((h) => constraintText(h));
  for (const q of g.query) hs.push(queryText(q));
  if (g.host) hs.push(`host=${g.host}`);
  if (g.rank !== 0) hs.push(`precedence=${g.rank}`);
  return hs.length ? `${what} [${hs.join(', ')}]` : what;
}
