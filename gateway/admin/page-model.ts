/**
 * The diagnostics page's view model (`/diagnostics`, rendered by admin/page.ts): every
 * SeldonDeployment with its state, reasons and routes beside what was observed over the window
 * (observed shares against weights, code classes, latency, mirrors and their agreement), its
 * rollout or bandit, its predictors under flow control and the endpoints ejected now. Pure
 * functions of the table and the observed window: no I/O here.
 */
import { tableJson, type BackendJson, type FlowJson, type RouteJson } from '../../routing/table/describe.js';
import type { DeploymentState, Protocol, RouteGroup, RouteTable } from '../../routing/types.js';
import { codeClass } from '../observe/code-class.js';
import type { Latency, ObservedWindow, RequestCounts, TimelinePoint } from '../observe/observed.js';
import type { Disagreement } from '../observe/shadow-compare.js';
import type { FlowView } from '../observe/flow-metrics.js';
import type { EjectedEndpointJson } from '../observe/ejections-view.js';
import type { RedisStatus } from '../auth/redis.js';
import type { KeySetState } from '../auth/jwt-keys.js';
import type { SinkState } from '../payload-log/view.js';
import type { SteeringJson } from './steering-html.js';

export interface PageSettings {
  readonly predictorHeader: boolean;
  readonly shadowCompare: boolean;
  readonly accessLogSample: number;
  /** Processes serving traffic. */
  readonly workers: number;
  /** The shared store (--redis-url): its topology, primary, or why the gateway is in fallback. */
  readonly redis?: RedisStatus | undefined;
  /** The JWT providers' key sets (--jwt-providers) as this replica holds them. */
  readonly jwtKeys?: readonly KeySetState[] | undefined;
  /** The log sinks (--log-sinks) and how their deliveries go (gateway/payload-log/view.ts). */
  readonly logSinks?: readonly SinkState[] | undefined;
}

export interface MemberView extends BackendJson {
  /** Requests this predictor answered over the window (primary traffic of this route's protocol). */
  readonly observed: RequestCounts;
  /** Its share of the route's observed requests, in percent; null without traffic. */
  readonly observedPercent: number | null;
  /** Its answers' code classes over the window. */
  readonly c4xx: number;
  readonly c5xx: number;
  /** Request duration (arrival to the end of the answer) p50 and p99 over the window, seconds. */
  readonly latency: Latency;
}

export interface MirrorView extends BackendJson {
  /** Outcomes over the window: mirrored, dropped_in_flight, dropped_body_size, dropped_breaker, failed. */
  readonly outcomes: Readonly<Record<string, number>>;
  readonly mirrored: number;
  readonly dropped: number;
  readonly failed: number;
  /** Mirrored requests per second over the window. */
  readonly perSecond: number | null;
  readonly comparisons: { readonly agree: number; readonly disagree: number; readonly skipped: number };
  /** agree / (agree + disagree) in percent; null when nothing was compared. */
  readonly agreement: number | null;
}

export interface RouteView {
  readonly kind: Protocol;
  /** The match as text: prefix or regex, header constraints, host, gRPC identity. */
  readonly match: string;
  readonly observedTotal: number;
  readonly members: readonly MemberView[];
  readonly mirrors: readonly MirrorView[];
  readonly warnings: readonly string[];
  /** Nothing routed or mirrored here over the window (folded on the page). */
  readonly idle: boolean;
  /**
   * Why the observed shares are not held against the weights: the weights changed within the window
   * (a rollout step or promotion, at `since`), or a bandit moves them all the time. Null: they hold.
   */
  readonly weightsMoved: { readonly why: string; readonly since?: string } | null;
}

/** A deployment's primary traffic over the window, both protocols. */
export interface HealthView {
  readonly requests: number;
  readonly perSecond: number | null;
  readonly c4xx: number;
  readonly c5xx: number;
  /** (4xx + 5xx) / requests in percent; null without requests. */
  readonly errorPercent: number | null;
  /** One step per sample of the window. */
  readonly timeline: readonly TimelinePoint[];
}

export interface DeploymentView {
  readonly namespace: string;
  readonly name: string;
  readonly ambassadorId: string;
  readonly state: DeploymentState;
  readonly reasons: readonly string[];
  readonly routes: readonly RouteView[];
  readonly health: HealthView;
  /** A rollout or bandit steering its weights (gateway/steer/describe.ts). */
  readonly steering?: SteeringJson;
  /** Its predictors under flow control (docs/flow-control.md): settings and state now, summed over processes. */
  readonly flow?: readonly PredictorFlowView[];
  /** Its endpoints ejected now by endpoint health (docs/routing.md#endpoint-health). */
  readonly ejected?: readonly EjectedEndpointJson[];
}

export interface PredictorFlowView extends FlowView {
  readonly predictor: string;
  readonly settings: FlowJson;
}

export interface DiagnosticsJson {
  readonly generation: number;
  readonly appliedAt: string;
  readonly ambassadorId: string;
  readonly singleNamespace: boolean;
  readonly window: { readonly seconds: number; readonly from: string; readonly to: string };
  readonly counts: Readonly<Record<DeploymentState, number>>;
  readonly sourceProblems: Readonly<Record<string, string>>;
  readonly settings: PageSettings;
  readonly deployments: readonly DeploymentView[];
  /** The last disagreeing pairs, newest first. */
  readonly disagreements: readonly Disagreement[];
}

export interface DiagnosticsInput {
  readonly table: RouteTable;
  readonly appliedAt: Date;
  readonly problems: ReadonlyMap<string, string>;
  readonly window: ObservedWindow;
  readonly disagreements: readonly Disagreement[];
  readonly settings: PageSettings;
  /** Rollouts and bandits by deployment key. */
  readonly steering?: ReadonlyMap<string, SteeringJson>;
  /** A steered group with its live shares, shown as its weights. */
  readonly steer?: (group: RouteGroup) => RouteGroup;
  /** Predictors under flow control now, keyed `ns/deployment/predictor` (observe/flow-metrics.ts). */
  readonly flow?: ReadonlyMap<string, FlowView>;
  /** Endpoints ejected now, by deployment key (observe/ejections-view.ts). */
  readonly ejections?: ReadonlyMap<string, readonly EjectedEndpointJson[]>;
}

/** A deployment's predictors under flow control, from its routes' settings and the gathered state. */
function flowOf(ns: string, routes: readonly RouteJson[], flow: ReadonlyMap<string, FlowView> | undefined): PredictorFlowView[] {
  const out = new Map<string, PredictorFlowView>();
  for (const r of routes) {
    for (const m of r.members) {
      if (m.flow === undefined || out.has(m.predictor)) continue;
      const now = flow?.get(`${ns}/${m.deployment}/${m.predictor}`) ?? { limit: 0, inflight: 0, queued: 0, refused: [0, 0, 0] as [number, number, number] };
      out.set(m.predictor, { predictor: m.predictor, settings: m.flow, ...now });
    }
  }
  return [...out.values()];
}

export const round1 = (n: number): number => Math.round(n * 10) / 10;

function matchText(r: RouteJson): string {
  const m = r.match;
  const parts: string[] = [];
  if (m.grpc) parts.push(`seldon=${m.grpc.seldon} namespace=${m.grpc.namespace}`);
  else if (m.prefix !== undefined) parts.push(m.prefix);
  else if (m.regex !== undefined) parts.push(`~${m.regex}`);
  if (m.grpc && m.prefix !== undefined && m.prefix !== '/') parts.push(m.prefix);
  if (m.host !== undefined) parts.push(`host ${m.host}`);
  if (m.headers.length) parts.push(`[${m.headers.join(', ')}]`);
  return parts.join(' ');
}

/** 4xx and 5xx answers among `codes` (a gRPC status by its HTTP class). */
function errorClasses(kind: Protocol, codes: Readonly<Record<string, number>>): { c4xx: number; c5xx: number } {
  let c4xx = 0;
  let c5xx = 0;
  for (const [code, n] of Object.entries(codes)) {
    const c = codeClass(kind, code);
    if (c === '4xx') c4xx += n;
    else if (c === '5xx') c5xx += n;
  }
  return { c4xx, c5xx };
}

/**
 * When a steered deployment's weights last changed, if within the window: the observed shares then
 * mix traffic from before and after, and a promoted rollout's primary would show 0% against the
 * share it had. A bandit's shares move all the time.
 */
function weightsMoved(steering: SteeringJson | undefined, w: ObservedWindow): RouteView['weightsMoved'] {
  if (steering?.bandit) return { why: 'a bandit moves the shares all the time' };
  const last = steering?.rollout?.transitions.at(-1);
  if (last && last.at > w.from.getTime()) return { why: `the rollout changed the weights (${last.kind})`, since: new Date(last.at).toISOString() };
  return null;
}

function routeView(r: RouteJson, w: ObservedWindow, moved: RouteView['weightsMoved'] = null): RouteView {
  const observed = r.members.map((b) => w.requests(b.namespace, b.deployment, b.predictor, r.kind));
  const total = observed.reduce((s, o) => s + o.total, 0);
  const members = r.members.map((b, i) => ({
    ...b,
    observed: observed[i]!,
    observedPercent: total > 0 ? round1((observed[i]!.total / total) * 100) : null,
    ...errorClasses(r.kind, observed[i]!.codes),
    latency: w.latency(b.namespace, b.deployment, b.predictor, r.kind),
  }));
  const mirrors = r.mirrors.map((b): MirrorView => {
    const outcomes = w.shadows(b.namespace, b.deployment, b.predictor, r.kind);
    const c = w.comparisons(b.namespace, b.deployment, b.predictor, r.kind);
    const mirrored = outcomes.mirrored ?? 0;
    const failed = outcomes.failed ?? 0;
    const dropped = (outcomes.dropped_in_flight ?? 0) + (outcomes.dropped_body_size ?? 0) + (outcomes.dropped_breaker ?? 0);
    const agree = c.agree ?? 0;
    const disagree = c.disagree ?? 0;
    return {
      ...b,
      outcomes,
      mirrored,
      dropped,
      failed,
      perSecond: w.seconds > 0 ? Math.round(((mirrored + failed) / w.seconds) * 100) / 100 : null,
      comparisons: { agree, disagree, skipped: c.skipped ?? 0 },
      agreement: agree + disagree > 0 ? round1((agree / (agree + disagree)) * 100) : null,
    };
  });
  const idle = total === 0 && mirrors.every((m) => m.mirrored + m.failed + m.dropped === 0);
  return { kind: r.kind, match: matchText(r), observedTotal: total, members, mirrors, warnings: r.warnings, idle, weightsMoved: moved };
}

/**
 * A deployment's traffic from its own routes' members (a member another deployment routes to
 * counts there too, as its requests are that predictor's), each predictor and protocol once.
 */
function healthView(namespace: string, name: string, routes: readonly RouteView[], w: ObservedWindow): HealthView {
  const seen = new Set<string>();
  let requests = 0;
  let c4xx = 0;
  let c5xx = 0;
  for (const r of routes) {
    for (const m of r.members) {
      if (m.namespace !== namespace || m.deployment !== name || seen.has(`${r.kind} ${m.predictor}`)) continue;
      seen.add(`${r.kind} ${m.predictor}`);
      requests += m.observed.total;
      c4xx += m.c4xx;
      c5xx += m.c5xx;
    }
  }
  return {
    requests,
    perSecond: w.seconds > 0 ? Math.round((requests / w.seconds) * 100) / 100 : null,
    c4xx,
    c5xx,
    errorPercent: requests > 0 ? round1(((c4xx + c5xx) / requests) * 100) : null,
    timeline: w.timeline(namespace, name),
  };
}

export function diagnostics(input: DiagnosticsInput): DiagnosticsJson {
  const t = tableJson(input.table, input.appliedAt, input.steer);
  const counts: Record<DeploymentState, number> = { accepted: 0, degraded: 0, rejected: 0, skipped: 0 };
  for (const d of t.deployments) counts[d.state]++;
  const w = input.window;
  return {
    generation: t.generation,
    appliedAt: input.appliedAt.toISOString(),
    ambassadorId: t.ambassadorId,
    singleNamespace: t.singleNamespace,
    window: { seconds: Math.round(w.seconds), from: w.from.toISOString(), to: w.to.toISOString() },
    counts,
    sourceProblems: Object.fromEntries(input.problems),
    settings: input.settings,
    deployments: t.deployments.map((d) => {
      const steering = input.steering?.get(`${d.namespace}/${d.name}`);
      const moved = weightsMoved(steering, w);
      const routes = d.routes.map((r) => routeView(r, w, moved));
      const flow = flowOf(d.namespace, d.routes, input.flow);
      const ejected = input.ejections?.get(`${d.namespace}/${d.name}`);
      return {
        namespace: d.namespace,
        name: d.name,
        ambassadorId: d.ambassadorId,
        state: d.state,
        reasons: d.reasons,
        routes,
        health: healthView(d.namespace, d.name, routes, w),
        ...(steering ? { steering } : {}),
        ...(flow.length ? { flow } : {}),
        ...(ejected?.length ? { ejected } : {}),
      };
    }),
    disagreements: [...input.disagreements].reverse(),
  };
}
