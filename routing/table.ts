/**
 * The route table: compiled deployments gathered into groups, ordered and indexed for `match`.
 *
 * `TableBuilder` keeps the compiled form of every SeldonDeployment. `upsert`/`remove` recompile
 * one deployment and mark only the groups its old and new routes touch; `build()` rebuilds just
 * those groups and their index entries, and returns a new immutable `RouteTable` (the indexes
 * are copied, the untouched groups shared). A full rebuild is the same builder fed every
 * deployment once, and must give an equal table (property-tested).
 *
 * Beside the routes, the table holds what the OAuth front end needs (docs/routing.md#oauth-front-end): the client
 * registry (a client_id claimed by two deployments goes to neither, and both are degraded) and each
 * deployment's own routes (its predictors only, no header constraints).
 */
import { compileDeployment, type CompiledDeployment, type RouteSpec } from './compile.js';
import { constraintText, constraintWeight } from './values.js';
import { cumulativeOf, normaliseWeights } from './weights.js';
import { CONFLICTED_AUTH_DEPLOYMENT } from './types.js';
import type { DeploymentSteering, StickySpec } from './steering.js';
import type {
  Backend,
  CompileOptions,
  DeploymentReport,
  Gate,
  HeaderConstraint,
  Mirror,
  OAuthClient,
  OwnRoutes,
  PathMatcher,
  Precedence,
  RateLimit,
  RouteGroup,
  RouteTable,
  RouteMatch,
  WeightedBackend,
} from './types.js';
import type { SeldonDeployment } from './seldon-deployment.js';

function matcherText(p: PathMatcher): string {
  return p.kind === 'prefix' ? p.prefix : p.source;
}

function constraintsOf(spec: RouteMatch): string[] {
  const out = spec.headers.map((h) => `${h.kind}:${constraintText(h)}`);
  if (spec.host !== null) out.push(`host:${spec.host}`);
  if (spec.grpcIdentity) out.push(`exact:namespace=${spec.grpcIdentity.namespace}`, `exact:seldon=${spec.grpcIdentity.seldon}`);
  return out.sort();
}

function groupKeyOf(spec: RouteMatch): string {
  return [spec.kind, spec.namespace, `${spec.path.kind}:${matcherText(spec.path)}`, constraintsOf(spec).join('\u0001')].join('\u0000');
}

function precedenceOf(spec: RouteMatch): Precedence {
  let headerWeight = 0;
  for (const h of spec.headers) headerWeight += constraintWeight(h);
  if (spec.host !== null) headerWeight += 'host'.length + spec.host.length;
  if (spec.grpcIdentity) headerWeight += 'seldon'.length + spec.grpcIdentity.seldon.length + 'namespace'.length + spec.grpcIdentity.namespace.length;
  const constraints = constraintsOf(spec);
  return {
    matcherLength: matcherText(spec.path).length,
    headerWeight,
    constraintCount: constraints.length,
    matcherText: matcherText(spec.path),
    constraintText: constraints.join(','),
  };
}

const byId = (a: { backend: { id: string } }, b: { backend: { id: string } }): number => (a.backend.id < b.backend.id ? -1 : a.backend.id > b.backend.id ? 1 : 0);
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** docs/routing.md#precedence-and-no-match; namespace and key settle the (rare) ties between namespaces. */
export function comparePrecedence(a: RouteGroup, b: RouteGroup): number {
  const p = a.precedence;
  const q = b.precedence;
  return (
    q.matcherLength - p.matcherLength ||
    q.headerWeight - p.headerWeight ||
    q.constraintCount - p.constraintCount ||
    cmp(p.matcherText, q.matcherText) ||
    cmp(p.constraintText, q.constraintText) ||
    cmp(a.namespace, b.namespace) ||
    cmp(a.key, b.key)
  );
}

const asCompiled = (s: RouteSpec): Backend => s.backend;

/** `effective` gives each spec's backend as served (its gate settled against the Services' owners). */
function buildGroup(key: string, specs: readonly RouteSpec[], effective: (s: RouteSpec) => Backend = asCompiled, stickyOf: (deployment: string) => StickySpec | null = noSticky): RouteGroup {
  // Specs sharing a key agree on the match, except that a custom copy of a generated gRPC Mapping
  // (regex path plus exact `seldon`/`namespace` headers) carries the identity as plain headers:
  // the generated form stands for the group, so the result never depends on arrival order.
  const first = specs.find((s) => s.grpcIdentity !== null) ?? specs[0]!;
  const memberSpecs = specs.filter((s) => !s.shadow).sort(byId);
  const { percents, warning } = normaliseWeights(memberSpecs.map((s) => s.weight));
  const members: WeightedBackend[] = memberSpecs.map((s, i) => ({ backend: effective(s), percent: percents[i]! }));
  const mirrors: Mirror[] = specs
    .filter((s) => s.shadow)
    .sort(byId)
    .map((s) => ({ backend: effective(s), percent: s.weight ?? 100 }));
  const headers: HeaderConstraint[] = [...first.headers].sort((a, b) => cmp(`${a.kind}:${constraintText(a)}`, `${b.kind}:${constraintText(b)}`));
  const steeredMember = members.find((m) => m.backend.steered);
  return {
    key,
    kind: first.kind,
    path: first.path,
    host: first.host,
    headers,
    grpcIdentity: first.grpcIdentity,
    namespace: first.namespace,
    members,
    mirrors,
    cumulative: cumulativeOf(percents),
    precedence: precedenceOf(first),
    warnings: warning ? [warning] : [],
    steered: steeredMember !== undefined,
    sticky: steeredMember ? stickyOf(deploymentKeyOf(steeredMember.backend)) : null,
  };
}

const noSticky = (): null => null;

/** Which index a group lives in. */
function indexOf(g: RouteGroup): { map: 'restByPrefix' | 'grpcByPrefix' | 'grpcByIdentity'; key: string } | { list: 'restRegex' | 'grpcRegex' } {
  if (g.grpcIdentity) return { map: 'grpcByIdentity', key: `${g.grpcIdentity.namespace}\u0000${g.grpcIdentity.seldon}` };
  if (g.path.kind === 'regex') return { list: g.kind === 'rest' ? 'restRegex' : 'grpcRegex' };
  return { map: g.kind === 'rest' ? 'restByPrefix' : 'grpcByPrefix', key: g.path.prefix };
}

const deploymentKeyOf = (b: Backend): string => `${b.origin.namespace}/${b.origin.deployment}`;

/** The gate of a route to a Service that several OAuth-gated deployments claim: no token is any of theirs (fail closed). */
function conflictedGate(own: Gate | null, external: boolean): Gate {
  return { auth: { namespace: '', deployment: CONFLICTED_AUTH_DEPLOYMENT }, rateLimits: own?.rateLimits ?? NO_LIMITS, external: external || (own?.external ?? false) };
}

/** The owner's gate, with the route's own rate limits kept as well. */
function ownersGate(owner: Gate, own: Gate | null, external: boolean): Gate {
  const checked = external || owner.external || (own?.external ?? false);
  if ((!own || own.rateLimits.length === 0) && checked === owner.external) return owner;
  const limits = [...owner.rateLimits];
  for (const l of own?.rateLimits ?? NO_LIMITS) if (!limits.some((x) => x.key === l.key)) limits.push(l);
  return { auth: owner.auth, rateLimits: limits, external: checked };
}

/** A route's own gate with the external check a Service's owner imposes on it. */
function externallyCheckedGate(own: Gate | null): Gate {
  return own === null ? { auth: null, rateLimits: NO_LIMITS, external: true } : { auth: own.auth, rateLimits: own.rateLimits, external: true };
}

const NO_LIMITS: readonly RateLimit[] = [];

function oddLengths(prefixes: Iterable<string>): number[] {
  const lengths = new Set<number>();
  for (const p of prefixes) if (!p.endsWith('/')) lengths.add(p.length);
  return [...lengths].sort((a, b) => b - a);
}

const GONE: unique symbol = Symbol('gone');

/**
 * An immutable map as a frozen `base` plus a small `top` of what changed since (GONE: deleted).
 * A table snapshot then costs what changed, not the whole index (10,000 deployments made every
 * one-deployment edit copy five maps of that size). A lookup that misses `top` costs one more
 * small-map probe; `top` is folded into a new base once it grows past an eighth of it.
 */
class LayeredMap<K, V> implements ReadonlyMap<K, V> {
  constructor(
    private readonly base: ReadonlyMap<K, V>,
    private readonly top: ReadonlyMap<K, V | typeof GONE>,
    readonly size: number,
  ) {}
  get(key: K): V | undefined {
    if (this.top.size !== 0) {
      const v = this.top.get(key);
      if (v !== undefined) return v === GONE ? undefined : v;
    }
    return this.base.get(key);
  }
  has(key: K): boolean {
    return this.get(key) !== undefined;
  }
  *entries(): MapIterator<[K, V]> {
    for (const [k, v] of this.top) if (v !== GONE) yield [k, v];
    for (const e of this.base) if (!this.top.has(e[0])) yield e;
  }
  *keys(): MapIterator<K> {
    for (const [k] of this.entries()) yield k;
  }
  *values(): MapIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }
  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }
  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) callback.call(thisArg, v, k, this);
  }
}

/** Takes immutable snapshots of one mutable map, told which keys changed since the last. */
class Snapshots<K, V> {
  private base: ReadonlyMap<K, V> = new Map();
  private top = new Map<K, V | typeof GONE>();
  private changed = new Set<K>();
  private current: ReadonlyMap<K, V> | undefined;
  constructor(private readonly live: ReadonlyMap<K, V>) {}
  touch(key: K): void {
    this.changed.add(key);
  }
  snapshot(): ReadonlyMap<K, V> {
    if (this.current && this.changed.size === 0) return this.current;
    if (this.top.size + this.changed.size > 64 + this.live.size / 8) {
      this.base = new Map(this.live);
      this.top = new Map();
    } else {
      const top = new Map(this.top);
      for (const k of this.changed) {
        const v = this.live.get(k);
        top.set(k, v === undefined ? GONE : v);
      }
      this.top = top;
    }
    this.changed.clear();
    this.current = this.top.size === 0 ? this.base : new LayeredMap(this.base, this.top, this.live.size);
    return this.current;
  }
}

/** What a `Table` is made of: every field of a `RouteTable` but `groups`, which it gathers itself. */
type TableFields = Omit<RouteTable, 'groups'>;

// The fields are `TableFields` (declaration merging): set once, from the builder's named fields.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging -- the merge is the point
interface Table extends TableFields {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- see above
class Table implements RouteTable {
  private sorted: RouteGroup[] | undefined;

  constructor(f: TableFields) {
    Object.assign(this, f);
  }

  /** Every group in precedence order; gathered from the indexes (each group is in exactly one) on first use: listing only, never the hot path. */
  get groups(): readonly RouteGroup[] {
    if (!this.sorted) {
      const all: RouteGroup[] = [...this.restRegex, ...this.grpcRegex];
      for (const index of [this.restByPrefix, this.grpcByIdentity, this.grpcByPrefix]) for (const list of index.values()) all.push(...list);
      this.sorted = all.sort(comparePrecedence);
    }
    return this.sorted;
  }
}

export class TableBuilder {
  readonly options: Readonly<CompileOptions>;
  private generation = 0;
  private readonly compiled = new Map<string, CompiledDeployment>();
  /** group key → deployment key → that deployment's specs in the group. */
  private readonly specs = new Map<string, Map<string, RouteSpec[]>>();
  private readonly groups = new Map<string, RouteGroup>();
  private readonly groupsOfDeployment = new Map<string, Set<string>>();
  private readonly indexKeys = {
    restByPrefix: new Map<string, Set<string>>(),
    grpcByPrefix: new Map<string, Set<string>>(),
    grpcByIdentity: new Map<string, Set<string>>(),
  };
  private readonly restByPrefix = new Map<string, readonly RouteGroup[]>();
  private readonly grpcByPrefix = new Map<string, readonly RouteGroup[]>();
  private readonly grpcByIdentity = new Map<string, readonly RouteGroup[]>();
  private readonly grpcNamespaces = new Map<string, readonly string[]>();
  private readonly snapshots = {
    restByPrefix: new Snapshots(this.restByPrefix),
    grpcByPrefix: new Snapshots(this.grpcByPrefix),
    grpcByIdentity: new Snapshots(this.grpcByIdentity),
  };
  private readonly grpcNamespacesSnapshots = new Snapshots(this.grpcNamespaces);
  private restOdd: readonly number[] = [];
  private grpcOdd: readonly number[] = [];
  /** seldon value → namespaces that may have a generated gRPC route for it (pruned on refresh). */
  private readonly namespacesBySeldon = new Map<string, Set<string>>();
  private restRegex: readonly RouteGroup[] = [];
  private grpcRegex: readonly RouteGroup[] = [];
  private readonly reports = new Map<string, DeploymentReport>();
  private readonly reportSnapshots = new Snapshots(this.reports);
  private readonly dirtyGroups = new Set<string>();
  private readonly dirtyDeployments = new Set<string>();
  /** client_id → deployment key → its claim; registered only while there is exactly one. */
  private readonly claims = new Map<string, Map<string, OAuthClient>>();
  private readonly dirtyClients = new Set<string>();
  private oauthClients: ReadonlyMap<string, OAuthClient> = new Map();
  private readonly own = new Map<string, OwnRoutes>();
  private readonly ownSnapshots = new Snapshots(this.own);
  private readonly dirtyOwn = new Set<string>();
  /** Service key → OAuth-gated deployment key → the gate every route to that Service applies. */
  private readonly owners = new Map<string, Map<string, Gate>>();
  /** Service key → deployments whose routes the external auth service checks and that make that Service. */
  private readonly checkedBy = new Map<string, Set<string>>();
  /** Service key → deployments with a route to it; and each deployment's Service keys. */
  private readonly targeting = new Map<string, Set<string>>();
  private readonly targetsOf = new Map<string, readonly string[]>();
  private readonly dirtyServices = new Set<string>();

  constructor(options: Readonly<CompileOptions>) {
    this.options = options;
  }

  /** Add or replace one deployment; returns its compiled form. */
  upsert(d: SeldonDeployment): CompiledDeployment {
    const c = compileDeployment(d, this.options);
    this.detach(c.key);
    this.compiled.set(c.key, c);
    if (c.steering) this.setSteering(c.key, c.steering);
    else this.setSteering(c.key, undefined);
    const touched = new Set<string>();
    // A deployment's specs share their match objects; the key is computed once per distinct match.
    let last: RouteSpec | undefined;
    let gk = '';
    for (const spec of c.routes) {
      if (
        !last ||
        spec.path !== last.path ||
        spec.headers !== last.headers ||
        spec.grpcIdentity !== last.grpcIdentity ||
        spec.host !== last.host ||
        spec.kind !== last.kind ||
        spec.namespace !== last.namespace
      ) {
        gk = groupKeyOf(spec);
        last = spec;
      }
      touched.add(gk);
      let byDep = this.specs.get(gk);
      if (!byDep) this.specs.set(gk, (byDep = new Map()));
      let list = byDep.get(c.key);
      if (!list) byDep.set(c.key, (list = []));
      list.push(spec);
      this.dirtyGroups.add(gk);
    }
    this.groupsOfDeployment.set(c.key, touched);
    this.dirtyDeployments.add(c.key);
    for (const client of c.clients) {
      let byDep = this.claims.get(client.clientId);
      if (!byDep) this.claims.set(client.clientId, (byDep = new Map()));
      byDep.set(c.key, client);
      this.dirtyClients.add(client.clientId);
    }
    const targets = new Set<string>();
    for (const spec of c.routes) if (spec.target !== null) targets.add(spec.target);
    for (const t of targets) {
      let deps = this.targeting.get(t);
      if (!deps) this.targeting.set(t, (deps = new Set()));
      deps.add(c.key);
    }
    this.targetsOf.set(c.key, [...targets]);
    for (const svc of c.owned?.services ?? []) {
      let byDep = this.owners.get(svc);
      if (!byDep) this.owners.set(svc, (byDep = new Map()));
      byDep.set(c.key, c.owned!.gate);
      this.dirtyServices.add(svc);
    }
    for (const svc of c.externallyChecked ?? []) {
      let deps = this.checkedBy.get(svc);
      if (!deps) this.checkedBy.set(svc, (deps = new Set()));
      deps.add(c.key);
      this.dirtyServices.add(svc);
    }
    this.dirtyOwn.add(c.key);
    return c;
  }

  /** Remove one deployment by `namespace/name`; unknown keys are ignored. */
  remove(key: string): void {
    this.detach(key);
    this.compiled.delete(key);
    this.setSteering(key, undefined);
    this.groupsOfDeployment.delete(key);
    this.reports.delete(key);
    this.reportSnapshots.touch(key);
  }

  has(key: string): boolean {
    return this.compiled.has(key);
  }

  private detach(key: string): void {
    const previous = this.compiled.get(key);
    for (const client of previous?.clients ?? []) {
      const byDep = this.claims.get(client.clientId);
      byDep?.delete(key);
      if (byDep && byDep.size === 0) this.claims.delete(client.clientId);
      this.dirtyClients.add(client.clientId);
    }
    for (const svc of previous?.owned?.services ?? []) {
      const byDep = this.owners.get(svc);
      byDep?.delete(key);
      if (byDep && byDep.size === 0) this.owners.delete(svc);
      this.dirtyServices.add(svc);
    }
    for (const svc of previous?.externallyChecked ?? []) {
      const deps = this.checkedBy.get(svc);
      deps?.delete(key);
      if (deps && deps.size === 0) this.checkedBy.delete(svc);
      this.dirtyServices.add(svc);
    }
    for (const t of this.targetsOf.get(key) ?? []) {
      const deps = this.targeting.get(t);
      deps?.delete(key);
      if (deps && deps.size === 0) this.targeting.delete(t);
    }
    this.targetsOf.delete(key);
    this.dirtyOwn.add(key);
    const old = this.groupsOfDeployment.get(key);
    if (!old) return;
    for (const gk of old) {
      const byDep = this.specs.get(gk);
      byDep?.delete(key);
      if (byDep && byDep.size === 0) this.specs.delete(gk);
      this.dirtyGroups.add(gk);
    }
    this.dirtyDeployments.add(key);
  }

  /** Rebuild what changed and return a new immutable table. */
  build(): RouteTable {
    const touchedIndex = { restByPrefix: new Set<string>(), grpcByPrefix: new Set<string>(), grpcByIdentity: new Set<string>() };
    const touchedSeldon = new Set<string>();
    let regexTouched = false;
    // A Service whose OAuth owners changed: every route to it takes the new gate.
    for (const svc of this.dirtyServices) {
      for (const dk of this.targeting.get(svc) ?? []) {
        for (const gk of this.groupsOfDeployment.get(dk) ?? []) this.dirtyGroups.add(gk);
        this.dirtyOwn.add(dk);
        this.dirtyDeployments.add(dk);
      }
    }
    this.dirtyServices.clear();
    for (const gk of this.dirtyGroups) {
      const old = this.groups.get(gk);
      const byDep = this.specs.get(gk);
      const group = byDep ? buildGroup(gk, [...byDep.values()].flat(), this.effective, this.stickyOf) : undefined;
      for (const g of [old, group]) {
        if (!g) continue;
        const where = indexOf(g);
        if ('list' in where) regexTouched = true;
        else touchedIndex[where.map].add(where.key);
        if (g.grpcIdentity) {
          touchedSeldon.add(g.grpcIdentity.seldon);
          let nss = this.namespacesBySeldon.get(g.grpcIdentity.seldon);
          if (!nss) this.namespacesBySeldon.set(g.grpcIdentity.seldon, (nss = new Set()));
          nss.add(g.grpcIdentity.namespace);
        }
        // A group's warnings belong to the report of every deployment with a route in it
        // (members are in id order, so one deployment's are adjacent: one key each).
        let origin: Backend['origin'] | undefined;
        for (const m of [...g.members, ...g.mirrors]) {
          const o = m.backend.origin;
          if (origin && o.deployment === origin.deployment && o.namespace === origin.namespace) continue;
          origin = o;
          this.dirtyDeployments.add(deploymentKeyOf(m.backend));
        }
      }
      // Take the key out of the old group's index entry and put it in the new one's: the two differ
      // when the group changes form (e.g. a generated gRPC route joins or leaves a custom copy).
      if (old) {
        const where = indexOf(old);
        if (!('list' in where)) {
          const set = this.indexKeys[where.map].get(where.key);
          set?.delete(gk);
          if (set && set.size === 0) this.indexKeys[where.map].delete(where.key);
        }
      }
      if (group) {
        const where = indexOf(group);
        if (!('list' in where)) {
          const keys = this.indexKeys[where.map];
          let set = keys.get(where.key);
          if (!set) keys.set(where.key, (set = new Set()));
          set.add(gk);
        }
      }
      if (group) this.groups.set(gk, group);
      else this.groups.delete(gk);
    }
    this.dirtyGroups.clear();

    const oddTouched = { restByPrefix: false, grpcByPrefix: false, grpcByIdentity: false };
    for (const map of ['restByPrefix', 'grpcByPrefix', 'grpcByIdentity'] as const) {
      for (const k of touchedIndex[map]) {
        const keys = this.indexKeys[map].get(k);
        if (!keys) this[map].delete(k);
        else this[map].set(k, [...keys].map((gk) => this.groups.get(gk)!).sort(comparePrecedence));
        this.snapshots[map].touch(k);
        if (!k.endsWith('/')) oddTouched[map] = true;
      }
    }
    // Odd (not `/`-terminated) prefixes come only from custom Mappings: recount only when one changed.
    if (oddTouched.restByPrefix) this.restOdd = oddLengths(this.restByPrefix.keys());
    if (oddTouched.grpcByPrefix) this.grpcOdd = oddLengths(this.grpcByPrefix.keys());
    if (regexTouched) {
      const regex = [...this.groups.values()].filter((g) => g.path.kind === 'regex' && !g.grpcIdentity).sort(comparePrecedence);
      this.restRegex = regex.filter((g) => g.kind === 'rest');
      this.grpcRegex = regex.filter((g) => g.kind === 'grpc');
    }
    for (const seldon of touchedSeldon) this.refreshGrpcNamespaces(seldon);
    this.refreshClients();
    for (const dk of this.dirtyOwn) {
      // Only a deployment with an OAuth client can be reached through the front end.
      const c = this.compiled.get(dk);
      const own = c && c.clients.length > 0 ? ownRoutesOf(c, this.effective) : null;
      if (own) {
        this.own.set(dk, own);
        this.ownSnapshots.touch(dk);
      } else if (this.own.delete(dk)) this.ownSnapshots.touch(dk);
    }
    this.dirtyOwn.clear();
    for (const dk of this.dirtyDeployments) this.refreshReport(dk);
    this.dirtyDeployments.clear();

    this.generation++;
    return new Table({
      generation: this.generation,
      options: this.options,
      restByPrefix: this.snapshots.restByPrefix.snapshot(),
      restOddPrefixLengths: this.restOdd,
      restRegex: this.restRegex,
      grpcByIdentity: this.snapshots.grpcByIdentity.snapshot(),
      grpcNamespaces: this.grpcNamespacesSnapshots.snapshot(),
      grpcByPrefix: this.snapshots.grpcByPrefix.snapshot(),
      grpcOddPrefixLengths: this.grpcOdd,
      grpcRegex: this.grpcRegex,
      deployments: this.reportSnapshots.snapshot(),
      oauthClients: this.oauthClients,
      ownRoutes: this.ownSnapshots.snapshot(),
      steering: (this.steeringSnapshot ??= new Map(this.steering)),
    });
  }

  /** Steered deployments (routing/steering.ts); the table's map is copied only after a change. */
  private readonly steering = new Map<string, DeploymentSteering>();
  private steeringSnapshot: ReadonlyMap<string, DeploymentSteering> | undefined;

  private setSteering(key: string, steering: DeploymentSteering | undefined): void {
    if (steering) this.steering.set(key, steering);
    else if (!this.steering.delete(key)) return;
    this.steeringSnapshot = undefined;
  }

  private readonly stickyOf = (deployment: string): StickySpec | null => this.steering.get(deployment)?.sticky ?? null;

  /**
   * A spec's backend as served (docs/routing.md#custom-ambassador-config): a route to a Service of an OAuth-gated deployment
   * applies that deployment's gate, whoever's route it is; to a Service two gated deployments claim,
   * a gate no token passes. Its own gate otherwise.
   */
  private readonly effective = (s: RouteSpec): Backend => {
    if (s.target === null) return s.backend;
    const owners = this.owners.get(s.target);
    const self = deploymentKeyOf(s.backend);
    // A Service another deployment makes, whose routes the external auth service checks: so is this route (a Mapping's bypass_auth covers its own deployment's Services only).
    const checkers = this.checkedBy.get(s.target);
    const external = checkers !== undefined && !(s.backend.gate?.external ?? false) && (checkers.size > 1 || !checkers.has(self));
    let gate: Gate;
    if (!owners || (owners.size === 1 && owners.has(self))) {
      if (!external) return s.backend;
      gate = externallyCheckedGate(s.backend.gate);
    } else if (owners.size === 1) gate = ownersGate(owners.values().next().value!, s.backend.gate, external);
    else gate = conflictedGate(s.backend.gate, external);
    const b = s.backend;
    return {
      id: b.id,
      origin: b.origin,
      upstream: b.upstream,
      rewrite: b.rewrite,
      timeoutMs: b.timeoutMs,
      idleTimeoutMs: b.idleTimeoutMs,
      retry: b.retry,
      breaker: b.breaker,
      gate,
      cors: b.cors,
      steered: b.steered,
      flow: b.flow,
    };
  };

  /** Settle the client_ids whose claims changed; a new registry map only when one did. */
  private refreshClients(): void {
    if (this.dirtyClients.size === 0) return;
    const next = new Map(this.oauthClients);
    for (const id of this.dirtyClients) {
      const byDep = this.claims.get(id);
      if (byDep?.size === 1) next.set(id, byDep.values().next().value!);
      else next.delete(id);
      // Every claimant's report says whether it got the id.
      for (const dk of byDep?.keys() ?? []) this.dirtyDeployments.add(dk);
    }
    this.dirtyClients.clear();
    this.oauthClients = next;
  }

  private refreshGrpcNamespaces(seldon: string): void {
    const namespaces: string[] = [];
    const candidates = this.namespacesBySeldon.get(seldon) ?? new Set<string>();
    for (const ns of candidates) {
      const gks = this.indexKeys.grpcByIdentity.get(`${ns}\u0000${seldon}`);
      if (!gks) candidates.delete(ns);
      else if ([...gks].some((gk) => this.groups.get(gk)!.members.length > 0)) namespaces.push(ns);
    }
    if (candidates.size === 0) this.namespacesBySeldon.delete(seldon);
    if (namespaces.length) this.grpcNamespaces.set(seldon, namespaces.sort());
    else this.grpcNamespaces.delete(seldon);
    this.grpcNamespacesSnapshots.touch(seldon);
  }

  private refreshReport(dk: string): void {
    this.reportSnapshots.touch(dk);
    const c = this.compiled.get(dk);
    if (!c) {
      this.reports.delete(dk);
      return;
    }
    const extra: string[] = [];
    for (const client of c.clients) {
      const others = [...(this.claims.get(client.clientId)?.keys() ?? [])].filter((k) => k !== dk);
      if (others.length) extra.push(`OAuth client_id "${client.clientId}" is also claimed by ${others.sort().join(', ')}: neither gets it`);
    }
    for (const t of this.targetsOf.get(dk) ?? []) {
      const owners = this.owners.get(t);
      if (!owners || (owners.size === 1 && owners.has(dk))) continue;
      if (owners.size === 1) extra.push(`Service ${t} belongs to OAuth-gated deployment ${[...owners.keys()][0]}: routes to it need that deployment's token`);
      else extra.push(`Service ${t} is claimed by several OAuth-gated deployments (${[...owners.keys()].sort().join(', ')}): routes to it refuse every token`);
    }
    for (const gk of this.groupsOfDeployment.get(dk) ?? []) {
      const g = this.groups.get(gk);
      if (!g) continue;
      for (const w of g.warnings) extra.push(`${describeMatch(g)}: ${w}`);
      if (g.members.length === 0 && g.mirrors.length > 0) extra.push(`${describeMatch(g)}: only shadows, no primary member: not routed`);
    }
    if (extra.length === 0) {
      this.reports.set(dk, c.report);
      return;
    }
    const r = c.report;
    const state = r.state === 'accepted' ? 'degraded' : r.state;
    this.reports.set(dk, { ...r, state, reasons: [...r.reasons, ...[...new Set(extra)].sort()] });
  }
}

/**
 * A deployment's own routes for the OAuth front end: its generated predictor routes of each kind
 * (members with their weights, shadows as mirrors), without header constraints.
 */
function ownRoutesOf(c: CompiledDeployment, effective: (s: RouteSpec) => Backend): OwnRoutes | null {
  const { namespace, name } = c.report;
  const group = (kind: 'rest' | 'grpc'): RouteGroup | null => {
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
  if (g.host) hs.push(`host=${g.host}`);
  return hs.length ? `${what} [${hs.join(', ')}]` : what;
}

/** A table from scratch. */
export function buildTable(deployments: Iterable<SeldonDeployment>, options: Readonly<CompileOptions>): RouteTable {
  const b = new TableBuilder(options);
  for (const d of deployments) b.upsert(d);
  return b.build();
}
