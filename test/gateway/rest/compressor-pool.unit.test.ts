/**
 * The compressors whole answers borrow (gateway/rest/compressor-pool.ts), with node:zlib's real
 * compressors: each answer decodes to its own bytes whoever compressed before it; idle ones are
 * kept up to the bound per settings and freed after the idle time (an injected clock) or on
 * `clear`; brotli's and failed ones are never kept.
 */
import { constants, createBrotliCompress, createGzip, createZstdCompress, brotliDecompressSync, gunzipSync, zstdDecompressSync } from 'node:zlib';
import type { Transform } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CompressorPool, type CompressorKind } from '../../../gateway/rest/compressor-pool.js';

/** A JSON-ish body, different per `seed`. */
const body = (seed: number, n = 2000): Buffer => Buffer.from(JSON.stringify(Array.from({ length: n }, (_, i) => Math.round(Math.sin(i * seed) * 1e6) / 1e6)));

/** A kind whose compressors are counted as they are made. */
function counted(key: string, keep: boolean, make: () => Transform, finish: number): CompressorKind & { made: number } {
  const kind = { key, keep, finish, made: 0, make: () => (kind.made++, make()) };
  return kind;
}

const gzip = (level = 6): ReturnType<typeof counted> => counted(`gzip:${level}`, true, () => createGzip({ level }), constants.Z_FINISH);

/** One whole compression through the pool: the output, and whether it went well. */
function compress(pool: CompressorPool, kind: CompressorKind, pieces: Buffer[]): Promise<{ out: Buffer; ok: boolean }> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    pool.compress(
      kind,
      pieces,
      (p) => out.push(p),
      (ok) => resolve({ out: Buffer.concat(out), ok }),
    );
  });
}

describe('the pool of compressors for whole answers', () => {
  it('a kept compressor is reset between answers: each decodes to its own bytes, pieces or one buffer', async () => {
    const pool = new CompressorPool();
    const kind = gzip();
    for (let i = 1; i <= 5; i++) {
      const b = body(i);
      const pieces = i % 2 ? [b] : [b.subarray(0, 1000), b.subarray(1000, 5000), b.subarray(5000)];
      const { out, ok } = await compress(pool, kind, pieces);
      expect(ok).toBe(true);
      expect(gunzipSync(out).equals(b), `answer ${i}`).toBe(true);
    }
    expect(kind.made).toBe(1);
    expect(pool.size).toBe(1);
    pool.clear();
  });

  it('zstd is kept too; settings apart are kept apart', async () => {
    const pool = new CompressorPool();
    const zstd = counted('zstd:3', true, () => createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: 3 } }), constants.ZSTD_e_end);
    const fast = gzip(1);
    const slow = gzip(9);
    for (let i = 1; i <= 3; i++) {
      const b = body(i);
      expect(zstdDecompressSync((await compress(pool, zstd, [b])).out).equals(b)).toBe(true);
      expect(gunzipSync((await compress(pool, fast, [b])).out).equals(b)).toBe(true);
      expect(gunzipSync((await compress(pool, slow, [b])).out).equals(b)).toBe(true);
    }
    expect([zstd.made, fast.made, slow.made]).toEqual([1, 1, 1]);
    // The level stays with its compressor: level 9 is never larger than level 1 here.
    const b = body(7, 20_000);
    expect((await compress(pool, slow, [b])).out.length).toBeLessThan((await compress(pool, fast, [b])).out.length);
    expect(pool.size).toBe(3);
    pool.clear();
  });

  it('as many are made as answers compress at once; the bound of idle ones is kept, the rest freed', async () => {
    const pool = new CompressorPool(Date.now, 4);
    const kind = gzip();
    const bodies = Array.from({ length: 7 }, (_, i) => body(i + 1));
    const results = await Promise.all(bodies.map((b) => compress(pool, kind, [b])));
    results.forEach((r, i) => expect(gunzipSync(r.out).equals(bodies[i]!)).toBe(true));
    expect(kind.made).toBe(7);
    expect(pool.size).toBe(4);
    pool.clear();
    expect(pool.size).toBe(0);
  });

  it("brotli's are never kept (its reset forgets the quality)", async () => {
    const pool = new CompressorPool();
    const br = counted('br', false, () => createBrotliCompress({ params: { [constants.BROTLI_PARAM_QUALITY]: 4 } }), constants.BROTLI_OPERATION_FINISH);
    for (let i = 1; i <= 2; i++) {
      const b = body(i);
      expect(brotliDecompressSync((await compress(pool, br, [b])).out).equals(b)).toBe(true);
    }
    expect(br.made).toBe(2);
    expect(pool.size).toBe(0);
  });

  it('a compressor that fails tells its answer and is not kept', async () => {
    const pool = new CompressorPool();
    const broken = counted(
      'gzip:broken',
      true,
      () => {
        const z = createGzip();
        queueMicrotask(() => z.destroy(new Error('broken on purpose')));
        return z;
      },
      constants.Z_FINISH,
    );
    expect((await compress(pool, broken, [body(1)])).ok).toBe(false);
    expect(pool.size).toBe(0);
  });

  it('one that fails while idle is never lent: the next answer gets a new one', async () => {
    const pool = new CompressorPool();
    const made: Transform[] = [];
    const kind = counted(
      'gzip:idle-failure',
      true,
      () => {
        const z = createGzip();
        made.push(z);
        return z;
      },
      constants.Z_FINISH,
    );
    await compress(pool, kind, [body(1)]);
    made[0]!.destroy(new Error('failed while idle'));
    const b = body(2);
    const { out, ok } = await compress(pool, kind, [b]);
    expect(ok).toBe(true);
    expect(gunzipSync(out).equals(b)).toBe(true);
    expect(kind.made).toBe(2);
    pool.clear();
  });

  it('idle ones are freed after the idle time, the newest last', async () => {
    let now = 0;
    const pool = new CompressorPool(() => now, 4, 30_000);
    const kind = gzip();
    await Promise.all([compress(pool, kind, [body(1)]), compress(pool, kind, [body(2)])]);
    now = 20_000;
    await compress(pool, kind, [body(3)]);
    expect(pool.size).toBe(2);
    now = 30_000;
    // One of the two made at 0 was lent again at 20 s: the other is stale now, that one not yet.
    expect(pool.sweep()).toBe(true);
    expect(pool.size).toBe(1);
    now = 50_000;
    expect(pool.sweep()).toBe(false);
    expect(pool.size).toBe(0);
  });
});
