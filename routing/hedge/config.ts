/**
 * `seldon.io/gateway-hedge` (docs/routing.md#hedged-requests): when a predictor's request gets a
 * second attempt on another endpoint, how many may be in flight at once, and how many extra
 * attempts its requests may cost. Pure: read at compile time into a frozen `HedgePolicy` on each
 * predictor's backends (null: no hedging, the common case, which the request path tests with one
 * property check).
 *
 * Fields (YAML or JSON, each optional; `on` is every default, `off` or `none` no hedging):
 * - `after`: a percentile of the predictor's recent first-attempt latency as the gateway measures
 *   it (`p90`, `p95`, `p99.9`: from p50 to below p100), or a fixed delay (`20ms`);
 * - `min`, `max`: bounds on that delay: a duration, or for `min` a multiple of the median (`1.5x`);
 * - `budget`: extra attempts (hedges and, on this route, retries) as a percent of requests;
 * - `maxAttempts`: attempts of one request in flight at once, from 2 to 5 (gRFC A6's cap).
 *
 * The defaults are load/hedge-sim.ts's choice (load/README.md#hedging-simulation-hedge-simts). A deployment's
 * annotation applies to each of its predictors; a predictor's own overrides it field by field
 * (`off` turns hedging off for that predictor). A bad value degrades the deployment: the
 * predictors it covers are served without hedging, and the compile says why.
 */
import { parseDuration } from '../values/duration.js';
import { readPercent } from '../values/percent.js';
import { readWholeNumber } from '../values/whole-number.js';
import { parseFieldsDocument, predictorOverrides, type Parsed, type PredictorOverrides } from '../values/syntax.js';

export const HEDGE_ANNOTATION = 'seldon.io/gateway-hedge';

/** A predictor's hedging, compiled once. */
export interface HedgePolicy {
  /** The delay is this quantile (0.5 ≤ q < 1) of the recent first-attempt latency; null: `afterMs`. */
  readonly quantile: number | null;
  /** A fixed delay in ms (when `quantile` is null). */
  readonly afterMs: number;
  /** The delay is at least this many ms… */
  readonly minMs: number;
  /** …and at least this multiple of the median first-attempt latency (0: no such bound). */
  readonly minMedians: number;
  /** The delay is at most this many ms (Infinity: no bound). */
  readonly maxMs: number;
  /** Extra attempts allowed, as a fraction of the predictor's requests. */
  readonly budget: number;
  /** Attempts of one request in flight at once, the first included. */
  readonly maxAttempts: number;
  /** The settings as /routes and the admin page show them (`after p95, min 1.5x median, …`). */
  readonly text: string;
}

/** The defaults (load/README.md#hedging-simulation-hedge-simts says why each). */
export const HEDGE_DEFAULTS = Object.freeze({ quantile: 0.95, minMedians: 1.5, budget: 0.05, maxAttempts: 2 });
/** gRFC A6 caps a hedging policy's attempts at 5. */
export const MAX_HEDGE_ATTEMPTS = 5;

const FIELDS = ['after', 'min', 'max', 'budget', 'maxAttempts'] as const;
const PERCENTILE = /^p([0-9]{2}(?:\.[0-9]+)?)$/;
const MEDIANS = /^([0-9]+(?:\.[0-9]+)?)\s*x$/;
const show = (v: unknown): string => JSON.stringify(v) ?? String(v);
/** `x` percent as a fraction, without binary noise (p99.9 is 0.999). */
const percentOf = (x: number): number => Math.round(x * 1e7) / 1e9;

/** The fields one annotation value sets, or `off`. */
export type HedgeFields = Partial<Omit<HedgePolicy, 'text'>> | 'off';

type Writable = { -readonly [K in keyof Omit<HedgePolicy, 'text'>]?: HedgePolicy[K] };

/** One annotation value (YAML or JSON) → the fields it sets. `off`/`none`: no hedging; `on`: the defaults. */
export function parseHedgeFields(raw: string): Parsed<HedgeFields> {
  const fail = (error: string): Parsed<HedgeFields> => ({ ok: false, error: `${HEDGE_ANNOTATION}: ${error}` });
  const text = raw.trim();
  if (text === 'off' || text === 'none') return { ok: true, value: 'off' };
  if (text === 'on') return { ok: true, value: {} };
  const parsed = parseFieldsDocument(text, FIELDS);
  if (!parsed.ok) return fail(parsed.error);
  const doc = parsed.value;
  const out: Writable = {};

  const a = doc.after;
  if (a !== undefined && a !== null) {
    const p = typeof a === 'string' ? PERCENTILE.exec(a.trim()) : null;
    const q = p === null ? NaN : percentOf(Number(p[1]));
    if (q >= 0.5 && q < 1) {
      out.quantile = q;
    } else {
      const ms = parseDuration(a);
      if (ms === null || ms <= 0) return fail(`after must be a percentile from p50 to p99.9… (like p95) or a duration like 20ms (a bare number has no unit), not ${show(a)}`);
      out.quantile = null;
      out.afterMs = ms;
    }
  }
  const lo = doc.min;
  if (lo !== undefined && lo !== null) {
    const m = typeof lo === 'string' ? MEDIANS.exec(lo.trim()) : null;
    if (m !== null) {
      out.minMedians = Number(m[1]);
      out.minMs = 0;
    } else {
      const ms = parseDuration(lo);
      if (ms === null) return fail(`min must be a duration like 5ms or a multiple of the median like 1.5x, not ${show(lo)}`);
      out.minMs = ms;
      out.minMedians = 0;
    }
  }
  const hi = doc.max;
  if (hi !== undefined && hi !== null) {
    const ms = hi === 'none' ? Infinity : parseDuration(hi);
    if (ms === null || ms <= 0) return fail(`max must be a duration like 500ms or none, not ${show(hi)}`);
    out.maxMs = ms;
  }
  if (out.minMs !== undefined && out.maxMs !== undefined && out.maxMs < out.minMs) return fail('max must be at least min');
  const b = doc.budget;
  if (b !== undefined && b !== null) {
    const p = readPercent(b);
    const pct = p.ok ? p.value : NaN;
    if (!(pct > 0 && pct <= 100)) return fail(`budget must be a percent of requests above 0% and at most 100%, like 5%, not ${show(b)}`);
    out.budget = percentOf(pct);
  }
  const n = doc.maxAttempts;
  if (n !== undefined && n !== null) {
    const w = readWholeNumber(n, { min: 2, max: MAX_HEDGE_ATTEMPTS });
    if (!w.ok) return fail(`maxAttempts must be an integer from 2 to ${MAX_HEDGE_ATTEMPTS}, not ${show(n)}`);
    out.maxAttempts = w.value;
  }
  return { ok: true, value: out };
}

const msText = (ms: number): string => (ms === Infinity ? 'none' : `${Math.round(ms * 1000) / 1000}ms`);
const pctText = (x: number): string => `${Math.round(x * 100_000) / 1000}`;

/** The policy of settings `fields` over the defaults, frozen, with its text. */
export function hedgePolicy(fields: Partial<Omit<HedgePolicy, 'text'>>): HedgePolicy {
  const fixed = fields.quantile === null;
  const p = {
    quantile: fixed ? null : (fields.quantile ?? HEDGE_DEFAULTS.quantile),
    afterMs: fixed ? fields.afterMs! : 0,
    minMs: fields.minMs ?? 0,
    // A fixed delay is taken as written: the median's bound is a percentile's default only.
    minMedians: fields.minMedians ?? (fixed ? 0 : HEDGE_DEFAULTS.minMedians),
    maxMs: fields.maxMs ?? Infinity,
    budget: fields.budget ?? HEDGE_DEFAULTS.budget,
    maxAttempts: fields.maxAttempts ?? HEDGE_DEFAULTS.maxAttempts,
  };
  const after = p.quantile === null ? msText(p.afterMs) : `p${pctText(p.quantile)}`;
  const min = p.minMedians > 0 ? `${p.minMedians}x median` : msText(p.minMs);
  const text = `after ${after}, min ${min}, max ${msText(p.maxMs)}, budget ${pctText(p.budget)}%, maxAttempts ${p.maxAttempts}`;
  return Object.freeze({ ...p, text });
}

/** What /routes and the admin page say of a policy (routing/table/describe.ts). */
export function hedgeAfterText(p: HedgePolicy): string {
  return p.quantile === null ? msText(p.afterMs) : `p${pctText(p.quantile)}`;
}

/** A deployment's hedge annotation, read once: each predictor's policy (routing/values/syntax.ts `predictorOverrides`). */
export type HedgeAnnotations = PredictorOverrides<HedgePolicy>;

/** `seldon.io/gateway-hedge` of a deployment (`raw`, absent: undefined). Predictors without an override share one policy object. */
export function hedgeAnnotations(raw: string | undefined): HedgeAnnotations {
  return predictorOverrides(HEDGE_ANNOTATION, raw, parseHedgeFields, hedgePolicy, 'served without hedging');
}
