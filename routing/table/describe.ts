/**
 * The table as operators see it: a stable JSON form (`routes --json`, admin `/routes`) and a
 * readable tree (`routes`). Both are pure functions of the table.
 */
import type { MappingPolicy } from '../emissary/mapping-policy.js';
import { describeMatch } from './route-group.js';
import { constraintText } from '../values/syntax.js';
import type { Backend, CorsPolicy, DeploymentReport, Protocol, RouteGroup, RouteTable } from '../types.js';
import { hedgeAfterText } from '../hedge/config.js';

export interface BackendJson {
  id: string;
  namespace: string;
  deployment: string;
  predictor: string;
  upstream: string;
  tls: boolean;
  rewrite: string | null;
  timeoutMs: number;
  idleTimeoutMs: number;
  retry: { retryOn: string; numRetries: number; perTryTimeoutMs: number } | null;
  circuitBreakers: { maxConnections: number; maxPendingRequests: number; maxRequests: number; maxRetries: number };
  percent: number;
  /** Only on routes with a CORS policy (docs/routing.md#cors). */
  cors?: CorsJson;
  /** Only on predictors under flow control (docs/flow-control.md). */
  flow?: FlowJson;
  /** Only on predictors whose requests are logged (docs/payload-logging.md). */
  log?: LogJson;
  /** Only on predictors whose requests are hedged (docs/routing.md#hedged-requests). */
  hedge?: HedgeJson;
  /** Only on custom Mappings that change a request or its answer besides routing (docs/routing.md#mapping-keys). */
  mapping?: Record<string, unknown>;
  /** Only on REST backends whose answers are compressed or requests decoded (docs/edge.md#compression). */
  compression?: { algorithms: string[]; levels: Record<string, number>; minLength: number; types: string[]; decodeRequests: boolean; skipEtag: boolean };
  /** Only on predictors with a fallback (docs/routing.md#fallback-models). */
  fallback?: { to: string; on: string[] };
  /** Only on predictors whose protocol is translated (docs/protocol-translation.md). */
  protocol?: { speaks: string; accept: string[]; modelName: string; modelVersion?: string; datatype: string | null; names: string[] | null };
}

export interface HedgeJson {
  /** A percentile (`p95`) or a fixed delay (`20ms`). */
  after: string;
  minMs: number;
  /** The delay's lower bound as a multiple of the median (0: none). */
  minMedians: number;
  /** null: no upper bound. */
  maxMs: number | null;
  budgetPercent: number;
  maxAttempts: number;
}

export interface LogJson {
  sinks: string[];
  request: boolean;
  response: boolean;
  decisions: boolean;
  sample: number;
  sampleKey: string | null;
  maxBodyBytes: number;
}

export interface FlowJson {
  concurrency: number | 'adaptive';
  queue: number;
  queueTimeoutMs: number;
  tenantHeader: string | null;
  scaleFromZeroMs: number;
}

export interface CorsJson {
  origins: string[];
  methods: string[];
  headers: string[];
  exposedHeaders: string[];
  credentials: boolean;
  maxAge: string | null;
}

export interface RouteJson {
  kind: Protocol;
  match: {
    prefix?: string;
    regex?: string;
    /** `prefix_exact`: the whole path. */
    path?: string;
    /** `case_sensitive: false`: a prefix matched regardless of case. */
    prefixIgnoringCase?: string;
    host?: string;
    headers: string[];
    query?: string[];
    precedence?: number;
    grpc?: { seldon: string; namespace: string };
  };
  members: BackendJson[];
  mirrors: BackendJson[];
  warnings: string[];
}

export interface DeploymentJson extends DeploymentReport {
  routes: RouteJson[];
}

export interface TableJson {
  generation: number;
  appliedAt: string | null;
  ambassadorId: string;
  singleNamespace: boolean;
  deployments: DeploymentJson[];
}

/** Percent with at most 4 decimals, so 100/3 prints as 33.3333 in a stable way. */
const pct = (n: number): number => Math.round(n * 10_000) / 10_000;

function corsJson(c: CorsPolicy): CorsJson {
  return { origins: [...c.origins], methods: [...c.methods], headers: [...c.headers], exposedHeaders: [...c.exposedHeaders], credentials: c.credentials, maxAge: c.maxAge };
}

function backendJson(b: Backend, percent: number): BackendJson {
  const json: BackendJson = {
    id: b.id,
    namespace: b.origin.namespace,
    deployment: b.origin.deployment,
    predictor: b.origin.predictor,
    upstream: `${b.upstream.host}:${b.upstream.port}`,
    tls: b.upstream.tls,
    rewrite: b.rewrite,
    timeoutMs: b.timeoutMs,
    idleTimeoutMs: b.idleTimeoutMs,
    retry: b.retry ? { ...b.retry } : null,
    circuitBreakers: { ...b.breaker },
    percent: pct(percent),
  };
  if (b.cors !== null) json.cors = corsJson(b.cors);
  if (b.flow !== null) {
    const f = b.flow;
    json.flow = { concurrency: f.concurrency, queue: f.queue, queueTimeoutMs: f.queueTimeoutMs, tenantHeader: f.tenantHeader, scaleFromZeroMs: f.scaleFromZeroMs };
  }
  const l = b.log;
  if (l !== null) {
    const key = l.sampleKey === null ? null : `${l.sampleKey.kind}:${l.sampleKey.name}`;
    json.log = { sinks: [...l.sinks], request: l.request, response: l.response, decisions: l.decisions, sample: l.sample, sampleKey: key, maxBodyBytes: l.maxBodyBytes };
  }
  const z = b.compression;
  if (z !== null) json.compression = { algorithms: [...z.algorithms], levels: { ...z.levels }, minLength: z.minLength, types: [...z.types], decodeRequests: z.decodeRequests, skipEtag: z.skipEtag };
  const h = b.hedge;
  if (h !== null) {
    json.hedge = {
      after: hedgeAfterText(h),
      minMs: h.minMs,
      minMedians: h.minMedians,
      maxMs: h.maxMs === Infinity ? null : h.maxMs,
      budgetPercent: Math.round(h.budget * 100_000) / 1000,
      maxAttempts: h.maxAttempts,
    };
  }
  if (b.mapping !== null) json.mapping = mappingJson(b.mapping);
  if (b.fallback !== null) json.fallback = { to: b.fallback.label, on: [...b.fallback.on] };
  const t = b.translate;
  if (t !== null)
    json.protocol = {
      speaks: t.speaks,
      accept: [...t.accept],
      modelName: t.modelName,
      ...(t.modelVersion === null ? {} : { modelVersion: t.modelVersion }),
      datatype: t.datatype,
      names: t.names === null ? null : [...t.names],
    };
  return json;
}

/** A Mapping's policy as /routes shows it: the keys it set, regexes as their text. */
function mappingJson(p: MappingPolicy): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (p.requestHeaders) out.requestHeaders = { remove: [...p.requestHeaders.remove], add: p.requestHeaders.add.map((a) => ({ ...a })) };
  if (p.responseHeaders) out.responseHeaders = { remove: [...p.responseHeaders.remove], add: p.responseHeaders.add.map((a) => ({ ...a })) };
  if (p.hostRewrite !== null) out.hostRewrite = p.hostRewrite;
  if (p.autoHostRewrite) out.autoHostRewrite = true;
  if (p.regexRewrite) out.regexRewrite = { pattern: p.regexRewrite.pattern, substitution: p.regexRewrite.substitution };
  if (p.redirect) {
    const r = p.redirect;
    out.redirect = { host: r.host, scheme: r.scheme, path: r.path, prefix: r.prefix, regex: r.regex ? { pattern: r.regex.pattern, substitution: r.regex.substitution } : null, status: r.status };
  }
  if (p.errorOverrides.length > 0) out.errorOverrides = p.errorOverrides.map((o) => ({ ...o }));
  if (p.bypassErrorOverrides) out.bypassErrorOverrides = true;
  if (p.loadBalancer) out.loadBalancer = JSON.parse(JSON.stringify(p.loadBalancer)) as unknown;
  if (p.connection) out.connection = { ...p.connection };
  if (p.upgrades.length > 0) out.upgrades = [...p.upgrades];
  if (p.tlsContext !== null) out.tlsContext = p.tlsContext;
  return out;
}

export function routeJson(g: RouteGroup): RouteJson {
  const match: RouteJson['match'] = { headers: g.headers.map((h) => (h.kind === 'regex' ? `${h.name}~${h.pattern}` : constraintText(h))) };
  if (g.grpcIdentity) match.grpc = { ...g.grpcIdentity };
  if (g.path.kind === 'prefix') match.prefix = g.path.prefix;
  else if (g.path.kind === 'exact') match.path = g.path.source;
  else if (g.path.kind === 'iprefix') match.prefixIgnoringCase = g.path.source;
  else match.regex = g.path.source;
  if (g.host !== null) match.host = g.host;
  if (g.query.length > 0) match.query = g.query.map((q) => (q.kind === 'exact' ? `${q.name}=${q.value}` : q.kind === 'presence' ? q.name : `${q.name}~${q.pattern}`));
  if (g.rank !== 0) match.precedence = g.rank;
  return {
    kind: g.kind,
    match,
    members: g.members.map((m) => backendJson(m.backend, m.percent)),
    mirrors: g.mirrors.map((m) => backendJson(m.backend, m.percent)),
    warnings: [...g.warnings],
  };
}

function inGroup(g: RouteGroup, ns: string, name: string): boolean {
  const mine = (b: Backend) => b.origin.namespace === ns && b.origin.deployment === name;
  return g.members.some((m) => mine(m.backend)) || g.mirrors.some((m) => mine(m.backend));
}

/**
 * Deployments sorted by key, each with the groups it has a route in (precedence order). `steer`:
 * the live shares of steered groups (routing/steering/shares.ts), shown instead of the configured ones.
 */
export function tableJson(table: RouteTable, appliedAt: Date | null = null, steer?: (g: RouteGroup) => RouteGroup): TableJson {
  const byDeployment = new Map<string, RouteGroup[]>();
  for (const g of table.groups) {
    const seen = new Set<string>();
    for (const b of [...g.members.map((m) => m.backend), ...g.mirrors.map((m) => m.backend)]) {
      const k = `${b.origin.namespace}/${b.origin.deployment}`;
      if (seen.has(k)) continue;
      seen.add(k);
      let list = byDeployment.get(k);
      if (!list) byDeployment.set(k, (list = []));
      list.push(g);
    }
  }
  const keys = [...table.deployments.keys()].sort();
  return {
    generation: table.generation,
    appliedAt: appliedAt ? appliedAt.toISOString() : null,
    ambassadorId: table.options.ambassadorId,
    singleNamespace: table.options.singleNamespace,
    deployments: keys.map((k) => {
      const r = table.deployments.get(k)!;
      const groups = (byDeployment.get(k) ?? []).filter((g) => inGroup(g, r.namespace, r.name));
      return { ...r, reasons: [...r.reasons], routes: groups.map((g) => routeJson(steer && g.steered ? steer(g) : g)) };
    }),
  };
}

function fmtPct(n: number): string {
  return `${Number.isInteger(n) ? n : n.toFixed(2)}%`;
}

function backendLine(b: Backend): string {
  const parts = [`${b.upstream.host}:${b.upstream.port}${b.upstream.tls ? ' (TLS)' : ''}`];
  parts.push(`timeout ${b.timeoutMs ? `${b.timeoutMs}ms` : 'none'}`, `idle ${b.idleTimeoutMs ? `${b.idleTimeoutMs}ms` : 'none'}`);
  if (b.rewrite !== null && b.rewrite !== '/') parts.push(`rewrite ${b.rewrite}`);
  if (b.retry) parts.push(`retry ${b.retry.retryOn}×${b.retry.numRetries}`);
  const cb = b.breaker;
  if (cb.maxConnections !== 1024 || cb.maxPendingRequests !== 1024 || cb.maxRequests !== 1024 || cb.maxRetries !== 3) {
    parts.push(`breakers conn ${cb.maxConnections}/pending ${cb.maxPendingRequests}/req ${cb.maxRequests}/retries ${cb.maxRetries}`);
  }
  if (b.cors !== null) parts.push(`cors ${b.cors.origins.join(',')}${b.cors.credentials ? ' with credentials' : ''}`);
  const f = b.flow;
  if (f !== null)
    parts.push(
      `flow ${f.concurrency === 'adaptive' ? 'adaptive' : `${f.concurrency}/endpoint`} queue ${f.queue} ${f.queueTimeoutMs}ms${f.tenantHeader ? ` tenant ${f.tenantHeader}` : ''}${f.scaleFromZeroMs ? ` hold ${f.scaleFromZeroMs}ms` : ''}`,
    );
  const l = b.log;
  if (l !== null)
    parts.push(`log ${[l.request && 'request', l.response && 'response', l.decisions && 'decisions'].filter(Boolean).join('+')} to ${l.sinks.join(',')}${l.sample < 1 ? ` sample ${l.sample}` : ''}`);
  if (b.hedge !== null) parts.push(`hedge ${b.hedge.text}`);
  if (b.compression !== null) parts.push(`compression ${b.compression.text}`);
  if (b.fallback !== null) parts.push(`fallback ${b.fallback.text}`);
  if (b.translate !== null) parts.push(`protocol ${b.translate.text}`);
  return parts.join('  ');
}

/** A readable tree: matches → members with percents → mirrors; then problem deployments. */
export function tableText(table: RouteTable): string {
  const lines: string[] = [];
  const groups = table.groups;
  lines.push(`Routes (generation ${table.generation}, ambassador-id "${table.options.ambassadorId}"${table.options.singleNamespace ? ', single-namespace' : ''}): ${groups.length} groups`);
  for (const g of groups) {
    lines.push('');
    lines.push(`${g.kind === 'rest' ? 'REST' : 'gRPC'} ${describeMatch(g).replace(/^gRPC /, '')}`);
    if (g.members.length === 0) lines.push('  (shadows only: not routed)');
    for (const m of g.members) lines.push(`  ${fmtPct(m.percent).padStart(7)}  ${m.backend.id.padEnd(32)} → ${backendLine(m.backend)}`);
    for (const m of g.mirrors) lines.push(`  mirror ${fmtPct(m.percent)}  ${m.backend.id} → ${backendLine(m.backend)}`);
    for (const w of g.warnings) lines.push(`  warning: ${w}`);
  }
  const reports = [...table.deployments.values()].sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
  const counts = { accepted: 0, degraded: 0, rejected: 0, skipped: 0 };
  for (const r of reports) counts[r.state]++;
  lines.push('');
  lines.push(`Deployments: ${counts.accepted} accepted, ${counts.degraded} degraded, ${counts.rejected} rejected, ${counts.skipped} skipped`);
  for (const r of reports) {
    if (r.state === 'accepted') continue;
    lines.push(`  ${r.state.toUpperCase().padEnd(9)} ${r.namespace}/${r.name}`);
    for (const reason of r.reasons) lines.push(`            - ${reason}`);
  }
  return lines.join('\n') + '\n';
}
