/**
 * Annotation value parsers (docs/routing.md#effective-annotations, docs/routing.md#annotations) and weight normalisation (docs/routing.md#weights-and-normalisation), unit by unit.
 */
import { describe, expect, it } from 'vitest';
import {
  checkHeaderName,
  compileFullMatch,
  constraintText,
  constraintWeight,
  parseHeaderAnnotation,
  parseRegexHeaderAnnotation,
  REGEX_MAX_COUNT,
  RegexBudget,
} from '../../../routing/values/syntax.js';
import { effectiveAnnotations } from '../../../routing/seldon/annotations.js';
import { cumulativeOf, normaliseWeights } from '../../../routing/values/weights.js';
import type { HeaderConstraint } from '../../../routing/values/syntax.js';
import { readWholeNumber } from '../../../routing/values/whole-number.js';

describe("an annotation's whole number, readWholeNumber (docs/routing.md#deployment-states: ^[0-9]+$ after trimming, ≤ 2147483647)", () => {
  it.each([
    ['0', 0],
    ['42', 42],
    [' 42 ', 42],
    ['\t7\n', 7],
    ['007', 7],
    ['2147483647', 2147483647],
  ])('%j → %i', (raw, n) => {
    expect(readWholeNumber(raw)).toEqual({ ok: true, value: n });
  });
  it.each(['', ' ', '-1', '+1', '1.0', '1.5', '1e3', '0x10', '1_000', '1 000', '2147483648', '99999999999999999999', 'abc', '٣', 'NaN', 'Infinity'])('%j is invalid', (raw) => {
    const r = readWholeNumber(raw);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(JSON.stringify(raw).slice(1, -1));
  });
});

describe('effectiveAnnotations (docs/routing.md#effective-annotations)', () => {
  const eff = (m?: Record<string, string>, s?: Record<string, string>) => Object.fromEntries(effectiveAnnotations(m, s));
  it('merges metadata and spec, spec winning', () => {
    expect(eff({ a: '1', b: '2' }, { b: '3', c: '4' })).toEqual({ a: '1', b: '3', c: '4' });
  });
  it('a present empty spec value hides the metadata value', () => {
    expect(eff({ a: 'meta' }, { a: '' })).toEqual({ a: '' });
    expect(eff({ a: 'meta' }, { a: '   ' })).toEqual({ a: '' });
  });
  it('metadata alone, spec alone, neither', () => {
    expect(eff({ a: '1' }, undefined)).toEqual({ a: '1' });
    expect(eff(undefined, { a: '1' })).toEqual({ a: '1' });
    expect(eff(undefined, undefined)).toEqual({});
  });
  it('trims values, not keys', () => {
    expect(eff({ ' k ': ' v ' }, { x: '\n5000\t' })).toEqual({ ' k ': 'v', x: '5000' });
  });
  it('tolerates shapes that are not string maps', () => {
    expect(eff('oops' as unknown as Record<string, string>, { a: 5 as unknown as string, b: null as unknown as string })).toEqual({ a: '5', b: '' });
  });
});

describe('parseHeaderAnnotation (seldon.io/ambassador-header, docs/routing.md#header)', () => {
  const texts = (cs: HeaderConstraint[]) => cs.map((c) => `${c.kind}:${constraintText(c)}`);
  it.each([
    ['k:v', ['exact:k=v']],
    ['k: v', ['exact:k=v']],
    ['  K  :  Some Value ', ['exact:k=Some Value']],
    ['k', ['presence:k']],
    ['K', ['presence:k']],
    ['k:', ['presence:k']],
    ['a:1:b:2', ['exact:a=1', 'exact:b=2']],
    ['a:1:b:', ['exact:a=1', 'presence:b']],
    ['x-region:eu', ['exact:x-region=eu']],
    ["weird!#$%&'*+-.^_`|~:v", ["exact:weird!#$%&'*+-.^_`|~=v"]],
  ])('%j → %j', (raw, want) => {
    const r = parseHeaderAnnotation(raw);
    if (!r.ok) throw new Error(r.error);
    expect(texts(r.value)).toEqual(want);
  });
  it.each([
    ['a:b:c', 'parts'],
    ['a:1:b:2:c', 'parts'],
    [':v', 'empty header name'],
    ['a:1::2', 'empty header name'],
    ['a:1:a:2', 'twice'],
    ['A:1:a:2', 'twice'],
    ['a b:1', 'not a valid header name'],
    ['a=b', 'not a valid header name'],
    ['ä', 'not a valid header name'],
    ['', 'empty header name'],
  ])('%j is rejected (%s)', (raw, why) => {
    const r = parseHeaderAnnotation(raw);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(why);
  });
});

describe('parseRegexHeaderAnnotation (seldon.io/ambassador-regex-header, docs/routing.md#regex-header)', () => {
  it('splits at the first ":" and full-matches with RE2', () => {
    const r = parseRegexHeaderAnnotation('location: lond.*');
    if (!r.ok) throw new Error(r.error);
    expect(r.value).toHaveLength(1);
    const c = r.value[0]!;
    expect(c.kind === 'regex' && [c.name, c.pattern]).toEqual(['location', 'lond.*']);
    if (c.kind !== 'regex') throw new Error('not a regex');
    expect(['london', 'londinium', 'lond'].map(c.test)).toEqual([true, true, true]);
    expect(['xlondon', 'London', 'lon', ''].map(c.test)).toEqual([false, false, false, false]);
  });
  it('keeps ":" in the pattern, reads several lines (LF or CRLF), skips blank ones', () => {
    const r = parseRegexHeaderAnnotation('X-Time: [0-9]+:[0-9]+\r\n\n  y : a|b  \n');
    if (!r.ok) throw new Error(r.error);
    expect(r.value.map((c) => constraintText(c))).toEqual(['x-time~[0-9]+:[0-9]+', 'y~a|b']);
    const [t, y] = r.value;
    if (t?.kind !== 'regex' || y?.kind !== 'regex') throw new Error('not regexes');
    expect([t.test('12:30'), t.test('12:30x'), y.test('a'), y.test('ab')]).toEqual([true, false, true, false]);
  });
  it.each([
    ['x: (a)\\1', 'invalid regex'],
    ['x: (?=a)a', 'invalid regex'],
    ['x: (?!a)b', 'invalid regex'],
    ['x: (?<=a)b', 'invalid regex'],
    ['x: [', 'invalid regex'],
    ['x:', 'no pattern'],
    ['x:   ', 'no pattern'],
    ['novalue', 'no pattern'],
    [': abc', 'empty header name'],
    ['a b: c', 'not a valid header name'],
    ['ok: a\nbad: (', 'invalid regex'],
  ])('%j is rejected (%s)', (raw, why) => {
    const r = parseRegexHeaderAnnotation(raw);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(why);
  });
});

describe('compileFullMatch (RE2, linear time, full match)', () => {
  it("refuses a pattern whose RE2 program is over the limit (Ambassador's regex_max_size, 200 by default), naming its size", () => {
    const over = compileFullMatch('(?:a?){99}b');
    expect(over.ok).toBe(false);
    if (!over.ok) expect(over.error).toBe('regex "(?:a?){99}b" is too complex: its RE2 program size is 201, over 200 (--regex-max-size, Ambassador\'s regex_max_size)');
    const under = compileFullMatch('(?:a?){98}b');
    if (!under.ok) throw new Error(under.error);
    expect([under.value(`${'a'.repeat(98)}b`), under.value(`${'a'.repeat(99)}b`)]).toEqual([true, false]);
    // The limit is the caller's: a larger one takes the first, and still refuses a far larger program.
    expect(compileFullMatch('(?:a?){99}b', new RegexBudget(1000)).ok).toBe(true);
    const bomb = compileFullMatch('(?:a|aa){0,999}b', new RegexBudget(1000));
    expect(bomb.ok).toBe(false);
    if (!bomb.ok) expect(bomb.error).toContain('program size is 4998, over 1000');
  });

  it('compiles at most REGEX_MAX_COUNT (32) patterns on one budget, the refused ones counted too', () => {
    const budget = new RegexBudget();
    expect(compileFullMatch('(?:a|aa){0,999}b', budget).ok).toBe(false);
    for (let i = 1; i < REGEX_MAX_COUNT; i++) expect(compileFullMatch(`v${i}`, budget).ok).toBe(true);
    const one = compileFullMatch('v', budget);
    expect(one.ok).toBe(false);
    if (!one.ok) expect(one.error).toBe('regex "v" is one too many: at most 32 regexes in one SeldonDeployment');
    expect(compileFullMatch('v', new RegexBudget(200, 1)).ok).toBe(true);
  });

  it('is anchored at both ends without being told', () => {
    const r = compileFullMatch('a|b');
    if (!r.ok) throw new Error(r.error);
    expect(['a', 'b', 'ab', 'xa', ''].map(r.value)).toEqual([true, true, false, false, false]);
  });
  it('a pathological pattern stays fast', () => {
    const r = compileFullMatch('(a+)+$');
    if (!r.ok) throw new Error(r.error);
    const start = performance.now();
    expect(r.value('a'.repeat(5000) + 'b')).toBe(false);
    expect(performance.now() - start).toBeLessThan(1000);
  });
});

describe('header names, constraint text and weight (docs/routing.md#precedence-and-no-match)', () => {
  it('checkHeaderName', () => {
    expect(checkHeaderName('x-region')).toBeUndefined();
    expect(checkHeaderName('')).toBe('empty header name');
    expect(checkHeaderName('X-Upper')).toContain('not a valid');
    expect(checkHeaderName(':authority')).toContain('not a valid');
  });
  it('weights: exact = name + value, presence = name + 1, regex = name + pattern + 1', () => {
    expect(constraintWeight({ kind: 'exact', name: 'x-region', value: 'eu' })).toBe(10);
    expect(constraintWeight({ kind: 'presence', name: 'x-region' })).toBe(9);
    expect(constraintWeight({ kind: 'regex', name: 'x-region', pattern: 'e.*', test: () => true })).toBe(12);
  });
});

describe('normaliseWeights (docs/routing.md#weights-and-normalisation)', () => {
  const round = (xs: number[]) => xs.map((x) => Math.round(x * 10_000) / 10_000);
  it.each<[string, (number | null)[], number[], boolean]>([
    ['empty', [], [], false],
    ['one weightless', [null], [100], false],
    ['one explicit 0', [0], [100], false],
    ['one explicit 40', [40], [100], false],
    ['[75 first, 25]', [null, 25], [75, 25], false],
    ['[100, 0]', [null, 0], [100, 0], false],
    ['[0, 100]', [null, 100], [0, 100], false],
    ['[33,33,33]', [null, 33, 33], [34, 33, 33], false],
    ['[60,20,20]', [null, 20, 20], [60, 20, 20], false],
    ['[p1 20, p2 90]', [null, 90], [10, 90], false],
    ['two weightless share equally, exactly', [null, null, 40], [30, 30, 40], false],
    ['three weightless', [null, null, null], [33.3333, 33.3333, 33.3333], false],
    ['U ≥ 1, W > 100: weightless 0, scaled', [null, 80, 40], [0, 66.6667, 33.3333], true],
    ['U = 0, W = 100', [50, 50], [50, 50], false],
    ['U = 0, W < 100: scaled', [30, 20], [60, 40], true],
    ['U = 0, W > 100: scaled', [60, 60, 30], [40, 40, 20], true],
    ['U = 0, some 0', [0, 100], [0, 100], false],
    ['U = 0, W = 0: equal split', [0, 0, 0, 0], [25, 25, 25, 25], true],
  ])('%s', (_n, weights, want, warns) => {
    const r = normaliseWeights(weights);
    expect(round(r.percents)).toEqual(want);
    expect(r.warning !== null).toBe(warns);
    if (weights.length > 0) expect(r.percents.reduce((a, b) => a + b, 0)).toBeCloseTo(100, 9);
  });

  it('depends only on the multiset: permuting the input permutes the output', () => {
    const inputs: (number | null)[][] = [
      [null, 80, 40, 5],
      [null, null, 10, 0],
      [30, 20, 70],
      [0, 0, 0],
    ];
    for (const w of inputs) {
      const base = normaliseWeights(w).percents;
      for (let shift = 1; shift < w.length; shift++) {
        const rotated = [...w.slice(shift), ...w.slice(0, shift)];
        const expected = [...base.slice(shift), ...base.slice(0, shift)];
        expect(normaliseWeights(rotated).percents).toEqual(expected);
      }
    }
  });

  it('cumulativeOf', () => {
    expect(cumulativeOf([])).toEqual([]);
    expect(cumulativeOf([34, 33, 33])).toEqual([34, 67, 100]);
    expect(cumulativeOf([0, 100, 0])).toEqual([0, 100, 100]);
  });
});
