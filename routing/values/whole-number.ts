/**
 * The one reader of whole numbers in configuration: a Mapping's and the Module's keys (YAML, so a
 * number or a string), the annotations (always strings), the gateway-* documents. The same text has
 * one meaning wherever it is written: a YAML integer, or a string of digits (surrounding spaces
 * trimmed, as Python's `int()` reads Emissary's `circuit_breakers` fields and as annotations are
 * strings). Refused everywhere: a sign (a minus is read only where the key's `min` is below 0, as a
 * Mapping's `precedence` and `weight`), a decimal point or exponent (`2.5`, `1e3`), a boolean, an empty
 * string, and anything past `max` (int32 unless the key says less). What 0 means is the key's (its `min`
 * and its own rule), never the reader's.
 */

/** A value or why not: `syntax.ts` `Parsed<number>` by shape (this file imports nothing). */
export type Whole = { ok: true; value: number } | { ok: false; error: string };

export const MAX_INT32 = 2147483647;
const DIGITS = /^[0-9]+$/;
const SIGNED = /^-?[0-9]+$/;

/** Where a number is allowed to fall; `min` defaults to 0, `max` to int32. */
export interface WholeRange {
  readonly min?: number;
  readonly max?: number;
}

/** `v` as a whole number within `range`, or why not (the value quoted as written). */
export function readWholeNumber(v: unknown, range: WholeRange = {}): Whole {
  const min = range.min ?? 0;
  const max = range.max ?? MAX_INT32;
  const not = (): Whole => ({ ok: false, error: `${show(v)} is not a whole number${range.min === undefined ? '' : ` of at least ${min}`}` });
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && (min < 0 ? SIGNED : DIGITS).test(v.trim())) n = Number(v.trim());
  else return not();
  if (!Number.isInteger(n) || n < min) return not();
  if (n > max) return { ok: false, error: `${show(v)} is larger than ${max}` };
  return { ok: true, value: n };
}

function show(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}
