/**
 * `seldon.io/gateway-fallback` (docs/routing.md#fallback-models): where a predictor's request goes
 * when the gateway's own reason says its predictor cannot answer it, and which reasons count. Pure:
 * read at compile time into a frozen `FallbackPolicy` on each predictor's backends (null: none, the
 * common case, which the request path tests with one property check).
 *
 * Fields (YAML or JSON; `off` or `none`: no fallback):
 * - `to` (required): `{predictor: <name>}` another predictor of the same deployment,
 *   `{deployment: <name>}` another SeldonDeployment of the same namespace (its own routing), or
 *   `{target: <NAME>}` an address the operator named with `--fallback-target NAME=URL`;
 * - `on`: the reasons, a list or a comma-separated string of `unavailable`, `overload`, `cold`,
 *   `error`; default `unavailable, overload, cold`.
 *
 * A deployment's annotation applies to each of its predictors; a predictor's own overrides it
 * field by field (`off` turns it off for that predictor). A bad value, or a `to` that names no
 * predictor of the deployment or no operator target, degrades the deployment: the predictors it
 * covers are served without a fallback, and the compile says why.
 */
import { isObj, parseFieldsDocument, predictorOverrides, type Parsed, type PredictorOverrides } from '../values/syntax.js';
import { readList } from '../values/list.js';

export const FALLBACK_ANNOTATION = 'seldon.io/gateway-fallback';

/** Why a request fell back: the gateway's own reasons, in the order docs/routing.md lists them. */
export const FALLBACK_REASONS = ['unavailable', 'overload', 'cold', 'error'] as const;
export type FallbackReason = (typeof FALLBACK_REASONS)[number];
const DEFAULT_ON: readonly FallbackReason[] = ['unavailable', 'overload', 'cold'];

/** Where a fallback goes. */
export type FallbackTo = { readonly kind: 'predictor' | 'deployment' | 'target'; readonly name: string };

/** A predictor's fallback, compiled once. */
export interface FallbackPolicy {
  readonly to: FallbackTo;
  /** The reasons it covers, one flag each (read per request). */
  readonly unavailable: boolean;
  readonly overload: boolean;
  readonly cold: boolean;
  readonly error: boolean;
  /** The reasons in their canonical order. */
  readonly on: readonly FallbackReason[];
  /** `to` as metrics and `x-seldon-model` name it: `predictor/<name>`, `deployment/<ns>/<name>`, `target/<NAME>`. */
  readonly label: string;
  /** The settings as /routes and the admin page show them (`to predictor/small on unavailable, overload`). */
  readonly text: string;
}

/** The fields one annotation value sets, or `off`. */
export type FallbackFields = { to?: FallbackTo; on?: readonly FallbackReason[] } | 'off';

const FIELDS = ['to', 'on'] as const;
const TO_KINDS = ['predictor', 'deployment', 'target'] as const;
/** An operator target's name (`--fallback-target NAME=URL`): a label, as metrics carry it. */
export const TARGET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

function parseTo(v: unknown): Parsed<FallbackTo> {
  const fail = (): Parsed<FallbackTo> => ({ ok: false, error: `to must be one of {predictor: <name>}, {deployment: <name>}, {target: <NAME>}, not ${show(v)}` });
  if (!isObj(v)) return fail();
  const keys = Object.keys(v);
  if (keys.length !== 1) return fail();
  const kind = keys[0] as FallbackTo['kind'];
  const name = v[kind];
  if (!TO_KINDS.includes(kind) || typeof name !== 'string') return fail();
  // Predictors and deployments are checked against what exists (`fallbackAnnotations`); a target's name is a label.
  const valid = kind === 'target' ? TARGET_NAME.test(name) : name !== '';
  if (!valid) return { ok: false, error: `to.${kind} ${show(name)} is not a valid ${kind} name` };
  return { ok: true, value: { kind, name } };
}

function parseOn(v: unknown): Parsed<readonly FallbackReason[]> {
  const list = readList(v);
  const fail = (what: unknown): Parsed<readonly FallbackReason[]> => ({ ok: false, error: `on must list reasons among ${FALLBACK_REASONS.join(', ')}, not ${show(what)}` });
  if (!list.ok || list.value.length === 0) return fail(v);
  const items = list.value;
  const set = new Set<FallbackReason>();
  for (const item of items) {
    if (typeof item !== 'string' || !(FALLBACK_REASONS as readonly string[]).includes(item)) return fail(item);
    set.add(item as FallbackReason);
  }
  return { ok: true, value: FALLBACK_REASONS.filter((r) => set.has(r)) };
}

/** One annotation value (YAML or JSON) → the fields it sets. `off`/`none`: no fallback. */
export function parseFallbackFields(raw: string): Parsed<FallbackFields> {
  const fail = (error: string): Parsed<FallbackFields> => ({ ok: false, error: `${FALLBACK_ANNOTATION}: ${error}` });
  const text = raw.trim();
  if (text === 'off' || text === 'none') return { ok: true, value: 'off' };
  const parsed = parseFieldsDocument(text, FIELDS);
  if (!parsed.ok) return fail(parsed.error);
  const doc = parsed.value;
  const out: { to?: FallbackTo; on?: readonly FallbackReason[] } = {};
  if (doc.to !== undefined && doc.to !== null) {
    const to = parseTo(doc.to);
    if (!to.ok) return fail(to.error);
    out.to = to.value;
  }
  if (doc.on !== undefined && doc.on !== null) {
    const on = parseOn(doc.on);
    if (!on.ok) return fail(on.error);
    out.on = on.value;
  }
  return { ok: true, value: out };
}

/** `to` as metrics and `x-seldon-model` name it, in namespace `ns`. */
export function fallbackLabel(to: FallbackTo, ns: string): string {
  return to.kind === 'deployment' ? `deployment/${ns}/${to.name}` : `${to.kind}/${to.name}`;
}

/** The policy of `fields` (with `to`) over the defaults, frozen, with its texts. */
export function fallbackPolicy(to: FallbackTo, on: readonly FallbackReason[] | undefined, ns: string): FallbackPolicy {
  const reasons = on ?? DEFAULT_ON;
  const label = fallbackLabel(to, ns);
  return Object.freeze({
    to,
    unavailable: reasons.includes('unavailable'),
    overload: reasons.includes('overload'),
    cold: reasons.includes('cold'),
    error: reasons.includes('error'),
    on: reasons,
    label,
    text: `to ${label} on ${reasons.join(', ')}`,
  });
}

/** What a deployment's fallbacks may name: its own predictors, the operator's targets. */
export interface FallbackScope {
  readonly namespace: string;
  /** The deployment's own name: a deployment fallback to itself is refused. */
  readonly deployment: string;
  /** Its predictors that are not shadows. */
  readonly predictors: ReadonlySet<string>;
  /** `--fallback-target` names. */
  readonly targets: ReadonlySet<string>;
  /** Whether a name could be a SeldonDeployment's (DNS-1123 subdomain). */
  readonly deploymentName: (name: string) => boolean;
}

/** What is wrong with `to` in `scope` for predictor `predictor`, or null. */
function outOfScope(to: FallbackTo, predictor: string | null, scope: FallbackScope): string | null {
  if (to.kind === 'predictor') {
    if (to.name === predictor) return `to.predictor "${to.name}" is the predictor itself`;
    if (!scope.predictors.has(to.name)) return `to.predictor "${to.name}" is not a predictor of this deployment (shadows cannot answer)`;
  } else if (to.kind === 'deployment') {
    if (!scope.deploymentName(to.name)) return `to.deployment "${to.name}" is not a valid deployment name`;
    if (to.name === scope.deployment) return `to.deployment "${to.name}" is this deployment`;
  } else if (!scope.targets.has(to.name)) {
    return `to.target "${to.name}" is not a --fallback-target of this gateway${scope.targets.size ? ` (${[...scope.targets].sort().join(', ')})` : ''}`;
  }
  return null;
}

/** A deployment's fallback annotation, read once: each predictor's policy (routing/values/syntax.ts `predictorOverrides`). */
export type FallbackAnnotations = PredictorOverrides<FallbackPolicy>;

/**
 * `seldon.io/gateway-fallback` of a deployment (`raw`, absent: undefined) in `scope`. A value
 * without `to` (after a predictor's own over the deployment's), or one naming what `scope` does not
 * have, is a bad value of the predictor it would apply to.
 */
export function fallbackAnnotations(raw: string | undefined, scope: FallbackScope): FallbackAnnotations {
  const without = 'served without a fallback';
  type F = { to?: FallbackTo; on?: readonly FallbackReason[] };
  // Built per predictor (its own fields over the deployment's), then checked against it: `build` cannot warn, so it returns the problem.
  const o = predictorOverrides<F, F>(FALLBACK_ANNOTATION, raw, parseFallbackFields, (f) => f, without);
  const warnings = [...o.warnings];
  const check = (f: F, predictor: string | null): FallbackPolicy | string => {
    if (f.to === undefined) return `${FALLBACK_ANNOTATION}: to is required`;
    const bad = outOfScope(f.to, predictor, scope);
    return bad === null ? fallbackPolicy(f.to, f.on, scope.namespace) : `${FALLBACK_ANNOTATION}: ${bad}`;
  };
  // The deployment's own value, checked once for what no predictor changes (its fields, its targets).
  let shared: FallbackPolicy | null = null;
  let deploymentBad = false;
  const base = o.of('', undefined, () => {});
  if (base !== null && base.to === undefined) warnings.push(`${FALLBACK_ANNOTATION}: to is required: predictors without their own are ${without}`);
  else if (base !== null) {
    const c = check(base, null);
    if (typeof c === 'string') warnings.push(`${c}: ${without}`);
    else shared = c;
    deploymentBad = shared === null;
  }
  return {
    warnings,
    of(predictor, own, warn) {
      if (own === undefined) {
        // The fallback predictor itself has none (never a chain, never back).
        if (shared === null || (shared.to.kind === 'predictor' && shared.to.name === predictor)) return null;
        return shared;
      }
      if (deploymentBad) return null;
      const f = o.of(predictor, own, warn);
      if (f === null) return null;
      const c = check(f, predictor);
      if (typeof c !== 'string') return c;
      warn(`predictor "${predictor}": ${c}: ${without}`);
      return null;
    },
  };
}
