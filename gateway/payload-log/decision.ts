/**
 * The decision record (`io.seldon.gateway.decision`, docs/payload-logging.md#the-decision-record):
 * what the gateway decided for one request and what came of it, as one JSON document, written once
 * when the request ends. Pure: it reads the routing decision, the table's steering specs and what
 * the request's recorder saw.
 *
 * `probability` is the chance the pick gave the predictor that served (routing/table/pick.ts
 * `pickShare`, over the group the request was picked from, live shares applied): for a bandit the
 * arm's share at the moment of the pick, the propensity an off-policy estimate (inverse propensity
 * scoring) divides by. A feedback sent to its arm by its token was not picked: null.
 */
import { pickShare } from '../../routing/table/pick.js';
import { constraintText } from '../../routing/values/syntax.js';
import type { Protocol, RouteGroup, Routed } from '../../routing/types.js';
import type { LogSubject, RefusedRequest } from '../observe/payload-tap.js';

/**
 * One attempt of the request upstream: where, and its answer's status or why it failed; on a
 * hedged request, whether it was a hedge, lost (cut: another's answer won) or won (the client got its answer).
 */
export interface AttemptRecord {
  endpoint: string;
  status?: number;
  failure?: string;
  hedge?: true;
  lost?: true;
  won?: true;
}

/** What a recorder saw of the request, besides the decision. */
export interface Outcome {
  readonly status: number;
  readonly grpcStatus: number | undefined;
  readonly latencyMs: number;
  readonly upstreamMs: number | null;
  readonly attempts: readonly AttemptRecord[];
  /** Predictors a shadow copy was sent to. */
  readonly shadowsSent: readonly string[];
  readonly refused?: Pick<RefusedRequest, 'check' | 'reason' | 'message'> | undefined;
}

const round = (n: number, places = 4): number => Math.round(n * 10 ** places) / 10 ** places;
const deploymentOf = (r: Routed): string => `${r.backend.origin.namespace}/${r.backend.origin.deployment}`;

/**
 * Each group's shares by deployment, computed once: a group never changes (a table change makes new
 * ones), and this map is weak, so an entry goes with its group's table.
 */
const sharesByGroup = new WeakMap<RouteGroup, Map<string, Record<string, number>>>();

/** The percent of each of `deployment`'s members of the group, of the deployment's own total (the same object each time: read, never changed). */
function sharesOf(group: RouteGroup, deployment: string): Record<string, number> {
  let byDeployment = sharesByGroup.get(group);
  if (byDeployment === undefined) sharesByGroup.set(group, (byDeployment = new Map()));
  let shares = byDeployment.get(deployment);
  if (shares === undefined) byDeployment.set(deployment, (shares = computeShares(group, deployment)));
  return shares;
}

function computeShares(group: RouteGroup, deployment: string): Record<string, number> {
  let total = 0;
  for (const m of group.members) if (`${m.backend.origin.namespace}/${m.backend.origin.deployment}` === deployment) total += m.percent;
  const out: Record<string, number> = {};
  for (const m of group.members) {
    const o = m.backend.origin;
    if (`${o.namespace}/${o.deployment}` === deployment) out[o.predictor] = round(total > 0 ? (m.percent / total) * 100 : 100 / group.members.length, 4);
  }
  return out;
}

/** The sticky key a pick of `group` took, when the request carried one (header, or cookie / its gRPC metadata). */
function stickyKey(group: RouteGroup, protocol: Protocol, s: LogSubject): string | null {
  const spec = group.sticky;
  if (spec === null || !group.steered || s.header === undefined) return null;
  if (spec.kind === 'header') return s.header(spec.name) !== undefined ? `header:${spec.name}` : null;
  if (protocol === 'grpc') return s.header('seldon-gateway-sticky') !== undefined ? 'cookie' : null;
  // REST: a valid cookie, or one minted for it while matching.
  return s.minted !== undefined || (s.header('cookie') ?? '').includes('seldon-gateway-sticky=') ? 'cookie' : null;
}

/** The steering in force: a rollout's step, a bandit's arm and shares. */
function steering(r: Routed, s: LogSubject, probability: number | null, shares: Record<string, number>): { rollout: unknown; bandit: unknown } {
  // Only a steered deployment has steering to say: every other request skips the lookup.
  const spec = r.backend.steered ? s.table?.steering.get(deploymentOf(r)) : undefined;
  if (spec === undefined) return { rollout: null, bandit: null };
  let rollout: unknown = null;
  if (spec.rollout !== null) {
    const { config, run } = spec.rollout;
    const canaryPercent = shares[config.canary] ?? 0;
    const step = config.steps.findIndex((w) => Math.abs(w - canaryPercent) < 1e-6);
    rollout = { run, canary: config.canary, canaryPercent, step: step < 0 ? null : step, steps: config.steps, mirrored: r.mirrors.some((m) => m.backend.origin.predictor === config.canary) };
  }
  let bandit: unknown = null;
  if (spec.bandit !== null) bandit = { run: spec.bandit.run, arm: r.backend.origin.predictor, probability, shares };
  return { rollout, bandit };
}

/** What a feedback's credit came to: the arm credited and its reward, or why none was. */
function feedbackOf(c: LogSubject['credit']): unknown {
  if (c === undefined) return null;
  if (c.reward !== undefined) return { credited: true, arm: c.arm, reward: c.reward[1] };
  return { credited: false, arm: c.arm === '' ? null : c.arm, why: c.outcome ?? 'unattributed' };
}

/** What a record says of one (group, predictor) pair that never changes: written once, as JSON text. */
interface FixedText {
  /** `{"deployment":…,"namespace":…,"name":…,"protocol":` (the protocol and what follows vary). */
  readonly head: string;
  /** `"predictor":…,"probability":` */
  readonly predictor: string;
  /** The pick's probability, as JSON. */
  readonly probability: string;
  readonly probabilityValue: number;
  /** `,"why":{"weights":…,"rule":…,"sticky":` */
  readonly why: string;
  readonly weights: Record<string, number>;
}

/** Per group, per backend: a group never changes (a table change makes new ones), and the map is weak. */
const fixedByGroup = new WeakMap<RouteGroup, Map<Routed['backend'], FixedText>>();

const q = JSON.stringify;
/** A number as JSON.stringify writes it (a non-finite one as null). */
const num = (n: number): string => (Number.isFinite(n) ? String(n) : 'null');

function fixedText(group: RouteGroup, backend: Routed['backend']): FixedText {
  let byBackend = fixedByGroup.get(group);
  if (byBackend === undefined) fixedByGroup.set(group, (byBackend = new Map()));
  let t = byBackend.get(backend);
  if (t === undefined) {
    const o = backend.origin;
    const deployment = `${o.namespace}/${o.deployment}`;
    const weights = sharesOf(group, deployment);
    const rule = group.headers.map((h) => (h.kind === 'regex' ? `${h.name}~${h.pattern}` : constraintText(h)));
    const probabilityValue = round(pickShare(group, backend), 6);
    t = {
      head: `{"deployment":${q(deployment)},"namespace":${q(o.namespace)},"name":${q(o.deployment)},"protocol":`,
      predictor: `,"predictor":${q(o.predictor)},"probability":`,
      probability: num(probabilityValue),
      probabilityValue,
      why: `,"why":{"weights":${q(weights)},"rule":${rule.length > 0 ? q(rule) : 'null'},"sticky":`,
      weights,
    };
    byBackend.set(backend, t);
  }
  return t;
}

/** A fallback's answer (docs/routing.md#fallback-models): why, and who fell back; only on such records. */
function fallbackOf(f: NonNullable<LogSubject['fellBack']>): { reason: string; from: string } {
  return { reason: f.reason, from: f.from.id };
}

const fallbackText = (s: LogSubject): string => (s.fellBack === undefined ? '' : `"fallback":${q(fallbackOf(s.fellBack))},`);

/**
 * The record as JSON text: the same document `decisionRecord` makes, key for key, written without
 * the object graph and the stringify of it. A record is made for every logged request, and building
 * and stringifying the object was most of what decision logging cost per request; what never
 * changes for a (group, predictor) is written once.
 */
export function decisionJson(protocol: Protocol, method: string, path: string, r: Routed, s: LogSubject, o: Outcome, credit: LogSubject['credit']): string {
  const t = fixedText(r.group, r.backend);
  const byToken = credit !== undefined && credit.arm !== '' && credit.arm === r.backend.origin.predictor;
  let steered = '"rollout":null,"bandit":null';
  if (r.backend.steered) {
    const { rollout, bandit } = steering(r, s, byToken ? null : t.probabilityValue, t.weights);
    steered = `"rollout":${q(rollout)},"bandit":${q(bandit)}`;
  }
  let shadows = '[]';
  if (r.mirrors.length > 0) shadows = q(r.mirrors.map((m) => ({ predictor: m.backend.origin.predictor, sent: o.shadowsSent.includes(m.backend.origin.predictor) })));
  let attempts = '[';
  for (let i = 0; i < o.attempts.length; i++) {
    const a = o.attempts[i]!;
    attempts += `${i > 0 ? ',' : ''}{"endpoint":${q(a.endpoint)}`;
    if (a.status !== undefined) attempts += `,"status":${num(a.status)}`;
    if (a.failure !== undefined) attempts += `,"failure":${q(a.failure)}`;
    if (a.hedge === true) attempts += ',"hedge":true';
    if (a.lost === true) attempts += ',"lost":true';
    if (a.won === true) attempts += ',"won":true';
    attempts += '}';
  }
  attempts += ']';
  const sticky = stickyKey(r.group, protocol, s);
  return (
    `${t.head}${q(protocol)},"method":${q(method)},"path":${q(path)}${t.predictor}${byToken ? 'null' : t.probability}` +
    `${t.why}${sticky === null ? 'null' : q(sticky)},${steered},"feedback":${credit === undefined ? 'null' : q(feedbackOf(credit))}},` +
    `"shadows":${shadows},"attempts":${attempts},${fallbackText(s)}"refused":${o.refused === undefined ? 'null' : q(o.refused)},"status":${num(o.status)},` +
    `"grpcStatus":${o.grpcStatus === undefined ? 'null' : num(o.grpcStatus)},"latencyMs":${num(round(o.latencyMs, 3))},"upstreamMs":${o.upstreamMs === null ? 'null' : num(round(o.upstreamMs, 3))}}`
  );
}

/**
 * The record of a request, routed to `r`, as it ended. `credit`: a feedback's, as steering decided
 * it (taken when the request was forwarded: committing it clears it from the request). The
 * document as an object: `decisionJson` writes the same text without it, and the tests hold the two
 * to each other.
 */
export function decisionRecord(protocol: Protocol, method: string, path: string, r: Routed, s: LogSubject, o: Outcome, credit: LogSubject['credit']): Record<string, unknown> {
  const o2 = r.backend.origin;
  // A feedback the token sent to its arm was not picked.
  const byToken = credit !== undefined && credit.arm !== '' && credit.arm === o2.predictor;
  const probability = byToken ? null : round(pickShare(r.group, r.backend), 6);
  const weights = sharesOf(r.group, `${o2.namespace}/${o2.deployment}`);
  const { rollout, bandit } = steering(r, s, probability, weights);
  const rule = r.group.headers.map((h) => (h.kind === 'regex' ? `${h.name}~${h.pattern}` : constraintText(h)));
  return {
    deployment: `${o2.namespace}/${o2.deployment}`,
    namespace: o2.namespace,
    name: o2.deployment,
    protocol,
    method,
    path,
    predictor: o2.predictor,
    probability,
    why: {
      weights,
      rule: rule.length > 0 ? rule : null,
      sticky: stickyKey(r.group, protocol, s),
      rollout,
      bandit,
      feedback: feedbackOf(credit),
    },
    shadows: r.mirrors.map((m) => ({ predictor: m.backend.origin.predictor, sent: o.shadowsSent.includes(m.backend.origin.predictor) })),
    attempts: o.attempts,
    ...(s.fellBack === undefined ? {} : { fallback: fallbackOf(s.fellBack) }),
    refused: o.refused ?? null,
    status: o.status,
    grpcStatus: o.grpcStatus ?? null,
    latencyMs: round(o.latencyMs, 3),
    upstreamMs: o.upstreamMs === null ? null : round(o.upstreamMs, 3),
  };
}
