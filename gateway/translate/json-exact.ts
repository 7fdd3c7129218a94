/**
 * JSON read with its numbers exact: a whole number beyond 2^53 may not survive a JavaScript number,
 * so a body holding one is parsed again with each number's source text, and those numbers become
 * bigints. Every other body costs `JSON.parse` and one walk over the numbers it made (a number beyond
 * 2^53 in magnitude is the only sign of one: the parse with source text is about 25 times slower, so
 * it is paid only then). Whether any number was written with a fraction or an exponent (a Seldon
 * client's `1.0` is a float, which JSON.parse alone cannot tell from `1`) is a byte scan of the text,
 * made only when asked: a datatype is inferred from whole numbers alone.
 */

import { isAscii } from 'node:buffer';
import { leadsWithNumber } from './number-lists.js';

/** A parsed document: numbers are `number`, or `bigint` for a whole number beyond 2^53. */
export interface ExactJson {
  readonly value: unknown;
  /** Some number outside strings was written with a fraction or an exponent (scanned on first read). */
  readonly floats: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const DOT = 0x2e;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const ZERO = 0x30;
const NINE = 0x39;
const PLUS = 0x2b;
const MINUS = 0x2d;

/** Bodies up to this size are scanned for floats as they are parsed, not when asked. */
const EAGER_SCAN_BYTES = 4096;

/** Parse `body` (UTF-8 JSON); throws SyntaxError as JSON.parse does. */
export function parseExact(body: Buffer | string): ExactJson {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  // ASCII (a tensor's JSON, nearly always) is its own latin1: decoded by a copy, not UTF-8's slower pass.
  const text = typeof body === 'string' ? body : buf.length > EAGER_SCAN_BYTES && isAscii(buf) ? buf.toString('latin1') : buf.toString('utf8');
  // A small body is scanned at once, long integers and floats in one pass: cheaper than a walk and a lazy getter.
  if (buf.length <= EAGER_SCAN_BYTES) {
    const s = scanSmall(buf);
    return { value: s.long ? JSON.parse(text, exactNumber) : JSON.parse(text), floats: s.floats };
  }
  const parsed: unknown = JSON.parse(text);
  const value = holdsUnsafeNumber(parsed) ? JSON.parse(text, exactNumber) : parsed;
  let floats: boolean | undefined;
  return {
    value,
    get floats(): boolean {
      return (floats ??= writesFloats(buf));
    },
  };
}

/** Whether any number in `doc` is beyond 2^53 - 1 in magnitude (a whole-number literal there may not be exact). Iterative: JSON.parse nests deeper than the stack. */
function holdsUnsafeNumber(doc: unknown): boolean {
  if (typeof doc === 'number') return unsafe(doc);
  if (typeof doc !== 'object' || doc === null) return false;
  const stack: object[] = [doc];
  while (stack.length > 0) {
    const o = stack.pop()!;
    if (Array.isArray(o)) {
      // Only a list led by a number goes in (number-lists.ts): fed lists of objects too, it would box each list of doubles.
      const numbers = leadsWithNumber(o) ? unsafeAmongNumbers(o as unknown[]) : null;
      if (numbers) return true;
      if (numbers === false) continue;
      for (let i = 0; i < o.length; i++) {
        const v: unknown = o[i];
        if (typeof v === 'number') {
          if (unsafe(v)) return true;
        } else if (typeof v === 'object' && v !== null) stack.push(v);
      }
    } else
      for (const k in o) {
        const v: unknown = (o as Record<string, unknown>)[k];
        if (typeof v === 'number') {
          if (unsafe(v)) return true;
        } else if (typeof v === 'object' && v !== null) stack.push(v);
      }
  }
  return false;
}

/** For a list led by a number (a tensor's, the common case): whether one is unsafe; null when the list holds anything else. */
function unsafeAmongNumbers(a: unknown[]): boolean | null {
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (typeof v !== 'number') return null;
    if (v > Number.MAX_SAFE_INTEGER || v < -Number.MAX_SAFE_INTEGER) return true;
  }
  return false;
}

const unsafe = (v: number): boolean => v > Number.MAX_SAFE_INTEGER || v < -Number.MAX_SAFE_INTEGER;

/** Whether a number of `buf` has an integer part of 16 digits or more (it may be beyond 2^53), and whether one was written as a float. */
function scanSmall(buf: Buffer): { long: boolean; floats: boolean } {
  let inString = false;
  let floats = false;
  let long = false;
  // Digits of the number's integer part so far; -1 outside a number, -2 in a fraction or exponent.
  let run = -1;
  let prevDigit = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c >= ZERO && c <= NINE) {
      if (run === -1) run = 0;
      if (run >= 0 && ++run >= 16) long = true;
      prevDigit = true;
      continue;
    }
    if (c === QUOTE) inString = true;
    if (c === DOT || ((c === LOWER_E || c === UPPER_E) && prevDigit)) {
      floats = true;
      run = -2;
    } else if (!((c === PLUS || c === MINUS) && run === -2)) run = -1;
    prevDigit = false;
  }
  return { long, floats };
}

/** Whether some number of the JSON text `buf` (outside strings) was written with a fraction or an exponent. */
function writesFloats(buf: Buffer): boolean {
  let inString = false;
  let prevDigit = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c >= ZERO && c <= NINE) {
      prevDigit = true;
      continue;
    }
    if (c === QUOTE) inString = true;
    // A fraction, or an exponent (an `e` right after a digit: never the `e` of true or false).
    else if (c === DOT || ((c === LOWER_E || c === UPPER_E) && prevDigit)) return true;
    prevDigit = false;
  }
  return false;
}

/** A whole-number literal beyond the safe range becomes a bigint; everything else stays as JSON.parse made it. */
function exactNumber(this: unknown, _key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value !== 'number' || Number.isSafeInteger(value)) return value;
  const src = context?.source;
  if (src === undefined || !/^-?[0-9]+$/.test(src)) return value;
  return BigInt(src);
}

/** JSON.rawJSON (Node 21+; not in the ES2023 lib's types): a value JSON.stringify writes as the text given. */
export const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;
/** JSON.isRawJSON: whether `v` is such a value. */
export const isRawJSON = (JSON as unknown as { isRawJSON(v: unknown): boolean }).isRawJSON;

/** A bigint written as its digits (a number still, never a string); anything else as JSON.stringify writes it. */
const digits = (_key: string, v: unknown): unknown => (typeof v === 'bigint' ? rawJSON(v.toString()) : v);

/** The JSON text of a document `parseExact` read: its long integers (bigints) as their digits, where JSON.stringify alone would throw. */
export const writeExact = (doc: unknown): string => JSON.stringify(doc, digits);

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const isSpace = (c: number | undefined): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** The index after the string that starts at `i` (its opening quote). */
function afterString(buf: Buffer, i: number): number {
  for (i++; i < buf.length; i++) {
    const c = buf[i];
    if (c === BACKSLASH) i++;
    else if (c === QUOTE) return i + 1;
  }
  return i;
}

/** The index after the value that starts at `i`; iterative, as deep as the text nests. */
function afterValue(buf: Buffer, i: number): number {
  const c = buf[i];
  if (c === QUOTE) return afterString(buf, i);
  if (c !== OPEN_BRACE && c !== OPEN_BRACKET) {
    while (i < buf.length && buf[i] !== COMMA && buf[i] !== CLOSE_BRACE && buf[i] !== CLOSE_BRACKET && !isSpace(buf[i])) i++;
    return i;
  }
  let depth = 0;
  while (i < buf.length) {
    const d = buf[i];
    if (d === QUOTE) {
      i = afterString(buf, i);
      continue;
    }
    if (d === OPEN_BRACE || d === OPEN_BRACKET) depth++;
    else if ((d === CLOSE_BRACE || d === CLOSE_BRACKET) && --depth === 0) return i + 1;
    i++;
  }
  return i;
}

/**
 * The source text of the member `key` of the object `body` holds, which JSON.parse has read (valid JSON);
 * the last of its name, as JSON.parse keeps the last; names compared as JSON.parse decodes them
 * (`"m\u0065ta"` is `meta`). Undefined: no such member, or not an object.
 */
export function memberText(body: Buffer, key: string): string | undefined {
  let i = 0;
  const skip = (): void => {
    while (isSpace(body[i])) i++;
  };
  skip();
  if (body[i] !== OPEN_BRACE) return undefined;
  i++;
  let found: string | undefined;
  for (;;) {
    skip();
    if (body[i] !== QUOTE) return found;
    const nameEnd = afterString(body, i);
    const name = body.toString('utf8', i + 1, nameEnd - 1);
    const same = name === key || (name.includes('\\') && JSON.parse(body.toString('utf8', i, nameEnd)) === key);
    i = nameEnd;
    skip();
    if (body[i] !== COLON) return found;
    i++;
    skip();
    const start = i;
    i = afterValue(body, i);
    if (same) found = body.toString('utf8', start, i);
    skip();
    if (body[i] !== COMMA) return found;
    i++;
  }
}

/** A reviver that keeps every number as its source text (a `rawJSON`): `1.0` stays `1.0`, 9007199254740993 itself. */
const sourceNumbers = (_key: string, v: unknown, context?: { source?: string }): unknown => (typeof v === 'number' && context?.source !== undefined ? rawJSON(context.source) : v);

/**
 * The member `key` of the object `body` holds (valid JSON, already parsed), its numbers as their source text;
 * undefined when there is none. Throws a RangeError when it nests deeper than a reviver's walk, on the stack, reaches.
 */
export function exactMember(body: Buffer, key: string): unknown {
  const text = memberText(body, key);
  return text === undefined ? undefined : JSON.parse(text, sourceNumbers);
}
