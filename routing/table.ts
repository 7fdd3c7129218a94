/**
 * The route table: compiled deployments gathered into groups, ordered and indexed for `match`.
 *
 * `TableBuilder` keeps the compiled form of every SeldonDeployment. `upsert`/`remove` recompile
 * one deployment and mark only the groups its old and new routes touch; `build()` rebuilds just
 * those groups and their index entries, and returns a new immutable `RouteTable` (the indexes
 * are copied, the untouched groups shared). A full rebuild is the same builder fed every
 * deployment once, and must give an equal table (property-tested).
 *
 * Beside the routes, the table holds what the OAuth front end needs (SEMANTICS.md §12): the client
 * registry (a client_id claimed by two deployments goes to neither, and both are degraded) and each
 * deployment's own routes (its predictors only, no header constraints).
 */
import { compileDeployment, type CompiledDeployment, type RouteSpec } from './compile.js';
import { constraintText, constraintWeight } from './values.js';
import { cumulativeOf, normaliseWeights } from './weights.js';
import type {
  Backend,
  CompileOptions,
  DeploymentReport,
  HeaderConstraint,
  Mirror,
  OAuthClient,
  OwnRoutes,
  PathMatcher,
  Precedence,
  RouteGroup,
  RouteTable,
  SeldonDeployment,
  RouteMatch,
  WeightedBackend,
} from './types.js';

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

/** SEMANTICS.md §6.5; namespace and key settle the (rare) ties between namespaces. */
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

function buildGroup(key: string, specs: readonly RouteSpec[]): RouteGroup {
  // Specs sharing a key agree on the match, except that a custom copy of a generated gRPC Mapping
  // (regex path plus exact `seldon`/`namespace` headers) carries the identity as plain headers:
  // the generated form stands for the group, so the result never depends on arrival order.
  const first = specs.find((s) => s.grpcIdentity !== null) ?? specs[0]!;
  const memberSpecs = specs.filter((s) => !s.shadow).sort(byId);
  const { percents, warning } = normaliseWeights(memberSpecs.map((s) => s.weight));
  const members: WeightedBackend[] = memberSpecs.map((s, i) => ({ backend: s.backend, percent: percents[i]! }));
  const mirrors: Mirror[] = specs
    .filter((s) => s.shadow)
    .sort(byId)
    .map((s) => ({ backend: s.backend, percent: s.weight ?? 100 }));
  const headers: HeaderConstraint[] = [...first.headers].sort((a, b) => cmp(`${a.kind}:${constraintText(a)}`, `${b.kind}:${constraintText(b)}`));
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
  };
}

/** Which index a group lives in. */
function indexOf(g: RouteGroup): { map: 'restByPrefix' | 'grpcByPrefix' | 'grpcByIdentity'; key: string } | { list: 'restRegex' | 'grpcRegex' } {
  if (g.grpcIdentity) return { map: 'grpcByIdentity', key: `${g.grpcIdentity.namespace}\u0000${g.grpcIdentity.seldon}` };
  if (g.path.kind === 'regex') return { list: g.kind === 'rest' ? 'restRegex' : 'grpcRegex' };
  return { map: g.kind === 'rest' ? 'restByPrefix' : 'grpcByPrefix', key: g.path.prefix };
}

const deploymentKeyOf = (b: Backend): string => `${b.origin.namespace}/${b.origin.deployment}`;

function oddLengths(prefixes: Iterable<string>): number[] {
  const lengths = new Set<number>();
  for (const p of prefixes) if (!p.endsWith('/')) lengths.add(p.length);
  return [...lengths].sort((a, b) => b - a);
}

class Table implements RouteTable {
  private sorted: RouteGroup[] | undefined;
  constructor(
    readonly generation: number,
    readonly options: Readonly<CompileOptions>,
    readonly restByPrefix: ReadonlyMap<string, readonly RouteGroup[]>,
    readonly restOddPrefixLengths: readonly number[],
    readonly restRegex: readonly RouteGroup[],
    readonly grpcByIdentity: ReadonlyMap<string, readonly RouteGroup[]>,
    readonly grpcNamespaces: ReadonlyMap<string, readonly string[]>,
    readonly grpcByPrefix: ReadonlyMap<string, readonly RouteGroup[]>,
    readonly grpcOddPrefixLengths: readonly number[],
    readonly grpcRegex: readonly RouteGroup[],
    readonly deployments: ReadonlyMap<string, DeploymentReport>,
    readonly oauthClients: ReadonlyMap<string, OAuthClient>,
    readonly ownRoutes: ReadonlyMap<string, OwnRoutes>,
  ) {}

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
  /** seldon value → namespaces that may have a generated gRPC route for it (pruned on refresh). */
  private readonly namespacesBySeldon = new Map<string, Set<string>>();
  private restRegex: readonly RouteGroup[] = [];
  private grpcRegex: readonly RouteGroup[] = [];
  private readonly reports = new Map<string, DeploymentReport>();
  private readonly dirtyGroups = new Set<string>();
  private readonly dirtyDeployments = new Set<string>();
  /** client_id → deployment key → its claim; registered only while there is exactly one. */
  private readonly claims = new Map<string, Map<string, OAuthClient>>();
  private readonly dirtyClients = new Set<string>();
  private oauthClients: ReadonlyMap<string, OAuthClient> = new Map();
  private readonly own = new Map<string, OwnRoutes>();
  private ownChanged = false;
  private ownRoutes: ReadonlyMap<string, OwnRoutes> = new Map();

  constructor(options: Readonly<CompileOptions>) {
    this.options = options;
  }

  /** Add or replace one deployment; returns its compiled form. */
  upsert(d: SeldonDeployment): CompiledDeployment {
    const c = compileDeployment(d, this.options);
    this.detach(c.key);
    this.compiled.set(c.key, c);
    const touched = new Set<string>();
    for (const spec of c.routes) {
      const gk = groupKeyOf(spec);
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
    // Only a deployment with an OAuth client can be reached through the front end.
    const own = c.clients.length > 0 ? ownRoutesOf(c) : null;
    if (own) {
      this.own.set(c.key, own);
      this.ownChanged = true;
    } else if (this.own.delete(c.key)) this.ownChanged = true;
    return c;
  }

  /** Remove one deployment by `namespace/name`; unknown keys are ignored. */
  remove(key: string): void {
    this.detach(key);
    this.compiled.delete(key);
    this.groupsOfDeployment.delete(key);
    this.reports.delete(key);
  }

  has(key: string): boolean {
    return this.compiled.has(key);
  }

  private detach(key: string): void {
    for (const client of this.compiled.get(key)?.clients ?? []) {
      const byDep = this.claims.get(client.clientId);
      byDep?.delete(key);
      if (byDep && byDep.size === 0) this.claims.delete(client.clientId);
      this.dirtyClients.add(client.clientId);
    }
    if (this.own.delete(key)) this.ownChanged = true;
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
    for (const gk of this.dirtyGroups) {
      const old = this.groups.get(gk);
      const byDep = this.specs.get(gk);
      const group = byDep ? buildGroup(gk, [...byDep.values()].flat()) : undefined;
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
        // A group's warnings belong to the report of every deployment with a route in it.
        for (const m of g.members) this.dirtyDeployments.add(deploymentKeyOf(m.backend));
        for (const m of g.mirrors) this.dirtyDeployments.add(deploymentKeyOf(m.backend));
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

    for (const map of ['restByPrefix', 'grpcByPrefix', 'grpcByIdentity'] as const) {
      for (const k of touchedIndex[map]) {
        const keys = this.indexKeys[map].get(k);
        if (!keys) this[map].delete(k);
        else this[map].set(k, [...keys].map((gk) => this.groups.get(gk)!).sort(comparePrecedence));
      }
    }
    if (regexTouched) {
      const regex = [...this.groups.values()].filter((g) => g.path.kind === 'regex' && !g.grpcIdentity).sort(comparePrecedence);
      this.restRegex = regex.filter((g) => g.kind === 'rest');
      this.grpcRegex = regex.filter((g) => g.kind === 'grpc');
    }
    for (const seldon of touchedSeldon) this.refreshGrpcNamespaces(seldon);
    this.refreshClients();
    if (this.ownChanged) {
      this.ownRoutes = new Map(this.own);
      this.ownChanged = false;
    }
    for (const dk of this.dirtyDeployments) this.refreshReport(dk);
    this.dirtyDeployments.clear();

    this.generation++;
    return new Table(
      this.generation,
      this.options,
      new Map(this.restByPrefix),
      oddLengths(this.restByPrefix.keys()),
      this.restRegex,
      new Map(this.grpcByIdentity),
      new Map(this.grpcNamespaces),
      new Map(this.grpcByPrefix),
      oddLengths(this.grpcByPrefix.keys()),
      this.grpcRegex,
      new Map(this.reports),
      this.oauthClients,
      this.ownRoutes,
    );
  }

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
  }

  private refreshReport(dk: string): void {
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
function ownRoutesOf(c: CompiledDeployment): OwnRoutes | null {
  const group = (kind: 'rest' | 'grpc'): RouteGroup | null => {
    const seen = new Set<string>();
    const specs: RouteSpec[] = [];
    for (const s of c.routes) {
      if (!s.frontEnd || s.kind !== kind || seen.has(s.backend.id)) continue;
      seen.add(s.backend.id);
      specs.push({ ...s, headers: [] });
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
