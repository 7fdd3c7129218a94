/**
 * The Open Inference Protocol's datatypes (v2), what each element of one may be, and how it is
 * written in JSON. Pure. An element is checked, never converted: a value the datatype cannot hold
 * (a fraction for an integer type, out of range, a string among numbers) is refused with
 * `TranslateRefusal`, whose message is the error's `info`.
 */

import { V2_DATATYPES, type V2Datatype, type WireProtocol } from '../../routing/policies/protocol.js';
import { leadsWithNumber } from './number-lists.js';

export const DATATYPES = V2_DATATYPES;
export type Datatype = V2Datatype;

/** One element as JSON holds it: 64-bit whole numbers beyond 2^53 as bigint (json-exact.ts). */
export type Element = number | bigint | boolean | string;

/** One request's translation, whatever its transport (rest/rest-translation.ts, grpc/grpc-translation.ts): what the header, the logs and the metric say of it. */
export interface Translation {
  readonly from: WireProtocol;
  readonly to: WireProtocol;
  /** What the model is asked: a REST path, a gRPC method. */
  readonly path: string;
  /** `from->to`. */
  readonly label: string;
}

/** A request or answer the translation cannot carry without changing its data: `message` says why; `status` is the answer's. */
export class TranslateRefusal extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** `v` as JSON text for a refusal's message: a long integer (a bigint, json-exact.ts) as its digits, where JSON.stringify would throw. */
export const jsonText = (v: unknown): string | undefined => JSON.stringify(v, (_key, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));

const DATATYPE_SET: ReadonlySet<string> = new Set(DATATYPES);
export const isDatatype = (v: unknown): v is Datatype => typeof v === 'string' && DATATYPE_SET.has(v);

/** Integer ranges, inclusive. */
const INT64_MAX = 9223372036854775807n;
const INT_RANGE: Readonly<Partial<Record<Datatype, readonly [bigint, bigint]>>> = {
  UINT8: [0n, 255n],
  UINT16: [0n, 65535n],
  UINT32: [0n, 4294967295n],
  UINT64: [0n, 18446744073709551615n],
  INT8: [-128n, 127n],
  INT16: [-32768n, 32767n],
  INT32: [-2147483648n, 2147483647n],
  INT64: [-9223372036854775808n, 9223372036854775807n],
};
/** Largest finite magnitude of each float type (FP64: any finite double). */
const FLOAT_MAX: Readonly<Partial<Record<Datatype, number>>> = { FP16: 65504, BF16: 3.3895313892515355e38, FP32: 3.4028234663852886e38, FP64: Number.MAX_VALUE };

export const isInteger = (dt: Datatype): boolean => INT_RANGE[dt] !== undefined;
/** A number Seldon's `tensor` form can carry (its values are numbers). */
export const isNumeric = (dt: Datatype): boolean => dt !== 'BOOL' && dt !== 'BYTES';

const show = (v: Element): string => (typeof v === 'string' ? JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v) : String(v));

/** Throw unless `v` is an element of `dt` as it is (`at`: its flat index, for the message). */
export function checkElement(dt: Datatype, v: Element, at: number): void {
  if (dt === 'BOOL') {
    if (typeof v !== 'boolean') throw new TranslateRefusal(`element ${at} is ${show(v)}, not a boolean (datatype BOOL)`);
    return;
  }
  if (dt === 'BYTES') {
    if (typeof v !== 'string') throw new TranslateRefusal(`element ${at} is ${show(v)}, not a string (datatype BYTES)`);
    return;
  }
  if (typeof v !== 'number' && typeof v !== 'bigint') throw new TranslateRefusal(`element ${at} is ${show(v)}, not a number (datatype ${dt})`);
  const range = INT_RANGE[dt];
  if (range !== undefined) {
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) throw new TranslateRefusal(`element ${at} is ${show(v)}, not a whole number (datatype ${dt})`);
      // A whole number beyond 2^53 written with a fraction or an exponent: its exact value is not known.
      if (!Number.isSafeInteger(v)) throw new TranslateRefusal(`element ${at} is ${show(v)}: beyond 2^53 a ${dt} must be written as a whole number, digits only`);
      if (v < Number(range[0]) || v > Number(range[1])) throw new TranslateRefusal(`element ${at} is ${show(v)}, out of range for ${dt}`);
    } else if (v < range[0] || v > range[1]) throw new TranslateRefusal(`element ${at} is ${show(v)}, out of range for ${dt}`);
    return;
  }
  const max = FLOAT_MAX[dt]!;
  if (typeof v === 'bigint') {
    // A whole number beyond 2^53: a float type takes it only when it holds it exactly.
    const n = Number(v);
    if (BigInt(n) !== v || (dt !== 'FP64' && Math.abs(n) > max)) throw new TranslateRefusal(`element ${at} is ${show(v)}, which ${dt} cannot hold exactly`);
    return;
  }
  if (!Number.isFinite(v) || Math.abs(v) > max) throw new TranslateRefusal(`element ${at} is ${show(v)}, out of range for ${dt}`);
}

/** Check every element of `values` for `dt`: the common element (a number of a float type, a safe whole number of an integer type) in one loop of plain comparisons; any other goes through `checkElement`, which refuses it or passes it. */
export function checkElements(dt: Datatype, values: readonly Element[]): void {
  const range = INT_RANGE[dt];
  const max = FLOAT_MAX[dt];
  // BOOL and BYTES, and a list not led by a number (strings, booleans, a bigint first), element by element: the loops below see lists of numbers alone (number-lists.ts).
  if ((range === undefined && max === undefined) || !leadsWithNumber(values)) {
    for (let i = 0; i < values.length; i++) checkElement(dt, values[i]!, i);
    return;
  }
  if (range !== undefined) {
    const lo = Math.max(Number(range[0]), Number.MIN_SAFE_INTEGER);
    const hi = Math.min(Number(range[1]), Number.MAX_SAFE_INTEGER);
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) checkElement(dt, v, i);
    }
    return;
  }
  // A float type (`range` and `max` are not both undefined).
  const m = max!;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    // NaN fails both comparisons, as Infinity fails one.
    if (typeof v !== 'number' || !(v <= m && v >= -m)) checkElement(dt, v, i);
  }
}

/**
 * The datatype Seldon's wrapper (numpy) would give these values: BOOL, BYTES, INT64 for whole
 * numbers written without fraction or exponent (UINT64 when one is beyond INT64) (`floats`: whether some number of the message was,
 * asked only when every value is whole), else FP64. Mixed kinds are refused (numpy would make them
 * strings or objects).
 */
export function inferDatatype(values: readonly Element[], floats: () => boolean): Datatype {
  if (values.length === 0) return 'FP64';
  const numbers = leadsWithNumber(values) ? wholeAmongNumbers(values) : null;
  if (numbers !== null) return numbers && !floats() ? 'INT64' : 'FP64';
  const first = typeof values.at(0);
  const kind = first === 'bigint' ? 'number' : first;
  let whole = true;
  let unsigned = false;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const big = typeof v === 'bigint';
    const t = big ? 'number' : typeof v;
    if (t !== kind) throw new TranslateRefusal(`mixed array: element ${i} is ${show(v)} among ${kind === 'string' ? 'strings' : kind === 'boolean' ? 'booleans' : 'numbers'}`);
    if (whole && typeof v === 'number' && !Number.isInteger(v)) whole = false;
    if (big && v > INT64_MAX) unsigned = true;
  }
  if (kind === 'boolean') return 'BOOL';
  if (kind === 'string') return 'BYTES';
  // numpy reads a whole number beyond int64 (up to 2^64 - 1) as uint64; UINT64's range check refuses the rest.
  return whole && !floats() ? (unsigned ? 'UINT64' : 'INT64') : 'FP64';
}

/**
 * For a list of numbers alone (a model's tensor, the common case): whether every one is whole; null when it
 * holds anything else (a bigint among them too), for `inferDatatype`'s own loop. Its own function, comparing
 * with constants only: the general loop's `typeof` compared with a variable took ≈ 0.35–0.85 ms over 150,528 freshly parsed doubles, this ≈ 0.05–0.07.
 */
function wholeAmongNumbers(values: readonly Element[]): boolean | null {
  let whole = true;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'number') return null;
    if (whole && !Number.isInteger(v)) whole = false;
  }
  return whole;
}

/** A float datatype (FP16, BF16, FP32, FP64). */
export const isFloat = (dt: Datatype): boolean => FLOAT_MAX[dt] !== undefined;

/**
 * What writing `values` needs to know, in one pass: `own`, where it holds an element JSON.stringify would
 * not write as it is (a bigint: it throws; a negative zero: it writes `0`; with `float` a whole number: it
 * writes `1`, which numpy reads as an integer), null for none (the common case); `strings`, whether one is a
 * string (its JSON text may be other than ASCII; numbers and booleans are ASCII).
 */
export interface TextPlan {
  readonly own: number[] | null;
  readonly strings: boolean;
}

export function textPlan(values: readonly Element[], float: boolean): TextPlan {
  return leadsWithNumber(values) ? numbersPlan(values, float) : elementsPlan(values, float, 0, null);
}

/** `textPlan` of a list led by a number (number-lists.ts): its numbers in a loop of their own, the rest from the first other element on. */
function numbersPlan(values: readonly Element[], float: boolean): TextPlan {
  let own: number[] | null = null;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'number') return elementsPlan(values, float, i, own);
    if (Object.is(v, -0) || (float && Number.isInteger(v))) (own ??= []).push(i);
  }
  return { own, strings: false };
}

/** `textPlan` from element `from` on, `own` what came before it. */
function elementsPlan(values: readonly Element[], float: boolean, from: number, own: number[] | null): TextPlan {
  let strings = false;
  for (let i = from; i < values.length; i++) {
    const v = values[i];
    if (typeof v === 'number') {
      if (Object.is(v, -0) || (float && Number.isInteger(v))) (own ??= []).push(i);
    } else if (typeof v === 'bigint') (own ??= []).push(i);
    else if (typeof v === 'string') strings = true;
  }
  return { own, strings };
}

/** One element's JSON text: a bigint's digits, a negative zero's sign, and with `float` a whole number as `1.0`. */
export function writeElement(v: Element, float = false): string {
  if (typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v);
  if (typeof v === 'bigint') return float ? `${v}.0` : v.toString();
  if (Object.is(v, -0)) return float ? '-0.0' : '-0';
  // From 1e21 a number is written with an exponent: a float already.
  return float && Number.isInteger(v) && Math.abs(v) < 1e21 ? `${v}.0` : String(v);
}
