/**
 * gRPC's length-prefixed messages as the gateway reads and writes whole ones (gateway/wire/grpc-message.ts):
 * the prefix gRPC over HTTP/2 specifies (a zero flag, a big-endian length), and a message taken only when the
 * bytes are exactly one uncompressed message: never the first of two, a cut one, or a compressed one read as plain.
 */
import { describe, expect, it } from 'vitest';
import { MESSAGE_HEAD, framesOneMessage, lengthPrefixed, onlyMessage } from '../../../gateway/wire/grpc-message.js';
import { seededRandom } from '../../../routing/table/pick.js';

const bytes = (random: () => number, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));

describe('a length-prefixed gRPC message', () => {
  it('is written as gRPC over HTTP/2 frames it: flag 0, the length big-endian, then the message', () => {
    expect(lengthPrefixed(Buffer.from('abc'))).toEqual(Buffer.from([0, 0, 0, 0, 3, 0x61, 0x62, 0x63]));
    expect(lengthPrefixed(new Uint8Array(0))).toEqual(Buffer.from([0, 0, 0, 0, 0]));
    const big = Buffer.alloc(0x01020304, 7);
    const framed = lengthPrefixed(big);
    expect([...framed.subarray(0, MESSAGE_HEAD)]).toEqual([0, 1, 2, 3, 4]);
    expect(framed.length).toBe(big.length + MESSAGE_HEAD);
  });

  it('reads back exactly the message it wrote, for seeded messages of every small size', () => {
    const random = seededRandom(20261129);
    for (let n = 0; n < 300; n++) {
      const m = bytes(random, n);
      const framed = lengthPrefixed(m);
      expect(framesOneMessage(framed)).toBe(true);
      expect(onlyMessage(framed)).toEqual(m);
    }
  });

  it('takes nothing from bytes that are not exactly one uncompressed message', () => {
    const random = seededRandom(7);
    const m = bytes(random, 40);
    const framed = lengthPrefixed(m);
    const cases: [string, Buffer][] = [
      ['no bytes', Buffer.alloc(0)],
      ['a prefix cut short', framed.subarray(0, 4)],
      ['a message cut short', framed.subarray(0, framed.length - 1)],
      ['two messages', Buffer.concat([framed, lengthPrefixed(m)])],
      ['a byte after the message', Buffer.concat([framed, Buffer.from([0])])],
      ['a length that says more than came', Buffer.concat([Buffer.from([0, 0, 0, 1, 0]), m])],
    ];
    for (const [what, b] of cases) {
      expect(framesOneMessage(b), what).toBe(false);
      expect(onlyMessage(b), what).toBeNull();
    }
    // A compressed message is one message, never read as a plain one.
    const compressed = Buffer.from(framed);
    compressed[0] = 1;
    expect(framesOneMessage(compressed)).toBe(true);
    expect(onlyMessage(compressed)).toBeNull();
  });
});
