/**
 * The `grpc-timeout` header (gateway/grpc/timeout.ts), directly: the parser the gateway reads a
 * client's budget with (1 to 8 ASCII digits and one of H M S m u n, anything else ignored) and the
 * formatter for the budget it passes on.
 */
import { describe, expect, it } from 'vitest';
import { formatGrpcTimeout, parseGrpcTimeout } from '../../../gateway/grpc/timeout.js';

describe('parseGrpcTimeout', () => {
  it('parses every unit to milliseconds', () => {
    expect(parseGrpcTimeout('1H')).toBe(3_600_000);
    expect(parseGrpcTimeout('2M')).toBe(120_000);
    expect(parseGrpcTimeout('3S')).toBe(3000);
    expect(parseGrpcTimeout('250m')).toBe(250);
    expect(parseGrpcTimeout('1500u')).toBe(1.5);
    expect(parseGrpcTimeout('2000000n')).toBe(2);
  });

  it('takes one to eight digits, leading zeros included, and zero', () => {
    expect(parseGrpcTimeout('7m')).toBe(7);
    expect(parseGrpcTimeout('99999999m')).toBe(99_999_999);
    expect(parseGrpcTimeout('99999999H')).toBe(99_999_999 * 3_600_000);
    expect(parseGrpcTimeout('00000010S')).toBe(10_000);
    expect(parseGrpcTimeout('0m')).toBe(0);
  });

  it('ignores absent and malformed values', () => {
    for (const v of [
      undefined,
      '',
      'm', // no digits
      '10', // no unit
      '10x', // unknown unit
      '10h', // units are case-sensitive: h is not H
      '10s',
      '10ms', // two-letter unit
      '-1m',
      '+1m',
      '1.5S',
      '1e3m',
      '123456789m', // nine digits
      ' 1m',
      '1m ',
      '1 m',
      '١m', // a digit, but not an ASCII one
      '1/m',
      '1:m',
    ]) {
      expect(parseGrpcTimeout(v), JSON.stringify(v)).toBeUndefined();
    }
  });
});

describe('formatGrpcTimeout', () => {
  it('writes milliseconds while they fit 8 digits, rounding up, at least 1 ms', () => {
    expect(formatGrpcTimeout(300)).toBe('300m');
    expect(formatGrpcTimeout(0.2)).toBe('1m');
    expect(formatGrpcTimeout(0)).toBe('1m');
    expect(formatGrpcTimeout(-5)).toBe('1m');
    expect(formatGrpcTimeout(299.1)).toBe('300m');
    expect(formatGrpcTimeout(99_999_999)).toBe('99999999m');
  });

  it('then seconds, rounded up, then hours, capped at 8 digits', () => {
    expect(formatGrpcTimeout(100_000_000)).toBe('100000S');
    expect(formatGrpcTimeout(100_000_001)).toBe('100001S');
    expect(formatGrpcTimeout(99_999_999_000)).toBe('99999999S');
    expect(formatGrpcTimeout(99_999_999_001)).toBe(`${Math.ceil(99_999_999_001 / 1000 / 3600)}H`);
    expect(formatGrpcTimeout(Number.MAX_SAFE_INTEGER)).toBe('99999999H');
    expect(formatGrpcTimeout(Infinity)).toBe('99999999H');
  });

  it('round-trips: what it writes parses back to at least the budget (up to the largest value)', () => {
    const largest = 99_999_999 * 3_600_000;
    for (const ms of [0.5, 1, 77, 999.5, 3000, 12_345_678, 99_999_999, 100_000_000, 123_456_789_012, 2 ** 40, 2 ** 52]) {
      const v = formatGrpcTimeout(ms);
      expect(v, String(ms)).toMatch(/^\d{1,8}[HSm]$/);
      const back = parseGrpcTimeout(v)!;
      expect(back, v).toBeGreaterThanOrEqual(Math.min(ms, largest));
    }
  });
});
