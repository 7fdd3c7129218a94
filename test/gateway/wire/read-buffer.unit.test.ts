/**
 * The rule for reading into a socket's own buffer again (gateway/wire/read-buffer.ts), both sides' one:
 * a large read goes on as views of the socket's own buffer, read into again only when every byte of
 * the read was passed on; a small read is copied out; a socket with nothing large to read holds none.
 */
import { describe, expect, it } from 'vitest';
import { READ_BYTES, ReadBuffer } from '../../../gateway/wire/read-buffer.js';

/** One read of `n` bytes of `fill` into `buf`, as Node's handle makes it. */
const read = (buf: Buffer, n: number, fill: number): number => buf.fill(fill, 0, n) && n;

describe('ReadBuffer: a socket reads into the same memory again only when a read was passed on whole', () => {
  it('a large read in the shared buffer is copied into a buffer of its own; passed whole, the next read goes into that one', () => {
    const r = new ReadBuffer();
    const shared = r.next(false);
    const chunk = r.take(read(shared, READ_BYTES, 1), shared);
    expect(chunk.buffer).not.toBe(shared.buffer);
    expect(chunk.every((b) => b === 1)).toBe(true);
    r.passed(chunk);
    const again = r.next(true);
    expect(again.buffer).toBe(chunk.buffer);
    // Passed in two views (a body's part and nothing else): still whole.
    const next = r.take(read(again, 40_000, 2), again);
    expect(next.buffer).toBe(chunk.buffer);
    r.passed(next.subarray(0, 10_000));
    r.passed(next.subarray(10_000));
    expect(r.next(true).buffer).toBe(chunk.buffer);
  });

  it('a read not passed whole is left to its holders: the next read never goes into its memory', () => {
    const r = new ReadBuffer();
    const shared = r.next(true);
    const held = r.take(read(shared, READ_BYTES, 3), shared);
    r.passed(held);
    const own = r.next(true);
    const first = r.take(read(own, READ_BYTES, 4), own);
    // Only part of it went on (the rest is the next request's, kept): the buffer is theirs now.
    r.passed(first.subarray(0, 1000));
    const after = r.next(true);
    expect(after.buffer).not.toBe(first.buffer);
    r.take(read(after, READ_BYTES, 5), after);
    expect(first.every((b) => b === 4)).toBe(true);
    // A view of some other memory said to be passed counts for nothing.
    const r2 = new ReadBuffer();
    const s2 = r2.next(true);
    const c2 = r2.take(read(s2, READ_BYTES, 6), s2);
    r2.passed(Buffer.alloc(READ_BYTES));
    expect(r2.next(true).buffer).not.toBe(c2.buffer);
  });

  it('small reads are copied out as small as they are, and a socket with nothing large to read holds no buffer of its own', () => {
    const r = new ReadBuffer();
    const shared = r.next(false);
    const small = r.take(read(shared, 100, 7), shared);
    expect(small.length).toBe(100);
    expect(small.buffer).not.toBe(shared.buffer);
    // Another socket's idle reads go into the same shared memory, which no chunk keeps.
    expect(new ReadBuffer().next(false)).toBe(shared);
    const big = r.take(read(shared, READ_BYTES, 8), shared);
    r.passed(big);
    expect(r.next(false)).toBe(shared);
  });
});
