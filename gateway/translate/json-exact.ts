/**
 * JSON read with its numbers exact: a whole number whose integer part has 16 digits or more (2^53
 * has 16) may not survive a JavaScript number, so a body holding one is parsed again with each
 * number's source text, and those numbers become bigints. Every other body costs one byte scan
 * beside `JSON.parse` (the parse with source text is about 25 times slower, so it is paid only when
 * needed). The scan also says whether any number was written with a fraction or an exponent: a
 * Seldon client's `1.0` is a float, which JSON.parse alone cannot tell from `1`.
 */

/** A parsed document: numbers are `number`, or `bigint` for a whole number beyond 2^53. */
export interface ExactJson {
  readonly value: unknown;
  /** Some number outside strings was written with a fraction or an exponent. */
  readonly floats: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const DOT = 0x2e;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const ZERO = 0x30;
const NINE = 0x39;
/** Integer parts this long may be beyond 2^53 - 1 (a 16-digit one may be; 15 never is). */
const LONG_INTEGER = 16;
const PLUS = 0x2b;
const MINUS = 0x2d;
/** `run` outside a number, and in a number's fraction or exponent. */
const NOT_A_NUMBER = -1;
const FRACTION = -2;

/** Parse `body` (UTF-8 JSON); throws SyntaxError as JSON.parse does. */
export function parseExact(body: Buffer | string): ExactJson {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  let inString = false;
  let floats = false;
  let long = false;
  // Digits of the number's integer part so far, or NOT_A_NUMBER, or FRACTION.
  let run = NOT_A_NUMBER;
  let prevDigit = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c >= ZERO && c <= NINE) {
      if (run === NOT_A_NUMBER) run = 0;
      if (run >= 0 && ++run >= LONG_INTEGER) long = true;
      prevDigit = true;
      continue;
    }
    if (c === QUOTE) inString = true;
    // A fraction, or an exponent (an `e` right after a digit: never the `e` of true or false).
    if (c === DOT || ((c === LOWER_E || c === UPPER_E) && prevDigit)) {
      floats = true;
      run = FRACTION;
    } else if (!((c === PLUS || c === MINUS) && run === FRACTION)) run = NOT_A_NUMBER;
    prevDigit = false;
  }
  const text = buf.toString('utf8');
  return { value: long ? JSON.parse(text, exactNumber) : JSON.parse(text), floats };
}

/** A whole-number literal beyond the safe range becomes a bigint; everything else stays as JSON.parse made it. */
function exactNumber(this: unknown, _key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value !== 'number' || Number.isSafeInteger(value)) return value;
  const src = context?.source;
  if (src === undefined || !/^-?[0-9]+$/.test(src)) return value;
  return BigInt(src);
}
