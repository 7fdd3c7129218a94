/**
 * `seldon.io/gateway-rollout` (docs/rollouts.md#the-annotation): YAML (or JSON) read into a
 * `RolloutConfig`. Every field but `canary` has a default. A bad value, or a field this
 * version does not know, is an error naming the field: the caller ignores the rollout (static
 * `traffic` applies) and reports the sentence. An unknown field is refused rather than skipped
 * because a misspelt limit (`maxErrorrate`) would otherwise run the rollout on a default the
 * user never chose.
 */
import { parse as parseYaml } from 'yaml';
import { parseDuration } from '../../values/duration.js';
import { readPercent } from '../../values/percent.js';
import { readWholeNumber } from '../../values/whole-number.js';
import { parseSticky as stickySpecOf, type StickySpec } from '../sticky.js';
import { type Parsed } from '../../values/syntax.js';

export interface MirrorConfig {
  /** Percent of requests mirrored to the canary (1..100). */
  readonly percent: number;
  /** Shortest time in the mirror phase, ms. */
  readonly forMs: number;
  /** Agreement the canary's answers must be shown to reach, 0..1. */
  readonly minAgreement: number;
}

/** `+2%`: the primary's rate in the same windows plus 0.02; `3%`: 0.03 whatever the primary does. */
export interface ErrorLimit {
  readonly kind: 'relative' | 'absolute';
  readonly rate: number;
}

export interface RolloutConfig {
  /** The predictor rolled out; every other one is the primary. */
  readonly canary: string;
  /** Optional first phase (live weight 0, requests mirrored to the canary); null: none. */
  readonly mirror: MirrorConfig | null;
  /** Canary weight in percent at each step, increasing, 1..100. */
  readonly steps: readonly number[];
  /** Shortest time at one step, and the length of a latency interval, ms. */
  readonly intervalMs: number;
  /** Canary requests needed at a step (mirrored ones in the mirror phase) before it may advance. */
  readonly minRequests: number;
  readonly maxErrorRate: ErrorLimit;
  /** How much slower than the primary the canary may be, as a fraction (0.1 = 10%). */
  readonly maxLatencyShift: number;
  /** Ceiling on the canary's own p99, ms; null: no ceiling. */
  readonly maxP99Ms: number | null;
  /** Failing latency intervals at one step before a rollback. */
  readonly threshold: number;
  readonly sticky: StickySpec | null;
}

export const ROLLOUT_ANNOTATION = 'seldon.io/gateway-rollout';
export const ROLLOUT_ACTION_ANNOTATION = 'seldon.io/gateway-rollout-action';

/** The defaults of every field but `canary` (and of `mirror`'s fields when `mirror` is given). */
export const ROLLOUT_DEFAULTS = Object.freeze({
  mirror: Object.freeze({ percent: 100, forMs: 5 * 60_000, minAgreement: 0.99 }),
  steps: Object.freeze([1, 5, 10, 25, 50, 100]),
  intervalMs: 30_000,
  minRequests: 300,
  maxErrorRate: Object.freeze({ kind: 'relative', rate: 0.02 } as const),
  maxLatencyShift: 0.1,
  maxP99Ms: null,
  threshold: 2,
  sticky: null,
});

const FIELDS = ['canary', 'mirror', 'steps', 'interval', 'minRequests', 'maxErrorRate', 'maxLatencyShift', 'maxP99', 'threshold', 'sticky'];
const MIRROR_FIELDS = ['percent', 'for', 'minAgreement'];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v)));

/** A percentage as a fraction (routing/values/percent.ts): `+2%` only when `relative`, a bare number of percent only when `bare`. */
function parsePercent(v: unknown, relative: boolean, bare = false): { rate: number; relative: boolean } | null {
  const p = readPercent(v, { relative, bare });
  return p.ok ? { rate: p.value / 100, relative: p.relative } : null;
}

const fail = (field: string, msg: string): { ok: false; error: string } => ({ ok: false, error: `${ROLLOUT_ANNOTATION}: ${field} ${msg}` });

function unknownKeys(o: Obj, known: readonly string[], where: string): string | null {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) return `${ROLLOUT_ANNOTATION}: unknown field "${where}${k}" (known: ${known.join(', ')})`;
  }
  return null;
}

function durationField(o: Obj, key: string, name: string, dflt: number, min: number): Parsed<number> {
  if (o[key] === undefined || o[key] === null) return { ok: true, value: dflt };
  const ms = parseDuration(o[key]);
  if (ms === null) return fail(name, `${show(o[key])} is not a duration like 250ms, 30s, 5m or 1h (a bare number has no unit)`);
  if (ms < min) return fail(name, `${show(o[key])} is shorter than ${min >= 1000 ? `${min / 1000}s` : `${min}ms`}`);
  return { ok: true, value: ms };
}

function percentField(o: Obj, key: string, name: string, dflt: number, lo: number, hi: number, loOpen = false, bare = false): Parsed<number> {
  if (o[key] === undefined || o[key] === null) return { ok: true, value: dflt };
  const p = parsePercent(o[key], false, bare);
  if (p === null) return fail(name, `${show(o[key])} is not a percentage like 99%`);
  if (p.rate > hi || p.rate < lo || (loOpen && p.rate === lo)) return fail(name, `${show(o[key])} is outside ${loOpen ? '(' : '['}${lo * 100}%, ${hi * 100}%]`);
  return { ok: true, value: p.rate };
}

function intField(o: Obj, key: string, dflt: number, min: number): Parsed<number> {
  const v = o[key];
  if (v === undefined || v === null) return { ok: true, value: dflt };
  const n = readWholeNumber(v, { min });
  return n.ok ? n : fail(key, `${show(v)} is not a whole number of at least ${min}`);
}

function parseMirror(v: unknown): Parsed<MirrorConfig | null> {
  if (v === undefined || v === null || v === false) return { ok: true, value: null };
  const d = ROLLOUT_DEFAULTS.mirror;
  if (v === true) return { ok: true, value: { ...d } };
  if (!isObj(v)) return fail('mirror', `must be a mapping like {percent: 100, for: 5m, minAgreement: 99%}, not ${show(v)}`);
  const unknown = unknownKeys(v, MIRROR_FIELDS, 'mirror.');
  if (unknown) return { ok: false, error: unknown };
  // `percent: 100`: the key's name says it counts percents.
  const percent = percentField(v, 'percent', 'mirror.percent', d.percent / 100, 0, 1, true, true);
  if (!percent.ok) return percent;
  const forMs = durationField(v, 'for', 'mirror.for', d.forMs, 1000);
  if (!forMs.ok) return forMs;
  const minAgreement = percentField(v, 'minAgreement', 'mirror.minAgreement', d.minAgreement, 0, 1, true);
  if (!minAgreement.ok) return minAgreement;
  return { ok: true, value: { percent: percent.value * 100, forMs: forMs.value, minAgreement: minAgreement.value } };
}

function parseSteps(v: unknown): Parsed<number[]> {
  if (v === undefined || v === null) return { ok: true, value: [...ROLLOUT_DEFAULTS.steps] };
  if (!Array.isArray(v) || v.length === 0) return fail('steps', `must be a non-empty list of percents like [1, 5, 10, 25, 50, 100], not ${show(v)}`);
  const out: number[] = [];
  for (const raw of v) {
    const p = (parsePercent(raw, false, true)?.rate ?? NaN) * 100;
    if (!Number.isFinite(p) || p < 1 || p > 100) return fail('steps', `entry ${show(raw)} is not a percent between 1 and 100`);
    const last = out[out.length - 1];
    if (last !== undefined && p <= last) return fail('steps', `must increase: ${p} follows ${last}`);
    out.push(p);
  }
  return { ok: true, value: out };
}

function parseErrorLimit(v: unknown): Parsed<ErrorLimit> {
  if (v === undefined || v === null) return { ok: true, value: ROLLOUT_DEFAULTS.maxErrorRate };
  const p = typeof v === 'string' ? parsePercent(v, true) : null;
  if (p === null) return fail('maxErrorRate', `${show(v)} is not "+2%" (above the primary's rate) or "3%" (absolute)`);
  if (!(p.rate > 0 && p.rate < 1)) return fail('maxErrorRate', `${show(v)} must be above 0% and below 100%`);
  return { ok: true, value: { kind: p.relative ? 'relative' : 'absolute', rate: p.rate } };
}

function parseMaxLatencyShift(v: unknown): Parsed<number> {
  if (v === undefined || v === null) return { ok: true, value: ROLLOUT_DEFAULTS.maxLatencyShift };
  const p = parsePercent(v, true);
  if (p === null) return fail('maxLatencyShift', `${show(v)} is not a percentage like 10%`);
  if (p.rate > 10) return fail('maxLatencyShift', `${show(v)} is over 1000%`);
  return { ok: true, value: p.rate };
}

function parseMaxP99(v: unknown): Parsed<number | null> {
  if (v === undefined || v === null || v === 'none' || v === 'off') return { ok: true, value: null };
  const ms = parseDuration(v);
  if (ms === null || ms <= 0) return fail('maxP99', `${show(v)} is not a duration like 250ms or 2s (or none)`);
  return { ok: true, value: ms };
}

function parseSticky(v: unknown): Parsed<StickySpec | null> {
  if (v === undefined || v === null || v === '') return { ok: true, value: null };
  const spec = typeof v === 'string' ? stickySpecOf(v) : `${show(v)} is not header:<name> or cookie`;
  return typeof spec === 'string' ? fail('sticky', spec) : { ok: true, value: spec };
}

/**
 * Read the annotation's text for a deployment with these predictor names. An error when the
 * text does not parse, a field is unknown or bad, the canary is missing or not one of the
 * predictors, or the deployment has fewer than two predictors.
 */
export function parseRolloutAnnotation(raw: string, predictors: readonly string[]): Parsed<RolloutConfig> {
  let doc: unknown;
  try {
    doc = parseYaml(raw, { maxAliasCount: 100 });
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    return { ok: false, error: `${ROLLOUT_ANNOTATION} does not parse as YAML or JSON: ${msg}` };
  }
  if (!isObj(doc)) return { ok: false, error: `${ROLLOUT_ANNOTATION} must be a mapping of fields (canary, steps, …), not ${show(doc)}` };
  const unknown = unknownKeys(doc, FIELDS, '');
  if (unknown) return { ok: false, error: unknown };
  if (predictors.length < 2) {
    return { ok: false, error: `${ROLLOUT_ANNOTATION} needs two or more predictors (a primary and a canary); this deployment has ${predictors.length}` };
  }
  const canary = doc.canary;
  if (typeof canary !== 'string' || canary.trim() === '') return fail('canary', `is required: the name of the predictor to roll out (one of ${predictors.join(', ')})`);
  if (!predictors.includes(canary.trim())) return fail('canary', `"${canary}" is not a predictor of this deployment (${predictors.join(', ')})`);
  const mirror = parseMirror(doc.mirror);
  if (!mirror.ok) return mirror;
  const steps = parseSteps(doc.steps);
  if (!steps.ok) return steps;
  if (steps.value[0] === 100 && !mirror.value) {
    return fail('steps', 'start at 100%: every request would go to the canary before anything was judged (add a smaller first step or a mirror phase)');
  }
  const intervalMs = durationField(doc, 'interval', 'interval', ROLLOUT_DEFAULTS.intervalMs, 1000);
  if (!intervalMs.ok) return intervalMs;
  const minRequests = intField(doc, 'minRequests', ROLLOUT_DEFAULTS.minRequests, 1);
  if (!minRequests.ok) return minRequests;
  const maxErrorRate = parseErrorLimit(doc.maxErrorRate);
  if (!maxErrorRate.ok) return maxErrorRate;
  const maxLatencyShift = parseMaxLatencyShift(doc.maxLatencyShift);
  if (!maxLatencyShift.ok) return maxLatencyShift;
  const maxP99Ms = parseMaxP99(doc.maxP99);
  if (!maxP99Ms.ok) return maxP99Ms;
  const threshold = intField(doc, 'threshold', ROLLOUT_DEFAULTS.threshold, 1);
  if (!threshold.ok) return threshold;
  const sticky = parseSticky(doc.sticky);
  if (!sticky.ok) return sticky;
  return {
    ok: true,
    value: {
      canary: canary.trim(),
      mirror: mirror.value,
      steps: steps.value,
      intervalMs: intervalMs.value,
      minRequests: minRequests.value,
      maxErrorRate: maxErrorRate.value,
      maxLatencyShift: maxLatencyShift.value,
      maxP99Ms: maxP99Ms.value,
      threshold: threshold.value,
      sticky: sticky.value,
    },
  };
}
