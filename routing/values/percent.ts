/**
 * The one reader of percentages in the annotations: a bandit's `floor`, a hedge's `budget`, a
 * rollout's `maxErrorRate`, `maxLatencyShift`, `mirror.minAgreement`, `mirror.percent` and `steps`. A
 * percentage is written with its sign, `2%`, `0.5%`, `99.9 %`; `+2%` only where the key reads a rise over
 * something (a rollout's `maxErrorRate`, `maxLatencyShift`). A bare number is a percentage only where the
 * key's own name or list says it counts percents (`mirror.percent: 100`, `steps: [1, 5]`, as `traffic`
 * and a Mapping's `weight` do): elsewhere `2` could as well be a fraction (a bandit's `epsilon` is one)
 * and is refused. A minus is never a percentage. What range applies is the key's.
 */

/** A percentage in percent (`2%` → 2), whether it was written `+2%`, or why not. */
export type ReadPercent = { ok: true; value: number; relative: boolean } | { ok: false; error: string };

const PERCENT = /^(\+)?([0-9]+(?:\.[0-9]+)?)\s*%$/;

export interface PercentRules {
  /** `+N%` is read (a rise over something): default no. */
  readonly relative?: boolean;
  /** A bare number is a number of percent (the key says so): default no. */
  readonly bare?: boolean;
}

/** `v` as a percentage, or why not (the value quoted as written). */
export function readPercent(v: unknown, rules: PercentRules = {}): ReadPercent {
  const shown = JSON.stringify(v) ?? String(v);
  if (typeof v === 'number') {
    if (rules.bare && Number.isFinite(v) && v >= 0) return { ok: true, value: v, relative: false };
    return { ok: false, error: `${shown} is not a percentage like 2%${rules.bare ? '' : ' (a bare number has no %: write it with one)'}` };
  }
  if (typeof v !== 'string') return { ok: false, error: `${shown} is not a percentage like 2%` };
  const s = v.trim();
  if (rules.bare && /^[0-9]+(?:\.[0-9]+)?$/.test(s)) return { ok: true, value: Number(s), relative: false };
  const m = PERCENT.exec(s);
  if (m === null) return { ok: false, error: `${shown} is not a percentage like 2%${/^[0-9.]+$/.test(s) ? ' (a bare number has no %: write it with one)' : ''}` };
  if (m[1] !== undefined && !rules.relative) return { ok: false, error: `${shown} is not a percentage like 2% (a rise, +N%, is not read here)` };
  return { ok: true, value: Number(m[2]), relative: m[1] !== undefined };
}
