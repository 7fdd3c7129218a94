/**
 * `seldon.io/gateway-outlier` (docs/routing.md#endpoint-health): a predictor's endpoint health
 * settings over the gateway's flags. Pure: read at compile time into each predictor's backends.
 *
 * `off` (or `none`) turns ejection off (the pick stays latency-aware); `on` keeps the flags; a
 * YAML or JSON mapping sets any of `consecutiveLocalFailures`, `ejectionTime`, `maxEjectionTime`,
 * `maxEjectedPercent`, `slowStart` (durations with a unit: `30s`, `5m`). A deployment's annotation
 * applies to each of its predictors; a predictor's own overrides it field by field, as
 * `seldon.io/gateway-flow` does. A bad value degrades the deployment, which is served with the
 * flags' settings.
 */
import { parseDuration } from '../values/duration.js';
import { readWholeNumber } from '../values/whole-number.js';
import type { OutlierPolicy } from '../types.js';
import { parseFieldsDocument, type Parsed } from '../values/syntax.js';

export const OUTLIER_ANNOTATION = 'seldon.io/gateway-outlier';

/** What an annotation sets: fields over the flags, or `off`. */
export type OutlierFields = Partial<OutlierPolicy> | 'off';

const FIELDS = ['consecutiveLocalFailures', 'ejectionTime', 'maxEjectionTime', 'maxEjectedPercent', 'slowStart'] as const;
const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

export function parseOutlierFields(raw: string): Parsed<OutlierFields> {
  const fail = (error: string): Parsed<OutlierFields> => ({ ok: false, error: `${OUTLIER_ANNOTATION}: ${error}` });
  const text = raw.trim();
  if (text === 'off' || text === 'none') return { ok: true, value: 'off' };
  if (text === 'on') return { ok: true, value: {} };
  const parsed = parseFieldsDocument(text, FIELDS);
  if (!parsed.ok) return fail(parsed.error);
  const doc = parsed.value;
  const out: { -readonly [K in keyof OutlierPolicy]?: OutlierPolicy[K] } = {};
  const c = doc.consecutiveLocalFailures;
  if (c !== undefined && c !== null) {
    const n = readWholeNumber(c, { min: 1, max: 1000 });
    if (!n.ok) return fail(`consecutiveLocalFailures must be an integer from 1 to 1000, not ${show(c)}`);
    out.consecutiveLocal = n.value;
  }
  for (const [field, key] of [
    ['ejectionTime', 'baseEjectionMs'],
    ['maxEjectionTime', 'maxEjectionMs'],
    ['slowStart', 'slowStartMs'],
  ] as const) {
    const v = doc[field];
    if (v === undefined || v === null) continue;
    const ms = parseDuration(v);
    if (ms === null) return fail(`${field} must be a duration like 30s or 5m (a bare number has no unit), not ${show(v)}`);
    if (field === 'ejectionTime' && ms <= 0) return fail(`ejectionTime must be more than 0, not ${show(v)}`);
    out[key] = ms;
  }
  if (out.baseEjectionMs !== undefined && out.maxEjectionMs !== undefined && out.maxEjectionMs < out.baseEjectionMs) return fail(`maxEjectionTime must be at least ejectionTime`);
  const p = doc.maxEjectedPercent;
  if (p !== undefined && p !== null) {
    const n = readWholeNumber(p, { max: 100 });
    if (!n.ok) return fail(`maxEjectedPercent must be an integer from 0 to 100, not ${show(p)}`);
    out.maxEjectedPercent = n.value;
  }
  return { ok: true, value: out };
}

/** A deployment's annotation, read once; `of` gives each predictor its settings (undefined: the flags'). */
export interface OutlierAnnotations {
  readonly warnings: readonly string[];
  of(predictor: string, raw: unknown, warn: (msg: string) => void): Partial<OutlierPolicy> | null | undefined;
}

export function outlierAnnotations(raw: string | undefined): OutlierAnnotations {
  const warnings: string[] = [];
  let base: OutlierFields | undefined;
  if (raw !== undefined) {
    const p = parseOutlierFields(raw);
    if (p.ok) base = p.value;
    else warnings.push(`${p.error}: served with the gateway's endpoint health settings`);
  }
  const shared = base === undefined ? undefined : base === 'off' ? null : Object.freeze({ ...base });
  return {
    warnings,
    of(predictor, own, warn) {
      if (own === undefined) return shared;
      const p = typeof own === 'string' ? parseOutlierFields(own) : { ok: false as const, error: `${OUTLIER_ANNOTATION}: ${show(own)} is not a string` };
      if (!p.ok) {
        warn(`predictor "${predictor}": ${p.error}: served with the gateway's endpoint health settings`);
        return undefined;
      }
      if (p.value === 'off') return null;
      return Object.freeze({ ...(base === undefined || base === 'off' ? {} : base), ...p.value });
    },
  };
}
