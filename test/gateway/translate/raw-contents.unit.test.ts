/** The v2 raw contents (gRPC's raw_input_contents): every datatype little-endian, BYTES length-prefixed, FP16/BF16 exact. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readRaw, writeRaw, halfToNumber, numberToHalf } from '../../../gateway/translate/raw-contents.js';
import { TranslateRefusal } from '../../../gateway/translate/datatypes.js';

const hex = (b: Buffer): string => b.toString('hex');

describe('raw contents', () => {
  it('golden: each datatype little-endian', () => {
    expect(hex(writeRaw('BOOL', [true, false]))).toBe('0100');
    expect(hex(writeRaw('UINT8', [255]))).toBe('ff');
    expect(hex(writeRaw('INT8', [-1]))).toBe('ff');
    expect(hex(writeRaw('UINT16', [0x0102]))).toBe('0201');
    expect(hex(writeRaw('INT16', [-2]))).toBe('feff');
    expect(hex(writeRaw('UINT32', [1]))).toBe('01000000');
    expect(hex(writeRaw('INT32', [-1]))).toBe('ffffffff');
    expect(hex(writeRaw('UINT64', [18446744073709551615n]))).toBe('ffffffffffffffff');
    expect(hex(writeRaw('INT64', [9007199254740993n]))).toBe('0100000000002000');
    expect(hex(writeRaw('FP16', [1, -2, 65504]))).toBe('003c00c0ff7b');
    expect(hex(writeRaw('BF16', [1]))).toBe('803f');
    expect(hex(writeRaw('FP32', [1.5]))).toBe('0000c03f');
    expect(hex(writeRaw('FP64', [0.1]))).toBe('9a9999999999b93f');
    expect(hex(writeRaw('BYTES', ['ab', Buffer.from([0xff])]))).toBe('020000006162' + '01000000ff');
  });
  it('reads what it writes; INT64 beyond 2^53 exactly', () => {
    expect(readRaw('INT64', Buffer.from('0100000000002000', 'hex'))).toEqual([9007199254740993n]);
    expect(readRaw('FP16', Buffer.from('003c00c0ff7b', 'hex'))).toEqual([1, -2, 65504]);
    expect(readRaw('BF16', Buffer.from('803f', 'hex'))).toEqual([1]);
    expect(readRaw('BYTES', Buffer.from('020000006162', 'hex'))).toEqual([Buffer.from('ab')]);
  });
  it('writes FP32 as the nearest float32, as a v2 model parses the same JSON number', () => {
    expect(writeRaw('FP32', [0.1, -0, 3.4028234663852886e38])).toEqual(Buffer.from('cdcccc3d00000080ffff7f7f', 'hex'));
    expect(readRaw('FP32', writeRaw('FP32', [0.1]))).toEqual([Math.fround(0.1)]);
  });
  it('refuses what it cannot hold exactly, and broken contents', () => {
    expect(() => writeRaw('FP16', [0.1])).toThrow(TranslateRefusal);
    expect(() => writeRaw('FP32', [1e-50])).toThrow(/too small for FP32/);
    expect(() => writeRaw('FP64', [9007199254740993n])).toThrow(/FP64 cannot hold exactly/);
    expect(() => readRaw('INT32', Buffer.alloc(3))).toThrow(/not whole 4-byte elements/);
    expect(() => readRaw('BOOL', Buffer.from([2]))).toThrow(/not 0 or 1/);
    expect(() => readRaw('BYTES', Buffer.from('05000000ab', 'hex'))).toThrow(/end inside an element/);
    expect(() => readRaw('BYTES', Buffer.from('0500', 'hex'))).toThrow(/end inside an element length/);
  });
  it('every binary16 reads and writes back to its bits (seeded)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), (h) => {
        const v = halfToNumber(h);
        if (Number.isNaN(v)) return;
        expect(numberToHalf(v)).toBe(h);
      }),
      { seed: 20261127, numRuns: 2000 },
    );
  });
  it('random INT64 and UINT64 survive raw and back (seeded)', () => {
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })), fc.array(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })), (s, u) => {
        expect(readRaw('INT64', writeRaw('INT64', s))).toEqual(s);
        expect(readRaw('UINT64', writeRaw('UINT64', u))).toEqual(u);
      }),
      { seed: 20261127, numRuns: 200 },
    );
  });
});
