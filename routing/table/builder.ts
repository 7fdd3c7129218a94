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
 *
 * The groups themselves are built in `route-group.ts`, the gates of routes to other deployments'
 * Services settled in `owner-gates.ts`, and the indexes snapshotted by `snapshots.ts`.
 */
import { compileDeployment, type CompiledDeployment, type RouteSpec } from '../compile/deployment.js';
import { servedBackend } from './owner-gates.js';
import { FallbackDependents } from '../fallback/deps.js';
import { buildGroup, comparePrecedence, deploymentKeyOf, describeMatch, groupKeyOf, ownRoutesOf } from './route-group.js';
import type { SeldonDeployment } from '../seldon/deployment.js';
import { Snapshots } from './snapshots.js';
import { StringSets } from './string-sets.js';
import { joined } from '../values/text.js';
import type { DeploymentSteering } from '../steering/spec.js';
import type { StickySpec } from '../steering/sticky.js';
import type { Backend, CompileOptions, DeploymentReport, Gate, OAuthClient, OwnRoutes, RouteGroup, RouteTable } from '../types.js';

/** A generated gRPC route's key in `grpcByIdentity`. */
const identityKey = (namespace: string, seldon: string): string => joined(namespace, '\u0000', seldon);

/** Which index a group lives in. */
function indexOf(g: RouteGroup): { map: 'restByPrefix' | 'grpcByPrefix' | 'grpcByIdentity'; key: string } | { list: 'restRegex' | 'grpcRegex' } {
  if (g.grpcIdentity) return { map: 'grpcByIdentity', key: identityKey(g.grpcIdentity.namespace, g.grpcIdentity.seldon) };
  if (g.path.kind !== 'prefix') return { list: g.kind === 'rest' ? 'restRegex' : 'grpcRegex' };
  return { map: g.kind === 'rest' ? 'restByPrefix' : 'grpcByPrefix', key: g.path.prefix };
}

/** 1 for a REST prefix group with a Mapping's `precedence` (it may outrank a longer prefix), else 0. */
function rankedPrefix(g: RouteGroup | undefined): number {
  return g !== undefined && g.kind === 'rest' && g.path.kind === 'prefix' && g.rank !== 0 ? 1 : 0;
}

function oddLengths(prefixes: Iterable<string>): number[] {
  const lengths = new Set<number>();
  for (const p of prefixes) if (!p.endsWith('/')) lengths.add(p.length);
  return [...lengths].sort((a, b) => b - a);
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
  private compileOptions: Readonly<CompileOptions>;
  /** Each deployment as last upserted: compiled again when the options change. */
  private readonly sources = new Map<string, SeldonDeployment>();
  private generation = 0;
  private readonly compiled = new Map<string, CompiledDeployment>();
  /** group key → the deployments with a route in the group (their specs there: `specsOf`). */
  private readonly deploymentsOf = new StringSets<string>();
  private readonly groups = new Map<string, RouteGroup>();
  /** deployment key → the group key of each of its compiled routes, in their order. */
  private readonly routeGroups = new Map<string, readonly string[]>();
  private readonly indexKeys = {
    restByPrefix: new StringSets<string>(),
    grpcByPrefix: new StringSets<string>(),
    grpcByIdentity: new StringSets<string>(),
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
  /** REST prefix groups with a `precedence`: while there are any, `match` orders every depth's candidates together. */
  private restRankedCount = 0;
  /** `/`-terminated REST prefixes by how many `/` they have (the table's `restPrefixDepths`). */
  private readonly restDepthCounts = new Map<number, number>();
  private restDepths: readonly number[] = [];
  private grpcOdd: readonly number[] = [];
  /** seldon value → namespaces that may have a generated gRPC route for it (pruned on refresh). */
  private readonly namespacesBySeldon = new StringSets<string>();
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
  private readonly targeting = new StringSets<string>();
  private readonly targetsOf = new Map<string, readonly string[]>();
  private readonly dirtyServices = new Set<string>();
  /** Deployments that fall back to another, by the one they name (routing/fallback/deps.ts). */
  private readonly fallbackDeps = new FallbackDependents();

  constructor(options: Readonly<CompileOptions>) {
    this.compileOptions = options;
  }

  get options(): Readonly<CompileOptions> {
    return this.compileOptions;
  }

  /**
   * Compile every deployment again under new options (the operator's JWT providers changed while
   * the gateway runs); returns their keys. The next `build` has the new options.
   */
  reconfigure(options: Readonly<CompileOptions>): string[] {
    this.compileOptions = options;
    for (const d of [...this.sources.values()]) this.upsert(d);
    return [...this.sources.keys()];
  }

  /** Add or replace one deployment; returns its compiled form. */
  upsert(d: SeldonDeployment): CompiledDeployment {
    const c = compileDeployment(d, this.compileOptions);
    this.sources.set(c.key, d);
    this.detach(c.key);
    this.compiled.set(c.key, c);
    this.fallbackDeps.set(c.key, c.fallbackTo ?? []);
    if (c.steering) this.setSteering(c.key, c.steering);
    else this.setSteering(c.key, undefined);
    // A deployment's specs share their match objects; the key is computed once per distinct match,
    // and kept once per distinct key (`distinct`: the one string each of its routes holds).
    const keys: string[] = [];
    const distinct = new Map<string, string>();
    let last: RouteSpec | undefined;
    let gk = '';
    for (const spec of c.routes) {
      if (
        !last ||
        spec.path !== last.path ||
        spec.headers !== last.headers ||
        spec.grpcIdentity !== last.grpcIdentity ||
        spec.host !== last.host ||
        spec.query !== last.query ||
        spec.rank !== last.rank ||
        spec.kind !== last.kind ||
        spec.namespace !== last.namespace
      ) {
        gk = groupKeyOf(spec);
        last = spec;
        const seen = distinct.get(gk);
        if (seen === undefined) {
          distinct.set(gk, gk);
          this.deploymentsOf.add(gk, c.key);
          this.dirtyGroups.add(gk);
        } else gk = seen;
      }
      keys.push(gk);
    }
    this.routeGroups.set(c.key, keys);
    this.dirtyDeployments.add(c.key);
    for (const client of c.clients) {
      let byDep = this.claims.get(client.clientId);
      if (!byDep) this.claims.set(client.clientId, (byDep = new Map()));
      byDep.set(c.key, client);
      this.dirtyClients.add(client.clientId);
    }
    const targets = new Set<string>();
    for (const spec of c.routes) if (spec.target !== null) targets.add(spec.target);
    for (const t of targets) this.targeting.add(t, c.key);
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
    this.sources.delete(key);
    this.compiled.delete(key);
    this.fallbackDeps.clear(key);
    this.setSteering(key, undefined);
    this.routeGroups.delete(key);
    this.reports.delete(key);
    this.reportSnapshots.touch(key);
  }

  has(key: string): boolean {
    return this.compiled.has(key);
  }

  private detach(key: string): void {
    const previous = this.compiled.get(key);
    for (const dk of this.fallbackDeps.dependents(key)) this.dirtyDeployments.add(dk);
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
    for (const t of this.targetsOf.get(key) ?? []) this.targeting.delete(t, key);
    this.targetsOf.delete(key);
    this.dirtyOwn.add(key);
    const old = this.routeGroups.get(key);
    if (!old) return;
    for (const gk of old) {
      this.deploymentsOf.delete(gk, key);
      this.dirtyGroups.add(gk);
    }
    this.dirtyDeployments.add(key);
  }

  /** The specs of group `gk`: each of its deployments' routes in it. */
  private specsOf(gk: string): RouteSpec[] {
    const specs: RouteSpec[] = [];
    for (const dk of this.deploymentsOf.get(gk)) {
      const routes = this.compiled.get(dk)!.routes;
      const keys = this.routeGroups.get(dk)!;
      for (let i = 0; i < keys.length; i++) if (keys[i] === gk) specs.push(routes[i]!);
    }
    return specs;
  }

  /** Rebuild what changed and return a new immutable table. */
  /** A `/`-terminated REST prefix came (+1) or went (-1); true when a depth appeared or left. */
  private countDepth(prefix: string, by: 1 | -1): boolean {
    let depth = 0;
    for (let i = 0; i < prefix.length; i++) if (prefix.charCodeAt(i) === 47) depth++;
    const n = (this.restDepthCounts.get(depth) ?? 0) + by;
    if (n <= 0) this.restDepthCounts.delete(depth);
    else this.restDepthCounts.set(depth, n);
    return n === 0 || (n === 1 && by === 1);
  }

  build(): RouteTable {
    const touchedIndex = { restByPrefix: new Set<string>(), grpcByPrefix: new Set<string>(), grpcByIdentity: new Set<string>() };
    const touchedSeldon = new Set<string>();
    let regexTouched = false;
    // A Service whose OAuth owners changed: every route to it takes the new gate.
    for (const svc of this.dirtyServices) {
      for (const dk of this.targeting.get(svc)) {
        for (const gk of this.routeGroups.get(dk) ?? []) this.dirtyGroups.add(gk);
        this.dirtyOwn.add(dk);
        this.dirtyDeployments.add(dk);
      }
    }
    this.dirtyServices.clear();
    for (const gk of this.dirtyGroups) {
      const old = this.groups.get(gk);
      const group = this.deploymentsOf.has(gk) ? buildGroup(gk, this.specsOf(gk), this.effective, this.stickyOf) : undefined;
      this.restRankedCount += rankedPrefix(group) - rankedPrefix(old);
      for (const g of [old, group]) {
        if (!g) continue;
        const where = indexOf(g);
        if ('list' in where) regexTouched = true;
        else touchedIndex[where.map].add(where.key);
        if (g.grpcIdentity) {
          touchedSeldon.add(g.grpcIdentity.seldon);
          this.namespacesBySeldon.add(g.grpcIdentity.seldon, g.grpcIdentity.namespace);
        }
        // A group's warnings belong to the report of every deployment with a route in it
        // (members are in id order, so one deployment's are adjacent: one key each).
        let origin: Backend['origin'] | undefined;
        for (const b of [...g.members.map((m) => m.backend), ...g.mirrors.map((m) => m.backend), ...(g.refused ?? [])]) {
          const o = b.origin;
          if (origin && o.deployment === origin.deployment && o.namespace === origin.namespace) continue;
          origin = o;
          this.dirtyDeployments.add(deploymentKeyOf(b));
        }
      }
      // Take the key out of the old group's index entry and put it in the new one's: the two differ
      // when the group changes form (e.g. a generated gRPC route joins or leaves a custom copy).
      if (old) {
        const where = indexOf(old);
        if (!('list' in where)) this.indexKeys[where.map].delete(where.key, gk);
      }
      if (group) {
        const where = indexOf(group);
        if (!('list' in where)) this.indexKeys[where.map].add(where.key, gk);
      }
      if (group) this.groups.set(gk, group);
      else this.groups.delete(gk);
    }
    this.dirtyGroups.clear();

    const oddTouched = { restByPrefix: false, grpcByPrefix: false, grpcByIdentity: false };
    let depthsTouched = false;
    for (const map of ['restByPrefix', 'grpcByPrefix', 'grpcByIdentity'] as const) {
      for (const k of touchedIndex[map]) {
        const has = this.indexKeys[map].has(k);
        const had = this[map].has(k);
        if (!has) this[map].delete(k);
        else this[map].set(k, [...this.indexKeys[map].get(k)].map((gk) => this.groups.get(gk)!).sort(comparePrecedence));
        if (map === 'restByPrefix' && had !== has && k.endsWith('/')) depthsTouched = this.countDepth(k, has ? 1 : -1) || depthsTouched;
        this.snapshots[map].touch(k);
        if (!k.endsWith('/')) oddTouched[map] = true;
      }
    }
    // Odd (not `/`-terminated) prefixes come only from custom Mappings: recount only when one changed.
    if (oddTouched.restByPrefix) this.restOdd = oddLengths(this.restByPrefix.keys());
    if (depthsTouched) this.restDepths = [...this.restDepthCounts.keys()].sort((a, b) => b - a);
    if (oddTouched.grpcByPrefix) this.grpcOdd = oddLengths(this.grpcByPrefix.keys());
    if (regexTouched) {
      const regex = [...this.groups.values()].filter((g) => g.path.kind !== 'prefix' && !g.grpcIdentity).sort(comparePrecedence);
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
      restPrefixDepths: this.restDepths,
      restRanked: this.restRankedCount > 0,
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

  /** Steered deployments (routing/steering/spec.ts); the table's map is copied only after a change. */
  private readonly steering = new Map<string, DeploymentSteering>();
  private steeringSnapshot: ReadonlyMap<string, DeploymentSteering> | undefined;

  private setSteering(key: string, steering: DeploymentSteering | undefined): void {
    if (steering) this.steering.set(key, steering);
    else if (!this.steering.delete(key)) return;
    this.steeringSnapshot = undefined;
  }

  private readonly stickyOf = (deployment: string): StickySpec | null => this.steering.get(deployment)?.sticky ?? null;

  /** A spec's backend as served: its gate settled against the owners of the Service it targets (owner-gates.ts). */
  private readonly effective = (s: RouteSpec): Backend => servedBackend(s, this.owners, this.checkedBy);

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
    for (const ns of [...this.namespacesBySeldon.get(seldon)]) {
      const identity = identityKey(ns, seldon);
      if (!this.indexKeys.grpcByIdentity.has(identity)) this.namespacesBySeldon.delete(seldon, ns);
      else if ([...this.indexKeys.grpcByIdentity.get(identity)].some((gk) => this.groups.get(gk)!.members.length > 0)) namespaces.push(ns);
    }
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
      const [owner, gate] = [...owners.entries()][0]!;
      if (owners.size === 1 && gate.auth === null) extra.push(`Service ${t} belongs to JWT-gated deployment ${owner}: routes to it need a token its policy accepts`);
      else if (owners.size === 1) extra.push(`Service ${t} belongs to OAuth-gated deployment ${owner}: routes to it need that deployment's token`);
      else extra.push(`Service ${t} is claimed by several OAuth-gated deployments (${[...owners.keys()].sort().join(', ')}): routes to it refuse every token`);
    }
    extra.push(...this.fallbackDeps.missing(dk, (k) => (this.compiled.get(k)?.routes.length ?? 0) > 0));
    for (const gk of new Set(this.routeGroups.get(dk))) {
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

/** A table from scratch. */
export function buildTable(deployments: Iterable<SeldonDeployment>, options: Readonly<CompileOptions>): RouteTable {
  const b = new TableBuilder(options);
  for (const d of deployments) b.upsert(d);
  return b.build();
}
