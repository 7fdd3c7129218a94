/**
 * The one duration grammar of the gateway, for every annotation and every flag: a number with
 * its unit (`500ms`, `30s`, `2m`, `1h`, `1d`, decimals such as `0.5s`), or several in a row
 * (`1m30s`), as Go's and Envoy's durations read. A bare number has no unit and is not a duration:
 * a `3` once read as 3 ms where 3 s was meant.
 */

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:[0-9]+(?:\.[0-9]+)?\s*(?:ms|s|m|h|d))+$/;
const PART = /([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)/g;

/** A duration in ms, or null when `v` is not one (not a string, no unit, an unknown unit). */
export function parseDuration(v: unknown): number | null {
  if (typeof v !== 'string') return null;
  const s = v.trim();
  if (!DURATION.test(s)) return null;
  let ms = 0;
  for (const m of s.matchAll(PART)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms;
}
