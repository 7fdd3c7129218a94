/**
 * The one duration grammar of the gateway, for every annotation, Mapping and Module key, operator file
 * and flag: a number with its unit (`500ms`, `30s`, `2m`, `1h`, `1d`, decimals such as `0.5s`), or
 * several in a row (`1m30s`), as Go's and Envoy's durations read; and a bare `0`, as Go's
 * `time.ParseDuration` reads it (zero in any unit). Any other bare number has no unit and is not a
 * duration: a `3` once read as 3 ms where 3 s was meant. A duration comes to whole milliseconds (every
 * timer and Redis TTL the gateway sets counts them): `1.5ms` is refused, never rounded.
 */

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:[0-9]+(?:\.[0-9]+)?\s*(?:ms|s|m|h|d))+$/;
const PART = /([0-9]+)(?:\.([0-9]+))?\s*(ms|s|m|h|d)/g;
const BARE_NUMBER = /^[0-9]+(?:\.[0-9]+)?$/;

/** A duration in ms, or why not: `unitless` (a bare number other than 0), `fraction` (not whole ms), `malformed`. */
export type ReadDuration = { ok: true; value: number } | { ok: false; why: 'unitless' | 'fraction' | 'malformed'; error: string };

/** `v` as whole milliseconds, or why not (the value quoted as written). */
export function readDuration(v: unknown): ReadDuration {
  const shown = JSON.stringify(v) ?? String(v);
  if (typeof v !== 'string') return { ok: false, why: 'malformed', error: `${shown} is not a duration (a number with its unit: 500ms, 30s, 2m, 1h, 1d)` };
  const s = v.trim();
  if (s === '0') return { ok: true, value: 0 };
  if (BARE_NUMBER.test(s)) return { ok: false, why: 'unitless', error: `${shown} has no unit: durations take ms, s, m, h or d (${s}ms, ${s}s)` };
  if (!DURATION.test(s)) return { ok: false, why: 'malformed', error: `${shown} is not a duration (a number with its unit: 500ms, 30s, 2m, 1h, 1d)` };
  let ms = 0;
  for (const m of s.matchAll(PART)) {
    const unit = UNIT_MS[m[3]!]!;
    const frac = m[2] ?? '';
    // The fraction exactly, in integers: `0.1s` is 100 ms, `1.005s` is not a whole number of them.
    const scaled = BigInt(frac === '' ? 0 : frac) * BigInt(unit);
    const den = 10n ** BigInt(frac.length);
    if (scaled % den !== 0n) return { ok: false, why: 'fraction', error: `${shown} is not a whole number of milliseconds` };
    ms += Number(m[1]) * unit + Number(scaled / den);
  }
  if (!Number.isSafeInteger(ms)) return { ok: false, why: 'malformed', error: `${shown} is too long a duration` };
  return { ok: true, value: ms };
}

/** A duration in ms, or null when `v` is not one (`readDuration` says why). */
export function parseDuration(v: unknown): number | null {
  const r = readDuration(v);
  return r.ok ? r.value : null;
}
