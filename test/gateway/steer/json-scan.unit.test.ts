/**
 * The JSON scanner under the answer tag (gateway/steer/json-scan.ts): where a value ends, and that it
 * accepts exactly what JSON.parse accepts, on the shapes its fast paths are for (long arrays of
 * numbers, an ndarray's rows) and on hostile input (deep nesting, unterminated strings and numbers,
 * huge numbers, input that stops in the middle of a token).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readTopObject, skipString, skipValue } from '../../../gateway/steer/json-scan.js';

const parses = (text: string): boolean => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};
/** skipValue over the whole text: its end when the text is exactly one value (spaces after it allowed), else -1. */
const scanned = (text: string): number => {
  const b = Buffer.from(text);
  const end = skipValue(b, 0);
  return end >= 0 && b.subarray(end).toString().trim() === '' ? end : -1;
};

describe('skipValue on arrays of numbers', () => {
  it.each(['[1,2,3]', '[-0,0.5,1e5,1E+2,-1.25e-3,12345678901234567890123]', '[ 1 , 2\t,\n3\r]', '[[1,2],[3,4]]', '[1,"x",2,[3],{"a":4},true,null,-5]', '[1,[2,[3,[4]]],5]', '[0]', '[-0.0e-0]', '[ ]'])(
    '%j: the whole text',
    (text) => {
      expect(parses(text)).toBe(true);
      expect(skipValue(Buffer.from(text), 0)).toBe(text.length);
    },
  );

  it('ends where the value ends, whatever follows', () => {
    expect(skipValue(Buffer.from('[1,2] x'), 0)).toBe(5);
    expect(skipValue(Buffer.from('  [1,2],[3]'), 0)).toBe(7);
    expect(skipValue(Buffer.from('12,3'), 0)).toBe(2); // a number outside an array is one number
    expect(skipValue(Buffer.from('-1.5e3]'), 0)).toBe(6);
  });

  it.each([
    '[1,]',
    '[1,,2]',
    '[,1]',
    '[01]',
    '[-01]',
    '[1.]',
    '[1.e5]',
    '[.5]',
    '[-]',
    '[-,1]',
    '[1e]',
    '[1e+]',
    '[1E-,2]',
    '[+1]',
    '[1 2]',
    '[1,-]',
    '[1,2',
    '[1,2,',
    '[1,2 ',
    '[1.5',
    '[1e5',
    '[1,2}',
    '[0x10]',
    '[1,2]]',
    '[Infinity]',
    '[NaN]',
    '[1,\u00a02]',
    '[1\u000b,2]',
  ])('%j is not JSON', (text) => {
    expect(parses(text)).toBe(false);
    expect(scanned(text)).toBe(-1);
  });

  it('numbers as JSON.stringify writes them, spaced any way JSON allows, in rows: accepted exactly when JSON.parse accepts them', () => {
    const space = fc.constantFrom('', ' ', '\n', '\t', '\r\n  ');
    const number = fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => JSON.stringify(x)),
      fc.integer().map(String),
      fc.tuple(fc.integer({ min: -999, max: 999 }), fc.nat(999_999), fc.constantFrom('', 'e', 'E', 'e+', 'e-', 'E-'), fc.nat(400)).map(([i, f, e, x]) => `${i}.${f}${e ? `${e}${x}` : ''}`),
    );
    const row = fc.array(fc.tuple(space, number, space), { minLength: 1, maxLength: 12 }).map((xs) => `[${xs.map(([a, n, b]) => a + n + b).join(',')}]`);
    const ndarray = fc.array(row, { maxLength: 8 }).map((rows) => `{"data":{"ndarray":[${rows.join(',')}]}}`);
    fc.assert(
      fc.property(ndarray, (text) => {
        expect(readTopObject(Buffer.from(text))).not.toBeNull();
        expect(scanned(text)).toBe(Buffer.byteLength(text));
      }),
      { numRuns: 500 },
    );
    // The same, one byte changed, dropped or added: accepted exactly when JSON.parse accepts it.
    const noise = fc.constantFrom(',', '[', ']', '-', '+', '.', 'e', 'E', '0', '5', ' ', '\n', '"', 'x', '}');
    fc.assert(
      fc.property(ndarray, fc.nat(), fc.nat(2), noise, (text, at, op, c) => {
        const i = at % (text.length + 1);
        const mutated = op === 0 ? text.slice(0, i) + text.slice(i + 1) : op === 1 ? text.slice(0, i) + c + text.slice(i + 1) : text.slice(0, i) + c + text.slice(i);
        let parsed: unknown;
        try {
          parsed = JSON.parse(mutated);
        } catch {
          parsed = undefined;
        }
        const isObject = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed);
        expect(readTopObject(Buffer.from(mutated)) !== null).toBe(isObject);
      }),
      { numRuns: 3000 },
    );
  });

  it('reads nothing past the end of a Buffer that is a slice of a larger one', () => {
    const whole = Buffer.from('{"a":[1,2]}');
    // Each cut stops inside a token: the bytes after it are in memory, and must not be seen.
    for (let cut = 1; cut < whole.length; cut++) expect(readTopObject(whole.subarray(0, cut))).toBeNull();
    expect(skipValue(Buffer.from('[12345]').subarray(0, 4), 1)).toBe(4); // "123": the number ends at the slice's end
    expect(skipValue(Buffer.from('[1,2]').subarray(0, 4), 0)).toBe(-1);
    expect(skipValue(Buffer.from('"abc"').subarray(0, 4), 0)).toBe(-1);
  });
});

describe('skipValue on hostile input', () => {
  it('huge numbers: a million digits, a long exponent, a long fraction', () => {
    const digits = '9'.repeat(1_000_000);
    for (const text of [`{"a":[${digits}]}`, `{"a":${digits}}`, `{"a":[1e${digits}]}`, `{"a":[0.${digits},-${digits}.5E-${digits}]}`]) {
      expect(readTopObject(Buffer.from(text))?.members.length).toBe(1);
    }
    expect(readTopObject(Buffer.from(`{"a":[0${digits}]}`))).toBeNull();
    expect(readTopObject(Buffer.from(`{"a":[${digits}`))).toBeNull();
    expect(readTopObject(Buffer.from(`{"a":[${digits}.]}`))).toBeNull();
  });

  it('deep nesting of arrays and objects, closed and unclosed, costs no call stack', () => {
    const depth = 200_000;
    const nested = `${'[{"a":'.repeat(depth)}1${'}]'.repeat(depth)}`;
    expect(skipValue(Buffer.from(nested), 0)).toBe(nested.length);
    expect(skipValue(Buffer.from(`${'[1,'.repeat(depth)}2${']'.repeat(depth)}`), 0)).toBe(4 * depth + 1);
    expect(skipValue(Buffer.from(nested.slice(0, -1)), 0)).toBe(-1);
    expect(skipValue(Buffer.from(`${'['.repeat(depth)}1,${']'.repeat(depth)}`), 0)).toBe(-1);
  });

  it.each([
    ['unterminated', '"abc'],
    ['ends in a backslash', '"abc\\'],
    ['ends in an escaped quote', '"abc\\"'],
    ['a short \\u escape at the end', '"\\u12'],
    ['a \\u escape that is not hex', '"\\u12g4"'],
    ['an unknown escape', '"\\x41"'],
    ['a raw control character', '"a\u0001b"'],
    ['a raw newline', '"a\nb"'],
    ['a raw tab', '"a\tb"'],
  ])('strings: %s is refused', (_name, text) => {
    expect(parses(text)).toBe(false);
    expect(skipString(Buffer.from(text), 0)).toBe(-1);
    expect(readTopObject(Buffer.from(`{"k":${text}}`))).toBeNull();
  });

  it.each([
    ['escapes', '"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00"'],
    ['DEL and bytes over 0x7f', '"\u007fé😀"'],
    ['quotes and backslashes at the ends', '"\\"\\\\"'],
    ['a long plain run', `"${'x'.repeat(100_000)}"`],
  ])('strings: %s end where JSON.parse says', (_name, text) => {
    expect(parses(text)).toBe(true);
    expect(skipString(Buffer.from(text), 0)).toBe(Buffer.byteLength(text));
  });

  it.each(['tru', 'nul', 'fals', 'truex', '-', 'True'])('a truncated or unknown word %j is refused', (text) => {
    expect(scanned(`[${text}]`)).toBe(-1);
    expect(scanned(text)).toBe(-1);
  });
});
