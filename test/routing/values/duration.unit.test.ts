/**
 * The one duration grammar of every annotation (routing/values/duration.ts): a number with its unit,
 * decimals, several in a row; a bare number, an unknown unit or anything else is not a duration.
 */
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../../routing/values/duration.js';

describe('duration grammar', () => {
  it('reads ms, s, m, h and d, decimals, and several in a row', () => {
    const table: [string, number][] = [
      ['500ms', 500],
      ['30s', 30_000],
      ['0.5s', 500],
      ['2m', 120_000],
      ['1h', 3_600_000],
      ['1d', 86_400_000],
      ['1m30s', 90_000],
      ['1h2m3s4ms', 3_723_004],
      [' 3 s ', 3000],
      ['0s', 0],
      ['0', 0],
      ['0.1s', 100],
    ];
    expect(table.map(([v]) => [v, parseDuration(v)])).toEqual(table);
  });

  it('a duration that is not whole milliseconds is refused, never rounded', () => {
    for (const v of ['1.5ms', '0.0004s', '1.0005s']) expect(parseDuration(v)).toBeNull();
  });

  it('a bare number, an unknown unit, a sign or anything but a string is not a duration', () => {
    for (const v of ['3', '2.5', '', 's', '5w', '-1s', '+1s', '1e3ms', '1 sec', '1m 30s', 'soon', 30, null, undefined, ['1s']]) expect(parseDuration(v)).toBeNull();
  });
});
